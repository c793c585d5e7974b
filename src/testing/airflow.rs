//! A fake Airflow supervisor (features `testing` + `airflow`): runs a gust
//! bundle binary as Airflow 3.3's `ExecutableCoordinator` does, without Python.

use std::collections::HashMap;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, BufReader};
use tokio::net::TcpListener;

use crate::airflow::codec::{self, Datetimes};
use crate::airflow::messages::{
    BundleInfo, ConnectionResult, DagRun, ErrorResponse, FromSupervisor, PutVariable, SetXCom,
    StartupDetails, TaskInstance, TiRunContext, ToSupervisor, VariableResult, XComResult,
};
use crate::error::{Error, ErrorKind, Result};

/// How long the log and output readers may take to reach the end of a process
/// that has exited or was killed.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// A fake Airflow 3.3 supervisor for tests of a gust bundle binary.
///
/// [`run`](Self::run) does what Airflow's `_PopenActivitySubprocess` does:
/// binds two loopback listeners, spawns the command with
/// `--comm=127.0.0.1:P1 --logs=127.0.0.1:P2` appended and
/// `AIRFLOW__LOGGING__LOGGING_LEVEL` / `AIRFLOW__LOGGING__NAMESPACE_LEVELS`
/// set, waits for both connections ([`startup_timeout`](Self::startup_timeout),
/// 10 s like Airflow's `task_startup_timeout`), and sends `StartupDetails`
/// (frame id 0). It then answers requests from scripted state as Airflow
/// 3.3.2 answers them:
///
/// * `GetConnection` / `GetVariable`: the scripted value, or the body-slot
///   `ErrorResponse` `CONNECTION_NOT_FOUND` / `VARIABLE_NOT_FOUND`;
/// * `GetXCom`: the scripted or pushed value, `XComResult{value: null}` when missing;
/// * `SetXCom`, `PutVariable`, `MaskSecret`, the terminal messages: an empty answer;
///   pushed XComs and put variables are visible to later requests;
/// * a request type scripted with [`api_error`](Self::api_error): the error-slot
///   `API_SERVER_ERROR` with that HTTP status, as when the API server fails;
/// * any other type: the error-slot "Unhandled request" (status 400).
///
/// It records every request and the JSON lines of the logs socket, waits for
/// the process to exit within [`timeout`](Self::timeout) (killing it when
/// the time is up), and returns an [`AirflowOutcome`].
///
/// [`serve`](Self::serve) plays the same part on streams already connected —
/// a `tokio::io::duplex` pair or a `TcpStream` — for in-process tests.
///
/// ```no_run
/// # async fn t() -> gust::Result<()> {
/// use gust::airflow::messages::ConnectionResult;
/// use gust::testing::FakeSupervisor;
/// use serde_json::json;
///
/// let mut pg = ConnectionResult::new("my_pg", "postgres");
/// pg.host = Some("localhost".into());
/// let outcome = FakeSupervisor::new("etl", "transform")
///     .connection(pg)
///     .variable("threshold", "0.5")
///     .xcom("extract", "return_value", json!({"rows": 3}))
///     .run(tokio::process::Command::new("target/debug/etl"))
///     .await?;
/// assert_eq!(outcome.state(), Some("success"));
/// assert_eq!(outcome.xcom("return_value"), Some(&json!({"rows": 3})));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FakeSupervisor {
    startup: StartupDetails,
    connections: HashMap<String, ConnectionResult>,
    variables: HashMap<String, Option<String>>,
    xcoms: HashMap<XComKey, Value>,
    api_errors: HashMap<String, u16>,
    logging_level: String,
    startup_timeout: Duration,
    timeout: Duration,
}

/// (dag_id, run_id, task_id, key, map_index with None as -1)
type XComKey = (String, String, String, String, i64);

fn xcom_key(
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    key: &str,
    map_index: Option<i64>,
) -> XComKey {
    (
        dag_id.into(),
        run_id.into(),
        task_id.into(),
        key.into(),
        map_index.unwrap_or(-1),
    )
}

