//! The per-run, per-task-try [`Context`] an operator executes with.
//!
//! A `Context` knows the DAG run (dag id, run id, logical date, data interval,
//! params), the task try (task id, try number), renders templated fields, hands out
//! connections, and reads and writes XComs.
//!
//! The [`Dag`](crate::Dag) runner builds contexts. To preview what a task would
//! send without running anything (Airflow's `airflow tasks render`), or to unit-test
//! an operator, build one yourself:
//!
//! ```
//! use chrono::TimeZone;
//! use gust::Context;
//!
//! let ctx = Context::builder("credit_score_ct", "extract")
//!     .logical_date(chrono_tz::Asia::Seoul.with_ymd_and_hms(2025, 1, 8, 0, 0, 0).unwrap())
//!     .params(serde_json::json!({"days": 7}))
//!     .build();
//! let sql = ctx.render("DELETE FROM t WHERE base_dt < '{{ macros.ds_add(ds, -(params.days)) }}'")?;
//! assert_eq!(sql, "DELETE FROM t WHERE base_dt < '2025-01-01'");
//! # Ok::<(), gust::Error>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::template::{TemplateEngine, TemplateVars, XComLookup};

/// The XCom key under which an operator's return value is stored.
pub const RETURN_VALUE: &str = "return_value";

/// State shared by every task of one DAG run.
pub(crate) struct RunShared {
    pub(crate) dag_id: String,
    pub(crate) run_id: String,
    pub(crate) logical_date: DateTime<Tz>,
    pub(crate) data_interval_start: DateTime<Tz>,
    pub(crate) data_interval_end: DateTime<Tz>,
    pub(crate) params: Value,
    pub(crate) templates: TemplateEngine,
    xcom: Mutex<HashMap<(String, String), Value>>,
    /// Secrets of every connection handed out during the run; the runner scrubs
    /// them from errors and logs.
    secrets: Mutex<Vec<String>>,
    connections: Mutex<HashMap<String, Connection>>,
    /// Where an XCom this process does not hold comes from: Airflow, when it runs
    /// one task per process. Asked once per `(task_id, key)`.
    remote_xcom: Option<RemoteXCom>,
}

/// Fetches the XCom `(task_id, key)` of the run from outside the process.
pub(crate) type RemoteXCom = Arc<dyn Fn(&str, &str) -> Option<Value> + Send + Sync>;

impl RunShared {
    pub(crate) fn new(
        dag_id: String,
        run_id: String,
        logical_date: DateTime<Tz>,
        data_interval: (DateTime<Tz>, DateTime<Tz>),
        params: Value,
        templates: TemplateEngine,
    ) -> Self {
        RunShared {
            dag_id,
            run_id,
            logical_date,
            data_interval_start: data_interval.0,
            data_interval_end: data_interval.1,
            params,
            templates,
            xcom: Mutex::new(HashMap::new()),
            // Templates can read any variable: the sensitive ones are the
            // run's secrets from the start, scrubbed from errors and XComs.
            secrets: Mutex::new(crate::connection::variable_secrets()),
            connections: Mutex::new(HashMap::new()),
            remote_xcom: None,
        }
    }

