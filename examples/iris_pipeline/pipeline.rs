//! Seed 000's first DAG, "S3 → PostgreSQL → MLflow", built from gust's hooks.
//!
//! Kept apart from `main.rs` so `tests/iris_pipeline.rs` runs the very same code.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gust::hooks::mlflow::{ColType, MlflowHook, ModelSignature, Schema};
use gust::hooks::object_store::{LocalStore, ObjectStore, PutOptions};
use gust::hooks::s3::S3Hook;
use gust::hooks::sql::{self, InsertOptions, Parameters, RunOptions, Sql, SqlHook};
use gust::hooks::sqlite::SqliteHook;
use gust::prelude::*;
use smartcore::ensemble::random_forest_classifier::{
    RandomForestClassifier, RandomForestClassifierParameters,
};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;

/// The model the pipeline trains and registers.
pub type IrisModel = RandomForestClassifier<f64, i64, DenseMatrix<f64>, Vec<i64>>;

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
/// The artifact with the held-out rows (features, then the label's class index).
pub const TEST_SET_ARTIFACT: &str = "eval/test_set.csv";
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
    /// Trees in the forest.
    pub n_trees: u16,
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
            n_trees: 100,
        })
    }

    /// The DAG of the seed: `s3_to_db >> train_and_register`.
    pub fn dag(&self) -> Result<Dag> {
        let mut dag = Dag::builder("iris_model")
            .schedule(Schedule::Daily)
            .timezone(chrono_tz::Asia::Seoul);
        // The seed's default_args: retries 1.
        let options = TaskOptions::default().retries(1);
        let p = self.clone();
        let load = dag.add(
            Task::from_fn("s3_to_db", move |_ctx| {
                let p = p.clone();
                async move { p.load_csv_into_table().await }
            })
            .with_options(options.clone()),
        );
        let p = self.clone();
        let train = dag.add(
            Task::from_fn("train_and_register", move |ctx| {
                let p = p.clone();
                async move { p.train_and_register(ctx.run_id()).await }
            })
            .with_options(options),
        );
        let _ = &load >> &train;
        dag.build()
    }

    /// Task 1: the CSV from the object store into table `iris_data`, replaced
    /// atomically (loaded into a staging table, then swapped in one transaction),
    /// with pandas' `index` column as in the seed. Seeds the store with the shipped
    /// CSV when the object is missing.
    pub async fn load_csv_into_table(&self) -> Result<Value> {
        let body = match self.objects.get(&self.bucket, CSV_KEY).await {
            Ok(body) => body,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                tracing::info!(bucket = %self.bucket, key = CSV_KEY, "seeding the object store with the shipped iris CSV");
                self.objects.create_bucket(&self.bucket).await?;
                let body: bytes::Bytes = IRIS_CSV.as_bytes().to_vec().into();
                self.objects
                    .put(
                        &self.bucket,
                        CSV_KEY,
                        body.clone(),
                        &PutOptions::new().content_type("text/csv"),
                    )
                    .await?;
                body
            }
            Err(e) => return Err(e),
        };
        let rows = parse_iris_csv(&body).map_err(|e| e.with("key", CSV_KEY))?;

        let d = self.db.dialect();
        let q = |n: &str| sql::quote_identifier(d, n);
        let staging = format!("{TABLE}_staging");
        let mut columns = vec!["index".to_string()];
        columns.extend(FEATURES.iter().map(|f| f.to_string()));
        columns.push(LABEL.to_string());
        let float = if d == sql::Dialect::Sqlite {
            "REAL"
        } else {
            "DOUBLE PRECISION"
        };
        let mut ddl = format!("CREATE TABLE {} ({} BIGINT", q(&staging)?, q("index")?);
        for f in FEATURES {
            ddl.push_str(&format!(", {} {float}", q(f)?));
        }
        ddl.push_str(&format!(", {} VARCHAR(64))", q(LABEL)?));
        self.db
            .run(
                Sql::Many(vec![format!("DROP TABLE IF EXISTS {}", q(&staging)?), ddl]),
                RunOptions::default(),
            )
            .await?;
        let values = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut v = vec![json!(i)];
                v.extend(r.features.iter().map(|x| json!(x)));
                v.push(json!(r.species));
                v
            })
            .collect();
        let options = InsertOptions {
            commit_every: 0,
            ..InsertOptions::default()
        };
        let n = self
            .db
            .insert_rows(&staging, &columns, values, options)
            .await?;
        self.db
            .run(
                Sql::Many(vec![
                    format!("DROP TABLE IF EXISTS {}", q(TABLE)?),
                    format!("ALTER TABLE {} RENAME TO {}", q(&staging)?, q(TABLE)?),
                ]),
                RunOptions::default(),
            )
            .await?;
        tracing::info!(
            rows = n,
            table = TABLE,
            conn_id = self.db.conn_id(),
            "iris data loaded"
        );
        Ok(json!({ "rows": n, "table": TABLE }))
    }

    /// Table `iris_data` read back in its original row order.
    pub async fn read_dataset(&self) -> Result<Dataset> {
        let sql = format!(
            "SELECT * FROM {} ORDER BY {}",
            sql::quote_identifier(self.db.dialect(), TABLE)?,
            sql::quote_identifier(self.db.dialect(), "index")?
        );
        Dataset::from_rows(&self.db.get_records(&sql, Parameters::None).await?)
    }

    /// Task 2: reads the table back, splits 80/20, trains the forest, logs params,
    /// metrics, the held-out rows and the model to MLflow, registers the next version
    /// of `IrisModel` and moves alias `champion` to it when its accuracy beats the
    /// current champion's.
    pub async fn train_and_register(&self, dag_run_id: &str) -> Result<Value> {
        let data = self.read_dataset().await?;
        let split = data.split(0.2, self.seed)?;
        let params = RandomForestClassifierParameters::default()
            .with_n_trees(self.n_trees)
            .with_seed(self.seed);
        let model = IrisModel::fit(&split.x_train, &split.y_train, params).map_err(ml_err)?;
        let predicted = model.predict(&split.x_test).map_err(ml_err)?;
        let accuracy = accuracy(&split.y_test, &predicted);
        let f1 = macro_f1(&split.y_test, &predicted, data.classes.len());
        tracing::info!(accuracy, f1_macro = f1, "model trained");

        let experiment_id = self
            .mlflow
            .get_or_create_experiment(&self.experiment)
            .await?;
        let test_csv = split.test_csv();
        let classes = data.classes.join(",");
        let seed = self.seed;
        let n_trees = self.n_trees;
        let run_id = self
            .mlflow
            .with_run(&experiment_id, Some("iris-random-forest"), |run| {
                let model = &model;
                async move {
                    run.log_param("n_estimators", &n_trees.to_string()).await?;
                    run.log_param("test_size", "0.2").await?;
                    run.log_param("random_state", &seed.to_string()).await?;
                    run.log_param("classes", &classes).await?;
                    run.set_tag("gust.dag_run_id", dag_run_id).await?;
                    run.log_metric("accuracy", accuracy, 0).await?;
                    run.log_metric("f1_macro", f1, 0).await?;
                    let dir = tempfile::tempdir()
                        .map_err(|e| Error::new(ErrorKind::Io, "iris.test_set", e.to_string()))?;
                    let file = dir.path().join("test_set.csv");
                    tokio::fs::write(&file, test_csv)
                        .await
                        .map_err(|e| Error::new(ErrorKind::Io, "iris.test_set", e.to_string()))?;
                    run.hook()
                        .log_artifact(
                            run.run_id(),
                            &file,
                            TEST_SET_ARTIFACT.split_once('/').map(|(d, _)| d),
                        )
                        .await?;
                    run.hook()
                        .log_model(run.run_id(), MODEL_PATH, model, Some(signature()))
                        .await?;
                    Ok(run.run_id().to_string())
                }
            })
            .await?;

        self.mlflow
            .create_registered_model(&self.model_name)
            .await?;
        let version = self
            .mlflow
            .create_model_version(
                &self.model_name,
                &format!("runs:/{run_id}/{MODEL_PATH}"),
                Some(&run_id),
            )
            .await?;
        let version = self
            .mlflow
            .wait_model_version_ready(
                &self.model_name,
                &version.version,
                std::time::Duration::from_secs(60),
            )
            .await?;
        let champion_accuracy = match self
            .mlflow
            .get_model_version_by_alias(&self.model_name, CHAMPION)
            .await
        {
            Ok(v) if !v.run_id.is_empty() => self
                .mlflow
                .get_run(&v.run_id)
                .await?
                .data
                .metric("accuracy"),
            Ok(_) => None,
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let promoted = champion_accuracy.is_none_or(|best| accuracy > best);
        if promoted {
            self.mlflow
                .set_registered_model_alias(&self.model_name, CHAMPION, &version.version)
                .await?;
        }
        tracing::info!(version = %version.version, accuracy, ?champion_accuracy, promoted, "model registered");
        Ok(json!({
            "run_id": run_id,
            "version": version.version,
            "accuracy": accuracy,
            "f1_macro": f1,
            "champion": promoted,
        }))
    }
}

