//! Load: a DAG of 10,000 tasks passing XCom (no server), and 64 transfers at
//! once sharing one PostgreSQL hook (its pool of 4 connections). The
//! assertions are about correctness under load — every row once, every XCom
//! delivered, the pool's bound held — never about time; the elapsed times
//! are printed for the record.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Instant;

use chrono::TimeZone;
use gust::formats::csv::CsvFormat;
use gust::hooks::object_store::{MemoryStore, ObjectStore, PutOptions};
use gust::hooks::postgres::PostgresHook;
use gust::hooks::sql::{Parameters, SqlHook};
use gust::prelude::*;
use gust::transfers::s3_to_sql::S3ToSql;
use gust::transfers::sql_to_s3::SqlToS3;

fn day() -> chrono::DateTime<chrono_tz::Tz> {
    chrono_tz::UTC
        .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
        .unwrap()
}

/// `root >> [9,998 workers] >> sink`: each worker pulls the root's XCom and
/// returns its own, the sink pulls all 9,998 and sums them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_tasks_pass_xcom() {
    const WORKERS: i64 = 9_998;
    let mut dag = Dag::builder("load_10k").max_active_tasks(64);
    let root = dag.add(Task::from_fn("root", |_ctx| async { Ok(json!(1_000)) }));
    let sink = dag.add(Task::from_fn("sink", |ctx| async move {
        let mut sum = 0;
        for i in 0..WORKERS {
            let v = ctx
                .xcom_pull(&format!("w{i}"))
                .and_then(|v| v.as_i64())
                .ok_or_else(|| Error::fail_now(format!("no XCom from w{i}")))?;
            sum += v;
        }
        Ok(json!(sum))
    }));
    for i in 0..WORKERS {
        let w = dag.add(Task::from_fn(format!("w{i}"), move |ctx| async move {
            let base = ctx.xcom_pull("root").and_then(|v| v.as_i64()).unwrap_or(0);
            Ok(json!(base + i))
        }));
        let _ = &root >> &w;
        let _ = &w >> &sink;
    }
    let started = Instant::now();
    let report = dag.build().unwrap().test(day()).await;
    eprintln!("10,000 tasks ran in {:.2?}", started.elapsed());
    assert_eq!(report.tasks.len(), 10_000);
    assert!(
        report.is_success(),
        "{}",
        report.tasks.iter().filter(|t| t.error.is_some()).count()
    );
    assert!(report.tasks.iter().all(|t| t.tries == 1));
    let expected = WORKERS * 1_000 + WORKERS * (WORKERS - 1) / 2;
    assert_eq!(report.xcom("sink"), Some(&json!(expected)));
}

/// The client connections on the test database, other than the asker's own.
async fn server_connections(monitor: &PostgresHook) -> i64 {
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

/// 64 CSV objects loaded into 64 tables at once through one hook, then the 64
/// tables extracted back at once: every table holds its rows exactly once,
/// every extract equals its source, and the server never sees more
/// connections from the hook than its pool allows (4) plus the one it checks
/// the connection with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_transfers_share_one_hook() {
    const N: usize = 64;
    const ROWS: usize = 2_000;
    let conn = require_conn!("postgres_default");
    let db = Arc::new(PostgresHook::from_connection(&conn).await.unwrap());
    let monitor = PostgresHook::from_connection(&conn).await.unwrap();
    let baseline = server_connections(&monitor).await;
    let store = Arc::new(MemoryStore::new());
    store.create_bucket("load").await.unwrap();
    let prefix = common::unique("load").replace('-', "_");
    for i in 0..N {
        let mut csv = String::from("id,name,score\n");
        for r in 0..ROWS {
            csv.push_str(&format!("{r},name-{i}-{r},{}.5\n", r % 97));
        }
        store
            .put(
                "load",
                &format!("in/{i}.csv"),
                csv.into(),
                &PutOptions::new(),
            )
            .await
            .unwrap();
    }

    // Sample the server's connection count while the transfers run.
    let peak = Arc::new(AtomicI64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let (peak, done) = (peak.clone(), done.clone());
        async move {
            while !done.load(Ordering::Relaxed) {
                let n = server_connections(&monitor).await;
                peak.fetch_max(n, Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            monitor
        }
    });

    let mut dag = Dag::builder("load_64").max_active_tasks(N);
    for i in 0..N {
        let table = format!("{prefix}_{i}");
        let load = dag.add(Task::new(
            format!("load_{i}"),
            S3ToSql::new(format!("s3://load/in/{i}.csv"), table.clone())
                .create_table([
                    ("id", "BIGINT"),
                    ("name", "TEXT"),
                    ("score", "DOUBLE PRECISION"),
                ])
                .with_store(store.clone())
                .with_hook(db.clone()),
        ));
        let extract = dag.add(Task::new(
            format!("extract_{i}"),
            SqlToS3::new(
                format!("SELECT id, name, score FROM {table} ORDER BY id"),
                format!("s3://load/out/{i}.csv"),
            )
            .file_format(CsvFormat::new())
            .with_store(store.clone())
            .with_hook(db.clone()),
        ));
        let _ = &load >> &extract;
    }
    let started = Instant::now();
    let report = dag.build().unwrap().test(day()).await;
    done.store(true, Ordering::Relaxed);
    let monitor = sampler.await.unwrap();
    eprintln!(
        "{N} loads and {N} extracts of {ROWS} rows each through one hook in {:.2?}; peak server connections {} (baseline {baseline})",
        started.elapsed(),
        peak.load(Ordering::Relaxed)
    );
    assert!(report.is_success(), "{report}");

    for i in 0..N {
        let table = format!("{prefix}_{i}");
        let row = db
            .get_first(
                &format!(
                    "SELECT count(*) AS n, count(DISTINCT id) AS d, sum(id) AS s FROM {table}"
                ),
                Parameters::None,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row["n"], json!(ROWS), "{table}");
        assert_eq!(row["d"], json!(ROWS), "{table}: a row loaded twice");
        assert_eq!(
            row["s"].to_string().trim_matches('"'),
            (ROWS * (ROWS - 1) / 2).to_string()
        );
        let back = store.get("load", &format!("out/{i}.csv")).await.unwrap();
        let source = store.get("load", &format!("in/{i}.csv")).await.unwrap();
        assert_eq!(back, source, "extract {i} differs from its source");
    }
    let peak = peak.load(Ordering::Relaxed);
    assert!(
        peak - baseline <= 5,
        "the hook held {} connections at once (pool of 4, plus its check)",
        peak - baseline
    );
    let drop_tables: Vec<String> = (0..N).map(|i| format!("DROP TABLE {prefix}_{i}")).collect();
    db.run(drop_tables.into(), Default::default())
        .await
        .unwrap();
    drop(monitor);
}
