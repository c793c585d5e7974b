//! Network faults on the real servers (issue #16): each test puts a TCP fault
//! proxy (tests/common/fault_proxy.rs) between a hook and its server — the SQL
//! databases, the S3 server, Redis (single node) — and checks gust's promises
//! under the fault: a transient fault is retried (by the task's retries or the
//! hook's own) and the data arrive exactly once; a permanent one fails at once
//! with a typed error; a failure leaves no partial object, no half-loaded table
//! and no duplicate.
//!
//! Each test has its own proxy, table, bucket or key prefix, so they run in
//! parallel. Sizes are just large enough for a fault to land mid-stream: the
//! proxy's byte counters prove that it did.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::TimeZone;
use common::fault_proxy::{Dir, Fault, FaultProxy, HttpFault, Which};
use gust::hooks::mysql::MySqlHook;
use gust::hooks::object_store::{ObjectStore, PutOptions};
use gust::hooks::postgres::PostgresHook;
use gust::hooks::redis::RedisHook;
use gust::hooks::s3::S3Hook;
use gust::hooks::sql::{Parameters, RunOptions, Sql, SqlHook};
use gust::retry::Backoff;
use gust::transfers::IfExists;
use gust::transfers::s3_to_redis::S3ToRedis;
use gust::transfers::s3_to_sql::S3ToSql;
use gust::transfers::sql_to_s3::SqlToS3;
use gust::{Connection, Context, Dag, Error, ErrorKind, Operator, Task, TaskOptions};
use serde_json::{Value, json};

fn ctx() -> Context {
    Context::builder("faults", "network").build()
}

/// A proxy in front of `conn`'s host and port.
async fn proxy_for(conn: &Connection) -> FaultProxy {
    FaultProxy::start(conn.host().unwrap(), conn.port().unwrap()).await
}

/// `conn` pointed at the proxy.
fn via(conn: &Connection, proxy: &FaultProxy) -> Connection {
    conn.clone().with_host("127.0.0.1").with_port(proxy.port())
}

/// A name for a table (no `-`), bucket or key prefix, unique to this test.
fn name(prefix: &str) -> String {
    common::unique(prefix).replace('-', "_")
}

/// The S3 connection's endpoint as `(host, port)`.
fn s3_endpoint(conn: &Connection) -> (String, u16) {
    let url = url::Url::parse(conn.extra_str("endpoint_url").expect("endpoint_url")).unwrap();
    (
        url.host_str().unwrap().to_string(),
        url.port_or_known_default().unwrap(),
    )
}

/// A proxy in front of the S3 server, and the connection pointed at it.
async fn s3_proxy(conn: &Connection) -> (FaultProxy, Connection) {
    let (host, port) = s3_endpoint(conn);
    let proxy = FaultProxy::start(&host, port).await;
    let endpoint = format!("http://127.0.0.1:{}", proxy.port());
    let proxied = conn.clone().with_extra("endpoint_url", json!(endpoint));
    (proxy, proxied)
}

/// The S3 hook straight to the server, with a new bucket.
async fn s3_direct(conn: &Connection, bucket: &str) -> Arc<S3Hook> {
    let s3 = Arc::new(S3Hook::from_connection(conn).await.unwrap());
    s3.create_bucket(bucket).await.unwrap();
    s3
}

/// Multipart uploads still open under `key` (none after a clean failure).
async fn open_uploads(s3: &S3Hook, bucket: &str, key: &str) -> usize {
    s3.client()
        .list_multipart_uploads()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .unwrap()
        .uploads()
        .len()
}

/// Runs `op` as a task with one retry in a one-task DAG; returns the tries
/// and the error, if the task failed.
async fn run_with_retry(op: impl Operator + 'static) -> (u32, Option<String>) {
    let mut dag = Dag::builder("faults");
    dag.add(
        Task::new("t", op).with_options(
            TaskOptions::default()
                .retries(1)
                .retry_delay(Duration::from_millis(1)),
        ),
    );
    let day = chrono_tz::UTC
        .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
        .unwrap();
    let report = dag.build().unwrap().test(day).await;
    let t = report.task("t").unwrap();
    (t.tries, t.error.clone())
}

/// Asserts a transient network failure: retryable, typed, naming `op`.
fn assert_transient(e: &Error, op: &str) {
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e}"
    );
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains(op), "{e}");
}

async fn count(db: &dyn SqlHook, sql: &str) -> i64 {
    let row = db.get_first(sql, Parameters::None).await.unwrap().unwrap();
    let v = row.values().next().unwrap().clone();
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a count: {v}"))
}

