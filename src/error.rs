//! The crate's one error type.
//!
//! Every fallible call in gust returns [`Result<T>`](Result). An [`Error`] carries
//!
//! * a [`ErrorKind`] to branch on (not found, auth, timeout, …),
//! * the *operation* that failed (`"connection.from_uri"`, `"sqlite.run"`, …),
//! * the *target* as key/value context (`conn_id`, `bucket`, `key`, `table`, …),
//! * the underlying source error, chained through [`std::error::Error::source`],
//! * whether retrying may help ([`Error::is_retryable`]), and whether a layer
//!   below already retried it and gave up ([`Error::is_exhausted`]).
//!
//! Messages are one line and never contain secrets: code that holds a
//! [`Connection`](crate::Connection) passes its secrets to [`Error::redact`], which
//! scrubs the message, the context and the whole source chain.

use std::borrow::Cow;
use std::fmt;

/// A `Result` whose error is [`gust::Error`](Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, coarsely: the part of an [`Error`] callers branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The object, table, connection, run… does not exist.
    NotFound,
    /// The thing to create exists already (e.g. `replace=false` onto an existing key).
    AlreadyExists,
    /// The caller passed something malformed: a bad URI, an invalid id, a wrong type.
    InvalidInput,
    /// Configuration is missing or inconsistent (an unset `AIRFLOW_CONN_*`, a bad extra).
    Config,
    /// Authentication or authorization failed.
    Auth,
    /// A deadline passed (`execution_timeout`, a client timeout).
    Timeout,
    /// The remote system is unreachable or temporarily unable to serve (5xx, throttling).
    Unavailable,
    /// The remote system rejected the request for another reason.
    Remote,
    /// A template failed to load or render.
    Template,
    /// Work was cancelled before it finished.
    Cancelled,
    /// The operation is not supported by this backend.
    Unsupported,
    /// A task (usually a closure task) reported failure.
    TaskFailed,
    /// A task skipped itself ([`Error::skip`], Airflow's `AirflowSkipException`):
    /// not a failure; the task ends `skipped`.
    Skipped,
    /// Local I/O failed.
    Io,
}

