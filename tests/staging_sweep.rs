//! Stale staging tables: a staged load whose process or database died leaves
//! its `<table>__gust_staging_…` table behind; the next staged load of the
//! same table drops it, and never the staging table of a load still running.
//!
//! One scenario on SQLite (a file, no server), PostgreSQL and MariaDB: tables
//! as a crash leaves them, a load held mid-download (its staging table made,
//! its lease held), a second load of the same table run meanwhile. The second
//! load must sweep the stale tables, keep the held load's and any table that
//! only looks like a staging table, and both loads' rows must be exact.

mod common;

use std::sync::Arc;

use common::gated_store::GatedStore;
use common::transfers::{put, rows};
use gust::hooks::object_store::{MemoryStore, ObjectStore};
use gust::hooks::sql::{RunOptions, Sql, SqlHook};
use gust::transfers::IfExists;
use gust::transfers::s3_to_sql::S3ToSql;
use gust::{Context, Operator};
use serde_json::{Value, json};

fn ctx() -> Context {
    Context::builder("staging_sweep", "load").build()
}

/// Rows of the held load (ids 1..=HELD) and of the second load (after them).
const HELD: u64 = 3000;
const SECOND: u64 = 10;

/// A name long enough that the held load's first gated chunk (4096 bytes)
/// holds fewer rows than one SQLite insert batch (500): the held load has then
/// written nothing, and SQLite (one writer at a time) lets the second load in.
fn name_of(prefix: &str, id: u64) -> String {
    format!("{prefix}{id:0>40}")
}

fn csv(ids: std::ops::RangeInclusive<u64>, prefix: &str) -> String {
    let mut s = String::from("id,name\n");
    for id in ids {
        s.push_str(&format!("{id},{}\n", name_of(prefix, id)));
    }
    s
}

struct Backend {
    db: Arc<dyn SqlHook>,
    table: String,
    /// SQL listing the table's staging-like tables, one `name` per row.
    list: String,
    /// Tables as a dead load leaves them: must be dropped.
    stale: Vec<String>,
    /// Tables that must stay: look-alikes, a live process's (SQLite).
    kept: Vec<String>,
}

async fn names(b: &Backend) -> Vec<String> {
    let mut n: Vec<String> = rows(&*b.db, &b.list)
        .await
        .into_iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

async fn sweeps_stale_tables_and_keeps_a_live_loads(b: Backend) {
    let (db, table) = (b.db.clone(), b.table.clone());
    let mut setup = vec![format!("INSERT INTO {table} (id, name) VALUES (1, 'old')")];
    for t in b.stale.iter().chain(&b.kept) {
        setup.push(format!(
            "CREATE TABLE {t} AS SELECT * FROM {table} WHERE 1 = 0"
        ));
        setup.push(format!("INSERT INTO {t} (id, name) VALUES (99, 'crash')"));
    }
    common::transfers::run(&*db, &setup).await;
    let before = names(&b).await;
    assert_eq!(before.len(), b.stale.len() + b.kept.len(), "{before:?}");

    let inner = Arc::new(MemoryStore::new());
    inner.create_bucket("raw").await.unwrap();
    put(&*inner, "raw", "held.csv", csv(1..=HELD, "a")).await;
    put(
        &*inner,
        "raw",
        "second.csv",
        csv(HELD + 1..=HELD + SECOND, "b"),
    )
    .await;
    let gated = Arc::new(GatedStore::new(inner.clone(), 1));
    let merge = IfExists::merge(["id"]);
    let held = S3ToSql::new("s3://raw/held.csv", table.clone())
        .if_exists(merge.clone())
        .with_store(gated.clone())
        .with_hook(db.clone());
    let held = tokio::spawn(async move { held.execute(&ctx()).await });
    gated.paused().await;

    // The held load's staging table exists now, and its lease is held.
    let during = names(&b).await;
    let live: Vec<&String> = during.iter().filter(|n| !before.contains(n)).collect();
    assert_eq!(live.len(), 1, "the held load's staging table: {during:?}");
    let live = live[0].clone();

    let second = S3ToSql::new("s3://raw/second.csv", table.clone())
        .if_exists(merge)
        .with_store(inner.clone())
        .with_hook(db.clone());
    // A guard against a hang (the held load blocking the second), not a timing check.
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), second.execute(&ctx()))
        .await
        .expect("the second load waited for the held one")
        .unwrap();
    assert_eq!(out["rows"], SECOND);

    let after = names(&b).await;
    for s in &b.stale {
        let s = s.rsplit('.').next().unwrap().trim_matches(['"', '`']);
        assert!(
            !after.iter().any(|n| n == s),
            "stale {s} not dropped: {after:?}"
        );
    }
    assert!(
        after.contains(&live),
        "the live load's {live} was dropped: {after:?}"
    );
    for k in &b.kept {
        let k = k.rsplit('.').next().unwrap().trim_matches(['"', '`']);
        assert!(after.iter().any(|n| n == k), "{k} must stay: {after:?}");
    }
    assert_eq!(after.len(), 1 + b.kept.len(), "{after:?}");

    gated.open();
    let out = held.await.unwrap().unwrap();
    assert_eq!(out["rows"], HELD);

    // Every row of both loads once, with its value; row 1's 'old' merged over.
    let got = rows(&*db, &format!("SELECT id, name FROM {table} ORDER BY id")).await;
    let want: Vec<Value> = (1..=HELD)
        .map(|id| json!({"id": id, "name": name_of("a", id)}))
        .chain((HELD + 1..=HELD + SECOND).map(|id| json!({"id": id, "name": name_of("b", id)})))
        .collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the rows differ from the two loads'");
    // Only the look-alikes remain.
    assert_eq!(names(&b).await.len(), b.kept.len());

    let mut cleanup = vec![format!("DROP TABLE {table}")];
    cleanup.extend(b.kept.iter().map(|k| format!("DROP TABLE {k}")));
    db.run(Sql::Many(cleanup), RunOptions::default())
        .await
        .unwrap();
}

