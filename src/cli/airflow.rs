//! Airflow mode: the binary runs one task instance for Airflow's
//! `ExecutableCoordinator` (features `cli` and `airflow`).
//!
//! Launched with `--comm=HOST:PORT --logs=HOST:PORT`, the binary dials both back,
//! reads `StartupDetails`, and runs one try of the named task of the named DAG:
//!
//! * the run is Airflow's — logical date (or `run_after` for a run without one),
//!   data interval, run id, try number, and `dag_run.conf` as params over the
//!   DAG's — so templates render as `dags test` renders them for that date;
//! * connections and variables not in the environment come from Airflow
//!   (`GetConnection`, `GetVariable`) through a [`SecretsBackend`], the same way
//!   for hooks' `from_conn_id`, `Context::connection` and templates;
//! * XComs of other tasks come from Airflow (`GetXCom`) when the task pulls
//!   them, and every XCom the task pushed, `return_value` included, goes to
//!   Airflow (`SetXCom`), where Python tasks of the same DAG read it;
//! * the try ends with exactly one terminal message: `SucceedTask`; `RetryTask`
//!   when Airflow says a retry is allowed and gust's policy would retry the error
//!   (its kind: Airflow counts the tries); `TaskState` failed otherwise, and
//!   `removed` for a DAG or task this binary does not have;
//! * `tracing` events go to the `--logs` socket as JSON lines, secrets masked.
//!
//! If the supervisor closes the socket while the task runs, the task is
//! cancelled and the process exits with a failure: nobody is left to report to.

use std::future::Future;
use std::net::TcpStream as StdTcpStream;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use tokio::net::TcpStream;

use super::airflow_logs::{AirflowLogs, LogSink};
use crate::airflow::comm::Comm;
use crate::airflow::messages::{
    GetXCom, RetryTask, SetXCom, StartupDetails, SucceedTask, TaskState, TerminalState,
    ToSupervisor,
};
use crate::connection::{SecretsBackend, set_secrets_backend};
use crate::{Connection, Dag, Error, ErrorKind, Result, RunConfig};

/// How long the binary tries to reach the supervisor's sockets (Airflow waits
/// `task_startup_timeout`, 10 s by default, for both).
const CONNECT_WITHIN: Duration = Duration::from_secs(30);

type Job = Box<
    dyn for<'a> FnOnce(&'a mut Comm<TcpStream>) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>
        + Send,
>;

/// A handle on the comm thread, which owns the `--comm` socket: requests from
/// any thread, async or not, one at a time.
#[derive(Clone)]
struct CommHandle {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

fn closed() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "airflow.comm",
        "the connection to Airflow's supervisor is closed",
    )
}

impl CommHandle {
    /// Runs `f` on the comm thread and waits for its result. Blocking: the
    /// round trip is one loopback request, and the callers (templates, the
    /// secrets backend) are synchronous.
    fn call<T: Send + 'static>(
        &self,
        f: impl for<'a> FnOnce(
            &'a mut Comm<TcpStream>,
        ) -> Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>
        + Send
        + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        let job: Job = Box::new(move |comm| {
            Box::pin(async move {
                let _ = tx.send(f(comm).await);
            })
        });
        self.jobs.send(job).map_err(|_| closed())?;
        rx.recv().map_err(|_| closed())?
    }
}

/// Starts the comm thread: connects, reads `StartupDetails`, then serves jobs.
fn start_comm(addr: String) -> Result<(CommHandle, StartupDetails, Option<StdTcpStream>)> {
    let (jobs_tx, mut jobs_rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
    let (startup_tx, startup_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("gust-airflow-comm".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = startup_tx.send(Err(Error::new(
                        ErrorKind::Io,
                        "airflow.comm",
                        e.to_string(),
                    )));
                    return;
                }
            };
            rt.block_on(async move {
                let (mut comm, watch) = match connect_comm(&addr) {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = startup_tx.send(Err(e));
                        return;
                    }
                };
                let startup = comm.read_startup().await;
                let ok = startup.is_ok();
                let _ = startup_tx.send(startup.map(|s| (s, watch)));
                if !ok {
                    return;
                }
                while let Some(job) = jobs_rx.recv().await {
                    job(&mut comm).await;
                }
            });
        })
        .map_err(|e| Error::new(ErrorKind::Io, "airflow.comm", e.to_string()))?;
    let (startup, watch) = startup_rx.recv().map_err(|_| closed())??;
    Ok((CommHandle { jobs: jobs_tx }, startup, watch))
}