async fn exec(db: &dyn SqlHook, sql: &str) {
    db.run(
        Sql::from(sql.to_string()),
        RunOptions {
            autocommit: true,
            split_statements: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

/// `rows` CSV records `id,name` from `first` on, with a header: about 40 bytes
/// a row, so 20,000 rows are 800 KB, many proxy chunks.
fn csv_rows(first: u64, rows: u64) -> String {
    let mut s = String::from("id,name\n");
    for id in first..first + rows {
        s.push_str(&format!("{id},name-{id}-{:016x}\n", id * 2654435761));
    }
    s
}

/// A load stalled mid-stream (client → server) under a task with
/// `execution_timeout`: the SQL hooks have no read timeout of their own, so the
/// task's deadline ends the wait with a typed timeout, and the target keeps
/// exactly its `before` rows (the stalled transaction never commits).
async fn stall_mid_load(
    proxy: &FaultProxy,
    db: Arc<dyn SqlHook>,
    admin: &dyn SqlHook,
    s3: Arc<S3Hook>,
    bucket: &str,
    table: &str,
    before: i64,
) {
    s3.put(
        bucket,
        "stall.csv",
        csv_rows(1001, ROWS).into_bytes().into(),
        &PutOptions::new(),
    )
    .await
    .unwrap();
    proxy.set(Fault::Stall {
        dir: Dir::Up,
        after: MID_STREAM,
        which: Which::Once,
    });
    let op = S3ToSql::new(format!("s3://{bucket}/stall.csv"), table.to_string())
        .with_hook(db)
        .with_store(s3);
    let mut dag = Dag::builder("faults");
    dag.add(
        Task::new("load", op)
            .with_options(TaskOptions::default().execution_timeout(Duration::from_secs(1))),
    );
    let day = chrono_tz::UTC
        .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
        .unwrap();
    let report = dag.build().unwrap().test(day).await;
    let t = report.task("load").unwrap();
    let error = t.error.clone().unwrap_or_default();
    assert!(error.contains("(timeout"), "{error}");
    assert_eq!(proxy.stalls(), 1);
    let rows = format!("SELECT COUNT(*) FROM {table}");
    assert_eq!(count(admin, &rows).await, before);
    // The stalled connection is reset; still nothing is loaded. (Only that
    // one: the cleanup's connection must live.)
    proxy.reset_stalled();
    assert_eq!(count(admin, &rows).await, before);
    let staging = format!(
        "SELECT COUNT(*) FROM information_schema.tables \
         WHERE table_name LIKE '{table}\\_\\_gust\\_staging\\_%'"
    );
    // The cancelled load drops its staging table from a spawned task, once the
    // stalled transaction's lock is gone: poll, bounded.
    let mut left = count(admin, &staging).await;
    for _ in 0..500 {
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = count(admin, &staging).await;
    }
    assert_eq!(left, 0, "a staging table was left behind");
}

const ROWS: u64 = 20_000;
/// A fault's byte offset: past every handshake and small statement, well
/// inside a bulk stream of `ROWS` rows.
const MID_STREAM: u64 = 256 * 1024;

/// The proxy itself, against a local server: pass-through is byte-exact, a
/// reset is a reset (RST, seen as `ConnectionReset`, not as a clean end) at the
/// byte asked for.
/// A load into `table` (100 old rows, `untouched` counting them) reset
/// mid-stream once in each of `modes`: each fails transient and leaves the
/// table as it was, with no staging table (`staging` counts them). Then a
/// reset under a task with one retry: the retry loads `body`'s rows exactly
/// once (count, distinct ids, and the rows dumped back equal the object).
#[allow(clippy::too_many_arguments)]
async fn reset_mid_load_then_retry<O: Operator + 'static>(
    admin: &dyn SqlHook,
    proxy: &FaultProxy,
    load: impl Fn(IfExists) -> O,
    table: &str,
    body: &str,
    modes: &[IfExists],
    untouched: &str,
    staging: &str,
) {
    reset_mid_transfer_then_retry(
        admin,
        proxy,
        Dir::Up,
        "s3_to_sql",
        load,
        table,
        body,
        modes,
        untouched,
        staging,
    )
    .await;
}

/// [`reset_mid_load_then_retry`] with the reset in direction `dir` of
/// `proxy`'s connections, for an operator whose errors name `op`.
#[allow(clippy::too_many_arguments)]
async fn reset_mid_transfer_then_retry<O: Operator + 'static>(
    admin: &dyn SqlHook,
    proxy: &FaultProxy,
    dir: Dir,
    op: &str,
    load: impl Fn(IfExists) -> O,
    table: &str,
    body: &str,
    modes: &[IfExists],
    untouched: &str,
    staging: &str,
) {
    let reset_once = || Fault::Reset {
        dir,
        after: MID_STREAM,
        which: Which::Once,
    };
    for mode in modes {
        proxy.set(reset_once());
        let e = load(mode.clone()).execute(&ctx()).await.unwrap_err();
        assert_eq!(
            proxy.fault(),
            Fault::Pass,
            "{mode:?}: the fault never fired: {e}"
        );
        assert_transient(&e, op);
        assert_eq!(
            count(admin, &format!("SELECT COUNT(*) FROM {table}")).await,
            100
        );
        assert_eq!(count(admin, untouched).await, 100, "{mode:?}");
    }
    assert_eq!(
        count(admin, staging).await,
        0,
        "a staging table was left behind"
    );

    proxy.set(reset_once());
    let (tries, error) = run_with_retry(load(IfExists::Append)).await;
    assert_eq!((tries, error), (2, None));
    let n = ROWS as i64;
    assert_eq!(
        count(admin, &format!("SELECT COUNT(*) FROM {table}")).await,
        100 + n
    );
    assert_eq!(
        count(admin, &format!("SELECT COUNT(DISTINCT id) FROM {table}")).await,
        100 + n
    );
    let mut loaded = Vec::new();
    admin
        .bulk_dump(
            &format!("SELECT id, name FROM {table} WHERE id > 1000 ORDER BY id"),
            &mut loaded,
        )
        .await
        .unwrap();
    assert!(
        loaded == body.as_bytes(),
        "the loaded rows differ from the object"
    );
}

mod proxy {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server sending `len` bytes to each connection, then closing.
    async fn sender(len: usize) -> (u16, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = data.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let sent = sent.clone();
                tokio::spawn(async move {
                    let _ = s.write_all(&sent).await;
                });
            }
        });
        (port, data)
    }

    #[tokio::test]
    async fn pass_through_is_exact_and_reset_is_a_reset_at_the_byte() {
        let (port, data) = sender(1 << 20).await;
        let proxy = FaultProxy::start("127.0.0.1", port).await;
        let mut got = Vec::new();
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .unwrap();
        c.read_to_end(&mut got).await.unwrap();
        assert!(got == data);

        proxy.set(Fault::Reset {
            dir: Dir::Down,
            after: 100_000,
            which: Which::Once,
        });
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .unwrap();
        let mut got = vec![0u8; 200_000];
        let mut n = 0;
        let e = loop {
            match c.read(&mut got[n..]).await {
                Ok(0) => panic!("a clean end after {n} bytes, not a reset"),
                Ok(k) => n += k,
                Err(e) => break e,
            }
        };
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
        assert!(n <= 100_000, "{n} bytes passed a reset at 100000");
        assert!(got[..n] == data[..n]);
        assert_eq!((proxy.resets(), proxy.connections()), (1, 2));
        assert_eq!(proxy.fault(), Fault::Pass);
    }
}

mod postgres {
    use super::*;

    async fn admin() -> Option<(Connection, PostgresHook)> {
        let conn = common::server_conn("postgres_default")?;
        let hook = PostgresHook::from_connection(&conn).await.unwrap();
        Some((conn, hook))
    }