/// What a run under [`FakeSupervisor`] did.
#[derive(Debug, Clone, Default)]
pub struct AirflowOutcome {
    /// The terminal message (`SucceedTask`, `TaskState`, `RetryTask`), if one came.
    pub terminal: Option<ToSupervisor>,
    /// Every request, in order, the terminal message included.
    pub requests: Vec<ToSupervisor>,
    /// The XComs pushed (`SetXCom`), in order.
    pub xcoms_set: Vec<SetXCom>,
    /// The variables put (`PutVariable`), in order.
    pub variables_put: Vec<PutVariable>,
    /// The lines of the logs socket: parsed JSON, or a JSON string for a line
    /// that is not JSON.
    pub log_lines: Vec<Value>,
    /// Frames the supervisor could not decode (Airflow logs and drops them, unanswered).
    pub protocol_errors: Vec<String>,
    /// The exit status ([`FakeSupervisor::run`] only).
    pub exit_status: Option<ExitStatus>,
    /// Whether the time ran out (the process was then killed).
    pub timed_out: bool,
    /// The process's standard output.
    pub stdout: Vec<u8>,
    /// The process's standard error.
    pub stderr: Vec<u8>,
}

impl AirflowOutcome {
    /// The state the terminal message sets: `success`, `failed`, `skipped`,
    /// `removed` or `up_for_retry` (`None` without one: in Airflow 3.3.2 such a
    /// task instance stays `running` even after exit code 0).
    pub fn state(&self) -> Option<&'static str> {
        use crate::airflow::messages::TerminalState;
        match self.terminal.as_ref()? {
            ToSupervisor::SucceedTask(_) => Some("success"),
            ToSupervisor::RetryTask(_) => Some("up_for_retry"),
            ToSupervisor::TaskState(s) => Some(match s.state {
                TerminalState::Failed => "failed",
                TerminalState::Skipped => "skipped",
                TerminalState::Removed => "removed",
            }),
            _ => None,
        }
    }

    /// The last value pushed under `key` by the task.
    pub fn xcom(&self, key: &str) -> Option<&Value> {
        self.xcoms_set
            .iter()
            .rev()
            .find(|x| x.key == key)
            .map(|x| &x.value)
    }

    /// The log records whose `event` contains `text`.
    pub fn logs_containing<'a>(&'a self, text: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.log_lines.iter().filter(move |l| {
            l.get("event")
                .and_then(Value::as_str)
                .or_else(|| l.as_str())
                .is_some_and(|e| e.contains(text))
        })
    }
}

impl FakeSupervisor {
    /// A supervisor starting task `task_id` of `dag_id`: try 1 of a manual run
    /// with logical date 2026-01-01T00:00:00Z, no retries, no conf.
    pub fn new(dag_id: impl Into<String>, task_id: impl Into<String>) -> Self {
        let dag_id = dag_id.into();
        let logical_date = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let run_id = format!("manual__{}", logical_date.to_rfc3339());
        let startup = StartupDetails {
            ti: TaskInstance {
                id: "01900000-0000-7000-8000-000000000001".into(),
                task_id: task_id.into(),
                dag_id: dag_id.clone(),
                run_id: run_id.clone(),
                try_number: 1,
                dag_version_id: Some("01900000-0000-7000-8000-000000000002".into()),
                map_index: Some(-1),
                hostname: Some("localhost".into()),
                context_carrier: None,
                queue: Some("gust".into()),
            },
            dag_rel_path: format!("{dag_id}.py"),
            bundle_info: BundleInfo {
                name: "dags-folder".into(),
                version: None,
            },
            start_date: logical_date,
            ti_context: TiRunContext {
                dag_run: DagRun {
                    dag_id,
                    run_id,
                    logical_date: Some(logical_date),
                    data_interval_start: Some(logical_date),
                    data_interval_end: Some(logical_date),
                    run_after: logical_date,
                    start_date: Some(logical_date),
                    end_date: None,
                    clear_number: Some(0),
                    run_type: "manual".into(),
                    state: "running".into(),
                    conf: None,
                    triggering_user_name: None,
                    consumed_asset_events: Vec::new(),
                    partition_key: None,
                    partition_date: None,
                    note: None,
                    team_name: None,
                },
                task_reschedule_count: Some(0),
                max_tries: 0,
                variables: None,
                connections: None,
                next_method: None,
                next_kwargs: None,
                xcom_keys_to_clear: None,
                should_retry: Some(false),
                start_date: None,
            },
            sentry_integration: String::new(),
        };
        FakeSupervisor {
            startup,
            connections: HashMap::new(),
            variables: HashMap::new(),
            xcoms: HashMap::new(),
            api_errors: HashMap::new(),
            logging_level: "INFO".into(),
            startup_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
        }
    }