    /// This run's XComs that are not in the process come from `remote`.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))]
    pub(crate) fn with_remote_xcom(mut self, remote: RemoteXCom) -> Self {
        self.remote_xcom = Some(remote);
        self
    }

    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut all = lock(&self.secrets).clone();
        // What the secrets backend handed out, to any task of the process.
        for s in crate::connection::handed_out_secrets() {
            if !all.contains(&s) {
                all.push(s);
            }
        }
        all
    }

    pub(crate) fn xcom_get(&self, task_id: &str, key: &str) -> Option<Value> {
        let id = (task_id.to_string(), key.to_string());
        if let Some(v) = lock(&self.xcom).get(&id) {
            return Some(v.clone());
        }
        let remote = self.remote_xcom.as_ref()?;
        // Not under the lock: the fetch is a round trip. A missing XCom is not
        // remembered, since a task may push it later in the run.
        let value = remote(task_id, key)?;
        lock(&self.xcom).entry(id).or_insert(value.clone());
        Some(value)
    }

    /// Every XCom `task_id` pushed, `(key, value)`, keys sorted.
    pub(crate) fn xcoms_of(&self, task_id: &str) -> Vec<(String, Value)> {
        let mut out: Vec<(String, Value)> = lock(&self.xcom)
            .iter()
            .filter(|((t, _), _)| t == task_id)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub(crate) fn xcom_set(&self, task_id: &str, key: &str, value: Value) {
        lock(&self.xcom).insert((task_id.to_string(), key.to_string()), value);
    }
}

impl std::fmt::Debug for RunShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunShared")
            .field("dag_id", &self.dag_id)
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl XComLookup for RunShared {
    fn xcom(&self, task_id: &str, key: &str) -> Option<Value> {
        self.xcom_get(task_id, key)
    }
}

/// A poisoned lock only means another task panicked; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What one task try sees. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    run: Arc<RunShared>,
    task_id: String,
    try_number: u32,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("dag_id", &self.run.dag_id)
            .field("run_id", &self.run.run_id)
            .field("task_id", &self.task_id)
            .field("try_number", &self.try_number)
            .field("logical_date", &self.run.logical_date)
            .finish()
    }
}

impl Context {
    /// A builder for a standalone context: previews and operator unit tests.
    pub fn builder(dag_id: impl Into<String>, task_id: impl Into<String>) -> ContextBuilder {
        ContextBuilder {
            dag_id: dag_id.into(),
            task_id: task_id.into(),
            run_id: None,
            logical_date: None,
            data_interval: None,
            params: Value::Object(Default::default()),
            search_path: Vec::new(),
            try_number: 1,
            xcom: Vec::new(),
            connections: Vec::new(),
        }
    }

    pub(crate) fn new(run: Arc<RunShared>, task_id: String, try_number: u32) -> Self {
        Context {
            run,
            task_id,
            try_number,
        }
    }

    pub(crate) fn shared(&self) -> &Arc<RunShared> {
        &self.run
    }

    /// The DAG's id.
    pub fn dag_id(&self) -> &str {
        &self.run.dag_id
    }

    /// The run's id, e.g. `manual__2025-01-08T00:00:00+09:00`.
    pub fn run_id(&self) -> &str {
        &self.run.run_id
    }

    /// The task's id.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// The try number, starting at 1.
    pub fn try_number(&self) -> u32 {
        self.try_number
    }

    /// The logical date, in the DAG's timezone.
    pub fn logical_date(&self) -> DateTime<Tz> {
        self.run.logical_date
    }

    /// The calendar date of the logical date in the DAG's timezone, `YYYY-MM-DD`.
    pub fn ds(&self) -> String {
        self.run.logical_date.format("%Y-%m-%d").to_string()
    }

    /// Start and end of the run's data interval.
    pub fn data_interval(&self) -> (DateTime<Tz>, DateTime<Tz>) {
        (self.run.data_interval_start, self.run.data_interval_end)
    }

    /// The run's params (the DAG's, overridden by the run's).
    pub fn params(&self) -> &Value {
        &self.run.params
    }

    /// The template variables of this try.
    pub fn template_vars(&self) -> TemplateVars {
        TemplateVars {
            logical_date: self.run.logical_date,
            data_interval_start: self.run.data_interval_start,
            data_interval_end: self.run.data_interval_end,
            dag_id: self.run.dag_id.clone(),
            task_id: self.task_id.clone(),
            run_id: self.run.run_id.clone(),
            try_number: self.try_number,
            params: self.run.params.clone(),
            xcom: Some(self.run.clone()),
        }
    }

