//! Transfers: operators that move data from one system into another, streamed
//! and all or nothing (Airflow's `transfers` packages).
//!
//! | transfer | from → to |
//! |---|---|
//! | [`s3_to_sql::S3ToSql`] | a CSV object → a table (append or replace) |
//! | [`sql_to_s3::SqlToS3`] | a query's result → a CSV object (gzip optional) |
//! | [`sql_to_sql::SqlToSql`] | a query's rows → a table of another database (Airflow's `GenericTransfer`) |

pub use staging::IfExists;

use std::sync::Arc;

use crate::context::Context;
use crate::error::Result;
use crate::hooks::sql::SqlHook;

/// The SQL hook of a transfer: the one given with `with_hook`, else one built
/// from the connection `conn_id` (its type picks the hook).
pub(crate) async fn sql_hook(
    ctx: &Context,
    given: &Option<Arc<dyn SqlHook>>,
    conn_id: &str,
) -> Result<Arc<dyn SqlHook>> {
    match given {
        Some(h) => Ok(h.clone()),
        None => {
            let conn = ctx.connection(conn_id)?;
            Ok(Arc::from(
                crate::hooks::sql::from_connection(&conn, None).await?,
            ))
        }
    }
}

/// The builders an object-store ↔ SQL transfer shares: `s3_bucket`,
/// `sql_conn_id`, `aws_conn_id`, `with_store`, `with_hook`.
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

            /// The connection of the object store (Airflow's `aws_conn_id`,
            /// default `aws_default`).
            pub fn aws_conn_id(mut self, conn_id: impl Into<String>) -> Self {
                self.store = crate::operators::s3::Source::Conn(conn_id.into());
                self
            }

            /// Uses `store` instead of a connection (a `MemoryStore` in tests).
            pub fn with_store(
                mut self,
                store: std::sync::Arc<dyn crate::hooks::object_store::ObjectStore>,
            ) -> Self {
                self.store = crate::operators::s3::Source::Store(store);
                self
            }

            /// Uses `hook` instead of connecting with `sql_conn_id`.
            pub fn with_hook(
                mut self,
                hook: std::sync::Arc<dyn crate::hooks::sql::SqlHook>,
            ) -> Self {
                self.sql_conn_id = hook.conn_id().to_string();
                self.hook = Some(hook);
                self
            }
        }
    };
}
pub(crate) use store_and_sql_builders;

mod staging;

pub mod s3_to_sql;
pub mod sql_to_s3;
pub mod sql_to_sql;
