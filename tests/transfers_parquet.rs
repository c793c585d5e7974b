//! Parquet on the real servers: typed round trips PostgreSQL → S3 →
//! PostgreSQL, MariaDB → S3 → MariaDB and SQLite → local store → SQLite;
//! pyarrow (the services' Python) reads gust's files with the expected types
//! and values, gust loads a file pandas wrote, and a file with a nested column
//! is refused as an incompatible schema.

mod common;

use common::transfers::{put, rows, run};

use std::sync::Arc;

use gust::formats::parquet::ParquetFormat;
use gust::hooks::object_store::ObjectStore;
use gust::hooks::sqlite::SqliteHook;
use gust::transfers::IfExists;
use gust::transfers::s3_to_sql::S3ToSql;
use gust::transfers::sql_to_s3::SqlToS3;
use gust::{Context, ErrorKind, Operator};
use serde_json::{Value, json};

fn ctx() -> Context {
    Context::builder("transfers", "parquet").build()
}

/// Runs `script` in the services' Python with `args`; its standard output
/// parsed as JSON. `None` (check skipped) without that Python outside CI.
fn python(script: &str, args: &[&str]) -> Option<Value> {
    let py = common::python()?;
    let out = std::process::Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// What pyarrow reads from a file: each column's type, and the rows with
/// every value as `str()` prints it.
const PYARROW_READ: &str = r#"
import json, sys
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
print(json.dumps({
    "types": {f.name: str(f.type) for f in t.schema},
    "rows": [{k: (None if v is None else str(v)) for k, v in r.items()} for r in t.to_pylist()],
}))
"#;

/// Downloads an object to a temporary file and reads it with pyarrow.
async fn read_with_pyarrow(store: &dyn ObjectStore, bucket: &str, key: &str) -> Option<Value> {
    let body = store.get(bucket, key).await.unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &body).unwrap();
    python(PYARROW_READ, &[file.path().to_str().unwrap()])
}