    /// COPY TO STDOUT reset mid-stream (server → client): the dump fails
    /// retryable and no object, and no pending upload, is left; a task retry
    /// then writes the exact bytes.
    #[tokio::test]
    async fn reset_mid_copy_to_leaves_no_object_and_the_retry_writes_it_whole() {
        let Some((conn, admin)) = admin().await else {
            return;
        };
        let Some(aws) = common::server_conn("aws_default") else {
            return;
        };
        let table = name("fn_pg_out");
        exec(
            &admin,
            &format!(
                "CREATE TABLE {table} AS SELECT g AS id, 'name-' || g || '-' || md5(g::text) AS name \
                 FROM generate_series(1, {ROWS}) g"
            ),
        )
        .await;
        let bucket = name("fn-pg-out").replace('_', "-");
        let s3 = s3_direct(&aws, &bucket).await;
        let proxy = proxy_for(&conn).await;
        let db = Arc::new(
            PostgresHook::from_connection(&via(&conn, &proxy))
                .await
                .unwrap(),
        );
        let query = format!("SELECT id, name FROM {table} ORDER BY id");
        let key = "dump/t.csv";
        let op = SqlToS3::new(query.clone(), format!("s3://{bucket}/{key}"))
            .with_hook(db.clone())
            .with_store(s3.clone());

        proxy.set(Fault::Reset {
            dir: Dir::Down,
            after: MID_STREAM,
            which: Which::Once,
        });
        let e = op.execute(&ctx()).await.unwrap_err();
        assert_eq!(proxy.resets(), 1);
        // The cause is the database's: the dump's operation and connection,
        // not the upload's (which only saw its input fail).
        assert_transient(&e, "sql_to_s3.dump");
        assert_eq!(e.context("conn_id"), Some("postgres_default"), "{e}");
        assert_eq!(
            e.context("object"),
            Some(format!("s3://{bucket}/{key}").as_str()),
            "{e}"
        );
        assert!(!s3.exists(&bucket, key).await.unwrap(), "a partial object");
        assert_eq!(open_uploads(&s3, &bucket, key).await, 0);

        proxy.set(Fault::Reset {
            dir: Dir::Down,
            after: MID_STREAM,
            which: Which::Once,
        });
        let (tries, error) = run_with_retry(op).await;
        assert_eq!((tries, error), (2, None));
        assert_eq!(proxy.resets(), 2);
        let mut expected = Vec::new();
        admin.bulk_dump(&query, &mut expected).await.unwrap();
        let got = s3.get(&bucket, key).await.unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got[..] == expected[..], "the object differs from the table");
        exec(&admin, &format!("DROP TABLE {table}")).await;
    }

    async fn load_fixture(admin: &PostgresHook, table: &str) {
        exec(
            admin,
            &format!(
                "CREATE TABLE {table} (id BIGINT, name TEXT); \
                 INSERT INTO {table} SELECT g, 'old-' || g FROM generate_series(1, 100) g"
            ),
        )
        .await;
    }

    /// COPY FROM STDIN reset mid-load (client → server), appending and
    /// replacing: the table keeps exactly its rows; a task retry then loads
    /// every row once.
    #[tokio::test]
    async fn reset_mid_copy_from_leaves_the_table_untouched_and_the_retry_loads_once() {
        let Some((conn, admin)) = admin().await else {
            return;
        };
        let Some(aws) = common::server_conn("aws_default") else {
            return;
        };
        let table = name("fn_pg_in");
        load_fixture(&admin, &table).await;
        let bucket = name("fn-pg-in").replace('_', "-");
        let s3 = s3_direct(&aws, &bucket).await;
        let body = csv_rows(1001, ROWS);
        s3.put(
            &bucket,
            "in.csv",
            body.clone().into_bytes().into(),
            &PutOptions::new(),
        )
        .await
        .unwrap();
        let proxy = proxy_for(&conn).await;
        let db = Arc::new(
            PostgresHook::from_connection(&via(&conn, &proxy))
                .await
                .unwrap(),
        );
        let load = |mode: IfExists| {
            S3ToSql::new(format!("s3://{bucket}/in.csv"), table.clone())
                .if_exists(mode)
                .with_hook(db.clone())
                .with_store(s3.clone())
        };
        let untouched =
            format!("SELECT COUNT(*) FROM {table} WHERE id <= 100 AND name = 'old-' || id");
        let staging = format!(
            "SELECT COUNT(*) FROM pg_tables WHERE tablename LIKE '{table}\\_\\_gust\\_staging\\_%'"
        );
        let modes = [IfExists::Append, IfExists::Replace, IfExists::merge(["id"])];
        reset_mid_load_then_retry(
            &admin, &proxy, load, &table, &body, &modes, &untouched, &staging,
        )
        .await;
        let n = ROWS as i64;

        // A permanent fault: every try fails typed, and loads nothing.
        proxy.set(Fault::Reset {
            dir: Dir::Up,
            after: MID_STREAM,
            which: Which::All,
        });
        let (tries, error) = run_with_retry(load(IfExists::Append)).await;
        let error = error.expect("a load through a permanent fault succeeded");
        assert_eq!(tries, 2, "{error}");
        assert!(error.contains("(unavailable"), "{error}");
        assert!(error.contains("postgres_default"), "{error}");
        assert_eq!(
            count(&admin, &format!("SELECT COUNT(*) FROM {table}")).await,
            100 + n
        );
        exec(&admin, &format!("DROP TABLE {table}")).await;
    }

    /// COPY FROM stalled mid-load: the task's deadline ends it, typed;
    /// nothing is loaded.
    #[tokio::test]
    async fn stall_mid_copy_from_ends_at_the_tasks_execution_timeout() {
        let Some((conn, admin)) = admin().await else {
            return;
        };
        let Some(aws) = common::server_conn("aws_default") else {
            return;
        };
        let table = name("fn_pg_stall");
        load_fixture(&admin, &table).await;
        let bucket = name("fn-pg-stall").replace('_', "-");
        let s3 = s3_direct(&aws, &bucket).await;
        let proxy = proxy_for(&conn).await;
        let db = Arc::new(
            PostgresHook::from_connection(&via(&conn, &proxy))
                .await
                .unwrap(),
        );
        stall_mid_load(&proxy, db, &admin, s3, &bucket, &table, 100).await;
        exec(&admin, &format!("DROP TABLE {table}")).await;
    }

    /// A server that stops answering mid-handshake, with `connect_timeout`:
    /// a typed, retryable timeout naming the connection, not a hang.
    #[tokio::test]
    async fn stall_at_connect_is_a_timeout() {
        let Some(conn) = common::server_conn("postgres_default") else {
            return;
        };
        let proxy = proxy_for(&conn).await;
        proxy.set(Fault::Stall {
            dir: Dir::Up,
            after: 0,
            which: Which::All,
        });
        let e = PostgresHook::from_connection(
            &via(&conn, &proxy).with_extra("connect_timeout", json!(1)),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert!(e.is_retryable());
        assert!(e.to_string().contains("postgres_default"), "{e}");
        assert_eq!(proxy.stalls(), 1);
    }

    /// A server that is down: the hook fails at once, typed and retryable.
    #[tokio::test]
    async fn refused_is_unavailable() {
        let Some(conn) = common::server_conn("postgres_default") else {
            return;
        };
        let proxy = proxy_for(&conn).await;
        proxy.refuse(true);
        let e = PostgresHook::from_connection(&via(&conn, &proxy))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.is_retryable());
        assert!(e.to_string().contains("postgres_default"), "{e}");
    }
}

mod mysql {
    use super::*;

