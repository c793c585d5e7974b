//! The typed messages of the `--comm` socket, as Airflow 3.3.2 defines them in
//! `airflow/sdk/execution_time/comms.py` and `airflow/sdk/api/datamodels/_generated.py`.
//!
//! * [`FromSupervisor`]: the bodies the supervisor sends — [`StartupDetails`]
//!   (first, with frame id 0), [`ConnectionResult`], [`VariableResult`],
//!   [`XComResult`], [`ErrorResponse`], or another type kept as JSON.
//! * [`ToSupervisor`]: the requests the runtime sends, the three terminal
//!   messages ([`SucceedTask`], [`TaskState`], [`RetryTask`]) among them.
//!
//! Decoding ignores fields it does not know (the supervisor's `ti` carries
//! executor fields such as `pool_slots`), and a datetime may be a msgpack
//! Timestamp (the supervisor's form, turned into an RFC 3339 string by the
//! [`codec`](super::codec)) or an ISO-8601 string with or without an offset
//! (none means UTC). Encoding writes datetimes as RFC 3339 strings in UTC,
//! which the supervisor's pydantic models accept (`AwareDatetime` needs the
//! offset, which is why it is always written).

use std::fmt;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};

/// The supervisor schema version gust speaks, written in the bundle manifest
/// (`sdk.supervisor_schema_version`). Airflow 3.3.2 accepts only this one
/// (`airflow/sdk/execution_time/schema/versions/__init__.py`); a bundle naming
/// another is skipped by the coordinator's bundle lookup.
pub const SUPERVISOR_SCHEMA_VERSION: &str = "2026-06-16";

// ---------------------------------------------------------------------------
// Datetimes
// ---------------------------------------------------------------------------

fn parse_datetime(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    // Python's isoformat() also writes a space separator and naive times.
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc());
        }
    }
    Err(format!("{s:?} is not an ISO-8601 datetime"))
}