    /// The run id (default `manual__<logical date>`).
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        let run_id = run_id.into();
        self.startup.ti.run_id = run_id.clone();
        self.startup.ti_context.dag_run.run_id = run_id;
        self
    }

    /// The logical date (`None`: a run without one); the data interval and
    /// `run_after` follow it.
    pub fn logical_date(mut self, logical_date: Option<DateTime<Utc>>) -> Self {
        let run = &mut self.startup.ti_context.dag_run;
        run.logical_date = logical_date;
        run.data_interval_start = logical_date;
        run.data_interval_end = logical_date;
        if let Some(d) = logical_date {
            run.run_after = d;
        }
        self
    }

    /// The try number (from 1).
    pub fn try_number(mut self, try_number: i64) -> Self {
        self.startup.ti.try_number = try_number;
        self
    }

    /// `max_tries` (Airflow sets it to the task's `retries`).
    pub fn max_tries(mut self, max_tries: i64) -> Self {
        self.startup.ti_context.max_tries = max_tries;
        self
    }

    /// Whether a failure of this try should be retried (`ti_context.should_retry`).
    pub fn should_retry(mut self, should_retry: bool) -> Self {
        self.startup.ti_context.should_retry = Some(should_retry);
        self
    }

    /// The DAG run's `conf`.
    pub fn conf(mut self, conf: Value) -> Self {
        self.startup.ti_context.dag_run.conf = Some(conf);
        self
    }

    /// The task instance's map index (-1: unmapped).
    pub fn map_index(mut self, map_index: i64) -> Self {
        self.startup.ti.map_index = Some(map_index);
        self
    }

    /// Replaces the whole `StartupDetails`.
    pub fn with_startup(mut self, startup: StartupDetails) -> Self {
        self.startup = startup;
        self
    }

    /// The `StartupDetails` that will be sent.
    pub fn startup_details(&self) -> &StartupDetails {
        &self.startup
    }

    /// A connection `GetConnection` finds.
    pub fn connection(mut self, connection: ConnectionResult) -> Self {
        self.connections
            .insert(connection.conn_id.clone(), connection);
        self
    }

    /// A variable `GetVariable` finds.
    pub fn variable(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.variables.insert(key.into(), Some(value.into()));
        self
    }

    /// An XCom of another task of the same run (unmapped), e.g. an upstream's
    /// `return_value`.
    pub fn xcom(mut self, task_id: &str, key: &str, value: Value) -> Self {
        let run = &self.startup.ti_context.dag_run;
        self.xcoms.insert(
            xcom_key(&run.dag_id, &run.run_id, task_id, key, None),
            value,
        );
        self
    }

    /// Every request of `request_type` (e.g. `"GetConnection"`, `"SucceedTask"`)
    /// fails as when the API server answers `status_code`: an
    /// `API_SERVER_ERROR` in the error slot.
    pub fn api_error(mut self, request_type: impl Into<String>, status_code: u16) -> Self {
        self.api_errors.insert(request_type.into(), status_code);
        self
    }

    /// `AIRFLOW__LOGGING__LOGGING_LEVEL` for the process (default `INFO`).
    pub fn logging_level(mut self, level: impl Into<String>) -> Self {
        self.logging_level = level.into();
        self
    }

    /// How long the process has to connect to both sockets (default 10 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// How long a whole run may take (default 60 s); then the process is
    /// killed and the outcome is marked [`timed_out`](AirflowOutcome::timed_out).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Spawns `command` with `--comm`/`--logs` appended and supervises it to
    /// its exit. A process that exits or does not connect within the startup
    /// timeout is an error (as in Airflow: the task never started).
    pub async fn run(self, command: impl Into<tokio::process::Command>) -> Result<AirflowOutcome> {
        const OP: &str = "testing.fake_supervisor";
        let io = |what: &'static str| {
            move |e: std::io::Error| Error::new(ErrorKind::Io, OP, what).with_source(e)
        };
        let comm_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io("cannot bind the comm socket"))?;
        let logs_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io("cannot bind the logs socket"))?;
        let comm_addr = comm_listener.local_addr().map_err(io("no comm address"))?;
        let logs_addr = logs_listener.local_addr().map_err(io("no logs address"))?;

        let mut command = command.into();
        command
            .arg(format!("--comm={comm_addr}"))
            .arg(format!("--logs={logs_addr}"))
            .env("AIRFLOW__LOGGING__LOGGING_LEVEL", &self.logging_level)
            .env("AIRFLOW__LOGGING__NAMESPACE_LEVELS", "")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(io("cannot spawn the task process"))?;
        let stdout = child.stdout.take().map(|mut s| {
            tokio::spawn(async move {
                let mut b = Vec::new();
                let _ = s.read_to_end(&mut b).await;
                b
            })
        });
        let stderr = child.stderr.take().map(|mut s| {
            tokio::spawn(async move {
                let mut b = Vec::new();
                let _ = s.read_to_end(&mut b).await;
                b
            })
        });

        let accept = async {
            let (comm, _) = comm_listener.accept().await?;
            let (logs, _) = logs_listener.accept().await?;
            Ok::<_, std::io::Error>((comm, logs))
        };
        let connected = tokio::select! {
            r = tokio::time::timeout(self.startup_timeout, accept) => r,
            status = child.wait() => {
                let status = status.map_err(io("cannot wait for the task process"))?;
                return Err(Error::new(ErrorKind::TaskFailed, OP, format!("the process exited with {status} before connecting")));
            }
        };
        let (comm, logs) = match connected {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(io("accepting the task process failed")(e)),
            Err(_) => {
                let _ = child.kill().await;
                return Err(Error::new(
                    ErrorKind::Timeout,
                    OP,
                    format!(
                        "the process did not connect within {:?}",
                        self.startup_timeout
                    ),
                ));
            }
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        let logs = tokio::spawn(read_log_lines(logs));
        let mut this = self;
        let mut outcome = AirflowOutcome::default();
        match tokio::time::timeout_at(deadline, this.serve_comm(comm, false, &mut outcome)).await {
            Ok(r) => r?,
            Err(_) => outcome.timed_out = true,
        }
        let status = match tokio::time::timeout_at(deadline, child.wait()).await {
            Ok(s) => s.map_err(io("cannot wait for the task process"))?,
            Err(_) => {
                outcome.timed_out = true;
                let _ = child.start_kill();
                child
                    .wait()
                    .await
                    .map_err(io("cannot wait for the task process"))?
            }
        };
        outcome.exit_status = Some(status);
        // The process is gone: its sockets and pipes end (unless a child of it
        // still holds them, hence a bound). After a timeout the deadline has
        // passed, and the readers still need a moment to see the end of a
        // process killed just now: without this grace, what it wrote before
        // the kill could be lost.
        let drain = std::cmp::max(deadline, tokio::time::Instant::now()) + DRAIN_GRACE;
        if let Ok(Ok(lines)) = tokio::time::timeout_at(drain, logs).await {
            outcome.log_lines = lines;
        }
        for (task, out) in [(stdout, &mut outcome.stdout), (stderr, &mut outcome.stderr)] {
            if let Some(task) = task
                && let Ok(Ok(bytes)) = tokio::time::timeout_at(drain, task).await
            {
                *out = bytes;
            }
        }
        Ok(outcome)
    }

    /// Plays the supervisor on connected streams, in process: sends
    /// `StartupDetails`, answers requests until the terminal message has been
    /// answered or the runtime closes `comm`, and collects the lines of `logs`
    /// until it closes (close it when the runtime is done). The whole exchange
    /// is bounded by [`timeout`](Self::timeout).
    pub async fn serve<C, L>(self, comm: C, logs: Option<L>) -> Result<AirflowOutcome>
    where
        C: AsyncRead + AsyncWrite + Unpin + Send,
        L: AsyncRead + Unpin + Send + 'static,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let logs = logs.map(|l| tokio::spawn(read_log_lines(l)));
        let mut this = self;
        let mut outcome = AirflowOutcome::default();
        match tokio::time::timeout_at(deadline, this.serve_comm(comm, true, &mut outcome)).await {
            Ok(r) => r?,
            Err(_) => outcome.timed_out = true,
        }
        if let Some(logs) = logs {
            match tokio::time::timeout_at(deadline, logs).await {
                Ok(Ok(lines)) => outcome.log_lines = lines,
                Ok(Err(_)) => {}
                Err(_) => outcome.timed_out = true,
            }
        }
        Ok(outcome)
    }

    /// Fills `outcome` as it goes, so a timeout keeps what happened before it.
    async fn serve_comm<C: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        mut comm: C,
        stop_after_terminal: bool,
        outcome: &mut AirflowOutcome,
    ) -> Result<()> {
        const OP: &str = "testing.fake_supervisor";
        let startup = FromSupervisor::StartupDetails(Box::new(self.startup.clone())).to_json();
        let payload = codec::encode_response(0, Some(&startup), None, Datetimes::Timestamps)?;
        codec::write_frame(&mut comm, &payload)
            .await
            .map_err(|e| e.with_operation(OP))?;
        loop {
            let payload = match codec::read_frame(&mut comm).await {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) if e.kind() == ErrorKind::Io => break,
                Err(e) => {
                    // An oversized length: the stream cannot be resynchronized.
                    outcome.protocol_errors.push(e.to_string());
                    break;
                }
            };
            let frame = match codec::decode_request(&payload) {
                Ok(f) => f,
                Err(e) => {
                    outcome.protocol_errors.push(e.to_string());
                    continue;
                }
            };
            let request = match frame.body.map(ToSupervisor::from_json) {
                Some(Ok(r)) => r,
                Some(Err(e)) => {
                    outcome.protocol_errors.push(e.to_string());
                    continue;
                }
                None => {
                    outcome
                        .protocol_errors
                        .push(format!("request {} without a body", frame.id));
                    continue;
                }
            };
            tracing::debug!(
                id = frame.id,
                request = request.type_name(),
                "fake supervisor request"
            );
            let (body, error) = self.answer(&request, outcome);
            let terminal = request.is_terminal() && error.is_none();
            if terminal {
                outcome.terminal = Some(request.clone());
            }
            outcome.requests.push(request);
            let payload = codec::encode_response(
                frame.id,
                body.as_ref(),
                error.as_ref(),
                Datetimes::Timestamps,
            )?;
            if codec::write_frame(&mut comm, &payload).await.is_err() {
                break;
            }
            if terminal && stop_after_terminal {
                break;
            }
        }
        Ok(())
    }

    /// The body and error slots Airflow 3.3.2 would send for `request`.
    fn answer(
        &mut self,
        request: &ToSupervisor,
        outcome: &mut AirflowOutcome,
    ) -> (Option<Value>, Option<Value>) {
        if let Some(&status) = self.api_errors.get(request.type_name()) {
            let error = ErrorResponse::new(
                "API_SERVER_ERROR",
                json!({"status_code": status, "message": format!("Server error '{status}' (scripted by FakeSupervisor)")}),
            );
            return (None, Some(FromSupervisor::ErrorResponse(error).to_json()));
        }
        let body = match request {
            ToSupervisor::GetConnection(m) => Some(match self.connections.get(&m.conn_id) {
                Some(c) => FromSupervisor::ConnectionResult(c.clone()),
                None => FromSupervisor::ErrorResponse(ErrorResponse::new(
                    "CONNECTION_NOT_FOUND",
                    json!({"conn_id": m.conn_id}),
                )),
            }),
            ToSupervisor::GetVariable(m) => Some(match self.variables.get(&m.key) {
                Some(v) => FromSupervisor::VariableResult(VariableResult {
                    key: m.key.clone(),
                    value: v.clone(),
                }),
                None => FromSupervisor::ErrorResponse(ErrorResponse::new(
                    "VARIABLE_NOT_FOUND",
                    json!({"key": m.key}),
                )),
            }),
            ToSupervisor::GetXCom(m) => {
                let key = xcom_key(&m.dag_id, &m.run_id, &m.task_id, &m.key, m.map_index);
                Some(FromSupervisor::XComResult(XComResult {
                    key: m.key.clone(),
                    value: self.xcoms.get(&key).cloned().unwrap_or(Value::Null),
                }))
            }
            ToSupervisor::SetXCom(m) => {
                let key = xcom_key(&m.dag_id, &m.run_id, &m.task_id, &m.key, m.map_index);
                self.xcoms.insert(key, m.value.clone());
                outcome.xcoms_set.push(m.clone());
                None
            }
            ToSupervisor::PutVariable(m) => {
                self.variables.insert(m.key.clone(), m.value.clone());
                outcome.variables_put.push(m.clone());
                None
            }
            ToSupervisor::DeleteVariable(m) => {
                self.variables.remove(&m.key);
                return (Some(json!({"type": "OKResponse", "ok": true})), None);
            }
            ToSupervisor::MaskSecret(_)
            | ToSupervisor::SucceedTask(_)
            | ToSupervisor::TaskState(_)
            | ToSupervisor::RetryTask(_) => None,
            _ => {
                let error = ErrorResponse::new(
                    "API_SERVER_ERROR",
                    json!({"status_code": 400, "message": "Unhandled request"}),
                );
                return (None, Some(FromSupervisor::ErrorResponse(error).to_json()));
            }
        };
        (body.map(|b| b.to_json()), None)
    }
}

