//! [`TrainModel`] and [`RegisterModel`] (features `ml` and `mlflow`; each
//! training source with its own feature): seed 000's "train, log to MLflow,
//! register, promote" as two operators.
//!
//! `TrainModel` reads rows — a templated query's, an object's, Redis' or an
//! upstream task's ([`TrainingData`]) — into a [`Dataset`] of numeric and
//! categorical [`Columns`], holds out a test set, fits a
//! [`Pipeline`] or runs a [`GridSearch`] on the rest, scores the test set, and
//! logs one MLflow run: the parameters, the metrics, the fitted pipeline as
//! the model (flavor `gust_pipeline`, with its signature and an input
//! example), and for a grid
//! search what `mlflow.sklearn` autologging logs for `GridSearchCV` — the
//! `best_<param>`s, `best_cv_score`, `cv_results.csv`, and a child run per
//! candidate tagged `mlflow.parentRunId`. XCom: `run_id`, `experiment_id`,
//! `model_uri`, `metrics`, `rows`. Its runs are tagged with the task instance
//! (`gust.dag_id`, `gust.task_id`, `gust.run_id`, and `gust.try_number`) as
//! they are created; a retry or re-run ends the instance's runs an earlier try
//! left `RUNNING` as `FAILED` before logging its own.
//!
//! `RegisterModel` registers a run's model as the next version of a
//! registered model, waits until it is `READY`, sets its tags and
//! description, and moves an alias
//! (`champion`) to it only when its metric beats the current holder's. XCom:
//! `name`, `version`, `promoted`, `reason`.
//!
//! ```no_run
//! use gust::ml::estimator::Estimator;
//! use gust::ml::metrics::Metric;
//! use gust::ml::pipeline::Pipeline;
//! use gust::ml::preprocessing::RobustScaler;
//! use gust::ml::Columns;
//! use gust::operators::ml::{RegisterModel, TrainModel, TrainingData};
//! use gust::prelude::*;
//!
//! # fn demo() -> gust::Result<()> {
//! let mut dag = Dag::builder("iris");
//! let train = dag.add(Task::new(
//!     "train",
//!     TrainModel::new(
//!         TrainingData::query("SELECT * FROM iris_data"),
//!         Columns::new("species")
//!             .numeric(["sepal_length", "sepal_width", "petal_length", "petal_width"]),
//!         Pipeline::new(Estimator::random_forest_classifier()).step(RobustScaler::new()),
//!     )
//!     .experiment("iris_experiment")
//!     .metrics([Metric::Accuracy, Metric::F1Macro]),
//! ));
//! let register = dag.add(Task::new(
//!     "register",
//!     RegisterModel::new("IrisModel", "train").promote_on(Metric::Accuracy),
//! ));
//! let _ = &train >> &register;
//! # Ok(()) }
//! ```

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::mlflow::{
    InputExample, Metric as MlflowMetric, MlflowHook, ModelMeta, Param, RunTag,
};
#[cfg(feature = "redis")]
use crate::hooks::redis::RedisHook;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
use crate::hooks::sql::{Parameters, SqlHook};
use crate::ml::grid_search::{Candidate, GridSearch};
use crate::ml::metrics::Metric;
use crate::ml::pipeline::{FittedPipeline, Pipeline};
use crate::ml::split::Split;
use crate::ml::{Columns, Dataset, Target, TargetKind};
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
use crate::operators::sql::resolve_hook;
use crate::task::Operator;

const TRAIN: &str = "train_model";
const REGISTER: &str = "register_model";

/// What [`TrainModel`] fits: one pipeline, or a grid search over one.
#[derive(Debug, Clone)]
pub enum Trainer {
    /// Fit this pipeline.
    Pipeline(Pipeline),
    /// Cross-validate every candidate, keep the best.
    GridSearch(GridSearch),
}

impl From<Pipeline> for Trainer {
    fn from(p: Pipeline) -> Self {
        Trainer::Pipeline(p)
    }
}

impl From<GridSearch> for Trainer {
    fn from(g: GridSearch) -> Self {
        Trainer::GridSearch(g)
    }
}

