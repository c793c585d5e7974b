//! Process-level faults on real servers: PostgreSQL restarted mid-transaction
//! and crashed mid-`COPY`, MariaDB restarted mid-transaction and killed
//! mid-`LOAD DATA` (the retry sweeps the killed load's staging table), a Redis Cluster
//! master killed mid-load (its replica takes over), the MLflow server killed
//! and restarted mid-`log_batch` and mid-`TrainModel`.
//!
//! Faults land at a known point: `common::gated_store` holds a download
//! halfway until the test has killed the server, `common::mlflow_tripwire`
//! kills it just before a run's first `log_batch`. The results and what they
//! mean are in the fault matrix of docs/RELIABILITY.md.
//!
//! Every test owns private servers (`common::private`: `scripts/services.sh` on
//! free ports and a temporary state directory, stopped when the test ends, even
//! when it fails): the shared servers of the other tests are never touched, and
//! tests of this binary, each with its own servers, run in parallel.
//!
//! What each asserts, for the fault matrix of docs/RELIABILITY.md: the fault
//! surfaces as a retryable error kind (or is retried inside the hook), nothing
//! partial stays behind, and the retry ends with exactly the expected data: no
//! row, key or metric point missing or twice.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeZone;
use common::gated_store::{CHUNK, GatedStore};
use common::private::{Private, wait_for};
use futures::TryStreamExt;
use gust::hooks::mlflow::{Metric, MlflowHook, RunStatus};
use gust::hooks::mysql::MySqlHook;
use gust::hooks::object_store::{MemoryStore, ObjectStore, PutOptions};
use gust::hooks::postgres::PostgresHook;
use gust::hooks::redis::{RedisBatch, RedisHook};
use gust::hooks::sql::{Parameters, RunOptions, Sql, SqlHook};
use gust::retry::Backoff;
use gust::transfers::s3_to_redis::S3ToRedis;
use gust::transfers::s3_to_sql::S3ToSql;
use gust::{Context, Dag, ErrorKind, Operator, Task, TaskOptions};
use serde_json::json;

/// A bound on every wait for a server to reach a state (not a timing assertion:
/// a healthy run waits a few seconds).
const PATIENCE: Duration = Duration::from_secs(60);

fn ctx() -> Context {
    Context::builder("faults", "load").build()
}

async fn count(db: &dyn SqlHook, sql: &str) -> i64 {
    db.get_first(sql, Parameters::None)
        .await
        .unwrap()
        .unwrap()
        .values()
        .next()
        .and_then(|v| v.as_i64())
        .unwrap()
}