impl ErrorKind {
    /// Short lower-case name, as shown in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Config => "configuration",
            ErrorKind::Auth => "authentication",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Remote => "remote error",
            ErrorKind::Template => "template",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::TaskFailed => "task failed",
            ErrorKind::Skipped => "skipped",
            ErrorKind::Io => "i/o",
        }
    }

    /// Whether an error of this kind is worth retrying when nothing more is known.
    fn retryable_by_default(self) -> bool {
        matches!(self, ErrorKind::Timeout | ErrorKind::Unavailable)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error of every gust operation. See the [module docs](self).
pub struct Error {
    kind: ErrorKind,
    operation: Cow<'static, str>,
    message: String,
    context: Vec<(&'static str, String)>,
    retryable: Option<bool>,
    /// Set by [`Error::exhausted`]: a layer retried this error and gave up.
    exhausted: bool,
    source: Option<BoxError>,
}

impl Error {
    /// A new error of `kind` raised by `operation`, with a one-line `message`.
    pub fn new(
        kind: ErrorKind,
        operation: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Error {
            kind,
            operation: operation.into(),
            message: one_line(message.into()),
            context: Vec::new(),
            retryable: None,
            exhausted: false,
            source: None,
        }
    }

    /// A failure reported by task code that should be retried (if the task has retries left).
    pub fn retryable(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::TaskFailed, "task", message).with_retryable(true)
    }

    /// A failure reported by task code that must not be retried (Airflow's `AirflowFailException`).
    pub fn fail_now(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::TaskFailed, "task", message).with_retryable(false)
    }

    /// Task code skipping its task (Airflow's `AirflowSkipException`): the task
    /// ends `skipped`, is not retried, calls no failure callback, and the tasks
    /// downstream of it are skipped too (Airflow's `all_success` trigger rule).
    /// A run whose tasks all succeeded or were skipped succeeds.
    ///
    /// ```
    /// use gust::{Error, ErrorKind};
    /// let e = Error::skip("no new files today");
    /// assert_eq!(e.kind(), ErrorKind::Skipped);
    /// assert!(!e.is_retryable());
    /// assert_eq!(e.to_string(), "task skipped: no new files today");
    /// ```
    pub fn skip(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Skipped, "task", message).with_retryable(false)
    }

    /// Whether this is a task skipping itself ([`Error::skip`]).
    pub fn is_skip(&self) -> bool {
        self.kind == ErrorKind::Skipped
    }

    /// Adds one piece of target context, e.g. `.with("conn_id", "pg")` or `.with("table", t)`.
    pub fn with(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        self.context.push((key, one_line(value.to_string())));
        self
    }

    /// Chains the underlying error.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Overrides whether retrying may help (by default only timeouts and unavailability are).
    ///
    /// An explicit choice replaces what was known before, so it also clears the
    /// [exhausted](Self::exhausted) mark.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = Some(retryable);
        self.exhausted = false;
        self
    }

    /// Marks a retryable error as *exhausted*: the layer returning it retried it
    /// and gave up (OpenDAL's `set_persistent`). From then on
    /// [`is_retryable`](Self::is_retryable) is `false`, so the layers above do
    /// not multiply the attempts: the task loop retries an exhausted error only
    /// with [`TaskOptions::retry_exhausted`](crate::TaskOptions::retry_exhausted).
    /// See [`gust::retry`](crate::retry) for who owns patience.
    ///
    /// A layer that retries calls this when it runs out of attempts, and adds
    /// how many it made: `e.exhausted().with("attempts", 4)`. An error that was
    /// not retryable is returned unchanged: there was nothing to give up on.
    ///
    /// ```
    /// use gust::{Error, ErrorKind};
    ///
    /// let e = Error::new(ErrorKind::Unavailable, "mlflow.runs/get", "HTTP 503")
    ///     .exhausted()
    ///     .with("attempts", 4);
    /// assert!(e.is_exhausted() && !e.is_retryable());
    /// assert_eq!(
    ///     e.to_string(),
    ///     "mlflow.runs/get failed (unavailable, retries exhausted): HTTP 503 [attempts=4]"
    /// );
    /// ```
    pub fn exhausted(mut self) -> Self {
        if self.is_retryable() {
            self.exhausted = true;
        }
        self
    }

    /// Takes `from`'s retryability and [exhausted](Self::exhausted) mark, for
    /// code that builds a new error around another one (usually with `from` as
    /// its [source](Self::with_source)): a rebuilt error must not become
    /// retryable again after a layer gave up on it, nor lose an override.
    pub fn with_retry_state_of(mut self, from: &Error) -> Self {
        self.retryable = from.retryable;
        self.exhausted = from.exhausted;
        self
    }

    /// Replaces the operation, keeping the previous one as the context entry
    /// `called=<old operation>` (OpenDAL's `with_operation`): a layer that wraps
    /// an error of the layer below names its own operation without rebuilding
    /// the error, so kind, message, context, source, retryability and the
    /// [exhausted](Self::exhausted) mark all stay as they were. An empty previous
    /// operation (an error not yet attributed) is not kept, nor one equal to `op`.
    ///
    /// ```
    /// use gust::{Error, ErrorKind};
    ///
    /// let e = Error::new(ErrorKind::NotFound, "s3.get_object", "NoSuchKey")
    ///     .with("key", "a/b")
    ///     .with_operation("mlflow.download_artifacts");
    /// assert_eq!(e.operation(), "mlflow.download_artifacts");
    /// assert_eq!(e.context("called"), Some("s3.get_object"));
    /// assert_eq!(
    ///     e.to_string(),
    ///     "mlflow.download_artifacts failed (not found): NoSuchKey [key=a/b, called=s3.get_object]"
    /// );
    /// ```
    pub fn with_operation(mut self, operation: impl Into<Cow<'static, str>>) -> Self {
        let operation = operation.into();
        if self.operation != operation {
            let old = std::mem::replace(&mut self.operation, operation);
            if !old.is_empty() {
                self.context.push(("called", old.into_owned()));
            }
        }
        self
    }

    /// Rewrites the message (say, to prefix where the failure happened), keeping
    /// everything else; the result is made one line like any message.
    #[cfg_attr(
        not(any(
            feature = "postgres",
            feature = "mysql",
            feature = "sqlite",
            feature = "redis",
            feature = "s3"
        )),
        allow(dead_code)
    )]
    pub(crate) fn map_message(mut self, f: impl FnOnce(&str) -> String) -> Self {
        self.message = one_line(f(&self.message));
        self
    }

    /// The coarse kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operation that failed, e.g. `"connection.from_uri"`.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The one-line message, without operation or context.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The value of a context key (`"conn_id"`, `"table"`, …), if set.
    pub fn context(&self, key: &str) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every context entry, in the order they were added (a key may appear more
    /// than once; [`context`](Self::context) returns the first).
    pub fn context_entries(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        self.context.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// Whether retrying the operation may succeed *and* no layer has retried it
    /// already: `false` for an [exhausted](Self::exhausted) error, so a loop that
    /// retries on `is_retryable()` never compounds with the layer below it.
    pub fn is_retryable(&self) -> bool {
        !self.exhausted
            && self
                .retryable
                .unwrap_or_else(|| self.kind.retryable_by_default())
    }

    /// Whether a layer below retried this (transient) error and gave up; see
    /// [`exhausted`](Self::exhausted). Such an error is not
    /// [retryable](Self::is_retryable), but retrying it later may still succeed,
    /// which is what [`TaskOptions::retry_exhausted`](crate::TaskOptions::retry_exhausted)
    /// opts in to.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted
    }

    /// Removes every occurrence of each secret from the message, the context and the
    /// whole source chain (which is flattened to text so no un-scrubbed error survives).
    ///
    /// Hooks call this with [`Connection::secrets`](crate::Connection::secrets) before an
    /// error leaves them, so a driver that echoes a DSN cannot leak a password.
    ///
    /// As Airflow's `min_length_masked_secret`, a secret shorter than
    /// [`MIN_MASKED_SECRET_LEN`] is masked only where it stands as a URL's password
    /// (`://user:a@host`, or percent-encoded `%3Aa%40`) or as a lone token user
    /// (`https://a@host`): masking every `a` would mangle the server's own text and,
    /// by the pattern of the stars, reveal the secret. The `conn_id` context is an
    /// identifier, never a secret, and is left as it is.
    pub fn redact<S: AsRef<str>>(mut self, secrets: &[S]) -> Self {
        let secrets: Vec<&str> = secrets
            .iter()
            .map(AsRef::as_ref)
            .filter(|s| !s.is_empty())
            .collect();
        if secrets.is_empty() {
            return self;
        }
        self.message = mask(&self.message, &secrets);
        for (k, v) in &mut self.context {
            if *k != "conn_id" {
                *v = mask(v, &secrets);
            }
        }
        if let Some(source) = self.source.take() {
            self.source = Some(Box::new(RedactedSource::from_chain(&*source, &secrets)));
        }
        self
    }
}

