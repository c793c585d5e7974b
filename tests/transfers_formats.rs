//! Transfers in every format and option: CSV dialects written by `COPY` (byte
//! for byte what `psql \copy` writes), JSON Lines round trips on PostgreSQL,
//! MariaDB and SQLite, `max_rows_per_file` and its clean-up, `write_empty`,
//! parameters; `S3ToSql` over prefixes and patterns, `merge`, `create_table`,
//! `column_mapping`, and the bad-input catalogue.

// The server tests are compiled with the `postgres` feature only; without it
// their helpers and imports are unused, which is not worth a cfg on each.
#![cfg_attr(not(feature = "postgres"), allow(unused))]

mod common;

use common::transfers::{put, rows, run};

use std::sync::Arc;

use gust::formats::FileFormat;
use gust::formats::csv::CsvFormat;
use gust::hooks::object_store::{MemoryStore, ObjectStore, PutOptions};
use gust::hooks::sql::SqlHook;
use gust::hooks::sqlite::SqliteHook;
use gust::transfers::IfExists;
use gust::transfers::s3_to_sql::S3ToSql;
use gust::transfers::sql_to_s3::SqlToS3;
use gust::{Context, ErrorKind, Operator};
use serde_json::{Value, json};

fn ctx() -> Context {
    Context::builder("transfers", "formats").build()
}

async fn text(store: &dyn ObjectStore, bucket: &str, key: &str) -> String {
    String::from_utf8(store.get(bucket, key).await.unwrap().to_vec()).unwrap()
}

async fn sqlite() -> (Arc<MemoryStore>, Arc<SqliteHook>) {
    let store = Arc::new(MemoryStore::new());
    store.create_bucket("b").await.unwrap();
    let db = Arc::new(SqliteHook::open("lite", ":memory:").await.unwrap());
    (store, db)
}

/// The seed-shaped rows every round trip moves: NULL apart from "", Korean,
/// `;` and quotes inside text, numerics, timestamps, booleans.
const PG_TABLE: &str = "(id BIGINT PRIMARY KEY, name TEXT, amount NUMERIC(12,2), \
                        seen TIMESTAMPTZ, ok BOOLEAN, score DOUBLE PRECISION)";
const PG_ROWS: &str = "INSERT INTO {t} VALUES \
    (1, '고객 1; !@9#%8', 12.50, '2025-01-08 09:00:00+09', true, 0.1), \
    (2, '', 0.00, '2025-01-08 00:00:00+00', false, NULL), \
    (3, NULL, NULL, NULL, NULL, -1.5e-7), \
    (4, 'say \"hi\"\nbye', 99999999.99, '1999-12-31 23:59:59.123456+00', true, 3), \
    (5, 'NA', 1, '2025-01-08 00:00:00+00', false, 1e300)";

/// Rows of `a` not in `b` plus rows of `b` not in `a` (PostgreSQL).
async fn pg_diff(db: &dyn SqlHook, a: &str, b: &str) -> u64 {
    let n = rows(
        db,
        &format!(
            "SELECT count(*) AS n FROM ((SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) \
             UNION ALL (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a})) d"
        ),
    )
    .await;
    n[0]["n"].as_u64().unwrap()
}

