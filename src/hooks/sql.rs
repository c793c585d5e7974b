//! [`SqlHook`]: what every SQL database hook offers (Airflow's `DbApiHook`).
//!
//! Implemented by `PostgresHook` (feature `postgres`), `MySqlHook` (feature
//! `mysql`) and `SqliteHook` (feature `sqlite`), in the modules of the same names;
//! the [`SqlExecuteQuery`](crate::operators::sql::SqlExecuteQuery) operator works
//! on any.
//!
//! # Rows as JSON
//!
//! A row is a JSON object keyed by column name ([`Row`]), in the query's column order
//! (`serde_json`'s `preserve_order`). Types map the same way on
//! every database, so results survive XCom and `serde_json` without surprises:
//!
//! | SQL | JSON |
//! |---|---|
//! | integers (any width, signed or not) | number |
//! | `REAL` / `FLOAT` / `DOUBLE` | number (NaN and ±infinity as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`) |
//! | `DECIMAL` / `NUMERIC` | **string** with the exact digits (`"12.50"`): a JSON number would go through `f64` |
//! | `BOOLEAN` | `true` / `false` (MySQL has no boolean: `TINYINT(1)` stays a number) |
//! | `DATE` | `"2025-01-08"` |
//! | `TIME` | `"13:45:00"` (fractions when present) |
//! | `TIMESTAMP` / `DATETIME` | `"2025-01-08T13:45:00"` (ISO-8601, no zone) |
//! | `TIMESTAMPTZ` | `"2025-01-08T04:45:00Z"` (ISO-8601 in UTC) |
//! | `JSON` / `JSONB` | the JSON value itself |
//! | text types | string |
//! | `BYTEA` / `BLOB` / binary | array of byte values (`[0, 255]`) |
//! | NULL | `null` |
//!
//! A PostgreSQL type outside the table (geometric types, ranges, `interval`…) is an
//! [`ErrorKind::Unsupported`] error naming the column: cast it in SQL (`p::text`).
//!
//! # Parameters
//!
//! [`Parameters`] are positional (`?` on MySQL and SQLite, `$1` on PostgreSQL) or
//! named (`:name` in the SQL, a JSON object as values); the count is checked
//! before anything is sent. PostgreSQL types parameters by their JSON type (a
//! string is `text`), so compare a non-text column with a cast: `WHERE d = $1::date`.
//!
//! # Transactions
//!
//! With `autocommit = false` (the default, as in Airflow) every statement of one
//! [`SqlHook::run`] runs in one transaction: if statement *k* fails, statements
//! 1..k-1 are rolled back and the error names statement *k*. With `autocommit =
//! true` each statement commits on its own. (MySQL commits DDL implicitly whatever
//! the setting: a `CREATE TABLE` cannot be rolled back there.)
//!
//! # Implementing `SqlHook`
//!
//! A hook for another database (DuckDB, ClickHouse…) is a struct that holds the
//! driver's client, the conn id and the connection's secrets, and implements
//! the trait with `#[async_trait]` ([`gust::prelude::async_trait`](crate::prelude::async_trait)).
//! The building blocks are in [`implement`]; quoting is [`quote_identifier`] and
//! [`quote_table`].
//!
//! | method | what to write |
//! |---|---|
//! | `conn_id` | the conn id it was built from |
//! | `dialect` | the closest [`Dialect`]: it decides quoting, statement splitting and placeholders (`$1` for `Postgres`, `?` and `"ident"` for `Sqlite`, `?` and `` `ident` `` for `MySql`) |
//! | `run` | [`bound_statements`](implement::bound_statements) (split, bind), then [`run_statements`](implement::run_statements) on one connection, or one transaction unless `autocommit` (it stops at the first failure and names "statement k of n"), then [`shape_results`](implement::shape_results) |
//! | `stream_rows` | [`bind`](implement::bind) the statement, then the driver's rows as [`Row`]s mapped as in the table above, behind a bounded channel so memory stays flat |
//! | `describe` (optional: the default is an `Unsupported` error, and typed formats such as Parquet then refuse) | the driver's description of the prepared statement (no row is read), its types as [`ColumnType`](crate::formats::ColumnType)s |
//! | `insert_rows` | [`insert_statement`](implement::insert_statement) per batch (with [`upsert_clause`](implement::upsert_clause) inside it for `replace`), `commit_every` rows per transaction |
//! | `bulk_dump` | the database's own CSV export, else [`rows_to_csv`](implement::rows_to_csv) over `stream_rows` |
//! | `bulk_load` | [`CsvReader`] records (the first is the header) into the database's bulk path, in one transaction |
//!
//! `quote_identifier`, `get_records`, `get_first` and `test_connection` are
//! provided (from `dialect` and `stream_rows`); override them only to do better.
//! `staging_lease` and `staging_in_use` (optional) let the transfers drop the
//! staging tables of loads that died: a lock that a session of its own holds
//! and the server releases when the session ends, and a look-up of it; by
//! default no lease is taken and no staging table is ever swept.
//!
//! **Errors.** Every error a hook returns names its operation (`duckdb.run`),
//! carries the conn id and contains no secret. Classify each driver error in
//! one function into an [`ErrorKind`], which decides retries (`Unavailable` and
//! `Timeout` are retried), keeping the driver's error as the source; then send
//! it, and the building blocks' own errors (`sql.bind`, `sql.insert_rows`),
//! through one method that names the operation with [`Error::with_operation`]
//! (an earlier operation stays as `called=…`), adds `conn_id` and redacts with
//! [`Connection::secrets`](crate::Connection::secrets), as `error` below.
//!
//! **Conformance.** `tests/common/sql.rs` in gust's repository is the suite all
//! three hooks pass: `rows_round_trip`, `run_is_atomic`,
//! `run_splits_binds_and_shapes`, `bad_input` and `bulk_round_trip`, each taking
//! a `&dyn SqlHook`. Until it ships in the crate, copy it (with `unique` from
//! `tests/common/mod.rs`) into your tests and call each function with your
//! hook, as `tests/sqlite.rs` does.
//!
//! ```no_run
//! use futures::stream::BoxStream;
//! use gust::hooks::sql::implement::{CsvReader, bound_statements, rows_to_csv, shape_results};
//! use gust::hooks::sql::{Dialect, InsertOptions, Parameters, Row, RunOptions, Sql, SqlHook};
//! use gust::prelude::async_trait;
//! use gust::{Connection, Error, ErrorKind, Result};
//! use serde_json::Value;
//! use tokio::io::{AsyncRead, AsyncWrite};
//!
//! struct DuckDbHook {
//!     conn_id: String,
//!     secrets: Vec<String>,
//!     // the driver's client
//! }
//!
//! impl DuckDbHook {
//!     fn from_connection(conn: &Connection) -> Self {
//!         DuckDbHook { conn_id: conn.conn_id().to_string(), secrets: conn.secrets() }
//!     }
//!
//!     /// Every error leaves through here: named, with the conn id, redacted.
//!     fn error(&self, op: &str, e: Error) -> Error {
//!         e.with_operation(format!("duckdb.{op}"))
//!             .with("conn_id", &self.conn_id)
//!             .redact(&self.secrets)
//!     }
//! }
//!
//! #[async_trait]
//! impl SqlHook for DuckDbHook {
//!     fn conn_id(&self) -> &str {
//!         &self.conn_id
//!     }
//!
//!     fn dialect(&self) -> Dialect {
//!         Dialect::Postgres
//!     }
//!
//!     async fn run(&self, sql: Sql, options: RunOptions) -> Result<Value> {
//!         let bound = bound_statements(self.dialect(), &sql, &options, |e| self.error("run", e))?;
//!         // Begin a transaction unless `options.autocommit`, then
//!         // `run_statements(&mut tx, &bound, &options.handler, exec, |e| self.error("run", classify(e)))`.
//!         let results: Vec<Value> = todo!("run {} statements", bound.len());
//!         Ok(shape_results(&sql, &options, results))
//!     }
//!
//!     fn stream_rows<'a>(&'a self, sql: &'a str, parameters: Parameters) -> BoxStream<'a, Result<Row>> {
//!         todo!("bind(self.dialect(), sql, &parameters, 1), then the driver's rows")
//!     }
//!
//!     async fn insert_rows(
//!         &self,
//!         table: &str,
//!         columns: &[String],
//!         rows: Vec<Vec<Value>>,
//!         options: InsertOptions,
//!     ) -> Result<u64> {
//!         todo!("insert_statement(self.dialect(), table, columns, batch.len(), &options) per batch")
//!     }
//!
//!     async fn bulk_dump(&self, sql: &str, out: &mut (dyn AsyncWrite + Send + Unpin)) -> Result<u64> {
//!         rows_to_csv(self.stream_rows(sql, Parameters::None), out, "duckdb.bulk_dump")
//!             .await
//!             .map_err(|e| self.error("bulk_dump", e))
//!     }
//!
//!     async fn bulk_load(&self, table: &str, input: &mut (dyn AsyncRead + Send + Unpin)) -> Result<u64> {
//!         let mut csv = CsvReader::new(input);
//!         let Some(header) = csv.next().await.map_err(|e| self.error("bulk_load", e))? else {
//!             let e = Error::new(ErrorKind::InvalidInput, "", "the CSV input has no header row");
//!             return Err(self.error("bulk_load", e).with("table", table));
//!         };
//!         todo!("{} columns: records into {table}, in one transaction", header.len())
//!     }
//! }
//! ```

