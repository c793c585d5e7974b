//! Seed 001's continuous-training DAG, `credit_score_classification_ct`, on
//! gust's operators: `data_extract` (`SqlExecuteQuery`, the seed's
//! `features.sql`) `>> train` (`TrainModel`: preprocessing inside the
//! pipeline, a grid search, every trial logged, the preprocessing artifacts
//! under `<model_name>/<ds>/`) `>> register` (`RegisterModel`, alias
//! `champion` on macro F1).
//!
//! Kept apart from `main.rs` so `tests/credit_score_ct.rs` runs the very same
//! code. Uses its siblings `source` (the synthetic source tables) and
//! `callbacks` (the seed's `utils/callbacks`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use gust::hooks::mlflow::MlflowHook;
use gust::hooks::sql::{self, Dialect, SqlHook};
use gust::ml::Columns;
use gust::ml::encoding::{OneHotEncoder, Unknown};
use gust::ml::estimator::Estimator;
use gust::ml::grid_search::GridSearch;
use gust::ml::metrics::Metric;
use gust::ml::pipeline::Pipeline;
use gust::ml::preprocessing::{ImputeStrategy, RobustScaler, SimpleImputer};
use gust::operators::ml::{RegisterModel, TrainModel, TrainingData};
use gust::operators::sql::SqlExecuteQuery;
use gust::prelude::*;

use super::callbacks;
use super::source::{self, Tables};

/// The DAG's id, as in the seed.
pub const DAG_ID: &str = "credit_score_classification_ct";
/// The seed's `MODEL_NAME`: the registered model and the artifact directory.
pub const MODEL_NAME: &str = "credit_score_classification";
/// The connection of the feature store.
pub const CONN_ID: &str = "feature_store";
/// The alias that follows the best version.
pub const CHAMPION: &str = "champion";
/// The label column.
pub const TARGET: &str = "credit_score";
/// The numeric features: imputed with the median, then robust-scaled.
pub const NUMERIC: [&str; 16] = [
    "age",
    "annual_income",
    "monthly_inhand_salary",
    "num_bank_accounts",
    "num_credit_card",
    "interest_rate",
    "num_of_loan",
    "delay_from_due_date",
    "num_of_delayed_payment",
    "changed_credit_limit",
    "num_credit_inquiries",
    "outstanding_debt",
    "credit_utilization_ratio",
    "total_emi_per_month",
    "amount_invested_monthly",
    "monthly_balance",
];
/// The categorical features, one-hot encoded (an unseen category is ignored).
pub const CATEGORICAL: [&str; 4] = [
    "occupation",
    "credit_mix",
    "payment_of_min_amount",
    "payment_behaviour",
];
/// Where the `.sql` templates are (the DAG's template search path).
pub const SQL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/credit_score_ct/sql");

/// Where the pipeline reads and writes.
#[derive(Clone)]
pub struct CreditScoreCt {
    /// The feature store (`feature_store`): MariaDB/MySQL, or a SQLite file.
    pub db: Arc<dyn SqlHook>,
    /// Tracking server or local `file:` store.
    pub mlflow: MlflowHook,
    /// The source and target tables.
    pub tables: Tables,
    /// The registered model's name, and the artifact directory of the
    /// preprocessing (`credit_score_classification`).
    pub model_name: String,
    /// The MLflow experiment.
    pub experiment: String,
}

impl CreditScoreCt {
    /// The seed's names on `db` and `mlflow`.
    pub fn new(db: Arc<dyn SqlHook>, mlflow: MlflowHook) -> Self {
        CreditScoreCt {
            db,
            mlflow,
            tables: Tables::default(),
            model_name: MODEL_NAME.into(),
            experiment: MODEL_NAME.into(),
        }
    }

    /// The connection `feature_store` from `AIRFLOW_CONN_FEATURE_STORE`
    /// (e.g. `mysql://root:root@127.0.0.1:3306/mlops`, the seed's), else the
    /// embedded SQLite file `<workdir>/feature_store.db`; MLflow from
    /// `MLFLOW_TRACKING_URI`, else the file store `<workdir>/mlruns`.
    pub async fn from_env(workdir: &Path) -> Result<Self> {
        let conn = if std::env::var_os("AIRFLOW_CONN_FEATURE_STORE").is_some() {
            Connection::from_env(CONN_ID)?
        } else {
            embedded_connection(workdir)?
        };
        let db: Arc<dyn SqlHook> = Arc::from(sql::from_connection(&conn, None).await?);
        // A plain path is a file store, as `mlflow.set_tracking_uri` takes it.
        let mlflow = MlflowHook::from_env_or(&workdir.join("mlruns").to_string_lossy())?;
        Ok(Self::new(db, mlflow))
    }

