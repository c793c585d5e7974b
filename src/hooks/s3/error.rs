//! Classifying aws-sdk-s3 errors into gust's [`ErrorKind`]s.
//!
//! Pure: the hook's [`HookScope`](crate::hooks::scope::HookScope) names the operation,
//! adds the conn id and redacts (see `S3Hook::wrap`).

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::error::{Error, ErrorKind};
use crate::hooks::scope::{Classified, driver_error, innermost};

/// The kind of an S3 error code / HTTP status and a hint for the message. No
/// retry override: `Unavailable` (5xx, throttling) retries, the rest do not.
fn classify(code: Option<&str>, status: u16) -> Classified {
    let kind = kind(code, status);
    (kind, None, hint(kind, code))
}

fn kind(code: Option<&str>, status: u16) -> ErrorKind {
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
fn hint(kind: ErrorKind, code: Option<&str>) -> Option<&'static str> {
    match (kind, code) {
        (_, Some("SignatureDoesNotMatch")) => Some("check the connection's secret key"),
        (_, Some("InvalidAccessKeyId")) => Some("check the connection's access key id"),
        (ErrorKind::InvalidInput, Some("InvalidRange")) | (ErrorKind::InvalidInput, None) => {
            Some("the range starts at or past the end of the object")
        }
        _ => None,
    }
}

/// `bucket` and `key` in `e`'s context, each unless `e` names its own.
pub(super) fn at(mut e: Error, bucket: Option<&str>, key: Option<&str>) -> Error {
    if let Some(b) = bucket.filter(|_| e.context("bucket").is_none()) {
        e = e.with("bucket", b);
    }
    if let Some(k) = key.filter(|_| e.context("key").is_none()) {
        e = e.with("key", k);
    }
    e
}

/// A gust error not yet named (the hook's scope names it) from an SDK error.
///
/// `endpoint` is the `host:port` requests go to, when the connection names one.
/// The message is for people: a service error's code and message, else the
/// innermost cause's Display (`Connection refused (os error 111)`) — never the
/// SDK's `Debug` of its wrappers. The SDK error stays chained as the source.
pub(super) fn into_error<E>(err: SdkError<E, HttpResponse>, endpoint: Option<&str>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let at = endpoint.map(|e| format!(" {e}")).unwrap_or_default();
    let (kind, message) = match &err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code();
            let what = match (code, ctx.err().message()) {
                (Some(c), Some(m)) if !m.is_empty() && m != "Unknown" => format!("{c}: {m}"),
                (Some(c), _) => c.to_string(),
                // HEAD responses carry no body, hence no code.
                (None, _) if status == 404 => "no such bucket or key (HTTP 404)".to_string(),
                (None, _) => format!("HTTP {status}"),
            };
            return driver_error(classify(code, status), what, err);
        }
        SdkError::TimeoutError(_) => (
            ErrorKind::Timeout,
            format!(
                "no answer from the endpoint{at} in time: {}",
                innermost(&err)
            ),
        ),
        SdkError::DispatchFailure(d) => {
            let cause = innermost(&err);
            // A refused certificate is `Auth`: not transient (the SDK's own
            // attempts have been made by now; no task retry should follow).
            if crate::hooks::scope::certificate_refused(&crate::hooks::scope::chain_text(&err)) {
                let hint = crate::hooks::scope::CERTIFICATE_HINT;
                (
                    ErrorKind::Auth,
                    format!("cannot reach the endpoint{at}: {cause} {hint}"),
                )
            } else {
                let kind = if d.is_timeout() {
                    ErrorKind::Timeout
                } else if d.is_user() {
                    ErrorKind::InvalidInput
                } else {
                    ErrorKind::Unavailable
                };
                (kind, format!("cannot reach the endpoint{at}: {cause}"))
            }
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
    driver_error((kind, None, None), message, err)
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
        let classify = |code, status| classify(code, status).0;
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
    fn hints_say_what_to_check() {
        assert_eq!(
            classify(Some("SignatureDoesNotMatch"), 403).2,
            Some("check the connection's secret key")
        );
        assert_eq!(
            classify(Some("InvalidAccessKeyId"), 403).2,
            Some("check the connection's access key id")
        );
        assert_eq!(
            classify(None, 416).2,
            Some("the range starts at or past the end of the object")
        );
        assert_eq!(classify(Some("NoSuchKey"), 404).2, None);
        assert_eq!(classify(Some("SlowDown"), 503).1, None);
    }

    #[test]
    fn target_context_is_added_only_when_absent() {
        let e = at(
            Error::new(ErrorKind::NotFound, "", "x").with("key", "src"),
            Some("b"),
            Some("dst"),
        );
        assert_eq!(e.context("bucket"), Some("b"));
        assert_eq!(e.context("key"), Some("src"));
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
}
