//! The command line (`gust::cli`), run as a real binary in separate processes.
//!
//! This test target has no libtest harness: its `main` is the pipeline binary when
//! `GUST_TEST_PIPELINE` is set (the tests spawn it so, with the command line's
//! arguments), and the test runner otherwise. The pipeline has the quick start's
//! DAG (the example's own `dag.rs`) and a small DAG that passes XComs.

#[path = "support/harness.rs"]
mod harness;
use harness::{TestCase, TestResult, ensure, run_tests};

#[path = "../examples/quickstart/dag.rs"]
mod quickstart;

use std::path::Path;
use std::process::{Command, ExitCode, Output};

use gust::operators::sql::SqlExecuteQuery;
use gust::prelude::*;

const PIPELINE: &str = "GUST_TEST_PIPELINE";

fn demo_dag() -> Result<Dag> {
    let mut dag = Dag::builder("cli_demo")
        .schedule(Schedule::Daily)
        .timezone(chrono_tz::Asia::Seoul)
        .params(json!({"factor": 2}));
    let extract = dag.add(Task::from_fn("extract", |ctx| async move {
        ctx.xcom_push("day", json!(ctx.ds()))?;
        let (start, end) = ctx.data_interval();
        Ok(json!({
            "interval": [start.to_rfc3339(), end.to_rfc3339()],
            "n": 21,
            "try": ctx.try_number(),
        }))
    }));
    let double = dag.add(Task::from_fn("double", |ctx| async move {
        let n = ctx
            .xcom_pull("extract")
            .and_then(|v| v["n"].as_i64())
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "double", "no XCom from extract"))?;
        let factor = ctx.params()["factor"].as_i64().unwrap_or(1);
        Ok(json!({"n": n * factor, "day": ctx.xcom_pull_key("extract", "day")}))
    }));
    let query = dag.add(Task::new(
        "query",
        SqlExecuteQuery::new(
            "sqlite_default",
            "SELECT '{{ ds }}' AS d, {{ ti.xcom_pull(task_ids='double')['n'] }} AS n, \
             '{{ var.value.cli_api_password }}' AS secret",
        ),
    ));
    dag.add(Task::from_fn("fail", |_| async {
        Err::<Value, _>(Error::fail_now("this task always fails"))
    }));
    dag.add(Task::from_fn("skip", |_| async {
        Err::<Value, _>(Error::skip("no new data"))
    }));
    let _ = &extract >> &double >> &query;
    dag.build()
}

fn pipeline() -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let hook = gust::hooks::sqlite::SqliteHook::from_conn_id("sqlite_default").await;
        match (hook.and_then(quickstart::quickstart), demo_dag()) {
            (Ok(q), Ok(d)) => gust::cli::main([q, d]).await,
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// A temporary directory with a SQLite file and an XCom directory.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    fn xcom_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("xcom")
    }

    /// Runs the pipeline binary with `args`.
    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let db = self.dir.path().join("gust.db");
        let mut cmd = Command::new(std::env::current_exe().expect("this binary"));
        cmd.args(args)
            .env(PIPELINE, "1")
            .env(
                "AIRFLOW_CONN_SQLITE_DEFAULT",
                format!("sqlite://{}", urlencode(&db.display().to_string())),
            )
            .env("GUST_XCOM_DIR", self.xcom_dir())
            .env("AIRFLOW_VAR_CLI_API_PASSWORD", "cli-pw-7f3a")
            .env("RUST_LOG", "info")
            .env_remove("AIRFLOW_CTX_TRY_NUMBER");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("the pipeline binary runs")
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The last line of stdout, as JSON.
fn json_of(o: &Output) -> serde_json::Value {
    let out = stdout(o);
    serde_json::from_str(out.lines().last().unwrap_or_default()).unwrap_or(serde_json::Value::Null)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> std::result::Result<(), String> {
    ensure(o.status.success(), || {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            o.status,
            stdout(o),
            stderr(o)
        )
    })
}

