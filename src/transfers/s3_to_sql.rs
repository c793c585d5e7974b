//! [`S3ToSql`]: CSV, JSON Lines or Parquet objects into a SQL table, all or nothing
//! (Airflow's `S3ToSqlOperator`, with pandas' `if_exists` for seeds that replace
//! a table, and a merge on key columns).
//!
//! Each object streams from the store through a parser of its format (a CSV
//! dialect — delimiter, header, NULL marker — or JSON Lines; gzip when the key
//! ends in `.gz`; a Parquet file, feature `parquet`, is downloaded to a
//! temporary file first since its footer comes last, then read a batch of rows
//! at a time) into the hook's [`bulk_load`](SqlHook::bulk_load) —
//! PostgreSQL's `COPY FROM STDIN`, MySQL's `LOAD DATA LOCAL INFILE`, SQLite's
//! batched inserts — so memory stays flat whatever the object's size. It loads
//! into a staging table first (`CREATE TABLE … AS SELECT * FROM target WHERE 1 =
//! 0`) and only then changes the target, in one transaction: a malformed row, a
//! value that does not fit its column or a broken download leaves the target
//! table as it was.
//!
//! On PostgreSQL, one CSV object appended or replacing skips the staging table:
//! its bytes go unchanged into `COPY target FROM STDIN` with the object's own
//! dialect (`DELIMITER`, `NULL`, `HEADER`), after `TRUNCATE` for a replace (or
//! `DELETE` when foreign keys reference the table), in one transaction — all or
//! nothing still, each row written once, nothing re-encoded; only the header is
//! parsed, for the columns. `TRUNCATE` holds an exclusive lock on the table until
//! the load commits: readers wait rather than see it empty. PostgreSQL then
//! checks the records itself (a blank line in a multi-column file is its
//! "missing data" error, where the other paths skip it).
//!
//! The key names one object, or several: a key ending in `/` loads every object
//! under that prefix, a key with `*` or `?` every object matching it (`fnmatch`,
//! as Airflow: `*` crosses `/`), in key order, into the same load.
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
//!     .file_format(CsvFormat::new().delimiter(b';').null("NA"))
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
//! # Columns
//!
//! A CSV header row, the first JSON object's keys or a Parquet file's schema
//! name the columns, unless
//! [`column_list`](S3ToSql::column_list) gives them (a CSV header is then
//! skipped; JSON objects are read by those keys, others ignored);
//! [`column_mapping`](S3ToSql::column_mapping) renames the object's names to the
//! table's. A JSON value that is not a string is loaded as its JSON text
//! (`12.5`, `true`, `{"a":1}`); `null` and a missing key are NULL. A Parquet
//! value is loaded as its text in the [CSV type table](crate::formats::csv)
//! (`true`, `12.50`, `2025-01-08T00:00:00Z`). Every object of one load must have the same columns.
//!
//! # Errors
//!
//! A missing object, or a prefix or pattern that matches none, is
//! [`NotFound`](ErrorKind::NotFound) naming the bucket and key; an empty object is
//! [`InvalidInput`](ErrorKind::InvalidInput); a record with the wrong number of
//! fields (often the wrong delimiter) is `InvalidInput` naming the object and the
//! line (records are counted from the header as line 1, exact unless a quoted
//! field spans lines); a mapping that names a column the object lacks is
//! `InvalidInput`; a value the database refuses keeps the database's own words
//! (PostgreSQL names the line and column); a missing target table is `NotFound`
//! unless [`create_table`](S3ToSql::create_table) says how to create it; a
//! Parquet file with a nested, dictionary or binary column is `InvalidInput`
//! ("incompatible Parquet schema") naming the column, before a row is read. Errors
//! name the object (`object=s3://bucket/key`) and the target (`target_table`).

use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::staging::{IfExists, ensure_table, load_into};
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::FileFormat;
use crate::formats::csv::{CsvFormat, Parser, Record, cell_text, is_blank, write_record};
use crate::formats::decode::{NumberedObject, ObjectReader, gunzip_stream};
use crate::hooks::object_store::{BytesStream, ListKeys, ObjectStore, ObjectStoreExt};
use crate::hooks::sql::{Dialect, RunOptions, Sql, SqlHook, header_columns, quote_table};
use crate::operators::s3::{S3Settings, Source, rendered_bucket_key};
use crate::operators::sql::resolve_hook;
use crate::task::Operator;