/// Dials `--comm` (retrying a refused connection until [`CONNECT_WITHIN`]), and
/// keeps a second handle on the same socket for [`watch_for_close`].
fn connect_comm(addr: &str) -> Result<(Comm<TcpStream>, Option<StdTcpStream>)> {
    let deadline = std::time::Instant::now() + CONNECT_WITHIN;
    let stream = loop {
        match StdTcpStream::connect(addr) {
            Ok(s) => break s,
            Err(e) if std::time::Instant::now() >= deadline => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "airflow.connect",
                    "cannot reach Airflow's supervisor",
                )
                .with("addr", addr)
                .with_source(e));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let watch = stream.try_clone().ok();
    let io = |e: std::io::Error| {
        Error::new(ErrorKind::Io, "airflow.connect", e.to_string()).with("addr", addr)
    };
    stream.set_nodelay(true).map_err(io)?;
    stream.set_nonblocking(true).map_err(io)?;
    let stream = TcpStream::from_std(stream).map_err(io)?;
    Ok((Comm::new(stream), watch))
}

/// Watches a clone of the `--comm` socket for its end while the task runs.
/// `peek` consumes nothing, so the comm thread still reads every answer; the
/// watch ends with the process.
fn watch_for_close(addr_stream: StdTcpStream) -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        loop {
            match addr_stream.peek(&mut byte) {
                // The clone shares the comm socket's non-blocking mode: nothing
                // to read yet is WouldBlock, an answer waiting for the comm
                // thread is Ok(n); either way, look again shortly.
                Ok(n) if n > 0 => std::thread::sleep(Duration::from_millis(50)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                _ => {
                    let _ = tx.send(());
                    return;
                }
            }
        }
    });
    rx
}

/// Airflow's connections and variables, behind gust's secrets backend.
struct AirflowSecrets {
    comm: CommHandle,
}

impl SecretsBackend for AirflowSecrets {
    fn get_connection(&self, conn_id: &str) -> Result<Option<Connection>> {
        let id = conn_id.to_string();
        match self
            .comm
            .call(move |c| Box::pin(async move { c.get_connection(&id).await }))
        {
            Ok(result) => {
                let mut conn = Connection::new(conn_id, &result.conn_type)?;
                if let Some(h) = &result.host {
                    conn = conn.with_host(h);
                }
                if let Some(p) = result.port {
                    let port = u16::try_from(p).map_err(|_| {
                        Error::new(
                            ErrorKind::InvalidInput,
                            "airflow.get_connection",
                            format!("port {p} is out of range"),
                        )
                        .with("conn_id", conn_id)
                    })?;
                    conn = conn.with_port(port);
                }
                if let Some(l) = &result.login {
                    conn = conn.with_login(l);
                }
                if let Some(p) = &result.password {
                    conn = conn.with_password(p);
                }
                if let Some(s) = &result.schema {
                    conn = conn.with_schema(s);
                }
                if let Some(Value::Object(extra)) = result
                    .extra_json()
                    .map_err(|e| e.with("conn_id", conn_id))?
                {
                    conn = conn.with_extra_dejson(extra);
                }
                Ok(Some(conn))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.with("conn_id", conn_id)),
        }
    }

    fn get_variable(&self, key: &str) -> Result<Option<String>> {
        let k = key.to_string();
        match self
            .comm
            .call(move |c| Box::pin(async move { c.get_variable(&k).await }))
        {
            Ok(v) => Ok(v),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.with("key", key)),
        }
    }
}