#[cfg(all(feature = "postgres", feature = "s3"))]
fn psql(conn: &gust::Connection, command: &str) -> Vec<u8> {
    let out = std::process::Command::new("psql")
        .env("PGPASSWORD", conn.password().unwrap_or_default())
        .args([
            "-X",
            "-q",
            "-h",
            conn.host().unwrap(),
            "-p",
            &conn.port().unwrap().to_string(),
            "-U",
            conn.login().unwrap(),
            "-d",
            conn.schema().unwrap(),
            "-c",
            command,
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// PostgreSQL → S3 → PostgreSQL in a `;` dialect with `NA` for NULL (COPY
/// writes it: byte-identical to psql), in JSON Lines, and gzip-compressed;
/// each time the table comes back equal.
#[cfg(all(feature = "postgres", feature = "s3"))]
#[tokio::test]
async fn postgres_round_trips_in_every_format() {
    use gust::hooks::postgres::PostgresHook;
    use gust::hooks::s3::S3Hook;
    let pg_conn = require_conn!("postgres_default");
    let aws_conn = require_conn!("aws_default");
    let db = Arc::new(PostgresHook::from_connection(&pg_conn).await.unwrap());
    let store = Arc::new(S3Hook::from_connection(&aws_conn).await.unwrap());
    let bucket = common::unique("gust-formats");
    store.create_bucket(&bucket).await.unwrap();
    let t = format!("fmt_{}", std::process::id());
    run(
        &*db,
        &[
            format!("DROP TABLE IF EXISTS {t}, {t}_back"),
            format!("CREATE TABLE {t} {PG_TABLE}"),
            format!("CREATE TABLE {t}_back (LIKE {t})"),
            PG_ROWS.replace("{t}", &t),
        ],
    )
    .await;
    let query = format!("SELECT * FROM {t} ORDER BY id");
    let semicolon = CsvFormat::new().delimiter(b';').null("NA");

    let out = SqlToS3::new(query.clone(), format!("s3://{bucket}/semi.csv"))
        .file_format(semicolon.clone())
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], 5);
    assert_eq!(out["keys"], json!(["semi.csv"]));
    let ours = store.get(&bucket, "semi.csv").await.unwrap();
    let reference = psql(
        &pg_conn,
        &format!("\\copy ({query}) TO STDOUT WITH (FORMAT csv, HEADER, DELIMITER ';', NULL 'NA')"),
    );
    assert!(
        ours[..] == reference[..],
        "not byte-identical to psql \\copy"
    );
    // The text 'NA' is quoted, NULL is the bare marker.
    let body = String::from_utf8(ours.to_vec()).unwrap();
    assert!(body.contains("\n5;\"NA\";"), "{body}");
    assert!(body.contains("\n3;NA;NA;NA;NA;"), "{body}");

    for (key, format) in [
        ("semi.csv", Some(FileFormat::from(semicolon.clone()))),
        ("rows.jsonl", None),
        ("rows.csv.gz", None),
        ("rows.jsonl.gz", None),
    ] {
        if key != "semi.csv" {
            let out = SqlToS3::new(query.clone(), format!("s3://{bucket}/{key}"))
                .with_hook(db.clone())
                .with_store(store.clone())
                .execute(&ctx())
                .await
                .unwrap();
            assert_eq!(out["rows"], 5, "{key}");
            let expected = if key.contains("jsonl") {
                "jsonl"
            } else {
                "csv"
            };
            assert_eq!(out["format"], expected, "{key}");
        }
        let mut load = S3ToSql::new(format!("s3://{bucket}/{key}"), format!("{t}_back"))
            .if_exists(IfExists::Replace)
            .with_hook(db.clone())
            .with_store(store.clone());
        if let Some(f) = format {
            load = load.file_format(f);
        }
        let out = load.execute(&ctx()).await.unwrap();
        assert_eq!(out["rows"], 5, "{key}");
        assert_eq!(pg_diff(&*db, &t, &format!("{t}_back")).await, 0, "{key}");
    }
    // JSON Lines keep the types: numbers, booleans, NUMERIC digits as text,
    // timestamptz in UTC.
    let first = text(&*store, &bucket, "rows.jsonl").await;
    let first: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(
        first,
        json!({"id": 1, "name": "고객 1; !@9#%8", "amount": "12.50",
               "seen": "2025-01-08T00:00:00Z", "ok": true, "score": 0.1})
    );
    run(&*db, &[format!("DROP TABLE {t}, {t}_back")]).await;
}

/// `max_rows_per_file` names the objects as Airflow does, repeats the header,
/// and a query failing after the first objects were written removes them;
/// `replace(false)` onto an existing object fails and removes this run's.
#[cfg(all(feature = "postgres", feature = "s3"))]
#[tokio::test]
async fn postgres_split_objects_and_their_clean_up() {
    use futures::TryStreamExt;
    use gust::hooks::object_store::{ListKeys, ObjectStoreExt};
    use gust::hooks::postgres::PostgresHook;
    use gust::hooks::s3::S3Hook;
    let pg_conn = require_conn!("postgres_default");
    let aws_conn = require_conn!("aws_default");
    let db = Arc::new(PostgresHook::from_connection(&pg_conn).await.unwrap());
    let store = Arc::new(S3Hook::from_connection(&aws_conn).await.unwrap());
    let bucket = common::unique("gust-split");
    store.create_bucket(&bucket).await.unwrap();
    let keys = |prefix: &'static str| {
        let store = store.clone();
        let bucket = bucket.clone();
        async move {
            store
                .list_keys_stream(&bucket, &ListKeys::new().prefix(prefix))
                .try_collect::<Vec<_>>()
                .await
                .unwrap()
        }
    };

    let query = "SELECT i AS id, 'r' || i AS name FROM generate_series(1, 2500) AS i ORDER BY i";
    let out = SqlToS3::new(query, format!("s3://{bucket}/ok/part.csv.gz"))
        .max_rows_per_file(1000)
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(
        out["keys"],
        json!(["ok/part_0.csv.gz", "ok/part_1.csv.gz", "ok/part_2.csv.gz"])
    );
    assert_eq!(out["rows"], 2500);
    let mut all = Vec::new();
    for (i, key) in ["ok/part_0.csv.gz", "ok/part_1.csv.gz", "ok/part_2.csv.gz"]
        .iter()
        .enumerate()
    {
        let gz = store.get(&bucket, key).await.unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text)
            .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "id,name", "{key}");
        assert_eq!(lines.len() - 1, if i < 2 { 1000 } else { 500 }, "{key}");
        all.extend(lines[1..].iter().map(|l| l.to_string()));
    }
    assert_eq!(all.len(), 2500);
    assert_eq!(all[0], "1,r1");
    assert_eq!(all[2499], "2500,r2500");

    // The query fails at row 2,200: two objects were written, then removed.
    let failing = "SELECT i, 1 / (i - 2200) AS boom FROM generate_series(1, 3000) AS i";
    let e = SqlToS3::new(failing, format!("s3://{bucket}/broken/part.csv"))
        .max_rows_per_file(1000)
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("division by zero"), "{e}");
    assert!(keys("broken/").await.is_empty());

    // An existing object under a later part's name: replace(false) refuses
    // it, and the parts written before are removed.
    put(&*store, &bucket, "taken/part_1.csv", "id\n").await;
    let e = SqlToS3::new(query, format!("s3://{bucket}/taken/part.csv"))
        .max_rows_per_file(1000)
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert!(e.to_string().contains("taken/part_1.csv"), "{e}");
    assert_eq!(keys("taken/").await, ["taken/part_1.csv"]);
    assert_eq!(text(&*store, &bucket, "taken/part_1.csv").await, "id\n");
}