fn mlflow_hook(ctx: &Context, given: Option<&MlflowHook>, conn_id: &str) -> Result<MlflowHook> {
    match given {
        Some(h) => Ok(h.clone()),
        None => MlflowHook::from_connection(&ctx.connection(conn_id)?),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn metric(key: impl Into<String>, value: f64) -> MlflowMetric {
    MlflowMetric {
        key: key.into(),
        value,
        timestamp: now_ms(),
        step: 0,
    }
}

fn param(key: impl Into<String>, value: &Value) -> Param {
    Param {
        key: key.into(),
        value: match value {
            Value::String(s) => s.clone(),
            Value::Null => "None".to_string(),
            v => v.to_string(),
        },
    }
}

fn tag(key: &str, value: impl Into<String>) -> RunTag {
    RunTag {
        key: key.to_string(),
        value: value.into(),
    }
}

/// Where [`TrainModel`] reads its rows. Each source gives rows as JSON
/// objects, which [`Columns`] turns into a [`Dataset`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TrainingData {
    /// A templated query (inline, or a `.sql` file) on the SQL connection
    /// (default `sql_default`).
    #[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
    #[cfg_attr(
        docsrs,
        doc(cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite")))
    )]
    Query(String),
    /// A templated object URL (`s3://bucket/key`): CSV, JSON Lines or
    /// Parquet, in `format` or the one the key's suffix names (see
    /// [`read_object_rows`](crate::formats::read_object_rows)); from
    /// `aws_default` unless [`TrainModel::aws_conn_id`] or
    /// [`TrainModel::with_store`] says otherwise.
    #[cfg(feature = "object-store")]
    #[cfg_attr(docsrs, doc(cfg(feature = "object-store")))]
    Object {
        /// The object's URL (templated).
        url: String,
        /// Its format, when the key's suffix does not say.
        format: Option<crate::formats::FileFormat>,
    },
    /// JSON rows under `{prefix}:0`, `{prefix}:1`, … read until one is
    /// missing (seed 000's `row:{index}`; the prefix is templated), from
    /// `redis_default` unless [`TrainModel::redis_conn_id`] or
    /// [`TrainModel::with_redis`] says otherwise.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    Redis(String),
    /// The rows an upstream task returned: its XCom is an array of objects,
    /// or an object whose `rows` is one.
    Upstream(String),
}

impl TrainingData {
    /// The rows of a templated query (inline or a `.sql` file).
    #[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
    #[cfg_attr(
        docsrs,
        doc(cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite")))
    )]
    pub fn query(sql: impl Into<String>) -> Self {
        TrainingData::Query(sql.into())
    }

    /// The rows of the object at a templated `s3://bucket/key` URL, in the
    /// format its suffix names.
    #[cfg(feature = "object-store")]
    #[cfg_attr(docsrs, doc(cfg(feature = "object-store")))]
    pub fn object(url: impl Into<String>) -> Self {
        TrainingData::Object {
            url: url.into(),
            format: None,
        }
    }

    /// The rows of the object at a templated URL, in `format`.
    #[cfg(feature = "object-store")]
    #[cfg_attr(docsrs, doc(cfg(feature = "object-store")))]
    pub fn object_in(
        url: impl Into<String>,
        format: impl Into<crate::formats::FileFormat>,
    ) -> Self {
        TrainingData::Object {
            url: url.into(),
            format: Some(format.into()),
        }
    }

    /// The JSON rows under `{prefix}:0`, `{prefix}:1`, … (the prefix is
    /// templated).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(prefix: impl Into<String>) -> Self {
        TrainingData::Redis(prefix.into())
    }

    /// The rows task `task_id` returned.
    pub fn upstream(task_id: impl Into<String>) -> Self {
        TrainingData::Upstream(task_id.into())
    }
}

/// Trains a model and logs it to MLflow; see the [module docs](self).
#[derive(Clone)]
pub struct TrainModel {
    data: TrainingData,
    columns: Columns,
    #[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
    sql_conn_id: String,
    #[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
    sql_hook: Option<Arc<dyn SqlHook>>,
    #[cfg(feature = "object-store")]
    source: crate::operators::s3::Source,
    #[cfg(feature = "redis")]
    redis_conn_id: String,
    #[cfg(feature = "redis")]
    redis: Option<RedisHook>,
    trainer: Trainer,
    split: Option<Split>,
    metrics: Vec<Metric>,
    experiment: String,
    run_name: Option<String>,
    mlflow_conn_id: String,
    mlflow: Option<MlflowHook>,
    artifact_path: String,
    child_runs: usize,
    example_rows: usize,
    preprocessing_path: Option<String>,
}

#[cfg(feature = "object-store")]
crate::operators::s3::store_builders!(TrainModel);

impl std::fmt::Debug for TrainModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainModel")
            .field("data", &self.data)
            .field("columns", &self.columns)
            .field("trainer", &self.trainer)
            .field("split", &self.split)
            .field("metrics", &self.metrics)
            .field("experiment", &self.experiment)
            .finish()
    }
}