/// Every file under the XCom directory, relative path → content.
fn xcom_files(root: &Path) -> std::collections::BTreeMap<String, serde_json::Value> {
    let mut out = std::collections::BTreeMap::new();
    fn walk(
        root: &Path,
        p: &Path,
        out: &mut std::collections::BTreeMap<String, serde_json::Value>,
    ) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                out.insert(
                    path.strip_prefix(root).unwrap().display().to_string(),
                    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
                );
            }
        }
    }
    walk(root, root, &mut out);
    out
}

fn lists_and_show() -> TestResult {
    let env = Env::new();
    let o = env.run(&["dags", "list"]);
    ok(&o)?;
    ensure(stdout(&o) == "quickstart\ncli_demo\n", || stdout(&o))?;
    let o = env.run(&["tasks", "list", "quickstart"]);
    ok(&o)?;
    ensure(
        stdout(&o) == "create_tables\ndaily_summary\nreport\n",
        || stdout(&o),
    )?;
    for format in ["text", "dot", "mermaid"] {
        let o = env.run(&["dags", "show", "cli_demo", "--format", format]);
        ok(&o)?;
        let text = stdout(&o);
        ensure(text.contains("extract") && text.contains("double"), || {
            format!("{format}: {text}")
        })?;
    }
    Ok(())
}

/// The acceptance point: the quick start run task by task in separate processes
/// (`tasks run`) stores the same XComs as `dags test`.
fn tasks_run_in_processes_equals_dags_test() -> TestResult {
    let whole = Env::new();
    let o = whole.run(&["dags", "test", "quickstart", "2025-01-08"]);
    ok(&o)?;
    ensure(stdout(&o).contains("success"), || stdout(&o))?;

    let split = Env::new();
    let mut last = String::new();
    for task in ["create_tables", "daily_summary", "report"] {
        let o = split.run(&["tasks", "run", "quickstart", task, "2025-01-08"]);
        ok(&o)?;
        last = stdout(&o).lines().last().unwrap_or_default().to_string();
    }
    let a = xcom_files(&whole.xcom_dir());
    let b = xcom_files(&split.xcom_dir());
    ensure(a.len() >= 4, || format!("too few XCom files: {a:?}"))?;
    ensure(a == b, || {
        format!("dags test stored\n{a:#?}\ntasks run stored\n{b:#?}")
    })?;
    // The last line of `tasks run` is the task's return value, as JSON.
    let report: serde_json::Value =
        serde_json::from_str(&last).map_err(|e| format!("{e}: {last}"))?;
    let stored = a
        .iter()
        .find(|(k, _)| k.contains("/report/return_value"))
        .map(|(_, v)| v.clone());
    ensure(Some(&report) == stored.as_ref(), || {
        format!("{report} vs {stored:?}")
    })?;
    ensure(report.as_array().is_some_and(|r| !r.is_empty()), || {
        report.to_string()
    })
}

