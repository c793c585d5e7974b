//! [`SqliteHook`]: the embedded database, a file or `:memory:` (feature `sqlite`).
//!
//! The connection names the database file in `host` (as Airflow's SQLite
//! connection does), or in `schema` when the host is empty:
//! `AIRFLOW_CONN_SQLITE_DEFAULT='sqlite://%2Ftmp%2Fgust.db'` or `sqlite:///:memory:`.
//! A file is created when missing.
//!
//! This first version runs scripts and reads records; the shared SQL-hook trait
//! (parameters, statement splitting, bulk load and dump) comes with the database
//! hooks.

use std::str::FromStr;

use serde_json::{Map, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{Column, Row, TypeInfo, ValueRef};

use crate::connection::Connection;
use crate::error::{Error, ErrorKind, Result};

/// Conn id used when none is given, as in Airflow.
pub const DEFAULT_CONN_ID: &str = "sqlite_default";

/// A pool of connections to one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteHook {
    conn_id: String,
    path: String,
    pool: SqlitePool,
}

impl SqliteHook {
    /// Opens the database named by the connection `AIRFLOW_CONN_<CONN_ID>`.
    pub async fn from_conn_id(conn_id: &str) -> Result<Self> {
        Self::from_connection(&Connection::from_env(conn_id)?).await
    }

    /// Opens the database named by `conn` (its `host`, else its `schema`).
    pub async fn from_connection(conn: &Connection) -> Result<Self> {
        let path = conn
            .host()
            .filter(|h| !h.is_empty())
            .or(conn.schema().filter(|s| !s.is_empty()))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    "sqlite.connect",
                    "the connection names no database file: set its host to a path or :memory:",
                )
                .with("conn_id", conn.conn_id())
            })?;
        Self::open(conn.conn_id(), path).await
    }

    /// Opens (creating if missing) the database file at `path`, or `:memory:`.
    pub async fn open(conn_id: &str, path: &str) -> Result<Self> {
        let err = |e: sqlx::Error| {
            Error::new(ErrorKind::Unavailable, "sqlite.connect", e.to_string())
                .with("conn_id", conn_id)
                .with("path", path)
                .with_source(e)
                .with_retryable(false)
        };
        let memory = path == ":memory:";
        let options = if memory {
            SqliteConnectOptions::from_str("sqlite::memory:").map_err(err)?
        } else {
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
        };
        // An in-memory database lives in one connection: the pool must keep exactly one.
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory { 1 } else { 4 })
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(err)?;
        tracing::debug!(conn_id, path, "sqlite opened");
        Ok(SqliteHook {
            conn_id: conn_id.to_string(),
            path: path.to_string(),
            pool,
        })
    }

    /// The connection id this hook was built from.
    pub fn conn_id(&self) -> &str {
        &self.conn_id
    }

    /// Runs a script of one or more statements in one transaction: all of them
    /// commit together or none does. Returns the number of rows changed.
    pub async fn run_script(&self, sql: &str) -> Result<u64> {
        send_boxed(self.run_script_inner(sql)).await
    }

    async fn run_script_inner(&self, sql: &str) -> Result<u64> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| self.error("begin", e))?;
        let done = sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(sql))
            .await
            .map_err(|e| self.error("run", e))?;
        tx.commit().await.map_err(|e| self.error("commit", e))?;
        tracing::info!(conn_id = %self.conn_id, rows_affected = done.rows_affected(), "sqlite script ran");
        Ok(done.rows_affected())
    }

    /// Runs one query and returns its rows as JSON objects keyed by column name.
    pub async fn get_records(&self, sql: &str) -> Result<Vec<Map<String, Value>>> {
        send_boxed(self.get_records_inner(sql)).await
    }

    async fn get_records_inner(&self, sql: &str) -> Result<Vec<Map<String, Value>>> {
        let rows = sqlx::query(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error("get_records", e))?;
        rows.iter().map(|r| self.row_to_json(r)).collect()
    }

    fn row_to_json(&self, row: &SqliteRow) -> Result<Map<String, Value>> {
        let mut out = Map::new();
        for (i, col) in row.columns().iter().enumerate() {
            let raw = row.try_get_raw(i).map_err(|e| self.error("decode", e))?;
            let value = if raw.is_null() {
                Value::Null
            } else {
                let ty = raw.type_info().name().to_ascii_uppercase();
                match ty.as_str() {
                    "INTEGER" | "INT" | "BIGINT" | "BOOLEAN" => Value::from(
                        row.try_get::<i64, _>(i)
                            .map_err(|e| self.error("decode", e))?,
                    ),
                    "REAL" | "FLOAT" | "DOUBLE" | "NUMERIC" => Value::from(
                        row.try_get::<f64, _>(i)
                            .map_err(|e| self.error("decode", e))?,
                    ),
                    "BLOB" => Value::from(
                        row.try_get::<Vec<u8>, _>(i)
                            .map_err(|e| self.error("decode", e))?,
                    ),
                    _ => Value::from(
                        row.try_get::<String, _>(i)
                            .map_err(|e| self.error("decode", e))?,
                    ),
                }
            };
            out.insert(col.name().to_string(), value);
        }
        Ok(out)
    }

    fn error(&self, op: &'static str, e: sqlx::Error) -> Error {
        let kind = match &e {
            sqlx::Error::RowNotFound => ErrorKind::NotFound,
            sqlx::Error::Database(_) => ErrorKind::InvalidInput,
            sqlx::Error::PoolTimedOut => ErrorKind::Timeout,
            sqlx::Error::Io(_) | sqlx::Error::PoolClosed => ErrorKind::Unavailable,
            _ => ErrorKind::Remote,
        };
        Error::new(kind, format!("sqlite.{op}"), e.to_string())
            .with("conn_id", &self.conn_id)
            .with("path", &self.path)
            .with_source(e)
    }
}

/// Boxes a future as `Send` where its lifetimes are concrete. Without it, sqlx's
/// futures awaited inside a user's task closure hit rustc's "implementation of
/// `Send`/`Executor` is not general enough" (rust-lang/rust#102211).
fn send_boxed<'a, T>(
    fut: impl std::future::Future<Output = T> + Send + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>> {
    Box::pin(fut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn script_is_atomic_and_records_are_json() {
        let hook = SqliteHook::open("t", ":memory:").await.unwrap();
        hook.run_script(
            "CREATE TABLE t (a INTEGER, b TEXT, c REAL); INSERT INTO t VALUES (1, 'x', 0.5);",
        )
        .await
        .unwrap();
        let err = hook
            .run_script("INSERT INTO t VALUES (2, 'y', 1.5); INSERT INTO nope VALUES (1);")
            .await
            .unwrap_err();
        assert_eq!(err.operation(), "sqlite.run");
        assert_eq!(err.context("conn_id"), Some("t"));
        let rows = hook.get_records("SELECT a, b, c FROM t").await.unwrap();
        assert_eq!(
            rows.len(),
            1,
            "the failed script must roll back its first insert"
        );
        assert_eq!(
            Value::Object(rows[0].clone()),
            serde_json::json!({"a": 1, "b": "x", "c": 0.5})
        );
    }
}
