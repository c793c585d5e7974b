//! [`SqlToS3`]: a query's result as CSV, JSON Lines or Parquet objects (Airflow's
//! `SqlToS3Operator`; `PostgresToS3` and `MySqlToS3` are this operator on those
//! connections).
//!
//! The rows stream from the database — PostgreSQL's `COPY (query) TO STDOUT`
//! for CSV, the row stream ([`SqlHook::stream_rows`]) otherwise — straight into
//! a multipart upload
//! ([`ObjectStore::put_stream`]):
//! memory stays flat whatever the row count, and an object appears only when it
//! is whole. If the query fails midway, the upload is aborted (no object, no
//! pending parts) and, with [`max_rows_per_file`](SqlToS3::max_rows_per_file),
//! the objects this run already wrote are removed.
//!
//! CSV by default is `bulk_dump`'s: RFC 4180 with a header row, `,`, NULL as an
//! empty unquoted field and the empty string as `""` — byte for byte what
//! `psql \copy (query) TO STDOUT WITH (FORMAT csv, HEADER)` writes. Another
//! dialect ([`CsvFormat`](crate::formats::csv::CsvFormat): a delimiter such as
//! `;`, no header, a NULL marker such as `NA`) is written by `COPY` itself on
//! PostgreSQL. JSON Lines ([`FileFormat::JsonLines`], or a key ending in
//! `.jsonl`, `.ndjson` or `.json`) writes one object per row with the types of
//! [`formats::jsonl`](crate::formats::jsonl). A key ending in `.gz` (or
//! [`gzip(true)`](SqlToS3::gzip)) is gzip-compressed on the way.
//!
//! Parquet (feature `parquet`; a key ending in `.parquet`, or
//! `FileFormat::Parquet`) has typed columns from the query's own description
//! (`SqlHook::describe`), not from its values: `numeric(12,2)` is a
//! `DECIMAL(12,2)`, `timestamptz` a UTC timestamp, and an all-NULL column or an
//! empty result keeps its type (the table is in `formats::parquet`). The rows
//! come from the row stream and each row group (128 Ki rows by default) goes to
//! the upload as soon as it is encoded, so memory is one row group. Parquet
//! compresses its own pages (snappy): `gzip` does not apply to it.
//!
//! An empty result writes an object by default (a header-only CSV from
//! PostgreSQL; an empty object from the other databases, which name no columns
//! without a row); [`write_empty(false)`](SqlToS3::write_empty) writes none.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> gust::Result<()> {
//! use std::sync::Arc;
//! use gust::hooks::object_store::{MemoryStore, ObjectStore};
//! use gust::hooks::sql::{RunOptions, Sql, SqlHook};
//! use gust::hooks::sqlite::SqliteHook;
//! use gust::transfers::sql_to_s3::SqlToS3;
//! use gust::{Context, Operator};
//!
//! let db = Arc::new(SqliteHook::open("lite", ":memory:").await?);
//! db.run(Sql::from("CREATE TABLE t (id INTEGER, name TEXT); INSERT INTO t VALUES (1, 'a'), (2, NULL)"),
//!        RunOptions { split_statements: true, ..RunOptions::default() }).await?;
//! let store = Arc::new(MemoryStore::new());
//! store.create_bucket("exports").await?;
//!
//! let ctx = Context::builder("export", "dump").build();
//! let out = SqlToS3::new("SELECT id, name FROM t ORDER BY id", "s3://exports/{{ ds }}/t.csv")
//!     .with_hook(db)
//!     .with_store(store.clone())
//!     .execute(&ctx)
//!     .await?;
//! assert_eq!(out["rows"], 2);
//! let body = store.get("exports", &format!("{}/t.csv", ctx.ds())).await?;
//! assert_eq!(&body[..], b"id,name\n1,a\n2,\n");
//! # Ok(()) }
//! ```
//!
//! Templated fields: `query` (inline, or a `.sql` file from the template search
//! path), `s3_key`, `s3_bucket`. With `replace(false)` (the default, as Airflow)
//! an existing key is an [`AlreadyExists`](ErrorKind::AlreadyExists) error,
//! checked by a conditional write, not by a HEAD before it.
//!
//! Row counts are of records, found by their line ends without parsing the
//! fields (outside quotes for CSV).

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
#[cfg(feature = "parquet")]
use futures::stream::BoxStream;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::records::{Framing, Splitter};
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
#[cfg(feature = "parquet")]
use crate::formats::parquet::{self, ParquetFormat};
use crate::formats::{FileFormat, jsonl, split_suffix};
use crate::hooks::object_store::{
    BytesStream, ObjectStore, PutOptions, gzip_stream, reader_stream,
};
use crate::hooks::sql::implement::rows_to_csv_as;
use crate::hooks::sql::{Parameters, SqlHook};
use crate::operators::s3::{S3Settings, Source, rendered_bucket_key};
use crate::operators::sql::resolve_hook;
use crate::task::Operator;