/// PostgreSQL → Parquet on S3 → PostgreSQL gives the same table; pyarrow reads
/// the typed columns (decimal, UTC timestamps, dates, booleans, Korean text,
/// NULL apart from ""); a pandas-written file loads; a nested column is an
/// incompatible schema and leaves the table as it was.
#[cfg(all(feature = "postgres", feature = "s3"))]
#[tokio::test]
async fn postgres_parquet_round_trip_read_by_pyarrow() {
    use gust::hooks::postgres::PostgresHook;
    use gust::hooks::s3::S3Hook;
    let pg_conn = require_conn!("postgres_default");
    let aws_conn = require_conn!("aws_default");
    let db = Arc::new(PostgresHook::from_connection(&pg_conn).await.unwrap());
    let store = Arc::new(S3Hook::from_connection(&aws_conn).await.unwrap());
    let bucket = common::unique("gust-parquet");
    store.create_bucket(&bucket).await.unwrap();
    let t = format!("pq_{}", std::process::id());
    run(
        &*db,
        &[
            format!("DROP TABLE IF EXISTS {t}, {t}_back, {t}_pandas"),
            format!(
                "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name TEXT, amount NUMERIC(12,2), \
                 seen TIMESTAMPTZ, ok BOOLEAN, score DOUBLE PRECISION, day DATE, n INTEGER, \
                 big NUMERIC, nothing TEXT)"
            ),
            format!("CREATE TABLE {t}_back (LIKE {t})"),
            format!(
                "INSERT INTO {t} VALUES \
                 (1, '고객 1; !@9#%8', 12.50, '2025-01-08 09:00:00+09', true, 0.1, '2025-01-08', 7, \
                  123456789012345678901234567890.5, NULL), \
                 (2, '', 0.00, '2025-01-08 00:00:00.123456+00', false, NULL, '1970-01-01', -1, 0, NULL), \
                 (3, NULL, NULL, NULL, NULL, 'NaN', NULL, NULL, NULL, NULL), \
                 (4, 'say \"hi\"\nbye', -99999999.99, '1999-12-31 23:59:59+00', true, 1e300, \
                  '2099-12-31', 2147483647, -0.001, NULL)"
            ),
        ],
    )
    .await;
    let query = format!("SELECT * FROM {t} ORDER BY id");

    let out = SqlToS3::new(
        query.clone(),
        format!("s3://{bucket}/{{{{ ds }}}}/rows.parquet"),
    )
    .with_hook(db.clone())
    .with_store(store.clone())
    .execute(&ctx())
    .await
    .unwrap();
    assert_eq!(out["format"], "parquet");
    assert_eq!(out["rows"], 4);
    let key = out["key"].as_str().unwrap().to_string();
    let head = store.head(&bucket, &key).await.unwrap();
    assert_eq!(
        head.content_type.as_deref(),
        Some("application/vnd.apache.parquet")
    );

    let out = S3ToSql::new(format!("s3://{bucket}/{key}"), format!("{t}_back"))
        .if_exists(IfExists::Replace)
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], 4);
    let diff = rows(
        &*db,
        &format!(
            "SELECT count(*) AS n FROM ((SELECT * FROM {t} EXCEPT ALL SELECT * FROM {t}_back) \
             UNION ALL (SELECT * FROM {t}_back EXCEPT ALL SELECT * FROM {t})) d"
        ),
    )
    .await;
    assert_eq!(diff[0]["n"], 0, "the table came back different");

    if let Some(read) = read_with_pyarrow(&*store, &bucket, &key).await {
        assert_eq!(
            read["types"],
            json!({"id": "int64", "name": "string", "amount": "decimal128(12, 2)",
                   "seen": "timestamp[us, tz=UTC]", "ok": "bool", "score": "double",
                   "day": "date32[day]", "n": "int32", "big": "string", "nothing": "string"})
        );
        assert_eq!(
            read["rows"][0],
            json!({"id": "1", "name": "고객 1; !@9#%8", "amount": "12.50",
                   "seen": "2025-01-08 00:00:00+00:00", "ok": "True", "score": "0.1",
                   "day": "2025-01-08", "n": "7",
                   "big": "123456789012345678901234567890.5", "nothing": null})
        );
        assert_eq!(read["rows"][1]["name"], "", "the empty string is not NULL");
        assert_eq!(read["rows"][1]["seen"], "2025-01-08 00:00:00.123456+00:00");
        assert_eq!(read["rows"][2]["name"], Value::Null);
        assert_eq!(read["rows"][3]["amount"], "-99999999.99");
    }

    // A file pandas wrote (nanosecond UTC timestamps, NaN as null, Korean)
    // loads into a table gust creates.
    let pandas_file = tempfile::NamedTempFile::new().unwrap();
    let written = python(
        r#"
import datetime, json, sys
import pandas as pd
df = pd.DataFrame({
    "id": [1, 2, 3],
    "name": ["가나다", "", None],
    "score": [0.5, float("nan"), -2.0],
    "at": pd.to_datetime(["2025-01-08 09:00:00+09:00", "2025-01-08 00:00:00.5+00:00", None], utc=True, format="ISO8601"),
    "day": [datetime.date(2025, 1, 8), None, datetime.date(1999, 12, 31)],
    "flag": [True, False, True],
})
df.to_parquet(sys.argv[1], index=False)
print(json.dumps({"rows": len(df)}))
"#,
        &[pandas_file.path().to_str().unwrap()],
    );
    if written.is_some() {
        put(
            &*store,
            &bucket,
            "pandas.parquet",
            std::fs::read(pandas_file.path()).unwrap(),
        )
        .await;
        let out = S3ToSql::new(
            format!("s3://{bucket}/pandas.parquet"),
            format!("{t}_pandas"),
        )
        .create_table([
            ("id", "BIGINT PRIMARY KEY"),
            ("name", "TEXT"),
            ("score", "DOUBLE PRECISION"),
            ("at", "TIMESTAMPTZ"),
            ("day", "DATE"),
            ("flag", "BOOLEAN"),
        ])
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
        assert_eq!(out["rows"], 3);
        let back = rows(
            &*db,
            &format!(
                "SELECT id, name, score, at, day::text AS day, flag FROM {t}_pandas ORDER BY id"
            ),
        )
        .await;
        assert_eq!(
            back[0],
            json!({"id": 1, "name": "가나다", "score": 0.5, "at": "2025-01-08T00:00:00Z",
                   "day": "2025-01-08", "flag": true})
        );
        assert_eq!(back[1]["name"], "");
        assert_eq!(
            back[1]["score"],
            Value::Null,
            "pandas' NaN is a null in the file"
        );
        assert_eq!(back[1]["at"], "2025-01-08T00:00:00.500Z");
        assert_eq!(back[2]["name"], Value::Null);
        assert_eq!(back[2]["at"], Value::Null);
    }

    // A nested column: an incompatible schema, named; the table is unchanged.
    let nested_file = tempfile::NamedTempFile::new().unwrap();
    let nested = python(
        r#"
import json, sys
import pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.table({"id": [9], "tags": [[1, 2]]}), sys.argv[1])
print("{}")
"#,
        &[nested_file.path().to_str().unwrap()],
    );
    if nested.is_some() {
        put(
            &*store,
            &bucket,
            "nested.parquet",
            std::fs::read(nested_file.path()).unwrap(),
        )
        .await;
        let before = rows(&*db, &format!("SELECT * FROM {t}_back ORDER BY id")).await;
        let e = S3ToSql::new(format!("s3://{bucket}/nested.parquet"), format!("{t}_back"))
            .if_exists(IfExists::Replace)
            .with_hook(db.clone())
            .with_store(store.clone())
            .execute(&ctx())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            e.message().contains("incompatible Parquet schema") && e.message().contains("\"tags\""),
            "{e}"
        );
        assert_eq!(
            e.context("object"),
            Some(format!("s3://{bucket}/nested.parquet").as_str())
        );
        let after = rows(&*db, &format!("SELECT * FROM {t}_back ORDER BY id")).await;
        assert_eq!(before, after, "the failed load changed the table");
    }
    run(&*db, &[format!("DROP TABLE {t}, {t}_back, {t}_pandas")]).await;
}