fn format_datetime(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

mod datetime {
    use super::*;

    pub fn serialize<S: Serializer>(
        t: &DateTime<Utc>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&format_datetime(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse_datetime(&s).map_err(serde::de::Error::custom)
    }
}

mod opt_datetime {
    use super::*;

    pub fn serialize<S: Serializer>(
        t: &Option<DateTime<Utc>>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format_datetime(t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => parse_datetime(&s)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

fn minus_one() -> Option<i64> {
    Some(-1)
}

fn default_queue() -> Option<String> {
    Some("default".into())
}

// ---------------------------------------------------------------------------
// Supervisor -> runtime
// ---------------------------------------------------------------------------

/// The task instance to run (Airflow's `TaskInstance` datamodel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInstance {
    /// The task instance's UUID (a string on the wire).
    pub id: String,
    /// The task id.
    pub task_id: String,
    /// The DAG id.
    pub dag_id: String,
    /// The DAG run id.
    pub run_id: String,
    /// The try being run, from 1.
    pub try_number: i64,
    /// The DAG version's UUID.
    #[serde(default)]
    pub dag_version_id: Option<String>,
    /// The map index: -1 for an unmapped task (the default), `None` if sent as null.
    #[serde(default = "minus_one")]
    pub map_index: Option<i64>,
    /// The worker's hostname, if the executor set it.
    #[serde(default)]
    pub hostname: Option<String>,
    /// The W3C trace context of the scheduler's span.
    #[serde(default)]
    pub context_carrier: Option<Value>,
    /// The queue (`"default"` when absent); the queue selects the coordinator.
    #[serde(default = "default_queue")]
    pub queue: Option<String>,
}

/// Which bundle of DAGs the task belongs to (Airflow's `BundleInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleInfo {
    /// The DAG bundle's name (`dags-folder` for the classic folder).
    pub name: String,
    /// The bundle's version, when versioned.
    #[serde(default)]
    pub version: Option<String>,
}

/// The DAG run of the task (Airflow's `DagRun` datamodel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DagRun {
    /// The DAG id.
    pub dag_id: String,
    /// The run id.
    pub run_id: String,
    /// The logical date; `None` for runs without one (Airflow 3 allows it).
    #[serde(default, with = "opt_datetime")]
    pub logical_date: Option<DateTime<Utc>>,
    /// The start of the data interval.
    #[serde(default, with = "opt_datetime")]
    pub data_interval_start: Option<DateTime<Utc>>,
    /// The end of the data interval.
    #[serde(default, with = "opt_datetime")]
    pub data_interval_end: Option<DateTime<Utc>>,
    /// When the run was due (always set).
    #[serde(with = "datetime")]
    pub run_after: DateTime<Utc>,
    /// When the run started.
    #[serde(default, with = "opt_datetime")]
    pub start_date: Option<DateTime<Utc>>,
    /// When the run ended.
    #[serde(default, with = "opt_datetime")]
    pub end_date: Option<DateTime<Utc>>,
    /// How many times the run was cleared.
    #[serde(default)]
    pub clear_number: Option<i64>,
    /// `scheduled`, `manual`, `backfill`, `asset_triggered`, … (kept as a string).
    pub run_type: String,
    /// `queued`, `running`, `success` or `failed` (kept as a string).
    pub state: String,
    /// The run's `conf` (a JSON object), if any.
    #[serde(default)]
    pub conf: Option<Value>,
    /// Who triggered the run.
    #[serde(default)]
    pub triggering_user_name: Option<String>,
    /// The asset events that triggered the run, as JSON.
    #[serde(default)]
    pub consumed_asset_events: Vec<Value>,
    /// The partition key of a partitioned run.
    #[serde(default)]
    pub partition_key: Option<String>,
    /// The partition date of a partitioned run.
    #[serde(default, with = "opt_datetime")]
    pub partition_date: Option<DateTime<Utc>>,
    /// The run's note.
    #[serde(default)]
    pub note: Option<String>,
    /// The team owning the DAG.
    #[serde(default)]
    pub team_name: Option<String>,
}

/// What the API server returned when the task started (Airflow's `TIRunContext`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TiRunContext {
    /// The DAG run.
    pub dag_run: DagRun,
    /// How many times the task was rescheduled.
    #[serde(default)]
    pub task_reschedule_count: Option<i64>,
    /// The task's `retries` plus its first try: the last `try_number` allowed.
    pub max_tries: i64,
    /// Variables preloaded by the API server.
    #[serde(default)]
    pub variables: Option<Vec<VariableResult>>,
    /// Connections preloaded by the API server.
    #[serde(default)]
    pub connections: Option<Vec<ConnectionResult>>,
    /// The method to resume after a deferral.
    #[serde(default)]
    pub next_method: Option<String>,
    /// The arguments of `next_method` (an object, or a serialized string).
    #[serde(default)]
    pub next_kwargs: Option<Value>,
    /// XCom keys to clear before running.
    #[serde(default)]
    pub xcom_keys_to_clear: Option<Vec<String>>,
    /// Whether a failure of this try should be retried: send [`RetryTask`]
    /// rather than `TaskState{failed}`. `None` (null on the wire) means no.
    #[serde(default)]
    pub should_retry: Option<bool>,
    /// The first start of the task instance, set when resuming from a deferral.
    #[serde(default, with = "opt_datetime")]
    pub start_date: Option<DateTime<Utc>>,
}

impl TiRunContext {
    /// Whether a failure of this try should be retried ([`RetryTask`]).
    pub fn should_retry(&self) -> bool {
        self.should_retry.unwrap_or(false)
    }
}

/// The first message of the supervisor: what to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartupDetails {
    /// The task instance.
    pub ti: TaskInstance,
    /// The DAG file's path relative to its bundle (the Python stub DAG's).
    pub dag_rel_path: String,
    /// The DAG bundle.
    pub bundle_info: BundleInfo,
    /// When this try started.
    #[serde(with = "datetime")]
    pub start_date: DateTime<Utc>,
    /// The run context.
    pub ti_context: TiRunContext,
    /// Sentry settings for Python runtimes (empty for native ones).
    #[serde(default)]
    pub sentry_integration: String,
}

/// A connection (Airflow's `ConnectionResult`). Only the fields that are set
/// are sent. `Debug` hides the password and the extra.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionResult {
    /// The connection id.
    pub conn_id: String,
    /// The connection type (`postgres`, `aws`, …).
    pub conn_type: String,
    /// The host.
    #[serde(default)]
    pub host: Option<String>,
    /// The schema (the database, for SQL connections); `schema` on the wire.
    #[serde(default)]
    pub schema: Option<String>,
    /// The login.
    #[serde(default)]
    pub login: Option<String>,
    /// The password.
    #[serde(default)]
    pub password: Option<String>,
    /// The port.
    #[serde(default)]
    pub port: Option<i64>,
    /// The extra, a JSON object serialized as a string.
    #[serde(default)]
    pub extra: Option<String>,
}