    /// LOAD DATA LOCAL INFILE reset mid-load (client → server): the target
    /// keeps its rows, no staging table is left; a task retry loads every row
    /// once.
    #[tokio::test]
    async fn reset_mid_load_data_leaves_the_table_untouched_and_the_retry_loads_once() {
        let Some(conn) = common::server_conn("mysql_default") else {
            return;
        };
        let Some(aws) = common::server_conn("aws_default") else {
            return;
        };
        // LOAD DATA LOCAL INFILE is opt-in.
        let conn = conn.with_extra("local_infile", json!(true));
        let admin = MySqlHook::from_connection(&conn).await.unwrap();
        let table = name("fn_my_in");
        exec(
            &admin,
            &format!(
                "CREATE TABLE {table} (id BIGINT, name VARCHAR(64)); \
                 INSERT INTO {table} SELECT seq, CONCAT('old-', seq) FROM seq_1_to_100"
            ),
        )
        .await;
        let bucket = name("fn-my-in").replace('_', "-");
        let s3 = s3_direct(&aws, &bucket).await;
        let body = csv_rows(1001, ROWS);
        s3.put(
            &bucket,
            "in.csv",
            body.clone().into_bytes().into(),
            &PutOptions::new(),
        )
        .await
        .unwrap();
        let proxy = proxy_for(&conn).await;
        let db = Arc::new(
            MySqlHook::from_connection(&via(&conn, &proxy))
                .await
                .unwrap(),
        );
        let load = |mode: IfExists| {
            S3ToSql::new(format!("s3://{bucket}/in.csv"), table.clone())
                .if_exists(mode)
                .with_hook(db.clone())
                .with_store(s3.clone())
        };
        let untouched =
            format!("SELECT COUNT(*) FROM {table} WHERE id <= 100 AND name = CONCAT('old-', id)");
        let staging = format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() \
             AND table_name LIKE '{table}\\_\\_gust\\_staging\\_%'"
        );
        let modes = [IfExists::Append, IfExists::Replace];
        reset_mid_load_then_retry(
            &admin, &proxy, load, &table, &body, &modes, &untouched, &staging,
        )
        .await;
        exec(&admin, &format!("DROP TABLE {table}")).await;
    }

    /// The row stream of a dump reset mid-result (server → client): the dump
    /// fails retryable, naming MariaDB's connection, and leaves no object; a
    /// task retry writes the exact bytes.
    #[tokio::test]
    async fn reset_mid_row_stream_leaves_no_object_and_the_retry_writes_it_whole() {
        let Some(conn) = common::server_conn("mysql_default") else {
            return;
        };
        let Some(aws) = common::server_conn("aws_default") else {
            return;
        };
        let admin = MySqlHook::from_connection(&conn).await.unwrap();
        let table = name("fn_my_out");
        exec(
            &admin,
            &format!(
                "CREATE TABLE {table} AS SELECT seq AS id, CONCAT('name-', seq, '-', MD5(seq)) AS name \
                 FROM seq_1_to_{ROWS}"
            ),
        )
        .await;
        let bucket = name("fn-my-out").replace('_', "-");
        let s3 = s3_direct(&aws, &bucket).await;
        let proxy = proxy_for(&conn).await;
        let db = Arc::new(
            MySqlHook::from_connection(&via(&conn, &proxy))
                .await
                .unwrap(),
        );
        let query = format!("SELECT id, name FROM {table} ORDER BY id");
        let key = "dump/t.csv";
        let op = SqlToS3::new(query.clone(), format!("s3://{bucket}/{key}"))
            .with_hook(db.clone())
            .with_store(s3.clone());
        let fault = Fault::Reset {
            dir: Dir::Down,
            after: MID_STREAM,
            which: Which::Once,
        };
        proxy.set(fault);
        let e = op.execute(&ctx()).await.unwrap_err();
        assert_eq!(proxy.resets(), 1);
        assert_transient(&e, "sql_to_s3.dump");
        assert_eq!(e.context("conn_id"), Some("mysql_default"), "{e}");
        assert!(!s3.exists(&bucket, key).await.unwrap(), "a partial object");
        assert_eq!(open_uploads(&s3, &bucket, key).await, 0);

        proxy.set(fault);
        let (tries, error) = run_with_retry(op).await;
        assert_eq!((tries, error), (2, None));
        let mut expected = Vec::new();
        admin.bulk_dump(&query, &mut expected).await.unwrap();
        let got = s3.get(&bucket, key).await.unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got[..] == expected[..], "the object differs from the table");
        exec(&admin, &format!("DROP TABLE {table}")).await;
    }

    /// LOAD DATA stalled mid-load: the task's deadline ends it, typed;
    /// nothing is loaded.
    #[tokio::test]
    async fn stall_mid_load_data_ends_at_the_tasks_execution_timeout() {
        let Some(conn) = common::server_conn("mysql_default") else {
            return;
        };
        let Some(aws) = common::server_conn("aws_default") else {
            return;
        };
        let conn = conn.with_extra("local_infile", json!(true));
        let admin = MySqlHook::from_connection(&conn).await.unwrap();
        let table = name("fn_my_stall");
        exec(
            &admin,
            &format!(
                "CREATE TABLE {table} (id BIGINT, name VARCHAR(64)); \
                 INSERT INTO {table} SELECT seq, CONCAT('old-', seq) FROM seq_1_to_100"
            ),
        )
        .await;
        let bucket = name("fn-my-stall").replace('_', "-");
        let s3 = s3_direct(&aws, &bucket).await;
        let proxy = proxy_for(&conn).await;
        let db = Arc::new(
            MySqlHook::from_connection(&via(&conn, &proxy))
                .await
                .unwrap(),
        );
        stall_mid_load(&proxy, db, &admin, s3, &bucket, &table, 100).await;
        exec(&admin, &format!("DROP TABLE {table}")).await;
    }

    /// The server goes away under an open hook: the next statement fails at
    /// once, typed and retryable, naming the connection.
    #[tokio::test]
    async fn refused_under_an_open_hook_is_unavailable() {
        let Some(conn) = common::server_conn("mysql_default") else {
            return;
        };
        let proxy = proxy_for(&conn).await;
        let db = MySqlHook::from_connection(&via(&conn, &proxy))
            .await
            .unwrap();
        assert_eq!(count(&db, "SELECT 1").await, 1);
        proxy.refuse(true);
        proxy.kill_all();
        let e = db
            .get_first("SELECT 1", Parameters::None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.is_retryable());
        assert!(e.to_string().contains("mysql_default"), "{e}");
        // The server is back: the same hook works again.
        proxy.refuse(false);
        assert_eq!(count(&db, "SELECT 1").await, 1);
    }
}

mod s3 {
    use super::*;

    /// A body of `len` bytes that is not a repetition of a short pattern.
    fn body(len: usize) -> Vec<u8> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// `body` as a stream of 1 MiB chunks.
    fn stream(body: &[u8]) -> gust::hooks::object_store::BytesStream {
        let chunks: Vec<gust::Result<Bytes>> = body
            .chunks(1 << 20)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Box::pin(futures::stream::iter(chunks))
    }

    fn upload_part() -> HttpFault {
        HttpFault {
            method: "PUT",
            target_contains: vec!["partNumber=", "uploadId="],
            nth: None,
        }
    }

    /// Three parts of 5 MiB (the minimum) and a bit.
    const MULTIPART: usize = 11 * 1024 * 1024;

    /// One UploadPart answered 503 SlowDown: the SDK retries it and the object
    /// is whole and byte-identical.
    #[tokio::test]
    async fn one_slow_down_on_a_part_is_retried_and_the_object_is_identical() {
        let Some(aws) = common::server_conn("aws_default") else {
            return;
        };
        let bucket = name("fn-s3-part").replace('_', "-");
        let direct = s3_direct(&aws, &bucket).await;
        let (proxy, proxied) = s3_proxy(&aws).await;
        proxy.set_http(Some(HttpFault {
            nth: Some(2),
            ..upload_part()
        }));
        let hook = S3Hook::from_connection(&proxied)
            .await
            .unwrap()
            .with_retries(3, Backoff::exponential(Duration::from_millis(1)))
            .with_part_size(5 * 1024 * 1024);
        let data = body(MULTIPART);
        let put = hook
            .put_stream(&bucket, "big.bin", stream(&data), &PutOptions::new())
            .await
            .unwrap();
        assert_eq!(put.size, MULTIPART as u64);
        let (matched, injected) = proxy.http_counts();
        assert_eq!(injected, 1);
        assert_eq!(matched, 4, "3 parts and the retried one");
        let got = direct.get(&bucket, "big.bin").await.unwrap();
        assert!(got[..] == data[..], "the object differs from what was sent");
    }