/// The model's input and output schema, as MLflow records it.
pub fn signature() -> ModelSignature {
    ModelSignature::from_columns(
        &FEATURES.map(|f| (f, ColType::Double)),
        Some(Schema::from_columns(&[(LABEL, ColType::Long)])),
    )
}

fn ml_err(e: smartcore::error::Failed) -> Error {
    Error::new(ErrorKind::InvalidInput, "iris.train", e.to_string())
}

/// One row of the CSV.
#[derive(Debug, Clone)]
pub struct IrisRow {
    /// The four measurements, in [`FEATURES`] order.
    pub features: [f64; 4],
    /// The species name.
    pub species: String,
}

/// Parses the `;`-separated CSV: a header naming the [`FEATURES`] and [`LABEL`]
/// columns (any order), then one row per flower.
pub fn parse_iris_csv(body: &[u8]) -> Result<Vec<IrisRow>> {
    let op = "iris.parse_csv";
    let bad = |msg: String| Error::new(ErrorKind::InvalidInput, op, msg);
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_reader(body);
    let header = reader
        .headers()
        .map_err(|e| bad(format!("unreadable header: {e}")))?
        .clone();
    let index_of = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| bad(format!("the header has no column {name:?}")))
    };
    let feature_idx = FEATURES.map(index_of);
    let feature_idx: Vec<usize> = feature_idx.into_iter().collect::<Result<_>>()?;
    let label_idx = index_of(LABEL)?;
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let line = n + 2;
        let record = record.map_err(|e| bad(format!("line {line}: {e}")))?;
        let mut features = [0.0; 4];
        for (slot, &i) in features.iter_mut().zip(&feature_idx) {
            let field = record.get(i).unwrap_or("");
            *slot = field
                .trim()
                .parse()
                .map_err(|_| bad(format!("line {line}: {field:?} is not a number")))?;
        }
        let species = record.get(label_idx).unwrap_or("").trim().to_string();
        if species.is_empty() {
            return Err(bad(format!("line {line}: empty {LABEL}")));
        }
        rows.push(IrisRow { features, species });
    }
    if rows.is_empty() {
        return Err(bad("the CSV has no rows".into()));
    }
    Ok(rows)
}