/// MariaDB → S3 → MariaDB in CSV and JSON Lines: equal tables.
#[cfg(all(feature = "mysql", feature = "s3"))]
#[tokio::test]
async fn mariadb_round_trips_in_every_format() {
    use gust::hooks::mysql::MySqlHook;
    use gust::hooks::s3::S3Hook;
    let my_conn = require_conn!("mysql_default").with_extra("local_infile", json!(true));
    let aws_conn = require_conn!("aws_default");
    let db = Arc::new(MySqlHook::from_connection(&my_conn).await.unwrap());
    let store = Arc::new(S3Hook::from_connection(&aws_conn).await.unwrap());
    let bucket = common::unique("gust-mariadb-formats");
    store.create_bucket(&bucket).await.unwrap();
    let t = format!("fmt_{}", std::process::id());
    run(
        &*db,
        &[
            format!("DROP TABLE IF EXISTS {t}, {t}_back"),
            format!(
                "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name TEXT, amount DECIMAL(12,2), \
                 seen DATETIME(6), ok BOOLEAN, score DOUBLE) CHARACTER SET utf8mb4"
            ),
            format!("CREATE TABLE {t}_back LIKE {t}"),
            format!(
                "INSERT INTO {t} VALUES (1, '고객 1; !@9#%8', 12.50, '2025-01-08 09:00:00', true, 0.1), \
                 (2, '', 0.00, '2025-01-08 00:00:00.123456', false, NULL), \
                 (3, NULL, NULL, NULL, NULL, -1.5e-7), \
                 (4, 'say \"hi\"\\nbye', 99999999.99, '1999-12-31 23:59:59', true, 3)"
            ),
        ],
    )
    .await;
    let query = format!("SELECT * FROM {t} ORDER BY id");
    for key in ["rows.csv", "rows.jsonl", "semi.csv"] {
        let mut dump = SqlToS3::new(query.clone(), format!("s3://{bucket}/{key}"))
            .with_hook(db.clone())
            .with_store(store.clone());
        let mut load = S3ToSql::new(format!("s3://{bucket}/{key}"), format!("{t}_back"))
            .if_exists(IfExists::Replace)
            .with_hook(db.clone())
            .with_store(store.clone());
        if key == "semi.csv" {
            let f = CsvFormat::new().delimiter(b';').null("\\N");
            dump = dump.file_format(f.clone());
            load = load.file_format(f);
        }
        assert_eq!(dump.execute(&ctx()).await.unwrap()["rows"], 4, "{key}");
        assert_eq!(load.execute(&ctx()).await.unwrap()["rows"], 4, "{key}");
        let back = rows(&*db, &format!("SELECT * FROM {t}_back ORDER BY id")).await;
        let orig = rows(&*db, &query).await;
        assert_eq!(back, orig, "{key}");
        // Column order is the query's.
        let header = text(&*store, &bucket, key).await;
        assert!(
            header.starts_with("id") || header.starts_with("{\"id\""),
            "{header}"
        );
    }
    run(&*db, &[format!("DROP TABLE {t}, {t}_back")]).await;
}