async fn autocommit(db: &dyn SqlHook, sql: &str) {
    db.run(
        Sql::from(sql),
        RunOptions {
            autocommit: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

/// Waits until another session runs a statement containing `needle`.
async fn wait_for_statement(db: &dyn SqlHook, needle: &str) {
    let sql = format!(
        "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE state = 'active' \
         AND pid <> pg_backend_pid() AND query LIKE '%{needle}%'"
    );
    wait_for(&format!("a session running {needle}"), PATIENCE, || {
        let sql = sql.clone();
        async move { (count(db, &sql).await > 0).then_some(()) }
    })
    .await;
}

// ---------------------------------------------------------------------------
// PostgreSQL

/// `pg_ctl restart -m fast` while a transaction sleeps between its inserts:
/// the session is terminated (57P01), the hook's error is retryable, nothing of
/// the transaction is left, the same hook (its pool) works after the restart,
/// and the retried transaction writes every row once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_transaction_rolls_back_and_the_retry_loads_once() {
    let Some(pg) = Private::start("postgres_default", &["postgres"]).await else {
        return;
    };
    let hook: Arc<dyn SqlHook> = Arc::new(
        PostgresHook::from_connection(&pg.conn("postgres_default").await)
            .await
            .unwrap(),
    );
    autocommit(
        &*hook,
        "CREATE TABLE fault_tx (id INTEGER PRIMARY KEY, v TEXT)",
    )
    .await;
    let insert = |a: i32, b: i32| {
        format!("INSERT INTO fault_tx (id, v) SELECT g, 'v' || g FROM generate_series({a}, {b}) g")
    };

    let h = hook.clone();
    let statements = vec![
        insert(1, 500),
        "SELECT pg_sleep(60)".into(),
        insert(501, 1000),
    ];
    let load = tokio::spawn(async move {
        h.run(Sql::Many(statements), RunOptions::default())
            .await
            .map(|_| ())
    });
    wait_for_statement(&*hook, "pg_sleep(60)").await;
    pg.sh(&["restart", "postgres"]).await;
    let e = load.await.unwrap().unwrap_err();
    eprintln!("the transaction failed: {e}");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable(), "{e}");

    // The same hook: its pool drops the dead connections and makes new ones.
    assert_eq!(count(&*hook, "SELECT COUNT(*) AS n FROM fault_tx").await, 0);
    let statements = vec![insert(1, 500), insert(501, 1000)];
    hook.run(Sql::Many(statements), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        count(
            &*hook,
            "SELECT COUNT(DISTINCT id) AS n FROM fault_tx WHERE id BETWEEN 1 AND 1000"
        )
        .await,
        1000
    );
    assert_eq!(
        count(&*hook, "SELECT COUNT(*) AS n FROM fault_tx").await,
        1000
    );
}

/// PostgreSQL crashes (`pg_ctl stop -m immediate`) while `S3ToSql` streams a
/// CSV object into `COPY … FROM STDIN`: the load fails retryable, the table
/// holds none of the rows sent before the crash (crash recovery discards the
/// uncommitted transaction), and the retry, with the same hook, loads every
/// row once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crashed_mid_copy_leaves_no_rows_and_the_retry_loads_once() {
    let Some(pg) = Private::start("postgres_default", &["postgres"]).await else {
        return;
    };
    let hook: Arc<dyn SqlHook> = Arc::new(
        PostgresHook::from_connection(&pg.conn("postgres_default").await)
            .await
            .unwrap(),
    );
    autocommit(
        &*hook,
        "CREATE TABLE fault_copy (id INTEGER PRIMARY KEY, payload TEXT)",
    )
    .await;
    let n = 50_000;
    let mut csv = String::from("id,payload\n");
    for i in 0..n {
        csv.push_str(&format!("{i},value-{i}\n"));
    }
    let inner = Arc::new(MemoryStore::new());
    inner.create_bucket("raw").await.unwrap();
    inner
        .put(
            "raw",
            "big.csv",
            csv.clone().into_bytes().into(),
            &PutOptions::new(),
        )
        .await
        .unwrap();
    let chunks = csv.len().div_ceil(CHUNK);
    let store = Arc::new(GatedStore::new(inner.clone(), chunks / 2));
    let op = S3ToSql::new("s3://raw/big.csv", "fault_copy")
        .with_store(store.clone())
        .with_hook(hook.clone());

    let load = tokio::spawn(async move { op.execute(&ctx()).await });
    store.paused().await;
    // Half the object is in the server's COPY, inside the open transaction.
    wait_for_statement(&*hook, "COPY").await;
    pg.sh(&["kill", "postgres"]).await;
    store.open();
    let e = load.await.unwrap().unwrap_err();
    eprintln!("the load failed: {e}");
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e}"
    );
    assert!(e.is_retryable(), "{e}");

    pg.sh(&["start", "postgres"]).await;
    assert_eq!(
        count(&*hook, "SELECT COUNT(*) AS n FROM fault_copy").await,
        0
    );
    let out = S3ToSql::new("s3://raw/big.csv", "fault_copy")
        .with_store(inner)
        .with_hook(hook.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], n);
    assert_eq!(
        count(&*hook, "SELECT COUNT(DISTINCT id) AS n FROM fault_copy").await,
        n
    );
    assert_eq!(
        count(&*hook, "SELECT COUNT(*) AS n FROM fault_copy").await,
        n
    );
    assert_eq!(
        count(
            &*hook,
            "SELECT COUNT(*) AS n FROM fault_copy WHERE payload <> 'value-' || id"
        )
        .await,
        0
    );
}

// ---------------------------------------------------------------------------
// MariaDB