const OP: &str = "sql_to_s3.dump";

/// Writes a query's result to one or more objects; see the [module docs](self).
/// XCom: `{"bucket", "key", "keys", "rows", "bytes", "format"}` (`key` the first
/// object's, `keys` all of them in order, `bytes` as stored, after compression).
#[derive(Clone)]
pub struct SqlToS3 {
    query: String,
    parameters: Parameters,
    s3_key: String,
    s3_bucket: Option<String>,
    sql_conn_id: String,
    hook: Option<Arc<dyn SqlHook>>,
    source: Source,
    replace: bool,
    gzip: bool,
    file_format: Option<FileFormat>,
    max_rows_per_file: u64,
    write_empty: bool,
}

impl std::fmt::Debug for SqlToS3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlToS3")
            .field("query", &self.query)
            .field("parameters", &self.parameters)
            .field("s3_key", &self.s3_key)
            .field("s3_bucket", &self.s3_bucket)
            .field("sql_conn_id", &self.sql_conn_id)
            .field("hook", &self.hook.as_ref().map(|_| "given"))
            .field("store", &self.source)
            .field("replace", &self.replace)
            .field("gzip", &self.gzip)
            .field("file_format", &self.file_format)
            .field("max_rows_per_file", &self.max_rows_per_file)
            .field("write_empty", &self.write_empty)
            .finish()
    }
}

super::store_and_sql_builders!(SqlToS3);

impl SqlToS3 {
    /// Writes the result of `query` to `s3_key` (an `s3://bucket/key` URL unless
    /// [`s3_bucket`](Self::s3_bucket) is set), from `sql_default` to
    /// `aws_default`, not replacing an existing object.
    pub fn new(query: impl Into<String>, s3_key: impl Into<String>) -> Self {
        SqlToS3 {
            query: query.into(),
            parameters: Parameters::None,
            s3_key: s3_key.into(),
            s3_bucket: None,
            sql_conn_id: "sql_default".to_string(),
            hook: None,
            source: Source::default(),
            replace: false,
            gzip: false,
            file_format: None,
            max_rows_per_file: 0,
            write_empty: true,
        }
    }

    /// Bind parameters of the query (Airflow's `parameters`). With parameters
    /// the rows stream through [`SqlHook::stream_rows`], since PostgreSQL's
    /// `COPY` takes none.
    pub fn parameters(mut self, parameters: impl Into<Parameters>) -> Self {
        self.parameters = parameters.into();
        self
    }

    /// Overwrites existing objects (default `false`, as Airflow).
    pub fn replace(mut self, on: bool) -> Self {
        self.replace = on;
        self
    }

    /// Gzip-compresses the objects (also on when the key ends in `.gz`).
    pub fn gzip(mut self, on: bool) -> Self {
        self.gzip = on;
        self
    }

    /// The format to write (Airflow's `file_format`): a CSV dialect (delimiter,
    /// header, NULL marker), JSON Lines or Parquet. Default: from the key's
    /// suffix (`.jsonl`, `.ndjson`, `.json` → JSON Lines, `.parquet` → Parquet
    /// with the feature `parquet`), else CSV in the default dialect.
    pub fn file_format(mut self, format: impl Into<FileFormat>) -> Self {
        self.file_format = Some(format.into());
        self
    }