impl fmt::Debug for ConnectionResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("ConnectionResult")
            .field("conn_id", &self.conn_id)
            .field("conn_type", &self.conn_type)
            .field("host", &self.host)
            .field("schema", &self.schema)
            .field("login", &self.login)
            .field("password", &hidden(&self.password))
            .field("port", &self.port)
            .field("extra", &hidden(&self.extra))
            .finish()
    }
}

impl ConnectionResult {
    /// A connection of `conn_type` with only its id set.
    pub fn new(conn_id: impl Into<String>, conn_type: impl Into<String>) -> Self {
        ConnectionResult {
            conn_id: conn_id.into(),
            conn_type: conn_type.into(),
            host: None,
            schema: None,
            login: None,
            password: None,
            port: None,
            extra: None,
        }
    }

    /// The extra parsed as JSON (`None` without one); an extra that is not
    /// JSON is an [`ErrorKind::Config`] error naming the connection, not its content.
    pub fn extra_json(&self) -> Result<Option<Value>> {
        match self.extra.as_deref() {
            None | Some("") => Ok(None),
            Some(s) => serde_json::from_str(s).map(Some).map_err(|_| {
                Error::new(
                    ErrorKind::Config,
                    "airflow.connection_extra",
                    "the connection's extra is not JSON",
                )
                .with("conn_id", &self.conn_id)
            }),
        }
    }
}

/// A variable (Airflow's `VariableResult`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariableResult {
    /// The key.
    pub key: String,
    /// The value (a string; JSON variables are JSON text).
    #[serde(default)]
    pub value: Option<String>,
}

/// An XCom value (Airflow's `XComResult`); a missing XCom comes back as
/// `value: null`, not as an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XComResult {
    /// The XCom key.
    pub key: String,
    /// The value, as JSON.
    #[serde(default)]
    pub value: Value,
}

/// Airflow's `ErrorResponse`, in the body slot ("not found": `CONNECTION_NOT_FOUND`,
/// `VARIABLE_NOT_FOUND`, `PERMISSION_DENIED`…) or in the error slot (`API_SERVER_ERROR`
/// with `detail.status_code` and `detail.message`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// Airflow's `ErrorType` value, e.g. `VARIABLE_NOT_FOUND` (default `GENERIC_ERROR`).
    #[serde(default = "generic_error")]
    pub error: String,
    /// Details: the key or conn id, or the API's status code and message.
    #[serde(default)]
    pub detail: Option<Value>,
}

fn generic_error() -> String {
    "GENERIC_ERROR".into()
}

impl ErrorResponse {
    /// An error of `error` type with `detail`.
    pub fn new(error: impl Into<String>, detail: Value) -> Self {
        ErrorResponse {
            error: error.into(),
            detail: Some(detail),
        }
    }

    /// The `detail.status_code` of an `API_SERVER_ERROR`, if any.
    pub fn status_code(&self) -> Option<u16> {
        self.detail
            .as_ref()?
            .get("status_code")?
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
    }

    /// The gust error for this response to a request of `op`: the kind
    /// follows the error type and, for API errors, the HTTP status
    /// (not found → [`ErrorKind::NotFound`], permission denied, 401 and 403 →
    /// [`ErrorKind::Auth`], 408, 429, 5xx and no status (a network error) →
    /// [`ErrorKind::Unavailable`], retryable). The error type is in the
    /// context as `airflow_error`, so callers can tell `VARIABLE_NOT_FOUND`
    /// from `CONNECTION_NOT_FOUND` (see [`airflow_error`]).
    pub fn to_error(&self, op: &'static str) -> Error {
        let status = self.status_code();
        let kind = match self.error.as_str() {
            e if e.ends_with("_NOT_FOUND") => ErrorKind::NotFound,
            "PERMISSION_DENIED" => ErrorKind::Auth,
            "DAGRUN_ALREADY_EXISTS" => ErrorKind::AlreadyExists,
            "API_SERVER_ERROR" => match status {
                Some(404) => ErrorKind::NotFound,
                Some(401 | 403) => ErrorKind::Auth,
                Some(409) => ErrorKind::AlreadyExists,
                Some(408 | 429) | Some(500..) | None => ErrorKind::Unavailable,
                Some(_) => ErrorKind::Remote,
            },
            _ => ErrorKind::Remote,
        };
        let message = self
            .detail
            .as_ref()
            .and_then(|d| d.get("message"))
            .and_then(Value::as_str)
            .map_or_else(
                || format!("the supervisor answered {}", self.error),
                |m| format!("the supervisor answered {}: {m}", self.error),
            );
        let mut err = Error::new(kind, op, message).with("airflow_error", &self.error);
        if let Some(code) = status {
            err = err.with("status_code", code);
        }
        err
    }
}

