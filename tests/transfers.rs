//! Transfers end to end. Without a server: `S3ToSql` and `SqlToS3` on SQLite
//! with an in-memory store, `SqlToSql` between SQLite databases. On the real
//! servers (moto, PostgreSQL, MariaDB): `S3ToSql` into PostgreSQL and MariaDB,
//! `SqlToS3` from PostgreSQL, `SqlToSql` from PostgreSQL into MariaDB.

// The server tests are compiled with the `postgres` feature only; without it
// their helpers and imports are unused, which is not worth a cfg on each.
#![cfg_attr(not(feature = "postgres"), allow(unused))]

mod common;

use common::transfers::{put, rows};

use std::io::Write;
use std::sync::Arc;

use gust::formats::csv::CsvFormat;
use gust::hooks::object_store::{MemoryStore, ObjectStore};
use gust::hooks::sql::{RunOptions, Sql, SqlHook};
use gust::hooks::sqlite::SqliteHook;
use gust::transfers::IfExists;
use gust::transfers::s3_to_sql::S3ToSql;
use gust::{Context, ErrorKind, Operator};
use serde_json::{Value, json};

fn ctx() -> Context {
    Context::builder("transfers", "load").build()
}

/// Tables whose name says they are a transfer's staging table.
async fn staging_left(db: &dyn SqlHook, sql: &str) -> usize {
    rows(db, sql).await.len()
}

const SQLITE_STAGING: &str =
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%gust_staging%'";

async fn sqlite_with_table() -> (Arc<MemoryStore>, Arc<SqliteHook>) {
    let store = Arc::new(MemoryStore::new());
    store.create_bucket("raw").await.unwrap();
    let db = Arc::new(SqliteHook::open("lite", ":memory:").await.unwrap());
    db.run(
        Sql::from("CREATE TABLE people (id INTEGER, name TEXT, note TEXT)"),
        RunOptions::default(),
    )
    .await
    .unwrap();
    (store, db)
}

#[tokio::test]
async fn s3_to_sqlite_keeps_null_empty_and_korean_and_replaces_or_appends() {
    let (store, db) = sqlite_with_table().await;
    // `;`-separated, NULL written as NA, an empty string quoted, a `;` inside quotes.
    put(
        &*store,
        "raw",
        "people.csv",
        "id;name;note\n1;김민수;NA\n2;\"a;b\";\"\"\n3;park;\"NA\"\n",
    )
    .await;
    let op = S3ToSql::new("s3://raw/people.csv", "people")
        .file_format(CsvFormat::new().delimiter(b';').null("NA"))
        .if_exists(IfExists::Replace)
        .with_store(store.clone())
        .with_hook(db.clone());
    let out = op.execute(&ctx()).await.unwrap();
    assert_eq!(out["rows"], 3);
    assert_eq!(out["table"], "people");
    let expected = vec![
        json!({"id": 1, "name": "김민수", "note": null}),
        json!({"id": 2, "name": "a;b", "note": ""}),
        json!({"id": 3, "name": "park", "note": "NA"}),
    ];
    let read = "SELECT id, name, note FROM people ORDER BY id";
    assert_eq!(rows(&*db, read).await, expected);
    // Replace again: the same table, not twice the rows.
    op.execute(&ctx()).await.unwrap();
    assert_eq!(rows(&*db, read).await, expected);
    // Append: the rows once more.
    op.clone()
        .if_exists(IfExists::Append)
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(rows(&*db, read).await.len(), 6);
    assert_eq!(staging_left(&*db, SQLITE_STAGING).await, 0);
}

#[tokio::test]
async fn s3_to_sqlite_reads_gzip_and_a_column_list() {
    let (store, db) = sqlite_with_table().await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"7,seven\n8,eight\n").unwrap();
    put(&*store, "raw", "no_header.csv.gz", gz.finish().unwrap()).await;
    let out = S3ToSql::new("no_header.csv.gz", "people")
        .s3_bucket("raw")
        .file_format(CsvFormat::new().header(false))
        .column_list(["id", "name"])
        .with_store(store)
        .with_hook(db.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], 2);
    assert_eq!(
        rows(&*db, "SELECT id, name, note FROM people ORDER BY id").await,
        vec![
            json!({"id": 7, "name": "seven", "note": null}),
            json!({"id": 8, "name": "eight", "note": null}),
        ]
    );
}

