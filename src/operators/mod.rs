//! Operators: templated, retryable units of work built on hooks.
//!
//! Each operator keeps its templated fields as plain strings (listed in its docs,
//! Airflow's `template_fields`) and renders them in `execute` with
//! [`Context::render`](crate::Context::render). Its return value becomes its XCom.
//! Closure tasks need no operator: see [`Task::from_fn`](crate::Task::from_fn).

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite")))
)]
pub mod sql;

#[cfg(feature = "object-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "object-store")))]
pub mod s3;

#[cfg(all(feature = "ml", feature = "mlflow"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "ml", feature = "mlflow"))))]
pub mod ml;

#[cfg(feature = "sagemaker")]
#[cfg_attr(docsrs, doc(cfg(feature = "sagemaker")))]
pub mod sagemaker;