/// SQLite → local store → SQLite in CSV, JSON Lines and a `;` dialect without
/// a header, through parameters; an empty result with and without
/// `write_empty`.
#[tokio::test]
async fn sqlite_round_trips_parameters_and_empty_results() {
    // The local store (files on disk), as the embedded defaults use.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(gust::hooks::object_store::LocalStore::new(dir.path()).unwrap());
    store.create_bucket("b").await.unwrap();
    let db = Arc::new(SqliteHook::open("lite", ":memory:").await.unwrap());
    run(
        &*db,
        &[
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL)".into(),
            "CREATE TABLE back (id INTEGER PRIMARY KEY, name TEXT, score REAL)".into(),
            "INSERT INTO t VALUES (1, '김', 0.5), (2, '', NULL), (3, NULL, -2)".into(),
        ],
    )
    .await;
    // Column order is the query's, not alphabetical.
    let out = SqlToS3::new("SELECT score, name, id FROM t ORDER BY id", "s3://b/t.csv")
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], 3);
    assert_eq!(
        text(&*store, "b", "t.csv").await,
        "score,name,id\n0.5,김,1\n,\"\",2\n-2.0,,3\n"
    );
    // Back in: the same table (NULL and "" apart, Korean intact).
    S3ToSql::new("s3://b/t.csv", "back")
        .if_exists(IfExists::Replace)
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(
        rows(&*db, "SELECT * FROM back ORDER BY id").await,
        rows(&*db, "SELECT * FROM t ORDER BY id").await
    );

    let headerless = CsvFormat::new().delimiter(b';').header(false);
    for (key, format) in [
        ("t.jsonl", FileFormat::JsonLines),
        ("t.txt", FileFormat::from(headerless.clone())),
    ] {
        SqlToS3::new(
            "SELECT id, name, score FROM t WHERE id >= ?",
            format!("s3://b/{key}"),
        )
        .parameters(json!([2]))
        .file_format(format.clone())
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
        let mut load = S3ToSql::new(format!("s3://b/{key}"), "back")
            .file_format(format)
            .if_exists(IfExists::Replace)
            .with_hook(db.clone())
            .with_store(store.clone());
        if key == "t.txt" {
            load = load.column_list(["id", "name", "score"]);
        }
        assert_eq!(load.execute(&ctx()).await.unwrap()["rows"], 2, "{key}");
        assert_eq!(
            rows(&*db, "SELECT * FROM back ORDER BY id").await,
            rows(&*db, "SELECT * FROM t WHERE id >= 2 ORDER BY id").await,
            "{key}"
        );
    }
    assert_eq!(text(&*store, "b", "t.txt").await, "2;\"\";\n3;;-2.0\n");

    let empty = "SELECT id FROM t WHERE id > 100";
    let out = SqlToS3::new(empty, "s3://b/empty.csv")
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["keys"], json!(["empty.csv"]));
    assert_eq!(out["rows"], 0);
    assert!(store.exists("b", "empty.csv").await.unwrap());
    let out = SqlToS3::new(empty, "s3://b/none.csv")
        .write_empty(false)
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["keys"], json!([]));
    assert!(!store.exists("b", "none.csv").await.unwrap());
}

/// A prefix and a pattern load several objects (CSV, gzip, JSON Lines) in one
/// all-or-nothing load, with rows per object in XCom; a bad last object leaves
/// the table unchanged and is named.
#[tokio::test]
async fn s3_to_sql_loads_prefixes_and_patterns_all_or_nothing() {
    let (store, db) = sqlite().await;
    run(&*db, &["CREATE TABLE p (id INTEGER, name TEXT)".into()]).await;
    put(&*store, "b", "in/2025-01-08/a.csv", "id,name\n1,a\n2,b\n").await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, b"id,name\n3,c\n").unwrap();
    put(&*store, "b", "in/2025-01-08/b.csv.gz", gz.finish().unwrap()).await;
    put(
        &*store,
        "b",
        "in/2025-01-08/c.jsonl",
        "{\"id\":4,\"name\":\"d\"}\n{\"name\":null,\"id\":5}\n",
    )
    .await;
    put(&*store, "b", "in/2025-01-09/a.csv", "id,name\n9,z\n").await;

    let out = S3ToSql::new("s3://b/in/2025-01-08/", "p")
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], 5);
    assert_eq!(
        out["objects"],
        json!([
            {"key": "in/2025-01-08/a.csv", "rows": 2},
            {"key": "in/2025-01-08/b.csv.gz", "rows": 1},
            {"key": "in/2025-01-08/c.jsonl", "rows": 2},
        ])
    );
    assert_eq!(
        rows(&*db, "SELECT name FROM p WHERE id = 5").await,
        [json!({"name": null})]
    );

    let out = S3ToSql::new("s3://b/in/*/a.csv", "p")
        .if_exists(IfExists::Replace)
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
    // `*` crosses `/`: both days' a.csv.
    assert_eq!(out["rows"], 3);
    let before = rows(&*db, "SELECT * FROM p ORDER BY id").await;
    assert_eq!(before.len(), 3);

    // The second object is malformed: nothing of the first is kept.
    put(&*store, "b", "bad/1.csv", "id,name\n7,x\n").await;
    put(&*store, "b", "bad/2.csv", "id,name\n8,y\n9\n").await;
    let e = S3ToSql::new("s3://b/bad/", "p")
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("object=s3://b/bad/2.csv"), "{e}");
    assert!(e.to_string().contains("line 3"), "{e}");
    assert_eq!(rows(&*db, "SELECT * FROM p ORDER BY id").await, before);

    // Objects with different columns cannot share a load.
    put(&*store, "b", "mixed/1.csv", "id,name\n1,a\n").await;
    put(&*store, "b", "mixed/2.csv", "name,id\nb,2\n").await;
    let e = S3ToSql::new("s3://b/mixed/", "p")
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap_err();
    assert!(e.message().contains("first object had"), "{e}");
    assert_eq!(rows(&*db, "SELECT * FROM p ORDER BY id").await, before);
}

