//! Soak: seed 000's iris pipeline (S3 → PostgreSQL → train → MLflow registry)
//! run again and again against the real servers, each run with new hooks as
//! a fresh task process would build them. After a warm-up, the process's
//! resident memory, its open file descriptors (sockets included) and the
//! PostgreSQL server's client connections must stay flat:
//!
//! * open file descriptors: at most [`FD_SLACK`] above the warm-up's highest;
//! * PostgreSQL client connections, once the run's pools have closed: at most
//!   the warm-up's highest;
//! * resident memory: at most [`RSS_SLACK_MIB`] MiB above the warm-up's
//!   highest (the allocator keeps freed pages; a leak of one run's data —
//!   the table, the forest, the model upload — grows past it within a few
//!   runs).
//!
//! CI runs the short variant ([`SHORT_RUNS`] runs). `GUST_SOAK_SECS=1800`
//! runs for half an hour instead (opt-in). Every sample is printed.

#[path = "../examples/iris_pipeline/pipeline.rs"]
#[allow(dead_code)]
mod pipeline;

mod common;

use std::time::{Duration, Instant};

use chrono::TimeZone;
use gust::hooks::postgres::PostgresHook;
use gust::hooks::sql::{Parameters, SqlHook};
use pipeline::Pipeline;

const SHORT_RUNS: usize = 12;
const WARM_UP_RUNS: usize = 3;
const FD_SLACK: usize = 4;
const RSS_SLACK_MIB: u64 = 48;

#[derive(Debug, Clone, Copy)]
struct Sample {
    rss_kib: u64,
    fds: usize,
    pg_connections: i64,
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Client connections on the pipeline's database, other than the monitor's.
async fn pg_connections(monitor: &PostgresHook) -> i64 {
    let row = monitor
        .get_first(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND backend_type = 'client backend'",
            Parameters::None,
        )
        .await
        .unwrap()
        .unwrap();
    row["n"].as_i64().unwrap()
}

/// The server's count once the last run's pools have had time to close
/// (sqlx closes a dropped pool's connections in the background).
async fn settled_pg_connections(monitor: &PostgresHook, at_most: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = pg_connections(monitor).await;
        if n <= at_most || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_pipeline_runs_stay_flat() {
    let pg = require_conn!("postgres_default");
    let _s3 = require_conn!("aws_default");
    if std::env::var_os("MLFLOW_TRACKING_URI").is_none() {
        assert!(!common::ci(), "CI=true and MLFLOW_TRACKING_URI is unset");
        eprintln!("SKIPPED: MLFLOW_TRACKING_URI is unset");
        return;
    }
    let monitor = PostgresHook::from_connection(&pg).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let model_name = common::unique("soak_iris");
    let experiment = common::unique("soak");
    let long = std::env::var("GUST_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    let date = chrono_tz::Asia::Seoul
        .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
        .unwrap();
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut run = 0;
    loop {
        let done = match long {
            Some(d) => started.elapsed() >= d && run >= SHORT_RUNS,
            None => run >= SHORT_RUNS,
        };
        if done {
            break;
        }
        {
            let mut p = Pipeline::from_env(work.path()).await.unwrap();
            p.model_name = model_name.clone();
            p.experiment = experiment.clone();
            p.seed = run as u64;
            p.ensure_csv().await.unwrap();
            let report = p.dag().unwrap().test(date).await;
            assert!(report.is_success(), "run {run}: {report}");
            assert_eq!(report.xcom("s3_to_db").unwrap()["rows"], 150);
            if run == 0 {
                // The monitor sees the pipeline's pool while it is alive.
                assert!(pg_connections(&monitor).await >= 1);
            }
        }
        let ceiling = samples.iter().map(|s| s.pg_connections).max().unwrap_or(0);
        let sample = Sample {
            rss_kib: rss_kib(),
            fds: open_fds(),
            pg_connections: settled_pg_connections(&monitor, ceiling).await,
        };
        eprintln!(
            "soak run {run:>3} at {:>6.1?}: rss {:>7} KiB, fds {:>4}, postgres connections {}",
            started.elapsed(),
            sample.rss_kib,
            sample.fds,
            sample.pg_connections
        );
        samples.push(sample);
        run += 1;
    }

    let (warm, rest) = samples.split_at(WARM_UP_RUNS);
    let warm_rss = warm.iter().map(|s| s.rss_kib).max().unwrap();
    let warm_fds = warm.iter().map(|s| s.fds).max().unwrap();
    let warm_pg = warm.iter().map(|s| s.pg_connections).max().unwrap();
    for (i, s) in rest.iter().enumerate() {
        let run = i + WARM_UP_RUNS;
        assert!(
            s.fds <= warm_fds + FD_SLACK,
            "run {run}: {} open fds, warm-up at most {warm_fds}: a leak",
            s.fds
        );
        assert!(
            s.pg_connections <= warm_pg,
            "run {run}: {} postgres connections, warm-up at most {warm_pg}: a leak",
            s.pg_connections
        );
        assert!(
            s.rss_kib <= warm_rss + RSS_SLACK_MIB * 1024,
            "run {run}: rss {} KiB, warm-up at most {warm_rss} KiB: a leak",
            s.rss_kib
        );
    }
    // The pipeline's own table was replaced each run, not appended to.
    let rows = monitor
        .get_first(
            &format!("SELECT count(*) AS n FROM {}", pipeline::TABLE),
            Parameters::None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rows["n"], 150);
}