mod csv;
pub mod implement;
mod run;
mod split;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{Error, ErrorKind, Result};
use crate::formats::Column;
use crate::formats::csv::{CsvFormat, Record};

use self::implement::{CsvReader, split_statements};
pub(crate) use self::run::rows_per_commit;

/// A row: column name → value (see the [module docs](self) for the type mapping).
pub type Row = Map<String, Value>;

/// The SQL dialect of a hook: how it quotes, splits and numbers placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// PostgreSQL: `"ident"`, `$1`, dollar-quoted bodies.
    Postgres,
    /// MySQL and MariaDB: `` `ident` ``, `?`, backslash escapes, `#` comments.
    MySql,
    /// SQLite: `"ident"`, `?`.
    Sqlite,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
            Dialect::Sqlite => "sqlite",
        })
    }
}

/// Quotes `name` as one identifier of `dialect` (quotes inside are doubled), so a
/// hostile name can only ever name a table, never inject SQL.
pub fn quote_identifier(dialect: Dialect, name: &str) -> Result<String> {
    if name.is_empty() || name.contains('\0') {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "sql.quote_identifier",
            "an identifier must be non-empty and contain no NUL character",
        )
        .with("identifier", name.escape_debug()));
    }
    let q = if dialect == Dialect::MySql { '`' } else { '"' };
    let mut out = String::with_capacity(name.len() + 2);
    out.push(q);
    for c in name.chars() {
        if c == q {
            out.push(q);
        }
        out.push(c);
    }
    out.push(q);
    Ok(out)
}

