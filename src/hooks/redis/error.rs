//! Classifying [`redis::RedisError`]s into gust's [`ErrorKind`]s.
//!
//! Pure: the hook's [`HookScope`](crate::hooks::scope::HookScope) names the operation,
//! adds the conn id and redacts.

use redis::{ErrorKind as RK, RedisError, ServerErrorKind as SK};

use crate::error::{Error, ErrorKind};
use crate::hooks::scope::{Classified, driver_error};

/// The gust kind of a redis error, whether retrying may help, and a hint for the message.
pub(crate) fn classify(e: &RedisError, cluster: bool) -> Classified {
    let (kind, retryable, hint) = classify_inner(e, cluster);
    (kind, Some(retryable), hint)
}

fn classify_inner(e: &RedisError, cluster: bool) -> (ErrorKind, bool, Option<&'static str>) {
    let code = e.code().unwrap_or_default();
    // The cluster client folds the failures of its initial connections into one
    // `Io` error whose only trace of the cause is its text; an auth failure there
    // must still be `Auth` (and not retried), so the text is checked too.
    let text = e.to_string();
    if matches!(e.kind(), RK::AuthenticationFailed)
        || text.contains("AuthenticationFailed")
        || text.contains("WRONGPASS")
        || matches!(code, "WRONGPASS" | "NOAUTH" | "NOPERM")
        || matches!(e.kind(), RK::Server(SK::NoPerm))
    {
        return (
            ErrorKind::Auth,
            false,
            Some("check the connection's login and password"),
        );
    }
    // rustls refusing the server's certificate (unknown CA, another name,
    // expired) arrives as an I/O error; retrying cannot fix it.
    if text.contains("invalid peer certificate") {
        return (
            ErrorKind::Auth,
            false,
            Some(
                "the server's TLS certificate was refused: trust its CA with extra \
                 ssl_ca_certs, or connect by the name it was issued for",
            ),
        );
    }
    // `cluster=true` on a plain node: discovery's `CLUSTER SLOTS` is refused.
    // Not the caller's data but the connection's extras are wrong.
    if cluster && text.contains("cluster support disabled") {
        return (
            ErrorKind::Config,
            false,
            Some("the server is not a cluster node: remove the connection's extra cluster=true"),
        );
    }
    if code == "WRONGTYPE" {
        return (
            ErrorKind::InvalidInput,
            false,
            Some("the key holds a value of another type"),
        );
    }
    if e.is_timeout() {
        return (ErrorKind::Timeout, true, None);
    }
    match e.kind() {
        RK::Server(SK::Moved | SK::Ask) if !cluster => (
            ErrorKind::Config,
            false,
            Some("the server is a cluster node: set the connection's extra cluster=true"),
        ),
        RK::Server(SK::CrossSlot) => (
            ErrorKind::InvalidInput,
            false,
            Some("keys of one command must share a hash slot: use a hash tag such as {tag}"),
        ),
        RK::Server(
            SK::ClusterDown
            | SK::TryAgain
            | SK::MasterDown
            | SK::BusyLoading
            | SK::ReadOnly
            | SK::Moved
            | SK::Ask,
        ) => (ErrorKind::Unavailable, true, None),
        RK::Server(_) | RK::UnexpectedReturnType | RK::Extension => {
            (ErrorKind::InvalidInput, false, None)
        }
        RK::InvalidClientConfig => (ErrorKind::Config, false, None),
        RK::Io | RK::ClusterConnectionNotFound => (ErrorKind::Unavailable, true, None),
        _ if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() => {
            (ErrorKind::Unavailable, true, None)
        }
        _ => (ErrorKind::Remote, false, None),
    }
}

/// `e` as a gust error not yet named (the scope names it): classified, the
/// hint after the driver's message, `e` chained.
pub(crate) fn into_error(e: RedisError, cluster: bool) -> Error {
    let message = e.to_string();
    driver_error(classify(&e, cluster), message, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(e: RedisError, cluster: bool) -> (ErrorKind, Option<bool>) {
        let (kind, retryable, _) = classify(&e, cluster);
        (kind, retryable)
    }

    #[test]
    fn client_errors_map_to_kinds() {
        assert_eq!(
            kind_of((RK::AuthenticationFailed, "WRONGPASS").into(), false),
            (ErrorKind::Auth, Some(false))
        );
        assert_eq!(
            kind_of((RK::InvalidClientConfig, "bad url").into(), false),
            (ErrorKind::Config, Some(false))
        );
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(
            kind_of(refused.into(), false),
            (ErrorKind::Unavailable, Some(true))
        );
        let slow = std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
        assert_eq!(
            kind_of(slow.into(), false),
            (ErrorKind::Timeout, Some(true))
        );
        assert_eq!(
            kind_of((RK::UnexpectedReturnType, "not a string").into(), false),
            (ErrorKind::InvalidInput, Some(false))
        );
    }

    #[test]
    fn text_only_causes_are_recognised() {
        // The cluster client folds an auth failure into an I/O error's text.
        let folded: RedisError = (
            RK::Io,
            "Failed to connect",
            "AuthenticationFailed".to_string(),
        )
            .into();
        assert_eq!(kind_of(folded, true), (ErrorKind::Auth, Some(false)));
        let tls: RedisError = (
            RK::Io,
            "tls",
            "invalid peer certificate: UnknownIssuer".to_string(),
        )
            .into();
        assert_eq!(kind_of(tls, false).0, ErrorKind::Auth);
        let plain: RedisError = (
            RK::Io,
            "discovery",
            "ERR This instance has cluster support disabled".to_string(),
        )
            .into();
        assert_eq!(kind_of(plain, true), (ErrorKind::Config, Some(false)));
    }

    #[test]
    fn into_error_adds_the_hint() {
        let e = into_error((RK::AuthenticationFailed, "WRONGPASS").into(), false);
        assert!(
            e.message()
                .ends_with("(check the connection's login and password)"),
            "{e}"
        );
        assert_eq!(e.operation(), "");
        assert!(!e.is_retryable());
    }
}
