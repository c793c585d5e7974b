//! [`SqliteHook`]: the embedded database, a file or `:memory:` (feature `sqlite`).
//!
//! The connection names the database file in `host` (as Airflow's SQLite
//! connection does), or in `schema` when the host is empty:
//! `AIRFLOW_CONN_SQLITE_DEFAULT='sqlite://%2Ftmp%2Fgust.db'` or `sqlite:///:memory:`.
//! A file is created when missing.
//!
//! It implements [`SqlHook`]: parameters, statement splitting, transactions, batched
//! inserts, CSV dump and load. [`SqliteHook::run_script`] runs a whole script at once.

use std::str::FromStr;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde_json::{Map, Value};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteQueryResult, SqliteRow,
};
use sqlx::{Column, Row as _, TypeInfo, ValueRef};
use tokio::io::{AsyncRead, AsyncWrite};

use super::sql::implement::{CsvReader, bind, insert_statement, rows_to_csv};
use super::sql::{
    Dialect, InsertOptions, Parameters, Row, RunOptions, Sql, SqlHook, bytes_value, check_widths,
    float_value, read_header, rows_per_commit, sqlite_schema_and_name,
};
use super::sqlx_common::{self, ExecError, Query, SqlxHook, db_error, send_boxed};
use crate::connection::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::{self, ColumnType};
use crate::hooks::scope::HookScope;

/// Conn id used when none is given, as in Airflow.
pub const DEFAULT_CONN_ID: &str = "sqlite_default";

/// A pool of connections to one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteHook {
    /// Names the conn id and the file in every error.
    scope: HookScope,
    pool: SqlitePool,
}

impl SqliteHook {
    /// Opens the database named by the connection `conn_id` (`AIRFLOW_CONN_<CONN_ID>`, else the secrets backend; see [`Connection::get`](crate::Connection::get)).
    pub async fn from_conn_id(conn_id: &str) -> Result<Self> {
        Self::from_connection(&Connection::get(conn_id)?).await
    }

    /// Opens the database named by `conn` (its `host`, else its `schema`).
    pub async fn from_connection(conn: &Connection) -> Result<Self> {
        let scope = HookScope::new("sqlite", conn);
        let path = conn
            .host()
            .filter(|h| !h.is_empty())
            .or(conn.schema().filter(|s| !s.is_empty()))
            .ok_or_else(|| {
                scope.error(
                    ErrorKind::Config,
                    "connect",
                    "the connection names no database file: set its host to a path or :memory:",
                )
            })?;
        Self::open_in(scope, path).await
    }

    /// Opens (creating if missing) the database file at `path`, or `:memory:`.
    pub async fn open(conn_id: &str, path: &str) -> Result<Self> {
        Self::open_in(HookScope::named("sqlite", conn_id, Vec::new()), path).await
    }

