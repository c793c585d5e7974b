//! # gust — Airflow-style hooks and operators for Rust
//!
//! gust gives data and ML engineers who know Apache Airflow the same building
//! blocks in Rust: **connections** in Airflow's URI/JSON form and
//! `AIRFLOW_CONN_*` variables, **hooks** to external systems built from them,
//! **operators** with Jinja-templated fields (`{{ ds }}`, `params`, `macros`…), and
//! **tasks** with Airflow's retries, timeouts, callbacks and XCom, wired into a
//! **DAG** you run locally for one logical date. There is no scheduler: your program
//! owns the `main`, gust owns the plumbing.
//!
//! ```
//! use chrono::TimeZone;
//! use gust::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> gust::Result<()> {
//! let mut dag = Dag::builder("hello").timezone(chrono_tz::Asia::Seoul);
//! let render = dag.add(Task::from_fn("render", |ctx| async move {
//!     Ok(ctx.render("SELECT * FROM t WHERE base_dt = '{{ ds }}'")?.into())
//! }));
//! let report = dag.build()?
//!     .test(chrono_tz::Asia::Seoul.with_ymd_and_hms(2025, 1, 8, 0, 0, 0).unwrap())
//!     .await;
//! assert_eq!(report.xcom("render").unwrap(), "SELECT * FROM t WHERE base_dt = '2025-01-08'");
//! # let _ = render; Ok(()) }
//! ```
//!
//! ## Features
//!
//! Every provider sits behind a cargo feature, so you compile only what you use.
//!
//! | feature | enables |
//! |---|---|
//! | `sqlite` (default) | `hooks::sqlite::SqliteHook`: the embedded database of the quick start |
//! | `postgres` | `hooks::postgres::PostgresHook` (sqlx, COPY streaming) |
//! | `mysql` | `hooks::mysql::MySqlHook` (mysql_async), tested on MariaDB |
//! | `redis` | `hooks::redis::RedisHook`, single node and Redis Cluster |
//! | `object-store` | `hooks::object_store`: the `ObjectStore` trait, `MemoryStore`, `LocalStore`, and the S3 operators (`operators::s3`) on any store, without the AWS SDK |
//! | `s3` | `hooks::s3::S3Hook` (aws-sdk-s3) for AWS and S3-compatible servers; includes `object-store` |
//! | `mlflow` | `hooks::mlflow::MlflowHook`: tracking, artifacts and model registry |
//! | `ml` | `ml`: datasets, splits and folds, scalers and metrics with scikit-learn's semantics; smartcore models as an MLflow model flavor (with `mlflow`) |
//! | `parquet` | `formats::parquet` and Parquet objects in the transfers (typed columns from `SqlHook::describe`) |
//! | `serve` | `serve::ModelServer`: a registered model's `champion` behind `POST /predict` and `GET /health` (axum), swapped without a restart when the alias moves; includes `ml` and `mlflow` |
//! | `sagemaker` | `hooks::sagemaker::SageMakerHook` (training, models, endpoints, transform and processing jobs, `InvokeEndpoint`, training logs) and the SageMaker operators (`operators::sagemaker`); includes `s3` |
//! | `mnist` | `formats::mnist`: MNIST's pickled `mnist.pkl.gz` and IDX files; includes `object-store` (which brings `formats::recordio`, SageMaker's RecordIO-protobuf) |
//! | `airflow` | `airflow`: run a gust binary as an Airflow 3.3 *executable bundle*: the supervisor's msgpack frames and messages (`airflow::codec`, `airflow::messages`), the `airflow::comm::Comm` client of the `--comm` socket, and the bundle manifest and `AFBNDL01` trailer (`airflow::bundle`); with `testing`, `testing::FakeSupervisor` |
//! | `cli` | `cli`: a command line with Airflow's verbs for pipeline binaries (`dags list/show/test`, `tasks list/test/render/run`, `airflow stub-dag`), handed the DAGs by `cli::main`; with `airflow`, the binary also runs tasks for Airflow's `ExecutableCoordinator` and packs itself as a bundle (`airflow pack`) |
//! | `testing` | `testing`: `MemoryStore`, `FaultyStore` (scripted failures and delays of any store), `FaultySql` (any SQL hook, statements recorded, with a SQL feature), `ScriptedSageMaker` (with `sagemaker`), `run_task`; with `Context::builder`'s upstream XComs and connections, operators and DAGs are unit-tested without servers; includes `object-store` |
//! | `full` | all of the above |
//!
//! The SQL features also enable the shared `hooks::sql::SqlHook` trait and the
//! `operators::sql::SqlExecuteQuery` operator.
//!
//! ## Where things are
//!
//! Airflow's split is the module layout: [`connection`], [`hooks`], [`operators`],
//! `transfers` (with `object-store` and a SQL feature or `redis`); the runtime is [`Context`], [`Task`], [`Dag`], with
//! [`retry`] for the one backoff and who owns patience between hooks and tasks; every fallible call
//! returns [`gust::Result`](Result) with one [`Error`] type. gust never prints: it
//! reports progress through [`tracing`] spans (`dag_run`, `task_try`) and events.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

#[cfg(feature = "airflow")]
#[cfg_attr(docsrs, doc(cfg(feature = "airflow")))]
pub mod airflow;
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod cli;
pub mod connection;
pub mod context;
pub mod dag;
pub mod error;
pub mod formats;
pub mod hooks;
#[cfg(feature = "ml")]
#[cfg_attr(docsrs, doc(cfg(feature = "ml")))]
pub mod ml;
pub mod operators;
#[cfg(any(feature = "object-store", feature = "mlflow"))]
mod paths;
pub mod retry;
#[cfg(feature = "serve")]
#[cfg_attr(docsrs, doc(cfg(feature = "serve")))]
pub mod serve;
pub mod task;
pub mod template;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
#[cfg(all(
    feature = "object-store",
    any(
        feature = "postgres",
        feature = "mysql",
        feature = "sqlite",
        feature = "redis"
    )
))]
#[cfg_attr(
    docsrs,
    doc(cfg(all(
        feature = "object-store",
        any(
            feature = "postgres",
            feature = "mysql",
            feature = "sqlite",
            feature = "redis"
        )
    )))
)]
pub mod transfers;

// The README's example is compiled (and run) as a doctest, so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use connection::{Connection, Variable, load_dotenv, load_dotenv_from};
pub use context::Context;
pub use dag::{Dag, DagBuilder, RunConfig, RunReport, Schedule, TaskRef, TaskReport, TaskState};
pub use error::{Error, ErrorKind, Result};
pub use task::{FnOperator, Operator, Task, TaskOptions};

/// The names most pipelines need: `use gust::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Connection, Context, Dag, Error, ErrorKind, Operator, Result, RunConfig, Schedule, Task,
        TaskOptions, Variable,
    };
    pub use async_trait::async_trait;
    pub use serde_json::{Value, json};
}