/// `tasks test` and `tasks render` read upstream XComs that `tasks run` stored;
/// `tasks test` records nothing.
fn upstream_xcoms_from_the_store() -> TestResult {
    let env = Env::new();
    let o = env.run(&["tasks", "run", "cli_demo", "extract", "2025-01-08"]);
    ok(&o)?;
    ensure(
        stdout(&o).trim_end().ends_with(r#""n":21,"try":1}"#),
        || stdout(&o),
    )?;
    let before = xcom_files(&env.xcom_dir());
    let o = env.run(&[
        "tasks",
        "test",
        "cli_demo",
        "double",
        "2025-01-08",
        "-t",
        r#"{"factor": 3}"#,
    ]);
    ok(&o)?;
    ensure(json_of(&o) == json!({"day": "2025-01-08", "n": 63}), || {
        stdout(&o)
    })?;
    ensure(xcom_files(&env.xcom_dir()) == before, || {
        "tasks test wrote XComs".into()
    })?;

    let o = env.run(&["tasks", "run", "cli_demo", "double", "2025-01-08"]);
    ok(&o)?;
    let o = env.run(&["tasks", "render", "cli_demo", "query", "2025-01-08"]);
    ok(&o)?;
    let text = stdout(&o);
    ensure(text.contains("# property: sql"), || text.clone())?;
    ensure(
        text.contains("SELECT '2025-01-08' AS d, 42 AS n, '***' AS secret"),
        || text.clone(),
    )?;
    ensure(
        !text.contains("cli-pw-7f3a") && !stderr(&o).contains("cli-pw-7f3a"),
        || text.clone(),
    )?;
    // A task that is not templated says so.
    let o = env.run(&["tasks", "render", "cli_demo", "extract", "2025-01-08"]);
    ok(&o)?;
    ensure(stdout(&o).contains("declares no templated fields"), || {
        stdout(&o)
    })?;
    // The stored run is named by its id too.
    let o = env.run(&[
        "tasks",
        "test",
        "cli_demo",
        "double",
        "manual__2025-01-08T00:00:00+09:00",
    ]);
    ok(&o)?;
    ensure(json_of(&o) == json!({"day": "2025-01-08", "n": 42}), || {
        stdout(&o)
    })
}

fn tasks_run_takes_the_try_number_and_fails_with_exit_code_1() -> TestResult {
    let env = Env::new();
    let o = env.run_with(
        &["tasks", "run", "cli_demo", "extract", "2025-01-08"],
        &[("AIRFLOW_CTX_TRY_NUMBER", "3")],
    );
    ok(&o)?;
    ensure(stdout(&o).trim_end().ends_with(r#""try":3}"#), || {
        stdout(&o)
    })?;
    let o = env.run(&[
        "tasks",
        "run",
        "cli_demo",
        "fail",
        "2025-01-08",
        "--try-number",
        "2",
    ]);
    ensure(o.status.code() == Some(1), || format!("{:?}", o.status))?;
    ensure(stderr(&o).contains("this task always fails"), || stderr(&o))?;
    let o = env.run(&["dags", "test", "cli_demo", "2025-01-08"]);
    ensure(o.status.code() == Some(1), || format!("{:?}", o.status))?;
    ensure(stdout(&o).contains("failed"), || stdout(&o))?;
    // A task that skips itself: exit code 99, the stub DAG's skip_on_exit_code.
    let o = env.run(&["tasks", "run", "cli_demo", "skip", "2025-01-08"]);
    ensure(o.status.code() == Some(99), || format!("{:?}", o.status))?;
    ensure(stderr(&o).contains("task skipped: no new data"), || {
        stderr(&o)
    })
}

/// The arguments the Bash stub DAG passes (`stub_dag::bash_command`): options
/// first, Airflow's conf and data interval, the ids after `--`.
fn tasks_run_takes_airflows_conf_and_data_interval() -> TestResult {
    let env = Env::new();
    let xcom = env.xcom_dir().display().to_string();
    let run = |task: &str, conf: &str| {
        env.run(&[
            "tasks",
            "run",
            "--run-id",
            "scheduled__1",
            "--try-number",
            "1",
            "--xcom-dir",
            &xcom,
            "-c",
            conf,
            "--data-interval",
            "2025-01-06T15:00:00+00:00",
            "2025-01-08T15:00:00+00:00",
            "--",
            "cli_demo",
            task,
            "2025-01-06T15:00:00+00:00",
        ])
    };
    let o = run("extract", "{}");
    ok(&o)?;
    // Airflow's interval (two days), not the daily schedule's, in the DAG's timezone.
    ensure(
        json_of(&o)["interval"]
            == json!(["2025-01-07T00:00:00+09:00", "2025-01-09T00:00:00+09:00"]),
        || stdout(&o),
    )?;
    let o = run("double", r#"{"factor": 5}"#);
    ok(&o)?;
    ensure(json_of(&o)["n"] == json!(105), || stdout(&o))?;
    let o = env.run(&[
        "tasks",
        "run",
        "--data-interval",
        "2025-01-08T15:00:00+00:00",
        "2025-01-06T15:00:00+00:00",
        "--",
        "cli_demo",
        "extract",
        "2025-01-08",
    ]);
    ensure(o.status.code() == Some(1), || format!("{:?}", o.status))?;
    ensure(stderr(&o).contains("--data-interval ends"), || stderr(&o))
}

fn bad_input_is_a_clear_error() -> TestResult {
    let env = Env::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["dags", "test", "nope"],
            "no DAG \"nope\" in this binary (it has: quickstart, cli_demo)",
        ),
        (
            &["tasks", "test", "cli_demo", "nope", "2025-01-08"],
            "no task \"nope\" in DAG \"cli_demo\"",
        ),
        (
            &["tasks", "run", "cli_demo", "extract", "2025-13-45"],
            "is neither a date nor a run",
        ),
        (
            &["dags", "test", "cli_demo", "2025-01-08", "-c", "{oops"],
            "--conf is not valid JSON",
        ),
        (
            &["dags", "test", "cli_demo", "2025-01-08", "-c", "[1]"],
            "--conf must be a JSON object",
        ),
        (
            &["airflow", "stub-dag", "--bash"],
            "--bash needs --xcom-dir",
        ),
    ];
    for (args, expected) in cases {
        let o = env.run(args);
        ensure(o.status.code() == Some(1), || {
            format!("{args:?}: {:?}", o.status)
        })?;
        ensure(stderr(&o).contains(expected), || {
            format!("{args:?}: {}", stderr(&o))
        })?;
    }
    // Usage errors are clap's: exit code 2 and a usage line.
    let o = env.run(&["tasks", "frobnicate"]);
    ensure(o.status.code() == Some(2), || format!("{:?}", o.status))?;
    let o = env.run(&["--help"]);
    ok(&o)?;
    ensure(
        stdout(&o).contains("dags") && stdout(&o).contains("tasks"),
        || stdout(&o),
    )
}