/// `merge` upserts on the key, refuses a key twice in the input (nothing
/// written), and `create_table` creates a missing table (dropped again when the
/// load fails); without it a missing table is a one-line `NotFound`.
#[tokio::test]
async fn s3_to_sqlite_merge_and_create_table() {
    let (store, db) = sqlite().await;
    run(
        &*db,
        &[
            "CREATE TABLE m (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)".into(),
            "INSERT INTO m VALUES (1, 'old', 1), (2, 'keep', 2)".into(),
        ],
    )
    .await;
    put(&*store, "b", "m.csv", "id,name,n\n1,new,10\n3,added,30\n").await;
    let merge = |key: &str| {
        S3ToSql::new(format!("s3://b/{key}"), "m")
            .if_exists(IfExists::merge(["id"]))
            .with_hook(db.clone())
            .with_store(store.clone())
    };
    let out = merge("m.csv").execute(&ctx()).await.unwrap();
    assert_eq!(out["if_exists"], "merge");
    let after = rows(&*db, "SELECT * FROM m ORDER BY id").await;
    assert_eq!(
        after,
        [
            json!({"id": 1, "name": "new", "n": 10}),
            json!({"id": 2, "name": "keep", "n": 2}),
            json!({"id": 3, "name": "added", "n": 30}),
        ]
    );
    put(&*store, "b", "dup.csv", "id,name,n\n4,a,1\n1,b,2\n4,c,3\n").await;
    let e = merge("dup.csv").execute(&ctx()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.message().contains("id=4"), "{e}");
    assert!(e.message().contains("2 times"), "{e}");
    assert_eq!(rows(&*db, "SELECT * FROM m ORDER BY id").await, after);

    // A missing table.
    put(&*store, "b", "new.csv", "id,label\n1,x\n").await;
    let e = S3ToSql::new("s3://b/new.csv", "fresh")
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.message().contains("table fresh does not exist"), "{e}");
    let create = |key: &str| {
        S3ToSql::new(format!("s3://b/{key}"), "fresh")
            .create_table([("id", "INTEGER PRIMARY KEY"), ("label", "TEXT")])
            .with_hook(db.clone())
            .with_store(store.clone())
    };
    put(&*store, "b", "bad_new.csv", "id,label\n1,x\n2\n").await;
    assert!(create("bad_new.csv").execute(&ctx()).await.is_err());
    let tables = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'fresh'";
    assert!(
        rows(&*db, tables).await.is_empty(),
        "the failed load's table is dropped"
    );
    assert_eq!(create("new.csv").execute(&ctx()).await.unwrap()["rows"], 1);
    assert_eq!(
        rows(&*db, "SELECT * FROM fresh").await,
        [json!({"id": 1, "label": "x"})]
    );
    // An existing table is kept as it is: loading the same key again breaks
    // its primary key, so the table keeps its one row.
    let e = create("new.csv").execute(&ctx()).await.unwrap_err();
    assert!(e.to_string().contains("target_table=fresh"), "{e}");
    assert_eq!(
        rows(&*db, "SELECT count(*) AS n FROM fresh").await,
        [json!({"n": 1})]
    );
}