async fn read_log_lines<L: AsyncRead + Unpin>(logs: L) -> Vec<Value> {
    let mut lines = BufReader::new(logs).lines();
    let mut out = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).unwrap_or(Value::String(line)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::airflow::comm::Comm;
    use crate::airflow::messages::{GetXCom, RetryTask, SucceedTask, TaskState, TerminalState};
    use tokio::io::AsyncWriteExt;

    /// A tiny runtime over the codec: what a gust bundle binary does, in short.
    async fn tiny_runtime<S: AsyncRead + AsyncWrite + Unpin>(comm: S, fail: bool) -> Result<()> {
        let mut comm = Comm::new(comm);
        let s = comm.read_startup().await?;
        let conn = comm.get_connection("my_pg").await?;
        let threshold = comm.get_variable("threshold").await?;
        let missing = comm.get_variable("missing").await.unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        let upstream = comm
            .get_xcom(GetXCom {
                key: "return_value".into(),
                dag_id: s.ti.dag_id.clone(),
                run_id: s.ti.run_id.clone(),
                task_id: "extract".into(),
                map_index: None,
                include_prior_dates: false,
            })
            .await?;
        if fail {
            let end = Utc::now();
            return if s.ti_context.should_retry() {
                comm.send_terminal(RetryTask {
                    end_date: end,
                    rendered_map_index: None,
                    retry_delay_seconds: None,
                    retry_reason: Some("boom".into()),
                })
                .await
            } else {
                comm.send_terminal(TaskState {
                    state: TerminalState::Failed,
                    end_date: Some(end),
                    rendered_map_index: None,
                })
                .await
            };
        }
        comm.set_xcom(SetXCom {
            key: "return_value".into(),
            value: json!({"host": conn.host, "threshold": threshold, "rows": upstream["rows"],
                          "ds": s.ti_context.dag_run.logical_date.map(|d| d.format("%Y-%m-%d").to_string())}),
            dag_id: s.ti.dag_id.clone(),
            run_id: s.ti.run_id.clone(),
            task_id: s.ti.task_id.clone(),
            map_index: s.ti.map_index,
            dag_result: false,
            mapped_length: None,
        })
        .await?;
        comm.send_terminal(SucceedTask::new(Utc::now())).await
    }

    fn supervisor() -> FakeSupervisor {
        let mut pg = ConnectionResult::new("my_pg", "postgres");
        pg.host = Some("db".into());
        FakeSupervisor::new("etl", "transform")
            .connection(pg)
            .variable("threshold", "0.5")
            .xcom("extract", "return_value", json!({"rows": 3}))
    }

    #[tokio::test]
    async fn serves_a_runtime_in_process() {
        let (runtime, sup) = tokio::io::duplex(1 << 16);
        let (mut log_writer, log_reader) = tokio::io::duplex(1 << 12);
        let task = tokio::spawn(async move {
            log_writer
                .write_all(b"{\"event\": \"starting\", \"level\": \"info\"}\nplain text\n")
                .await
                .unwrap();
            drop(log_writer);
            tiny_runtime(runtime, false).await
        });
        let outcome = supervisor().serve(sup, Some(log_reader)).await.unwrap();
        task.await.unwrap().unwrap();
        assert_eq!(outcome.state(), Some("success"));
        assert_eq!(
            outcome.xcom("return_value"),
            Some(&json!({"host": "db", "threshold": "0.5", "rows": 3, "ds": "2026-01-01"}))
        );
        let types: Vec<_> = outcome.requests.iter().map(|r| r.type_name()).collect();
        assert_eq!(
            types,
            [
                "GetConnection",
                "GetVariable",
                "GetVariable",
                "GetXCom",
                "SetXCom",
                "SucceedTask"
            ]
        );
        assert_eq!(
            outcome.log_lines,
            [
                json!({"event": "starting", "level": "info"}),
                json!("plain text")
            ]
        );
        assert_eq!(outcome.logs_containing("start").count(), 1);
        assert!(outcome.protocol_errors.is_empty() && !outcome.timed_out);
    }

    #[tokio::test]
    async fn failures_retry_or_fail_as_should_retry_says() {
        for (should_retry, state) in [(true, "up_for_retry"), (false, "failed")] {
            let (runtime, sup) = tokio::io::duplex(1 << 16);
            let task = tokio::spawn(tiny_runtime(runtime, true));
            let outcome = supervisor()
                .should_retry(should_retry)
                .serve(sup, None::<tokio::io::DuplexStream>)
                .await
                .unwrap();
            task.await.unwrap().unwrap();
            assert_eq!(outcome.state(), Some(state));
            assert!(outcome.xcoms_set.is_empty());
        }
    }

    #[tokio::test]
    async fn a_scripted_api_error_reaches_the_runtime_in_the_error_slot() {
        let (runtime, sup) = tokio::io::duplex(1 << 16);
        let task = tokio::spawn(tiny_runtime(runtime, false));
        let outcome = supervisor()
            .api_error("GetConnection", 503)
            .serve(sup, None::<tokio::io::DuplexStream>)
            .await
            .unwrap();
        let err = task.await.unwrap().unwrap_err();
        assert_eq!(
            (err.kind(), err.context("status_code")),
            (ErrorKind::Unavailable, Some("503"))
        );
        assert_eq!(
            outcome.state(),
            None,
            "the runtime gave up before a terminal message"
        );
    }

    #[tokio::test]
    async fn startup_details_builder_reaches_the_runtime() {
        let (runtime, sup) = tokio::io::duplex(1 << 16);
        let sup_task = tokio::spawn(
            supervisor()
                .run_id("r1")
                .logical_date(None)
                .try_number(2)
                .max_tries(3)
                .conf(json!({"k": [1]}))
                .serve(sup, None::<tokio::io::DuplexStream>),
        );
        let mut comm = Comm::new(runtime);
        let s = comm.read_startup().await.unwrap();
        assert_eq!(
            (
                s.ti.run_id.as_str(),
                s.ti.try_number,
                s.ti_context.max_tries
            ),
            ("r1", 2, 3)
        );
        assert_eq!(s.ti_context.dag_run.logical_date, None);
        assert_eq!(s.ti_context.dag_run.conf, Some(json!({"k": [1]})));
        drop(comm);
        let outcome = sup_task.await.unwrap().unwrap();
        assert!(outcome.requests.is_empty() && outcome.terminal.is_none());
    }

    // --- A real process: this test binary, re-run as the runtime. ---

    /// The child side: does nothing unless spawned by the tests below.
    #[tokio::test]
    async fn runtime_child_process() {
        let Ok(scenario) = std::env::var("GUST_FAKE_RUNTIME_CHILD") else {
            return;
        };
        let arg = |name: &str| {
            std::env::var(name)
                .unwrap()
                .split_once('=')
                .map(|(_, v)| v.to_string())
                .unwrap()
        };
        assert_eq!(
            std::env::var("AIRFLOW__LOGGING__LOGGING_LEVEL").as_deref(),
            Ok("DEBUG")
        );
        let mut logs = tokio::net::TcpStream::connect(arg("GUST_ARG_LOGS"))
            .await
            .unwrap();
        let comm = tokio::net::TcpStream::connect(arg("GUST_ARG_COMM"))
            .await
            .unwrap();
        logs.write_all(b"{\"event\": \"child up\", \"level\": \"info\"}\n")
            .await
            .unwrap();
        match scenario.as_str() {
            "hang" => {
                let mut comm = Comm::new(comm);
                comm.read_startup().await.unwrap();
                std::future::pending::<()>().await;
            }
            _ => tiny_runtime(comm, false).await.unwrap(),
        }
        logs.write_all(b"{\"event\": \"child done\", \"level\": \"info\"}\n")
            .await
            .unwrap();
    }

    #[cfg(unix)]
    fn child(scenario: &str) -> tokio::process::Command {
        // The supervisor appends --comm=… --logs=…, which the test harness would
        // refuse as flags: a shell moves them into the environment.
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c")
            .arg(r#"GUST_ARG_COMM="$1" GUST_ARG_LOGS="$2" exec "$0" --exact testing::airflow::tests::runtime_child_process --nocapture --test-threads=1"#)
            .arg(std::env::current_exe().unwrap())
            .env("GUST_FAKE_RUNTIME_CHILD", scenario);
        c
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn runs_a_process_to_its_exit() {
        let outcome = supervisor()
            .logging_level("DEBUG")
            .run(child("succeed"))
            .await
            .unwrap();
        assert!(
            outcome.exit_status.unwrap().success(),
            "{}",
            String::from_utf8_lossy(&outcome.stdout)
        );
        assert_eq!(outcome.state(), Some("success"));
        assert_eq!(outcome.xcom("return_value").unwrap()["rows"], 3);
        assert_eq!(
            outcome.logs_containing("child").count(),
            2,
            "{:?}",
            outcome.log_lines
        );
        assert!(!outcome.timed_out);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_hanging_process_is_killed_at_the_timeout() {
        let outcome = supervisor()
            .logging_level("DEBUG")
            .timeout(Duration::from_secs(2))
            .run(child("hang"))
            .await
            .unwrap();
        assert!(outcome.timed_out);
        assert!(!outcome.exit_status.unwrap().success());
        assert_eq!(
            outcome.logs_containing("child up").count(),
            1,
            "what came before the timeout is kept"
        );
        assert_eq!(outcome.state(), None);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_process_exiting_before_connecting_is_an_error() {
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c").arg("exit 3");
        let err = supervisor().run(c).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TaskFailed);
        assert!(err.message().contains("before connecting"), "{err}");
    }
}