/// The tables of the current database whose name starts with `prefix`.
async fn tables_like(db: &dyn SqlHook, prefix: &str) -> Vec<String> {
    db.get_records(
        "SELECT table_name AS t FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name LIKE ?",
        Parameters::from(json!([format!("{prefix}%")])),
    )
    .await
    .unwrap()
    .into_iter()
    .filter_map(|r| r["t"].as_str().map(str::to_string))
    .collect()
}

/// MariaDB is killed (SIGKILL) while `S3ToSql` streams a CSV object into
/// `LOAD DATA LOCAL INFILE` (into its staging table): the load fails
/// retryable, the target table holds none of the rows, and the retry, with
/// the same hook, loads every row once. The staging table of the killed load
/// outlives the crash (its `DROP` could not reach the server); its lease died
/// with the server, so the retry sweeps it: nothing is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_killed_mid_load_data_leaves_the_target_unchanged_and_the_retry_loads_once() {
    let Some(my) = Private::start("mysql_default", &["mariadb"]).await else {
        return;
    };
    let conn = my
        .conn("mysql_default")
        .await
        .with_extra("local_infile", json!(true));
    let hook: Arc<dyn SqlHook> = Arc::new(MySqlHook::from_connection(&conn).await.unwrap());
    autocommit(
        &*hook,
        "CREATE TABLE fault_load (id INTEGER PRIMARY KEY, payload TEXT)",
    )
    .await;
    let n = 50_000;
    let mut csv = String::from("id,payload\n");
    for i in 0..n {
        csv.push_str(&format!("{i},value-{i}\n"));
    }
    let inner = Arc::new(MemoryStore::new());
    inner.create_bucket("raw").await.unwrap();
    inner
        .put(
            "raw",
            "big.csv",
            csv.clone().into_bytes().into(),
            &PutOptions::new(),
        )
        .await
        .unwrap();
    let store = Arc::new(GatedStore::new(
        inner.clone(),
        csv.len().div_ceil(CHUNK) / 2,
    ));
    let op = S3ToSql::new("s3://raw/big.csv", "fault_load")
        .with_store(store.clone())
        .with_hook(hook.clone());

    let load = tokio::spawn(async move { op.execute(&ctx()).await });
    store.paused().await;
    wait_for("a session running LOAD DATA", PATIENCE, || {
        let hook = hook.clone();
        async move {
            let n = count(
                &*hook,
                "SELECT COUNT(*) AS n FROM information_schema.processlist \
                 WHERE id <> CONNECTION_ID() AND info LIKE 'LOAD DATA%'",
            )
            .await;
            (n > 0).then_some(())
        }
    })
    .await;
    my.sh(&["kill", "mariadb"]).await;
    store.open();
    let e = load.await.unwrap().unwrap_err();
    eprintln!("the load failed: {e}");
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e}"
    );
    assert!(e.is_retryable(), "{e}");

    my.sh(&["start", "mariadb"]).await;
    assert_eq!(
        count(&*hook, "SELECT COUNT(*) AS n FROM fault_load").await,
        0
    );
    let left = tables_like(&*hook, "fault_load__gust_staging").await;
    for t in &left {
        let rows = count(&*hook, &format!("SELECT COUNT(*) AS n FROM `{t}`")).await;
        eprintln!("left behind by the killed load: staging table {t} ({rows} rows)");
    }
    assert_eq!(left.len(), 1, "the killed load's staging table: {left:?}");
    let out = S3ToSql::new("s3://raw/big.csv", "fault_load")
        .with_store(inner)
        .with_hook(hook.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], n);
    assert_eq!(
        count(&*hook, "SELECT COUNT(DISTINCT id) AS n FROM fault_load").await,
        n
    );
    assert_eq!(
        count(&*hook, "SELECT COUNT(*) AS n FROM fault_load").await,
        n
    );
    // The retry dropped the killed load's staging table, then its own.
    assert_eq!(
        tables_like(&*hook, "fault_load__gust_staging").await,
        Vec::<String>::new(),
        "the killed load's staging table was not swept"
    );
}