/// Quotes a table name that may be schema-qualified: `sales.orders` becomes
/// `"sales"."orders"`; each part is quoted with [`quote_identifier`].
pub fn quote_table(dialect: Dialect, table: &str) -> Result<String> {
    let parts: Vec<String> = table
        .split('.')
        .map(|p| quote_identifier(dialect, p))
        .collect::<Result<_>>()
        .map_err(|e| e.with("table", table.escape_debug()))?;
    Ok(parts.join("."))
}

/// Values for the placeholders of a statement. From JSON: `null` is none, an array
/// positional, an object named (`:name`), any other value one positional value.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Parameters {
    /// No parameters.
    #[default]
    None,
    /// Values for `?` (MySQL, SQLite) or `$1, $2, …` (PostgreSQL), in order.
    Positional(Vec<Value>),
    /// Values for `:name` placeholders.
    Named(Map<String, Value>),
}

impl From<Value> for Parameters {
    fn from(v: Value) -> Self {
        match v {
            Value::Null => Parameters::None,
            Value::Array(a) => Parameters::Positional(a),
            Value::Object(m) => Parameters::Named(m),
            other => Parameters::Positional(vec![other]),
        }
    }
}

impl From<Vec<Value>> for Parameters {
    fn from(v: Vec<Value>) -> Self {
        Parameters::Positional(v)
    }
}

/// One statement's outcome, as a [`Handler::Custom`] sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatementResult {
    /// 1-based position of the statement in the `run`.
    pub index: usize,
    /// The rows it returned (empty for statements that return none).
    pub rows: Vec<Row>,
    /// Rows inserted, updated or deleted, as the driver reports them.
    pub rows_affected: u64,
}

/// A custom handler: a function of one statement's result.
pub type HandlerFn = Arc<dyn Fn(&StatementResult) -> Result<Value> + Send + Sync>;

