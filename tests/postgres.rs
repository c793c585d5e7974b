//! PostgresHook against the project's PostgreSQL: the shared SQL conformance suite,
//! plus what only PostgreSQL has (typed errors of bad credentials, unsupported types).

mod common;

use gust::ErrorKind;
use gust::hooks::postgres::PostgresHook;
use gust::hooks::sql::{Parameters, SqlHook};

async fn hook(conn: &gust::Connection) -> PostgresHook {
    PostgresHook::from_connection(conn).await.unwrap()
}

#[tokio::test]
async fn postgres_rows_round_trip() {
    let conn = require_conn!("postgres_default");
    common::sql::rows_round_trip(&hook(&conn).await).await;
}

#[tokio::test]
async fn postgres_run_is_atomic() {
    let conn = require_conn!("postgres_default");
    common::sql::run_is_atomic(&hook(&conn).await).await;
}

#[tokio::test]
async fn postgres_run_splits_binds_and_shapes() {
    let conn = require_conn!("postgres_default");
    common::sql::run_splits_binds_and_shapes(&hook(&conn).await).await;
}

#[tokio::test]
async fn postgres_bad_input() {
    let conn = require_conn!("postgres_default");
    common::sql::bad_input(&hook(&conn).await).await;
}

#[tokio::test]
async fn postgres_bulk_round_trip() {
    let conn = require_conn!("postgres_default");
    common::sql::bulk_round_trip(&hook(&conn).await).await;
}

#[tokio::test]
async fn postgres_types_map_to_json() {
    let conn = require_conn!("postgres_default");
    let h = hook(&conn).await;
    h.test_connection().await.unwrap();
    let row = h
        .get_first(
            "SELECT 123456789012345678901234567890.123456789::numeric AS big, true AS b, \
             '2025-01-08 13:45:00'::timestamp AS ts, '2025-01-08 13:45:00+09'::timestamptz AS tz, \
             '\\x00ff'::bytea AS bin, '{\"k\": [1]}'::jsonb AS j, 'NaN'::float8 AS nan, 2::int2 AS small",
            Parameters::None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row["big"], "123456789012345678901234567890.123456789");
    assert_eq!(row["b"], true);
    assert_eq!(row["ts"], "2025-01-08T13:45:00");
    assert_eq!(row["tz"], "2025-01-08T04:45:00Z");
    assert_eq!(row["bin"], serde_json::json!([0, 255]));
    assert_eq!(row["j"], serde_json::json!({"k": [1]}));
    assert_eq!(row["nan"], "NaN");
    assert_eq!(row["small"], 2);

    let err = h
        .get_records("SELECT point(1, 2) AS p", Parameters::None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert_eq!(err.context("column"), Some("p"));
}

#[tokio::test]
async fn postgres_wrong_password_and_unknown_host_are_typed_and_redacted() {
    let conn = require_conn!("postgres_default");
    let wrong = conn.clone().with_password("not-the-Password-123");
    let err = PostgresHook::from_connection(&wrong).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert_eq!(err.context("conn_id"), Some("postgres_default"));
    assert!(!format!("{err} {err:?}").contains("not-the-Password-123"));

    let nowhere = conn.clone().with_host("no-such-host.invalid");
    let err = PostgresHook::from_connection(&nowhere).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(!format!("{err} {err:?}").contains(conn.password().unwrap()));
}

/// A bad value on line 999 of a `bulk_load`: the message keeps PostgreSQL's
/// `CONTEXT` (`COPY t, line 999, column id`), not only "invalid input syntax".
#[tokio::test]
async fn postgres_bulk_load_error_names_line_and_column() {
    let conn = require_conn!("postgres_default");
    let h = hook(&conn).await;
    let table = common::unique("gust_bad_copy").replace('-', "_");
    h.run(
        format!("CREATE TABLE {table} (id integer, name text)").into(),
        Default::default(),
    )
    .await
    .unwrap();
    // Line 1 is the header, lines 2..=998 are good, line 999 is not.
    let mut csv = String::from("id,name\n");
    for i in 2..=998 {
        csv.push_str(&format!("{i},n{i}\n"));
    }
    csv.push_str("abc,bad\n");
    let mut input = std::io::Cursor::new(csv.into_bytes());
    let err = h.bulk_load(&table, &mut input).await.unwrap_err();
    let _ = h
        .run(format!("DROP TABLE {table}").into(), Default::default())
        .await;
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let text = err.to_string();
    assert!(text.contains("invalid input syntax"), "{text}");
    assert!(text.contains("line 999"), "no line in: {text}");
    assert!(text.contains("column id"), "no column in: {text}");
    assert_eq!(err.context("table"), Some(table.as_str()));
}

/// An unknown database is `NotFound` (SQLSTATE 3D000), not `InvalidInput`.
#[tokio::test]
async fn postgres_unknown_database_is_not_found() {
    let conn = require_conn!("postgres_default");
    let err = PostgresHook::from_connection(&conn.clone().with_schema("gust_no_such_database"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("gust_no_such_database"), "{err}");
    assert!(!format!("{err} {err:?}").contains(conn.password().unwrap()));
}

/// A writer that fails after its first write, as a full disk or a closed
/// upload would.
struct FailingWriter(usize);

impl tokio::io::AsyncWrite for FailingWriter {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0 += 1;
        std::task::Poll::Ready(if self.0 > 1 {
            Err(std::io::Error::other("disk full"))
        } else {
            Ok(buf.len())
        })
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Regression (found by tests/load.rs): a COPY TO the server refused, or one
/// stopped midway, returned its connection to the pool out of step with the
/// server, and the next statement on it failed with "expected
/// CopyOutResponse, got ReadyForQuery". The pool has 4 connections: 8
/// failures touch each of them, and every statement after must work.
#[tokio::test]
async fn postgres_failed_copy_out_leaves_the_pool_usable() {
    let conn = require_conn!("postgres_default");
    let h = hook(&conn).await;
    for i in 0..8 {
        let mut out = Vec::new();
        let e = h
            .bulk_dump("SELECT * FROM no_such_table_gust", &mut out)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), gust::ErrorKind::NotFound, "{e}");
        let mut failing = FailingWriter(0);
        let e = h
            .bulk_dump(
                "SELECT g, repeat('x', 100) FROM generate_series(1, 200000) g",
                &mut failing,
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), gust::ErrorKind::Io, "{e}");
        if i % 2 == 0 {
            use futures::StreamExt;
            let mut s = h
                .copy_out_binary("SELECT g FROM generate_series(1, 200000) g")
                .unwrap();
            assert!(s.next().await.unwrap().is_ok());
            drop(s); // the reader goes away midway
        }
    }
    for _ in 0..8 {
        let mut out = Vec::new();
        h.bulk_dump("SELECT 1 AS one", &mut out).await.unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "one\n1\n");
        let row = h
            .get_first("SELECT 2 AS two", gust::hooks::sql::Parameters::None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row["two"], 2);
    }
}