    /// Renders a templated field: an inline Jinja template, or a file from the
    /// template search path when the value ends in `.sql`. See [`crate::template`].
    pub fn render(&self, field: &str) -> Result<String> {
        self.run
            .templates
            .render_field(field, &self.template_vars())
            .map_err(|e| e.with("task_id", &self.task_id))
    }

    /// Renders `field` as an inline template even when it ends in `.sql`: for
    /// fields that never name a template file, such as object keys.
    pub fn render_inline(&self, field: &str) -> Result<String> {
        self.run
            .templates
            .render_inline(field, &self.template_vars())
            .map_err(|e| e.with("task_id", &self.task_id))
    }

    /// The connection `conn_id` ([`Connection::get`]: `AIRFLOW_CONN_<CONN_ID>`, else the
    /// secrets backend), looked up once per run.
    /// Its secrets are registered so the runner scrubs them from errors and logs.
    pub fn connection(&self, conn_id: &str) -> Result<Connection> {
        if let Some(c) = lock(&self.run.connections).get(conn_id) {
            return Ok(c.clone());
        }
        let conn = Connection::get(conn_id)?;
        self.register_secrets(conn.secrets());
        lock(&self.run.connections).insert(conn_id.to_string(), conn.clone());
        Ok(conn)
    }

    /// Registers extra secrets to scrub from this run's errors and logs.
    pub fn register_secrets(&self, secrets: impl IntoIterator<Item = String>) {
        let mut all = lock(&self.run.secrets);
        for s in secrets {
            if !s.is_empty() && !all.contains(&s) {
                all.push(s);
            }
        }
    }

    /// The return value of task `task_id` in this run (Airflow's `xcom_pull(task_ids=…)`),
    /// or `None` if it has not run or returned nothing.
    pub fn xcom_pull(&self, task_id: &str) -> Option<Value> {
        self.xcom_pull_key(task_id, RETURN_VALUE)
    }

    /// The XCom `key` pushed by task `task_id` in this run.
    pub fn xcom_pull_key(&self, task_id: &str, key: &str) -> Option<Value> {
        self.run.xcom_get(task_id, key)
    }

    /// Pushes an XCom under this task's id and `key`, with the run's secrets
    /// (of the connections looked up) masked as `***` in its strings.
    pub fn xcom_push(&self, key: &str, value: Value) -> Result<()> {
        if key == RETURN_VALUE {
            return Err(Error::new(
                crate::ErrorKind::InvalidInput,
                "xcom_push",
                "the key return_value is reserved for the task's result; return it instead",
            )
            .with("task_id", &self.task_id));
        }
        // As a return value is: no secret of the run in an XCom.
        let value = crate::error::redact_value(value, &self.run.secrets());
        self.run.xcom_set(&self.task_id, key, value);
        Ok(())
    }
}

/// Builds a standalone [`Context`]; see [`Context::builder`].
#[derive(Debug, Clone)]
pub struct ContextBuilder {
    dag_id: String,
    task_id: String,
    run_id: Option<String>,
    logical_date: Option<DateTime<Tz>>,
    data_interval: Option<(DateTime<Tz>, DateTime<Tz>)>,
    params: Value,
    search_path: Vec<PathBuf>,
    try_number: u32,
    xcom: Vec<(String, String, Value)>,
    connections: Vec<Connection>,
}

impl ContextBuilder {
    /// An upstream task's return value, as if `task_id` had run before
    /// (`ctx.xcom_pull(task_id)`, `{{ ti.xcom_pull(task_ids=…) }}`): for unit
    /// tests of an operator that reads its upstream's result.
    pub fn xcom(self, task_id: impl Into<String>, value: Value) -> Self {
        self.xcom_key(task_id, RETURN_VALUE, value)
    }

    /// An XCom `key` pushed by `task_id`, as if it had run before.
    pub fn xcom_key(
        mut self,
        task_id: impl Into<String>,
        key: impl Into<String>,
        value: Value,
    ) -> Self {
        self.xcom.push((task_id.into(), key.into(), value));
        self
    }

