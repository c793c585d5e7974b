//! SqliteHook against a real database file: the shared SQL conformance suite.

mod common;

use gust::hooks::sql::SqlHook;
use gust::hooks::sqlite::SqliteHook;

async fn hook(name: &str) -> SqliteHook {
    let dir = std::env::temp_dir().join(common::unique("gust-sqlite"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.db"));
    SqliteHook::open("sqlite_test", path.to_str().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn sqlite_rows_round_trip() {
    common::sql::rows_round_trip(&hook("rt").await).await;
}

#[tokio::test]
async fn sqlite_run_is_atomic() {
    common::sql::run_is_atomic(&hook("atom").await).await;
}

#[tokio::test]
async fn sqlite_run_splits_binds_and_shapes() {
    common::sql::run_splits_binds_and_shapes(&hook("split").await).await;
}

#[tokio::test]
async fn sqlite_bad_input() {
    common::sql::bad_input(&hook("bad").await).await;
}

#[tokio::test]
async fn sqlite_bulk_round_trip() {
    common::sql::bulk_round_trip(&hook("bulk").await).await;
}

#[tokio::test]
async fn sqlite_test_connection() {
    hook("tc").await.test_connection().await.unwrap();
}

/// A table replaced with other columns through one pooled connection: every
/// other connection's next `SELECT *` has the new columns (sqlx would keep the
/// old ones of a cached statement, or of a connection's stale schema, and
/// index past the row).
#[tokio::test]
async fn a_replaced_table_is_read_with_its_new_columns_on_every_connection() {
    use gust::hooks::sql::{Parameters, RunOptions, Sql};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let db = SqliteHook::open("lite", &path.to_string_lossy())
        .await
        .unwrap();
    db.run(
        Sql::Many(vec![
            "CREATE TABLE t (a INTEGER, b INTEGER, c INTEGER)".into(),
            "INSERT INTO t VALUES (1, 2, 3)".into(),
        ]),
        RunOptions::default(),
    )
    .await
    .unwrap();
    // Every pooled connection reads (and caches) the three-column table.
    let reads = (0..4).map(|_| db.get_records("SELECT * FROM t", Parameters::None));
    for rows in futures::future::join_all(reads).await {
        assert_eq!(rows.unwrap()[0].len(), 3);
    }
    db.run(
        Sql::Many(vec![
            "DROP TABLE t".into(),
            "CREATE TABLE t (x TEXT)".into(),
            "INSERT INTO t VALUES ('new')".into(),
        ]),
        RunOptions::default(),
    )
    .await
    .unwrap();
    let reads = (0..4).map(|_| db.get_records("SELECT * FROM t", Parameters::None));
    for rows in futures::future::join_all(reads).await {
        let rows = rows.unwrap();
        assert_eq!(rows[0].keys().collect::<Vec<_>>(), ["x"], "{rows:?}");
    }
}

/// The same suite on `gust::testing::FaultySql` over SQLite with no fault
/// scripted: the conformance of the fake (every call forwarded and
/// recorded, nothing changed).
#[cfg(feature = "testing")]
mod faulty_sql {
    use gust::testing::{FaultySql, SqlOp};

    use super::hook;

    #[tokio::test]
    async fn conforms() {
        let h = FaultySql::new(hook("faulty").await);
        crate::common::sql::rows_round_trip(&h).await;
        crate::common::sql::run_is_atomic(&h).await;
        crate::common::sql::run_splits_binds_and_shapes(&h).await;
        crate::common::sql::bad_input(&h).await;
        crate::common::sql::bulk_round_trip(&h).await;
        assert!(h.calls(SqlOp::Run) > 0 && h.calls(SqlOp::BulkLoad) > 0);
    }
}