impl TrainModel {
    /// Trains `trainer` on the rows of `data`, read as `columns` say. By
    /// default 20 % of the rows (stratified for classes, seed 42) are held
    /// out and scored with accuracy and macro F1 (RMSE, MAE and R² for
    /// values), the first 5 training rows are logged as the model's input
    /// example, and the run goes to experiment `Default` on `mlflow_default`.
    pub fn new(data: TrainingData, columns: Columns, trainer: impl Into<Trainer>) -> Self {
        TrainModel {
            data,
            columns,
            #[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
            sql_conn_id: "sql_default".to_string(),
            #[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
            sql_hook: None,
            #[cfg(feature = "object-store")]
            source: Default::default(),
            #[cfg(feature = "redis")]
            redis_conn_id: crate::hooks::redis::DEFAULT_CONN_ID.to_string(),
            #[cfg(feature = "redis")]
            redis: None,
            trainer: trainer.into(),
            split: Some(Split::new(0.2).seed(42)),
            metrics: Vec::new(),
            experiment: "Default".to_string(),
            run_name: None,
            mlflow_conn_id: "mlflow_default".to_string(),
            mlflow: None,
            artifact_path: "model".to_string(),
            child_runs: usize::MAX,
            example_rows: 5,
            preprocessing_path: None,
        }
    }

    /// The connection a [`TrainingData::Query`] runs on (default
    /// `sql_default`).
    #[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
    pub fn sql_conn_id(mut self, conn_id: impl Into<String>) -> Self {
        self.sql_conn_id = conn_id.into();
        self
    }

    /// Runs a [`TrainingData::Query`] on this hook instead of a connection.
    #[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
    pub fn with_sql_hook(mut self, hook: Arc<dyn SqlHook>) -> Self {
        self.sql_hook = Some(hook);
        self
    }

    /// The connection [`TrainingData::Redis`] reads from (default
    /// `redis_default`).
    #[cfg(feature = "redis")]
    pub fn redis_conn_id(mut self, conn_id: impl Into<String>) -> Self {
        self.redis_conn_id = conn_id.into();
        self
    }

    /// Reads [`TrainingData::Redis`] with this hook instead of a connection.
    #[cfg(feature = "redis")]
    pub fn with_redis(mut self, hook: RedisHook) -> Self {
        self.redis_conn_id = hook.conn_id().to_string();
        self.redis = Some(hook);
        self
    }

    /// How the test set is held out (stratified for classes); `None` scores
    /// the training rows themselves.
    pub fn split(mut self, split: Option<Split>) -> Self {
        self.split = split;
        self
    }

    /// The metrics logged on the test set.
    pub fn metrics(mut self, metrics: impl IntoIterator<Item = Metric>) -> Self {
        self.metrics = metrics.into_iter().collect();
        self
    }

    /// The MLflow experiment (templated; created when missing).
    pub fn experiment(mut self, name: impl Into<String>) -> Self {
        self.experiment = name.into();
        self
    }

    /// The run's name (templated).
    pub fn run_name(mut self, name: impl Into<String>) -> Self {
        self.run_name = Some(name.into());
        self
    }

    /// The MLflow connection (default `mlflow_default`).
    pub fn mlflow_conn_id(mut self, conn_id: impl Into<String>) -> Self {
        self.mlflow_conn_id = conn_id.into();
        self
    }

    /// Uses this MLflow hook instead of a connection.
    pub fn with_mlflow(mut self, hook: MlflowHook) -> Self {
        self.mlflow = Some(hook);
        self
    }

    /// Where the model goes in the run's artifacts (default `model`).
    pub fn artifact_path(mut self, path: impl Into<String>) -> Self {
        self.artifact_path = path.into();
        self
    }

    /// For a grid search, child runs for the best `n` candidates only
    /// (default: every candidate; `0` for none).
    pub fn child_runs(mut self, n: usize) -> Self {
        self.child_runs = n;
        self
    }

    /// How many training rows are logged as the model's input example
    /// (default 5, as MLflow's autologging; `0` for none).
    pub fn input_example_rows(mut self, n: usize) -> Self {
        self.example_rows = n;
        self
    }

    /// Also logs what preprocessing learnt and made, under this artifact
    /// directory (templated; seed 001 keeps them under
    /// `<model_name>/<base_dt>`): `preprocessing.json` (each fitted step —
    /// a `RobustScaler`'s per-column centers and scales — and the encoder's
    /// categories) and `train.csv` / `test.csv` (the rows as the estimator
    /// saw them, then the target). The logged model holds the same steps, so
    /// serving needs nothing else; these are for people and other tools.
    pub fn log_preprocessing(mut self, artifact_dir: impl Into<String>) -> Self {
        self.preprocessing_path = Some(artifact_dir.into());
        self
    }

    fn default_metrics(&self) -> Vec<Metric> {
        match (self.metrics.is_empty(), self.columns.kind) {
            (false, _) => self.metrics.clone(),
            (true, TargetKind::Values) => vec![Metric::Rmse, Metric::Mae, Metric::R2],
            (true, _) => vec![Metric::Accuracy, Metric::F1Macro],
        }
    }

