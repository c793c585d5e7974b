//! Machine learning building blocks with scikit-learn's semantics (feature
//! `ml`): a [`Dataset`] of numeric and categorical columns built from rows
//! ([`Columns`]; a query's, an object's or Redis'), train/test splits and
//! cross-validation folds ([`split`]), an imputer and scalers
//! ([`preprocessing`]), one-hot and ordinal encoders ([`encoding`]), metrics ([`metrics`]), smartcore's estimators as
//! serializable values ([`estimator`]), a [`Pipeline`](pipeline::Pipeline) of
//! transformers and an estimator, and a cross-validated
//! [`GridSearch`](grid_search::GridSearch).
//!
//! Each result equals scikit-learn's on the same input (to 1e-12 where
//! floating point allows; `tests/ml_sklearn.rs` checks them against the
//! scikit-learn of the services' Python), so a pipeline moved from Python keeps
//! its numbers. Where scikit-learn draws random numbers (shuffled splits,
//! random tie-breaking) gust draws its own: stable for a seed, but not numpy's
//! sequence.
//!
//! ```
//! use gust::ml::{Dataset, TargetKind};
//! use gust::ml::preprocessing::RobustScaler;
//! use gust::ml::split::Split;
//! use gust::ml::metrics;
//! use serde_json::json;
//!
//! let rows: Vec<_> = (0..10)
//!     .map(|i| json!({"x": i, "label": if i < 5 { "a" } else { "b" }}))
//!     .map(|v| v.as_object().unwrap().clone())
//!     .collect();
//! let data = Dataset::from_rows(&rows, &["x"], "label", TargetKind::Classes)?;
//! let (train, test) = data.split(&Split::new(0.2).seed(7).stratified(true))?;
//! assert_eq!((train.len(), test.len()), (8, 2));
//! let scaler = RobustScaler::new().fit(&train.x)?;
//! let scaled = scaler.transform(&test.x)?;
//! assert_eq!(scaled.rows(), 2);
//! let y = test.classes()?;
//! assert_eq!(metrics::accuracy(y, y)?, 1.0);
//! # Ok::<(), gust::Error>(())
//! ```

mod dataset;
pub mod encoding;
pub mod estimator;
#[cfg(feature = "mlflow")]
mod flavor;
pub mod grid_search;
mod matrix;
pub mod metrics;
pub mod pipeline;
pub mod preprocessing;
pub mod split;

pub use dataset::{Categorical, Columns, Dataset, Target, TargetKind};
#[cfg(feature = "mlflow")]
pub use flavor::PIPELINE_FLAVOR;
pub use matrix::Matrix;