/// The table's rows as a feature matrix and class indices.
pub struct Dataset {
    /// Feature rows.
    pub x: Vec<Vec<f64>>,
    /// Class index of each row, into `classes`.
    pub y: Vec<i64>,
    /// The species names, sorted; a class index points into this list.
    pub classes: Vec<String>,
}

/// The 80/20 split.
pub struct Split {
    /// Training features.
    pub x_train: DenseMatrix<f64>,
    /// Training labels.
    pub y_train: Vec<i64>,
    /// Held-out features.
    pub x_test: DenseMatrix<f64>,
    /// Held-out labels.
    pub y_test: Vec<i64>,
}

impl Dataset {
    /// From rows read back from the table. Unlike the seed, which trained on
    /// pandas' `index` column too, only the four measurements are features.
    pub fn from_rows(rows: &[sql::Row]) -> Result<Self> {
        let op = "iris.read_table";
        let mut classes: Vec<String> = rows
            .iter()
            .filter_map(|r| r.get(LABEL).and_then(Value::as_str).map(str::to_string))
            .collect();
        classes.sort();
        classes.dedup();
        let mut x = Vec::with_capacity(rows.len());
        let mut y = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            let mut features = Vec::with_capacity(4);
            for f in FEATURES {
                features.push(r.get(f).and_then(Value::as_f64).ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        op,
                        format!("row {i}: column {f} is missing or not a number"),
                    )
                    .with("table", TABLE)
                })?);
            }
            let species = r.get(LABEL).and_then(Value::as_str).unwrap_or("");
            let class = classes.iter().position(|c| c == species).ok_or_else(|| {
                Error::new(ErrorKind::InvalidInput, op, format!("row {i}: no {LABEL}"))
                    .with("table", TABLE)
            })?;
            x.push(features);
            y.push(class as i64);
        }
        if x.len() < 5 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                op,
                format!("{} rows are too few to split 80/20", x.len()),
            )
            .with("table", TABLE));
        }
        Ok(Dataset { x, y, classes })
    }

    /// Splits off `test_size` of the rows, shuffled with `seed` (scikit-learn's
    /// `train_test_split(test_size=0.2, random_state=42)`; the rows chosen differ,
    /// as the generators differ).
    pub fn split(&self, test_size: f32, seed: u64) -> Result<Split> {
        let x = DenseMatrix::from_2d_vec(&self.x).map_err(ml_err)?;
        let (x_train, x_test, y_train, y_test) =
            smartcore::model_selection::train_test_split(&x, &self.y, test_size, true, Some(seed));
        Ok(Split {
            x_train,
            y_train,
            x_test,
            y_test,
        })
    }
}