/// MariaDB restarted (`mysqladmin shutdown`-style stop, then start) while a
/// transaction sleeps between its inserts: the session is ended, the hook's
/// error is retryable, nothing of the transaction is left (InnoDB rolls it
/// back), the same hook (its pool) works after the restart, and the retried
/// transaction writes every row once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_restarted_mid_transaction_rolls_back_and_the_retry_loads_once() {
    let Some(my) = Private::start("mysql_default", &["mariadb"]).await else {
        return;
    };
    let hook: Arc<dyn SqlHook> = Arc::new(
        MySqlHook::from_connection(&my.conn("mysql_default").await)
            .await
            .unwrap(),
    );
    autocommit(
        &*hook,
        "CREATE TABLE fault_tx (id INTEGER PRIMARY KEY, v TEXT) ENGINE = InnoDB",
    )
    .await;
    let insert = |a: i32, b: i32| {
        format!("INSERT INTO fault_tx (id, v) SELECT seq, CONCAT('v', seq) FROM seq_{a}_to_{b}")
    };

    let h = hook.clone();
    let statements = vec![insert(1, 500), "SELECT SLEEP(60)".into(), insert(501, 1000)];
    let load = tokio::spawn(async move {
        h.run(Sql::Many(statements), RunOptions::default())
            .await
            .map(|_| ())
    });
    wait_for("a session running SLEEP(60)", PATIENCE, || {
        let hook = hook.clone();
        async move {
            let n = count(
                &*hook,
                "SELECT COUNT(*) AS n FROM information_schema.processlist \
                 WHERE id <> CONNECTION_ID() AND info LIKE 'SELECT SLEEP(60)%'",
            )
            .await;
            (n > 0).then_some(())
        }
    })
    .await;
    my.sh(&["restart", "mariadb"]).await;
    let e = load.await.unwrap().unwrap_err();
    eprintln!("the transaction failed: {e}");
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e}"
    );
    assert!(e.is_retryable(), "{e}");

    // The same hook: its pool drops the dead connections and makes new ones.
    assert_eq!(count(&*hook, "SELECT COUNT(*) AS n FROM fault_tx").await, 0);
    let statements = vec![insert(1, 500), insert(501, 1000)];
    hook.run(Sql::Many(statements), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        count(&*hook, "SELECT COUNT(DISTINCT id) AS n FROM fault_tx").await,
        1000
    );
    assert_eq!(
        count(
            &*hook,
            "SELECT COUNT(*) AS n FROM fault_tx WHERE v = CONCAT('v', id)"
        )
        .await,
        1000
    );
}

// ---------------------------------------------------------------------------
// Redis Cluster

/// `INFO replication` of the node on `port`: `(master offset, [replica offsets])`.
async fn replication(password: &str, port: u16) -> Option<(u64, Vec<u64>)> {
    let password = password.to_string();
    let text = tokio::task::spawn_blocking(move || {
        std::process::Command::new("redis-cli")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "info",
                "replication",
            ])
            .env("REDISCLI_AUTH", password)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    })
    .await
    .ok()??;
    let mut master = None;
    let mut replicas = Vec::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("master_repl_offset:") {
            master = v.trim().parse().ok();
        } else if line.starts_with("slave") && line.contains("offset=") {
            let off = line.split(',').find_map(|f| f.strip_prefix("offset="))?;
            replicas.push(off.trim().parse().ok()?);
        }
    }
    Some((master?, replicas))
}

/// Waits until the replicas of every master of `hook`'s cluster have all the
/// writes their master has (a replica that never synced is not promoted, and
/// an acknowledged write not yet replicated dies with its master).
async fn wait_for_replicas(hook: &RedisHook, password: &str) {
    for (_, port) in hook.masters().await.unwrap() {
        wait_for("the replicas to catch up", PATIENCE, || async move {
            let (master, replicas) = replication(password, port).await?;
            (!replicas.is_empty() && replicas.iter().all(|&r| r == master)).then_some(())
        })
        .await;
    }
}

