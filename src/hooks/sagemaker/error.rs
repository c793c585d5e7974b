//! Classifying SageMaker, SageMaker Runtime and CloudWatch Logs failures into
//! gust's [`ErrorKind`]s.
//!
//! Pure: the hook's [`HookScope`](crate::hooks::scope::HookScope) names the
//! operation, adds the conn id and redacts. The AWS error code stays in the
//! error's context as `code`, for the hook to branch on (a describe that finds
//! nothing, a create onto an existing name).

use serde_json::Value;

use crate::error::{Error, ErrorKind};
use crate::hooks::scope::Classified;

/// The kind of an AWS JSON-protocol error `code` (the `__type` without its
/// namespace) with HTTP `status` and `message`. Throttling and 5xx are
/// `Unavailable` (retried); SageMaker reports a missing resource as a
/// `ValidationException` whose message says so, and a duplicate as
/// `ResourceInUse` or a `ValidationException` "Cannot create already existing …".
pub(crate) fn classify(code: &str, status: u16, message: &str) -> Classified {
    let lower = message.to_ascii_lowercase();
    let kind = match code {
        "ThrottlingException"
        | "ThrottledException"
        | "Throttling"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "InternalFailure"
        | "InternalServerError"
        | "InternalServerException"
        | "ModelNotReadyException" => ErrorKind::Unavailable,
        "ResourceNotFound" | "ResourceNotFoundException" => ErrorKind::NotFound,
        "ResourceInUse" | "ResourceAlreadyExistsException" => ErrorKind::AlreadyExists,
        "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "ExpiredTokenException"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "InvalidClientTokenId" => ErrorKind::Auth,
        "ValidationException" | "ValidationError" => {
            if lower.starts_with("cannot create already existing") {
                ErrorKind::AlreadyExists
            } else if lower.starts_with("could not find")
                || lower.contains("requested resource not found")
                || lower.contains("does not exist")
            {
                ErrorKind::NotFound
            } else {
                ErrorKind::InvalidInput
            }
        }
        _ => match status {
            401 | 403 => ErrorKind::Auth,
            404 => ErrorKind::NotFound,
            429 | 500..=599 => ErrorKind::Unavailable,
            400..=499 => ErrorKind::InvalidInput,
            _ => ErrorKind::Remote,
        },
    };
    // A quota is not lifted by waiting a few seconds.
    let retryable = (code == "ResourceLimitExceeded").then_some(false);
    let kind = if code == "ResourceLimitExceeded" {
        ErrorKind::Remote
    } else {
        kind
    };
    (kind, retryable, None)
}

/// A failed AWS JSON-protocol response as the error a
/// [`SageMakerApi`](super::SageMakerApi) returns: its kind from the AWS error
/// code (throttling and 5xx retryable, a missing resource `NotFound`, a
/// duplicate `AlreadyExists`…), the message `Code: message`, and the code and
/// HTTP status in its context (`code`, `status`); the operation is left for
/// the hook to name. The code comes from `error_type` (the
/// `x-amzn-ErrorType` header) or the body's `__type` (`aws.protocol#Code` or
/// `com.amazon…#Code`), the message from `message` / `Message`. A scripted
/// `SageMakerApi` in tests builds its errors with it.
///
/// ```
/// use gust::ErrorKind;
/// use gust::hooks::sagemaker::error_from_response;
///
/// let e = error_from_response(400, None, br#"{"__type": "ThrottlingException", "message": "Rate exceeded"}"#);
/// assert_eq!(e.kind(), ErrorKind::Unavailable);
/// assert_eq!(e.context("code"), Some("ThrottlingException"));
/// ```
pub fn api_error(status: u16, error_type: Option<&str>, body: &[u8]) -> Error {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let raw_code = error_type
        .map(str::to_string)
        .or_else(|| {
            parsed
                .as_ref()
                .and_then(|v| v.get("__type").or(v.get("code")).or(v.get("Code")))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    // `aws.protocol#Code:http://…` → `Code`
    let code = raw_code
        .rsplit('#')
        .next()
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("")
        .to_string();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message").or(v.get("Message")))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            // moto answers an action it lacks with an HTML page.
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.starts_with('<') {
                String::new()
            } else {
                text.chars().take(200).collect()
            }
        });
    let message = message.lines().next().unwrap_or("").trim().to_string();
    let (kind, retryable, _) = classify(&code, status, &message);
    let text = match (code.is_empty(), message.is_empty()) {
        (false, false) => format!("{code}: {message}"),
        (false, true) => code.clone(),
        (true, false) => format!("HTTP {status}: {message}"),
        (true, true) => format!("HTTP {status}"),
    };
    let mut e = Error::new(kind, "", text).with("status", status);
    if !code.is_empty() {
        e = e.with("code", code);
    }
    match retryable {
        Some(r) => e.with_retryable(r),
        None => e,
    }
}

/// A request that got no answer: `Timeout` or `Unavailable`, with the cause
/// (`Auth` for a refused TLS certificate).
pub(crate) fn transport_error(e: &reqwest::Error) -> Error {
    let text = crate::hooks::scope::chain_text(e);
    // A refused certificate is `Auth`: the endpoint is not who it should be,
    // and asking again cannot change that.
    if crate::hooks::scope::certificate_refused(&text) {
        let hint = crate::hooks::scope::CERTIFICATE_HINT;
        return Error::new(
            ErrorKind::Auth,
            "",
            format!("cannot reach AWS: {text} {hint}"),
        );
    }
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Unavailable
    };
    Error::new(kind, "", format!("cannot reach AWS: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(code: &str, status: u16, message: &str) -> ErrorKind {
        classify(code, status, message).0
    }

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(
            kind("ThrottlingException", 400, "Rate exceeded"),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind(
                "ValidationException",
                400,
                "Could not find training job 'arn:…'"
            ),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind("ValidationException", 400, "Requested resource not found"),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(
                "ValidationException",
                400,
                "Cannot create already existing endpoint \"arn\""
            ),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            kind("ValidationException", 400, "1 validation error detected"),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind("ResourceInUse", 400, "Training job names must be unique"),
            ErrorKind::AlreadyExists
        );
        assert_eq!(kind("ResourceNotFound", 400, ""), ErrorKind::NotFound);
        assert_eq!(
            kind("UnrecognizedClientException", 400, ""),
            ErrorKind::Auth
        );
        assert_eq!(kind("", 503, ""), ErrorKind::Unavailable);
        assert_eq!(kind("", 500, ""), ErrorKind::Unavailable);
        assert_eq!(kind("", 418, ""), ErrorKind::InvalidInput);
        let (k, retry, _) = classify("ResourceLimitExceeded", 400, "quota");
        assert_eq!((k, retry), (ErrorKind::Remote, Some(false)));
    }

    #[test]
    fn bodies_give_code_and_message() {
        let e = api_error(
            400,
            None,
            br#"{"__type": "com.amazonaws.sagemaker#ValidationException", "message": "Could not find model \"m\"."}"#,
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.context("code"), Some("ValidationException"));
        assert_eq!(
            e.message(),
            "ValidationException: Could not find model \"m\"."
        );
        let e = api_error(
            400,
            Some("ThrottlingException:http://internal"),
            b"{\"Message\": \"Rate exceeded\"}",
        );
        assert_eq!(e.context("code"), Some("ThrottlingException"));
        assert!(e.is_retryable());
        let e = api_error(
            500,
            None,
            b"<!doctype html><title>500 Internal Server Error</title>",
        );
        assert_eq!(e.message(), "HTTP 500");
        assert!(e.is_retryable());
    }
}