/// What [`SqlHook::run`] keeps of each statement (Airflow's `handler`).
#[derive(Clone, Default)]
pub enum Handler {
    /// Nothing: `run` returns `null` (Airflow's `handler=None`).
    #[default]
    None,
    /// All rows, as an array of row objects (Airflow's `fetch_all_handler`).
    FetchAll,
    /// The first row as an object, or `null` (Airflow's `fetch_one_handler`).
    FetchOne,
    /// The number of rows the statement changed.
    RowsAffected,
    /// Your function of the statement's rows.
    Custom(HandlerFn),
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Handler::None => "None",
            Handler::FetchAll => "FetchAll",
            Handler::FetchOne => "FetchOne",
            Handler::RowsAffected => "RowsAffected",
            Handler::Custom(_) => "Custom(..)",
        })
    }
}

impl Handler {
    /// Whether the statement's rows must be read.
    pub fn wants_rows(&self) -> bool {
        matches!(
            self,
            Handler::FetchAll | Handler::FetchOne | Handler::Custom(_)
        )
    }

    /// Applies the handler to one statement's result.
    pub fn apply(&self, r: StatementResult) -> Result<Value> {
        Ok(match self {
            Handler::None => Value::Null,
            Handler::FetchAll => Value::Array(r.rows.into_iter().map(Value::Object).collect()),
            Handler::FetchOne => r.rows.into_iter().next().map_or(Value::Null, Value::Object),
            Handler::RowsAffected => Value::from(r.rows_affected),
            Handler::Custom(f) => f(&r)?,
        })
    }
}

/// The SQL of a [`SqlHook::run`]: one string or a list of statements.
#[derive(Debug, Clone, PartialEq)]
pub enum Sql {
    /// One string (split into statements when `split_statements` is set).
    One(String),
    /// A list of statements, run in order.
    Many(Vec<String>),
}

impl From<&str> for Sql {
    fn from(s: &str) -> Self {
        Sql::One(s.to_string())
    }
}
impl From<String> for Sql {
    fn from(s: String) -> Self {
        Sql::One(s)
    }
}
impl From<Vec<String>> for Sql {
    fn from(v: Vec<String>) -> Self {
        Sql::Many(v)
    }
}

impl Sql {
    /// The statements to run: a string is split with the dialect's tokenizer when
    /// `split` is set (empty statements dropped), a list is kept as it is.
    pub fn statements(&self, dialect: Dialect, split: bool) -> Result<Vec<String>> {
        let out = match self {
            Sql::One(s) if split => split_statements(dialect, s)?,
            Sql::One(s) => vec![s.trim().to_string()],
            Sql::Many(v) => v.iter().map(|s| s.trim().to_string()).collect(),
        };
        let out: Vec<String> = out.into_iter().filter(|s| !s.is_empty()).collect();
        if out.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "sql.run",
                "there is no SQL to run",
            ));
        }
        Ok(out)
    }
}

/// Options of [`SqlHook::run`], Airflow's `DbApiHook.run` arguments with its defaults.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Values for the placeholders, passed to every statement.
    pub parameters: Parameters,
    /// Split one string into statements with the dialect's tokenizer (default false).
    pub split_statements: bool,
    /// Commit each statement on its own (default false: one transaction for all).
    pub autocommit: bool,
    /// What to keep of each statement (default [`Handler::None`]).
    pub handler: Handler,
    /// Return only the last statement's result (default true; see [`implement::shape_results`]).
    pub return_last: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            parameters: Parameters::None,
            split_statements: false,
            autocommit: false,
            handler: Handler::None,
            return_last: true,
        }
    }
}

/// Options of [`SqlHook::insert_rows`] (Airflow's arguments and defaults).
#[derive(Debug, Clone)]
pub struct InsertOptions {
    /// Commit after this many rows (default 1000); 0 commits once at the end, so a
    /// failure leaves none of the rows.
    pub commit_every: usize,
    /// Replace rows with the same key: `REPLACE INTO` on MySQL, `INSERT … ON
    /// CONFLICT (replace_index) DO UPDATE` on PostgreSQL and SQLite.
    pub replace: bool,
    /// The unique key columns for `replace` on PostgreSQL and SQLite.
    pub replace_index: Vec<String>,
}

impl Default for InsertOptions {
    fn default() -> Self {
        InsertOptions {
            commit_every: 1000,
            replace: false,
            replace_index: Vec::new(),
        }
    }
}