    /// Splits the result into objects of at most `rows` records each, named as
    /// Airflow names them: `<stem>_0<suffix>`, `<stem>_1<suffix>`… where the
    /// suffix is the key's (`.csv`, `.csv.gz`, `.jsonl`…) or the format's. CSV
    /// headers are repeated in every object. `0` (the default) writes one
    /// object under the key as given.
    pub fn max_rows_per_file(mut self, rows: u64) -> Self {
        self.max_rows_per_file = rows;
        self
    }

    /// Whether an empty result still writes an object (default `true`, so a
    /// sensor downstream does not wait for ever): a header-only CSV from
    /// PostgreSQL, a Parquet file with the columns and no row, an empty object
    /// otherwise (the other databases name no columns without a row). With `false` nothing is written and XCom's
    /// `keys` is empty.
    pub fn write_empty(mut self, on: bool) -> Self {
        self.write_empty = on;
        self
    }
}

#[async_trait]
impl Operator for SqlToS3 {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        let query = ctx.render(&self.query)?;
        let (bucket, key) = rendered_bucket_key(ctx, OP, self.s3_bucket.as_deref(), &self.s3_key)?;
        let format = self
            .file_format
            .clone()
            .or_else(|| FileFormat::from_key(&key))
            .unwrap_or_default();
        if let FileFormat::Csv(csv) = &format {
            csv.validate(OP)?;
        }

        let hook = resolve_hook(ctx, self.hook.as_ref(), &self.sql_conn_id, None).await?;
        let store = self.source.resolve(ctx, S3Settings::default()).await?;
        // Parquet compresses inside the file.
        let gzip = (self.gzip || key.ends_with(".gz")) && format.name() != "parquet";

        let files = Files {
            store,
            bucket: bucket.clone(),
            key: key.clone(),
            max_rows: self.max_rows_per_file,
            default_suffix: format!("{}{}", format.extension(), if gzip { ".gz" } else { "" }),
            opts: PutOptions::new()
                .replace(self.replace)
                .content_type(if gzip {
                    "application/gzip"
                } else {
                    format.content_type()
                }),
            gzip,
            write_empty: self.write_empty,
        };
        let written = match &format {
            #[cfg(feature = "parquet")]
            FileFormat::Parquet(parquet) => {
                files
                    .write_parquet(&*hook, &query, self.parameters.clone(), parquet)
                    .await?
            }
            _ => {
                let (reader, writer) = tokio::io::duplex(256 * 1024);
                let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Result<()>>();
                let produce = produce(
                    hook,
                    query,
                    self.parameters.clone(),
                    format.clone(),
                    writer,
                    done_tx,
                );
                let (framing, header) = match &format {
                    FileFormat::Csv(csv) => (Framing::Csv, csv.header),
                    _ => (Framing::Lines, false),
                };
                let splitter = Splitter::new(reader_stream(reader), done_rx, framing, header, OP);
                let (produced, written) = futures::join!(produce, files.write(splitter));
                match (produced, written) {
                    // The query failed (a dropped connection, an error midway):
                    // that is the cause, naming the database's connection; the
                    // upload only saw its input fail (and was aborted).
                    (Err(e), Err(_)) => {
                        return Err(e.with("object", format!("s3://{bucket}/{key}")));
                    }
                    (_, written) => written?,
                }
            }
        };
        tracing::info!(
            bucket = %bucket,
            keys = written.keys.len(),
            rows = written.rows,
            bytes = written.bytes,
            format = format.name(),
            "query result written"
        );
        Ok(json!({
            "bucket": bucket,
            "key": written.keys.first(),
            "keys": written.keys,
            "rows": written.rows,
            "bytes": written.bytes,
            "format": format.name(),
        }))
    }
}