const OP: &str = "s3_to_sql.load";

/// Loads CSV, JSON Lines or Parquet objects into a table; see the [module docs](self).
/// XCom: `{"bucket", "key", "objects": [{"key", "rows"}], "table", "rows",
/// "if_exists"}` (`rows` the total).
#[derive(Clone)]
pub struct S3ToSql {
    s3_key: String,
    s3_bucket: Option<String>,
    table: String,
    sql_conn_id: String,
    hook: Option<Arc<dyn SqlHook>>,
    source: Source,
    file_format: Option<FileFormat>,
    column_list: Option<Vec<String>>,
    column_mapping: Vec<(String, String)>,
    if_exists: IfExists,
    create_table: Option<Vec<(String, String)>>,
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
            .field("file_format", &self.file_format)
            .field("column_list", &self.column_list)
            .field("column_mapping", &self.column_mapping)
            .field("if_exists", &self.if_exists)
            .field("create_table", &self.create_table)
            .finish()
    }
}

super::store_and_sql_builders!(S3ToSql);

impl S3ToSql {
    /// Loads `s3_key` (an `s3://bucket/key` URL unless [`s3_bucket`](Self::s3_bucket)
    /// is set; a prefix ending in `/` or a pattern with `*`/`?` for several
    /// objects) into `table`, from `aws_default` into `sql_default`, appending.
    pub fn new(s3_key: impl Into<String>, table: impl Into<String>) -> Self {
        S3ToSql {
            s3_key: s3_key.into(),
            s3_bucket: None,
            table: table.into(),
            sql_conn_id: "sql_default".to_string(),
            hook: None,
            source: Source::default(),
            file_format: None,
            column_list: None,
            column_mapping: Vec::new(),
            if_exists: IfExists::default(),
            create_table: None,
        }
    }

    /// The objects' format: a CSV dialect, JSON Lines or Parquet. Default: from
    /// each key's suffix (`.jsonl`, `.ndjson`, `.json` → JSON Lines, `.parquet`
    /// → Parquet with the feature `parquet`), else CSV with `,`, a header row
    /// and NULL as an empty unquoted field.
    pub fn file_format(mut self, format: impl Into<FileFormat>) -> Self {
        self.file_format = Some(format.into());
        self
    }

