//! Airflow mode, tier 1: a fake Airflow supervisor (`gust::testing::FakeSupervisor`)
//! drives this real pipeline binary through Airflow 3.3's protocol — success,
//! failure, retry, removed, connections and variables fetched from Airflow, XCom
//! pulled and pushed, not-found replies, an API error in the error slot, a
//! malformed frame, and the supervisor going away mid-task.
//!
//! No libtest harness: `main` is the pipeline when `GUST_TEST_PIPELINE` is set
//! (the supervisor spawns it so, with `--comm`/`--logs`), the test runner otherwise.

#[path = "support/harness.rs"]
mod harness;
use harness::{TestCase, TestResult, ensure, run_tests};

use std::process::ExitCode;
use std::time::{Duration, Instant};

use gust::airflow::messages::{ConnectionResult, ToSupervisor};
use gust::prelude::*;
use gust::testing::{AirflowOutcome, FakeSupervisor};

const PIPELINE: &str = "GUST_TEST_PIPELINE";

/// `extract`: a variable and a connection that only Airflow defines, two XComs.
fn extract() -> Task {
    Task::from_fn("extract", |ctx| async move {
        let n: i64 = Variable::get("af_n")?
            .parse()
            .map_err(|_| Error::fail_now("af_n is not a number"))?;
        let db = ctx.connection("af_db")?;
        tracing::info!(password = db.password().unwrap_or_default(), "connected");
        ctx.xcom_push("day", json!(ctx.ds()))?;
        Ok(json!({"n": n, "host": db.host(), "try": ctx.try_number()}))
    })
}

/// `transform`: extract's XCom times `params.factor`, and a rendered template.
fn transform() -> Task {
    Task::from_fn("transform", |ctx| async move {
        let n = ctx
            .xcom_pull("extract")
            .and_then(|v| v["n"].as_i64())
            .ok_or_else(|| Error::fail_now("no XCom from extract"))?;
        let rendered = ctx.render(
            "{{ ds }} {{ params.factor }} {{ run_id }} {{ ti.xcom_pull(task_ids='extract', key='day') }} {{ data_interval_end.strftime('%Y-%m-%d') }}",
        )?;
        Ok(json!({"n": n * ctx.params()["factor"].as_i64().unwrap_or(1), "rendered": rendered}))
    })
}

/// `flaky`: a retryable error every try.
fn flaky() -> Task {
    Task::from_fn("flaky", |_| async {
        Err::<Value, _>(Error::retryable("the endpoint answered 503"))
    })
}

/// `broken`: a permanent error, after pushing an XCom (which Airflow keeps,
/// as it keeps a Python task's `xcom_push` before it raised).
fn broken() -> Task {
    Task::from_fn("broken", |ctx| async move {
        ctx.xcom_push("bad_rows", json!(3))?;
        Err::<Value, _>(Error::fail_now("the input is malformed"))
    })
}

/// `noop`: does nothing; tier 3 and benches/airflow_overhead.rs compare
/// Airflow's per-task overhead of it with a Python no-op's.
fn noop() -> Task {
    Task::from_fn("noop", |_| async { Ok(Value::Null) })
}

fn dag() -> Result<Dag> {
    let mut dag = Dag::builder("af_demo")
        .schedule(Schedule::Daily)
        .timezone(chrono_tz::Asia::Seoul)
        .params(json!({"factor": 2}));
    let extract = dag.add(extract());
    let transform = dag.add(transform());
    dag.add(flaky());
    dag.add(broken());
    dag.add(Task::from_fn("needs_conn", |ctx| async move {
        ctx.connection("af_missing")?;
        Ok(Value::Null)
    }));
    dag.add(noop());
    // Skips itself (after pushing an XCom), retries left or not.
    dag.add(
        Task::from_fn("skipper", |ctx| async move {
            ctx.xcom_push("seen", json!(true))?;
            Err::<Value, _>(Error::skip("nothing to do today"))
        })
        .with_options(TaskOptions::default().retries(3)),
    );
    dag.add(Task::from_fn("slow", |_| async {
        tokio::time::sleep(Duration::from_secs(120)).await;
        Ok(Value::Null)
    }));
    let _ = &extract >> &transform;
    dag.build()
}

/// Tier 3's DAG (`GUST_TEST_PIPELINE=e2e`): only the tasks a real Airflow runs,
/// no schedule (one triggered run), Airflow's retry policy set here so the
/// generated stub carries it: `flaky` gets one retry, `broken` two it must not
/// use. tests/data/airflow/e2e.sh writes its stub DAG with `airflow stub-dag`
/// and appends the Python tasks of tests/data/airflow/e2e_python_tasks.py.
fn e2e_dag() -> Result<Dag> {
    let retry = |n| {
        TaskOptions::default()
            .retries(n)
            .retry_delay(Duration::from_secs(1))
    };
    let mut dag = Dag::builder("af_e2e")
        .schedule(Schedule::None)
        .params(json!({"factor": 2}));
    let extract = dag.add(extract());
    let transform = dag.add(transform());
    dag.add(noop());
    dag.add(flaky().with_options(retry(1)));
    dag.add(broken().with_options(retry(2)));
    let _ = &extract >> &transform;
    dag.build()
}

