//! Seed 000's second DAG, "S3 → Redis Cluster → MLflow", on gust's operators:
//! `S3ToRedis >> TrainModel >> RegisterModel`.
//!
//! Kept apart from `main.rs` so `tests/iris_redis_pipeline.rs` runs the very
//! same code.

use std::sync::Arc;

use gust::formats::csv::CsvFormat;
use gust::hooks::mlflow::MlflowHook;
use gust::hooks::object_store::{ObjectStore, PutOptions};
use gust::hooks::redis::RedisHook;
use gust::ml::Columns;
use gust::ml::estimator::{Estimator, ForestParams};
use gust::ml::metrics::Metric;
use gust::ml::split::Split;
use gust::operators::ml::{RegisterModel, TrainModel, TrainingData};
use gust::prelude::*;
use gust::transfers::s3_to_redis::S3ToRedis;

/// The object key of the CSV, as in the seed.
pub const CSV_KEY: &str = "iris1.csv";
/// The feature columns, in the order the model takes them.
pub const FEATURES: [&str; 4] = ["SepalLength", "SepalWidth", "PetalLength", "PetalWidth"];
/// The label column.
pub const LABEL: &str = "Species";
/// The 150-row iris data shipped with the first DAG's example.
pub const IRIS_CSV: &str = include_str!("../iris_pipeline/iris1.csv");

/// Where the pipeline reads and writes.
#[derive(Clone)]
pub struct Pipeline {
    /// Object store holding the CSV.
    pub objects: Arc<dyn ObjectStore>,
    /// Bucket of the CSV.
    pub bucket: String,
    /// The Redis Cluster (or single node) the rows go through.
    pub redis: RedisHook,
    /// The rows' keys are `<key_prefix>:<index>` (the seed's `row`).
    pub key_prefix: String,
    /// Tracking server or local `file:` store.
    pub mlflow: MlflowHook,
    /// Experiment the runs go to (the seed's `iris_experiment`).
    pub experiment: String,
    /// Registered model name (the seed's `IrisModel`).
    pub model_name: String,
}

impl Pipeline {
    /// The seed's bucket as the seed found it: `iris1.csv` in it (uploaded
    /// from the shipped copy when missing).
    pub async fn ensure_csv(&self) -> Result<()> {
        if self.objects.exists(&self.bucket, CSV_KEY).await? {
            return Ok(());
        }
        self.objects.create_bucket(&self.bucket).await?;
        self.objects
            .put(
                &self.bucket,
                CSV_KEY,
                IRIS_CSV.as_bytes().to_vec().into(),
                &PutOptions::new().content_type("text/csv"),
            )
            .await?;
        Ok(())
    }

    /// Task 1, `s3_to_redis`: each CSV row as JSON under `row:{index}`, the
    /// measurements as numbers; keys of an earlier, longer load are removed,
    /// so the reader that stops at the first missing index reads exactly this
    /// load.
    pub fn load(&self) -> S3ToRedis {
        S3ToRedis::new(
            format!("s3://{}/{CSV_KEY}", self.bucket),
            format!("{}:{{{{ index }}}}", self.key_prefix),
        )
        .file_format(CsvFormat::new().delimiter(b';'))
        .infer_numbers(true)
        .replace(true)
        .with_store(self.objects.clone())
        .with_hook(self.redis.clone())
    }

    /// Task 2, `train`: `row:0`, `row:1`, … read until one is missing, the
    /// seed's `RandomForestClassifier(n_estimators=100)` trained on 80 % and
    /// scored on the rest, logged to `iris_experiment`.
    pub fn train(&self) -> TrainModel {
        let mut forest = ForestParams::default();
        forest.n_trees = 100;
        forest.seed = 42;
        TrainModel::new(
            TrainingData::redis(self.key_prefix.clone()),
            Columns::new(LABEL).numeric(FEATURES),
            gust::ml::pipeline::Pipeline::new(Estimator::RandomForestClassifier(forest)),
        )
        .split(Some(Split::new(0.2).seed(42).stratified(true)))
        .metrics([Metric::Accuracy, Metric::F1Macro])
        .experiment(self.experiment.clone())
        .run_name("iris-redis-{{ ds }}")
        .with_redis(self.redis.clone())
        .with_mlflow(self.mlflow.clone())
    }

    /// Task 3, `register`: the next version of `IrisModel`, `champion` moved
    /// when its accuracy beats the champion's.
    pub fn register(&self) -> RegisterModel {
        RegisterModel::new(self.model_name.clone(), "train")
            .promote_on(Metric::Accuracy)
            .tag("source", "redis")
            .tag("logical_date", "{{ ds }}")
            .with_mlflow(self.mlflow.clone())
    }

    /// The seed's DAG: `s3_to_redis >> train >> register`, daily, Asia/Seoul,
    /// one retry per task.
    pub fn dag(&self) -> Result<Dag> {
        let mut dag = Dag::builder("iris_redis_model")
            .schedule(Schedule::Daily)
            .timezone(chrono_tz::Asia::Seoul);
        let options = TaskOptions::default().retries(1);
        let load = dag.add(Task::new("s3_to_redis", self.load()).with_options(options.clone()));
        let train = dag.add(Task::new("train", self.train()).with_options(options.clone()));
        let register = dag.add(Task::new("register", self.register()).with_options(options));
        let _ = &load >> &train >> &register;
        dag.build()
    }
}