/// `merge` with a key twice in one file on PostgreSQL and MariaDB: the same
/// documented error, the table unchanged; without duplicates it upserts.
#[cfg(all(feature = "postgres", feature = "mysql"))]
#[tokio::test]
async fn merge_on_postgres_and_mariadb() {
    use gust::hooks::mysql::MySqlHook;
    use gust::hooks::postgres::PostgresHook;
    let pg_conn = require_conn!("postgres_default");
    let my_conn = require_conn!("mysql_default").with_extra("local_infile", json!(true));
    let pg: Arc<dyn SqlHook> = Arc::new(PostgresHook::from_connection(&pg_conn).await.unwrap());
    let my: Arc<dyn SqlHook> = Arc::new(MySqlHook::from_connection(&my_conn).await.unwrap());
    let store = Arc::new(MemoryStore::new());
    store.create_bucket("b").await.unwrap();
    put(&*store, "b", "m.csv", "id,name\n1,new\n3,added\n").await;
    put(&*store, "b", "dup.csv", "id,name\n5,a\n5,b\n").await;
    for db in [pg, my] {
        let t = format!("merge_{}", std::process::id());
        run(
            &*db,
            &[
                format!("DROP TABLE IF EXISTS {t}"),
                format!("CREATE TABLE {t} (id INTEGER PRIMARY KEY, name VARCHAR(20))"),
                format!("INSERT INTO {t} VALUES (1, 'old'), (2, 'keep')"),
            ],
        )
        .await;
        let merge = |key: &str| {
            S3ToSql::new(format!("s3://b/{key}"), t.clone())
                .if_exists(IfExists::merge(["id"]))
                .with_hook(db.clone())
                .with_store(store.clone())
        };
        merge("m.csv").execute(&ctx()).await.unwrap();
        let after = rows(&*db, &format!("SELECT id, name FROM {t} ORDER BY id")).await;
        assert_eq!(
            after,
            [
                json!({"id": 1, "name": "new"}),
                json!({"id": 2, "name": "keep"}),
                json!({"id": 3, "name": "added"}),
            ],
            "{}",
            db.conn_id()
        );
        let e = merge("dup.csv").execute(&ctx()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.message().contains("id=5"), "{e}");
        assert_eq!(
            rows(&*db, &format!("SELECT id, name FROM {t} ORDER BY id")).await,
            after
        );
        run(&*db, &[format!("DROP TABLE {t}")]).await;
    }
}

/// The bad-input catalogue: one typed, one-line error each.
#[tokio::test]
async fn bad_input_catalogue() {
    let (store, db) = sqlite().await;
    run(&*db, &["CREATE TABLE p (id INTEGER, name TEXT)".into()]).await;
    let load = |key: &str| {
        S3ToSql::new(format!("s3://b/{key}"), "p")
            .with_hook(db.clone())
            .with_store(store.clone())
    };
    let check = |e: gust::Error, kind: ErrorKind, words: &str| {
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.to_string().contains(words), "{e}");
        assert!(!e.to_string().contains('\n'), "one line: {e}");
    };
    check(
        load("missing.csv").execute(&ctx()).await.unwrap_err(),
        ErrorKind::NotFound,
        "missing.csv",
    );
    check(
        load("nothing/").execute(&ctx()).await.unwrap_err(),
        ErrorKind::NotFound,
        "no object matches s3://b/nothing/",
    );
    put(&*store, "b", "empty.csv", "").await;
    check(
        load("empty.csv").execute(&ctx()).await.unwrap_err(),
        ErrorKind::InvalidInput,
        "the object is empty",
    );
    put(&*store, "b", "semi.csv", "id;name\n1;a\n").await;
    check(
        load("semi.csv")
            .column_list(["id", "name"])
            .execute(&ctx())
            .await
            .unwrap_err(),
        ErrorKind::InvalidInput,
        "line 2 has 1 fields where 2 columns were expected",
    );
    put(&*store, "b", "ok.csv", "ident,name\n1,a\n").await;
    check(
        load("ok.csv")
            .column_mapping([("id", "id")])
            .execute(&ctx())
            .await
            .unwrap_err(),
        ErrorKind::InvalidInput,
        "column_mapping names \"id\"",
    );
    // The mapping that fits loads.
    let out = load("ok.csv")
        .column_mapping([("ident", "id")])
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], 1);
    put(&*store, "b", "bad.jsonl", "{\"id\":1}\n[1]\n").await;
    check(
        load("bad.jsonl").execute(&ctx()).await.unwrap_err(),
        ErrorKind::InvalidInput,
        "line 2",
    );
    put(
        &*store,
        "b",
        "extra.jsonl",
        "{\"id\":1}\n{\"id\":2,\"age\":3}\n",
    )
    .await;
    check(
        load("extra.jsonl").execute(&ctx()).await.unwrap_err(),
        ErrorKind::InvalidInput,
        "line 2 has the key \"age\"",
    );
    check(
        S3ToSql::new("s3://b/ok.csv", "nope")
            .with_hook(db.clone())
            .with_store(store.clone())
            .execute(&ctx())
            .await
            .unwrap_err(),
        ErrorKind::NotFound,
        "table nope does not exist",
    );
    // replace(false) onto an existing key.
    check(
        SqlToS3::new("SELECT 1 AS one", "s3://b/ok.csv")
            .with_hook(db.clone())
            .with_store(store.clone())
            .execute(&ctx())
            .await
            .unwrap_err(),
        ErrorKind::AlreadyExists,
        "ok.csv",
    );
    // A dialect that cannot be read back.
    check(
        SqlToS3::new("SELECT 1 AS one", "s3://b/q.csv")
            .file_format(CsvFormat::new().delimiter(b'"'))
            .with_hook(db.clone())
            .with_store(store.clone())
            .execute(&ctx())
            .await
            .unwrap_err(),
        ErrorKind::InvalidInput,
        "delimiter",
    );
}