    /// The rows of [`TrainingData`], and what to name in an error about them.
    async fn rows(
        &self,
        ctx: &Context,
    ) -> Result<(Vec<Map<String, Value>>, (&'static str, String))> {
        match &self.data {
            #[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
            TrainingData::Query(sql) => {
                let query = ctx.render(sql)?;
                let hook =
                    resolve_hook(ctx, self.sql_hook.as_ref(), &self.sql_conn_id, None).await?;
                let rows = hook.get_records(&query, Parameters::None).await?;
                Ok((rows, ("conn_id", hook.conn_id().to_string())))
            }
            #[cfg(feature = "object-store")]
            TrainingData::Object { url, format } => {
                let url = ctx.render_inline(url)?;
                let store = self
                    .source
                    .resolve(ctx, crate::operators::s3::S3Settings::default())
                    .await?;
                let rows =
                    crate::formats::read_object_rows(store.as_ref(), &url, format.clone()).await?;
                Ok((rows, ("object", url)))
            }
            #[cfg(feature = "redis")]
            TrainingData::Redis(prefix) => {
                let prefix = ctx.render_inline(prefix)?;
                let hook = match &self.redis {
                    Some(h) => h.clone(),
                    None => {
                        RedisHook::from_connection(&ctx.connection(&self.redis_conn_id)?).await?
                    }
                };
                let rows = hook.get_rows_json::<Map<String, Value>>(&prefix).await?;
                Ok((rows, ("redis_prefix", prefix)))
            }
            TrainingData::Upstream(task) => {
                let xcom = ctx.xcom_pull(task).ok_or_else(|| {
                    Error::new(
                        ErrorKind::NotFound,
                        TRAIN,
                        format!("task {task:?} left no XCom to train on"),
                    )
                })?;
                let rows = match xcom.get("rows").unwrap_or(&xcom) {
                    Value::Array(items) => items
                        .iter()
                        .map(|r| r.as_object().cloned())
                        .collect::<Option<Vec<_>>>(),
                    _ => None,
                }
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        TRAIN,
                        format!(
                            "the XCom of task {task:?} is not rows: an array of objects, \
                             or an object whose `rows` is one"
                        ),
                    )
                })?;
                Ok((rows, ("upstream", task.clone())))
            }
        }
    }
}

/// Logs texts as files `(name, text)` under `path` of a run's artifacts
/// (its root for `None`), through a temporary directory.
async fn log_texts(
    mlflow: &MlflowHook,
    run_id: &str,
    path: Option<&str>,
    files: &[(&str, &str)],
) -> Result<()> {
    let dir = tempfile::tempdir()
        .map_err(|e| Error::new(ErrorKind::Io, TRAIN, format!("a temporary directory: {e}")))?;
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text)?;
    }
    mlflow.log_artifacts(run_id, dir.path(), path).await
}