    /// The table's columns the object's fields go to, in order (Airflow's
    /// `column_list`). Without it the header row (or the first JSON object)
    /// names them; with it a CSV header row, if the format has one, is skipped.
    pub fn column_list(mut self, columns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.column_list = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Renames columns: each `(name in the object, column of the table)`.
    /// Names not listed keep their name; a listed name the object lacks is an
    /// error.
    pub fn column_mapping(
        mut self,
        mapping: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> Self {
        self.column_mapping = mapping
            .into_iter()
            .map(|(from, to)| (from.into(), to.into()))
            .collect();
        self
    }

    /// Append (default), replace the table's rows, or merge on key columns.
    pub fn if_exists(mut self, if_exists: IfExists) -> Self {
        self.if_exists = if_exists;
        self
    }

    /// Creates the table, when it does not exist, with these columns and SQL
    /// types (e.g. `[("id", "BIGINT PRIMARY KEY"), ("name", "TEXT")]`); a load
    /// that fails drops it again. Without it a missing table is an error.
    pub fn create_table(
        mut self,
        columns: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> Self {
        self.create_table = Some(
            columns
                .into_iter()
                .map(|(c, t)| (c.into(), t.into()))
                .collect(),
        );
        self
    }
}

#[async_trait]
impl Operator for S3ToSql {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        let (bucket, key) = rendered_bucket_key(ctx, OP, self.s3_bucket.as_deref(), &self.s3_key)?;
        let table = ctx.render_inline(&self.table)?;
        let location = format!("s3://{bucket}/{key}");
        let name = |e: Error| {
            let e = e.with_operation(OP).with("target_table", &table);
            match e.context("object") {
                Some(_) => e,
                None => e.with("object", &location),
            }
        };
        if let Some(FileFormat::Csv(csv)) = &self.file_format {
            csv.validate(OP)?;
        }

        let hook = resolve_hook(ctx, self.hook.as_ref(), &self.sql_conn_id, None).await?;
        let store = self.source.resolve(ctx, S3Settings::default()).await?;
        let keys = object_keys(&*store, &bucket, &key).await.map_err(name)?;

        if let Some(rows) = self
            .load_direct(&hook, &store, &bucket, &keys, &table)
            .await
            .map_err(name)?
        {
            tracing::info!(object = %location, %table, rows, if_exists = self.if_exists.as_str(), "object loaded");
            return Ok(json!({
                "bucket": bucket,
                "key": key,
                "objects": [{"key": keys[0], "rows": rows}],
                "table": table,
                "rows": rows,
                "if_exists": self.if_exists.as_str(),
            }));
        }
        let create = self.create_table.as_deref();
        let loaded = load_into(&hook, &table, &self.if_exists, &[], create, |staging| {
            self.load_objects(hook.clone(), store, bucket.clone(), keys, staging)
        })
        .await
        .map_err(name)?;
        let rows: u64 = loaded.iter().map(|(_, n)| n).sum();
        tracing::info!(object = %location, %table, objects = loaded.len(), rows, if_exists = self.if_exists.as_str(), "objects loaded");
        let objects: Vec<Value> = loaded
            .iter()
            .map(|(k, n)| json!({"key": k, "rows": n}))
            .collect();
        Ok(json!({
            "bucket": bucket,
            "key": key,
            "objects": objects,
            "table": table,
            "rows": rows,
            "if_exists": self.if_exists.as_str(),
        }))
    }
}

/// The keys `key` names: itself, or the objects under a prefix ending in `/`,
/// or those matching a pattern with `*` or `?`, in key order.
async fn object_keys(store: &dyn ObjectStore, bucket: &str, key: &str) -> Result<Vec<String>> {
    let wildcard = key.contains(['*', '?']);
    if !wildcard && !key.ends_with('/') {
        return Ok(vec![key.to_string()]);
    }
    let q = ListKeys::new().prefix(key).apply_wildcard(wildcard);
    let mut keys: Vec<String> = store
        .list_keys_stream(bucket, &q)
        // "Directory" markers of consoles are no data.
        .try_filter(|k| futures::future::ready(!k.ends_with('/')))
        .try_collect()
        .await?;
    keys.sort();
    if keys.is_empty() {
        return Err(Error::new(
            ErrorKind::NotFound,
            OP,
            format!("no object matches s3://{bucket}/{key}"),
        ));
    }
    Ok(keys)
}

impl S3ToSql {
    /// The format of the object at `key`.
    fn format_of(&self, key: &str) -> FileFormat {
        self.file_format
            .clone()
            .or_else(|| FileFormat::from_key(key))
            .unwrap_or_default()
    }

    /// One CSV object appended or replacing on a database whose bulk load is
    /// transactional and reads the dialect itself (PostgreSQL): the object's
    /// bytes go unchanged into the target in one transaction, with no staging
    /// table and no re-encoding; only the header is parsed, for the columns.
    /// `None` when this path does not apply.
    async fn load_direct(
        &self,
        hook: &Arc<dyn SqlHook>,
        store: &Arc<dyn ObjectStore>,
        bucket: &str,
        keys: &[String],
        table: &str,
    ) -> Result<Option<u64>> {
        let [key] = keys else { return Ok(None) };
        let replace = match self.if_exists {
            IfExists::Append => false,
            IfExists::Replace => true,
            _ => return Ok(None),
        };
        let FileFormat::Csv(csv) = self.format_of(key) else {
            return Ok(None);
        };
        if hook.dialect() != Dialect::Postgres {
            return Ok(None);
        }
        let object = format!("s3://{bucket}/{key}");
        let target = quote_table(hook.dialect(), table)?;
        let created = ensure_table(&**hook, table, &target, self.create_table.as_deref()).await?;
        let result = async {
            let mut body = store.get_stream(bucket, key).await?;
            if key.ends_with(".gz") {
                body = gunzip_stream(body, OP);
            }
            let (head, columns) = self.peek_columns(&mut body, &csv).await?;
            let input = futures::stream::iter([Ok(head)])
                .chain(body)
                .map(|c| c.map_err(std::io::Error::other));
            let mut reader = tokio_util::io::StreamReader::new(input);
            hook.bulk_load_direct(table, &columns, &csv, replace, &mut reader)
                .await
                .transpose()
        }
        .await
        .map_err(|e| e.with("object", &object));
        if created && !matches!(result, Ok(Some(_))) {
            let drop = Sql::from(format!("DROP TABLE {target}"));
            if let Err(e) = hook.run(drop, RunOptions::default()).await {
                tracing::warn!(%table, error = %e, "could not drop the table the failed load created");
            }
        }
        result
    }

    /// Reads the object until its header record is parsed (or its first chunk
    /// without a header); returns the bytes read and the columns.
    async fn peek_columns(
        &self,
        body: &mut BytesStream,
        csv: &CsvFormat,
    ) -> Result<(bytes::Bytes, Vec<String>)> {
        let mut parser = Parser::new(csv, OP);
        let mut head = Vec::new();
        let mut records = Vec::new();
        loop {
            match body.next().await.transpose()? {
                Some(c) => {
                    if csv.header {
                        parser.feed(&c, &mut records)?;
                    }
                    head.extend_from_slice(&c);
                }
                None => {
                    if csv.header {
                        parser.finish(&mut records)?;
                    }
                    break;
                }
            }
            if !csv.header || !records.is_empty() {
                break;
            }
        }
        if head.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                "the object is empty",
            ));
        }
        let columns = match (&self.column_list, records.into_iter().next()) {
            (Some(list), _) => list.clone(),
            (None, Some(header)) if csv.header => header_names(header, &self.column_mapping)?,
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    OP,
                    "the format has no header row: give the columns with column_list",
                ));
            }
        };
        Ok((head.into(), columns))
    }

    /// Loads each object into the staging table with its own `bulk_load`, so a
    /// database error is the object's; returns the columns and each object's
    /// rows.
    async fn load_objects(
        &self,
        hook: Arc<dyn SqlHook>,
        store: Arc<dyn ObjectStore>,
        bucket: String,
        keys: Vec<String>,
        staging: String,
    ) -> Result<(Vec<String>, Vec<(String, u64)>)> {
        let mut columns: Option<Vec<String>> = None;
        let mut loaded = Vec::with_capacity(keys.len());
        for key in keys {
            let object = format!("s3://{bucket}/{key}");
            let format = self.format_of(&key);
            let spec = Spec {
                format,
                column_list: self.column_list.clone(),
                mapping: self.column_mapping.clone(),
                gzip: key.ends_with(".gz"),
            };
            let (cols, rows) = async {
                let body = store.get_stream(&bucket, &key).await?;
                load_object(hook.clone(), &staging, body, spec).await
            }
            .await
            .map_err(|e| e.with("object", &object))?;
            match &columns {
                Some(first) if *first != cols => {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        OP,
                        format!(
                            "the object has the columns {cols:?} where the first object had {first:?}"
                        ),
                    )
                    .with("object", &object));
                }
                Some(_) => {}
                None => columns = Some(cols),
            }
            tracing::info!(%object, rows, "object loaded into the staging table");
            loaded.push((key, rows));
        }
        Ok((columns.unwrap_or_default(), loaded))
    }
}