/// Runs the query and writes its result, encoded, into `out`: `bulk_dump_as`
/// for CSV without parameters (PostgreSQL's `COPY` does the encoding), the row
/// stream otherwise. The outcome goes to `done` before `out` is closed, so the
/// reader learns at the end of its input whether the input was whole; it is
/// also returned, whole, for the error the operator reports.
async fn produce(
    hook: Arc<dyn SqlHook>,
    query: String,
    parameters: Parameters,
    format: FileFormat,
    mut out: tokio::io::DuplexStream,
    done: tokio::sync::oneshot::Sender<Result<()>>,
) -> Result<()> {
    let result = match (&format, parameters) {
        (FileFormat::Csv(csv), Parameters::None) => hook.bulk_dump_as(&query, csv, &mut out).await,
        (FileFormat::Csv(csv), parameters) => {
            rows_to_csv_as(hook.stream_rows(&query, parameters), csv, &mut out, OP).await
        }
        // JSON Lines (Parquet has its own path, `Files::write_parquet`).
        (_, parameters) => rows_to_jsonl(hook.stream_rows(&query, parameters), &mut out).await,
    };
    let result = result.map(drop).map_err(|e| e.with_operation(OP));
    let _ = done.send(result.as_ref().map(|_| ()).map_err(copy_of));
    let _ = out.shutdown().await;
    result
}

/// A copy of `e` without its source (errors are not `Clone`): kind, operation,
/// message, context and retry state.
fn copy_of(e: &Error) -> Error {
    e.context_entries().fold(
        Error::new(e.kind(), e.operation().to_string(), e.message()).with_retry_state_of(e),
        |c, (k, v)| c.with(k, v),
    )
}

/// Writes rows as JSON Lines in 64 KiB chunks; returns the bytes written.
async fn rows_to_jsonl(
    mut rows: futures::stream::BoxStream<'_, Result<crate::hooks::sql::Row>>,
    out: &mut tokio::io::DuplexStream,
) -> Result<u64> {
    let io = |e: std::io::Error| {
        Error::new(ErrorKind::Io, OP, format!("writing the JSON Lines: {e}")).with_source(e)
    };
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut written = 0u64;
    while let Some(row) = rows.next().await {
        jsonl::write_record(&mut buf, &row?);
        if buf.len() >= 60 * 1024 {
            out.write_all(&buf).await.map_err(io)?;
            written += buf.len() as u64;
            buf.clear();
        }
    }
    out.write_all(&buf).await.map_err(io)?;
    Ok(written + buf.len() as u64)
}

/// Where and how the objects are written.
struct Files {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    key: String,
    /// Records per object; 0 for one object.
    max_rows: u64,
    /// The suffix of split objects when the key has none of a known format.
    default_suffix: String,
    opts: PutOptions,
    gzip: bool,
    write_empty: bool,
}

/// What [`Files::write`] wrote.
struct Written {
    keys: Vec<String>,
    rows: u64,
    bytes: u64,
}

impl Files {
    /// The key of object `index`.
    fn key_of(&self, index: usize) -> String {
        if self.max_rows == 0 {
            return self.key.clone();
        }
        let (stem, suffix) = split_suffix(&self.key);
        let suffix = if suffix.is_empty() {
            self.default_suffix.as_str()
        } else {
            suffix
        };
        format!("{stem}_{index}{suffix}")
    }

    /// Writes the splitter's records into objects; on any error removes the
    /// objects already written, so a failed run leaves none behind.
    async fn write(self, splitter: Splitter) -> Result<Written> {
        let splitter = Arc::new(Mutex::new(splitter));
        let mut keys = Vec::new();
        let mut bytes = 0;
        let result = self.write_all(&splitter, &mut keys, &mut bytes).await;
        let rows = splitter.lock().await.records();
        // The pipe closes here, so a dump still writing stops.
        drop(splitter);
        self.outcome(result, Written { keys, rows, bytes }).await
    }

    /// The run's outcome: what was written, or the error after the objects
    /// already written are removed.
    async fn outcome(&self, result: Result<()>, written: Written) -> Result<Written> {
        let keys = &written.keys;
        match result {
            Ok(()) => Ok(written),
            Err(e) => {
                if !keys.is_empty() {
                    match self.store.delete(&self.bucket, keys).await {
                        Ok(r) if r.errors.is_empty() => {
                            tracing::warn!(bucket = %self.bucket, keys = ?keys, "removed the objects of the failed dump");
                        }
                        Ok(r) => {
                            tracing::error!(bucket = %self.bucket, failed = ?r.errors, "could not remove every object of the failed dump")
                        }
                        Err(d) => {
                            tracing::error!(bucket = %self.bucket, error = %d, "could not remove the objects of the failed dump")
                        }
                    }
                }
                Err(e)
            }
        }
    }