/// Adds "statement k of n" to a failure inside `run`: the message is prefixed
/// and the statement named in the context; kind, operation, context (conn id,
/// table), source and retry state are the error's own.
pub(crate) fn in_statement(e: Error, index: usize, total: usize, sql: &str) -> Error {
    let first_line: String = sql
        .lines()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
        .unwrap_or("")
        .chars()
        .take(80)
        .collect();
    e.map_message(|m| format!("statement {index} of {total} failed: {m}"))
        .with("statement", index)
        .with("sql", first_line.trim())
}

/// A SQL database: Airflow's `DbApiHook` in Rust. See the [module docs](self) for
/// the row mapping, parameters and transactions.
#[async_trait]
pub trait SqlHook: Send + Sync {
    /// The connection id this hook was built from (named in every error).
    fn conn_id(&self) -> &str;

    /// The hook's SQL dialect.
    fn dialect(&self) -> Dialect;

    /// Quotes one identifier for this database (see [`quote_identifier`]).
    fn quote_identifier(&self, name: &str) -> Result<String> {
        quote_identifier(self.dialect(), name)
    }

    /// Runs one or more statements (see [`RunOptions`]); returns what the handler
    /// kept, shaped as [`implement::shape_results`] says.
    async fn run(&self, sql: Sql, options: RunOptions) -> Result<Value>;