/// The Airflow `ErrorType` of an error made by [`ErrorResponse::to_error`]
/// (e.g. `"VARIABLE_NOT_FOUND"`), `None` for other errors.
pub fn airflow_error(err: &Error) -> Option<&str> {
    err.context("airflow_error")
}

/// A body the supervisor sends.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FromSupervisor {
    /// What to run: the first frame, id 0.
    StartupDetails(Box<StartupDetails>),
    /// The answer to [`GetConnection`].
    ConnectionResult(ConnectionResult),
    /// The answer to [`GetVariable`].
    VariableResult(VariableResult),
    /// The answer to [`GetXCom`].
    XComResult(XComResult),
    /// An error, in the body slot (not found) or the error slot.
    ErrorResponse(ErrorResponse),
    /// A body of another type, as JSON.
    Other {
        /// Its `type`.
        type_name: String,
        /// The whole body.
        body: Value,
    },
}

impl FromSupervisor {
    /// The body's `type` discriminator.
    pub fn type_name(&self) -> &str {
        match self {
            FromSupervisor::StartupDetails(_) => "StartupDetails",
            FromSupervisor::ConnectionResult(_) => "ConnectionResult",
            FromSupervisor::VariableResult(_) => "VariableResult",
            FromSupervisor::XComResult(_) => "XComResult",
            FromSupervisor::ErrorResponse(_) => "ErrorResponse",
            FromSupervisor::Other { type_name, .. } => type_name,
        }
    }

    /// Decodes a body (a JSON object with a `type`) from a response frame.
    pub fn from_json(body: Value) -> Result<Self> {
        const OP: &str = "airflow.decode_body";
        let type_name = body_type(OP, &body)?;
        Ok(match type_name.as_str() {
            "StartupDetails" => {
                FromSupervisor::StartupDetails(Box::new(typed(OP, &type_name, body)?))
            }
            "ConnectionResult" => FromSupervisor::ConnectionResult(typed(OP, &type_name, body)?),
            "VariableResult" => FromSupervisor::VariableResult(typed(OP, &type_name, body)?),
            "XComResult" => FromSupervisor::XComResult(typed(OP, &type_name, body)?),
            "ErrorResponse" => FromSupervisor::ErrorResponse(typed(OP, &type_name, body)?),
            _ => FromSupervisor::Other { type_name, body },
        })
    }

    /// The body as JSON, with its `type`.
    pub fn to_json(&self) -> Value {
        match self {
            FromSupervisor::StartupDetails(m) => tagged("StartupDetails", m.as_ref()),
            FromSupervisor::ConnectionResult(m) => tagged("ConnectionResult", &ConnectionWire(m)),
            FromSupervisor::VariableResult(m) => tagged("VariableResult", m),
            FromSupervisor::XComResult(m) => tagged("XComResult", m),
            FromSupervisor::ErrorResponse(m) => tagged("ErrorResponse", m),
            FromSupervisor::Other { body, .. } => body.clone(),
        }
    }
}

/// A connection as the supervisor sends it: only the fields that are set.
struct ConnectionWire<'a>(&'a ConnectionResult);

impl Serialize for ConnectionWire<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let c = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("conn_id", &c.conn_id)?;
        m.serialize_entry("conn_type", &c.conn_type)?;
        for (k, v) in [
            ("host", &c.host),
            ("schema", &c.schema),
            ("login", &c.login),
            ("password", &c.password),
            ("extra", &c.extra),
        ] {
            if let Some(v) = v {
                m.serialize_entry(k, v)?;
            }
        }
        if let Some(p) = c.port {
            m.serialize_entry("port", &p)?;
        }
        m.end()
    }
}

// ---------------------------------------------------------------------------
// Runtime -> supervisor
// ---------------------------------------------------------------------------

/// Asks for a connection; answered by [`ConnectionResult`] or a
/// `CONNECTION_NOT_FOUND` [`ErrorResponse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetConnection {
    /// The connection id.
    pub conn_id: String,
}

/// Asks for a variable; answered by [`VariableResult`] or a
/// `VARIABLE_NOT_FOUND` [`ErrorResponse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetVariable {
    /// The key.
    pub key: String,
}

/// Sets a variable; answered by an empty frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PutVariable {
    /// The key.
    pub key: String,
    /// The value (`None` stores null).
    pub value: Option<String>,
    /// The description.
    pub description: Option<String>,
}