fn pipeline() -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let e2e = std::env::var(PIPELINE).as_deref() == Ok("e2e");
    rt.block_on(async {
        match if e2e { e2e_dag() } else { dag() } {
            Ok(d) => gust::cli::main([d]).await,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn command() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(std::env::current_exe().expect("this binary"));
    cmd.env(PIPELINE, "1");
    // Nothing from the environment: every connection and variable comes from Airflow.
    for (k, _) in std::env::vars() {
        if k.starts_with("AIRFLOW_CONN_") || k.starts_with("AIRFLOW_VAR_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn supervise(sup: FakeSupervisor) -> std::result::Result<AirflowOutcome, String> {
    rt().block_on(sup.timeout(Duration::from_secs(60)).run(command()))
        .map_err(|e| e.to_string())
}

fn describe(o: &AirflowOutcome) -> String {
    format!(
        "state {:?}\nterminal {:?}\nrequests {:?}\nlogs {:#?}\nstderr {}\nexit {:?}",
        o.state(),
        o.terminal,
        o.requests
            .iter()
            .map(|r| r.type_name().to_string())
            .collect::<Vec<_>>(),
        o.log_lines,
        String::from_utf8_lossy(&o.stderr),
        o.exit_status
    )
}

fn af_db() -> ConnectionResult {
    let mut c = ConnectionResult::new("af_db", "postgres");
    c.host = Some("db.internal".into());
    c.login = Some("etl".into());
    c.password = Some("af-pw-91c2e".into());
    c.port = Some(5432);
    c
}

fn success_with_airflow_connection_variable_and_xcom() -> TestResult {
    let o = supervise(
        FakeSupervisor::new("af_demo", "extract")
            .connection(af_db())
            .variable("af_n", "21")
            .try_number(2),
    )?;
    ensure(o.state() == Some("success"), || describe(&o))?;
    ensure(o.exit_status.is_some_and(|s| s.success()), || describe(&o))?;
    ensure(
        o.xcom("return_value") == Some(&json!({"n": 21, "host": "db.internal", "try": 2})),
        || describe(&o),
    )?;
    ensure(o.xcom("day") == Some(&json!("2026-01-01")), || describe(&o))?;
    let types: Vec<&str> = o.requests.iter().map(|r| r.type_name()).collect();
    ensure(
        types.contains(&"GetVariable") && types.contains(&"GetConnection"),
        || describe(&o),
    )?;
    ensure(types.last() == Some(&"SucceedTask"), || describe(&o))?;
    // The task's log line reached Airflow's log socket, the password masked.
    let line = o
        .logs_containing("connected")
        .next()
        .ok_or_else(|| describe(&o))?;
    ensure(line["password"] == "***" && line["level"] == "info", || {
        line.to_string()
    })?;
    let all = serde_json::to_string(&o.log_lines).unwrap_or_default();
    ensure(!all.contains("af-pw-91c2e"), || all.clone())
}

fn upstream_xcom_and_templates_come_from_airflow() -> TestResult {
    let start = chrono::DateTime::parse_from_rfc3339("2025-01-07T15:00:00Z")
        .unwrap()
        .to_utc();
    let o = supervise(
        FakeSupervisor::new("af_demo", "transform")
            .run_id("scheduled__2025-01-07T15:00:00+00:00")
            .logical_date(Some(start))
            .conf(json!({"factor": 5}))
            .xcom("extract", "return_value", json!({"n": 4}))
            .xcom("extract", "day", json!("2025-01-08")),
    )?;
    ensure(o.state() == Some("success"), || describe(&o))?;
    let value = o.xcom("return_value").cloned().unwrap_or_default();
    ensure(value["n"] == 20, || describe(&o))?;
    // ds in the DAG's timezone (Asia/Seoul), conf over params, Airflow's run id.
    ensure(
        value["rendered"].as_str().is_some_and(|r| {
            r.starts_with("2025-01-08 5 scheduled__2025-01-07T15:00:00+00:00 2025-01-08 ")
        }),
        || describe(&o),
    )
}

fn a_retryable_failure_is_retried_by_airflow_when_allowed() -> TestResult {
    let o = supervise(
        FakeSupervisor::new("af_demo", "flaky")
            .should_retry(true)
            .max_tries(3),
    )?;
    ensure(o.state() == Some("up_for_retry"), || describe(&o))?;
    match &o.terminal {
        Some(ToSupervisor::RetryTask(r)) => ensure(
            r.retry_reason.as_deref().is_some_and(|w| w.contains("503")),
            || describe(&o),
        )?,
        _ => return Err(describe(&o)),
    }
    let will_retry = |o: &AirflowOutcome| -> Option<bool> {
        o.logs_containing("task try failed")
            .next()?
            .get("will_retry")?
            .as_bool()
    };
    ensure(will_retry(&o) == Some(true), || describe(&o))?;
    // No retries left: failed, and the log does not say it will be retried.
    let o = supervise(FakeSupervisor::new("af_demo", "flaky").should_retry(false))?;
    ensure(o.state() == Some("failed"), || describe(&o))?;
    ensure(will_retry(&o) == Some(false), || describe(&o))
}

fn a_permanent_failure_fails_even_with_retries_left() -> TestResult {
    let o = supervise(
        FakeSupervisor::new("af_demo", "broken")
            .should_retry(true)
            .max_tries(3),
    )?;
    ensure(o.state() == Some("failed"), || describe(&o))?;
    // What it pushed before failing is sent; no return value.
    ensure(o.xcom("bad_rows") == Some(&json!(3)), || describe(&o))?;
    ensure(o.xcom("return_value").is_none(), || describe(&o))
}

/// A task that skips itself ends `skipped`, not retried even when Airflow
/// has retries left; its explicitly pushed XCom is kept, as in Airflow.
fn a_skip_ends_the_task_skipped() -> TestResult {
    let o = supervise(
        FakeSupervisor::new("af_demo", "skipper")
            .should_retry(true)
            .max_tries(4),
    )?;
    ensure(o.state() == Some("skipped"), || describe(&o))?;
    ensure(o.xcom("seen") == Some(&json!(true)), || describe(&o))?;
    ensure(o.xcom("return_value").is_none(), || describe(&o))?;
    ensure(o.logs_containing("task skipped").next().is_some(), || {
        describe(&o)
    })
}

fn an_unknown_dag_or_task_is_removed() -> TestResult {
    for (dag, task) in [("af_demo", "ghost"), ("other_dag", "extract")] {
        let o = supervise(FakeSupervisor::new(dag, task))?;
        ensure(o.state() == Some("removed"), || describe(&o))?;
        ensure(o.logs_containing("no such").next().is_some(), || {
            describe(&o)
        })?;
    }
    Ok(())
}

fn not_found_and_api_errors_are_typed() -> TestResult {
    // A variable Airflow does not have: the task's own error names it.
    let o = supervise(
        FakeSupervisor::new("af_demo", "extract")
            .connection(af_db())
            .should_retry(true),
    )?;
    ensure(o.state() == Some("failed"), || describe(&o))?;
    let failed = serde_json::to_string(&o.log_lines).unwrap_or_default();
    ensure(
        failed.contains("af_n") && failed.contains("not defined"),
        || describe(&o),
    )?;
    // A connection Airflow does not have.
    let o = supervise(FakeSupervisor::new("af_demo", "needs_conn"))?;
    ensure(o.state() == Some("failed"), || describe(&o))?;
    let text = serde_json::to_string(&o.log_lines).unwrap_or_default();
    ensure(
        text.contains("connection \\\"af_missing\\\" is not defined"),
        || describe(&o),
    )?;
    // The API server failing (error slot, HTTP 503): transient, so retried.
    let o = supervise(
        FakeSupervisor::new("af_demo", "extract")
            .connection(af_db())
            .variable("af_n", "1")
            .api_error("GetVariable", 503)
            .should_retry(true),
    )?;
    ensure(o.state() == Some("up_for_retry"), || describe(&o))
}

/// A supervisor by hand, for what FakeSupervisor does not do wrong on purpose.
fn raw_supervisor(
    first_frame: Vec<u8>,
    close_after: Duration,
) -> std::result::Result<(std::process::ExitStatus, Duration, String), String> {
    rt().block_on(async move {
        use tokio::io::AsyncWriteExt;
        let comm = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let logs = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let mut child = command()
            .arg(format!("--comm={}", comm.local_addr().unwrap()))
            .arg(format!("--logs={}", logs.local_addr().unwrap()))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let (mut c, _) = comm.accept().await.map_err(|e| e.to_string())?;
        let (mut l, _) = logs.accept().await.map_err(|e| e.to_string())?;
        let started = Instant::now();
        c.write_all(&first_frame).await.map_err(|e| e.to_string())?;
        tokio::time::sleep(close_after).await;
        drop(c);
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .map_err(|_| "the binary did not exit within 20 s".to_string())?
            .map_err(|e| e.to_string())?;
        let mut log_text = String::new();
        use tokio::io::AsyncReadExt;
        let _ = tokio::time::timeout(Duration::from_secs(2), l.read_to_string(&mut log_text)).await;
        Ok((status, started.elapsed(), log_text))
    })
}

fn a_malformed_frame_is_a_clear_error() -> TestResult {
    // A length prefix, then bytes that are not msgpack of an envelope.
    let mut frame = 5u32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[0xc1, 0xc1, 0xc1, 0xc1, 0xc1]);
    let (status, _, logs) = raw_supervisor(frame, Duration::from_millis(200))?;
    ensure(!status.success(), || format!("{status:?}"))?;
    ensure(logs.contains("StartupDetails"), || logs.clone())
}

fn the_supervisor_going_away_stops_the_task() -> TestResult {
    let startup = FakeSupervisor::new("af_demo", "slow")
        .startup_details()
        .clone();
    let body = gust::airflow::messages::FromSupervisor::StartupDetails(Box::new(startup)).to_json();
    let payload = gust::airflow::codec::encode_response(
        0,
        Some(&body),
        None,
        gust::airflow::codec::Datetimes::Timestamps,
    )
    .map_err(|e| e.to_string())?;
    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&payload);
    let (status, elapsed, logs) = raw_supervisor(frame, Duration::from_millis(500))?;
    ensure(!status.success(), || format!("{status:?} {logs}"))?;
    // The task sleeps 120 s: it was cancelled, not waited for.
    ensure(elapsed < Duration::from_secs(20), || format!("{elapsed:?}"))?;
    ensure(logs.contains("closed the connection"), || logs.clone())
}

fn metadata_and_pack() -> TestResult {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(PIPELINE, "1")
        .arg("--airflow-metadata")
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure(out.status.success(), || text.clone())?;
    let manifest = gust::airflow::bundle::Manifest::from_yaml(&text).map_err(|e| e.to_string())?;
    ensure(
        manifest.sdk.supervisor_schema_version
            == gust::airflow::messages::SUPERVISOR_SCHEMA_VERSION,
        || text.clone(),
    )?;
    ensure(
        manifest
            .dags
            .get("af_demo")
            .is_some_and(|d| d.tasks.len() == 8 && d.tasks.contains(&"transform".to_string())),
        || text.clone(),
    )?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let bundle = dir.path().join("af_demo_bundle");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(PIPELINE, "1")
        .args(["airflow", "pack", "--output"])
        .arg(&bundle)
        .output()
        .map_err(|e| e.to_string())?;
    ensure(out.status.success(), || {
        String::from_utf8_lossy(&out.stderr).into_owned()
    })?;
    let (packed, info) = gust::airflow::bundle::inspect(&bundle).map_err(|e| e.to_string())?;
    ensure(packed.dags == manifest.dags, || format!("{packed:?}"))?;
    ensure(
        info.binary_len
            == std::fs::metadata(std::env::current_exe().unwrap())
                .unwrap()
                .len(),
        || format!("{info:?}"),
    )?;
    // The packed file is still this program: it runs, and packs itself to the same bytes.
    let again = dir.path().join("again");
    let out = std::process::Command::new(&bundle)
        .env(PIPELINE, "1")
        .args(["airflow", "pack", "--output"])
        .arg(&again)
        .output()
        .map_err(|e| e.to_string())?;
    ensure(out.status.success(), || {
        String::from_utf8_lossy(&out.stderr).into_owned()
    })?;
    ensure(
        std::fs::read(&again).ok() == std::fs::read(&bundle).ok(),
        || "repacking changed the bundle".into(),
    )
}

// ---------------------------------------------------------------------------
// Tier 2: Airflow 3.3.2's real ExecutableCoordinator and supervisor launch this
// binary, packed, with their Execution API client on a mock transport
// (tests/data/airflow/coordinator_contract.py). Needs GUST_AIRFLOW_PYTHON.
// ---------------------------------------------------------------------------

/// Where the contract script runs: a `bundles/` directory holding this
/// binary packed as the bundle of `af_demo`, and an `AIRFLOW_HOME` of its own.
struct Coordinator {
    python: std::path::PathBuf,
    dir: tempfile::TempDir,
}

/// The Python of a venv with apache-airflow==3.3.2 (`GUST_AIRFLOW_PYTHON`,
/// which `scripts/services.sh env` exports) and the packed bundle. `None`
/// (the test is skipped) when the variable is unset, except under `CI=true`.
fn coordinator() -> std::result::Result<Option<Coordinator>, String> {
    let python = match std::env::var_os("GUST_AIRFLOW_PYTHON") {
        Some(p) if !p.is_empty() => std::path::PathBuf::from(p),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            return Err(
                "CI is set but GUST_AIRFLOW_PYTHON is not: point it at the python of a venv \
                 with apache-airflow==3.3.2 (scripts/services.sh env)"
                    .into(),
            );
        }
        _ => {
            println!(
                "skipped: set GUST_AIRFLOW_PYTHON to run this binary under Airflow's own coordinator"
            );
            return Ok(None);
        }
    };
    ensure(python.exists(), || {
        format!(
            "GUST_AIRFLOW_PYTHON is {}, which does not exist: `scripts/services.sh start airflow` installs it",
            python.display()
        )
    })?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let bundles = dir.path().join("bundles");
    for sub in [&bundles, &dir.path().join("home")] {
        std::fs::create_dir_all(sub).map_err(|e| e.to_string())?;
    }
    // `airflow pack` copies the running binary, appends the manifest and
    // trailer and sets the exec bit: what `_Bundle.find` requires.
    let out = std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .env(PIPELINE, "1")
        .args(["airflow", "pack", "--output"])
        .arg(bundles.join("af_demo"))
        .output()
        .map_err(|e| e.to_string())?;
    ensure(out.status.success(), || {
        String::from_utf8_lossy(&out.stderr).into_owned()
    })?;
    Ok(Some(Coordinator { python, dir }))
}

/// What Airflow's side saw of one task instance.
struct Contract {
    doc: Value,
    /// The supervisor's log, the task's log lines forwarded into it.
    log: String,
}

impl Contract {
    /// The API calls but heartbeats (their number depends on timing), as
    /// `METHOD path` with the task instance id and run id shortened.
    fn calls(&self) -> Vec<String> {
        self.doc["calls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| !c["path"].as_str().unwrap_or("").ends_with("/heartbeat"))
            .map(|c| {
                format!(
                    "{} {}",
                    c["method"].as_str().unwrap_or(""),
                    c["path"]
                        .as_str()
                        .unwrap_or("")
                        .replace("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "TI")
                        .replace("scheduled__2026-01-01T00:00:00+00:00", "RUN")
                )
            })
            .collect()
    }

    /// The body of the first call `method path` (shortened as in `calls`).
    fn body(&self, call: &str) -> Option<&Value> {
        let i = self.calls().iter().position(|c| c == call)?;
        self.doc["calls"]
            .as_array()?
            .iter()
            .filter(|c| !c["path"].as_str().unwrap_or("").ends_with("/heartbeat"))
            .nth(i)
            .map(|c| &c["body"])
    }

    fn describe(&self) -> String {
        format!(
            "calls {:#?}\nresult {}\nlog\n{}",
            self.calls(),
            serde_json::to_string_pretty(&self.doc).unwrap_or_default(),
            self.log
        )
    }
}

/// Runs `task` of `af_demo` under the real coordinator, `args` passed to the
/// contract script (`--connections`, `--variables`, `--xcoms`, `--conf`,
/// `--try-number`, `--max-tries`).
fn coordinate(c: &Coordinator, task: &str, args: &[&str]) -> std::result::Result<Contract, String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/airflow/coordinator_contract.py");
    let mut cmd = std::process::Command::new(&c.python);
    cmd.arg(script)
        .arg("--bundles")
        .arg(c.dir.path().join("bundles"))
        .args(["--dag", "af_demo", "--task", task])
        .args(args)
        // The coordinator's child inherits the environment: this makes the
        // packed test binary act as the pipeline.
        .env(PIPELINE, "1")
        .env("AIRFLOW_HOME", c.dir.path().join("home"));
    // Nothing from the environment: every connection and variable comes from Airflow.
    for (k, _) in std::env::vars() {
        if k.starts_with("AIRFLOW_CONN_") || k.starts_with("AIRFLOW_VAR_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .output()
        .map_err(|e| format!("running {}: {e}", c.python.display()))?;
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure(out.status.success(), || {
        format!("coordinator_contract.py failed: {}\n{log}", out.status)
    })?;
    let doc = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{e}: {}\n{log}", String::from_utf8_lossy(&out.stdout)))?;
    Ok(Contract { doc, log })
}

fn airflows_coordinator_runs_extract_with_airflows_connection_and_variable() -> TestResult {
    let Some(c) = coordinator()? else {
        return Ok(());
    };
    let connections = json!({"af_db": {
        "conn_type": "postgres", "host": "db.internal", "login": "etl",
        "password": "af-pw-91c2e", "port": 5432,
    }})
    .to_string();
    let r = coordinate(
        &c,
        "extract",
        &[
            "--connections",
            &connections,
            "--variables",
            r#"{"af_n": "21"}"#,
        ],
    )?;
    ensure(
        r.calls()
            == [
                "PATCH task-instances/TI/run",
                "GET variables/af_n",
                "GET connections/af_db",
                "POST xcoms/af_demo/RUN/extract/day",
                "POST xcoms/af_demo/RUN/extract/return_value",
                "PATCH task-instances/TI/state",
            ],
        || r.describe(),
    )?;
    ensure(
        r.body("POST xcoms/af_demo/RUN/extract/return_value")
            == Some(&json!({"n": 21, "host": "db.internal", "try": 1})),
        || r.describe(),
    )?;
    ensure(
        r.body("POST xcoms/af_demo/RUN/extract/day") == Some(&json!("2026-01-01")),
        || r.describe(),
    )?;
    let state = r
        .body("PATCH task-instances/TI/state")
        .cloned()
        .unwrap_or_default();
    ensure(
        state["state"] == "success"
            && state["task_outlets"] == json!([])
            && state["outlet_events"] == json!([]),
        || r.describe(),
    )?;
    ensure(
        r.doc["final_state"] == "success" && r.doc["exit_code"] == 0,
        || r.describe(),
    )?;
    // The task's own log line reached Airflow's task log, without the password.
    ensure(
        r.log.contains("connected") && !r.log.contains("af-pw-91c2e"),
        || r.describe(),
    )
}

fn airflows_coordinator_records_a_failure_and_a_removed_task() -> TestResult {
    let Some(c) = coordinator()? else {
        return Ok(());
    };
    // Retries left, but the error is permanent: failed; what it pushed
    // before failing is posted, no return value.
    let r = coordinate(&c, "broken", &["--max-tries", "3"])?;
    ensure(
        r.calls()
            == [
                "PATCH task-instances/TI/run",
                "POST xcoms/af_demo/RUN/broken/bad_rows",
                "PATCH task-instances/TI/state",
            ],
        || r.describe(),
    )?;
    ensure(
        r.body("POST xcoms/af_demo/RUN/broken/bad_rows") == Some(&json!(3)),
        || r.describe(),
    )?;
    ensure(
        r.body("PATCH task-instances/TI/state")
            .is_some_and(|b| b["state"] == "failed"),
        || r.describe(),
    )?;
    ensure(r.doc["final_state"] == "failed", || r.describe())?;
    ensure(r.log.contains("the input is malformed"), || r.describe())?;
    // A task the bundle does not have.
    let r = coordinate(&c, "ghost", &[])?;
    ensure(
        r.body("PATCH task-instances/TI/state")
            .is_some_and(|b| b["state"] == "removed"),
        || r.describe(),
    )
}

fn airflows_coordinator_retries_a_retryable_failure_while_tries_are_left() -> TestResult {
    let Some(c) = coordinator()? else {
        return Ok(());
    };
    // Try 1 of max_tries 3: Airflow's should_retry is true.
    let r = coordinate(&c, "flaky", &["--try-number", "1", "--max-tries", "3"])?;
    let state = r
        .body("PATCH task-instances/TI/state")
        .cloned()
        .unwrap_or_default();
    ensure(
        state["state"] == "up_for_retry"
            && state["retry_reason"]
                .as_str()
                .is_some_and(|w| w.contains("503")),
        || r.describe(),
    )?;
    ensure(r.doc["final_state"] == "up_for_retry", || r.describe())?;
    // The last try (try 2 of max_tries 1): failed.
    let r = coordinate(&c, "flaky", &["--try-number", "2", "--max-tries", "1"])?;
    ensure(
        r.body("PATCH task-instances/TI/state")
            .is_some_and(|b| b["state"] == "failed"),
        || r.describe(),
    )
}

fn airflows_coordinator_serves_upstream_xcoms_to_transform() -> TestResult {
    let Some(c) = coordinator()? else {
        return Ok(());
    };
    let r = coordinate(
        &c,
        "transform",
        &[
            "--conf",
            r#"{"factor": 5}"#,
            "--xcoms",
            r#"{"extract/return_value": {"n": 4}, "extract/day": "2026-01-01"}"#,
        ],
    )?;
    ensure(
        r.calls()
            == [
                "PATCH task-instances/TI/run",
                "GET xcoms/af_demo/RUN/extract/return_value",
                "GET xcoms/af_demo/RUN/extract/day",
                "POST xcoms/af_demo/RUN/transform/return_value",
                "PATCH task-instances/TI/state",
            ],
        || r.describe(),
    )?;
    // conf over params; ds and data_interval_end in the DAG's timezone (Asia/Seoul).
    ensure(
        r.body("POST xcoms/af_demo/RUN/transform/return_value")
            == Some(&json!({
                "n": 20,
                "rendered": "2026-01-01 5 scheduled__2026-01-01T00:00:00+00:00 2026-01-01 2026-01-01",
            })),
        || r.describe(),
    )?;
    ensure(r.doc["final_state"] == "success", || r.describe())?;
    // No upstream XCom: the API's 404 reaches the task as "no value", and the
    // task's own check fails it.
    let r = coordinate(&c, "transform", &[])?;
    ensure(
        r.calls()
            == [
                "PATCH task-instances/TI/run",
                "GET xcoms/af_demo/RUN/extract/return_value",
                "PATCH task-instances/TI/state",
            ],
        || r.describe(),
    )?;
    ensure(
        r.body("PATCH task-instances/TI/state")
            .is_some_and(|b| b["state"] == "failed")
            && r.log.contains("no XCom from extract"),
        || r.describe(),
    )
}

// ---------------------------------------------------------------------------
// Tier 3 (GUST_AIRFLOW_E2E=1; .ci/run sets it): a real Airflow 3.3.2 on
// 127.0.0.1 — SQLite, LocalExecutor, api-server + scheduler + dag-processor,
// started and stopped by `scripts/services.sh start|stop airflow-server` on a
// private port and state directory — runs one triggered run of `af_e2e` (tests/data/airflow/e2e.sh): the stub DAG
// this binary generates (`airflow stub-dag`, used as is; its gust tasks are
// `@task.stub(queue="gust")` that this binary, packed, executes) with the
// Python tasks of tests/data/airflow/e2e_python_tasks.py appended.
// ---------------------------------------------------------------------------

/// A task instance's timestamp as SQLite holds it (UTC, no zone).
fn ti_time(ti: &Value, field: &str) -> Option<chrono::NaiveDateTime> {
    let s = ti[field].as_str()?;
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok()
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn a_real_airflow_runs_the_bundle_end_to_end() -> TestResult {
    if std::env::var("GUST_AIRFLOW_E2E").as_deref() != Ok("1") {
        println!("skipped: set GUST_AIRFLOW_E2E=1 (and GUST_AIRFLOW_PYTHON) to run a real Airflow");
        return Ok(());
    }
    let Some(c) = coordinator()? else {
        return Err("GUST_AIRFLOW_E2E=1 needs GUST_AIRFLOW_PYTHON".into());
    };
    // The e2e pipeline's bundle, alone in its executables_root.
    let bundle = c.dir.path().join("e2e-bundles/af_e2e");
    let work = c.dir.path().join("e2e");
    for dir in [bundle.parent().unwrap(), &work] {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let out = std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .env(PIPELINE, "e2e")
        .args(["airflow", "pack", "--output"])
        .arg(&bundle)
        .output()
        .map_err(|e| e.to_string())?;
    ensure(out.status.success(), || {
        String::from_utf8_lossy(&out.stderr).into_owned()
    })?;
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/airflow");
    let started = Instant::now();
    let out = std::process::Command::new("bash")
        .arg(data.join("e2e.sh"))
        .arg(&bundle)
        .arg(&work)
        .arg("af_e2e")
        .arg(data.join("e2e_python_tasks.py"))
        .env("GUST_AIRFLOW_PYTHON", &c.python)
        .env("GUST_E2E_PIPELINE_ENV", format!("{PIPELINE}=e2e"))
        .output()
        .map_err(|e| format!("running e2e.sh: {e}"))?;
    let wall = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let logs = work.join("home/logs/dag_id=af_e2e/run_id=gust_e2e_1");
    let read = |task: &str, attempt: u32| {
        std::fs::read_to_string(logs.join(format!("task_id={task}/attempt={attempt}.log")))
            .unwrap_or_default()
    };
    // On failure: the script's progress (with its own diagnostics if it
    // failed), the tail of every server's log and of every task log.
    let explain = |what: &str| {
        let mut text = format!("{what}\n--- e2e.sh stderr\n{}", tail(&stderr, 400));
        // Where scripts/services.sh (airflow-server) and e2e.sh's CLI calls log.
        for name in [
            "services/logs/airflow-scheduler.log",
            "services/logs/airflow-api-server.log",
            "services/logs/airflow-dag-processor.log",
            "cli-trigger.log",
        ] {
            let log = std::fs::read_to_string(work.join(name)).unwrap_or_default();
            text += &format!("\n--- {name} (last lines)\n{}\n", tail(&log, 40));
        }
        let mut task_logs: Vec<_> = std::fs::read_dir(&logs)
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
            .map(|f| f.path())
            .collect();
        task_logs.sort();
        for path in task_logs {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            let name = path
                .strip_prefix(&logs)
                .unwrap_or(&path)
                .display()
                .to_string();
            text += &format!("\n--- task log {name} (last lines)\n{}\n", tail(&log, 25));
        }
        text
    };
    ensure(out.status.success(), || {
        explain(&format!("e2e.sh: {}", out.status))
    })?;
    let doc: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| explain(&format!("{e}: {}", String::from_utf8_lossy(&out.stdout))))?;
    let run = &doc["runs"][0];
    let shown = serde_json::to_string_pretty(&doc).unwrap_or_default();
    // The DAG file Airflow ran is the generated stub, byte for byte, then the
    // appended Python tasks.
    let generated = std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .env(PIPELINE, "e2e")
        .args(["airflow", "stub-dag", "--queue", "gust"])
        .output()
        .map_err(|e| e.to_string())?;
    let appended = std::fs::read(data.join("e2e_python_tasks.py")).map_err(|e| e.to_string())?;
    let dag_file = std::fs::read(work.join("dags/af_e2e.py")).map_err(|e| e.to_string())?;
    ensure(
        generated.status.success() && dag_file == [generated.stdout, appended].concat(),
        || explain("dags/af_e2e.py is not the generated stub DAG followed by e2e_python_tasks.py"),
    )?;
    ensure(run["run_id"] == "gust_e2e_1", || explain(&shown))?;
    let tis: std::collections::BTreeMap<String, Value> = run["task_instances"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|ti| (ti["task_id"].as_str().unwrap_or("").to_string(), ti.clone()))
        .collect();
    let state = |task: &str| {
        tis.get(task)
            .and_then(|t| t["state"].as_str())
            .unwrap_or("")
    };
    // The generated gust tasks ran on the coordinator's queue.
    for task in ["extract", "transform", "noop", "flaky", "broken"] {
        ensure(tis.get(task).is_some_and(|t| t["queue"] == "gust"), || {
            explain(&format!("{task} is not a gust stub task: {shown}"))
        })?;
    }
    // `broken`'s permanent failure ends the run failed: its downstream
    // `after_broken` (a leaf) is upstream_failed; the other leaf `done`
    // (all_done) ran.
    ensure(run["run_state"] == "failed", || explain(&shown))?;
    for task in ["extract", "transform", "noop", "check", "py_noop", "done"] {
        ensure(state(task) == "success", || {
            explain(&format!("{task}: {shown}"))
        })?;
    }
    // Retried by Airflow once (the stub's retries=1, from the gust task's
    // options), then failed; `broken` fails at once although Airflow would
    // allow 2 retries: the error is permanent.
    ensure(
        state("flaky") == "failed" && tis["flaky"]["try_number"] == 2,
        || explain(&shown),
    )?;
    ensure(
        state("broken") == "failed" && tis["broken"]["try_number"] == 1,
        || explain(&shown),
    )?;
    ensure(state("after_broken") == "upstream_failed", || {
        explain(&shown)
    })?;
    // The task logs Airflow wrote hold gust's own log lines.
    let extract = read("extract", 1);
    ensure(
        extract.contains("\"connected\"") && !extract.contains("af-pw-91c2e"),
        || explain(&extract),
    )?;
    let flaky = read("flaky", 2);
    ensure(
        flaky.contains("\"try_number\":2") && flaky.contains("503"),
        || explain(&flaky),
    )?;
    ensure(read("check", 1).contains("gust-e2e check ok"), || {
        explain(&read("check", 1))
    })?;
    // Not asserted (timing): Airflow's per-task overhead, a gust no-op vs a
    // Python no-op in the same run (benches/airflow_overhead.rs measures it
    // over many runs).
    for task in ["noop", "py_noop"] {
        let ti = &tis[task];
        let (q, s, e) = (
            ti_time(ti, "queued_dttm"),
            ti_time(ti, "start_date"),
            ti_time(ti, "end_date"),
        );
        let ms = |a: Option<chrono::NaiveDateTime>| match (a, e) {
            (Some(a), Some(e)) => format!("{} ms", (e - a).num_milliseconds()),
            _ => "?".into(),
        };
        println!(
            "airflow overhead {task}: start->end {}, queued->end {}",
            ms(s),
            ms(q)
        );
    }
    println!(
        "airflow e2e: Airflow up in {} s, run {} s, script {} s, test wall {:.1} s",
        doc["startup_seconds"],
        run["seconds"],
        doc["total_seconds"],
        wall.as_secs_f64()
    );
    Ok(())
}

fn main() -> ExitCode {
    if std::env::var_os(PIPELINE).is_some() {
        return pipeline();
    }
    let tests: &[TestCase] = &[
        (
            "success_with_airflow_connection_variable_and_xcom",
            success_with_airflow_connection_variable_and_xcom,
        ),
        (
            "upstream_xcom_and_templates_come_from_airflow",
            upstream_xcom_and_templates_come_from_airflow,
        ),
        (
            "a_retryable_failure_is_retried_by_airflow_when_allowed",
            a_retryable_failure_is_retried_by_airflow_when_allowed,
        ),
        (
            "a_permanent_failure_fails_even_with_retries_left",
            a_permanent_failure_fails_even_with_retries_left,
        ),
        ("a_skip_ends_the_task_skipped", a_skip_ends_the_task_skipped),
        (
            "an_unknown_dag_or_task_is_removed",
            an_unknown_dag_or_task_is_removed,
        ),
        (
            "not_found_and_api_errors_are_typed",
            not_found_and_api_errors_are_typed,
        ),
        (
            "a_malformed_frame_is_a_clear_error",
            a_malformed_frame_is_a_clear_error,
        ),
        (
            "the_supervisor_going_away_stops_the_task",
            the_supervisor_going_away_stops_the_task,
        ),
        ("metadata_and_pack", metadata_and_pack),
        (
            "airflows_coordinator_runs_extract_with_airflows_connection_and_variable",
            airflows_coordinator_runs_extract_with_airflows_connection_and_variable,
        ),
        (
            "airflows_coordinator_records_a_failure_and_a_removed_task",
            airflows_coordinator_records_a_failure_and_a_removed_task,
        ),
        (
            "airflows_coordinator_retries_a_retryable_failure_while_tries_are_left",
            airflows_coordinator_retries_a_retryable_failure_while_tries_are_left,
        ),
        (
            "airflows_coordinator_serves_upstream_xcoms_to_transform",
            airflows_coordinator_serves_upstream_xcoms_to_transform,
        ),
        (
            "a_real_airflow_runs_the_bundle_end_to_end",
            a_real_airflow_runs_the_bundle_end_to_end,
        ),
    ];
    run_tests(tests)
}