    async fn write_all(
        &self,
        splitter: &Arc<Mutex<Splitter>>,
        keys: &mut Vec<String>,
        bytes: &mut u64,
    ) -> Result<()> {
        let room = if self.max_rows == 0 {
            u64::MAX
        } else {
            self.max_rows
        };
        loop {
            // The first batch decides whether there is an object to write.
            let (first, header) = {
                let mut s = splitter.lock().await;
                let first = s.next_batch(room).await?;
                (first, s.header().map(<[u8]>::to_vec))
            };
            let first = match first {
                Some(b) => b,
                None if keys.is_empty() && self.write_empty => (bytes::Bytes::new(), 0),
                None => return Ok(()),
            };
            let key = self.key_of(keys.len());
            let object = format!("s3://{}/{key}", self.bucket);
            let mut body = file_body(splitter.clone(), header, first, room);
            if self.gzip {
                body = gzip_stream(body);
            }
            let put = self
                .store
                .put_stream(&self.bucket, &key, body, &self.opts)
                .await
                .map_err(|e| e.with("object", &object))?;
            tracing::info!(%object, bytes = put.size, "object written");
            keys.push(key);
            *bytes += put.size;
            if self.max_rows == 0 || splitter.lock().await.at_end().await? {
                return Ok(());
            }
        }
    }
}

#[cfg(feature = "parquet")]
impl Files {
    /// Writes the query's rows as Parquet objects, typed by the query's
    /// described columns; on any error removes the objects already written.
    async fn write_parquet(
        self,
        hook: &dyn SqlHook,
        query: &str,
        parameters: Parameters,
        format: &ParquetFormat,
    ) -> Result<Written> {
        let mut written = Written {
            keys: Vec::new(),
            rows: 0,
            bytes: 0,
        };
        let result = self
            .write_parquet_files(hook, query, parameters, format, &mut written)
            .await;
        self.outcome(result, written).await
    }

    async fn write_parquet_files(
        &self,
        hook: &dyn SqlHook,
        query: &str,
        parameters: Parameters,
        format: &ParquetFormat,
        written: &mut Written,
    ) -> Result<()> {
        let columns = hook.describe(query, &parameters).await?;
        // PostgreSQL's binary COPY decodes straight into the typed columns;
        // elsewhere (or with parameters, which COPY takes none of) the rows
        // come as JSON.
        let binary = match parameters {
            Parameters::None => hook.copy_out_binary(query),
            _ => None,
        };
        let mut rows = match binary {
            Some(stream) => RowSource::Binary(stream, parquet::PgBinary::new()),
            None => RowSource::Json(hook.stream_rows(query, parameters).peekable()),
        };
        let room = if self.max_rows == 0 {
            u64::MAX
        } else {
            self.max_rows
        };
        loop {
            let more = rows.more().await?;
            // An empty result still writes its one file, unless told not to.
            let empty_file = written.keys.is_empty() && self.write_empty;
            if !more && !empty_file {
                return Ok(());
            }
            let writer = parquet::Writer::new(&columns, format, OP)?;
            let key = self.key_of(written.keys.len());
            let object = format!("s3://{}/{key}", self.bucket);
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes>>(2);
            let body = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|chunk| (chunk, rx))
            })
            .boxed();
            let (put, filled) = futures::join!(
                self.store.put_stream(&self.bucket, &key, body, &self.opts),
                fill_parquet(&mut rows, writer, room, tx)
            );
            let n = match (put, filled) {
                (Ok(put), Ok(Some(n))) => {
                    tracing::info!(%object, bytes = put.size, rows = n, "object written");
                    written.bytes += put.size;
                    n
                }
                // The rows or their encoding failed: the upload was aborted.
                (_, Err(e)) => return Err(e),
                (Err(e), _) => return Err(e.with("object", &object)),
                (Ok(_), Ok(None)) => {
                    return Err(Error::new(
                        ErrorKind::Io,
                        OP,
                        "the upload ended before the file was whole",
                    )
                    .with("object", &object));
                }
            };
            written.keys.push(key);
            written.rows += n;
            if self.max_rows == 0 || !rows.more().await? {
                return Ok(());
            }
        }
    }
}