/// `preprocessing.json`, `train.csv` and `test.csv` of
/// [`TrainModel::log_preprocessing`].
fn preprocessing_files(
    fitted: &FittedPipeline,
    train: &Dataset,
    test: &Dataset,
) -> Result<Vec<(&'static str, String)>> {
    let learnt = json!({
        "features": fitted.features,
        "categorical": fitted.categorical,
        "steps": fitted.steps(),
        "encoder": fitted.encoder(),
    });
    let mut columns: Vec<String> = fitted.features.clone();
    if let Some(e) = fitted.encoder() {
        columns.extend(e.feature_names());
    }
    let csv = |data: &Dataset| -> Result<String> {
        let x = fitted
            .transform_columns(&data.x, &data.categorical)
            .map_err(|e| e.with_operation(TRAIN))?;
        let format = crate::formats::csv::CsvFormat::default();
        let mut out = Vec::new();
        crate::formats::csv::write_record(
            &mut out,
            columns
                .iter()
                .map(String::as_str)
                .chain([data.target_name.as_str()])
                .map(Some),
            &format,
        );
        for i in 0..x.rows() {
            let target = match &data.target {
                Target::Classes { classes, y } => classes[y[i]].clone(),
                Target::Values(v) => v[i].to_string(),
            };
            let cells: Vec<Option<String>> = x
                .row(i)
                .iter()
                .map(|v| (!v.is_nan()).then(|| v.to_string()))
                .chain([Some(target)])
                .collect();
            crate::formats::csv::write_record(
                &mut out,
                cells.iter().map(|c| c.as_deref()),
                &format,
            );
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    };
    Ok(vec![
        (
            "preprocessing.json",
            serde_json::to_string_pretty(&learnt).unwrap_or_default(),
        ),
        ("train.csv", csv(train)?),
        ("test.csv", csv(test)?),
    ])
}

/// The first `n` rows of `data` as an MLflow input example: the numeric
/// columns as numbers (`null` for NaN), the categorical ones as text.
fn input_example(data: &Dataset, n: usize) -> Option<InputExample> {
    if n == 0 || data.is_empty() {
        return None;
    }
    let columns = data
        .features
        .iter()
        .chain(data.categorical.iter().map(|c| &c.name))
        .cloned()
        .collect();
    let rows = (0..n.min(data.len()))
        .map(|i| {
            data.x
                .row(i)
                .iter()
                .map(|&v| serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
                .chain(
                    data.categorical
                        .iter()
                        .map(|c| c.values[i].clone().map_or(Value::Null, Value::String)),
                )
                .collect()
        })
        .collect();
    Some(InputExample {
        columns,
        data: rows,
    })
}

/// Ends as `FAILED` the runs of this task instance (tagged `gust.dag_id`,
/// `gust.task_id`, `gust.run_id` at their creation) in `experiment_id` that
/// are still `RUNNING`: an earlier try's, left behind when that try died or
/// lost the server before it could end its run (a lost `runs/create` answer,
/// a killed worker, an `update_run` that failed). Child runs of a grid search
/// carry the same tags and are ended too.
///
/// Ended, not reused: it is what MLflow itself does with a run whose process
/// was killed (`FAILED`), and a reused run would be wrong — MLflow refuses a
/// param logged again with another value, so a retry that reads changed rows
/// or fits another model could not log into it; it would mix the earlier
/// try's metrics, child runs and artifacts with this one's; and the failed try
/// stays visible, as a failed try, for whoever debugs it. The retry then
/// creates its own run, so a task instance ends with one `FINISHED` run and
/// no `RUNNING` one. A `FINISHED` run of the instance (a re-run after
/// success) is left alone: it is history, as in Airflow.
///
/// A try that is still alive (a zombie of the earlier try racing this one)
/// sees its run ended under it; it can still end it `FINISHED`, as MLflow
/// lets a run's status be set again.
async fn end_earlier_tries(
    mlflow: &MlflowHook,
    experiment_id: &str,
    instance: &[RunTag],
) -> Result<()> {
    // The tag values go in the filter only for the task id (validated, no
    // quotes); the DAG run id is compared here, so that no id needs quoting.
    let task = instance
        .iter()
        .find(|t| t.key == "gust.task_id")
        .map(|t| t.value.replace('\'', "''"))
        .unwrap_or_default();
    let filter = format!("attributes.status = 'RUNNING' and tags.`gust.task_id` = '{task}'");
    let runs = mlflow
        .search_all_runs(&[experiment_id], &filter, 1000)
        .await?;
    for run in runs.iter().filter(|r| {
        r.info.status == crate::hooks::mlflow::RunStatus::Running
            && instance
                .iter()
                .all(|t| r.data.tag(&t.key) == Some(t.value.as_str()))
    }) {
        tracing::warn!(
            run_id = %run.info.run_id,
            try_number = run.data.tag("gust.try_number").unwrap_or("?"),
            "an earlier try of this task instance left its MLflow run RUNNING: ending it FAILED"
        );
        mlflow
            .update_run(&run.info.run_id, crate::hooks::mlflow::RunStatus::Failed)
            .await?;
    }
    Ok(())
}

/// The outcome of fitting: the model, and a grid search's candidates.
struct Trained {
    fitted: FittedPipeline,
    grid: Option<(Vec<Candidate>, usize, f64, String)>,
}

#[async_trait]
impl Operator for TrainModel {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        let experiment = ctx.render_inline(&self.experiment)?;
        let preprocessing_path = self
            .preprocessing_path
            .as_ref()
            .map(|p| ctx.render_inline(p))
            .transpose()?;
        let run_name = self
            .run_name
            .as_ref()
            .map(|n| ctx.render_inline(n))
            .transpose()?;
        let (rows, (what, from)) = self.rows(ctx).await?;
        let data = self
            .columns
            .read_rows(&rows)
            .map_err(|e| e.with_operation(TRAIN).with(what, &from))?;
        drop(rows);
        let (train, test) = match &self.split {
            Some(split) => {
                let split = split
                    .clone()
                    .stratified(matches!(self.columns.kind, TargetKind::Classes));
                data.split(&split).map_err(|e| e.with_operation(TRAIN))?
            }
            None => (data.clone(), data.clone()),
        };
        tracing::info!(
            rows = data.len(),
            train = train.len(),
            test = test.len(),
            "training data read"
        );

        // Fitting is CPU work: off the async threads.
        let trainer = self.trainer.clone();
        let train_set = train.clone();
        let trained = tokio::task::spawn_blocking(move || -> Result<Trained> {
            Ok(match trainer {
                Trainer::Pipeline(p) => Trained {
                    fitted: p.fit(&train_set)?,
                    grid: None,
                },
                Trainer::GridSearch(g) => {
                    let r = g.fit(&train_set)?;
                    let csv = r.cv_results_csv();
                    Trained {
                        fitted: r.best,
                        grid: Some((r.candidates, r.best_index, r.best_score, csv)),
                    }
                }
            })
        })
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::TaskFailed,
                TRAIN,
                format!("training panicked: {e}"),
            )
        })?
        .map_err(|e| e.with_operation(TRAIN))?;

        let mut scores = Map::new();
        for m in self.default_metrics() {
            let value = trained
                .fitted
                .score(&test, m)
                .map_err(|e| e.with_operation(TRAIN))?;
            scores.insert(m.name().to_string(), json!(value));
        }
        let logged = Value::Object(scores.clone());
        tracing::info!(metrics = %logged, "model scored on the test set");

        let mlflow = mlflow_hook(ctx, self.mlflow.as_ref(), &self.mlflow_conn_id)?;
        let experiment_id = mlflow.get_or_create_experiment(&experiment).await?;
        let fitted = &trained.fitted;
        let mut params: Vec<Param> = fitted
            .pipeline
            .estimator
            .params()
            .iter()
            .map(|(k, v)| param(k.clone(), v))
            .collect();
        params.push(param("estimator", &json!(fitted.pipeline.estimator.name())));
        params.push(param(
            "steps",
            &serde_json::to_value(&fitted.pipeline.steps).unwrap_or_default(),
        ));
        params.push(param("features", &json!(self.columns.numeric.join(","))));
        if !self.columns.categorical.is_empty() {
            params.push(param(
                "categorical",
                &json!(self.columns.categorical.join(",")),
            ));
        }
        params.push(param("target", &json!(self.columns.target)));
        params.push(param("train_rows", &json!(train.len())));
        params.push(param("test_rows", &json!(test.len())));
        let mut metrics: Vec<MlflowMetric> = scores
            .iter()
            .map(|(k, v)| metric(k.clone(), v.as_f64().unwrap_or(f64::NAN)))
            .collect();
        if let Some((candidates, best, best_score, _)) = &trained.grid {
            for (k, v) in &candidates[*best].params {
                params.push(param(format!("best_{k}"), v));
            }
            metrics.push(metric("best_cv_score", *best_score));
        }
        // The task instance, set on the run (and its child runs) as they are
        // created, not by a later call: a try that dies at any point after
        // `runs/create` leaves a run the next try can find.
        let instance = vec![
            tag("gust.dag_id", ctx.dag_id()),
            tag("gust.task_id", ctx.task_id()),
            tag("gust.run_id", ctx.run_id()),
        ];
        end_earlier_tries(&mlflow, &experiment_id, &instance).await?;
        let mut tags = instance.clone();
        tags.push(tag("gust.try_number", ctx.try_number().to_string()));
        let preprocessing = match &preprocessing_path {
            Some(path) => Some((path.clone(), preprocessing_files(fitted, &train, &test)?)),
            None => None,
        };
        let artifact_path = self.artifact_path.clone();
        let mut meta = ModelMeta::new().with_signature(fitted.signature());
        meta.input_example = input_example(&train, self.example_rows);
        let child_runs = self.child_runs;
        let grid = &trained.grid;
        let exp = experiment_id.clone();
        let parent_name = run_name
            .clone()
            .unwrap_or_else(|| ctx.task_id().to_string());
        let child_tags = tags.clone();
        let run_id = mlflow
            .create_run_with_tags(&experiment_id, run_name.as_deref(), &tags)
            .await?
            .guard(|run| async move {
                let run_id = run.run_id().to_string();
                run.log_batch(&metrics, &params, &[]).await?;
                if let Some((candidates, _, _, csv)) = grid {
                    log_texts(
                        run.hook(),
                        &run_id,
                        None,
                        &[("cv_results.csv", csv.as_str())],
                    )
                    .await?;
                    let mut ranked: Vec<&Candidate> = candidates.iter().collect();
                    ranked.sort_by_key(|c| c.rank_test_score);
                    for (i, c) in ranked.into_iter().take(child_runs).enumerate() {
                        let name = format!("{parent_name}-candidate-{i}");
                        let mut tags = child_tags.clone();
                        tags.push(tag("mlflow.parentRunId", run_id.clone()));
                        let child = run
                            .hook()
                            .create_run_with_tags(&exp, Some(&name), &tags)
                            .await?;
                        let params: Vec<Param> =
                            c.params.iter().map(|(k, v)| param(k.clone(), v)).collect();
                        let metrics = vec![
                            metric("mean_test_score", c.mean_test_score),
                            metric("std_test_score", c.std_test_score),
                            metric("rank_test_score", c.rank_test_score as f64),
                        ];
                        let logged = child.log_batch(&metrics, &params, &[]).await;
                        let status = if logged.is_ok() {
                            crate::hooks::mlflow::RunStatus::Finished
                        } else {
                            crate::hooks::mlflow::RunStatus::Failed
                        };
                        child.end(status).await?;
                        logged?;
                    }
                }
                if let Some((path, files)) = &preprocessing {
                    let files: Vec<(&str, &str)> =
                        files.iter().map(|(n, t)| (*n, t.as_str())).collect();
                    log_texts(run.hook(), &run_id, Some(path), &files).await?;
                }
                run.hook()
                    .log_model_with(&run_id, &artifact_path, fitted, meta)
                    .await?;
                Ok(run_id)
            })
            .await?;
        let model_uri = format!("runs:/{run_id}/{}", self.artifact_path);
        tracing::info!(%run_id, %model_uri, "model logged");
        let mut out = json!({
            "run_id": run_id,
            "experiment_id": experiment_id,
            "model_uri": model_uri,
            "metrics": scores,
            "rows": {"train": train.len(), "test": test.len()},
        });
        if let Some((candidates, best, best_score, _)) = &trained.grid {
            out["best_params"] = Value::Object(candidates[*best].params.clone());
            out["best_cv_score"] = json!(best_score);
        }
        Ok(out)
    }
}