/// A master of the private cluster is killed (SIGKILL) while `S3ToRedis` loads
/// 20,000 rows; its replica is promoted after the node timeout. The load, a
/// task with retries, completes, and every key is there once with its value.
///
/// The keys written before the kill are first seen on the replicas: Redis
/// replicates asynchronously, so a write acknowledged by a master that dies
/// before passing it on is lost by Redis itself (see the notes of RELIABILITY).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_master_killed_mid_load_fails_over_and_the_load_is_exact() {
    let Some(cluster) = Private::start("redis_cluster", &["redis-cluster"]).await else {
        return;
    };
    let conn = cluster.conn("redis_cluster").await;
    let password = conn.password().unwrap_or_default().to_string();
    let hook = RedisHook::from_connection(&conn).await.unwrap();
    hook.test_connection().await.unwrap();

    let n = 20_000;
    let mut csv = String::from("id,payload\n");
    for i in 0..n {
        csv.push_str(&format!("{i},value-{i}\n"));
    }
    let inner = Arc::new(MemoryStore::new());
    inner.create_bucket("raw").await.unwrap();
    inner
        .put(
            "raw",
            "big.csv",
            csv.clone().into_bytes().into(),
            &PutOptions::new(),
        )
        .await
        .unwrap();
    let store = Arc::new(GatedStore::new(inner, csv.len().div_ceil(CHUNK) / 2));
    let prefix = "fault:row:";
    let op = S3ToRedis::new("s3://raw/big.csv", format!("{prefix}{{{{ index }}}}"))
        .with_store(store.clone())
        .with_hook(hook.clone());

    let retried = Arc::new(Mutex::new(Vec::<String>::new()));
    let on_retry = {
        let retried = retried.clone();
        move |_: &Context, e: &gust::Error| retried.lock().unwrap().push(e.to_string())
    };
    let mut dag = Dag::builder("faults");
    dag.add(
        Task::new("load", op).with_options(
            TaskOptions::default()
                .retries(10)
                .retry_delay(Duration::from_secs(1))
                .on_retry(on_retry),
        ),
    );
    let dag = dag.build().unwrap();
    let day = chrono_tz::UTC
        .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
        .unwrap();
    let run = tokio::spawn(async move { dag.test(day).await });

    store.paused().await;
    // Some rows are written; every master's replicas have them before the kill.
    wait_for("the first rows", PATIENCE, || {
        let hook = hook.clone();
        async move {
            let keys: Vec<String> = hook
                .scan(&format!("{prefix}*"), 1000)
                .try_collect()
                .await
                .ok()?;
            (!keys.is_empty()).then_some(())
        }
    })
    .await;
    wait_for_replicas(&hook, &password).await;
    let killed = cluster.sh(&["kill-cluster-master"]).await;
    eprintln!("killed the master on port {}", killed.trim());
    store.open();

    let report = run.await.unwrap();
    let task = report.task("load").unwrap();
    let retried = retried.lock().unwrap().clone();
    eprintln!(
        "the load ended {} after {} tries; retried on: {retried:#?}",
        task.state, task.tries
    );
    assert!(report.is_success(), "{report}");
    assert!(task.tries > 1, "the kill hit the load's first try");
    assert_eq!(report.xcom("load").unwrap()["rows"], n);

    let keys: BTreeSet<String> = hook
        .scan(&format!("{prefix}*"), 1000)
        .try_collect()
        .await
        .unwrap();
    let expected: BTreeSet<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    assert_eq!(keys.len(), n);
    assert!(
        keys == expected,
        "the keys are exactly row 0 to row {}",
        n - 1
    );
    let all: Vec<&String> = expected.iter().collect();
    let values: Vec<Option<serde_json::Value>> = hook.mget_json(&all).await.unwrap();
    for (key, value) in all.iter().zip(values) {
        let i = key.strip_prefix(prefix).unwrap();
        assert_eq!(
            value,
            Some(json!({"id": i, "payload": format!("value-{i}")})),
            "{key}"
        );
    }
}

