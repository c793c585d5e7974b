//! Seed 000's second DAG on gust's operators — `S3ToRedis` stores each row of
//! the iris CSV as JSON under `row:{index}` in a Redis Cluster, `TrainModel`
//! reads `row:0`, `row:1`, … until one is missing and trains a random forest
//! logged to MLflow experiment `iris_experiment`, and `RegisterModel`
//! registers the next version of `IrisModel`.
//!
//! ```text
//! scripts/services.sh start && eval "$(scripts/services.sh env)"
//! cargo run --features full --example iris_redis_pipeline                # today
//! cargo run --features full --example iris_redis_pipeline -- 2025-01-08  # a logical date
//! ```
//!
//! Redis is required: the connection `redis_cluster` (`AIRFLOW_CONN_REDIS_CLUSTER`,
//! or `GUST_REDIS_CONN_ID` to use another, e.g. `redis_default` for one node).
//! The rest has embedded defaults: a local object store under
//! `./gust-iris-redis` unless `AIRFLOW_CONN_AWS_DEFAULT` is set, and the MLflow
//! store `file:./gust-iris-redis/mlruns` unless `MLFLOW_TRACKING_URI` is.

mod pipeline;

use std::sync::Arc;

use gust::hooks::mlflow::MlflowHook;
use gust::hooks::object_store::{LocalStore, ObjectStore};
use gust::hooks::redis::RedisHook;
use gust::hooks::s3::S3Hook;
use gust::prelude::*;

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "gust=info".into()),
        )
        .with_target(false)
        .init();
    let conn_id = std::env::var("GUST_REDIS_CONN_ID").unwrap_or_else(|_| "redis_cluster".into());
    let conn = match Connection::from_env(&conn_id) {
        Ok(c) => c,
        Err(_) => {
            eprintln!(
                "iris_redis_pipeline needs Redis: connection {conn_id:?} is not set \
                 (start one with `scripts/services.sh start && eval \"$(scripts/services.sh env)\"`)"
            );
            std::process::exit(2);
        }
    };
    let ds = std::env::args()
        .nth(1)
        .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%d").to_string());
    let run = RunConfig::from_ds(&ds, chrono_tz::Asia::Seoul)?;

    let dir = std::path::Path::new("gust-iris-redis");
    let objects: Arc<dyn ObjectStore> = if std::env::var_os("AIRFLOW_CONN_AWS_DEFAULT").is_some() {
        Arc::new(S3Hook::from_conn_id("aws_default").await?)
    } else {
        Arc::new(LocalStore::new(dir.join("objects"))?)
    };
    let p = pipeline::Pipeline {
        objects,
        bucket: "team06-mlflow-feature".into(),
        redis: RedisHook::from_connection(&conn).await?,
        key_prefix: "row".into(),
        mlflow: MlflowHook::from_env_or("file:./gust-iris-redis/mlruns")?,
        experiment: "iris_experiment".into(),
        model_name: "IrisModel".into(),
    };
    p.ensure_csv().await?;
    let run = p.dag()?.run(run).await;
    println!("{run}");
    for task in ["s3_to_redis", "train", "register"] {
        if let Some(result) = run.xcom(task) {
            println!("{task}: {}", serde_json::to_string(result)?);
        }
    }
    run.into_result().map(|_| ())
}