/// MariaDB → Parquet → MariaDB: DECIMAL as a decimal column, DATETIME as a
/// naive timestamp, TIMESTAMP as UTC, BOOLEAN (`tinyint(1)`) as a small int.
#[cfg(all(feature = "mysql", feature = "s3"))]
#[tokio::test]
async fn mariadb_parquet_round_trip() {
    use gust::hooks::mysql::MySqlHook;
    use gust::hooks::s3::S3Hook;
    let my_conn = require_conn!("mysql_default").with_extra("local_infile", json!(true));
    let aws_conn = require_conn!("aws_default");
    let db = Arc::new(MySqlHook::from_connection(&my_conn).await.unwrap());
    let store = Arc::new(S3Hook::from_connection(&aws_conn).await.unwrap());
    let bucket = common::unique("gust-mariadb-parquet");
    store.create_bucket(&bucket).await.unwrap();
    let t = format!("pq_{}", std::process::id());
    run(
        &*db,
        &[
            format!("DROP TABLE IF EXISTS {t}, {t}_back"),
            format!(
                "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name TEXT, amount DECIMAL(12,2), \
                 seen DATETIME(6), at TIMESTAMP NULL, ok BOOLEAN, score DOUBLE, day DATE, \
                 u INT UNSIGNED) CHARACTER SET utf8mb4"
            ),
            format!("CREATE TABLE {t}_back LIKE {t}"),
            format!(
                "INSERT INTO {t} VALUES \
                 (1, '고객 1; !@9#%8', 12.50, '2025-01-08 09:00:00', '2025-01-08 00:00:00', true, 0.1, '2025-01-08', 4294967295), \
                 (2, '', 0.00, '2025-01-08 00:00:00.123456', NULL, false, NULL, '1970-01-01', 0), \
                 (3, NULL, NULL, NULL, NULL, NULL, -1.5e-7, NULL, NULL)"
            ),
        ],
    )
    .await;
    let query = format!("SELECT * FROM {t} ORDER BY id");
    let out = SqlToS3::new(query.clone(), format!("s3://{bucket}/rows.parquet"))
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], 3);
    let out = S3ToSql::new(format!("s3://{bucket}/rows.parquet"), format!("{t}_back"))
        .if_exists(IfExists::Replace)
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], 3);
    assert_eq!(
        rows(&*db, &format!("SELECT * FROM {t}_back ORDER BY id")).await,
        rows(&*db, &query).await
    );
    if let Some(read) = read_with_pyarrow(&*store, &bucket, "rows.parquet").await {
        assert_eq!(
            read["types"],
            json!({"id": "int64", "name": "string", "amount": "decimal128(12, 2)",
                   "seen": "timestamp[us]", "at": "timestamp[us, tz=UTC]", "ok": "int16",
                   "score": "double", "day": "date32[day]", "u": "int64"})
        );
        assert_eq!(read["rows"][0]["amount"], "12.50");
        assert_eq!(read["rows"][0]["u"], "4294967295");
        assert_eq!(read["rows"][1]["seen"], "2025-01-08 00:00:00.123456");
        assert_eq!(read["rows"][1]["name"], "");
    }
    run(&*db, &[format!("DROP TABLE {t}, {t}_back")]).await;
}