/// Regression: `RedisHook::execute` sends a batch as one pipeline per master,
/// routed by address from the slot map it learnt from `CLUSTER SLOTS`. Only a
/// `MOVED`/`ASK` reply made it forget the map, so after a master died every
/// later call of that hook (every retry of a load) went to the dead address
/// and failed (`ClusterConnectionNotFound`), long after its replica had taken
/// over. Now a failed pipeline forgets the map: once the failover is done, the
/// hook's next call after a failed one reaches the promoted replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_execute_after_a_failover_reaches_the_promoted_replica() {
    let Some(cluster) = Private::start("redis_cluster", &["redis-cluster"]).await else {
        return;
    };
    let conn = cluster.conn("redis_cluster").await;
    let hook = RedisHook::from_connection(&conn).await.unwrap();
    let keys: Vec<String> = (0..300).map(|i| format!("failover:{i}")).collect();
    let batch = |value: &str| {
        let mut b = RedisBatch::new();
        for k in &keys {
            b.set(k.as_str(), value, None);
        }
        b
    };
    // The hook learns the slot map.
    hook.execute(&batch("before")).await.unwrap();
    wait_for_replicas(&hook, conn.password().unwrap_or_default()).await;
    let killed: u16 = cluster
        .sh(&["kill-cluster-master"])
        .await
        .trim()
        .parse()
        .unwrap();
    wait_for("the replica's promotion", PATIENCE, || {
        let conn = conn.clone();
        async move {
            let fresh = RedisHook::from_connection(&conn).await.ok()?;
            let masters = fresh.masters().await.ok()?;
            let promoted = masters.len() == 3 && masters.iter().all(|(_, p)| *p != killed);
            (promoted && fresh.test_connection().await.is_ok()).then_some(())
        }
    })
    .await;

    // The hook's map may still name the dead master, and a node that has not
    // yet heard of the promotion may name it again in CLUSTER SLOTS: a few
    // calls may fail, retryably, as a task's retries would see. Before the
    // fix every call failed, for as long as the hook lived.
    let mut failures = 0;
    while let Err(e) = hook.execute(&batch("after")).await {
        eprintln!("a call after the failover failed: {e}");
        assert!(e.is_retryable(), "{e}");
        failures += 1;
        assert!(
            failures < 5,
            "the hook never reached the promoted replica: {e}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let values = hook.mget(&keys).await.unwrap();
    assert!(
        values
            .iter()
            .all(|v| v.as_deref() == Some(b"after".as_slice())),
        "every key has the value written after the failover"
    );
}

// ---------------------------------------------------------------------------
// MLflow

/// The MLflow server is killed (SIGKILL) and started again while the hook logs
/// 20,000 metric points (20 `log-batch` requests). The hook, given the patience
/// of a restart (retries every 500 ms), rides it out; every point is there
/// once (MLflow drops a point sent twice: the retry of a request the server
/// committed before dying), and the experiment has one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_killed_mid_log_batch_is_retried_without_duplicate_points() {
    let Some(server) = Private::start("mlflow_default", &["mlflow"]).await else {
        return;
    };
    let conn = server.conn("mlflow_default").await;
    let hook = MlflowHook::from_connection(&conn)
        .unwrap()
        .with_max_retries(120)
        .with_backoff(Backoff::constant(Duration::from_millis(500)));
    let experiment = hook.create_experiment("faults").await.unwrap();
    let run = hook.create_run(&experiment, Some("batch")).await.unwrap();
    let run_id = run.run_id().to_string();
    let (keys, steps) = (10, 2000);
    let metrics: Vec<Metric> = (0..steps)
        .flat_map(|step| {
            (0..keys).map(move |k| Metric {
                key: format!("m{k}"),
                value: f64::from(step) * 0.5 + f64::from(k),
                timestamp: 1_700_000_000_000 + i64::from(step),
                step: i64::from(step),
            })
        })
        .collect();

    let logging = tokio::spawn({
        let run = run.clone();
        async move { run.log_batch(&metrics, &[], &[]).await }
    });
    // Step-major points: the history of m0 grows with every request.
    let seen = wait_for("the first points", PATIENCE, || {
        let (hook, run_id) = (hook.clone(), run_id.clone());
        async move {
            let n = hook.get_metric_history(&run_id, "m0").await.ok()?.len();
            (n > 0).then_some(n)
        }
    })
    .await;
    server.sh(&["kill", "mlflow"]).await;
    assert!(
        seen < steps as usize && !logging.is_finished(),
        "the server died mid-batch ({seen} of {steps} points of m0 logged)"
    );
    server.sh(&["start", "mlflow"]).await;
    logging.await.unwrap().unwrap();
    run.end(RunStatus::Finished).await.unwrap();

    for k in 0..keys {
        let history = hook
            .get_metric_history(&run_id, &format!("m{k}"))
            .await
            .unwrap();
        let distinct: BTreeSet<i64> = history.iter().map(|m| m.step).collect();
        assert_eq!(history.len(), steps as usize, "m{k}: one point per step");
        assert_eq!(distinct.len(), steps as usize, "m{k}: every step");
    }
    let (runs, _) = hook
        .search_runs(&[experiment.as_str()], "", 100, None)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "one run");
}

