//! [`SqlToSql`]: a query's rows from one database into a table of another
//! (Airflow's `GenericTransfer`), streamed and all or nothing.
//!
//! The source's [`bulk_dump`](SqlHook::bulk_dump) (PostgreSQL's `COPY … TO
//! STDOUT`, the others' row streams) feeds the destination's
//! [`bulk_load`](SqlHook::bulk_load) (`COPY FROM STDIN`, `LOAD DATA LOCAL
//! INFILE`, batched inserts) through a pipe, into a staging table beside the
//! target; `preoperator` statements, the `DELETE` of a replace and the `INSERT …
//! SELECT` then run in one transaction. A failing query, a refused value or a
//! broken connection leaves the target as it was.
//!
//! Values travel as CSV text, so each must read back as its destination
//! column's type: numbers, text (NULL and the empty string kept apart), dates
//! and timestamps without a zone move between any two databases; PostgreSQL's
//! booleans (`t`/`f`) and zoned timestamps need a destination that reads them,
//! or a cast in the query (`ok::int`, `seen AT TIME ZONE 'UTC'`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> gust::Result<()> {
//! use std::sync::Arc;
//! use gust::hooks::sql::{Parameters, RunOptions, Sql, SqlHook};
//! use gust::hooks::sqlite::SqliteHook;
//! use gust::transfers::{IfExists, sql_to_sql::SqlToSql};
//! use gust::{Context, Operator};
//!
//! let split = || RunOptions { split_statements: true, ..RunOptions::default() };
//! let src = Arc::new(SqliteHook::open("src", ":memory:").await?);
//! src.run(Sql::from("CREATE TABLE t (id INTEGER, name TEXT); INSERT INTO t VALUES (1, 'a'), (2, NULL)"), split()).await?;
//! let dst = Arc::new(SqliteHook::open("dst", ":memory:").await?);
//! dst.run(Sql::from("CREATE TABLE copy (id INTEGER, name TEXT)"), split()).await?;
//!
//! let ctx = Context::builder("copy", "transfer").build();
//! let out = SqlToSql::new("SELECT id, name FROM t", "copy")
//!     .with_source_hook(src)
//!     .with_destination_hook(dst.clone())
//!     .if_exists(IfExists::Replace)
//!     .execute(&ctx)
//!     .await?;
//! assert_eq!(out["rows"], 2);
//! assert_eq!(dst.get_records("SELECT * FROM copy", Parameters::None).await?.len(), 2);
//! # Ok(()) }
//! ```
//!
//! Templated fields: `sql` (inline, or a `.sql` file), `destination_table`,
//! each `preoperator` statement.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, DuplexStream};

use super::staging::IfExists;
use super::staging::load_via_staging;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::sql::SqlHook;
use crate::hooks::sql::implement::CsvReader;
use crate::operators::sql::resolve_hook;
use crate::task::Operator;

const OP: &str = "sql_to_sql.transfer";

/// Copies a query's rows into a table of another database; see the
/// [module docs](self). XCom: `{"table", "rows", "if_exists"}`.
#[derive(Clone)]
pub struct SqlToSql {
    sql: String,
    destination_table: String,
    source_conn_id: String,
    destination_conn_id: String,
    source_hook: Option<Arc<dyn SqlHook>>,
    destination_hook: Option<Arc<dyn SqlHook>>,
    preoperator: Vec<String>,
    if_exists: IfExists,
}

impl std::fmt::Debug for SqlToSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlToSql")
            .field("sql", &self.sql)
            .field("destination_table", &self.destination_table)
            .field("source_conn_id", &self.source_conn_id)
            .field("destination_conn_id", &self.destination_conn_id)
            .field("preoperator", &self.preoperator)
            .field("if_exists", &self.if_exists)
            .finish_non_exhaustive()
    }
}

impl SqlToSql {
    /// Copies the rows of `sql` into `destination_table`, from `source_default`
    /// into `destination_default`, appending.
    pub fn new(sql: impl Into<String>, destination_table: impl Into<String>) -> Self {
        SqlToSql {
            sql: sql.into(),
            destination_table: destination_table.into(),
            source_conn_id: "source_default".to_string(),
            destination_conn_id: "destination_default".to_string(),
            source_hook: None,
            destination_hook: None,
            preoperator: Vec::new(),
            if_exists: IfExists::default(),
        }
    }

    /// The source database's connection (Airflow's `source_conn_id`).
    pub fn source_conn_id(mut self, conn_id: impl Into<String>) -> Self {
        self.source_conn_id = conn_id.into();
        self
    }