    /// Every UploadPart answered 503: a typed, exhausted Unavailable error, no
    /// object and no multipart upload left open.
    #[tokio::test]
    async fn persistent_slow_down_fails_typed_with_no_object_and_no_open_upload() {
        let Some(aws) = common::server_conn("aws_default") else {
            return;
        };
        let bucket = name("fn-s3-503").replace('_', "-");
        let direct = s3_direct(&aws, &bucket).await;
        let (proxy, proxied) = s3_proxy(&aws).await;
        proxy.set_http(Some(upload_part()));
        let hook = S3Hook::from_connection(&proxied)
            .await
            .unwrap()
            .with_retries(2, Backoff::exponential(Duration::from_millis(1)))
            .with_part_size(5 * 1024 * 1024);
        let e = hook
            .put_stream(
                &bucket,
                "big.bin",
                stream(&body(MULTIPART)),
                &PutOptions::new(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.is_exhausted(), "{e}");
        assert!(e.to_string().contains("big.bin"), "{e}");
        assert!(proxy.http_counts().1 >= 2);
        assert!(!direct.exists(&bucket, "big.bin").await.unwrap());
        assert_eq!(open_uploads(&direct, &bucket, "big.bin").await, 0);
    }

    /// A download reset mid-body, as a stream of ranged GETs and to a file:
    /// the broken part is resumed and the bytes are identical.
    #[tokio::test]
    async fn reset_mid_ranged_get_is_resumed_and_the_bytes_are_identical() {
        use futures::TryStreamExt;
        let Some(aws) = common::server_conn("aws_default") else {
            return;
        };
        let bucket = name("fn-s3-get").replace('_', "-");
        let direct = s3_direct(&aws, &bucket).await;
        let data = body(3 * 1024 * 1024);
        direct
            .put(&bucket, "obj.bin", data.clone().into(), &PutOptions::new())
            .await
            .unwrap();
        let (proxy, proxied) = s3_proxy(&aws).await;
        let hook = S3Hook::from_connection(&proxied)
            .await
            .unwrap()
            .with_download_threshold(1024 * 1024)
            .with_download_parts(1024 * 1024, 2);
        for round in 0..2 {
            proxy.set(Fault::Reset {
                dir: Dir::Down,
                after: 512 * 1024,
                which: Which::Once,
            });
            let got = if round == 0 {
                let chunks: Vec<Bytes> = hook
                    .get_stream(&bucket, "obj.bin")
                    .await
                    .unwrap()
                    .try_collect()
                    .await
                    .unwrap();
                chunks.concat()
            } else {
                let dir = tempfile::tempdir().unwrap();
                let path = hook
                    .download_file("obj.bin", Some(&bucket), dir.path(), true)
                    .await
                    .unwrap();
                std::fs::read(&path).unwrap()
            };
            assert_eq!(proxy.resets(), round + 1, "the fault never fired");
            assert!(got == data, "round {round}: the bytes differ");
        }
    }

    /// Every download connection reset mid-body: a typed error, and no file
    /// left at the destination.
    #[tokio::test]
    async fn persistent_reset_mid_get_fails_typed_and_leaves_no_file() {
        let Some(aws) = common::server_conn("aws_default") else {
            return;
        };
        let bucket = name("fn-s3-get2").replace('_', "-");
        let direct = s3_direct(&aws, &bucket).await;
        direct
            .put(
                &bucket,
                "obj.bin",
                body(3 * 1024 * 1024).into(),
                &PutOptions::new(),
            )
            .await
            .unwrap();
        let (proxy, proxied) = s3_proxy(&aws).await;
        let hook = S3Hook::from_connection(&proxied)
            .await
            .unwrap()
            .with_retries(2, Backoff::exponential(Duration::from_millis(1)))
            .with_download_threshold(1024 * 1024)
            .with_download_parts(1024 * 1024, 2);
        proxy.set(Fault::Reset {
            dir: Dir::Down,
            after: 256 * 1024,
            which: Which::All,
        });
        let dir = tempfile::tempdir().unwrap();
        let e = hook
            .download_file("obj.bin", Some(&bucket), dir.path(), true)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        // Exhausted: the hook already spent its attempts, a task retry would
        // multiply them (docs/ARCHITECTURE.md, "Who owns patience").
        assert!(e.is_exhausted(), "{e}");
        assert!(e.to_string().contains("obj.bin"), "{e}");
        // Neither the file nor its hidden temporary file is left.
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "a partial file was left: {left:?}");
    }