/// Connects `--logs` in the background; events logged meanwhile wait in `sink`.
fn connect_logs(addr: String, sink: Arc<LogSink>) {
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + CONNECT_WITHIN;
        loop {
            match StdTcpStream::connect(&addr) {
                Ok(s) => {
                    sink.connect(s);
                    return;
                }
                Err(e) if std::time::Instant::now() >= deadline => {
                    eprintln!("gust: cannot reach Airflow's log socket {addr}: {e}");
                    return;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    });
}

fn install_logging(sink: Arc<LogSink>) {
    use tracing_subscriber::prelude::*;
    let env_secrets = crate::connection::variable_secrets();
    let env_conns: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| {
            let id = k.strip_prefix("AIRFLOW_CONN_")?.to_lowercase();
            Connection::from_env(&id).ok()
        })
        .flat_map(|c| c.secrets())
        .collect();
    let secrets = Arc::new(move || {
        let mut all = crate::connection::handed_out_secrets();
        all.extend(env_secrets.iter().cloned());
        all.extend(env_conns.iter().cloned());
        all
    });
    let _ = tracing_subscriber::registry()
        .with(AirflowLogs::new(sink, secrets))
        .try_init();
}

/// The run Airflow describes, for `dag`.
fn run_config(dag: &Dag, startup: &StartupDetails) -> RunConfig {
    let tz = dag.timezone();
    let run = &startup.ti_context.dag_run;
    // Airflow 3 runs without a logical date (a manual trigger, an asset event)
    // are placed at run_after, as Airflow's own context does for `ds`.
    let logical = run.logical_date.unwrap_or(run.run_after).with_timezone(&tz);
    let mut config = RunConfig::new(logical);
    config.run_id = Some(startup.ti.run_id.clone());
    config.params = run
        .conf
        .clone()
        .filter(|c| c.as_object().is_some_and(|m| !m.is_empty()));
    if let (Some(a), Some(b)) = (run.data_interval_start, run.data_interval_end) {
        config.data_interval = Some((a.with_timezone(&tz), b.with_timezone(&tz)));
    }
    config
}

/// Sends the terminal message; whether the supervisor took it.
fn finish(comm: &CommHandle, message: ToSupervisor) -> bool {
    let kind = message.type_name().to_string();
    match comm.call(move |c| Box::pin(async move { c.send_terminal(message).await })) {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, message = %kind, "Airflow did not take the task's final state");
            false
        }
    }
}

/// See the module docs. Never returns without trying to send a terminal message
/// once `StartupDetails` arrived.
pub(crate) async fn serve(dags: &[Dag], comm: Option<String>, logs: Option<String>) -> ExitCode {
    let sink = Arc::new(LogSink::default());
    install_logging(sink.clone());
    let code = serve_inner(dags, comm, logs, &sink).await;
    sink.close();
    code
}