#[tokio::test]
async fn bad_input_fails_with_a_typed_error_and_leaves_the_table_unchanged() {
    let (store, db) = sqlite_with_table().await;
    db.run(
        Sql::from("INSERT INTO people VALUES (0, 'kept', NULL)"),
        RunOptions::default(),
    )
    .await
    .unwrap();
    let before = rows(&*db, "SELECT * FROM people").await;
    let load = |key: &str| {
        S3ToSql::new(format!("s3://raw/{key}"), "people")
            .if_exists(IfExists::Replace)
            .with_store(store.clone())
            .with_hook(db.clone())
    };

    // The wrong delimiter: one field where three columns were expected, near the end.
    let mut body = String::from("id,name,note\n");
    for i in 1..=500 {
        body.push_str(&format!("{i},n{i},x\n"));
    }
    body.push_str("501;oops;x\n");
    put(&*store, "raw", "bad.csv", body).await;
    let e = load("bad.csv").execute(&ctx()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let text = e.to_string();
    assert!(text.contains("line 502"), "{text}");
    assert!(text.contains("object=s3://raw/bad.csv"), "{text}");
    assert!(text.contains("target_table=people"), "{text}");

    // A missing object.
    let e = load("missing.csv").execute(&ctx()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(e.context("key"), Some("missing.csv"));

    // An empty object.
    put(&*store, "raw", "empty.csv", "").await;
    let e = load("empty.csv").execute(&ctx()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("empty"), "{e}");

    // An unknown column in the header.
    put(&*store, "raw", "unknown.csv", "id,nope\n1,x\n").await;
    let e = load("unknown.csv").execute(&ctx()).await.unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");

    // A target table that does not exist.
    put(&*store, "raw", "ok.csv", "id,name,note\n1,a,b\n").await;
    let e = S3ToSql::new("s3://raw/ok.csv", "no_such_table")
        .with_store(store.clone())
        .with_hook(db.clone())
        .execute(&ctx())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no_such_table"), "{e}");
    assert_eq!(e.context("target_table"), Some("no_such_table"));

    // Not gzip although the key says so.
    put(&*store, "raw", "fake.csv.gz", "id,name,note\n1,a,b\n").await;
    let e = load("fake.csv.gz").execute(&ctx()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("gzip"), "{e}");

    assert_eq!(rows(&*db, "SELECT * FROM people").await, before);
    assert_eq!(staging_left(&*db, SQLITE_STAGING).await, 0);
}

/// 1,000 `;`-separated rows shaped like credit data: a third of the names NULL
/// (`\N`), a third empty strings, a third Korean text with `;` and symbols;
/// `numeric` amounts, timestamps with offset `tz` ("" for none), booleans as 0/1.
#[cfg(feature = "s3")]
fn credit_csv(tz: &str) -> String {
    let mut body = String::from("id;name;amount;seen;ok\n");
    for i in 1..=1000 {
        let name = match i % 3 {
            0 => "\"\"".to_string(),
            1 => format!("\"고객 {i}; !@9#%8\""),
            _ => "\\N".to_string(),
        };
        body.push_str(&format!(
            "{i};{name};{}.{:02};2025-01-08 0{}:00:00{tz};{}\n",
            i * 7,
            i % 100,
            i % 10,
            u8::from(i % 2 == 0)
        ));
    }
    body
}

/// The load of `key` (a [`credit_csv`] file) into `table`: `;`, NULL as `\N`,
/// replacing.
#[cfg(all(feature = "s3", any(feature = "postgres", feature = "mysql")))]
fn credit_load(
    store: Arc<dyn ObjectStore>,
    db: Arc<dyn SqlHook>,
    bucket: &str,
    key: &str,
    table: &str,
) -> S3ToSql {
    S3ToSql::new(format!("s3://{bucket}/{key}"), table)
        .file_format(CsvFormat::new().delimiter(b';').null("\\N"))
        .if_exists(IfExists::Replace)
        .with_store(store)
        .with_hook(db)
}

/// PostgreSQL through moto: 1,000 rows with NULLs, empty strings, Korean text,
/// `numeric` and `timestamptz`, replaced atomically; then a bad value on the
/// 999th row leaves the table as it was, and the error names the line and column.
#[cfg(all(feature = "postgres", feature = "s3"))]
#[tokio::test]
async fn s3_to_postgres_is_all_or_nothing() {
    use gust::hooks::postgres::PostgresHook;
    use gust::hooks::s3::S3Hook;
    let pg_conn = require_conn!("postgres_default");
    let aws_conn = require_conn!("aws_default");
    let db = Arc::new(PostgresHook::from_connection(&pg_conn).await.unwrap());
    let store = Arc::new(S3Hook::from_connection(&aws_conn).await.unwrap());
    let bucket = common::unique("gust-transfer");
    store.create_bucket(&bucket).await.unwrap();
    let table = format!("credit_{}", std::process::id());
    db.run(
        Sql::Many(vec![
            format!("DROP TABLE IF EXISTS {table}"),
            format!(
                "CREATE TABLE {table} (id BIGINT PRIMARY KEY, name TEXT, amount NUMERIC(12,2), \
                 seen TIMESTAMPTZ, ok BOOLEAN)"
            ),
        ]),
        RunOptions::default(),
    )
    .await
    .unwrap();

    let body = credit_csv("+09");
    put(&*store, &bucket, "credit.csv", body.clone()).await;
    let load = |key: &str| credit_load(store.clone(), db.clone(), &bucket, key, &table);
    let out = load("credit.csv").execute(&ctx()).await.unwrap();
    assert_eq!(out["rows"], 1000);
    let summary = format!(
        "SELECT count(*) AS n, count(name) AS names, sum(CASE WHEN name = '' THEN 1 ELSE 0 END) AS empty, \
         sum(amount)::text AS total, min(seen) AS first, sum(CASE WHEN ok THEN 1 ELSE 0 END) AS oks \
         FROM {table}"
    );
    let loaded = rows(&*db, &summary).await;
    assert_eq!(loaded[0]["n"], 1000);
    assert_eq!(loaded[0]["names"], 667, "{loaded:?}");
    assert_eq!(loaded[0]["empty"], 333, "{loaded:?}");
    let korean = rows(&*db, &format!("SELECT name FROM {table} WHERE id = 1")).await;
    assert_eq!(korean[0]["name"], "고객 1; !@9#%8");

    // A value that does not fit its column on the 999th data row (line 1000).
    let bad = body.replacen("999;", "999x;", 1);
    put(&*store, &bucket, "bad.csv", bad).await;
    let e = load("bad.csv").execute(&ctx()).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("line 1000"), "{text}");
    assert!(text.contains("column id"), "{text}");
    assert!(
        text.contains(&format!("object=s3://{bucket}/bad.csv")),
        "{text}"
    );
    assert_eq!(rows(&*db, &summary).await, loaded, "the table is unchanged");
    let staging = format!(
        "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '{table}__gust_staging%'"
    );
    assert_eq!(staging_left(&*db, &staging).await, 0);
    db.run(
        Sql::from(format!("DROP TABLE {table}")),
        RunOptions::default(),
    )
    .await
    .unwrap();
}

/// MariaDB through moto, with `LOAD DATA LOCAL INFILE`: the same file, the same
/// all-or-nothing replace.
#[cfg(all(feature = "mysql", feature = "s3"))]
#[tokio::test]
async fn s3_to_mariadb_is_all_or_nothing() {
    use gust::hooks::mysql::MySqlHook;
    use gust::hooks::s3::S3Hook;
    let my_conn = require_conn!("mysql_default");
    let aws_conn = require_conn!("aws_default");
    // LOAD DATA LOCAL INFILE is opt-in.
    let my_conn = my_conn.with_extra("local_infile", json!(true));
    let db = Arc::new(MySqlHook::from_connection(&my_conn).await.unwrap());
    let store = Arc::new(S3Hook::from_connection(&aws_conn).await.unwrap());
    let bucket = common::unique("gust-transfer-my");
    store.create_bucket(&bucket).await.unwrap();
    let table = format!("credit_{}", std::process::id());
    db.run(
        Sql::Many(vec![
            format!("DROP TABLE IF EXISTS {table}"),
            format!(
                "CREATE TABLE {table} (id BIGINT PRIMARY KEY, name TEXT, amount DECIMAL(12,2), \
                 seen DATETIME, ok BOOLEAN) CHARACTER SET utf8mb4"
            ),
        ]),
        RunOptions::default(),
    )
    .await
    .unwrap();
    let body = credit_csv("");
    put(&*store, &bucket, "credit.csv", body.clone()).await;
    let load = |key: &str| credit_load(store.clone(), db.clone(), &bucket, key, &table);
    assert_eq!(
        load("credit.csv").execute(&ctx()).await.unwrap()["rows"],
        1000
    );
    let summary = format!(
        "SELECT count(*) AS n, count(name) AS names, \
         sum(CASE WHEN name = '' THEN 1 ELSE 0 END) AS empty, sum(amount) AS total \
         FROM {table}"
    );
    let loaded = rows(&*db, &summary).await;
    assert_eq!(loaded[0]["n"], 1000, "{loaded:?}");
    assert_eq!(loaded[0]["names"], 667, "{loaded:?}");
    let korean = rows(&*db, &format!("SELECT name FROM {table} WHERE id = 1")).await;
    assert_eq!(korean[0]["name"], "고객 1; !@9#%8");

    // A duplicate key on the last row: the load fails, the table is unchanged.
    let bad = format!("{body}1;dup;1.00;2025-01-08 00:00:00;1\n");
    put(&*store, &bucket, "bad.csv", bad).await;
    let e = load("bad.csv").execute(&ctx()).await.unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("object=s3://{bucket}/bad.csv")),
        "{e}"
    );
    assert_eq!(rows(&*db, &summary).await, loaded, "the table is unchanged");
    db.run(
        Sql::from(format!("DROP TABLE {table}")),
        RunOptions::default(),
    )
    .await
    .unwrap();
}