    /// The S3 server goes away under an open hook: a typed, retryable error
    /// after the SDK's own attempts.
    #[tokio::test]
    async fn refused_under_an_open_hook_is_unavailable() {
        let Some(aws) = common::server_conn("aws_default") else {
            return;
        };
        let bucket = name("fn-s3-refused").replace('_', "-");
        s3_direct(&aws, &bucket).await;
        let (proxy, proxied) = s3_proxy(&aws).await;
        let hook = S3Hook::from_connection(&proxied)
            .await
            .unwrap()
            .with_retries(2, Backoff::exponential(Duration::from_millis(1)));
        hook.put(&bucket, "k", Bytes::from_static(b"v"), &PutOptions::new())
            .await
            .unwrap();
        proxy.refuse(true);
        proxy.kill_all();
        let e = hook.get(&bucket, "k").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.is_retryable() || e.is_exhausted(), "{e}");
        assert!(e.to_string().contains("aws_default"), "{e}");
    }

    /// The S3 side of both SQL transfers reset mid-body: the upload of a
    /// dump (client → server) is retried by the SDK, the download of a load
    /// (server → client) resumed by the hook; both land the exact rows once.
    #[tokio::test]
    async fn reset_mid_upload_and_mid_download_under_the_transfers_lands_the_exact_rows() {
        let Some(pg) = common::server_conn("postgres_default") else {
            return;
        };
        let Some(aws) = common::server_conn("aws_default") else {
            return;
        };
        let admin = Arc::new(PostgresHook::from_connection(&pg).await.unwrap());
        let table = name("fn_s3_tx");
        exec(
            &*admin,
            &format!(
                "CREATE TABLE {table} AS SELECT g AS id, 'name-' || g || '-' || md5(g::text) AS name \
                 FROM generate_series(1, {ROWS}) g; \
                 CREATE TABLE {table}_back (id INTEGER, name TEXT)"
            ),
        )
        .await;
        let bucket = name("fn-s3-tx").replace('_', "-");
        let direct = s3_direct(&aws, &bucket).await;
        let (proxy, proxied) = s3_proxy(&aws).await;
        let store = Arc::new(
            S3Hook::from_connection(&proxied)
                .await
                .unwrap()
                .with_retries(3, Backoff::exponential(Duration::from_millis(1))),
        );
        let query = format!("SELECT id, name FROM {table} ORDER BY id");

        proxy.set(Fault::Reset {
            dir: Dir::Up,
            after: MID_STREAM,
            which: Which::Once,
        });
        let out = SqlToS3::new(query.clone(), format!("s3://{bucket}/t.csv"))
            .with_hook(admin.clone())
            .with_store(store.clone())
            .execute(&ctx())
            .await
            .unwrap();
        assert_eq!(proxy.resets(), 1, "the upload was never reset");
        assert_eq!(out["rows"], ROWS);
        let mut expected = Vec::new();
        admin.bulk_dump(&query, &mut expected).await.unwrap();
        let got = direct.get(&bucket, "t.csv").await.unwrap();
        assert!(got[..] == expected[..], "the object differs from the table");

        // An object under the download threshold is one plain GET, which is not
        // resumed: the load fails retryable (the download's kind, not the
        // database's `Io`), loads nothing, and a task retry loads it whole.
        proxy.set(Fault::Reset {
            dir: Dir::Down,
            after: MID_STREAM,
            which: Which::Once,
        });
        let load = S3ToSql::new(format!("s3://{bucket}/t.csv"), format!("{table}_back"))
            .with_hook(admin.clone())
            .with_store(store);
        let e = load.execute(&ctx()).await.unwrap_err();
        assert_eq!(proxy.resets(), 2, "the download was never reset");
        assert_transient(&e, "s3_to_sql.load");
        assert!(e.to_string().contains("aws_default"), "{e}");
        let back_rows = format!("SELECT COUNT(*) FROM {table}_back");
        assert_eq!(count(&*admin, &back_rows).await, 0);
        proxy.set(Fault::Reset {
            dir: Dir::Down,
            after: MID_STREAM,
            which: Which::Once,
        });
        let (tries, error) = run_with_retry(load).await;
        assert_eq!((tries, error), (2, None));
        assert_eq!(count(&*admin, &back_rows).await, ROWS as i64);
        let mut back = Vec::new();
        admin
            .bulk_dump(
                &format!("SELECT id, name FROM {table}_back ORDER BY id"),
                &mut back,
            )
            .await
            .unwrap();
        assert!(back == expected, "the loaded rows differ from the object");
        exec(
            &*admin,
            &format!("DROP TABLE {table}; DROP TABLE {table}_back"),
        )
        .await;
    }

    /// An S3 server that stops answering mid-download: the hook has no read
    /// timeout of its own (the SDK's default has none), so the task's
    /// `execution_timeout` is what ends the wait, with a typed timeout.
    #[tokio::test]
    async fn stall_mid_get_ends_at_the_tasks_execution_timeout() {
        let Some(aws) = common::server_conn("aws_default") else {
            return;
        };
        let bucket = name("fn-s3-stall").replace('_', "-");
        let direct = s3_direct(&aws, &bucket).await;
        direct
            .put(
                &bucket,
                "obj.bin",
                body(1024 * 1024).into(),
                &PutOptions::new(),
            )
            .await
            .unwrap();
        let (proxy, proxied) = s3_proxy(&aws).await;
        let hook = Arc::new(S3Hook::from_connection(&proxied).await.unwrap());
        proxy.set(Fault::Stall {
            dir: Dir::Down,
            after: 64 * 1024,
            which: Which::All,
        });
        let mut dag = Dag::builder("faults");
        let (b, h) = (bucket.clone(), hook.clone());
        dag.add(
            Task::from_fn("get", move |_ctx| {
                let (b, h) = (b.clone(), h.clone());
                async move {
                    h.get(&b, "obj.bin").await?;
                    Ok(Value::Null)
                }
            })
            .with_options(TaskOptions::default().execution_timeout(Duration::from_secs(1))),
        );
        let day = chrono_tz::UTC
            .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
            .unwrap();
        let report = dag.build().unwrap().test(day).await;
        let t = report.task("get").unwrap();
        let error = t.error.clone().unwrap_or_default();
        assert_eq!(t.tries, 1);
        assert!(error.contains("(timeout"), "{error}");
        assert_eq!(proxy.stalls(), 1);
    }

    /// Latency on every byte to PostgreSQL and to S3: a dump and its load
    /// back complete with the exact rows.
    #[tokio::test]
    async fn latency_on_sql_and_s3_changes_nothing() {
        let Some(pg) = common::server_conn("postgres_default") else {
            return;
        };
        let Some(aws) = common::server_conn("aws_default") else {
            return;
        };
        let admin = PostgresHook::from_connection(&pg).await.unwrap();
        let table = name("fn_pg_lat");
        exec(
            &admin,
            &format!(
                "CREATE TABLE {table} AS SELECT g AS id, 'n' || g AS name FROM generate_series(1, 2000) g; \
                 CREATE TABLE {table}_back (id INTEGER, name TEXT)"
            ),
        )
        .await;
        let bucket = name("fn-lat").replace('_', "-");
        s3_direct(&aws, &bucket).await;
        let pg_proxy = proxy_for(&pg).await;
        let (s3_proxy, proxied) = s3_proxy(&aws).await;
        pg_proxy.set(Fault::Latency(Duration::from_millis(5)));
        s3_proxy.set(Fault::Latency(Duration::from_millis(5)));
        let db: Arc<dyn SqlHook> = Arc::new(
            PostgresHook::from_connection(&via(&pg, &pg_proxy))
                .await
                .unwrap(),
        );
        let store = Arc::new(S3Hook::from_connection(&proxied).await.unwrap());
        let out = SqlToS3::new(
            format!("SELECT id, name FROM {table} ORDER BY id"),
            format!("s3://{bucket}/t.csv"),
        )
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
        assert_eq!(out["rows"], 2000);
        let out = S3ToSql::new(format!("s3://{bucket}/t.csv"), format!("{table}_back"))
            .with_hook(db.clone())
            .with_store(store)
            .execute(&ctx())
            .await
            .unwrap();
        assert_eq!(out["rows"], 2000);
        let same = count(
            &admin,
            &format!(
                "SELECT COUNT(*) FROM {table} a JOIN {table}_back b ON a.id = b.id AND a.name = b.name"
            ),
        )
        .await;
        assert_eq!(same, 2000);
        assert_eq!(
            count(&admin, &format!("SELECT COUNT(*) FROM {table}_back")).await,
            2000
        );
        exec(
            &admin,
            &format!("DROP TABLE {table}; DROP TABLE {table}_back"),
        )
        .await;
    }
}

mod sql_to_sql {
    use super::*;
    use gust::transfers::sql_to_sql::SqlToSql;

