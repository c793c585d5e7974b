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