async fn serve_inner(
    dags: &[Dag],
    comm_addr: Option<String>,
    logs_addr: Option<String>,
    sink: &Arc<LogSink>,
) -> ExitCode {
    let (Some(comm_addr), Some(logs_addr)) = (comm_addr, logs_addr) else {
        eprintln!("error: Airflow mode needs both --comm and --logs");
        return ExitCode::from(2);
    };
    connect_logs(logs_addr, sink.clone());
    let (comm, startup, watch) = match tokio::task::spawn_blocking({
        let addr = comm_addr.clone();
        move || start_comm(addr)
    })
    .await
    {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot start: no StartupDetails from Airflow's supervisor");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let ti = &startup.ti;
    tracing::info!(
        dag_id = %ti.dag_id,
        task_id = %ti.task_id,
        run_id = %ti.run_id,
        try_number = ti.try_number,
        "gust task started by Airflow"
    );

    let Some(dag) = dags.iter().find(|d| d.dag_id() == ti.dag_id) else {
        let known: Vec<&str> = dags.iter().map(Dag::dag_id).collect();
        tracing::error!(dag_id = %ti.dag_id, known = %known.join(","), "this binary has no such DAG; the task is removed");
        return exit(finish(&comm, removed()));
    };
    if !dag.task_ids().contains(&ti.task_id.as_str()) {
        tracing::error!(dag_id = %ti.dag_id, task_id = %ti.task_id, "this DAG has no such task in this binary; the task is removed");
        return exit(finish(&comm, removed()));
    }
    if set_secrets_backend(AirflowSecrets { comm: comm.clone() }).is_err() {
        tracing::warn!(
            "a secrets backend was installed already: connections and variables come from it, not from Airflow"
        );
    }

    let config = run_config(dag, &startup);
    let remote = {
        let comm = comm.clone();
        let (dag_id, run_id) = (ti.dag_id.clone(), ti.run_id.clone());
        Arc::new(move |task_id: &str, key: &str| {
            let request = GetXCom {
                key: key.to_string(),
                dag_id: dag_id.clone(),
                run_id: run_id.clone(),
                task_id: task_id.to_string(),
                map_index: Some(-1),
                include_prior_dates: false,
            };
            match comm.call(move |c| Box::pin(async move { c.get_xcom(request).await })) {
                Ok(Value::Null) => None,
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(error = %e, task_id, key, "cannot read an XCom from Airflow");
                    None
                }
            }
        }) as crate::context::RemoteXCom
    };

    let try_number = u32::try_from(ti.try_number.max(1)).unwrap_or(u32::MAX);
    // Without a second handle (try_clone failed), never fires: the sender is
    // kept alive in `_keep`.
    let (_keep, mut closed) = tokio::sync::oneshot::channel::<()>();
    if let Some(s) = watch {
        closed = watch_for_close(s);
    }
    let one = tokio::select! {
        one = dag.run_one_try(&ti.task_id, &config, try_number, Vec::new(), Some(remote), startup.ti_context.should_retry()) => one,
        _ = &mut closed => {
            tracing::error!("Airflow's supervisor closed the connection; the task is cancelled");
            return ExitCode::FAILURE;
        }
    };
    let one = match one {
        Ok(one) => one,
        Err(e) => {
            tracing::error!(error = %e, "the task could not start");
            return exit(finish(&comm, failed()));
        }
    };

    let result = match one.result {
        Ok(_) => push_xcoms(&comm, &startup, &one.xcoms),
        // A task that failed or skipped itself keeps what it pushed before (a
        // Python task's `xcom_push` reaches Airflow at once, whatever happens
        // next); its own error stays the outcome.
        Err(e) => {
            if let Err(push) = push_xcoms(&comm, &startup, &one.xcoms) {
                tracing::warn!(error = %push, "cannot send the failed task's XComs to Airflow");
            }
            Err(e)
        }
    };
    let message = match result {
        Ok(()) => ToSupervisor::from(SucceedTask::new(Utc::now())),
        Err(e) if e.is_skip() => ToSupervisor::from(TaskState {
            state: TerminalState::Skipped,
            end_date: Some(Utc::now()),
            rendered_map_index: None,
        }),
        Err(e) => {
            let retry = startup.ti_context.should_retry() && one.retryable;
            // The error itself was logged by the try ("task try failed"); this
            // line says what Airflow is told.
            tracing::info!(
                state = if retry { "up_for_retry" } else { "failed" },
                "reporting the task's end to Airflow"
            );
            if retry {
                ToSupervisor::from(RetryTask {
                    end_date: Utc::now(),
                    rendered_map_index: None,
                    retry_delay_seconds: None,
                    retry_reason: Some(e.to_string()),
                })
            } else {
                failed()
            }
        }
    };
    exit(finish(&comm, message))
}

fn push_xcoms(
    comm: &CommHandle,
    startup: &StartupDetails,
    xcoms: &[(String, Value)],
) -> Result<()> {
    let ti = &startup.ti;
    for (key, value) in xcoms {
        let request = SetXCom {
            key: key.clone(),
            value: value.clone(),
            dag_id: ti.dag_id.clone(),
            run_id: ti.run_id.clone(),
            task_id: ti.task_id.clone(),
            map_index: Some(ti.map_index.unwrap_or(-1)),
            dag_result: false,
            mapped_length: None,
        };
        comm.call(move |c| Box::pin(async move { c.set_xcom(request).await }))
            .map_err(|e| e.with("key", key))?;
    }
    Ok(())
}

fn removed() -> ToSupervisor {
    ToSupervisor::from(TaskState {
        state: TerminalState::Removed,
        end_date: Some(Utc::now()),
        rendered_map_index: None,
    })
}

fn failed() -> ToSupervisor {
    ToSupervisor::from(TaskState {
        state: TerminalState::Failed,
        end_date: Some(Utc::now()),
        rendered_map_index: None,
    })
}

/// 0 once Airflow took the final state (it, not the exit code, says how the task
/// ended), 1 otherwise.
fn exit(sent: bool) -> ExitCode {
    if sent {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