/// SQLite → in-memory store → SQLite: the same table back, NULL and empty
/// string apart, Korean text intact.
#[tokio::test]
async fn sqlite_round_trip_through_a_store() {
    use gust::transfers::sql_to_s3::SqlToS3;
    let (store, db) = sqlite_with_table().await;
    db.run(
        Sql::from(
            "INSERT INTO people VALUES (1, '김민수', NULL), (2, '', 'a,\"b\"'), (3, NULL, '\n')",
        ),
        RunOptions::default(),
    )
    .await
    .unwrap();
    let out = SqlToS3::new(
        "SELECT id, name, note FROM people ORDER BY id",
        "s3://raw/{{ ds }}/people.csv.gz",
    )
    .with_hook(db.clone())
    .with_store(store.clone())
    .execute(&ctx())
    .await
    .unwrap();
    assert_eq!(out["rows"], 3);
    assert_eq!(out["format"], "csv");
    let key = out["key"].as_str().unwrap().to_string();
    assert!(key.ends_with("/people.csv.gz"), "{key}");
    // Not replacing an existing key, as Airflow's default.
    let e = SqlToS3::new("SELECT 1 AS x", format!("s3://raw/{key}"))
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");

    db.run(
        Sql::from("CREATE TABLE people_back (id INTEGER, name TEXT, note TEXT)"),
        RunOptions::default(),
    )
    .await
    .unwrap();
    S3ToSql::new(format!("s3://raw/{key}"), "people_back")
        .with_store(store)
        .with_hook(db.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(
        rows(&*db, "SELECT id, name, note FROM people_back ORDER BY id").await,
        rows(&*db, "SELECT id, name, note FROM people ORDER BY id").await
    );
}

/// PostgreSQL → moto → PostgreSQL: byte for byte `psql \copy`'s CSV, the same
/// table back, and a query failing after megabytes were sent leaves no object
/// and no pending upload.
#[cfg(all(feature = "postgres", feature = "s3"))]
#[tokio::test]
async fn postgres_round_trip_through_s3_and_a_failing_query_leaves_nothing() {
    use gust::hooks::postgres::PostgresHook;
    use gust::hooks::s3::{MIN_PART_SIZE, S3Hook};
    use gust::transfers::sql_to_s3::SqlToS3;
    let pg_conn = require_conn!("postgres_default");
    let aws_conn = require_conn!("aws_default");
    let db = Arc::new(PostgresHook::from_connection(&pg_conn).await.unwrap());
    let s3 = S3Hook::from_connection(&aws_conn)
        .await
        .unwrap()
        .with_part_size(MIN_PART_SIZE);
    let store = Arc::new(s3.clone());
    let bucket = common::unique("gust-export");
    store.create_bucket(&bucket).await.unwrap();
    let table = format!("export_{}", std::process::id());
    db.run(
        Sql::Many(vec![
            format!("DROP TABLE IF EXISTS {table}, {table}_back"),
            format!(
                "CREATE TABLE {table} (id BIGINT, name TEXT, amount NUMERIC(12,2), seen TIMESTAMPTZ, ok BOOLEAN)"
            ),
            format!("CREATE TABLE {table}_back (LIKE {table})"),
        ]),
        RunOptions::default(),
    )
    .await
    .unwrap();
    let body = credit_csv("+09");
    put(&*store, &bucket, "in.csv", body).await;
    S3ToSql::new(format!("s3://{bucket}/in.csv"), table.clone())
        .file_format(CsvFormat::new().delimiter(b';').null("\\N"))
        .with_store(store.clone())
        .with_hook(db.clone())
        .execute(&ctx())
        .await
        .unwrap();

    let query = format!("SELECT * FROM {table} ORDER BY id");
    let out = SqlToS3::new(query.clone(), format!("s3://{bucket}/out.csv"))
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], 1000);
    let ours = store.get(&bucket, "out.csv").await.unwrap();
    assert_eq!(out["bytes"], ours.len());

    // The reference: psql's \copy of the same query.
    let psql = std::process::Command::new("psql")
        .env("PGPASSWORD", pg_conn.password().unwrap_or_default())
        .args([
            "-X",
            "-q",
            "-h",
            pg_conn.host().unwrap(),
            "-p",
            &pg_conn.port().unwrap().to_string(),
            "-U",
            pg_conn.login().unwrap(),
            "-d",
            pg_conn.schema().unwrap(),
            "-c",
            &format!("\\copy ({query}) TO STDOUT WITH (FORMAT csv, HEADER)"),
        ])
        .output()
        .expect("psql runs");
    assert!(
        psql.status.success(),
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );
    assert!(
        ours[..] == psql.stdout[..],
        "not byte-identical to psql \\copy"
    );

    // And back into a table equal to the first.
    S3ToSql::new(format!("s3://{bucket}/out.csv"), format!("{table}_back"))
        .with_store(store.clone())
        .with_hook(db.clone())
        .execute(&ctx())
        .await
        .unwrap();
    let diff = rows(
        &*db,
        &format!(
            "SELECT count(*) AS n FROM ((SELECT * FROM {table} EXCEPT ALL SELECT * FROM {table}_back) \
             UNION ALL (SELECT * FROM {table}_back EXCEPT ALL SELECT * FROM {table})) d"
        ),
    )
    .await;
    assert_eq!(diff[0]["n"], 0);

    // A query that fails after ~ 20 MB were streamed (several parts uploaded).
    let failing = "SELECT i, repeat('x', 100) AS pad, 1 / (i - 200000) AS boom \
                   FROM generate_series(1, 300000) AS i";
    let e = SqlToS3::new(failing, format!("s3://{bucket}/broken.csv"))
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("division by zero"), "{e}");
    assert!(!store.exists(&bucket, "broken.csv").await.unwrap());
    let pending = s3
        .client()
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(pending.uploads().is_empty(), "{:?}", pending.uploads());

    db.run(
        Sql::from(format!("DROP TABLE {table}, {table}_back")),
        RunOptions::default(),
    )
    .await
    .unwrap();
}