    /// A PostgreSQL source table of `ROWS` rows from id 1001, as `csv_rows`
    /// writes them; returns that CSV (what the destination must end up with).
    async fn source(admin: &PostgresHook, table: &str) -> String {
        exec(
            admin,
            &format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, name TEXT)"),
        )
        .await;
        let body = csv_rows(1001, ROWS);
        admin.bulk_load(table, &mut body.as_bytes()).await.unwrap();
        body
    }

    fn transfer(
        src: &str,
        dst: &str,
        from: &Arc<dyn SqlHook>,
        to: &Arc<dyn SqlHook>,
        mode: IfExists,
    ) -> SqlToSql {
        SqlToSql::new(format!("SELECT id, name FROM {src} ORDER BY id"), dst)
            .if_exists(mode)
            .with_source_hook(from.clone())
            .with_destination_hook(to.clone())
    }

    /// The source's `COPY … TO STDOUT` reset mid-result (server → client),
    /// appending and replacing: the destination keeps exactly its rows and no
    /// staging table; a task retry loads every row once.
    #[tokio::test]
    async fn reset_on_the_source_leaves_the_destination_as_it_was_and_the_retry_loads_once() {
        let Some(pg) = common::server_conn("postgres_default") else {
            return;
        };
        let admin = PostgresHook::from_connection(&pg).await.unwrap();
        let (src, dst) = (name("fn_s2s_src"), name("fn_s2s_dst"));
        let body = source(&admin, &src).await;
        exec(
            &admin,
            &format!(
                "CREATE TABLE {dst} (id BIGINT PRIMARY KEY, name TEXT); \
                 INSERT INTO {dst} SELECT g, 'old-' || g FROM generate_series(1, 100) g"
            ),
        )
        .await;
        let proxy = proxy_for(&pg).await;
        let from: Arc<dyn SqlHook> = Arc::new(
            PostgresHook::from_connection(&via(&pg, &proxy))
                .await
                .unwrap(),
        );
        let to: Arc<dyn SqlHook> = Arc::new(PostgresHook::from_connection(&pg).await.unwrap());
        let untouched =
            format!("SELECT COUNT(*) FROM {dst} WHERE id <= 100 AND name = 'old-' || id");
        let staging = format!(
            "SELECT COUNT(*) FROM pg_tables WHERE tablename LIKE '{dst}\\_\\_gust\\_staging\\_%'"
        );
        reset_mid_transfer_then_retry(
            &admin,
            &proxy,
            Dir::Down,
            "sql_to_sql",
            |mode| transfer(&src, &dst, &from, &to, mode),
            &dst,
            &body,
            &[IfExists::Append, IfExists::Replace, IfExists::merge(["id"])],
            &untouched,
            &staging,
        )
        .await;
        exec(&admin, &format!("DROP TABLE {src}; DROP TABLE {dst}")).await;
    }

    /// The destination's `COPY … FROM STDIN` (PostgreSQL) reset mid-load
    /// (client → server): as on the source.
    #[tokio::test]
    async fn reset_on_a_postgres_destination_leaves_it_as_it_was_and_the_retry_loads_once() {
        let Some(pg) = common::server_conn("postgres_default") else {
            return;
        };
        let admin = PostgresHook::from_connection(&pg).await.unwrap();
        let (src, dst) = (name("fn_s2s_src_pg"), name("fn_s2s_dst_pg"));
        let body = source(&admin, &src).await;
        exec(
            &admin,
            &format!(
                "CREATE TABLE {dst} (id BIGINT PRIMARY KEY, name TEXT); \
                 INSERT INTO {dst} SELECT g, 'old-' || g FROM generate_series(1, 100) g"
            ),
        )
        .await;
        let proxy = proxy_for(&pg).await;
        let from: Arc<dyn SqlHook> = Arc::new(PostgresHook::from_connection(&pg).await.unwrap());
        let to: Arc<dyn SqlHook> = Arc::new(
            PostgresHook::from_connection(&via(&pg, &proxy))
                .await
                .unwrap(),
        );
        let untouched =
            format!("SELECT COUNT(*) FROM {dst} WHERE id <= 100 AND name = 'old-' || id");
        let staging = format!(
            "SELECT COUNT(*) FROM pg_tables WHERE tablename LIKE '{dst}\\_\\_gust\\_staging\\_%'"
        );
        reset_mid_transfer_then_retry(
            &admin,
            &proxy,
            Dir::Up,
            "sql_to_sql",
            |mode| transfer(&src, &dst, &from, &to, mode),
            &dst,
            &body,
            &[IfExists::Append, IfExists::Replace, IfExists::merge(["id"])],
            &untouched,
            &staging,
        )
        .await;
        exec(&admin, &format!("DROP TABLE {src}; DROP TABLE {dst}")).await;
    }

    /// From PostgreSQL into MariaDB, the destination's `LOAD DATA LOCAL
    /// INFILE` reset mid-load (client → server): as on the source.
    #[tokio::test]
    async fn reset_on_a_mariadb_destination_leaves_it_as_it_was_and_the_retry_loads_once() {
        let Some(pg) = common::server_conn("postgres_default") else {
            return;
        };
        let Some(my) = common::server_conn("mysql_default") else {
            return;
        };
        let my = my.with_extra("local_infile", json!(true));
        let pg_admin = PostgresHook::from_connection(&pg).await.unwrap();
        let admin = MySqlHook::from_connection(&my).await.unwrap();
        let (src, dst) = (name("fn_s2s_src_my"), name("fn_s2s_dst_my"));
        let body = source(&pg_admin, &src).await;
        exec(
            &admin,
            &format!(
                "CREATE TABLE {dst} (id BIGINT PRIMARY KEY, name VARCHAR(64)); \
                 INSERT INTO {dst} SELECT seq, CONCAT('old-', seq) FROM seq_1_to_100"
            ),
        )
        .await;
        let proxy = proxy_for(&my).await;
        let from: Arc<dyn SqlHook> = Arc::new(PostgresHook::from_connection(&pg).await.unwrap());
        let to: Arc<dyn SqlHook> =
            Arc::new(MySqlHook::from_connection(&via(&my, &proxy)).await.unwrap());
        let untouched =
            format!("SELECT COUNT(*) FROM {dst} WHERE id <= 100 AND name = CONCAT('old-', id)");
        let staging = format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() \
             AND table_name LIKE '{dst}\\_\\_gust\\_staging\\_%'"
        );
        reset_mid_transfer_then_retry(
            &admin,
            &proxy,
            Dir::Up,
            "sql_to_sql",
            |mode| transfer(&src, &dst, &from, &to, mode),
            &dst,
            &body,
            &[IfExists::Append, IfExists::Replace, IfExists::merge(["id"])],
            &untouched,
            &staging,
        )
        .await;
        exec(&admin, &format!("DROP TABLE {dst}")).await;
        exec(&pg_admin, &format!("DROP TABLE {src}")).await;
    }
}

mod redis {
    use super::*;
    use futures::TryStreamExt;

