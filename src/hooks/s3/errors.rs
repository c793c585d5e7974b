//! Classifying aws-sdk-s3 errors into gust's [`ErrorKind`]s.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

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
///
/// `endpoint` is the `host:port` requests go to, when the connection names one.
/// The message is for people: a service error's code and message, else the
/// innermost cause's Display (`Connection refused (os error 111)`) — never the
/// SDK's `Debug` of its wrappers. The SDK error stays chained as the source.
pub(super) fn from_sdk<E>(
    operation: &'static str,
    err: SdkError<E, HttpResponse>,
    endpoint: Option<&str>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let at = endpoint.map(|e| format!(" {e}")).unwrap_or_default();
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
            format!(
                "no answer from the endpoint{at} in time: {}",
                innermost(&err)
            ),
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
                format!("cannot reach the endpoint{at}: {}", innermost(&err)),
            )
        }
        SdkError::ResponseError(_) => (
            ErrorKind::Remote,
            format!(
                "unreadable response from the endpoint{at}: {}",
                innermost(&err)
            ),
        ),
        SdkError::ConstructionFailure(_) => (
            ErrorKind::InvalidInput,
            format!("invalid request: {}", innermost(&err)),
        ),
        _ => (ErrorKind::Remote, innermost(&err)),
    };
    Error::new(kind, operation, message).with_source(err)
}

/// The Display of the last error in `e`'s source chain: the cause itself
/// (`Connection refused (os error 111)`, a DNS or TLS failure), without the
/// wrappers' words ("dispatch failure: io error: client error (Connect): …").
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// `host:port` of an endpoint URL, the port being the scheme's default when
/// unset, for messages. `None` when `url` has no host.
pub(super) fn host_port(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?;
    Some(match u.port_or_known_default() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
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

    #[test]
    fn host_port_of_endpoints() {
        assert_eq!(
            host_port("http://127.0.0.1:9000").as_deref(),
            Some("127.0.0.1:9000")
        );
        assert_eq!(
            host_port("https://minio.local").as_deref(),
            Some("minio.local:443")
        );
        assert_eq!(host_port("http://h/").as_deref(), Some("h:80"));
        assert_eq!(host_port("not a url"), None);
    }

    #[test]
    fn innermost_is_the_last_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let outer = Error::new(ErrorKind::Unavailable, "x", "wrapper").with_source(io);
        assert_eq!(innermost(&outer), "Connection refused");
    }
}