    async fn open_in(scope: HookScope, path: &str) -> Result<Self> {
        let scope = scope.with_context("path", path);
        // Not classified: whatever stops a file from opening, retrying will not help.
        let err = |e: sqlx::Error| {
            scope.wrap(
                "connect",
                Error::new(ErrorKind::Unavailable, "", e.to_string())
                    .with_source(e)
                    .with_retryable(false),
            )
        };
        let memory = path == ":memory:";
        // No statement cache: sqlx keeps a cached statement's columns as
        // first prepared, so after a table is replaced with other columns
        // (S3ToSql's replace) a cached `SELECT *` would name the old columns,
        // or index past the new ones.
        let options = if memory {
            SqliteConnectOptions::from_str("sqlite::memory:").map_err(err)?
        } else {
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
        }
        .statement_cache_capacity(0);
        // An in-memory database lives in one connection: the pool must keep exactly one.
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory { 1 } else { 4 })
            .min_connections(if memory { 1 } else { 0 })
            // A pooled connection keeps the schema it last read, and a statement
            // prepared on it takes its columns from that schema before SQLite
            // notices (at the first step) that another connection changed it.
            // One step of a read first makes the connection reload a changed
            // schema, so the caller's statement is prepared against the current one.
            .before_acquire(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor as _;
                    conn.execute("SELECT 1 FROM sqlite_schema LIMIT 1").await?;
                    Ok(true)
                })
            })
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(err)?;
        tracing::debug!(conn_id = scope.conn_id(), path, "sqlite opened");
        Ok(SqliteHook { scope, pool })
    }

    /// The connection id this hook was built from.
    pub fn conn_id(&self) -> &str {
        self.scope.conn_id().unwrap_or_default()
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
            .map_err(|e| db_error(self, "begin", e))?;
        let done = sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(sql))
            .await
            .map_err(|e| db_error(self, "run", e))?;
        tx.commit().await.map_err(|e| db_error(self, "commit", e))?;
        tracing::info!(conn_id = %self.conn_id(), rows_affected = done.rows_affected(), "sqlite script ran");
        Ok(done.rows_affected())
    }

    async fn insert_inner(
        &self,
        table: &str,
        columns: &[String],
        rows: Vec<Vec<Value>>,
        options: InsertOptions,
    ) -> Result<u64> {
        check_widths(table, columns, &rows).map_err(|e| self.scope.wrap("insert_rows", e))?;
        // SQLite allows 32766 host parameters per statement.
        let per_stmt = (32766 / columns.len().max(1)).clamp(1, 500);
        let per_commit = rows_per_commit(&options, rows.len());
        sqlx_common::insert_in_groups(self, table, &rows, per_commit, per_stmt, |batch| {
            let sql = insert_statement(Dialect::Sqlite, table, columns, batch.len(), &options)?;
            Ok((sql, batch.iter().flatten().cloned().collect()))
        })
        .await
    }

    /// How the table declares each of `columns` (see [`Declared`]); all
    /// [`Declared::Other`] when the table is not found.
    async fn declared_columns(&self, table: &str, columns: &[String]) -> Vec<Declared> {
        let (schema, name) = sqlite_schema_and_name(table);
        let declared: Vec<(String, String)> =
            sqlx::query_as("SELECT name, type FROM pragma_table_info(?1, ?2)")
                .bind(name)
                .bind(schema)
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default();
        columns
            .iter()
            .map(|c| {
                let ty = declared
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(c))
                    .map(|(_, ty)| ty.to_ascii_uppercase())
                    .unwrap_or_default();
                if ty.contains("BOOL") {
                    Declared::Boolean
                } else if ["INT", "REAL", "FLOA", "DOUB"]
                    .iter()
                    .any(|t| ty.contains(t))
                {
                    Declared::Number(ty)
                } else {
                    Declared::Other
                }
            })
            .collect()
    }

    async fn load_inner(
        &self,
        table: &str,
        input: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64> {
        let with_ctx = |e: Error| self.scope.wrap("bulk_load", e).with("table", table);
        let mut reader = CsvReader::new(input);
        let columns = read_header(&mut reader).await.map_err(with_ctx)?;
        let per_stmt = (32766 / columns.len()).clamp(1, 500);
        let declared = self.declared_columns(table, &columns).await;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| db_error(self, "begin", e))?;
        let mut loaded = 0u64;
        let mut batch: Vec<Value> = Vec::new();
        let mut line = 1u64;
        loop {
            let record = reader.next().await.map_err(with_ctx)?;
            if let Some(r) = &record {
                line += 1;
                if r.len() != columns.len() {
                    return Err(with_ctx(Error::new(
                        ErrorKind::InvalidInput,
                        "",
                        format!(
                            "record {line} has {} fields but the header has {}; nothing was loaded",
                            r.len(),
                            columns.len()
                        ),
                    )));
                }
                for ((f, declared), column) in r.iter().zip(&declared).zip(&columns) {
                    batch.push(match (f, declared) {
                        (None, _) => Value::Null,
                        (Some(f), Declared::Boolean) => boolean_value(f),
                        // SQLite would keep text in a numeric column; PostgreSQL
                        // and MySQL refuse it, and so does the load.
                        (Some(f), Declared::Number(ty)) if f.trim().parse::<f64>().is_err() => {
                            let shown = crate::error::shorten(f);
                            return Err(with_ctx(Error::new(
                                ErrorKind::InvalidInput,
                                "",
                                format!(
                                    "record {line}: column {column:?} is declared {ty} and \
                                     {shown:?} is not a number; nothing was loaded"
                                ),
                            ))
                            .with("line", line)
                            .with("column", column));
                        }
                        (Some(f), _) => Value::String(f.clone()),
                    });
                }
            }
            let n = batch.len() / columns.len();
            if n > 0 && (n >= per_stmt || record.is_none()) {
                let sql = insert_statement(
                    Dialect::Sqlite,
                    table,
                    &columns,
                    n,
                    &InsertOptions::default(),
                )
                .map_err(with_ctx)?;
                let done = bind_all(sqlx::query(&sql), &batch)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| db_error(self, "bulk_load", e).with("table", table))?;
                loaded += done.rows_affected();
                batch.clear();
            }
            if record.is_none() {
                break;
            }
        }
        tx.commit()
            .await
            .map_err(|e| db_error(self, "commit", e).with("table", table))?;
        tracing::info!(conn_id = %self.conn_id(), table, rows = loaded, "sqlite bulk load done");
        Ok(loaded)
    }
}

fn bind_all<'q>(mut q: Query<'q, Sqlite>, args: &[Value]) -> Query<'q, Sqlite> {
    for v in args {
        q = match v {
            Value::Null => q.bind(None::<i64>),
            Value::Bool(b) => q.bind(*b),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => q.bind(i),
                (None, Some(f)) => q.bind(f),
                _ => q.bind(n.to_string()),
            },
            Value::String(s) => q.bind(s.clone()),
            // Arrays and objects are stored as JSON text (SQLite's JSON functions read it).
            other => q.bind(other.to_string()),
        };
    }
    q
}

