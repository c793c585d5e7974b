//! Transfers: operators that move data from one system into another, streamed
//! (Airflow's `transfers` packages). The SQL ones are all or nothing; Redis has
//! no transaction across slots, so `S3ToRedis` is idempotent instead.
//!
//! | transfer | from → to |
//! |---|---|
//! | [`s3_to_sql::S3ToSql`] | CSV or JSON Lines objects (a key, a prefix or a pattern) → a table (append, replace or merge) |
//! | [`sql_to_s3::SqlToS3`] | a query's result → CSV or JSON Lines objects (gzip, split by rows optional) |
//! | [`sql_to_sql::SqlToSql`] | a query's rows → a table of another database (Airflow's `GenericTransfer`) |
//! | [`s3_to_redis::S3ToRedis`] | a CSV or JSON Lines object's rows → Redis keys (JSON strings or hashes), single node or Cluster |
//!
//! The SQL transfers need `object-store` and a SQL feature; `S3ToRedis` needs
//! `object-store` and `redis`.

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
pub use staging::IfExists;

/// The builders an object-store ↔ SQL transfer shares: `s3_bucket`,
/// `sql_conn_id`, `with_hook`, and the S3 operators' `aws_conn_id` and
/// `with_store`.
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
macro_rules! store_and_sql_builders {
    ($t:ty) => {
        impl $t {
            /// The bucket, when the key is relative.
            pub fn s3_bucket(mut self, bucket: impl Into<String>) -> Self {
                self.s3_bucket = Some(bucket.into());
                self
            }

            /// The connection of the database (Airflow's `sql_conn_id`; its type
            /// picks the hook).
            pub fn sql_conn_id(mut self, conn_id: impl Into<String>) -> Self {
                self.sql_conn_id = conn_id.into();
                self
            }

            /// Uses `hook` instead of connecting with `sql_conn_id`.
            pub fn with_hook(
                mut self,
                hook: ::std::sync::Arc<dyn $crate::hooks::sql::SqlHook>,
            ) -> Self {
                self.sql_conn_id = hook.conn_id().to_string();
                self.hook = Some(hook);
                self
            }
        }
        $crate::operators::s3::store_builders!($t);
    };
}
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
pub(crate) use store_and_sql_builders;

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod records;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod staging;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod s3_to_redis;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite")))
)]
pub mod s3_to_sql;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite")))
)]
pub mod sql_to_s3;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite")))
)]
pub mod sql_to_sql;