/// Deletes a variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteVariable {
    /// The key.
    pub key: String,
}

/// Asks for an XCom; answered by [`XComResult`] (value null when missing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetXCom {
    /// The XCom key (`return_value` for a task's result).
    pub key: String,
    /// The DAG id.
    pub dag_id: String,
    /// The run id.
    pub run_id: String,
    /// The task that pushed it.
    pub task_id: String,
    /// The map index of the pushing task (`None` or -1: unmapped).
    #[serde(default)]
    pub map_index: Option<i64>,
    /// Whether earlier runs' values count.
    #[serde(default)]
    pub include_prior_dates: bool,
}

/// Pushes an XCom; answered by an empty frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetXCom {
    /// The XCom key (`return_value` for a task's result).
    pub key: String,
    /// The value, as JSON.
    pub value: Value,
    /// The DAG id.
    pub dag_id: String,
    /// The run id.
    pub run_id: String,
    /// The pushing task.
    pub task_id: String,
    /// The pushing task's map index (-1 when unmapped).
    #[serde(default)]
    pub map_index: Option<i64>,
    /// Whether this is the DAG's result.
    #[serde(default)]
    pub dag_result: bool,
    /// For a task whose result maps a downstream task: the result's length.
    #[serde(default)]
    pub mapped_length: Option<i64>,
}

/// Terminal: the task succeeded. Airflow 3.3.2 needs this message: a binary
/// exiting 0 without it leaves the task instance `running`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SucceedTask {
    /// When the task ended.
    #[serde(with = "datetime")]
    pub end_date: DateTime<Utc>,
    /// Assets the task updated (written as `[]`, never omitted).
    #[serde(default)]
    pub task_outlets: Vec<Value>,
    /// Asset events (written as `[]`, never omitted).
    #[serde(default)]
    pub outlet_events: Vec<Value>,
    /// The rendered map index label.
    #[serde(default)]
    pub rendered_map_index: Option<String>,
}

impl SucceedTask {
    /// Success at `end_date`, without outlets.
    pub fn new(end_date: DateTime<Utc>) -> Self {
        SucceedTask {
            end_date,
            task_outlets: Vec::new(),
            outlet_events: Vec::new(),
            rendered_map_index: None,
        }
    }
}

/// The states [`TaskState`] may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TerminalState {
    /// The task failed and must not be retried.
    Failed,
    /// The task skipped itself.
    Skipped,
    /// The task no longer exists (e.g. unknown to this binary).
    Removed,
}

/// Terminal: the task ended failed, skipped or removed. The supervisor
/// reports it to the API server after the process exits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    /// The state.
    pub state: TerminalState,
    /// When the task ended.
    #[serde(default, with = "opt_datetime")]
    pub end_date: Option<DateTime<Utc>>,
    /// The rendered map index label.
    #[serde(default)]
    pub rendered_map_index: Option<String>,
}

/// Terminal: the task failed and should be retried (send it when
/// [`TiRunContext::should_retry`] is true).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryTask {
    /// When the try ended.
    #[serde(with = "datetime")]
    pub end_date: DateTime<Utc>,
    /// The rendered map index label.
    #[serde(default)]
    pub rendered_map_index: Option<String>,
    /// A delay overriding the task's `retry_delay`.
    #[serde(default)]
    pub retry_delay_seconds: Option<f64>,
    /// Why, shown in Airflow.
    #[serde(default)]
    pub retry_reason: Option<String>,
}

/// Asks the supervisor to mask a value in the task's logs; answered by an empty frame.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct MaskSecret {
    /// The secret (a string, or JSON whose strings are masked).
    pub value: Value,
    /// A name hinting what it is.
    #[serde(default)]
    pub name: Option<String>,
}

impl fmt::Debug for MaskSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskSecret")
            .field("value", &"<redacted>")
            .field("name", &self.name)
            .finish()
    }
}

/// A request of the runtime.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ToSupervisor {
    /// See [`GetConnection`].
    GetConnection(GetConnection),
    /// See [`GetVariable`].
    GetVariable(GetVariable),
    /// See [`PutVariable`].
    PutVariable(PutVariable),
    /// See [`DeleteVariable`].
    DeleteVariable(DeleteVariable),
    /// See [`GetXCom`].
    GetXCom(GetXCom),
    /// See [`SetXCom`].
    SetXCom(SetXCom),
    /// See [`MaskSecret`].
    MaskSecret(MaskSecret),
    /// Terminal, see [`SucceedTask`].
    SucceedTask(SucceedTask),
    /// Terminal, see [`TaskState`].
    TaskState(TaskState),
    /// Terminal, see [`RetryTask`].
    RetryTask(RetryTask),
    /// A request of another type, as JSON (its `type` included).
    Other {
        /// Its `type`.
        type_name: String,
        /// The whole body.
        body: Value,
    },
}

