//! The transfers wired as seed 000's DAGs: the day's `;`-separated CSV lands in
//! an object store, `S3ToSql` replaces a table with it, `SqlToS3` exports the
//! table as JSON Lines split into objects of 50 rows and as one typed Parquet
//! file, and — when a Redis server is configured — `S3ToRedis` writes the rows
//! as `row:{index}` keys.
//!
//! ```text
//! cargo run --features object-store,sqlite,redis,parquet --example transfers
//! cargo run --features object-store,sqlite,redis,parquet --example transfers -- 2025-01-07
//! ```
//!
//! Embedded defaults: a local object store under `gust-transfers/objects` and
//! a SQLite file beside it. `AIRFLOW_CONN_REDIS_DEFAULT` (e.g.
//! `redis://:pw@127.0.0.1:6379/0`) adds the Redis task; without it the task is
//! skipped with a message.

use std::sync::Arc;

use gust::formats::FileFormat;
use gust::formats::csv::CsvFormat;
use gust::hooks::object_store::{LocalStore, ObjectStore};
use gust::hooks::sqlite::SqliteHook;
use gust::operators::s3::S3CreateObject;
use gust::prelude::*;
use gust::transfers::IfExists;
use gust::transfers::s3_to_redis::S3ToRedis;
use gust::transfers::s3_to_sql::S3ToSql;
use gust::transfers::sql_to_s3::SqlToS3;

/// The iris data shipped with the iris example: 150 rows, `;`-separated.
const IRIS_CSV: &str = include_str!("iris_pipeline/iris1.csv");

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "gust=info".into()),
        )
        .with_target(false)
        .init();
    let ds = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "2025-01-08".into());
    let tz = chrono_tz::Asia::Seoul;

    let dir = std::path::Path::new("gust-transfers");
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.join("objects"))?);
    store.create_bucket("raw").await?;
    let db =
        Arc::new(SqliteHook::open("sqlite_default", &dir.join("iris.db").to_string_lossy()).await?);
    let semicolon = CsvFormat::new().delimiter(b';');

    let mut dag = Dag::builder("iris_transfers")
        .schedule(Schedule::Daily)
        .timezone(tz);
    let land = dag.add(Task::new(
        "land_csv",
        S3CreateObject::new("s3://raw/{{ ds }}/iris1.csv", IRIS_CSV)
            .replace(true)
            .with_store(store.clone()),
    ));
    let load = dag.add(Task::new(
        "s3_to_db",
        S3ToSql::new("s3://raw/{{ ds }}/iris1.csv", "iris_data")
            .file_format(semicolon.clone())
            .if_exists(IfExists::Replace)
            .create_table([
                ("SepalLength", "REAL"),
                ("SepalWidth", "REAL"),
                ("PetalLength", "REAL"),
                ("PetalWidth", "REAL"),
                ("Species", "TEXT"),
            ])
            .with_store(store.clone())
            .with_hook(db.clone()),
    ));
    let export = dag.add(Task::new(
        "db_to_s3",
        SqlToS3::new(
            "SELECT * FROM iris_data WHERE Species = 'Iris-setosa' OR PetalLength > 5",
            "s3://raw/{{ ds }}/export/iris.jsonl",
        )
        .file_format(FileFormat::JsonLines)
        .max_rows_per_file(50)
        .replace(true)
        .with_store(store.clone())
        .with_hook(db.clone()),
    ));
    // Typed columns (REAL as DOUBLE, TEXT as STRING) from the query's own
    // description, for pandas, Spark or DuckDB downstream.
    let parquet = dag.add(Task::new(
        "db_to_parquet",
        SqlToS3::new(
            "SELECT * FROM iris_data",
            "s3://raw/{{ ds }}/export/iris.parquet",
        )
        .replace(true)
        .with_store(store.clone())
        .with_hook(db.clone()),
    ));
    let store_for_redis = store.clone();
    let redis = dag.add(Task::from_fn("s3_to_redis", move |ctx| {
        let store = store_for_redis.clone();
        async move {
            if std::env::var_os("AIRFLOW_CONN_REDIS_DEFAULT").is_none() {
                tracing::info!("AIRFLOW_CONN_REDIS_DEFAULT is not set: no Redis load");
                return Ok(json!({ "skipped": "no redis connection" }));
            }
            S3ToRedis::new(
                "s3://raw/{{ ds }}/iris1.csv",
                "iris:{{ ds }}:row:{{ index }}",
            )
            .file_format(CsvFormat::new().delimiter(b';'))
            .infer_numbers(true)
            .replace(true)
            .with_store(store)
            .execute(&ctx)
            .await
        }
    }));
    let _ = &land >> &load >> &export;
    let _ = &load >> &parquet;
    let _ = &land >> &redis;

    let run = dag.build()?.run(RunConfig::from_ds(&ds, tz)?).await;
    println!("{run}");
    println!(
        "exported: {}",
        serde_json::to_string(run.xcom("db_to_s3").unwrap_or(&Value::Null))?
    );
    println!(
        "parquet: {}",
        serde_json::to_string(run.xcom("db_to_parquet").unwrap_or(&Value::Null))?
    );
    run.into_result().map(|_| ())
}
