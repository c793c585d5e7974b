//! Transfers: operators that move data from one system into another, streamed
//! and all or nothing (Airflow's `transfers` packages).
//!
//! | transfer | from → to |
//! |---|---|
//! | [`s3_to_sql::S3ToSql`] | a CSV object → a table (append or replace) |

pub mod s3_to_sql;