impl ToSupervisor {
    /// The body's `type` discriminator.
    pub fn type_name(&self) -> &str {
        match self {
            ToSupervisor::GetConnection(_) => "GetConnection",
            ToSupervisor::GetVariable(_) => "GetVariable",
            ToSupervisor::PutVariable(_) => "PutVariable",
            ToSupervisor::DeleteVariable(_) => "DeleteVariable",
            ToSupervisor::GetXCom(_) => "GetXCom",
            ToSupervisor::SetXCom(_) => "SetXCom",
            ToSupervisor::MaskSecret(_) => "MaskSecret",
            ToSupervisor::SucceedTask(_) => "SucceedTask",
            ToSupervisor::TaskState(_) => "TaskState",
            ToSupervisor::RetryTask(_) => "RetryTask",
            ToSupervisor::Other { type_name, .. } => type_name,
        }
    }

    /// Whether this ends the task: [`SucceedTask`], [`TaskState`] or [`RetryTask`]
    /// (or another of Airflow's state changes: `DeferTask`, `RescheduleTask`,
    /// `AwaitInputTask`, `SkipDownstreamTasks` is not one).
    pub fn is_terminal(&self) -> bool {
        match self {
            ToSupervisor::SucceedTask(_)
            | ToSupervisor::TaskState(_)
            | ToSupervisor::RetryTask(_) => true,
            ToSupervisor::Other { type_name, .. } => {
                matches!(
                    type_name.as_str(),
                    "DeferTask" | "RescheduleTask" | "AwaitInputTask"
                )
            }
            _ => false,
        }
    }

    /// The body as JSON, with its `type`.
    pub fn to_json(&self) -> Value {
        match self {
            ToSupervisor::GetConnection(m) => tagged("GetConnection", m),
            ToSupervisor::GetVariable(m) => tagged("GetVariable", m),
            ToSupervisor::PutVariable(m) => tagged("PutVariable", m),
            ToSupervisor::DeleteVariable(m) => tagged("DeleteVariable", m),
            ToSupervisor::GetXCom(m) => tagged("GetXCom", m),
            ToSupervisor::SetXCom(m) => tagged("SetXCom", m),
            ToSupervisor::MaskSecret(m) => tagged("MaskSecret", m),
            ToSupervisor::SucceedTask(m) => tagged("SucceedTask", m),
            ToSupervisor::TaskState(m) => tagged("TaskState", m),
            ToSupervisor::RetryTask(m) => tagged("RetryTask", m),
            ToSupervisor::Other { body, .. } => body.clone(),
        }
    }

    /// Decodes a request body (the supervisor's side, for tests).
    pub fn from_json(body: Value) -> Result<Self> {
        const OP: &str = "airflow.decode_body";
        let type_name = body_type(OP, &body)?;
        Ok(match type_name.as_str() {
            "GetConnection" => ToSupervisor::GetConnection(typed(OP, &type_name, body)?),
            "GetVariable" => ToSupervisor::GetVariable(typed(OP, &type_name, body)?),
            "PutVariable" => ToSupervisor::PutVariable(typed(OP, &type_name, body)?),
            "DeleteVariable" => ToSupervisor::DeleteVariable(typed(OP, &type_name, body)?),
            "GetXCom" => ToSupervisor::GetXCom(typed(OP, &type_name, body)?),
            "SetXCom" => ToSupervisor::SetXCom(typed(OP, &type_name, body)?),
            "MaskSecret" => ToSupervisor::MaskSecret(typed(OP, &type_name, body)?),
            "SucceedTask" => ToSupervisor::SucceedTask(typed(OP, &type_name, body)?),
            "TaskState" => ToSupervisor::TaskState(typed(OP, &type_name, body)?),
            "RetryTask" => ToSupervisor::RetryTask(typed(OP, &type_name, body)?),
            _ => ToSupervisor::Other { type_name, body },
        })
    }
}