    /// Streams the rows of one query without holding them all in memory.
    fn stream_rows<'a>(
        &'a self,
        sql: &'a str,
        parameters: Parameters,
    ) -> BoxStream<'a, Result<Row>>;

    /// All rows of one query.
    async fn get_records(&self, sql: &str, parameters: Parameters) -> Result<Vec<Row>> {
        self.stream_rows(sql, parameters).try_collect().await
    }

    /// The first row of one query, or `None`; the rest is not read.
    async fn get_first(&self, sql: &str, parameters: Parameters) -> Result<Option<Row>> {
        let mut s = self.stream_rows(sql, parameters);
        s.next().await.transpose()
    }

    /// Inserts `rows` (values in the order of `columns`) in multi-row batches;
    /// returns the number of rows written.
    async fn insert_rows(
        &self,
        table: &str,
        columns: &[String],
        rows: Vec<Vec<Value>>,
        options: InsertOptions,
    ) -> Result<u64>;

    /// Streams the result of a query to `out` as CSV with a header row (NULL an
    /// empty unquoted field); returns the number of bytes written. Memory stays
    /// flat whatever the result's size.
    ///
    /// `out` is any tokio writer (`tokio::fs::File`, a `tokio::io::BufWriter`,
    /// a `Vec<u8>`…). It is flushed at the end, not shut down: closing it is
    /// the caller's.
    async fn bulk_dump(&self, sql: &str, out: &mut (dyn AsyncWrite + Send + Unpin)) -> Result<u64>;

    /// [`bulk_dump`](Self::bulk_dump) in another CSV dialect: a delimiter such
    /// as `;`, no header row, a NULL marker such as `NA`. PostgreSQL has its
    /// `COPY` write it; the default streams the rows through
    /// [`implement::rows_to_csv_as`] (and calls `bulk_dump` for the default dialect).
    /// A dialect that cannot be read back is an [`ErrorKind::InvalidInput`]
    /// error (see [`CsvFormat::validate`]).
    async fn bulk_dump_as(
        &self,
        sql: &str,
        format: &CsvFormat,
        out: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<u64> {
        format.validate("sql.bulk_dump")?;
        if *format == CsvFormat::default() {
            return self.bulk_dump(sql, out).await;
        }
        csv::rows_to_csv_as(
            self.stream_rows(sql, Parameters::None),
            format,
            out,
            "sql.bulk_dump",
        )
        .await
        .map_err(|e| match e.context("conn_id") {
            Some(_) => e,
            None => e.with("conn_id", self.conn_id()),
        })
    }

    /// Loads CSV with a header row naming the columns from `input` into `table`, in
    /// one transaction: on any error nothing is loaded. Returns the rows loaded.
    ///
    /// `input` is any tokio reader (`tokio::fs::File`, a `&[u8]`, a
    /// `std::io::Cursor`…), read in chunks as the load goes.
    async fn bulk_load(
        &self,
        table: &str,
        input: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64>;

    /// Loads CSV in `format`'s dialect from `input` straight into `columns` of
    /// `table`, emptying the table first when `replace`, all in one transaction
    /// — where the database's bulk load is transactional and reads the dialect
    /// itself (PostgreSQL's `COPY`): each row is written once and the input is
    /// not re-encoded. With `format.header` the input's first record is the
    /// header and is skipped (the database's line numbers are then the
    /// input's). `None` when the hook has no such path (the default): the
    /// caller loads through a staging table instead.
    async fn bulk_load_direct(
        &self,
        table: &str,
        columns: &[String],
        format: &CsvFormat,
        replace: bool,
        input: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Option<Result<u64>> {
        let _ = (table, columns, format, replace, input);
        None
    }

    /// The result of `sql` in PostgreSQL's binary `COPY` format
    /// (`COPY (sql) TO STDOUT (FORMAT binary)`), streamed, where the database
    /// writes it; `None` (the default) otherwise. Typed formats (Parquet)
    /// decode it by the [`describe`](Self::describe)d column types instead of
    /// mapping every row to JSON. The query takes no parameters.
    fn copy_out_binary<'a>(&'a self, sql: &'a str) -> Option<BoxStream<'a, Result<Vec<u8>>>> {
        let _ = sql;
        None
    }

    /// The columns `sql` returns and their types, from the database's own
    /// description of the prepared query, without running it (placeholders as
    /// [`stream_rows`](Self::stream_rows) takes them). Typed formats such as
    /// Parquet take their schema from it, so an all-NULL column or an empty
    /// result keeps its type. The default is an [`ErrorKind::Unsupported`] error.
    async fn describe(&self, sql: &str, parameters: &Parameters) -> Result<Vec<Column>> {
        let _ = (sql, parameters);
        Err(Error::new(
            ErrorKind::Unsupported,
            "describe",
            "this hook cannot describe a query's columns",
        )
        .with("conn_id", self.conn_id()))
    }

    /// Checks that the database answers with the connection's credentials.
    async fn test_connection(&self) -> Result<()> {
        self.get_first("SELECT 1", Parameters::None)
            .await
            .map(|_| ())
    }

    /// Marks the staging table `name` (unqualified) as in use by this process
    /// until the returned lease is dropped, with a lock held by a session of
    /// its own, which the server releases when that session ends however it
    /// ends (process killed, server crashed). Taken before the staging table
    /// is created, so a table that exists while its lock is free has no
    /// living owner and a later load may drop it (see
    /// [`staging_in_use`](Self::staging_in_use)). `None` (the default): the
    /// hook has no such lock, and its stale staging tables are never swept.
    async fn staging_lease(&self, name: &str) -> Result<Option<StagingLease>> {
        let _ = name;
        Ok(None)
    }

    /// Whether a session still holds the [`staging_lease`](Self::staging_lease)
    /// of staging table `name`. The default, `true`, keeps every table: a hook
    /// that cannot tell must never let a live load's table be dropped.
    async fn staging_in_use(&self, name: &str) -> Result<bool> {
        let _ = name;
        Ok(true)
    }
}

/// What [`SqlHook::staging_lease`] returns: the session (or registration)
/// that marks a staging table as in use. Dropping it releases the mark.
pub struct StagingLease(#[allow(dead_code)] Box<dyn std::any::Any + Send>);

impl StagingLease {
    /// A lease held for as long as `hold` (a connection holding a lock, a
    /// registration…) lives.
    pub fn new(hold: impl std::any::Any + Send) -> Self {
        StagingLease(Box::new(hold))
    }
}

impl fmt::Debug for StagingLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StagingLease")
    }
}

/// A stable 64-bit hash (FNV-1a) of a staging table's name, the key of its
/// lock: the same in every process and version. Two names with the same key
/// only make a stale table look in use (kept), never the reverse.
#[allow(dead_code)]
pub(crate) fn staging_lock_key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A SQLite table name's schema (`main` when none) and name, quotes removed:
/// what `pragma_table_info(name, schema)` takes.
pub(crate) fn sqlite_schema_and_name(table: &str) -> (String, String) {
    let unquote = |s: &str| s.trim_matches(|c| c == '"' || c == '`').to_string();
    match table.rsplit_once('.') {
        Some((schema, name)) => (unquote(schema), unquote(name)),
        None => ("main".to_string(), unquote(table)),
    }
}

/// Fails when a row's width differs from the column list.
pub(crate) fn check_widths(table: &str, columns: &[String], rows: &[Vec<Value>]) -> Result<()> {
    if let Some((i, r)) = rows
        .iter()
        .enumerate()
        .find(|(_, r)| r.len() != columns.len())
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "sql.insert_rows",
            format!(
                "row {} has {} values but {} columns were named",
                i + 1,
                r.len(),
                columns.len()
            ),
        )
        .with("table", table));
    }
    Ok(())
}

