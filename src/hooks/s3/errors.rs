//! Classifying aws-sdk-s3 errors into gust's [`ErrorKind`]s.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::error::{Error, ErrorKind};

/// The kind of an S3 error code / HTTP status, and whether it is transient.
fn classify(code: Option<&str>, status: u16) -> ErrorKind {
    match code {
        Some("NoSuchBucket" | "NoSuchKey" | "NotFound" | "NoSuchUpload") => ErrorKind::NotFound,
        Some(
            "AccessDenied"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "InvalidToken"
            | "AllAccessDisabled",
        ) => ErrorKind::Auth,
        // Our conditional writes send `If-None-Match: *`, so a failed precondition
        // means the key exists.
        Some("PreconditionFailed" | "BucketAlreadyOwnedByYou" | "BucketAlreadyExists") => {
            ErrorKind::AlreadyExists
        }
        Some("InvalidRange" | "InvalidArgument" | "InvalidBucketName" | "KeyTooLongError") => {
            ErrorKind::InvalidInput
        }
        Some(
            "SlowDown"
            | "Throttling"
            | "ThrottlingException"
            | "RequestTimeout"
            | "InternalError"
            | "ServiceUnavailable",
        ) => ErrorKind::Unavailable,
        Some("NotImplemented") => ErrorKind::Unsupported,
        _ => match status {
            404 => ErrorKind::NotFound,
            401 | 403 => ErrorKind::Auth,
            412 => ErrorKind::AlreadyExists,
            416 => ErrorKind::InvalidInput,
            501 => ErrorKind::Unsupported,
            408 | 429 | 500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::Remote,
        },
    }
}

/// One-line hint to go with a kind, so the message says what to do next.
fn hint(kind: ErrorKind, code: Option<&str>) -> &'static str {
    match (kind, code) {
        (_, Some("SignatureDoesNotMatch")) => " (check the connection's secret key)",
        (_, Some("InvalidAccessKeyId")) => " (check the connection's access key id)",
        (ErrorKind::InvalidInput, Some("InvalidRange")) | (ErrorKind::InvalidInput, None) => {
            " (the range starts at or past the end of the object)"
        }
        _ => "",
    }
}

/// A gust error from an SDK error. The caller adds conn id, bucket and key.
pub(super) fn from_sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (kind, message) = match &err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code();
            let kind = classify(code, status);
            let what = match (code, ctx.err().message()) {
                (Some(c), Some(m)) if !m.is_empty() && m != "Unknown" => format!("{c}: {m}"),
                (Some(c), _) => c.to_string(),
                // HEAD responses carry no body, hence no code.
                (None, _) if status == 404 => "no such bucket or key (HTTP 404)".to_string(),
                (None, _) => format!("HTTP {status}"),
            };
            (kind, format!("{what}{}", hint(kind, code)))
        }
        SdkError::TimeoutError(_) => (
            ErrorKind::Timeout,
            format!("request timed out: {}", DisplayErrorContext(&err)),
        ),
        SdkError::DispatchFailure(d) => {
            let kind = if d.is_timeout() {
                ErrorKind::Timeout
            } else if d.is_user() {
                ErrorKind::InvalidInput
            } else {
                ErrorKind::Unavailable
            };
            (
                kind,
                format!("cannot reach the endpoint: {}", DisplayErrorContext(&err)),
            )
        }
        SdkError::ResponseError(_) => (
            ErrorKind::Remote,
            format!("unreadable response: {}", DisplayErrorContext(&err)),
        ),
        SdkError::ConstructionFailure(_) => (
            ErrorKind::InvalidInput,
            format!("invalid request: {}", DisplayErrorContext(&err)),
        ),
        _ => (ErrorKind::Remote, DisplayErrorContext(&err).to_string()),
    };
    Error::new(kind, operation, message).with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_map_to_kinds() {
        assert_eq!(classify(Some("NoSuchKey"), 404), ErrorKind::NotFound);
        assert_eq!(classify(None, 404), ErrorKind::NotFound);
        assert_eq!(
            classify(Some("SignatureDoesNotMatch"), 403),
            ErrorKind::Auth
        );
        assert_eq!(
            classify(Some("PreconditionFailed"), 412),
            ErrorKind::AlreadyExists
        );
        assert_eq!(classify(Some("InvalidRange"), 416), ErrorKind::InvalidInput);
        assert_eq!(classify(Some("SlowDown"), 503), ErrorKind::Unavailable);
        assert_eq!(classify(None, 502), ErrorKind::Unavailable);
        assert_eq!(classify(Some("Weird"), 400), ErrorKind::Remote);
        assert!(!Error::new(classify(Some("AccessDenied"), 403), "x", "y").is_retryable());
        assert!(Error::new(classify(None, 500), "x", "y").is_retryable());
    }
}
