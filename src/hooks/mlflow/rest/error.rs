//! Classifying MLflow REST failures into gust's [`ErrorKind`]s.
//!
//! Pure: the store's [`HookScope`](crate::hooks::scope::HookScope) names the
//! operation, adds the conn id (or the tracking URI) and redacts.

use reqwest::StatusCode;
use serde_json::Value;

use crate::connection::strip_userinfo;
use crate::error::{Error, ErrorKind};
use crate::hooks::scope::Classified;

/// The kind of an MLflow `error_code` / HTTP status, given the first line of
/// the server's message. No retry override: `Unavailable` (429, gateway
/// errors, `TEMPORARILY_UNAVAILABLE`) retries, the rest do not.
pub(super) fn classify(code: &str, status: u16, message: &str) -> Classified {
    let kind = match (code, status) {
        ("RESOURCE_DOES_NOT_EXIST" | "NOT_FOUND", _) | (_, 404) => ErrorKind::NotFound,
        // MLflow reports an unknown alias as INVALID_PARAMETER_VALUE "… not found".
        ("INVALID_PARAMETER_VALUE", _) if message.ends_with("not found.") => ErrorKind::NotFound,
        ("RESOURCE_ALREADY_EXISTS", _) => ErrorKind::AlreadyExists,
        ("INVALID_PARAMETER_VALUE" | "BAD_REQUEST" | "INVALID_STATE", _) => ErrorKind::InvalidInput,
        ("UNAUTHENTICATED" | "PERMISSION_DENIED", _) | (_, 401 | 403) => ErrorKind::Auth,
        ("REQUEST_LIMIT_EXCEEDED" | "TEMPORARILY_UNAVAILABLE", _) | (_, 429 | 502 | 503 | 504) => {
            ErrorKind::Unavailable
        }
        (_, 400..=499) => ErrorKind::InvalidInput,
        _ => ErrorKind::Remote,
    };
    (kind, None, None)
}

/// A failed response as a gust error not yet named (the store's scope names
/// it): `CODE: first line of the message` (or `HTTP n: …`), with `status`.
pub(super) fn api_error(status: StatusCode, body: &str) -> Error {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let code = parsed
        .as_ref()
        .and_then(|v| v["error_code"].as_str())
        .unwrap_or("")
        .to_string();
    let message = parsed
        .as_ref()
        .and_then(|v| v["message"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| body.chars().take(200).collect());
    // MLflow appends the failing SQL and driver details after the first line.
    let message = message.lines().next().unwrap_or("").trim().to_string();
    let (kind, _, _) = classify(&code, status.as_u16(), &message);
    let text = if code.is_empty() {
        format!("HTTP {}: {message}", status.as_u16())
    } else {
        format!("{code}: {message}")
    };
    Error::new(kind, "", text).with("status", status.as_u16())
}

/// A request that got no answer, as a gust error not yet named: `Timeout` or
/// `Unavailable`, the causes in the message, credentials stripped from URLs.
pub(super) fn transport_error(e: &reqwest::Error) -> Error {
    let text = error_text(e);
    // A refused certificate is `Auth`: the server is not who it should be,
    // and asking again cannot change that.
    let (kind, hint) = if crate::hooks::scope::certificate_refused(&text) {
        (ErrorKind::Auth, crate::hooks::scope::CERTIFICATE_HINT)
    } else if e.is_timeout() {
        (ErrorKind::Timeout, "")
    } else {
        (ErrorKind::Unavailable, "")
    };
    // reqwest's message names the full request URL, credentials stripped.
    let message = format!("cannot reach the MLflow server: {}", strip_userinfo(&text));
    Error::new(kind, "", format!("{message} {hint}").trim_end().to_string())
}

/// A reqwest error with its causes, `a: b: c`: reqwest's own message ("error sending
/// request for url (…)") leaves out why (a refused connection, a DNS failure, TLS).
pub(super) fn error_text(e: &reqwest::Error) -> String {
    crate::hooks::scope::chain_text(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_map_to_kinds() {
        let kind = |code, status, msg| classify(code, status, msg).0;
        assert_eq!(
            kind("RESOURCE_DOES_NOT_EXIST", 404, ""),
            ErrorKind::NotFound
        );
        assert_eq!(kind("", 404, ""), ErrorKind::NotFound);
        assert_eq!(
            kind("INVALID_PARAMETER_VALUE", 400, "alias champion not found."),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind("INVALID_PARAMETER_VALUE", 400, "bad"),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind("RESOURCE_ALREADY_EXISTS", 400, ""),
            ErrorKind::AlreadyExists
        );
        assert_eq!(kind("INVALID_STATE", 400, ""), ErrorKind::InvalidInput);
        assert_eq!(kind("PERMISSION_DENIED", 403, ""), ErrorKind::Auth);
        assert_eq!(kind("", 401, ""), ErrorKind::Auth);
        assert_eq!(
            kind("TEMPORARILY_UNAVAILABLE", 503, ""),
            ErrorKind::Unavailable
        );
        assert_eq!(kind("", 429, ""), ErrorKind::Unavailable);
        assert_eq!(kind("", 502, ""), ErrorKind::Unavailable);
        assert_eq!(kind("", 418, ""), ErrorKind::InvalidInput);
        assert_eq!(kind("INTERNAL_ERROR", 500, ""), ErrorKind::Remote);
    }

    #[test]
    fn api_errors_keep_the_first_line_and_the_status() {
        let e = api_error(
            StatusCode::BAD_REQUEST,
            r#"{"error_code":"RESOURCE_ALREADY_EXISTS","message":"exists\n[SQL: INSERT ...]"}"#,
        );
        assert_eq!(e.message(), "RESOURCE_ALREADY_EXISTS: exists");
        assert_eq!(e.context("status"), Some("400"));
        assert_eq!(e.operation(), "");
        let e = api_error(StatusCode::BAD_GATEWAY, "<html>bad gateway</html>");
        assert_eq!(e.message(), "HTTP 502: <html>bad gateway</html>");
        assert!(e.is_retryable());
    }
}
