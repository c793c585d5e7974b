//! Seed 000's DAG on the library's operators alone: the iris CSV lands in an
//! object store, `S3ToSql` replaces table `iris_data` with it, `TrainModel`
//! grid-searches a gradient-boosted pipeline (robust scaling, then trees) with
//! every candidate logged to MLflow, and `RegisterModel` registers the next
//! version of `IrisGust` and moves alias `champion` to it only when its test
//! accuracy beats the champion's.
//!
//! ```text
//! cargo run --features full --example train_model                 # embedded defaults
//! cargo run --features full --example train_model -- 2025-01-07   # another date
//! ```
//!
//! Embedded defaults: a local object store and a SQLite file under
//! `gust-train/`, the MLflow store `file:./gust-train/mlruns`; with
//! `MLFLOW_TRACKING_URI` set the runs go to that server instead.

use std::sync::Arc;

use gust::formats::csv::CsvFormat;
use gust::hooks::mlflow::MlflowHook;
use gust::hooks::object_store::{LocalStore, ObjectStore};
use gust::hooks::sqlite::SqliteHook;
use gust::ml::Columns;
use gust::ml::estimator::Estimator;
use gust::ml::grid_search::GridSearch;
use gust::ml::metrics::Metric;
use gust::ml::pipeline::Pipeline;
use gust::ml::preprocessing::RobustScaler;
use gust::operators::ml::{RegisterModel, TrainModel, TrainingData};
use gust::operators::s3::S3CreateObject;
use gust::prelude::*;
use gust::transfers::IfExists;
use gust::transfers::s3_to_sql::S3ToSql;

const IRIS_CSV: &str = include_str!("iris_pipeline/iris1.csv");
const FEATURES: [&str; 4] = ["SepalLength", "SepalWidth", "PetalLength", "PetalWidth"];

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

    let dir = std::path::Path::new("gust-train");
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.join("objects"))?);
    store.create_bucket("raw").await?;
    let db =
        Arc::new(SqliteHook::open("sqlite_default", &dir.join("iris.db").to_string_lossy()).await?);
    let mlflow = MlflowHook::from_env_or("file:./gust-train/mlruns")?;

    let mut dag = Dag::builder("iris_train")
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
            .file_format(CsvFormat::new().delimiter(b';'))
            .if_exists(IfExists::Replace)
            .create_table(
                FEATURES
                    .iter()
                    .map(|f| (f.to_string(), "REAL".to_string()))
                    .chain([("Species".to_string(), "TEXT".to_string())]),
            )
            .with_store(store.clone())
            .with_hook(db.clone()),
    ));
    let search = GridSearch::new(
        Pipeline::new(Estimator::gradient_boosting_classifier()).step(RobustScaler::new()),
        Metric::F1Macro,
    )
    .param("iterations", [20, 60])
    .param("max_depth", [2, 3])
    .folds(5);
    let train = dag.add(Task::new(
        "train",
        TrainModel::new(
            TrainingData::query("SELECT * FROM iris_data"),
            Columns::new("Species").numeric(FEATURES),
            search,
        )
        .with_sql_hook(db.clone())
        .with_mlflow(mlflow.clone())
        .experiment("iris_experiment")
        .run_name("iris-{{ ds }}")
        .metrics([Metric::Accuracy, Metric::F1Macro, Metric::LogLoss]),
    ));
    let register = dag.add(Task::new(
        "register",
        RegisterModel::new("IrisGust", "train")
            .promote_on(Metric::Accuracy)
            .with_mlflow(mlflow),
    ));
    let _ = &land >> &load >> &train >> &register;

    let run = dag.build()?.run(RunConfig::from_ds(&ds, tz)?).await;
    println!("{run}");
    for task in ["train", "register"] {
        println!(
            "{task}: {}",
            serde_json::to_string(run.xcom(task).unwrap_or(&Value::Null))?
        );
    }
    run.into_result().map(|_| ())
}