macro_rules! into_request {
    ($($t:ident),*) => {$(
        impl From<$t> for ToSupervisor {
            fn from(m: $t) -> Self {
                ToSupervisor::$t(m)
            }
        }
    )*};
}
into_request!(
    GetConnection,
    GetVariable,
    PutVariable,
    DeleteVariable,
    GetXCom,
    SetXCom,
    MaskSecret,
    SucceedTask,
    TaskState,
    RetryTask
);

fn body_type(op: &'static str, body: &Value) -> Result<String> {
    match body.get("type") {
        Some(Value::String(t)) => Ok(t.clone()),
        Some(_) => Err(Error::new(
            ErrorKind::InvalidInput,
            op,
            "a body whose type is not a string",
        )),
        None if body.is_object() => Err(Error::new(
            ErrorKind::InvalidInput,
            op,
            "a body without a type",
        )),
        None => Err(Error::new(
            ErrorKind::InvalidInput,
            op,
            "a body that is not a map",
        )),
    }
}

fn typed<T: serde::de::DeserializeOwned>(
    op: &'static str,
    type_name: &str,
    body: Value,
) -> Result<T> {
    serde_json::from_value(body).map_err(|e| {
        // serde_json's message names the field and the expected type, never the value.
        Error::new(
            ErrorKind::InvalidInput,
            op,
            format!("a malformed {type_name}: {e}"),
        )
        .with("type", type_name)
    })
}