    /// A connection the run finds by its conn id before looking at
    /// `AIRFLOW_CONN_*`: a test's in-process connection (an embedded SQLite
    /// file, a fake endpoint) without touching the environment. Its secrets
    /// are scrubbed like any connection's.
    pub fn connection(mut self, conn: Connection) -> Self {
        self.connections.push(conn);
        self
    }

    /// The logical date (default: now, in UTC).
    pub fn logical_date(mut self, date: DateTime<Tz>) -> Self {
        self.logical_date = Some(date);
        self
    }

    /// The data interval (default: empty, starting and ending at the logical date).
    pub fn data_interval(mut self, start: DateTime<Tz>, end: DateTime<Tz>) -> Self {
        self.data_interval = Some((start, end));
        self
    }

    /// The run id (default: `manual__<logical date>`).
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// The params templates see as `params`.
    pub fn params(mut self, params: Value) -> Self {
        self.params = params;
        self
    }

    /// Adds a directory to the template search path.
    pub fn template_search_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.search_path.push(dir.into());
        self
    }

    /// The try number (default 1).
    pub fn try_number(mut self, n: u32) -> Self {
        self.try_number = n.max(1);
        self
    }

    /// The context.
    pub fn build(self) -> Context {
        let logical_date = self
            .logical_date
            .unwrap_or_else(|| Utc::now().with_timezone(&chrono_tz::UTC));
        let run_id = self.run_id.unwrap_or_else(|| manual_run_id(&logical_date));
        let interval = self.data_interval.unwrap_or((logical_date, logical_date));
        let shared = RunShared::new(
            self.dag_id,
            run_id,
            logical_date,
            interval,
            self.params,
            TemplateEngine::new(self.search_path),
        );
        for (task_id, key, value) in self.xcom {
            shared.xcom_set(&task_id, &key, value);
        }
        let ctx = Context::new(Arc::new(shared), self.task_id, self.try_number);
        for conn in self.connections {
            ctx.register_secrets(conn.secrets());
            lock(&ctx.run.connections).insert(conn.conn_id().to_string(), conn);
        }
        ctx
    }
}

/// Airflow's id of a manually triggered run.
pub(crate) fn manual_run_id(logical_date: &DateTime<Tz>) -> String {
    format!("manual__{}", logical_date.format("%Y-%m-%dT%H:%M:%S%:z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_xcom_and_connections_are_given_to_the_builder() {
        let conn = Connection::from_uri("db", "postgres://u:builder-pw-1@h/db").unwrap();
        let ctx = Context::builder("d", "b")
            .xcom("a", serde_json::json!({"rows": 3}))
            .xcom_key("a", "path", serde_json::json!("s3://b/k"))
            .connection(conn)
            .build();
        assert_eq!(ctx.xcom_pull("a"), Some(serde_json::json!({"rows": 3})));
        assert_eq!(
            ctx.xcom_pull_key("a", "path"),
            Some(serde_json::json!("s3://b/k"))
        );
        assert_eq!(
            ctx.render_inline("{{ ti.xcom_pull(task_ids='a')['rows'] }}")
                .unwrap(),
            "3"
        );
        assert_eq!(ctx.connection("db").unwrap().host(), Some("h"));
        assert!(ctx.shared().secrets().contains(&"builder-pw-1".to_string()));
    }

    #[test]
    fn xcom_push_and_pull() {
        let ctx = Context::builder("d", "a").build();
        ctx.xcom_push("rows", serde_json::json!(3)).unwrap();
        assert_eq!(ctx.xcom_pull_key("a", "rows"), Some(serde_json::json!(3)));
        assert_eq!(ctx.xcom_pull("a"), None);
        assert!(ctx.xcom_push(RETURN_VALUE, Value::Null).is_err());
    }
}