/// SQLite → local store → SQLite, split in files of two rows and loaded back
/// by a pattern; an empty result writes a file with the columns and no row;
/// an object that is not Parquet is refused.
#[tokio::test]
async fn sqlite_parquet_split_round_trip_and_empty_result() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(gust::hooks::object_store::LocalStore::new(dir.path()).unwrap());
    store.create_bucket("b").await.unwrap();
    let db = Arc::new(SqliteHook::open("lite", ":memory:").await.unwrap());
    run(
        &*db,
        &[
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, ok BOOLEAN)".into(),
            "CREATE TABLE back (id INTEGER PRIMARY KEY, name TEXT, score REAL, ok BOOLEAN)".into(),
            "INSERT INTO t VALUES (1, '김', 0.5, 1), (2, '', NULL, 0), (3, NULL, -2, NULL), \
             (4, 'x', 1e300, 1), (5, 'y', 3, 0)"
                .into(),
        ],
    )
    .await;
    let out = SqlToS3::new("SELECT * FROM t ORDER BY id", "s3://b/out/t.parquet")
        .file_format(ParquetFormat::new().row_group_size(1))
        .max_rows_per_file(2)
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(
        out["keys"],
        json!(["out/t_0.parquet", "out/t_1.parquet", "out/t_2.parquet"])
    );
    assert_eq!(out["rows"], 5);
    let out = S3ToSql::new("s3://b/out/t_*.parquet", "back")
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(
        out["objects"],
        json!([{"key": "out/t_0.parquet", "rows": 2}, {"key": "out/t_1.parquet", "rows": 2},
               {"key": "out/t_2.parquet", "rows": 1}])
    );
    assert_eq!(
        rows(&*db, "SELECT * FROM back ORDER BY id").await,
        rows(&*db, "SELECT * FROM t ORDER BY id").await
    );

    // An empty result: a file with the columns' types and no row, which loads
    // as nothing.
    let out = SqlToS3::new("SELECT * FROM t WHERE id > 100", "s3://b/empty.parquet")
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], 0);
    assert!(store.exists("b", "empty.parquet").await.unwrap());
    let out = S3ToSql::new("s3://b/empty.parquet", "back")
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], 0);
    if let Some(read) = read_with_pyarrow(&*store, "b", "empty.parquet").await {
        assert_eq!(
            read["types"],
            json!({"id": "int64", "name": "string", "score": "double", "ok": "bool"})
        );
        assert_eq!(read["rows"], json!([]));
    }

    // Not Parquet at all, and a value that does not fit the declared type.
    put(&*store, "b", "fake.parquet", "id,name\n1,a\n").await;
    let e = S3ToSql::new("s3://b/fake.parquet", "back")
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("not a readable Parquet file"), "{e}");
    run(
        &*db,
        &["INSERT INTO t VALUES (6, 'z', 'not a number', 1)".into()],
    )
    .await;
    let e = SqlToS3::new("SELECT * FROM t ORDER BY id", "s3://b/bad.parquet")
        .with_hook(db.clone())
        .with_store(store.clone())
        .execute(&ctx())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.message().contains("row 6") && e.message().contains("\"score\""),
        "{e}"
    );
    assert!(!store.exists("b", "bad.parquet").await.unwrap());
}