/// `SqlToSql` PostgreSQL → MariaDB keeps booleans (`t`/`f` become 1/0) and
/// `timestamptz` values (stored as UTC), next to NULLs, empty strings, Korean
/// text and NUMERIC digits; `merge` works across the two as well.
#[cfg(all(feature = "postgres", feature = "mysql"))]
#[tokio::test]
async fn sql_to_sql_postgres_to_mariadb_keeps_booleans_and_timestamps() {
    use gust::hooks::mysql::MySqlHook;
    use gust::hooks::postgres::PostgresHook;
    use gust::transfers::sql_to_sql::SqlToSql;
    let pg_conn = require_conn!("postgres_default");
    let my_conn = require_conn!("mysql_default").with_extra("local_infile", json!(true));
    let pg = Arc::new(PostgresHook::from_connection(&pg_conn).await.unwrap());
    let my = Arc::new(MySqlHook::from_connection(&my_conn).await.unwrap());
    let t = format!("typed_{}", std::process::id());
    run(
        &*pg,
        &[
            format!("DROP TABLE IF EXISTS {t}"),
            format!("CREATE TABLE {t} {PG_TABLE}"),
            PG_ROWS.replace("{t}", &t),
        ],
    )
    .await;
    run(
        &*my,
        &[
            format!("DROP TABLE IF EXISTS {t}"),
            format!(
                "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name TEXT, amount DECIMAL(12,2), \
                 seen DATETIME(6), ok BOOLEAN, score DOUBLE) CHARACTER SET utf8mb4"
            ),
            format!("INSERT INTO {t} (id, name) VALUES (1, 'stale'), (9, 'kept')"),
        ],
    )
    .await;
    let out = SqlToSql::new(format!("SELECT * FROM {t}"), t.clone())
        .with_source_hook(pg.clone())
        .with_destination_hook(my.clone())
        .if_exists(IfExists::merge(["id"]))
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], 5);
    let on_pg = rows(
        &*pg,
        &format!(
            "SELECT id, name, amount::text AS amount, \
             to_char(seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS seen, \
             CASE WHEN ok THEN 1 WHEN NOT ok THEN 0 END AS ok, score FROM {t} ORDER BY id"
        ),
    )
    .await;
    let on_my = rows(
        &*my,
        &format!(
            "SELECT id, name, CAST(amount AS CHAR) AS amount, \
             DATE_FORMAT(seen, '%Y-%m-%d %H:%i:%s.%f') AS seen, ok, score FROM {t} \
             WHERE id <> 9 ORDER BY id"
        ),
    )
    .await;
    assert_eq!(on_my, on_pg);
    assert_eq!(on_my[0]["seen"], "2025-01-08 00:00:00.000000");
    assert_eq!(on_my[0]["ok"], 1);
    assert_eq!(
        rows(&*my, &format!("SELECT name FROM {t} WHERE id = 9")).await,
        [json!({"name": "kept"})]
    );
    run(&*pg, &[format!("DROP TABLE {t}")]).await;
    run(&*my, &[format!("DROP TABLE {t}")]).await;
}