    /// The destination database's connection (Airflow's `destination_conn_id`).
    pub fn destination_conn_id(mut self, conn_id: impl Into<String>) -> Self {
        self.destination_conn_id = conn_id.into();
        self
    }

    /// Reads through `hook` instead of connecting with `source_conn_id`.
    pub fn with_source_hook(mut self, hook: Arc<dyn SqlHook>) -> Self {
        self.source_conn_id = hook.conn_id().to_string();
        self.source_hook = Some(hook);
        self
    }

    /// Writes through `hook` instead of connecting with `destination_conn_id`.
    pub fn with_destination_hook(mut self, hook: Arc<dyn SqlHook>) -> Self {
        self.destination_conn_id = hook.conn_id().to_string();
        self.destination_hook = Some(hook);
        self
    }

    /// Statements run on the destination in the same transaction as the insert,
    /// before it (Airflow's `preoperator`, e.g. a `DELETE` of the day's rows).
    pub fn preoperator(mut self, statements: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.preoperator = statements.into_iter().map(Into::into).collect();
        self
    }

    /// Append (default) or replace the table's rows.
    pub fn if_exists(mut self, if_exists: IfExists) -> Self {
        self.if_exists = if_exists;
        self
    }
}

#[async_trait]
impl Operator for SqlToSql {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        let sql = ctx.render(&self.sql)?;
        let table = ctx.render_inline(&self.destination_table)?;
        let before = self
            .preoperator
            .iter()
            .map(|s| ctx.render(s))
            .collect::<Result<Vec<_>>>()?;
        let source =
            resolve_hook(ctx, self.source_hook.as_ref(), &self.source_conn_id, None).await?;
        let destination = resolve_hook(
            ctx,
            self.destination_hook.as_ref(),
            &self.destination_conn_id,
            None,
        )
        .await?;

        let rows = load_via_staging(&destination, &table, &self.if_exists, &before, |staging| {
            let destination = destination.clone();
            let (dump_out, relay_in) = tokio::io::duplex(256 * 1024);
            let (relay_out, load_in) = tokio::io::duplex(256 * 1024);
            let dump = async move {
                let mut out = dump_out;
                source.bulk_dump(&sql, &mut out).await
                // `out` drops here: the relay sees the end.
            };
            let load = async move {
                let mut input = load_in;
                destination.bulk_load(&staging, &mut input).await
            };
            async move {
                let (dumped, columns, loaded) =
                    futures::join!(dump, relay(relay_in, relay_out), load);
                // Which failure is the cause: a broken pipe (`Io`) is only the
                // echo of the other side failing.
                let io = |e: &Error| e.kind() == ErrorKind::Io;
                match (dumped, columns, loaded) {
                    (Err(d), _, Err(l)) if io(&d) => Err(l),
                    (Err(d), _, _) => Err(d),
                    (Ok(_), Err(c), Err(l)) if io(&c) => Err(l),
                    (Ok(_), Err(c), _) => Err(c),
                    // An empty result without a header row: nothing to load.
                    (Ok(_), Ok(c), _) if c.is_empty() => Ok((c, 0)),
                    (Ok(_), Ok(_), Err(l)) => Err(l),
                    (Ok(_), Ok(c), Ok(n)) => Ok((c, n)),
                }
            }
        })
        .await
        .map_err(|e| {
            e.with_operation(OP)
                .with("source_conn_id", &self.source_conn_id)
                .with("destination_table", &table)
        })?;
        tracing::info!(%table, rows, if_exists = self.if_exists.as_str(), "rows transferred");
        Ok(json!({ "table": table, "rows": rows, "if_exists": self.if_exists.as_str() }))
    }
}

/// Forwards the dump to the load unchanged, reading the header row's column
/// names on the way (the insert names them): only the header is parsed, the rest
/// passes as raw bytes. Returns them, or none for an empty dump.
async fn relay(mut input: DuplexStream, mut output: DuplexStream) -> Result<Vec<String>> {
    let io = |e: std::io::Error| {
        Error::new(ErrorKind::Io, OP, format!("relaying the rows: {e}")).with_source(e)
    };
    let mut reader = CsvReader::new(&mut input);
    reader.keep_raw = true;
    let header = reader.next().await?;
    let mut chunk = std::mem::take(&mut reader.raw);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        output.write_all(&chunk).await.map_err(io)?;
        let n = reader.read_raw(&mut buf).await?;
        if n == 0 {
            break;
        }
        chunk.clear();
        chunk.extend_from_slice(&buf[..n]);
    }
    output.shutdown().await.map_err(io)?;
    Ok(header
        .unwrap_or_default()
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}