/// How one object is read.
struct Spec {
    format: FileFormat,
    column_list: Option<Vec<String>>,
    mapping: Vec<(String, String)>,
    gzip: bool,
}

/// Converts one object and loads it into `staging`, side by side through a
/// pipe; returns the columns and the rows.
async fn load_object(
    hook: Arc<dyn SqlHook>,
    staging: &str,
    body: BytesStream,
    spec: Spec,
) -> Result<(Vec<String>, u64)> {
    let (reader, writer) = tokio::io::duplex(256 * 1024);
    let convert = convert(body, spec, writer);
    // The load owns the reader, so a load that fails early closes the pipe and
    // the conversion stops instead of waiting for a reader.
    let load = async move {
        let mut reader = reader;
        hook.bulk_load(staging, &mut reader).await
    };
    match futures::join!(convert, load) {
        (Ok(c), Ok(_)) => Ok(c),
        // A malformed row is the cause; the load only saw its input end.
        (Err(c), _) if c.kind() != ErrorKind::Io => Err(c),
        // The pipe broke because the load failed: the load says why.
        (_, Err(l)) => Err(l),
        (Err(c), Ok(_)) => Err(c),
    }
}

/// Re-writes the object in `bulk_load`'s dialect (`,`, a header naming the
/// columns, NULL as an empty unquoted field) into `out`, checking that every
/// record fits the columns. Returns the columns and the records written.
async fn convert(
    body: BytesStream,
    spec: Spec,
    mut out: tokio::io::DuplexStream,
) -> Result<(Vec<String>, u64)> {
    let io = |e: std::io::Error| {
        Error::new(ErrorKind::Io, OP, format!("feeding the load: {e}")).with_source(e)
    };
    let out_format = CsvFormat::default();
    let (delimiter, mut header_pending, is_csv) = match &spec.format {
        FileFormat::Csv(csv) => (csv.delimiter, csv.header, true),
        FileFormat::JsonLines => (b',', false, false),
        // The reader's first record names the file's columns; "lines" are rows.
        #[cfg(feature = "parquet")]
        FileFormat::Parquet(_) => (b',', true, true),
    };
    let mut reader = ObjectReader::new(body, &spec.format, spec.gzip, OP);
    // With a column list, a CSV header is skipped and JSON objects are read by
    // those keys.
    let mut columns: Option<Vec<String>> = spec.column_list.clone();
    // JSON keys in the object for each column (before the mapping).
    let mut json_keys: Option<Vec<String>> = spec.column_list.clone();
    let mut rows = 0u64;
    let mut line = 1u64;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut records: Vec<Record> = Vec::new();
    let mut objects: Vec<NumberedObject> = Vec::new();
    loop {
        let more = reader.next(&mut records, &mut objects).await?;
        // JSON objects become records of the columns.
        for (object_line, object) in objects.drain(..) {
            line = object_line;
            let keys = match &json_keys {
                Some(k) => k,
                None => {
                    let names: Vec<String> = object.keys().cloned().collect();
                    columns = Some(map_columns(names.clone(), &spec.mapping)?);
                    json_keys.insert(names)
                }
            };
            if spec.column_list.is_none()
                && let Some(extra) = object.keys().find(|k| !keys.contains(k))
            {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    OP,
                    format!(
                        "line {line} has the key {extra:?}, which the first object does not \
                         have (give column_list to load only some keys)"
                    ),
                )
                .with("line", line));
            }
            records.push(
                keys.iter()
                    .map(|k| object.get(k).and_then(cell_text))
                    .collect(),
            );
        }
        for record in records.drain(..) {
            if header_pending {
                header_pending = false;
                line += 1;
                if columns.is_none() {
                    columns = Some(header_names(record, &spec.mapping)?);
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
            // A blank line is a NULL only in a one-column file.
            if cols.len() != 1 && is_blank(&record) {
                line += 1;
                continue;
            }
            if rows == 0 {
                write_record(&mut buf, cols.iter().map(|c| Some(c.as_str())), &out_format);
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
                        char::from(delimiter)
                    ),
                )
                .with("line", line));
            }
            write_record(&mut buf, record.iter().map(|f| f.as_deref()), &out_format);
            rows += 1;
            if is_csv {
                line += 1;
            }
            if rows.is_multiple_of(1_000_000) {
                tracing::info!(rows, "load in progress");
            }
            if buf.len() >= 64 * 1024 {
                out.write_all(&buf).await.map_err(io)?;
                buf.clear();
            }
        }
        if !more {
            break;
        }
    }
    let Some(columns) = columns else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            OP,
            "the object holds no header row and no record",
        ));
    };
    if rows == 0 {
        write_record(
            &mut buf,
            columns.iter().map(|c| Some(c.as_str())),
            &out_format,
        );
    }
    out.write_all(&buf).await.map_err(io)?;
    out.shutdown().await.map_err(io)?;
    Ok((columns, rows))
}

/// The columns a CSV header names, renamed by the mapping. An empty name,
/// quoted or not, names no column.
fn header_names(header: Record, mapping: &[(String, String)]) -> Result<Vec<String>> {
    let names = header
        .into_iter()
        .map(|c| c.filter(|c| !c.is_empty()))
        .collect();
    map_columns(header_columns(names)?, mapping)
}

/// Applies the mapping to the object's column names; a mapping entry that
/// names a column the object lacks is an error.
fn map_columns(names: Vec<String>, mapping: &[(String, String)]) -> Result<Vec<String>> {
    if let Some((from, _)) = mapping.iter().find(|(from, _)| !names.contains(from)) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            OP,
            format!(
                "column_mapping names {from:?}, which is not a column of the object (it has {names:?})"
            ),
        ));
    }
    Ok(names
        .into_iter()
        .map(|n| {
            mapping
                .iter()
                .find(|(from, _)| *from == n)
                .map_or(n, |(_, to)| to.clone())
        })
        .collect())
}
