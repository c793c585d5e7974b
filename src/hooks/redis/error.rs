//! Turning a [`redis::RedisError`] into a typed, redacted [`gust::Error`](Error).

use redis::{ErrorKind as RK, RedisError, ServerErrorKind as SK};

use crate::error::{Error, ErrorKind};

/// The gust kind of a redis error, whether retrying may help, and a hint for the message.
pub(crate) fn classify(e: &RedisError, cluster: bool) -> (ErrorKind, bool, Option<&'static str>) {
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

/// A typed error for `operation` on `conn_id` (and `key`, when there is one), with the
/// redis error chained and every secret of the connection scrubbed.
pub(crate) fn map_err(
    e: RedisError,
    operation: &'static str,
    conn_id: &str,
    key: Option<&str>,
    cluster: bool,
    secrets: &[String],
) -> Error {
    build(e, operation, conn_id, key, cluster, secrets, None)
}

/// A failure to connect to `nodes` (`host:port`, comma-separated): [`map_err`]
/// with the nodes in the message, which the driver's text ("Connection refused
/// (os error 111)") lacks.
pub(crate) fn connect_err(
    e: RedisError,
    conn_id: &str,
    nodes: &str,
    cluster: bool,
    secrets: &[String],
) -> Error {
    build(
        e,
        "redis.connect",
        conn_id,
        None,
        cluster,
        secrets,
        Some(nodes),
    )
}

fn build(
    e: RedisError,
    operation: &'static str,
    conn_id: &str,
    key: Option<&str>,
    cluster: bool,
    secrets: &[String],
    nodes: Option<&str>,
) -> Error {
    let (kind, retryable, hint) = classify(&e, cluster);
    let message = match hint {
        Some(hint) => format!("{e} ({hint})"),
        None => e.to_string(),
    };
    let message = match nodes {
        Some(nodes) => format!("cannot connect to {nodes}: {message}"),
        None => message,
    };
    let mut err = Error::new(kind, operation, message).with("conn_id", conn_id);
    if let Some(key) = key {
        err = err.with("key", key);
    }
    err.with_source(e).with_retryable(retryable).redact(secrets)
}