/// Secrets shorter than this (in characters) are masked only in a URL's password (or
/// lone token user) position, as Airflow's `min_length_masked_secret` (default 5). See
/// [`Error::redact`].
pub const MIN_MASKED_SECRET_LEN: usize = 5;

/// A value as an error message shows it: its first 40 characters, then `…`
/// when there are more (a whole row or cell would drown the message).
#[allow(dead_code)] // each user sits behind a feature
pub(crate) fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Replaces each secret in `text` by `***` (a short one only as `:secret@` or a lone
/// token `//secret@`, raw or percent-encoded, see [`MIN_MASKED_SECRET_LEN`]).
pub(crate) fn mask(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    // Longest first, so a secret that contains another is masked whole.
    let mut sorted: Vec<&str> = secrets.to_vec();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in sorted {
        if s.is_empty() || !out.contains(s) {
            continue;
        }
        if s.chars().count() >= MIN_MASKED_SECRET_LEN {
            out = out.replace(s, "***");
        } else {
            // The password position and a lone token user (`https://TOKEN@host`), raw or
            // percent-encoded (as `Connection`'s `Display` prints a URL left in `schema`
            // or `host`).
            out = out
                .replace(&format!(":{s}@"), ":***@")
                .replace(&format!("%3A{s}%40"), "%3A***%40")
                .replace(&format!("//{s}@"), "//***@")
                .replace(&format!("//{s}%40"), "//***%40");
        }
    }
    out
}

/// `value` with every secret of `secrets` masked in its strings (keys
/// included), at any depth, as [`mask`] masks text: what an XCom may hold.
pub(crate) fn redact_value<S: AsRef<str>>(
    value: serde_json::Value,
    secrets: &[S],
) -> serde_json::Value {
    use serde_json::Value;
    let secrets: Vec<&str> = secrets
        .iter()
        .map(AsRef::as_ref)
        .filter(|s| !s.is_empty())
        .collect();
    if secrets.is_empty() {
        return value;
    }
    fn walk(v: Value, secrets: &[&str]) -> Value {
        match v {
            Value::String(s) => Value::String(mask(&s, secrets)),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| walk(v, secrets)).collect())
            }
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (mask(&k, secrets), walk(v, secrets)))
                    .collect(),
            ),
            other => other,
        }
    }
    walk(value, &secrets)
}