/// A process id that ran and has exited.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_next_load_sweeps_stale_staging_tables_but_not_a_live_loads() {
    use gust::hooks::sqlite::SqliteHook;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.db");
    let db = Arc::new(
        SqliteHook::open("lite", path.to_str().unwrap())
            .await
            .unwrap(),
    );
    let table = "people".to_string();
    db.run(
        Sql::from(format!(
            "CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)"
        )),
        RunOptions::default(),
    )
    .await
    .unwrap();
    let me = std::process::id();
    let parent = std::os::unix::process::parent_id();
    let p = format!("{table}__gust_staging_");
    sweeps_stale_tables_and_keeps_a_live_loads(Backend {
        db,
        list: format!(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '{table}\\_\\_gust\\_staging\\_%' ESCAPE '\\'"
        ),
        stale: vec![
            // A process that died mid-load.
            format!("{p}{:x}_deadbeef", dead_pid()),
            // This process, but no load of it is running (a cancelled load
            // whose clean-up could not run).
            format!("{p}{me:x}_0badf00d"),
        ],
        kept: vec![
            // A process that runs (this test's parent): maybe mid-load.
            format!("{p}{parent:x}_cafef00d"),
            format!("{p}archive"),
        ],
        table,
    })
    .await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_next_load_sweeps_stale_staging_tables_but_not_a_live_loads() {
    use gust::hooks::postgres::PostgresHook;
    let Some(conn) = common::server_conn("postgres_default") else {
        return;
    };
    let db = Arc::new(PostgresHook::from_connection(&conn).await.unwrap());
    let table = format!("sweep_{}", std::process::id());
    common::transfers::run(
        &*db,
        &[
            format!("DROP TABLE IF EXISTS {table}"),
            format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, name TEXT)"),
        ],
    )
    .await;
    let p = format!("{table}__gust_staging_");
    sweeps_stale_tables_and_keeps_a_live_loads(Backend {
        db,
        list: format!(
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() \
             AND tablename LIKE '{table}\\_\\_gust\\_staging\\_%'"
        ),
        stale: vec![format!("{p}deadbeef"), format!("{p}0badf00d")],
        kept: vec![format!("{p}archive")],
        table,
    })
    .await;
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn mariadb_next_load_sweeps_stale_staging_tables_but_not_a_live_loads() {
    use gust::hooks::mysql::MySqlHook;
    let Some(conn) = common::server_conn("mysql_default") else {
        return;
    };
    let conn = conn.with_extra("local_infile", json!(true));
    let db = Arc::new(MySqlHook::from_connection(&conn).await.unwrap());
    let table = format!("sweep_{}", std::process::id());
    common::transfers::run(
        &*db,
        &[
            format!("DROP TABLE IF EXISTS {table}"),
            format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, name VARCHAR(64))"),
        ],
    )
    .await;
    let p = format!("{table}__gust_staging_");
    sweeps_stale_tables_and_keeps_a_live_loads(Backend {
        db,
        list: format!(
            "SELECT table_name AS name FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name LIKE '{table}\\_\\_gust\\_staging\\_%'"
        ),
        stale: vec![format!("{p}deadbeef"), format!("{p}0badf00d")],
        kept: vec![format!("{p}archive")],
        table,
    })
    .await;
}
