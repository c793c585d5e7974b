//! [`HookScope`]: the one way a hook makes its errors.
//!
//! Every hook error must name the hook's operation (`postgres.run`), carry the
//! conn id, keep its retryability, and be scrubbed of the connection's secrets.
//! A hook holds one `HookScope` (instead of a conn id and a secrets list) and
//! builds every error through it: [`error`](HookScope::error) for what the hook
//! itself rejects, [`wrap`](HookScope::wrap) for everything else — a driver's
//! error once its `error.rs` has classified it, or a gust error from a shared
//! helper or a layer below. Forgetting redaction then takes going around the
//! scope on purpose.
//!
//! A driver's `classify` builds its error without an operation
//! (`Error::new(kind, "", message)`): the scope names it, so a driver need not
//! know which of the hook's operations it failed in.

// Each hook uses part of the scope; all of it is used with every hook built.
#![cfg_attr(
    not(all(
        feature = "postgres",
        feature = "mysql",
        feature = "sqlite",
        feature = "redis",
        feature = "s3",
        feature = "mlflow"
    )),
    allow(dead_code)
)]

use std::fmt;
use std::sync::Arc;

use crate::connection::Connection;
use crate::error::{Error, ErrorKind};

/// What a driver's `classify` says of one of its errors: the [`ErrorKind`],
/// whether retrying may help when that differs from the kind's default, and a
/// hint for the message (what to do next).
pub(crate) type Classified = (ErrorKind, Option<bool>, Option<&'static str>);

/// A driver's error as a gust error not yet named (operation `""`, named by
/// [`HookScope::wrap`]): the kind and retry override of `classified`, `message`
/// followed by the hint in parentheses, `source` chained.
pub(crate) fn driver_error(
    (kind, retryable, hint): Classified,
    message: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    let message = message.into();
    let message = match hint {
        Some(hint) => format!("{message} ({hint})"),
        None => message,
    };
    let e = Error::new(kind, "", message).with_source(source);
    match retryable {
        Some(r) => e.with_retryable(r),
        None => e,
    }
}

/// The Display of the last error in `e`'s source chain: the cause itself
/// (`Connection refused (os error 111)`, a DNS or TLS failure), without the
/// wrappers' words ("dispatch failure: io error: client error (Connect): …",
/// mysql_async's repeated "Input/output error: ").
pub(crate) fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// Whether an error's text (its causes included) says the server's TLS
/// certificate was refused (rustls' "invalid peer certificate: …", behind
/// reqwest and the AWS SDK alike). Not transient: retrying cannot help.
#[allow(dead_code)] // used by the HTTP hooks; unused in a build with none of them
pub(crate) fn certificate_refused(text: &str) -> bool {
    text.contains("invalid peer certificate")
}

/// What to add to a refused certificate's message: verification is always on.
#[allow(dead_code)]
pub(crate) const CERTIFICATE_HINT: &str = "(the server's TLS certificate is not trusted: gust \
     always verifies certificates and has no switch to turn that off; reach the server by a \
     name its certificate names, with a certificate from a CA the client trusts)";

/// An error with its causes, `a: b: c`, a cause already at the end of the
/// text not repeated: an HTTP client's own message ("error sending request for
/// url (…)") leaves out why (a refused connection, a DNS failure, TLS).
pub(crate) fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// The system, conn id and secrets of one hook: see the [module docs](self).
///
/// Cheap to clone. `Debug` shows neither the secrets nor their number.
#[derive(Clone)]
pub(crate) struct HookScope {
    /// The operation prefix: `postgres`, `redis`, `mlflow.file`.
    system: &'static str,
    /// What every error names, when it does not already: `("conn_id", id)` for
    /// a hook built from a connection (another key, `tracking_uri`, for one
    /// built without), then the hook's fixed target (a SQLite file's `path`).
    context: Arc<[(&'static str, String)]>,
    secrets: Arc<[String]>,
}

impl HookScope {
    /// The scope of a hook of `system` built from `conn`: its conn id and
    /// [secrets](Connection::secrets).
    pub(crate) fn new(system: &'static str, conn: &Connection) -> Self {
        HookScope::named(system, conn.conn_id(), conn.secrets())
    }

    /// The scope of a hook of `system` known by `conn_id`, scrubbing `secrets`.
    pub(crate) fn named(
        system: &'static str,
        conn_id: impl Into<String>,
        secrets: impl Into<Arc<[String]>>,
    ) -> Self {
        HookScope {
            system,
            context: Arc::new([("conn_id", conn_id.into())]),
            secrets: secrets.into(),
        }
    }

    /// The scope of a hook without a conn id, whose errors name it by `key=value`
    /// instead (a REST store built from a URL names its `tracking_uri`), or by
    /// nothing (`None`, a local file store).
    pub(crate) fn unnamed(
        system: &'static str,
        origin: Option<(&'static str, String)>,
        secrets: impl Into<Arc<[String]>>,
    ) -> Self {
        HookScope {
            system,
            context: origin.into_iter().collect(),
            secrets: secrets.into(),
        }
    }

    /// Adds `key=value` to every error that does not name its own `key` (the
    /// file of a SQLite hook).
    pub(crate) fn with_context(mut self, key: &'static str, value: impl Into<String>) -> Self {
        let mut all = self.context.to_vec();
        all.push((key, value.into()));
        self.context = all.into();
        self
    }

    /// Adds `more` to the secrets scrubbed (a password the configuration holds
    /// besides the connection's).
    pub(crate) fn with_secrets(mut self, more: impl IntoIterator<Item = String>) -> Self {
        let mut all = self.secrets.to_vec();
        for s in more {
            if !s.is_empty() && !all.contains(&s) {
                all.push(s);
            }
        }
        self.secrets = all.into();
        self
    }

    /// The conn id the hook was built from, if any.
    pub(crate) fn conn_id(&self) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| *k == "conn_id")
            .map(|(_, v)| v.as_str())
    }

    /// The system this scope prefixes operations with.
    pub(crate) fn system(&self) -> &'static str {
        self.system
    }

    /// The full name of operation `op`: `system.op`, or `op` itself when it is
    /// already qualified (has a `.`: an operation a caller names, such as the
    /// MLflow hook's `mlflow.download_artifacts` done by the S3 hook).
    pub(crate) fn operation(&self, op: &str) -> String {
        if op.contains('.') {
            op.to_string()
        } else {
            format!("{}.{op}", self.system)
        }
    }

    /// An error the hook itself raises: `kind`, operation `op` (see
    /// [`operation`](Self::operation)), `message`, with the hook's context and
    /// redacted. Add a source *before* redaction with
    /// `scope.wrap(op, Error::new(kind, "", msg).with_source(e))`.
    pub(crate) fn error(&self, kind: ErrorKind, op: &str, message: impl Into<String>) -> Error {
        self.wrap(op, Error::new(kind, "", message))
    }

    /// `e` as an error of this hook's operation `op`.
    ///
    /// * the operation becomes [`operation(op)`](Self::operation) through
    ///   [`Error::with_operation`]: a different earlier operation (a shared SQL
    ///   helper's `sql.bind`, an inner hook's `s3.put_stream`, `io`) is kept as
    ///   `called=…`, an error a driver's `classify` left unnamed is just named;
    /// * the conn id (or the hook's other origin) and fixed target are added,
    ///   each unless `e` names its own;
    /// * the message, the context and the source chain are redacted.
    ///
    /// Kind, message, context, retryability and the exhausted mark are kept.
    pub(crate) fn wrap(&self, op: &str, e: Error) -> Error {
        let mut e = e.with_operation(self.operation(op));
        for (key, value) in self.context.iter() {
            if e.context(key).is_none() {
                e = e.with(key, value);
            }
        }
        e.redact(&self.secrets)
    }
}

impl fmt::Debug for HookScope {
    // Hand-written: the secrets never print, not even how many there are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("HookScope");
        d.field("system", &self.system);
        for (key, value) in self.context.iter() {
            d.field(key, value);
        }
        d.finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> HookScope {
        let conn = Connection::from_uri("pg", "postgres://u:hunter2-pw@h/db").unwrap();
        HookScope::new("postgres", &conn)
    }

    #[test]
    fn error_names_operation_and_conn_id_and_redacts() {
        let e = scope().error(ErrorKind::Auth, "connect", "password hunter2-pw rejected");
        assert_eq!(
            e.to_string(),
            "postgres.connect failed (authentication): password *** rejected [conn_id=pg]"
        );
        assert_eq!(scope().conn_id(), Some("pg"));
    }

    #[test]
    fn wrap_names_an_unnamed_driver_error_without_called() {
        let driver = Error::new(ErrorKind::Unavailable, "", "refused")
            .with_source(std::io::Error::other("postgres://u:hunter2-pw@h refused"))
            .with_retryable(false);
        let e = scope().wrap("run", driver);
        assert_eq!(e.operation(), "postgres.run");
        assert_eq!(e.context("called"), None);
        assert!(!e.is_retryable());
        let source = std::error::Error::source(&e).unwrap().to_string();
        assert!(!source.contains("hunter2-pw"), "{source}");
    }

    #[test]
    fn wrap_keeps_the_earlier_operation_and_an_existing_conn_id() {
        let inner = Error::new(ErrorKind::Unavailable, "s3.put_stream", "HTTP 503")
            .with("conn_id", "aws_default")
            .exhausted();
        let e = scope().wrap("log_artifact", inner);
        assert_eq!(e.operation(), "postgres.log_artifact");
        assert_eq!(e.context("called"), Some("s3.put_stream"));
        assert_eq!(e.context("conn_id"), Some("aws_default"));
        assert!(e.is_exhausted());
        // The same operation: nothing recorded.
        let e = scope().wrap("run", Error::new(ErrorKind::Io, "postgres.run", "x"));
        assert_eq!(e.context_entries().count(), 1);
        // A qualified operation is taken as it is.
        assert_eq!(
            scope().operation("mlflow.download_artifacts"),
            "mlflow.download_artifacts"
        );
    }

    #[test]
    fn unnamed_scopes_name_their_origin_or_nothing() {
        let rest = HookScope::unnamed(
            "mlflow",
            Some(("tracking_uri", "http://h:5000".into())),
            vec!["tok-12345".to_string()],
        );
        let e = rest.error(ErrorKind::Auth, "mlflow.runs/get", "bad tok-12345");
        assert_eq!(e.context("tracking_uri"), Some("http://h:5000"));
        assert_eq!(e.context("conn_id"), None);
        assert_eq!(rest.conn_id(), None);
        assert_eq!(e.message(), "bad ***");
        let local = HookScope::unnamed("mlflow.file", None, Vec::new());
        let e = local.error(ErrorKind::NotFound, "get_run", "no run");
        assert_eq!(
            e.to_string(),
            "mlflow.file.get_run failed (not found): no run"
        );
    }

    #[test]
    fn driver_errors_carry_hint_and_override() {
        let e = driver_error(
            (ErrorKind::Auth, Some(false), Some("check the password")),
            "WRONGPASS",
            std::io::Error::other("x"),
        );
        assert_eq!(e.message(), "WRONGPASS (check the password)");
        assert_eq!(e.operation(), "");
        assert!(!e.is_retryable());
        let e = driver_error(
            (ErrorKind::Timeout, None, None),
            "slow",
            std::io::Error::other("x"),
        );
        assert!(e.is_retryable());
        let sqlite =
            HookScope::named("sqlite", "lite", Vec::new()).with_context("path", "/tmp/a.db");
        let e = sqlite.wrap("run", e);
        assert_eq!(
            e.to_string(),
            "sqlite.run failed (timeout): slow [conn_id=lite, path=/tmp/a.db]"
        );
    }

    #[test]
    fn innermost_is_the_last_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let outer = Error::new(ErrorKind::Unavailable, "x", "wrapper").with_source(io);
        assert_eq!(innermost(&outer), "Connection refused");
        let alone = std::io::Error::other("alone");
        assert_eq!(innermost(&alone), "alone");
    }

    #[test]
    fn debug_hides_secrets() {
        let s = scope().with_secrets(["extra-secret-1".to_string()]);
        let shown = format!("{s:?}");
        assert_eq!(
            shown,
            r#"HookScope { system: "postgres", conn_id: "pg", .. }"#
        );
        let e = s.error(ErrorKind::Auth, "x", "extra-secret-1");
        assert_eq!(e.message(), "***");
    }
}