fn log_lines_are_one_per_event() -> TestResult {
    let env = Env::new();
    let o = env.run(&["tasks", "run", "cli_demo", "extract", "2025-01-08"]);
    ok(&o)?;
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.contains("task succeeded"))
        .ok_or_else(|| err.clone())?;
    ensure(line.contains(" INFO extract "), || line.to_string())?;
    ensure(!line.contains("run_id") && line.len() < 120, || {
        line.to_string()
    })
}

/// The stub DAG checked in beside the example is what the generator writes now.
fn the_checked_in_stub_dag_is_current() -> TestResult {
    let env = Env::new();
    let o = env.run(&["airflow", "stub-dag", "--queue", "gust"]);
    ok(&o)?;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/quickstart/airflow/quickstart.py"
    );
    let checked_in = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    // The binary has the test's extra DAG too; the quick start's part must match.
    let generated = stdout(&o);
    let start = generated
        .find("@dag(\n    dag_id=\"quickstart\"")
        .ok_or_else(|| generated.clone())?;
    let end = generated[start..]
        .find("\nquickstart_dag = quickstart()\n")
        .map(|e| start + e)
        .ok_or_else(|| generated.clone())?;
    ensure(checked_in.contains(&generated[start..end]), || {
        format!(
            "regenerate {path} with `cargo run --features cli --example quickstart -- airflow stub-dag -o {path}`"
        )
    })
}

fn main() -> ExitCode {
    if std::env::var_os(PIPELINE).is_some() {
        return pipeline();
    }
    let tests: &[TestCase] = &[
        ("lists_and_show", lists_and_show),
        (
            "tasks_run_in_processes_equals_dags_test",
            tasks_run_in_processes_equals_dags_test,
        ),
        (
            "upstream_xcoms_from_the_store",
            upstream_xcoms_from_the_store,
        ),
        (
            "tasks_run_takes_the_try_number_and_fails_with_exit_code_1",
            tasks_run_takes_the_try_number_and_fails_with_exit_code_1,
        ),
        (
            "tasks_run_takes_airflows_conf_and_data_interval",
            tasks_run_takes_airflows_conf_and_data_interval,
        ),
        ("bad_input_is_a_clear_error", bad_input_is_a_clear_error),
        ("log_lines_are_one_per_event", log_lines_are_one_per_event),
        (
            "the_checked_in_stub_dag_is_current",
            the_checked_in_stub_dag_is_current,
        ),
    ];
    run_tests(tests)
}