/// SQLite → SQLite: replace, a preoperator in the same transaction, an empty
/// result, a failing query and a failing apply that leave the target (and the
/// preoperator's table) as they were.
#[tokio::test]
async fn sql_to_sql_between_sqlite_databases() {
    use gust::transfers::sql_to_sql::SqlToSql;
    let (_, src) = sqlite_with_table().await;
    let (_, dst) = sqlite_with_table().await;
    src.run(
        Sql::from("INSERT INTO people VALUES (1, '김민수', NULL), (2, '', 'x')"),
        RunOptions::default(),
    )
    .await
    .unwrap();
    dst.run(
        Sql::Many(vec![
            "INSERT INTO people VALUES (9, 'old', NULL)".into(),
            "CREATE TABLE audit (n INTEGER)".into(),
        ]),
        RunOptions::default(),
    )
    .await
    .unwrap();
    let copy = |sql: &str| {
        SqlToSql::new(sql, "people")
            .with_source_hook(src.clone())
            .with_destination_hook(dst.clone())
            .preoperator(["INSERT INTO audit VALUES (1)"])
            .if_exists(IfExists::Replace)
    };
    let out = copy("SELECT id, name, note FROM people")
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], 2);
    let read = "SELECT id, name, note FROM people ORDER BY id";
    let copied = rows(&*dst, read).await;
    assert_eq!(copied, rows(&*src, read).await);
    assert_eq!(rows(&*dst, "SELECT n FROM audit").await.len(), 1);

    // A failing query: the target and the preoperator's table are unchanged.
    let e = copy("SELECT id, name, nope FROM people")
        .execute(&ctx())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
    assert_eq!(rows(&*dst, read).await, copied);
    assert_eq!(rows(&*dst, "SELECT n FROM audit").await.len(), 1);

    // The apply itself fails: the staging table (made by CREATE TABLE AS, which
    // copies no constraint) takes the rows, the INSERT into the target breaks
    // its CHECK. The preoperator ran in that transaction, so it is undone too.
    dst.run(
        Sql::Many(vec![
            "CREATE TABLE strict (id INTEGER CHECK (id < 2), name TEXT, note TEXT)".into(),
            "INSERT INTO strict VALUES (0, 'old', NULL)".into(),
        ]),
        RunOptions::default(),
    )
    .await
    .unwrap();
    let strict_read = "SELECT id, name, note FROM strict ORDER BY id";
    let strict_before = rows(&*dst, strict_read).await;
    let audit_before = rows(&*dst, "SELECT n FROM audit").await;
    let e = SqlToSql::new("SELECT id, name, note FROM people", "strict")
        .with_source_hook(src.clone())
        .with_destination_hook(dst.clone())
        .preoperator(["INSERT INTO audit VALUES (2)"])
        .execute(&ctx())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("CHECK"), "{e}");
    assert_eq!(rows(&*dst, strict_read).await, strict_before);
    assert_eq!(rows(&*dst, "SELECT n FROM audit").await, audit_before);
    assert_eq!(staging_left(&*dst, SQLITE_STAGING).await, 0);

    // An empty result replaces with nothing.
    let out = copy("SELECT id, name, note FROM people WHERE id < 0")
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], 0);
    assert!(rows(&*dst, read).await.is_empty());
    assert_eq!(staging_left(&*dst, SQLITE_STAGING).await, 0);
}