fn one_line(s: String) -> String {
    if s.contains(['\n', '\r']) {
        s.split(['\n', '\r'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        s
    }
}

/// A source chain turned into scrubbed text.
#[derive(Debug)]
struct RedactedSource {
    message: String,
    source: Option<Box<RedactedSource>>,
}

impl RedactedSource {
    fn from_chain(err: &(dyn std::error::Error + 'static), secrets: &[&str]) -> Self {
        RedactedSource {
            message: mask(&err.to_string(), secrets),
            source: err
                .source()
                .map(|s| Box::new(RedactedSource::from_chain(s, secrets))),
        }
    }
}

impl fmt::Display for RedactedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RedactedSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl fmt::Display for Error {
    /// `operation failed (kind): message [key=value, …]` on one line, with
    /// `(kind, retries exhausted)` for an [exhausted](Error::exhausted) error. The
    /// source is not repeated here; walk [`source`](std::error::Error::source) for it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exhausted = if self.exhausted {
            ", retries exhausted"
        } else {
            ""
        };
        // Task code's own errors (`Error::retryable`, `Error::fail_now`) have the
        // operation `task` and the kind `task failed`: say it once.
        if self.kind == ErrorKind::Skipped && self.operation == "task" {
            write!(f, "task skipped: {}", self.message)?;
        } else if self.kind == ErrorKind::TaskFailed && self.operation == "task" {
            write!(f, "task failed")?;
            if self.exhausted {
                write!(f, " (retries exhausted)")?;
            }
            write!(f, ": {}", self.message)?;
        } else {
            write!(
                f,
                "{} failed ({}{exhausted}): {}",
                self.operation, self.kind, self.message
            )?;
        }
        if !self.context.is_empty() {
            f.write_str(" [")?;
            for (i, (k, v)) in self.context.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{k}={v}")?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind)
            .field("operation", &self.operation)
            .field("message", &self.message)
            .field("context", &self.context)
            .field("retryable", &self.is_retryable())
            .field("exhausted", &self.exhausted);
        if let Some(s) = &self.source {
            d.field("source", &s.to_string());
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match e.kind() {
            Io::NotFound => ErrorKind::NotFound,
            Io::AlreadyExists => ErrorKind::AlreadyExists,
            Io::PermissionDenied => ErrorKind::Auth,
            Io::TimedOut => ErrorKind::Timeout,
            Io::ConnectionRefused
            | Io::ConnectionReset
            | Io::ConnectionAborted
            | Io::NotConnected
            | Io::BrokenPipe
            | Io::Interrupted => ErrorKind::Unavailable,
            Io::InvalidInput | Io::InvalidData => ErrorKind::InvalidInput,
            _ => ErrorKind::Io,
        };
        Error::new(kind, "io", e.to_string()).with_source(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::new(ErrorKind::InvalidInput, "json", e.to_string()).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_with_context() {
        let e = Error::new(ErrorKind::NotFound, "s3.get_object", "no such key\nat all")
            .with("conn_id", "aws_default")
            .with("key", "a/b");
        assert_eq!(
            e.to_string(),
            "s3.get_object failed (not found): no such key at all [conn_id=aws_default, key=a/b]"
        );
        assert_eq!(e.context("key"), Some("a/b"));
        assert!(!e.is_retryable());
    }

    #[test]
    fn task_codes_own_errors_name_their_kind_once() {
        assert_eq!(
            Error::retryable("flaky upstream").to_string(),
            "task failed: flaky upstream"
        );
        assert_eq!(
            Error::fail_now("bad row").with("row", 3).to_string(),
            "task failed: bad row [row=3]"
        );
        assert_eq!(
            Error::retryable("flaky").exhausted().to_string(),
            "task failed (retries exhausted): flaky"
        );
        // Another operation's task failure keeps its kind.
        assert_eq!(
            Error::new(ErrorKind::TaskFailed, "task.execute", "panicked").to_string(),
            "task.execute failed (task failed): panicked"
        );
    }

    #[test]
    fn retryable_defaults_and_overrides() {
        assert!(Error::new(ErrorKind::Unavailable, "x", "y").is_retryable());
        assert!(Error::new(ErrorKind::Timeout, "x", "y").is_retryable());
        assert!(
            !Error::new(ErrorKind::Unavailable, "x", "y")
                .with_retryable(false)
                .is_retryable()
        );
        assert!(Error::retryable("flaky").is_retryable());
        assert!(!Error::fail_now("bad data").is_retryable());
    }

    #[test]
    fn exhausted_is_not_retryable_and_survives_redact_and_context() {
        let e = Error::new(ErrorKind::Unavailable, "x", "token s3cr3t-token refused")
            .exhausted()
            .with("attempts", 4)
            .redact(&["s3cr3t-token"]);
        assert!(e.is_exhausted());
        assert!(!e.is_retryable());
        assert_eq!(
            e.to_string(),
            "x failed (unavailable, retries exhausted): token *** refused [attempts=4]"
        );
        assert!(format!("{e:?}").contains("exhausted: true"));
        // An explicit decision replaces the mark.
        let again = e.with_retryable(true);
        assert!(again.is_retryable() && !again.is_exhausted());
    }

    #[test]
    fn only_retryable_errors_become_exhausted() {
        let e = Error::new(ErrorKind::NotFound, "x", "y").exhausted();
        assert!(!e.is_exhausted());
        assert_eq!(e.to_string(), "x failed (not found): y");
        let e = Error::fail_now("bad").exhausted();
        assert!(!e.is_exhausted());
        assert!(Error::retryable("flaky").exhausted().is_exhausted());
    }

    #[test]
    fn a_rebuilt_error_keeps_the_retry_state() {
        let inner = Error::new(ErrorKind::Unavailable, "s3.get", "503").exhausted();
        let outer = Error::new(inner.kind(), "mlflow.download", "503").with_retry_state_of(&inner);
        assert!(outer.is_exhausted() && !outer.is_retryable());
        let inner = Error::new(ErrorKind::Unavailable, "s3.get", "503").with_retryable(false);
        let outer = Error::new(inner.kind(), "x", "503").with_retry_state_of(&inner);
        assert!(!outer.is_retryable() && !outer.is_exhausted());
    }

    #[test]
    fn redact_scrubs_message_context_and_source_chain() {
        let inner = std::io::Error::other("connect to postgres://u:hunter2@h failed");
        let e = Error::new(ErrorKind::Auth, "pg.connect", "password hunter2 rejected")
            .with("dsn", "postgres://u:hunter2@h")
            .with_source(inner)
            .redact(&["hunter2"]);
        let mut text = format!("{e} {e:?}");
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            text.push_str(&s.to_string());
            src = s.source();
        }
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("***"));
    }

    #[test]
    fn short_secrets_are_masked_only_as_url_passwords() {
        let e = Error::new(
            ErrorKind::Auth,
            "postgres.connect",
            "error returned from database: password authentication failed (postgres://u:a@h)",
        )
        .with("conn_id", "badinput_a10")
        .redact(&["a"]);
        assert_eq!(
            e.to_string(),
            "postgres.connect failed (authentication): error returned from database: password \
             authentication failed (postgres://u:***@h) [conn_id=badinput_a10]"
        );
    }

    #[test]
    fn short_secrets_are_masked_percent_encoded() {
        // `Connection`'s `Display` percent-encodes a password left in `schema`.
        assert_eq!(
            mask("postgres://h/u%3Apw%40db?x=1 (pw)", &["pw"]),
            "postgres://h/u%3A***%40db?x=1 (pw)"
        );
    }

    #[test]
    fn short_token_users_are_masked() {
        assert_eq!(
            mask("GET https://tok@h/p failed (tok)", &["tok"]),
            "GET https://***@h/p failed (tok)"
        );
        assert_eq!(
            mask("http://https://tok%40h", &["tok"]),
            "http://https://***%40h"
        );
        let e = Error::new(ErrorKind::Auth, "http.get", "401 from https://abc@h").redact(&["abc"]);
        assert_eq!(e.message(), "401 from https://***@h");
    }

    #[test]
    fn with_operation_keeps_everything_and_records_the_old_operation() {
        let inner = std::io::Error::other("refused");
        let e = Error::new(ErrorKind::Unavailable, "s3.get", "HTTP 503")
            .with("bucket", "b")
            .with_source(inner)
            .exhausted()
            .with("max_attempts", 3)
            .with_operation("mlflow.download_artifacts");
        assert_eq!(e.operation(), "mlflow.download_artifacts");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.message(), "HTTP 503");
        assert!(e.is_exhausted() && !e.is_retryable());
        assert_eq!(
            e.context_entries().collect::<Vec<_>>(),
            [("bucket", "b"), ("max_attempts", "3"), ("called", "s3.get")]
        );
        assert_eq!(
            std::error::Error::source(&e).map(ToString::to_string),
            Some("refused".to_string())
        );
        // The same operation again, or an unattributed one, adds nothing.
        let e = e.with_operation("mlflow.download_artifacts");
        assert_eq!(e.context_entries().count(), 3);
        let e = Error::new(ErrorKind::Io, "", "x").with_operation("pg.run");
        assert_eq!(e.operation(), "pg.run");
        assert_eq!(e.context_entries().count(), 0);
        // An override survives too.
        let e = Error::new(ErrorKind::Unavailable, "a", "b")
            .with_retryable(false)
            .with_operation("c");
        assert!(!e.is_retryable() && !e.is_exhausted());
    }

    #[test]
    fn map_message_rewrites_only_the_message() {
        let e = Error::new(ErrorKind::Timeout, "pg.run", "slow")
            .with("conn_id", "pg")
            .map_message(|m| format!("statement 2 of 3 failed: {m}\nmore"));
        assert_eq!(
            e.to_string(),
            "pg.run failed (timeout): statement 2 of 3 failed: slow more [conn_id=pg]"
        );
        assert!(e.is_retryable());
    }

    #[test]
    fn conn_id_is_never_rewritten() {
        let e = Error::new(
            ErrorKind::Auth,
            "postgres.connect",
            "user postgres rejected",
        )
        .with("conn_id", "postgres_default")
        .with("dsn", "postgres://postgres:postgres@h")
        .redact(&["postgres"]);
        assert_eq!(e.context("conn_id"), Some("postgres_default"));
        assert_eq!(e.context("dsn"), Some("***://***:***@h"));
        assert_eq!(e.message(), "user *** rejected");
    }
}