/// Where a Parquet dump's rows come from: JSON rows, or PostgreSQL's binary
/// COPY stream and its decoder.
#[cfg(feature = "parquet")]
enum RowSource<'a> {
    Json(futures::stream::Peekable<BoxStream<'a, Result<crate::hooks::sql::Row>>>),
    Binary(BoxStream<'a, Result<Vec<u8>>>, parquet::PgBinary),
}

#[cfg(feature = "parquet")]
impl RowSource<'_> {
    /// Whether another row follows (an error in the rows counts as one: the
    /// next fill reports it).
    async fn more(&mut self) -> Result<bool> {
        match self {
            RowSource::Json(rows) => Ok(std::pin::Pin::new(rows).peek().await.is_some()),
            RowSource::Binary(stream, decoder) => loop {
                if decoder.ready(OP)? {
                    return Ok(!decoder.ended());
                }
                match stream.next().await {
                    Some(chunk) => decoder.feed(&chunk?),
                    None => return Err(truncated()),
                }
            },
        }
    }

    /// Moves up to `room - writer.rows()` rows into `writer`.
    async fn fill(&mut self, writer: &mut parquet::Writer, room: u64) -> Result<()> {
        match self {
            RowSource::Json(rows) => {
                if writer.rows() < room
                    && let Some(row) = rows.next().await
                {
                    writer.push(row?.values())?;
                }
                Ok(())
            }
            RowSource::Binary(stream, decoder) => {
                let left = room - writer.rows();
                if writer.push_pg_binary(decoder, left)? == 0 && !decoder.ended() {
                    match stream.next().await {
                        Some(chunk) => decoder.feed(&chunk?),
                        None => return Err(truncated()),
                    }
                }
                Ok(())
            }
        }
    }

    fn done(&self) -> bool {
        matches!(self, RowSource::Binary(_, d) if d.ended())
    }
}

#[cfg(feature = "parquet")]
fn truncated() -> Error {
    Error::new(
        ErrorKind::Io,
        OP,
        "the COPY stream ended before its trailer",
    )
}

/// Moves up to `room` rows into `writer` and its encoded bytes into `tx`, a
/// row group at a time; returns the rows, or `None` when the upload stopped
/// reading. On an error the upload gets one too, so it aborts.
#[cfg(feature = "parquet")]
async fn fill_parquet(
    rows: &mut RowSource<'_>,
    mut writer: parquet::Writer,
    room: u64,
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes>>,
) -> Result<Option<u64>> {
    let result = async {
        let mut reported = 0;
        while writer.rows() < room && !rows.done() && rows.more().await? {
            rows.fill(&mut writer, room).await?;
            if writer.rows() / 1_000_000 > reported {
                reported = writer.rows() / 1_000_000;
                tracing::info!(rows = writer.rows(), "dump in progress");
            }
            let out = writer.take_output();
            if !out.is_empty() && tx.send(Ok(out.into())).await.is_err() {
                return Ok(None);
            }
        }
        let n = writer.rows();
        let last = writer.finish()?;
        Ok(tx.send(Ok(last.into())).await.ok().map(|()| n))
    };
    let result: Result<Option<u64>> = result.await;
    if let Err(e) = &result {
        let abort = Error::new(e.kind(), OP, format!("the dump failed: {}", e.message()));
        let _ = tx.send(Err(abort)).await;
    }
    result
}

/// One object's body: the header, the first batch, then batches until `room`
/// records are in or the dump ends.
fn file_body(
    splitter: Arc<Mutex<Splitter>>,
    header: Option<Vec<u8>>,
    first: (bytes::Bytes, u64),
    room: u64,
) -> BytesStream {
    let left = room - first.1;
    let head = futures::stream::iter(
        header
            .map(bytes::Bytes::from)
            .into_iter()
            .chain(Some(first.0))
            .filter(|b| !b.is_empty())
            .map(Ok),
    );
    let rest = futures::stream::try_unfold((splitter, left), |(splitter, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let next = splitter.lock().await.next_batch(left).await?;
        Ok(next.map(|(b, n)| (b, (splitter, left - n))))
    });
    head.chain(rest).boxed()
}
