//! Hooks: one per external system, built from a [`Connection`](crate::Connection).
//!
//! A hook owns its client and knows nothing about scheduling; operators use hooks.

#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
