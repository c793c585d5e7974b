//! Transfers: operators that move data from one system into another, streamed
//! and all or nothing (Airflow's `transfers` packages).
//!
//! | transfer | from → to |
//! |---|---|
//! | [`s3_to_sql::S3ToSql`] | a CSV object → a table (append or replace) |
//! | [`sql_to_s3::SqlToS3`] | a query's result → a CSV object (gzip optional) |
//! | [`sql_to_sql::SqlToSql`] | a query's rows → a table of another database (Airflow's `GenericTransfer`) |

mod staging;

pub mod s3_to_sql;
pub mod sql_to_s3;
pub mod sql_to_sql;

pub use staging::IfExists;