fn tagged<T: Serialize + ?Sized>(type_name: &str, m: &T) -> Value {
    let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
    match v.as_object_mut() {
        Some(obj) => {
            obj.insert("type".into(), Value::String(type_name.into()));
            v
        }
        None => {
            let mut obj = Map::new();
            obj.insert("type".into(), Value::String(type_name.into()));
            Value::Object(obj)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn startup_json() -> Value {
        json!({
            "type": "StartupDetails",
            "ti": {"id": "0190a1b2-0000-7000-8000-000000000001", "task_id": "extract",
                   "dag_id": "etl", "run_id": "manual__1", "try_number": 2,
                   "dag_version_id": "0190a1b2-0000-7000-8000-000000000002",
                   "pool_slots": 1, "priority_weight": 3},
            "dag_rel_path": "etl.py",
            "bundle_info": {"name": "dags-folder", "version": null},
            "start_date": "2026-01-02T03:04:05.123456Z",
            "ti_context": {
                "dag_run": {"dag_id": "etl", "run_id": "manual__1", "logical_date": null,
                            "data_interval_start": null, "data_interval_end": null,
                            "run_after": "2026-01-02T00:00:00+00:00", "start_date": "2026-01-02 03:00:00",
                            "end_date": null, "run_type": "manual", "state": "running",
                            "conf": {"n": 1}, "consumed_asset_events": [], "partition_key": null,
                            "future_field": true},
                "max_tries": 3, "should_retry": null,
            },
            "sentry_integration": "",
        })
    }

    #[test]
    fn startup_details_decode_with_nulls_defaults_and_unknown_fields() {
        let FromSupervisor::StartupDetails(s) = FromSupervisor::from_json(startup_json()).unwrap()
        else {
            panic!("not StartupDetails")
        };
        assert_eq!(
            s.ti.map_index,
            Some(-1),
            "absent map_index is Airflow's default -1"
        );
        assert_eq!(s.ti.queue.as_deref(), Some("default"));
        assert_eq!(s.ti.try_number, 2);
        assert_eq!(s.ti_context.dag_run.logical_date, None);
        assert_eq!(
            s.ti_context.dag_run.run_after,
            Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap()
        );
        // A naive ISO string is UTC.
        assert_eq!(
            s.ti_context.dag_run.start_date,
            Some(Utc.with_ymd_and_hms(2026, 1, 2, 3, 0, 0).unwrap())
        );
        assert!(!s.ti_context.should_retry());
        assert_eq!(s.ti_context.dag_run.conf, Some(json!({"n": 1})));
        // And back: the same fields, datetimes as RFC 3339 UTC strings.
        let again = FromSupervisor::StartupDetails(s.clone()).to_json();
        assert_eq!(again["start_date"], "2026-01-02T03:04:05.123456Z");
        assert_eq!(again["ti_context"]["dag_run"]["logical_date"], Value::Null);
        assert_eq!(
            FromSupervisor::from_json(again).unwrap(),
            FromSupervisor::StartupDetails(s)
        );
    }

    #[test]
    fn malformed_bodies_are_typed_errors_naming_the_type() {
        let mut bad = startup_json();
        bad["ti_context"]["dag_run"]["run_after"] = json!("yesterday");
        let err = FromSupervisor::from_json(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.context("type"), Some("StartupDetails"));
        for body in [json!([1]), json!({"a": 1}), json!({"type": 5})] {
            assert_eq!(
                FromSupervisor::from_json(body).unwrap_err().kind(),
                ErrorKind::InvalidInput
            );
        }
        let other = FromSupervisor::from_json(json!({"type": "OKResponse", "ok": true})).unwrap();
        assert_eq!(other.type_name(), "OKResponse");
    }

    #[test]
    fn requests_have_airflows_field_names() {
        let end = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let v = ToSupervisor::from(SucceedTask::new(end)).to_json();
        assert_eq!(
            v,
            json!({"type": "SucceedTask", "end_date": "2026-01-02T03:04:05Z",
                   "task_outlets": [], "outlet_events": [], "rendered_map_index": null})
        );
        let v = ToSupervisor::from(PutVariable {
            key: "k".into(),
            value: None,
            description: None,
        })
        .to_json();
        assert_eq!(
            v,
            json!({"type": "PutVariable", "key": "k", "value": null, "description": null})
        );
        let v = ToSupervisor::from(TaskState {
            state: TerminalState::Skipped,
            end_date: None,
            rendered_map_index: None,
        })
        .to_json();
        assert_eq!(v["state"], "skipped");
        for m in [
            ToSupervisor::from(SucceedTask::new(end)),
            ToSupervisor::from(RetryTask {
                end_date: end,
                rendered_map_index: None,
                retry_delay_seconds: Some(1.5),
                retry_reason: Some("boom".into()),
            }),
            ToSupervisor::from(GetXCom {
                key: "return_value".into(),
                dag_id: "d".into(),
                run_id: "r".into(),
                task_id: "t".into(),
                map_index: Some(-1),
                include_prior_dates: false,
            }),
        ] {
            assert_eq!(ToSupervisor::from_json(m.to_json()).unwrap(), m);
        }
        assert!(ToSupervisor::from(SucceedTask::new(end)).is_terminal());
        assert!(!ToSupervisor::from(GetVariable { key: "k".into() }).is_terminal());
    }

    #[test]
    fn error_responses_map_to_kinds() {
        let cases = [
            (
                json!({"error": "VARIABLE_NOT_FOUND", "detail": {"key": "k"}}),
                ErrorKind::NotFound,
                false,
            ),
            (
                json!({"error": "CONNECTION_NOT_FOUND", "detail": {"conn_id": "c"}}),
                ErrorKind::NotFound,
                false,
            ),
            (
                json!({"error": "PERMISSION_DENIED", "detail": {"status_code": 403}}),
                ErrorKind::Auth,
                false,
            ),
            (
                json!({"error": "API_SERVER_ERROR", "detail": {"status_code": 503, "message": "down"}}),
                ErrorKind::Unavailable,
                true,
            ),
            (
                json!({"error": "API_SERVER_ERROR", "detail": {"status_code": null, "message": "refused"}}),
                ErrorKind::Unavailable,
                true,
            ),
            (
                json!({"error": "API_SERVER_ERROR", "detail": {"status_code": 422}}),
                ErrorKind::Remote,
                false,
            ),
            (json!({}), ErrorKind::Remote, false),
        ];
        for (body, kind, retryable) in cases {
            let r: ErrorResponse = serde_json::from_value(body.clone()).unwrap();
            let err = r.to_error("airflow.test");
            assert_eq!(
                (err.kind(), err.is_retryable()),
                (kind, retryable),
                "{body}"
            );
            assert_eq!(airflow_error(&err), Some(r.error.as_str()));
        }
    }

    #[test]
    fn connection_debug_hides_secrets_and_the_wire_omits_unset_fields() {
        let mut c = ConnectionResult::new("pg", "postgres");
        c.password = Some("hunter2".into());
        c.extra = Some(r#"{"token": "abc"}"#.into());
        c.port = Some(5432);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2") && !dbg.contains("abc"), "{dbg}");
        let wire = FromSupervisor::ConnectionResult(c.clone()).to_json();
        assert!(wire.get("host").is_none());
        assert_eq!(wire["port"], 5432);
        assert_eq!(
            FromSupervisor::from_json(wire).unwrap(),
            FromSupervisor::ConnectionResult(c.clone())
        );
        assert_eq!(c.extra_json().unwrap().unwrap()["token"], "abc");
        c.extra = Some("not json: hunter2".into());
        let err = c.extra_json().unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }
}