/// Registers a run's model and promotes it on a metric; see the [module
/// docs](self).
#[derive(Debug, Clone)]
pub struct RegisterModel {
    name: String,
    from_task: Option<String>,
    model_uri: Option<String>,
    alias: String,
    promote_on: Option<Metric>,
    mlflow_conn_id: String,
    mlflow: Option<MlflowHook>,
    ready_timeout: Duration,
    tags: Vec<(String, String)>,
    description: Option<String>,
}

impl RegisterModel {
    /// Registers the model that task `from_task` (a [`TrainModel`]) logged
    /// as the next version of `name` (templated), and moves alias `champion`
    /// to it (with no metric to compare: always).
    pub fn new(name: impl Into<String>, from_task: impl Into<String>) -> Self {
        RegisterModel {
            name: name.into(),
            from_task: Some(from_task.into()),
            model_uri: None,
            alias: "champion".to_string(),
            promote_on: None,
            mlflow_conn_id: "mlflow_default".to_string(),
            mlflow: None,
            ready_timeout: Duration::from_secs(300),
            tags: Vec::new(),
            description: None,
        }
    }

    /// Sets tag `key` (value templated) on the new version.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// The new version's description (templated).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Registers this model URI (`runs:/<run>/model`, templated) instead of an
    /// upstream task's.
    pub fn model_uri(mut self, uri: impl Into<String>) -> Self {
        self.model_uri = Some(uri.into());
        self.from_task = None;
        self
    }

