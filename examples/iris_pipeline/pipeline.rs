//! Seed 000's first DAG, "S3 → PostgreSQL → MLflow", on gust's operators:
//! `S3ToSql >> TrainModel >> RegisterModel`.
//!
//! Kept apart from `main.rs` so `tests/iris_pipeline.rs` runs the very same code.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gust::formats::csv::CsvFormat;
use gust::hooks::mlflow::MlflowHook;
use gust::hooks::object_store::{LocalStore, ObjectStore, PutOptions};
use gust::hooks::s3::S3Hook;
use gust::hooks::sql::{self, SqlHook};
use gust::hooks::sqlite::SqliteHook;
use gust::ml::Columns;
use gust::ml::estimator::{Estimator, ForestParams};
use gust::ml::metrics::Metric;
use gust::ml::split::Split;
use gust::operators::ml::{RegisterModel, TrainModel, TrainingData};
use gust::prelude::*;
use gust::transfers::IfExists;
use gust::transfers::s3_to_sql::S3ToSql;

/// The object key of the CSV, as in the seed.
pub const CSV_KEY: &str = "iris1.csv";
/// The table the first task writes and the second reads.
pub const TABLE: &str = "iris_data";
/// The feature columns, in the order the model takes them.
pub const FEATURES: [&str; 4] = ["SepalLength", "SepalWidth", "PetalLength", "PetalWidth"];
/// The label column.
pub const LABEL: &str = "Species";
/// The registered model name of the seed.
pub const MODEL_NAME: &str = "IrisModel";
/// The alias that follows the best version.
pub const CHAMPION: &str = "champion";
/// The artifact path of the model inside its run.
pub const MODEL_PATH: &str = "iris_model";
/// The 150-row iris data shipped with the example (`;`-separated, like the seed's).
pub const IRIS_CSV: &str = include_str!("iris1.csv");

/// Where the pipeline reads and writes: the embedded defaults, or real servers.
#[derive(Clone)]
pub struct Pipeline {
    /// Object store holding the CSV.
    pub objects: Arc<dyn ObjectStore>,
    /// Bucket of the CSV.
    pub bucket: String,
    /// Database of table `iris_data`.
    pub db: Arc<dyn SqlHook>,
    /// Tracking server or local `file:` store.
    pub mlflow: MlflowHook,
    /// Experiment the runs go to (`testjun`).
    pub experiment: String,
    /// Registered model name (`IrisModel`).
    pub model_name: String,
    /// Seed of the split and of the forest.
    pub seed: u64,
}

impl Pipeline {
    /// The embedded defaults — a local object store and a SQLite file under
    /// `workdir`, the MLflow store `file:./mlruns` — each replaced by a server when its variable is set:
    /// `AIRFLOW_CONN_AWS_DEFAULT` (S3), `AIRFLOW_CONN_POSTGRES_DEFAULT` (PostgreSQL),
    /// `MLFLOW_TRACKING_URI` (MLflow). `GUST_IRIS_SEED` sets the seed (default 42,
    /// the seed's `random_state`).
    pub async fn from_env(workdir: &Path) -> Result<Self> {
        let objects: Arc<dyn ObjectStore> =
            if std::env::var_os("AIRFLOW_CONN_AWS_DEFAULT").is_some() {
                Arc::new(S3Hook::from_conn_id("aws_default").await?)
            } else {
                Arc::new(LocalStore::new(workdir.join("objects"))?)
            };
        let db: Arc<dyn SqlHook> = if std::env::var_os("AIRFLOW_CONN_POSTGRES_DEFAULT").is_some() {
            Arc::from(sql::from_connection(&Connection::from_env("postgres_default")?, None).await?)
        } else {
            let path = workdir.join("iris.db");
            Arc::new(SqliteHook::open("sqlite_default", &path.to_string_lossy()).await?)
        };
        Ok(Pipeline {
            objects,
            bucket: std::env::var("GUST_IRIS_BUCKET")
                .unwrap_or_else(|_| "team06-mlflow-feature".into()),
            db,
            mlflow: MlflowHook::from_env_or("file:./mlruns")?,
            experiment: "testjun".into(),
            model_name: MODEL_NAME.into(),
            seed: match std::env::var("GUST_IRIS_SEED") {
                Ok(v) => v.parse().map_err(|_| {
                    Error::new(
                        ErrorKind::Config,
                        "iris.config",
                        format!("GUST_IRIS_SEED={v:?} is not an unsigned integer"),
                    )
                })?,
                Err(_) => 42,
            },
        })
    }