    /// The extract's SQL file for the connection's type: the seed's MySQL
    /// `features.sql`, or its SQLite variant.
    pub fn sql_file(&self) -> Result<&'static str> {
        match self.db.dialect() {
            Dialect::MySql => Ok("features.sql"),
            Dialect::Sqlite => Ok("features.sqlite.sql"),
            other => Err(Error::new(
                ErrorKind::Unsupported,
                "credit_score_ct.extract",
                format!("no features.sql for a {other} feature store (MySQL/MariaDB or SQLite)"),
            )
            .with("conn_id", self.db.conn_id())),
        }
    }

    /// Before the DAG: the source tables, synthesized for the days up to `ds`
    /// that they do not hold yet (see `source`). Returns the days written.
    pub async fn prepare_sources(&self, ds: &str) -> Result<usize> {
        let day = NaiveDate::parse_from_str(ds, "%Y-%m-%d").map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                "credit_score_ct.sources",
                format!("{ds:?} is not a YYYY-MM-DD date: {e}"),
            )
        })?;
        source::ensure(self.db.as_ref(), &self.tables, day).await
    }

    /// The DAG's params: the model name and the tables, which the templates read.
    pub fn params(&self) -> Value {
        json!({
            "model_name": self.model_name,
            "features": self.tables.features,
            "scores": self.tables.scores,
            "target": self.tables.target,
        })
    }

    /// Task 1, `data_extract`: the seed's `SQLExecuteQueryOperator(conn_id,
    /// sql=features.sql, split_statements=True)` — the DELETE and the INSERT
    /// in one transaction.
    pub fn extract(&self) -> Result<SqlExecuteQuery> {
        Ok(SqlExecuteQuery::new(CONN_ID, self.sql_file()?)
            .split_statements(true)
            .with_hook(self.db.clone()))
    }

    /// The columns the model reads.
    pub fn columns() -> Columns {
        Columns::new(TARGET)
            .numeric(NUMERIC)
            .categorical(CATEGORICAL)
    }

    /// Preprocessing (the seed's task 2, fitted on the training split inside
    /// each fit: median imputation and a `RobustScaler` per numeric column,
    /// one-hot categories) and the grid of the gradient-boosted trees that
    /// stand in for the seed's CatBoost (task 3): 4 candidates × 3 folds,
    /// scored on macro F1.
    pub fn grid_search() -> GridSearch {
        let pipeline = Pipeline::new(Estimator::gradient_boosting_classifier())
            .step(SimpleImputer::new(ImputeStrategy::Median))
            .step(RobustScaler::new())
            .encoder(OneHotEncoder::new().handle_unknown(Unknown::Ignore));
        GridSearch::new(pipeline, Metric::F1Macro)
            .param("iterations", [20, 40])
            .param("max_depth", [2, 3])
            .folds(3)
    }

    /// Task 2, `train` (the seed's preprocessing and training tasks): the
    /// extract of `{{ ds }}` read back — an empty one fails the task —, 20 %
    /// held out, the grid searched on the rest with every candidate a child
    /// run, the best refitted and scored, and the fitted scalers and the
    /// transformed train/test rows logged under `<model_name>/<ds>/`.
    pub fn train(&self) -> TrainModel {
        TrainModel::new(
            TrainingData::query(
                "SELECT * FROM {{ params.target }} WHERE base_dt = '{{ ds }}' ORDER BY id",
            ),
            Self::columns(),
            Self::grid_search(),
        )
        .with_sql_hook(self.db.clone())
        .with_mlflow(self.mlflow.clone())
        .experiment(self.experiment.clone())
        .run_name("{{ params.model_name }}-{{ ds }}")
        .metrics([
            Metric::Accuracy,
            Metric::F1Macro,
            Metric::F1Weighted,
            Metric::LogLoss,
        ])
        .log_preprocessing("{{ params.model_name }}/{{ ds }}")
    }

    /// Task 3, `register`: the next version of the model (the seed keeps the
    /// best model for serving); alias `champion` moves only when its macro
    /// F1 beats the champion's.
    pub fn register(&self) -> RegisterModel {
        RegisterModel::new("{{ params.model_name }}", "train")
            .promote_on(Metric::F1Macro)
            .alias(CHAMPION)
            .tag("base_dt", "{{ ds }}")
            .tag("dag_id", DAG_ID)
            .description("seed 001: credit score classifier trained on the extract of {{ ds }}")
            .with_mlflow(self.mlflow.clone())
    }

    /// The seed's DAG: triggered only (`schedule=None`), Asia/Seoul, every
    /// task with the seed's `default_args` (callbacks, one retry).
    pub fn dag(&self) -> Result<Dag> {
        let mut dag = Dag::builder(DAG_ID)
            .schedule(Schedule::None)
            .timezone(chrono_tz::Asia::Seoul)
            .params(self.params())
            .template_search_path(SQL_DIR);
        let args = callbacks::default_args();
        let extract =
            dag.add(Task::new("data_extract", self.extract()?).with_options(args.clone()));
        let train = dag.add(Task::new("train", self.train()).with_options(args.clone()));
        let register = dag.add(Task::new("register", self.register()).with_options(args));
        let _ = &extract >> &train >> &register;
        dag.build()
    }
}

/// The embedded default of `feature_store`: a SQLite file in `workdir`.
pub fn embedded_connection(workdir: &Path) -> Result<Connection> {
    let path = workdir.join("feature_store.db");
    Ok(Connection::new(CONN_ID, "sqlite")?.with_host(path.to_string_lossy()))
}

/// The working directory of the embedded defaults (`GUST_CT_DIR`, default
/// `./gust-ct`).
pub fn workdir() -> PathBuf {
    std::env::var_os("GUST_CT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("gust-ct"))
}
