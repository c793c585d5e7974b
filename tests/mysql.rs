//! MySqlHook against the project's MariaDB: the shared SQL conformance suite,
//! plus what only MariaDB has (typed errors of bad credentials, unsupported types).

mod common;

use gust::ErrorKind;
use gust::hooks::mysql::MySqlHook;

async fn hook(conn: &gust::Connection) -> MySqlHook {
    // bulk_load needs LOAD DATA LOCAL INFILE, which is opt-in.
    let conn = conn
        .clone()
        .with_extra("local_infile", serde_json::json!(true));
    MySqlHook::from_connection(&conn).await.unwrap()
}

#[tokio::test]
async fn mysql_rows_round_trip() {
    let conn = require_conn!("mysql_default");
    common::sql::rows_round_trip(&hook(&conn).await).await;
}

#[tokio::test]
async fn mysql_run_is_atomic() {
    let conn = require_conn!("mysql_default");
    common::sql::run_is_atomic(&hook(&conn).await).await;
}

#[tokio::test]
async fn mysql_run_splits_binds_and_shapes() {
    let conn = require_conn!("mysql_default");
    common::sql::run_splits_binds_and_shapes(&hook(&conn).await).await;
}

#[tokio::test]
async fn mysql_bad_input() {
    let conn = require_conn!("mysql_default");
    common::sql::bad_input(&hook(&conn).await).await;
}

#[tokio::test]
async fn mysql_bulk_round_trip() {
    let conn = require_conn!("mysql_default");
    common::sql::bulk_round_trip(&hook(&conn).await).await;
}

#[tokio::test]
async fn mysql_wrong_password_and_unknown_host_are_typed_and_redacted() {
    let conn = require_conn!("mysql_default");
    let wrong = conn.clone().with_password("not-the-Password-123");
    let err = MySqlHook::from_connection(&wrong).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert_eq!(err.context("conn_id"), Some("mysql_default"));
    assert!(!format!("{err} {err:?}").contains("not-the-Password-123"));

    let nowhere = conn.clone().with_host("no-such-host.invalid");
    let err = MySqlHook::from_connection(&nowhere).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(!format!("{err} {err:?}").contains(conn.password().unwrap()));
}