/// The MLflow server is killed while `TrainModel` runs, after its run was
/// created and before anything was logged to it (the client does not retry:
/// the task owns patience); the server is started again and the task's retry
/// trains and logs anew. The retry succeeds with exactly one `FINISHED` run
/// for the task instance, carrying the metrics and gust's tags. The killed
/// try's run could not be marked `FAILED` then (the server was down), but it
/// was tagged with the task instance by its `runs/create`, so the retry finds
/// it and ends it `FAILED`: no `RUNNING` run is left (before 0756a9e it stayed
/// `RUNNING`, empty and untagged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_killed_mid_train_model_the_retry_logs_one_finished_run() {
    use common::mlflow_tripwire::Tripwire;
    use gust::hooks::mlflow::RestStore;
    use gust::ml::Columns;
    use gust::ml::estimator::Estimator;
    use gust::ml::pipeline::Pipeline;
    use gust::operators::ml::{TrainModel, TrainingData};

    let Some(server) = Private::start("mlflow_default", &["mlflow"]).await else {
        return;
    };
    let conn = server.conn("mlflow_default").await;
    let script = server.script();
    // The fault: kill the server, and start it again in the background (the
    // task's retries wait for it).
    let fault: common::mlflow_tripwire::Fault = Box::new(move || {
        Box::pin(async move {
            script.sh(&["kill", "mlflow"]).await;
            tokio::spawn(async move { script.sh(&["start", "mlflow"]).await });
        })
    });
    let rest = RestStore::from_connection(&conn)
        .unwrap()
        .with_max_retries(0);
    let hook = MlflowHook::with_store(Arc::new(Tripwire::new(rest, fault)));

    let rows: Vec<serde_json::Value> = (0..60)
        .map(|i| json!({"a": f64::from(i % 13), "label": if i % 13 > 6 { "big" } else { "small" }}))
        .collect();
    let mut dag = Dag::builder("faults");
    let extract = dag.add(Task::from_fn("extract", move |_| {
        let rows = rows.clone();
        async move { Ok(json!(rows)) }
    }));
    let train = dag.add(
        Task::new(
            "train",
            TrainModel::new(
                TrainingData::upstream("extract"),
                Columns::new("label").numeric(["a"]),
                Pipeline::new(Estimator::decision_tree_classifier()),
            )
            .with_mlflow(hook.clone())
            .experiment("faults-train"),
        )
        .with_options(
            TaskOptions::default()
                .retries(60)
                .retry_delay(Duration::from_secs(1)),
        ),
    );
    let _ = &extract >> &train;
    let day = chrono_tz::UTC
        .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
        .unwrap();
    let report = dag.build().unwrap().test(day).await;
    eprintln!("{report}");
    assert!(report.is_success(), "{report}");
    assert!(
        report.task("train").unwrap().tries > 1,
        "the fault hit a try"
    );
    let run_id = report.xcom("train").unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();

    let experiment = hook.get_experiment_by_name("faults-train").await.unwrap();
    let (runs, _) = hook
        .search_runs(&[experiment.experiment_id.as_str()], "", 100, None)
        .await
        .unwrap();
    for r in &runs {
        eprintln!(
            "run {} status {:?}, {} metrics, {} tags",
            r.info.run_id,
            r.info.status,
            r.data.metrics.len(),
            r.data.tags.len()
        );
    }
    let finished: Vec<_> = runs
        .iter()
        .filter(|r| r.info.status == RunStatus::Finished)
        .collect();
    assert_eq!(finished.len(), 1, "one finished run");
    assert_eq!(finished[0].info.run_id, run_id);
    let running: Vec<_> = runs
        .iter()
        .filter(|r| r.info.status == RunStatus::Running)
        .collect();
    assert!(running.is_empty(), "no RUNNING orphan: {running:?}");
    let failed: Vec<_> = runs
        .iter()
        .filter(|r| r.info.status == RunStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "the killed try's run, ended by the retry");
    assert_eq!(failed[0].data.tag("gust.task_id"), Some("train"));
    assert_eq!(failed[0].data.tag("gust.try_number"), Some("1"));
    let tags = &finished[0].data.tags;
    assert!(
        tags.iter()
            .any(|t| t.key == "gust.task_id" && t.value == "train"),
        "{tags:?}"
    );
}

