//! [`S3ToSql`]: a CSV object into a SQL table, all or nothing (Airflow's
//! `S3ToSqlOperator`, with pandas' `if_exists` for seeds that replace a table).
//!
//! The object streams from the store through a CSV [`Parser`] of its dialect
//! (delimiter, header, NULL marker; gzip when the key ends in `.gz`) into the
//! hook's [`bulk_load`](SqlHook::bulk_load) — PostgreSQL's `COPY FROM STDIN`,
//! MySQL's `LOAD DATA LOCAL INFILE`, SQLite's batched inserts — so memory stays
//! flat whatever the object's size. It loads into a staging table first
//! (`CREATE TABLE … AS SELECT * FROM target WHERE 1 = 0`) and only then changes
//! the target, in one transaction: a malformed row, a value that does not fit its
//! column or a broken download leaves the target table as it was.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> gust::Result<()> {
//! use std::sync::Arc;
//! use gust::formats::csv::CsvFormat;
//! use gust::hooks::object_store::{MemoryStore, ObjectStore, PutOptions};
//! use gust::hooks::sql::{Parameters, RunOptions, Sql, SqlHook};
//! use gust::hooks::sqlite::SqliteHook;
//! use gust::transfers::{IfExists, s3_to_sql::S3ToSql};
//! use gust::{Context, Operator};
//!
//! let store = Arc::new(MemoryStore::new());
//! store.create_bucket("raw").await?;
//! let ctx = Context::builder("iris", "load").build();
//! let csv = "sepal_length;species\n5,1;setosa\n4,9;NA\n";
//! let key = format!("{}/iris.csv", ctx.ds());
//! store.put("raw", &key, csv.as_bytes().to_vec().into(), &PutOptions::new()).await?;
//! let db = Arc::new(SqliteHook::open("lite", ":memory:").await?);
//! db.run(Sql::from("CREATE TABLE iris (sepal_length TEXT, species TEXT)"), RunOptions::default()).await?;
//!
//! let out = S3ToSql::new("s3://raw/{{ ds }}/iris.csv", "iris")
//!     .format(CsvFormat::new().delimiter(b';').null("NA"))
//!     .if_exists(IfExists::Replace)
//!     .with_store(store)
//!     .with_hook(db.clone())
//!     .execute(&ctx)
//!     .await?;
//! assert_eq!(out["rows"], 2);
//! let rows = db.get_records("SELECT species FROM iris", Parameters::None).await?;
//! assert_eq!(rows[1]["species"], serde_json::Value::Null);
//! # Ok(()) }
//! ```
//!
//! Templated fields: `s3_key`, `s3_bucket`, `table`.
//!
//! # Errors
//!
//! A missing object is [`NotFound`](ErrorKind::NotFound) naming the bucket and
//! key; a record with the wrong number of fields (often the wrong delimiter) is
//! [`InvalidInput`](ErrorKind::InvalidInput) naming the object and the line
//! (records are counted from the header as line 1, exact unless a quoted field
//! spans lines); a value the database refuses keeps the database's own words (PostgreSQL names
//! the line and column); a missing target table is the database's error. Errors
//! name the object (`object=s3://bucket/key`) and the target (`target_table`).

use std::io::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::staging::IfExists;
use super::staging::load_via_staging;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::csv::{CsvFormat, Parser, Record, write_record};
use crate::hooks::object_store::BytesStream;
use crate::hooks::sql::{SqlHook, header_columns};
use crate::operators::s3::{S3Settings, Source, bucket_key};
use crate::operators::sql::resolve_hook;
use crate::task::Operator;

const OP: &str = "s3_to_sql.load";

/// Loads a CSV object into a table; see the [module docs](self). XCom:
/// `{"bucket", "key", "table", "rows", "if_exists"}`.
#[derive(Clone)]
pub struct S3ToSql {
    s3_key: String,
    s3_bucket: Option<String>,
    table: String,
    sql_conn_id: String,
    hook: Option<Arc<dyn SqlHook>>,
    source: Source,
    format: CsvFormat,
    column_list: Option<Vec<String>>,
    if_exists: IfExists,
}

impl std::fmt::Debug for S3ToSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3ToSql")
            .field("s3_key", &self.s3_key)
            .field("s3_bucket", &self.s3_bucket)
            .field("table", &self.table)
            .field("sql_conn_id", &self.sql_conn_id)
            .field("hook", &self.hook.as_ref().map(|_| "given"))
            .field("store", &self.source)
            .field("format", &self.format)
            .field("column_list", &self.column_list)
            .field("if_exists", &self.if_exists)
            .finish()
    }
}

super::store_and_sql_builders!(S3ToSql);

impl S3ToSql {
    /// Loads `s3_key` (an `s3://bucket/key` URL unless [`s3_bucket`](Self::s3_bucket)
    /// is set) into `table`, from `aws_default` into `sql_default`, as CSV with a
    /// header row, appending.
    pub fn new(s3_key: impl Into<String>, table: impl Into<String>) -> Self {
        S3ToSql {
            s3_key: s3_key.into(),
            s3_bucket: None,
            table: table.into(),
            sql_conn_id: "sql_default".to_string(),
            hook: None,
            source: Source::default(),
            format: CsvFormat::default(),
            column_list: None,
            if_exists: IfExists::default(),
        }
    }

    /// The CSV dialect of the object (default: `,`, a header row, NULL as an
    /// empty unquoted field).
    pub fn format(mut self, format: CsvFormat) -> Self {
        self.format = format;
        self
    }