/// A bad value near the end of a 1,000,000-row object (streamed to the S3
/// server in parts): the load into PostgreSQL fails naming the line, and the
/// target table's content is exactly what it was.
#[cfg(all(feature = "postgres", feature = "s3"))]
#[tokio::test]
async fn a_bad_row_near_the_end_of_a_million_leaves_the_table_unchanged() {
    use bytes::Bytes;
    use futures::StreamExt;
    use gust::hooks::postgres::PostgresHook;
    use gust::hooks::s3::S3Hook;
    let pg_conn = require_conn!("postgres_default");
    let s3_conn = require_conn!("s3s_fs");
    let db = Arc::new(PostgresHook::from_connection(&pg_conn).await.unwrap());
    let store = Arc::new(S3Hook::from_connection(&s3_conn).await.unwrap());
    let bucket = common::unique("gust-million");
    store.create_bucket(&bucket).await.unwrap();
    let t = format!("million_{}", std::process::id());
    run(
        &*db,
        &[
            format!("DROP TABLE IF EXISTS {t}"),
            format!("CREATE TABLE {t} (id BIGINT, name TEXT, amount NUMERIC(12,2))"),
            format!(
                "INSERT INTO {t} SELECT i, 'before ' || i, i / 4.0 FROM generate_series(1, 1000) i"
            ),
        ],
    )
    .await;
    const ROWS: u64 = 1_000_000;
    const BAD: u64 = 999_990;
    // Generated in 10,000-row chunks: the object is streamed, not held.
    let chunks = futures::stream::iter(0..ROWS / 10_000).map(|c| {
        let mut s = String::new();
        if c == 0 {
            s.push_str("id;name;amount\n");
        }
        for i in c * 10_000 + 1..=(c + 1) * 10_000 {
            if i == BAD {
                s.push_str(&format!("{i};고객 {i};twelve\n"));
            } else {
                s.push_str(&format!("{i};고객 {i};{}.{:02}\n", i % 100_000, i % 100));
            }
        }
        Ok(Bytes::from(s))
    });
    store
        .put_stream(&bucket, "big.csv", chunks.boxed(), &PutOptions::new())
        .await
        .unwrap();
    let fingerprint = format!(
        "SELECT count(*) AS n, md5(string_agg(id || ':' || name || ':' || amount, ',' ORDER BY id)) AS h FROM {t}"
    );
    let before = rows(&*db, &fingerprint).await;
    let e = S3ToSql::new(format!("s3://{bucket}/big.csv"), t.clone())
        .file_format(CsvFormat::new().delimiter(b';'))
        .if_exists(IfExists::Replace)
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap_err();
    // PostgreSQL's CONTEXT: the COPY line is the object's line (header = 1).
    assert!(e.to_string().contains(&format!("line {}", BAD + 1)), "{e}");
    assert!(e.to_string().contains("twelve"), "{e}");
    assert!(e.to_string().contains("big.csv"), "{e}");
    assert_eq!(
        rows(&*db, &fingerprint).await,
        before,
        "the table is unchanged"
    );
    run(&*db, &[format!("DROP TABLE {t}")]).await;
}

/// PostgreSQL's direct path (`COPY` into the target in one transaction):
/// `create_table` creates the table (dropped again when the load fails), and
/// a table that foreign keys reference is replaced too (by `DELETE`, which
/// `TRUNCATE` would refuse) unless a referencing row would be orphaned: then
/// the constraint's error, and the table unchanged.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_direct_load_creates_tables_and_replaces_referenced_ones() {
    use gust::hooks::postgres::PostgresHook;
    let pg_conn = require_conn!("postgres_default");
    let db = Arc::new(PostgresHook::from_connection(&pg_conn).await.unwrap());
    let store = Arc::new(MemoryStore::new());
    store.create_bucket("b").await.unwrap();
    let t = format!("direct_{}", std::process::id());
    run(
        &*db,
        &[format!("DROP TABLE IF EXISTS {t}_child, {t}, {t}_new")],
    )
    .await;
    put(&*store, "b", "k.csv", "id;label\n1;a\n2;b\n").await;
    put(&*store, "b", "bad.csv", "id;label\n1;a\nx;b\n").await;
    let load = |key: &str, table: String| {
        S3ToSql::new(format!("s3://b/{key}"), table)
            .file_format(CsvFormat::new().delimiter(b';'))
            .if_exists(IfExists::Replace)
            .create_table([("id", "INTEGER PRIMARY KEY"), ("label", "TEXT")])
            .with_hook(db.clone())
            .with_store(store.clone())
    };
    let e = load("bad.csv", format!("{t}_new"))
        .execute(&ctx())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("line 3"), "{e}");
    let exists = format!("SELECT to_regclass('{t}_new')::text AS t");
    assert_eq!(rows(&*db, &exists).await, [json!({"t": null})]);
    let out = load("k.csv", format!("{t}_new"))
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], 2);

    run(
        &*db,
        &[
            format!("CREATE TABLE {t} (id INTEGER PRIMARY KEY, label TEXT)"),
            format!("INSERT INTO {t} VALUES (1, 'old'), (2, 'old')"),
            format!("CREATE TABLE {t}_child (parent INTEGER REFERENCES {t} (id))"),
        ],
    )
    .await;
    let out = load("k.csv", t.clone()).execute(&ctx()).await.unwrap();
    assert_eq!(out["rows"], 2);
    let table = format!("SELECT id, label FROM {t} ORDER BY id");
    let loaded = [
        json!({"id": 1, "label": "a"}),
        json!({"id": 2, "label": "b"}),
    ];
    assert_eq!(rows(&*db, &table).await, loaded);
    run(&*db, &[format!("INSERT INTO {t}_child VALUES (1)")]).await;
    put(
        &*store,
        "b",
        "k2.csv",
        "id;label
1;c
",
    )
    .await;
    let e = load("k2.csv", t.clone()).execute(&ctx()).await.unwrap_err();
    assert!(e.to_string().contains("foreign key"), "{e}");
    assert_eq!(rows(&*db, &table).await, loaded);
    run(&*db, &[format!("DROP TABLE {t}_child, {t}, {t}_new")]).await;
}
