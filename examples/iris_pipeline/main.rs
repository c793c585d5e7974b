//! The main job: seed 000's first DAG on gust's operators — `S3ToSql` puts the
//! iris CSV from the object store into table `iris_data`, `TrainModel` trains a
//! random forest on it and logs it to MLflow experiment `testjun`, and
//! `RegisterModel` registers the next version of `IrisModel`; alias `champion`
//! moves to the new version when it beats the current champion's accuracy.
//!
//! ```text
//! cargo run --example iris_pipeline --features full                # embedded defaults
//! cargo run --example iris_pipeline --features full -- 2025-01-08  # a logical date
//! ```
//!
//! With no configuration it runs on embedded defaults: a local object store and a
//! SQLite file under `./gust-iris` (`GUST_IRIS_DIR`), and the MLflow store
//! `file:./mlruns` (which `MLFLOW_ALLOW_FILE_STORE=true mlflow ui` shows). Given
//! `AIRFLOW_CONN_AWS_DEFAULT`, `AIRFLOW_CONN_POSTGRES_DEFAULT` and
//! `MLFLOW_TRACKING_URI`, it runs unchanged against S3, PostgreSQL and an MLflow
//! server (`eval "$(scripts/services.sh env)"` sets all three). The bucket is
//! `team06-mlflow-feature` (`GUST_IRIS_BUCKET`); a missing `iris1.csv` is first
//! uploaded from the copy shipped beside this file. `GUST_IRIS_SEED` changes the
//! seed of the split and the forest (default 42): a run whose accuracy beats the
//! champion's takes the alias.

mod pipeline;

use gust::prelude::*;

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "gust=info,iris_pipeline=info".into()),
        )
        .with_target(false)
        .init();

    let ds = std::env::args()
        .nth(1)
        .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%d").to_string());
    let run = RunConfig::from_ds(&ds, chrono_tz::Asia::Seoul)?;

    let workdir = pipeline::workdir();
    std::fs::create_dir_all(&workdir).map_err(|e| {
        Error::new(ErrorKind::Io, "iris_pipeline", e.to_string()).with("path", workdir.display())
    })?;
    let p = pipeline::Pipeline::from_env(&workdir).await?;
    p.ensure_csv().await?;
    println!(
        "objects: {:?} bucket {}; database: {}; mlflow: {}",
        p.objects,
        p.bucket,
        p.db.conn_id(),
        p.mlflow.tracking_uri()
    );
    let run = p.dag()?.run(run).await;
    println!("{run}");
    for task in ["train", "register"] {
        if let Some(result) = run.xcom(task) {
            println!("{task}: {}", serde_json::to_string(result)?);
        }
    }
    run.into_result().map(|_| ())
}