/// The type of a result column by its declared type's affinity (SQLite's
/// rules, with `BOOLEAN` apart). SQLite has no date type: dates are whatever
/// text was stored, so they stay text.
fn column_type(declared: &str) -> ColumnType {
    let d = declared.to_ascii_uppercase();
    if d.contains("BOOL") {
        ColumnType::Bool
    } else if d.contains("INT") {
        ColumnType::Int64
    } else if ["REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL"]
        .iter()
        .any(|t| d.contains(t))
    {
        ColumnType::Float64
    } else if d == "BLOB" {
        ColumnType::Bytes
    } else {
        ColumnType::Text
    }
}

/// How a table declares a column, for what a bulk load stores in it.
enum Declared {
    /// `BOOLEAN`: `true`/`false` text becomes 1/0.
    Boolean,
    /// An integer or floating-point type (the declared type): text must be a
    /// number.
    Number(String),
    /// Anything else: the text as it is.
    Other,
}

/// A boolean column's CSV text as SQLite stores it: `true`/`t` 1,
/// `false`/`f` 0 (any case), anything else as given.
fn boolean_value(text: &str) -> Value {
    match text.to_ascii_lowercase().as_str() {
        "true" | "t" => Value::Bool(true),
        "false" | "f" => Value::Bool(false),
        _ => Value::String(text.to_string()),
    }
}

fn row_to_json(row: &SqliteRow) -> std::result::Result<Row, sqlx::Error> {
    let mut out = Map::new();
    for (i, col) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i)?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            let declared = col.type_info().name().to_ascii_uppercase();
            // SQLite stores values by storage class; the declared type only matters
            // for BOOLEAN, which it stores as 0/1.
            let stored = raw.type_info().name().to_ascii_uppercase();
            match (declared.as_str(), stored.as_str()) {
                ("BOOLEAN", _) => Value::from(row.try_get::<bool, _>(i)?),
                (_, "INTEGER" | "INT" | "BIGINT") => Value::from(row.try_get::<i64, _>(i)?),
                (_, "REAL" | "FLOAT" | "DOUBLE" | "NUMERIC") => {
                    float_value(row.try_get::<f64, _>(i)?)
                }
                (_, "BLOB") => bytes_value(&row.try_get::<Vec<u8>, _>(i)?),
                _ => Value::from(row.try_get::<String, _>(i)?),
            }
        };
        out.insert(col.name().to_string(), value);
    }
    Ok(out)
}

impl SqlxHook for SqliteHook {
    type Db = Sqlite;

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn scope(&self) -> &HookScope {
        &self.scope
    }

    fn bind_all<'q>(q: Query<'q, Sqlite>, args: &[Value]) -> Query<'q, Sqlite> {
        bind_all(q, args)
    }

    // SQLite's decoding failures are driver errors, worded as such (`sqlite.run`).
    fn row_to_json(row: &SqliteRow) -> std::result::Result<Row, ExecError> {
        row_to_json(row).map_err(ExecError::Db)
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
}

#[async_trait]
impl SqlHook for SqliteHook {
    fn conn_id(&self) -> &str {
        SqliteHook::conn_id(self)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn run(&self, sql: Sql, options: RunOptions) -> Result<Value> {
        send_boxed(sqlx_common::run(self, sql, options)).await
    }

    fn stream_rows<'a>(
        &'a self,
        sql: &'a str,
        parameters: Parameters,
    ) -> BoxStream<'a, Result<Row>> {
        sqlx_common::stream_rows(self, sql, parameters)
    }

    async fn insert_rows(
        &self,
        table: &str,
        columns: &[String],
        rows: Vec<Vec<Value>>,
        options: InsertOptions,
    ) -> Result<u64> {
        send_boxed(self.insert_inner(table, columns, rows, options)).await
    }

    async fn bulk_dump(&self, sql: &str, out: &mut (dyn AsyncWrite + Send + Unpin)) -> Result<u64> {
        rows_to_csv(
            self.stream_rows(sql, Parameters::None),
            out,
            "sqlite.bulk_dump",
        )
        .await
        .map_err(|e| self.scope.wrap("bulk_dump", e))
    }

    async fn bulk_load(
        &self,
        table: &str,
        input: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64> {
        send_boxed(self.load_inner(table, input)).await
    }

    /// See [`SqlHook::describe`]. SQLite types values, not columns: a column
    /// is typed by its declared type's affinity (an expression by what SQLite
    /// infers, else text), and a value of another type in it is an error when
    /// a typed format is written.
    async fn describe(&self, sql: &str, parameters: &Parameters) -> Result<Vec<formats::Column>> {
        use sqlx::Executor as _;
        let b = bind(Dialect::Sqlite, sql, parameters, 1)
            .map_err(|e| self.scope.wrap("describe", e))?;
        let described = send_boxed((&self.pool).describe(&b.sql))
            .await
            .map_err(|e| db_error(self, "describe", e))?;
        Ok(described
            .columns()
            .iter()
            .map(|c| formats::Column::new(c.name(), column_type(c.type_info().name())))
            .collect())
    }
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
        let rows = hook
            .get_records("SELECT a, b, c FROM t", Parameters::None)
            .await
            .unwrap();
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