    /// The alias to move (default `champion`).
    pub fn alias(mut self, alias: impl Into<String>) -> Self {
        self.alias = alias.into();
        self
    }

    /// Moves the alias only when the new version's run has a better value of
    /// `metric` than the alias holder's run (in the metric's direction; equal
    /// is not better). Without it the alias always moves.
    pub fn promote_on(mut self, metric: Metric) -> Self {
        self.promote_on = Some(metric);
        self
    }

    /// The MLflow connection (default `mlflow_default`).
    pub fn mlflow_conn_id(mut self, conn_id: impl Into<String>) -> Self {
        self.mlflow_conn_id = conn_id.into();
        self
    }

    /// Uses this MLflow hook instead of a connection.
    pub fn with_mlflow(mut self, hook: MlflowHook) -> Self {
        self.mlflow = Some(hook);
        self
    }

    /// How long to wait for the version to be `READY` (default 5 minutes).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    fn source(&self, ctx: &Context) -> Result<(String, Option<String>)> {
        if let Some(uri) = &self.model_uri {
            let uri = ctx.render_inline(uri)?;
            let run = uri
                .strip_prefix("runs:/")
                .and_then(|r| r.split('/').next())
                .map(str::to_string);
            return Ok((uri, run));
        }
        let task = self.from_task.as_deref().unwrap_or_default();
        let xcom = ctx.xcom_pull(task).ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                REGISTER,
                format!("task {task:?} left no XCom with a model_uri"),
            )
        })?;
        let uri = xcom["model_uri"].as_str().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                REGISTER,
                format!("the XCom of task {task:?} has no model_uri"),
            )
        })?;
        Ok((uri.to_string(), xcom["run_id"].as_str().map(str::to_string)))
    }
}

/// The version of `name` this task instance registered from `source` of run
/// `run_id`, if any — tagged with the instance's `gust.dag_id`,
/// `gust.task_id` and `gust.run_id` — so that a retry whose first try
/// registered the version (then failed on a tag, the description or the
/// alias), or a re-run of the same task instance, reuses it instead of adding
/// a duplicate. Another task or DAG run registering the same model gets a new
/// version, as in MLflow. A version whose registration failed is not reused.
/// (A try that fails between creating the version and tagging it, a window of
/// one call, still leaves an untagged version behind.)
async fn existing_version(
    mlflow: &MlflowHook,
    name: &str,
    source: &str,
    run_id: Option<&str>,
    instance: &[(&str, &str)],
) -> Result<Option<crate::hooks::mlflow::ModelVersion>> {
    let Some(run_id) = run_id.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let quote = |s: &str| s.replace('\'', "''");
    let filter = format!("name='{}' and run_id='{}'", quote(name), quote(run_id));
    let mut versions = mlflow.search_model_versions(&filter).await?;
    versions.retain(|v| {
        v.name == name
            && v.source == source
            && v.status != crate::hooks::mlflow::ModelVersionStatus::FailedRegistration
            && instance.iter().all(|(k, value)| v.tag(k) == Some(*value))
    });
    Ok(versions
        .into_iter()
        .max_by_key(|v| v.version.parse::<u64>().unwrap_or(0)))
}

