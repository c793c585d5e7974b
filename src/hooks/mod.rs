//! Hooks: one per external system, built from a [`Connection`](crate::Connection).
//!
//! A hook owns its client and knows nothing about scheduling; operators use hooks.

#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

#[cfg(feature = "mlflow")]
#[cfg_attr(docsrs, doc(cfg(feature = "mlflow")))]
pub mod mlflow;