/// The same fault with the hook's default patience (4 attempts within about
/// 3 s, far less than a restart): the client gives up and marks its error
/// exhausted, so a task retries it only with `retry_exhausted(true)`. Each try
/// sends the whole batch again from its first request; MLflow drops the points
/// it already has, so the history ends with one point per step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_killed_mid_log_batch_the_task_retry_resends_without_duplicates() {
    let Some(server) = Private::start("mlflow_default", &["mlflow"]).await else {
        return;
    };
    let conn = server.conn("mlflow_default").await;
    let hook = MlflowHook::from_connection(&conn).unwrap();
    let experiment = hook.create_experiment("faults").await.unwrap();
    let run = hook.create_run(&experiment, Some("batch")).await.unwrap();
    let run_id = run.run_id().to_string();
    let (keys, steps) = (10, 2000);
    let metrics: Vec<Metric> = (0..steps)
        .flat_map(|step| {
            (0..keys).map(move |k| Metric {
                key: format!("m{k}"),
                value: f64::from(step) * 0.5 + f64::from(k),
                timestamp: 1_700_000_000_000 + i64::from(step),
                step: i64::from(step),
            })
        })
        .collect();
    let metrics = Arc::new(metrics);

    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut dag = Dag::builder("faults");
    dag.add(
        Task::from_fn("log", {
            let (run, metrics) = (run.clone(), metrics.clone());
            move |_| {
                let (run, metrics) = (run.clone(), metrics.clone());
                async move {
                    run.log_batch(&metrics, &[], &[]).await?;
                    Ok(json!(null))
                }
            }
        })
        .with_options(
            TaskOptions::default()
                .retries(60)
                .retry_delay(Duration::from_secs(1))
                .retry_exhausted(true)
                .on_retry({
                    let errors = errors.clone();
                    move |_: &Context, e: &gust::Error| errors.lock().unwrap().push(e.to_string())
                }),
        ),
    );
    let dag = dag.build().unwrap();
    let day = chrono_tz::UTC
        .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
        .unwrap();
    let logging = tokio::spawn(async move { dag.test(day).await });
    let seen = wait_for("the first points", PATIENCE, || {
        let (hook, run_id) = (hook.clone(), run_id.clone());
        async move {
            let n = hook.get_metric_history(&run_id, "m0").await.ok()?.len();
            (n > 0).then_some(n)
        }
    })
    .await;
    server.sh(&["kill", "mlflow"]).await;
    assert!(
        seen < steps as usize && !logging.is_finished(),
        "the server died mid-batch ({seen} of {steps} points of m0 logged)"
    );
    server.sh(&["start", "mlflow"]).await;
    let report = logging.await.unwrap();
    let errors = errors.lock().unwrap().clone();
    eprintln!("{report}\nretried on: {errors:#?}");
    assert!(report.is_success(), "{report}");
    assert!(report.task("log").unwrap().tries > 1, "a try failed");
    assert!(
        errors.iter().all(|e| e.contains("retries exhausted")),
        "the client gave up before the task retried: {errors:?}"
    );
    for k in 0..keys {
        let history = hook
            .get_metric_history(&run_id, &format!("m{k}"))
            .await
            .unwrap();
        let distinct: BTreeSet<i64> = history.iter().map(|m| m.step).collect();
        assert_eq!(history.len(), steps as usize, "m{k}: one point per step");
        assert_eq!(distinct.len(), steps as usize, "m{k}: every step");
    }
}