/// The error of a bulk load whose input failed to read: [`ErrorKind::Io`] for
/// a local failure; but when the input is a stream of gust's own (an object
/// download, wrapped as `std::io::Error::other`) its error's kind and retry
/// state are kept, so a transient download failure (`Unavailable`) stays
/// retryable instead of becoming a permanent `Io` error of the database.
pub(crate) fn input_error(op: &'static str, e: std::io::Error) -> Error {
    match e.get_ref().and_then(|s| s.downcast_ref::<Error>()) {
        Some(inner) => Error::new(inner.kind(), op, format!("reading the CSV input: {inner}"))
            .with_retry_state_of(inner)
            .with_source(e),
        None => Error::new(ErrorKind::Io, op, format!("reading the CSV input: {e}")).with_source(e),
    }
}

/// Reads the header row of a CSV load: its column names. An empty input, or an
/// empty name, is an error not yet named (the hook's scope names it
/// `<system>.bulk_load` and adds its context).
pub(crate) async fn read_header(reader: &mut CsvReader<'_>) -> Result<Vec<String>> {
    let header = reader.next().await?.ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            "",
            "the CSV input is empty: it needs a header row",
        )
    })?;
    header_columns(header)
}

/// `columns` quoted for `dialect` and joined with `, `, as a column list.
pub(crate) fn quote_columns(dialect: Dialect, columns: &[String]) -> Result<String> {
    Ok(columns
        .iter()
        .map(|c| quote_identifier(dialect, c))
        .collect::<Result<Vec<_>>>()?
        .join(", "))
}

/// The column names of a CSV header row: none may be NULL (empty).
pub(crate) fn header_columns(header: Record) -> Result<Vec<String>> {
    header
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            c.ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "",
                    format!("header column {} is empty", i + 1),
                )
            })
        })
        .collect()
}

/// Opens the SQL hook that `conn`'s type names — `postgres`, `mysql` (or
/// `mariadb`), `sqlite` — connected to `database` when given (Airflow's
/// `database` override, the connection's `schema` otherwise; ignored by SQLite,
/// whose connection names a file). A type whose feature is off is an
/// [`ErrorKind::Unsupported`] error naming the feature.
pub async fn from_connection(
    conn: &crate::Connection,
    database: Option<&str>,
) -> Result<Box<dyn SqlHook>> {
    // Only the server databases read `schema` as the database.
    #[cfg_attr(
        not(any(feature = "postgres", feature = "mysql")),
        allow(unused_variables)
    )]
    let with_database = || match database {
        Some(db) => conn.clone().with_schema(db),
        None => conn.clone(),
    };
    match conn.conn_type() {
        #[cfg(feature = "postgres")]
        "postgres" => Ok(Box::new(
            super::postgres::PostgresHook::from_connection(&with_database()).await?,
        )),
        #[cfg(feature = "mysql")]
        "mysql" | "mariadb" => Ok(Box::new(
            super::mysql::MySqlHook::from_connection(&with_database()).await?,
        )),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Box::new(
            super::sqlite::SqliteHook::from_connection(conn).await?,
        )),
        other => {
            let feature = match other {
                "postgres" => "postgres",
                "mysql" | "mariadb" => "mysql",
                "sqlite" => "sqlite",
                _ => "",
            };
            let msg = if feature.is_empty() {
                format!(
                    "connection type {other:?} is not a SQL database gust supports (postgres, mysql, sqlite)"
                )
            } else {
                format!("connection type {other:?} needs gust's cargo feature `{feature}`")
            };
            Err(Error::new(ErrorKind::Unsupported, "sql.connect", msg)
                .with("conn_id", conn.conn_id()))
        }
    }
}

/// Formats a float as JSON: NaN and infinities become strings (JSON has no such numbers).
pub(crate) fn float_value(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or_else(
        || {
            Value::from(if f.is_nan() {
                "NaN"
            } else if f > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            })
        },
        Value::Number,
    )
}

/// Bytes as a JSON array of numbers.
pub(crate) fn bytes_value(b: &[u8]) -> Value {
    Value::Array(b.iter().map(|&x| Value::from(x)).collect())
}

#[cfg(test)]
mod tests {
    use super::implement::{insert_statement, shape_results};
    use super::*;
    use serde_json::json;