/// PostgreSQL → MariaDB: the same rows (NULL and empty string apart, Korean
/// text, `numeric` digits); a value MariaDB refuses leaves its table unchanged.
#[cfg(all(feature = "postgres", feature = "mysql"))]
#[tokio::test]
async fn sql_to_sql_postgres_to_mariadb() {
    use gust::hooks::mysql::MySqlHook;
    use gust::hooks::postgres::PostgresHook;
    use gust::transfers::sql_to_sql::SqlToSql;
    let pg_conn = require_conn!("postgres_default");
    let my_conn = require_conn!("mysql_default").with_extra("local_infile", json!(true));
    let pg = Arc::new(PostgresHook::from_connection(&pg_conn).await.unwrap());
    let my = Arc::new(MySqlHook::from_connection(&my_conn).await.unwrap());
    let table = format!("generic_{}", std::process::id());
    pg.run(
        Sql::Many(vec![
            format!("DROP TABLE IF EXISTS {table}"),
            format!("CREATE TABLE {table} (id BIGINT, name TEXT, amount NUMERIC(12,2))"),
            format!(
                "INSERT INTO {table} SELECT i, CASE i % 3 WHEN 0 THEN NULL WHEN 1 THEN '' \
                 ELSE '고객 ' || i || '; !@9#%8' END, i * 7.01 FROM generate_series(1, 1000) i"
            ),
        ]),
        RunOptions::default(),
    )
    .await
    .unwrap();
    my.run(
        Sql::Many(vec![
            format!("DROP TABLE IF EXISTS {table}"),
            format!(
                "CREATE TABLE {table} (id BIGINT, name TEXT, amount DECIMAL(12,2)) CHARACTER SET utf8mb4"
            ),
        ]),
        RunOptions::default(),
    )
    .await
    .unwrap();
    let copy = |sql: String| {
        SqlToSql::new(sql, table.clone())
            .with_source_hook(pg.clone())
            .with_destination_hook(my.clone())
            .if_exists(IfExists::Replace)
    };
    let out = copy(format!("SELECT * FROM {table} ORDER BY id"))
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], 1000);
    let summary = |t: &str| {
        format!(
            "SELECT count(*) AS n, count(name) AS names, \
             sum(CASE WHEN name = '' THEN 1 ELSE 0 END) AS empty, \
             CAST(sum(amount) AS CHAR(20)) AS total FROM {t}"
        )
    };
    // The drivers type aggregates differently (a count, a DECIMAL sum): compare
    // them as text.
    let text = |rows: Vec<Value>| -> Vec<String> {
        let r = &rows[0];
        ["n", "names", "empty", "total"]
            .iter()
            .map(|k| r[*k].to_string().trim_matches('"').to_string())
            .collect()
    };
    let on_pg = text(rows(&*pg, &summary(&table).replace("CHAR(20)", "TEXT")).await);
    let on_my_rows = rows(&*my, &summary(&table)).await;
    let on_my = text(on_my_rows.clone());
    assert_eq!(on_pg, on_my);
    assert_eq!(on_my[1], "667");
    let korean = rows(&*my, &format!("SELECT name FROM {table} WHERE id = 2")).await;
    assert_eq!(korean[0]["name"], "고객 2; !@9#%8");

    // An amount too large for DECIMAL(12,2) in the last row: MariaDB refuses it,
    // and its table keeps the first copy.
    let e = copy(format!(
        "SELECT * FROM {table} UNION ALL SELECT 1001, 'big', 12345678901234.5 ORDER BY id"
    ))
    .execute(&ctx())
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("amount") || e.to_string().contains("warning"),
        "{e}"
    );
    // The cause, not the broken pipe it left on the source's side.
    assert_ne!(e.kind(), ErrorKind::Io, "{e}");
    assert_eq!(
        rows(&*my, &summary(&table)).await,
        on_my_rows,
        "the table is unchanged"
    );

    pg.run(
        Sql::from(format!("DROP TABLE {table}")),
        RunOptions::default(),
    )
    .await
    .unwrap();
    my.run(
        Sql::from(format!("DROP TABLE {table}")),
        RunOptions::default(),
    )
    .await
    .unwrap();
}