    /// The table's columns the object's fields go to, in order (Airflow's
    /// `column_list`). Without it the header row names them; with it a header
    /// row, if the format has one, is skipped.
    pub fn column_list(mut self, columns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.column_list = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Append (default) or replace the table's rows.
    pub fn if_exists(mut self, if_exists: IfExists) -> Self {
        self.if_exists = if_exists;
        self
    }
}

#[async_trait]
impl Operator for S3ToSql {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        let bucket = self
            .s3_bucket
            .as_deref()
            .map(|b| ctx.render_inline(b))
            .transpose()?;
        let key = ctx.render_inline(&self.s3_key)?;
        let (bucket, key) = bucket_key(OP, bucket.as_deref(), &key)?;
        let table = ctx.render_inline(&self.table)?;
        let object = format!("s3://{bucket}/{key}");
        let name = |e: Error| e.with("object", &object).with("target_table", &table);

        let hook = resolve_hook(ctx, self.hook.as_ref(), &self.sql_conn_id, None).await?;
        let store = self.source.resolve(ctx, S3Settings::default()).await?;
        let body = store.get_stream(&bucket, &key).await?;

        let gzip = key.ends_with(".gz");
        let rows = load_via_staging(&*hook, &table, self.if_exists, &[], |staging| {
            let hook = hook.clone();
            let (reader, writer) = tokio::io::duplex(256 * 1024);
            let convert = convert(body, &self.format, self.column_list.clone(), gzip, writer);
            // The load owns the reader, so a load that fails early closes the
            // pipe and the conversion stops instead of waiting for a reader.
            let load = async move {
                let mut reader = reader;
                hook.bulk_load(&staging, &mut reader).await
            };
            async move {
                match futures::join!(convert, load) {
                    (Ok(c), Ok(_)) => Ok(c),
                    // A malformed row is the cause; the load only saw its input end.
                    (Err(c), _) if c.kind() != ErrorKind::Io => Err(c),
                    // The pipe broke because the load failed: the load says why.
                    (_, Err(l)) => Err(l),
                    (Err(c), Ok(_)) => Err(c),
                }
            }
        })
        .await
        .map_err(|e| name(e.with_operation(OP)))?;
        tracing::info!(%object, %table, rows, if_exists = self.if_exists.as_str(), "object loaded");
        Ok(json!({
            "bucket": bucket,
            "key": key,
            "table": table,
            "rows": rows,
            "if_exists": self.if_exists.as_str(),
        }))
    }
}

/// Re-writes the object's CSV in `bulk_load`'s dialect (`,`, a header naming the
/// columns, NULL as an empty unquoted field) into `out`, checking that every
/// record has as many fields as there are columns. Returns the columns and the
/// records written.
async fn convert(
    mut body: BytesStream,
    format: &CsvFormat,
    column_list: Option<Vec<String>>,
    gzip: bool,
    mut out: tokio::io::DuplexStream,
) -> Result<(Vec<String>, u64)> {
    let io = |e: std::io::Error| {
        Error::new(ErrorKind::Io, OP, format!("feeding the load: {e}")).with_source(e)
    };
    let mut parser = Parser::new(format, OP);
    let mut gunzip = gzip.then(|| flate2::write::GzDecoder::new(Vec::new()));
    let mut columns = column_list;
    let mut skip_header = format.header;
    let mut rows = 0u64;
    let mut line = 1u64;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut records: Vec<Record> = Vec::new();
    loop {
        let chunk = body.next().await.transpose()?;
        if let Some(gz) = gunzip.as_mut() {
            match &chunk {
                Some(c) => gz.write_all(c),
                None => gz.try_finish(),
            }
            .map_err(|e| gzip_err(&e))?;
            parser.feed(gz.get_ref(), &mut records)?;
            gz.get_mut().clear();
        } else if let Some(c) = &chunk {
            parser.feed(c, &mut records)?;
        }
        if chunk.is_none() {
            parser.finish(&mut records)?;
        }
        for record in records.drain(..) {
            if skip_header {
                skip_header = false;
                line += 1;
                if columns.is_none() {
                    // An empty name, quoted or not, names no column.
                    let names = record
                        .into_iter()
                        .map(|c| c.filter(|c| !c.is_empty()))
                        .collect();
                    columns = Some(header_columns(names)?);
                }
                continue;
            }
            let Some(cols) = &columns else {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    OP,
                    "the format has no header row: give the columns with column_list",
                ));
            };
            if rows == 0 {
                write_record(&mut buf, cols.iter().map(|c| Some(c.as_str())), b',');
            }
            if record.len() != cols.len() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    OP,
                    format!(
                        "line {line} has {} fields where {} columns were expected (is the \
                         delimiter {:?}?)",
                        record.len(),
                        cols.len(),
                        char::from(format.delimiter)
                    ),
                )
                .with("line", line));
            }
            write_record(&mut buf, record.iter().map(|f| f.as_deref()), b',');
            rows += 1;
            line += 1;
            if buf.len() >= 64 * 1024 {
                out.write_all(&buf).await.map_err(io)?;
                buf.clear();
            }
        }
        if chunk.is_none() {
            break;
        }
    }
    let Some(columns) = columns else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            OP,
            "the object is empty: no header row",
        ));
    };
    if rows == 0 {
        write_record(&mut buf, columns.iter().map(|c| Some(c.as_str())), b',');
    }
    out.write_all(&buf).await.map_err(io)?;
    out.shutdown().await.map_err(io)?;
    Ok((columns, rows))
}

fn gzip_err(e: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        OP,
        format!("the object is not valid gzip: {e}"),
    )
}