    /// The seed's bucket as the seed found it: `iris1.csv` in it. Uploads the
    /// shipped copy when the object is missing (a fresh machine); an existing
    /// object is left as it is.
    pub async fn ensure_csv(&self) -> Result<()> {
        if self.objects.exists(&self.bucket, CSV_KEY).await? {
            return Ok(());
        }
        tracing::info!(bucket = %self.bucket, key = CSV_KEY, "seeding the object store with the shipped iris CSV");
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

    /// Task 1, `s3_to_db`: the `;`-separated CSV replaces table `iris_data`
    /// (created when missing) in one transaction; a bad row leaves the table
    /// as it was.
    pub fn load(&self) -> S3ToSql {
        let float = if self.db.dialect() == sql::Dialect::Sqlite {
            "REAL"
        } else {
            "DOUBLE PRECISION"
        };
        S3ToSql::new(format!("s3://{}/{CSV_KEY}", self.bucket), TABLE)
            .file_format(CsvFormat::new().delimiter(b';'))
            .if_exists(IfExists::Replace)
            .create_table(
                FEATURES
                    .iter()
                    .map(|f| (f.to_string(), float.to_string()))
                    .chain([(LABEL.to_string(), "VARCHAR(64)".to_string())]),
            )
            .with_store(self.objects.clone())
            .with_hook(self.db.clone())
    }

    /// The seed's model: `RandomForestClassifier(n_estimators=100)` with
    /// `random_state` = the seed.
    pub fn model(&self) -> gust::ml::pipeline::Pipeline {
        let mut forest = ForestParams::default();
        forest.n_trees = 100;
        forest.seed = self.seed;
        gust::ml::pipeline::Pipeline::new(Estimator::RandomForestClassifier(forest))
    }

    /// The columns the model reads: the four measurements, `Species` the label.
    pub fn columns() -> Columns {
        Columns::new(LABEL).numeric(FEATURES)
    }

    /// The seed's `train_test_split(test_size=0.2, random_state=seed)`,
    /// stratified on the species.
    pub fn split(&self) -> Split {
        Split::new(0.2).seed(self.seed).stratified(true)
    }

    /// Task 2, `train`: the table read back, the forest trained on 80 % and
    /// scored on the rest, logged to experiment `testjun`.
    pub fn train(&self) -> TrainModel {
        TrainModel::new(
            TrainingData::query(format!("SELECT * FROM {TABLE}")),
            Self::columns(),
            self.model(),
        )
        .split(Some(self.split()))
        .metrics([Metric::Accuracy, Metric::F1Macro])
        .experiment(self.experiment.clone())
        .run_name("iris-{{ ds }}")
        .artifact_path(MODEL_PATH)
        .with_sql_hook(self.db.clone())
        .with_mlflow(self.mlflow.clone())
    }

    /// Task 3, `register`: the next version of `IrisModel`; alias `champion`
    /// moves only when its accuracy beats the champion's.
    pub fn register(&self) -> RegisterModel {
        RegisterModel::new(self.model_name.clone(), "train")
            .promote_on(Metric::Accuracy)
            .alias(CHAMPION)
            .tag("logical_date", "{{ ds }}")
            .tag("seed", self.seed.to_string())
            .description("seed 000: iris random forest trained on {{ ds }}")
            .with_mlflow(self.mlflow.clone())
    }

    /// The DAG of the seed: `s3_to_db >> train >> register`, daily, Asia/Seoul,
    /// one retry per task (the seed's `default_args`).
    pub fn dag(&self) -> Result<Dag> {
        let mut dag = Dag::builder("iris_model")
            .schedule(Schedule::Daily)
            .timezone(chrono_tz::Asia::Seoul);
        let options = TaskOptions::default().retries(1);
        let load = dag.add(Task::new("s3_to_db", self.load()).with_options(options.clone()));
        let train = dag.add(Task::new("train", self.train()).with_options(options.clone()));
        let register = dag.add(Task::new("register", self.register()).with_options(options));
        let _ = &load >> &train >> &register;
        dag.build()
    }
}

/// The working directory of the embedded defaults (`GUST_IRIS_DIR`, default
/// `./gust-iris`).
pub fn workdir() -> PathBuf {
    std::env::var_os("GUST_IRIS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("gust-iris"))
}