impl Split {
    /// The held-out rows as CSV: the [`FEATURES`], then `label` (class index).
    pub fn test_csv(&self) -> String {
        let mut out = FEATURES.join(",");
        out.push_str(",label\n");
        let (n, m) = self.x_test.shape();
        for i in 0..n {
            for j in 0..m {
                out.push_str(&format!("{},", self.x_test.get((i, j))));
            }
            out.push_str(&format!("{}\n", self.y_test[i]));
        }
        out
    }
}

/// Reads back [`Split::test_csv`]: features and labels.
pub fn parse_test_csv(text: &str) -> Result<(DenseMatrix<f64>, Vec<i64>)> {
    let bad = |m: String| Error::new(ErrorKind::InvalidInput, "iris.parse_test_set", m);
    let mut x = Vec::new();
    let mut y = Vec::new();
    for (n, line) in text.lines().skip(1).enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != FEATURES.len() + 1 {
            return Err(bad(format!("line {}: {} fields", n + 2, fields.len())));
        }
        let nums = fields[..FEATURES.len()]
            .iter()
            .map(|f| {
                f.parse::<f64>()
                    .map_err(|e| bad(format!("line {}: {e}", n + 2)))
            })
            .collect::<Result<Vec<_>>>()?;
        x.push(nums);
        y.push(
            fields[FEATURES.len()]
                .parse()
                .map_err(|e| bad(format!("line {}: {e}", n + 2)))?,
        );
    }
    Ok((DenseMatrix::from_2d_vec(&x).map_err(ml_err)?, y))
}

/// The share of predictions equal to the truth.
pub fn accuracy(truth: &[i64], predicted: &[i64]) -> f64 {
    let right = truth.iter().zip(predicted).filter(|(a, b)| a == b).count();
    right as f64 / truth.len().max(1) as f64
}

/// The unweighted mean of the per-class F1 scores (scikit-learn's `average="macro"`;
/// a class with no true or predicted rows scores 0).
pub fn macro_f1(truth: &[i64], predicted: &[i64], n_classes: usize) -> f64 {
    let mut sum = 0.0;
    for c in 0..n_classes as i64 {
        let tp = truth
            .iter()
            .zip(predicted)
            .filter(|&(&t, &p)| t == c && p == c)
            .count() as f64;
        let fp = truth
            .iter()
            .zip(predicted)
            .filter(|&(&t, &p)| t != c && p == c)
            .count() as f64;
        let fn_ = truth
            .iter()
            .zip(predicted)
            .filter(|&(&t, &p)| t == c && p != c)
            .count() as f64;
        let denom = 2.0 * tp + fp + fn_;
        sum += if denom == 0.0 { 0.0 } else { 2.0 * tp / denom };
    }
    sum / n_classes.max(1) as f64
}

/// The working directory of the embedded defaults: `GUST_IRIS_DIR`, else
/// `./gust-iris`.
pub fn workdir() -> PathBuf {
    std::env::var_os("GUST_IRIS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("gust-iris"))
}