    #[test]
    fn input_error_keeps_the_kind_of_a_wrapped_gust_error() {
        let download = Error::new(ErrorKind::Unavailable, "s3.get_object", "broke off");
        let e = input_error("sql.bulk_load", std::io::Error::other(download));
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_retryable());
        assert!(e.message().contains("broke off"), "{e}");
        let exhausted = Error::new(ErrorKind::Unavailable, "s3.get_object", "gone").exhausted();
        let e = input_error("sql.bulk_load", std::io::Error::other(exhausted));
        assert!(e.is_exhausted());
        let local = input_error("sql.bulk_load", std::io::Error::other("disk full"));
        assert_eq!(local.kind(), ErrorKind::Io);
        assert!(!local.is_retryable());
    }

    #[test]
    fn in_statement_keeps_the_error_and_names_the_statement() {
        let e = Error::new(ErrorKind::Unavailable, "postgres.run", "server closed")
            .with("conn_id", "pg")
            .with_source(std::io::Error::other("eof"))
            .exhausted();
        let e = in_statement(e, 2, 3, "-- load\nINSERT INTO t VALUES (1)\n");
        assert_eq!(
            e.to_string(),
            "postgres.run failed (unavailable, retries exhausted): statement 2 of 3 failed: \
             server closed [conn_id=pg, statement=2, sql=INSERT INTO t VALUES (1)]"
        );
        assert!(e.is_exhausted());
        assert_eq!(
            std::error::Error::source(&e).map(ToString::to_string),
            Some("eof".to_string())
        );
    }

    #[test]
    fn quoting_doubles_quotes_and_rejects_empty() {
        assert_eq!(
            quote_identifier(Dialect::Postgres, "a\"b").unwrap(),
            "\"a\"\"b\""
        );
        assert_eq!(
            quote_identifier(Dialect::MySql, "x`; DROP TABLE y; --").unwrap(),
            "`x``; DROP TABLE y; --`"
        );
        assert_eq!(quote_table(Dialect::Sqlite, "s.t").unwrap(), "\"s\".\"t\"");
        assert!(quote_identifier(Dialect::Sqlite, "").is_err());
        assert!(quote_table(Dialect::Sqlite, "a..b").is_err());
    }

    #[test]
    fn insert_and_upsert_statements() {
        let cols = vec!["id".to_string(), "v".to_string()];
        let o = InsertOptions::default();
        assert_eq!(
            insert_statement(Dialect::Postgres, "t", &cols, 2, &o).unwrap(),
            "INSERT INTO \"t\" (\"id\", \"v\") VALUES ($1, $2), ($3, $4)"
        );
        let r = InsertOptions {
            replace: true,
            replace_index: vec!["id".into()],
            ..o.clone()
        };
        assert_eq!(
            insert_statement(Dialect::Sqlite, "t", &cols, 1, &r).unwrap(),
            "INSERT INTO \"t\" (\"id\", \"v\") VALUES (?, ?) ON CONFLICT (\"id\") DO UPDATE SET \"v\" = EXCLUDED.\"v\""
        );
        assert!(
            insert_statement(Dialect::MySql, "t", &cols, 1, &r)
                .unwrap()
                .starts_with("REPLACE INTO `t`")
        );
        let no_key = InsertOptions { replace: true, ..o };
        assert!(insert_statement(Dialect::Postgres, "t", &cols, 1, &no_key).is_err());
    }

    #[test]
    fn results_are_shaped_as_airflow_does() {
        let fetch = RunOptions {
            handler: Handler::FetchAll,
            ..Default::default()
        };
        let one = Sql::from("SELECT 1");
        let many = Sql::Many(vec!["a".into(), "b".into()]);
        let rs = vec![json!(1), json!(2)];
        assert_eq!(shape_results(&one, &fetch, rs.clone()), json!(2));
        assert_eq!(shape_results(&many, &fetch, rs.clone()), json!([1, 2]));
        let all = RunOptions {
            return_last: false,
            ..fetch
        };
        assert_eq!(shape_results(&one, &all, rs.clone()), json!([1, 2]));
        assert_eq!(shape_results(&one, &RunOptions::default(), rs), Value::Null);
    }

    #[test]
    fn parameters_from_json() {
        assert_eq!(Parameters::from(json!(null)), Parameters::None);
        assert_eq!(
            Parameters::from(json!([1])),
            Parameters::Positional(vec![json!(1)])
        );
        assert!(matches!(
            Parameters::from(json!({"a": 1})),
            Parameters::Named(_)
        ));
    }
}