/// A run's value of `metric`, if it logged one.
async fn run_metric(mlflow: &MlflowHook, run_id: &str, metric: Metric) -> Result<Option<f64>> {
    if run_id.is_empty() {
        return Ok(None);
    }
    Ok(mlflow.get_run(run_id).await?.data.metric(metric.name()))
}

#[async_trait]
impl Operator for RegisterModel {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        let name = ctx.render_inline(&self.name)?;
        let (uri, run_id) = self.source(ctx)?;
        let mlflow = mlflow_hook(ctx, self.mlflow.as_ref(), &self.mlflow_conn_id)?;
        match mlflow.create_registered_model(&name).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let instance = [
            ("gust.dag_id", ctx.dag_id()),
            ("gust.task_id", ctx.task_id()),
            ("gust.run_id", ctx.run_id()),
        ];
        let version = match existing_version(&mlflow, &name, &uri, run_id.as_deref(), &instance)
            .await?
        {
            Some(v) => {
                tracing::info!(model = %name, version = %v.version, source = %uri, "this task instance registered the model already: reusing its version");
                v
            }
            None => {
                let v = mlflow
                    .create_model_version(&name, &uri, run_id.as_deref())
                    .await?;
                // At once, so that a retry finds the version (see `existing_version`).
                for (key, value) in instance {
                    mlflow
                        .set_model_version_tag(&name, &v.version, key, value)
                        .await?;
                }
                v
            }
        };
        let version = mlflow
            .wait_model_version_ready(&name, &version.version, self.ready_timeout)
            .await?;
        // Tags and description before the alias can move: a serving process
        // that follows the alias sees a fully described version.
        for (key, value) in &self.tags {
            let value = ctx.render_inline(value)?;
            mlflow
                .set_model_version_tag(&name, &version.version, key, &value)
                .await?;
        }
        if let Some(description) = &self.description {
            let description = ctx.render_inline(description)?;
            mlflow
                .update_model_version(&name, &version.version, &description)
                .await?;
        }
        let Some(metric) = self.promote_on else {
            // No metric to compare: the new version always takes the alias.
            mlflow
                .set_registered_model_alias(&name, &self.alias, &version.version)
                .await?;
            return Ok(self.outcome(
                &name,
                &version.version,
                &uri,
                true,
                format!("moved {}", self.alias),
            ));
        };
        // Compare, move, and look again: two registrations racing both see
        // the old holder; each re-reads after moving the alias and moves it
        // back only if it is better, so the best one ends up holding it.
        let ours = match &run_id {
            Some(run) => run_metric(&mlflow, run, metric).await?,
            None => None,
        };
        let mut outcome = (false, String::new());
        for attempt in 0..5 {
            let holder = match mlflow.get_model_version_by_alias(&name, &self.alias).await {
                Ok(v) => Some(v),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            let decision = match &holder {
                Some(h) if h.version == version.version => {
                    // Still ours after the pause: keep "moved …" when we moved it.
                    if !outcome.0 {
                        outcome = (true, format!("version {} holds {}", h.version, self.alias));
                    }
                    break;
                }
                None => None,
                Some(h) => {
                    let m = metric;
                    let theirs = run_metric(&mlflow, &h.run_id, m).await?;
                    match (ours, theirs) {
                        (Some(a), Some(b)) if !m.better(a, b) => Some(format!(
                            "{} {a} does not beat version {}'s {b}",
                            m.name(),
                            h.version
                        )),
                        (None, Some(b)) => Some(format!(
                            "the run logged no {} (version {} has {b})",
                            m.name(),
                            h.version
                        )),
                        _ => None,
                    }
                }
            };
            if let Some(reason) = decision {
                outcome = (false, reason);
                break;
            }
            mlflow
                .set_registered_model_alias(&name, &self.alias, &version.version)
                .await?;
            outcome = (true, format!("moved {}", self.alias));
            tokio::time::sleep(Duration::from_millis(100 + 50 * attempt)).await;
        }
        let (promoted, reason) = outcome;
        Ok(self.outcome(&name, &version.version, &uri, promoted, reason))
    }
}

impl RegisterModel {
    /// Logs and shapes the XCom of a registration.
    fn outcome(
        &self,
        name: &str,
        version: &str,
        uri: &str,
        promoted: bool,
        reason: String,
    ) -> Value {
        tracing::info!(%name, %version, promoted, %reason, "model registered");
        json!({
            "name": name,
            "version": version,
            "model_uri": uri,
            "alias": self.alias,
            "promoted": promoted,
            "reason": reason,
        })
    }
}