    /// S3ToRedis reset mid-batch: a retryable error naming the object; the
    /// earlier run's keys stay until a re-run replaces them; the re-run leaves
    /// exactly one key per row, with its row's value, and no other key.
    #[tokio::test]
    async fn reset_mid_batch_then_the_rerun_leaves_exactly_the_rows() {
        let Some(conn) = common::server_conn("redis_default") else {
            return;
        };
        let Some(aws) = common::server_conn("aws_default") else {
            return;
        };
        let admin = RedisHook::from_connection(&conn).await.unwrap();
        let bucket = name("fn-redis").replace('_', "-");
        let s3 = s3_direct(&aws, &bucket).await;
        s3.put(
            &bucket,
            "rows.csv",
            csv_rows(0, ROWS).into_bytes().into(),
            &PutOptions::new(),
        )
        .await
        .unwrap();
        let prefix = format!("{}:row:", name("fn_redis"));
        // A key of an earlier, longer load, which `replace` removes.
        admin
            .set(&format!("{prefix}{ROWS}"), b"stale", None)
            .await
            .unwrap();
        let proxy = proxy_for(&conn).await;
        let hook = RedisHook::from_connection(&via(&conn, &proxy))
            .await
            .unwrap();
        let op = S3ToRedis::new(
            format!("s3://{bucket}/rows.csv"),
            format!("{prefix}{{{{ index }}}}"),
        )
        .replace(true)
        .batch_rows(500)
        .with_hook(hook)
        .with_store(s3.clone());

        proxy.set(Fault::Reset {
            dir: Dir::Up,
            after: MID_STREAM,
            which: Which::Once,
        });
        let e = op.execute(&ctx()).await.unwrap_err();
        assert_eq!(proxy.resets(), 1);
        assert_transient(&e, "s3_to_redis");
        assert!(e.to_string().contains("rows.csv"), "{e}");
        assert!(admin.exists(&format!("{prefix}{ROWS}")).await.unwrap());

        let out = op.execute(&ctx()).await.unwrap();
        assert_eq!(out["rows"], ROWS);
        let mut keys: Vec<String> = admin
            .scan(&format!("{prefix}*"), 1000)
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        let mut expected: Vec<String> = (0..ROWS).map(|i| format!("{prefix}{i}")).collect();
        expected.sort();
        assert_eq!(keys, expected);
        let values: Vec<Option<Value>> = admin.mget_json(&keys).await.unwrap();
        for (key, value) in keys.iter().zip(values) {
            let i: u64 = key.rsplit(':').next().unwrap().parse().unwrap();
            let want =
                json!({"id": i.to_string(), "name": format!("name-{i}-{:016x}", i * 2654435761)});
            assert_eq!(value, Some(want), "{key}");
        }
        admin.delete(&keys).await.unwrap();
    }

    /// S3ToRedis with Redis's replies cut mid-batch (server → client): the
    /// server applied commands whose replies never arrived. The load fails
    /// retryable, naming the object; the task's retry writes every row again
    /// (idempotent: same key, same value) and `replace` removes the stale key:
    /// exactly one key per row, with its row's value.
    #[tokio::test]
    async fn reset_of_the_replies_mid_batch_is_retried_and_the_keys_are_exact() {
        let Some(conn) = common::server_conn("redis_default") else {
            return;
        };
        let Some(aws) = common::server_conn("aws_default") else {
            return;
        };
        let admin = RedisHook::from_connection(&conn).await.unwrap();
        let bucket = name("fn-redis-down").replace('_', "-");
        let s3 = s3_direct(&aws, &bucket).await;
        s3.put(
            &bucket,
            "rows.csv",
            csv_rows(0, ROWS).into_bytes().into(),
            &PutOptions::new(),
        )
        .await
        .unwrap();
        let prefix = format!("{}:row:", name("fn_redis_down"));
        admin
            .set(&format!("{prefix}{ROWS}"), b"stale", None)
            .await
            .unwrap();
        let proxy = proxy_for(&conn).await;
        let hook = RedisHook::from_connection(&via(&conn, &proxy))
            .await
            .unwrap();
        let op = S3ToRedis::new(
            format!("s3://{bucket}/rows.csv"),
            format!("{prefix}{{{{ index }}}}"),
        )
        .replace(true)
        .batch_rows(500)
        .with_hook(hook)
        .with_store(s3.clone());
        // The replies of 20,000 writes are some 100 KB; 32 KiB is mid-load.
        let reset_once = || Fault::Reset {
            dir: Dir::Down,
            after: 32 * 1024,
            which: Which::Once,
        };

        proxy.set(reset_once());
        let e = op.execute(&ctx()).await.unwrap_err();
        assert_eq!(proxy.resets(), 1, "{e}");
        assert_transient(&e, "s3_to_redis");
        assert!(e.to_string().contains("rows.csv"), "{e}");
        assert!(admin.exists(&format!("{prefix}{ROWS}")).await.unwrap());

        proxy.set(reset_once());
        let (tries, error) = run_with_retry(op).await;
        assert_eq!(proxy.resets(), 2);
        assert_eq!((tries, error), (2, None));
        let mut keys: Vec<String> = admin
            .scan(&format!("{prefix}*"), 1000)
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        let mut expected: Vec<String> = (0..ROWS).map(|i| format!("{prefix}{i}")).collect();
        expected.sort();
        assert_eq!(keys, expected);
        let values: Vec<Option<Value>> = admin.mget_json(&keys).await.unwrap();
        for (key, value) in keys.iter().zip(values) {
            let i: u64 = key.rsplit(':').next().unwrap().parse().unwrap();
            let want =
                json!({"id": i.to_string(), "name": format!("name-{i}-{:016x}", i * 2654435761)});
            assert_eq!(value, Some(want), "{key}");
        }
        admin.delete(&keys).await.unwrap();
    }

    /// A Redis that stops answering, with `socket_timeout`: a typed, retryable
    /// timeout, not a hang.
    #[tokio::test]
    async fn stall_with_socket_timeout_is_a_timeout() {
        let Some(conn) = common::server_conn("redis_default") else {
            return;
        };
        let proxy = proxy_for(&conn).await;
        let proxied = via(&conn, &proxy).with_extra("socket_timeout", json!(1));
        let hook = RedisHook::from_connection(&proxied).await.unwrap();
        hook.get("fn:any").await.unwrap();
        proxy.set(Fault::Stall {
            dir: Dir::Up,
            after: 0,
            which: Which::All,
        });
        let e = hook.get("fn:any").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert!(e.is_retryable());
        assert!(e.to_string().contains("redis_default"), "{e}");
    }

    /// Redis goes away under an open hook: typed, retryable.
    #[tokio::test]
    async fn refused_under_an_open_hook_is_unavailable() {
        let Some(conn) = common::server_conn("redis_default") else {
            return;
        };
        let proxy = proxy_for(&conn).await;
        let hook = RedisHook::from_connection(&via(&conn, &proxy))
            .await
            .unwrap();
        hook.get("fn:any").await.unwrap();
        proxy.refuse(true);
        proxy.kill_all();
        let e = hook.get("fn:any").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.is_retryable());
        assert!(e.to_string().contains("redis_default"), "{e}");
    }
}
