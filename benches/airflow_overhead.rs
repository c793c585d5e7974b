//! Airflow's per-task overhead of a gust task against a Python `@task` doing
//! the same no-op, on the same Airflow, in the same DAG runs (issue 15).
//!
//! ```text
//! eval "$(scripts/services.sh env)"      # GUST_AIRFLOW_PYTHON: a venv with apache-airflow==3.3.2
//! cargo bench --features cli,airflow --bench airflow_overhead
//! GUST_BENCH_RUNS=3 cargo bench --features cli,airflow --bench airflow_overhead
//! ```
//!
//! This binary is also the pipeline: with `GUST_BENCH_AIRFLOW_PIPELINE=1` its
//! `main` serves DAG `af_bench` (one gust task, `noop`, which returns at
//! once) through `gust::cli`. The bench packs itself as an executable bundle,
//! and `tests/data/airflow/e2e.sh` (Tier 3's machinery) starts a private
//! Airflow 3.3.2 on 127.0.0.1 (SQLite, LocalExecutor with parallelism 2,
//! api-server + scheduler + dag-processor) whose DAG file is the stub the
//! bundle generates (`airflow stub-dag`) with `benches/airflow_overhead_tasks.py`
//! appended: a Python `@task` `py_noop` that returns `None`, in parallel with
//! `noop`. It triggers `GUST_BENCH_RUNS` runs (default 10), one after the
//! other, and reads each task instance's timestamps from Airflow's metadata DB.
//!
//! The intervals, per task: `scheduled_dttm → end_date` (Airflow's whole
//! per-task cost: scheduler, executor, worker start, the task, the state
//! update), `queued_dttm → end_date`, and `start_date → end_date`. The last
//! is not like for like: a gust task's `start_date` is set by its `PATCH /run`
//! after the coordinator launched the binary, a Python task's by the same call
//! after its worker parsed the DAG file. So compare the scheduled and queued
//! intervals for the overhead, and `start → end` for what the task runner
//! adds after it reported running.

use std::process::{Command, ExitCode};

use gust::prelude::*;

const PIPELINE: &str = "GUST_BENCH_AIRFLOW_PIPELINE";
const DAG_ID: &str = "af_bench";

fn pipeline() -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let mut dag = Dag::builder(DAG_ID);
        dag.add(Task::from_fn("noop", |_| async { Ok(Value::Null) }));
        match dag.build() {
            Ok(d) => gust::cli::main([d]).await,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// A timestamp of Airflow's SQLite metadata DB (UTC, no zone).
fn time(ti: &Value, field: &str) -> chrono::NaiveDateTime {
    let s = ti[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing: {ti}"));
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .unwrap_or_else(|e| panic!("{field} {s:?}: {e}"))
}

/// Median (the lower of the middle two), min and max, in ms.
fn stats(mut v: Vec<i64>) -> (i64, i64, i64) {
    v.sort_unstable();
    (v[(v.len() - 1) / 2], v[0], v[v.len() - 1])
}

fn main() -> ExitCode {
    if std::env::var_os(PIPELINE).is_some() {
        return pipeline();
    }
    // `cargo bench` passes `--bench`; nothing to filter here.
    let Some(python) = std::env::var_os("GUST_AIRFLOW_PYTHON").filter(|p| !p.is_empty()) else {
        eprintln!(
            "GUST_AIRFLOW_PYTHON is not set: `eval \"$(scripts/services.sh env)\"` after \
             `scripts/services.sh start airflow` (a venv with apache-airflow==3.3.2)"
        );
        return ExitCode::FAILURE;
    };
    let runs: usize = std::env::var("GUST_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(10);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let bundle = dir.path().join("bundles").join(DAG_ID);
    let work = dir.path().join("airflow");
    std::fs::create_dir_all(bundle.parent().unwrap()).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let me = std::env::current_exe().expect("this binary");
    let out = Command::new(&me)
        .env(PIPELINE, "1")
        .args(["airflow", "pack", "--output"])
        .arg(&bundle)
        .output()
        .expect("running airflow pack");
    assert!(
        out.status.success(),
        "airflow pack: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    eprintln!("airflow_overhead: {runs} runs of {DAG_ID} on a private Airflow");
    // Progress and, on failure, Airflow's logs go straight to our stderr.
    let out = Command::new("bash")
        .arg(root.join("tests/data/airflow/e2e.sh"))
        .arg(&bundle)
        .arg(&work)
        .arg(DAG_ID)
        .arg(root.join("benches/airflow_overhead_tasks.py"))
        .arg(runs.to_string())
        .env("GUST_AIRFLOW_PYTHON", &python)
        .env("GUST_E2E_PIPELINE_ENV", format!("{PIPELINE}=1"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("running e2e.sh");
    assert!(out.status.success(), "e2e.sh failed: {}", out.status);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "e2e.sh output: {e}\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });

    let intervals = [
        ("scheduled → end", "scheduled_dttm"),
        ("queued → end", "queued_dttm"),
        ("start → end", "start_date"),
    ];
    let tasks = [
        ("gust `noop` (@task.stub)", "noop"),
        ("Python `py_noop` (@task)", "py_noop"),
    ];
    // samples[task][interval]: ms per run.
    let mut samples = vec![vec![Vec::new(); intervals.len()]; tasks.len()];
    for run in doc["runs"].as_array().expect("runs") {
        assert_eq!(run["run_state"], "success", "{run:#}");
        for (t, (_, task_id)) in tasks.iter().enumerate() {
            let ti = run["task_instances"]
                .as_array()
                .and_then(|tis| tis.iter().find(|ti| ti["task_id"] == *task_id))
                .unwrap_or_else(|| panic!("no task instance {task_id}: {run:#}"));
            assert!(
                ti["state"] == "success" && ti["try_number"] == 1,
                "{task_id}: {ti:#}"
            );
            let end = time(ti, "end_date");
            for (i, (_, field)) in intervals.iter().enumerate() {
                samples[t][i].push((end - time(ti, field)).num_milliseconds());
            }
        }
    }
    println!(
        "\nAirflow per-task overhead, {} runs (Airflow up in {} s, {} s in all)\n",
        samples[0][0].len(),
        doc["startup_seconds"],
        doc["total_seconds"]
    );
    println!("| task | interval | median | min | max |");
    println!("|---|---|---:|---:|---:|");
    let mut json = serde_json::Map::new();
    for (i, (interval, _)) in intervals.iter().enumerate() {
        for (t, (name, task_id)) in tasks.iter().enumerate() {
            let (med, min, max) = stats(samples[t][i].clone());
            println!("| {name} | {interval} | {med} ms | {min} ms | {max} ms |");
            json.insert(
                format!("{task_id} {interval}"),
                json!({"median_ms": med, "min_ms": min, "max_ms": max, "samples_ms": samples[t][i]}),
            );
        }
    }
    println!("\n{}", Value::Object(json));
    ExitCode::SUCCESS
}
