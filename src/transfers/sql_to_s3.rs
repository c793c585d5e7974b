//! [`SqlToS3`]: a query's result as a CSV object (Airflow's `SqlToS3Operator`;
//! `PostgresToS3` and `MySqlToS3` are this operator on those connections).
//!
//! The rows stream from the database — PostgreSQL's `COPY (query) TO STDOUT`,
//! the other databases' row streams — through the hook's
//! [`bulk_dump`](SqlHook::bulk_dump) straight into a multipart upload
//! ([`ObjectStore::put_stream`](crate::hooks::object_store::ObjectStore::put_stream)):
//! memory stays flat whatever the row count, and
//! the object appears only when the whole result is written. If the query fails
//! midway, the upload is aborted: no object, no pending parts.
//!
//! The CSV is `bulk_dump`'s: RFC 4180 with a header row, `,`, NULL as an empty
//! unquoted field and the empty string as `""` — byte for byte what
//! `psql \copy (query) TO STDOUT WITH (FORMAT csv, HEADER)` writes. An empty
//! result is a header-only file (from PostgreSQL; the other databases write an
//! empty object, having no column names without a row). A key ending in `.gz`
//! (or [`gzip(true)`](SqlToS3::gzip)) is gzip-compressed on the way.
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

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::object_store::{BytesStream, PutOptions, gzip_stream, reader_stream};
use crate::hooks::sql::SqlHook;
use crate::operators::s3::{S3Settings, Source, bucket_key};
use crate::operators::sql::resolve_hook;
use crate::task::Operator;

const OP: &str = "sql_to_s3.dump";

/// Writes a query's result to an object as CSV; see the [module docs](self).
/// XCom: `{"bucket", "key", "rows", "bytes", "format"}` (`bytes` as stored, after
/// compression).
#[derive(Clone)]
pub struct SqlToS3 {
    query: String,
    s3_key: String,
    s3_bucket: Option<String>,
    sql_conn_id: String,
    hook: Option<Arc<dyn SqlHook>>,
    source: Source,
    replace: bool,
    gzip: bool,
}

impl std::fmt::Debug for SqlToS3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlToS3")
            .field("query", &self.query)
            .field("s3_key", &self.s3_key)
            .field("s3_bucket", &self.s3_bucket)
            .field("sql_conn_id", &self.sql_conn_id)
            .field("hook", &self.hook.as_ref().map(|_| "given"))
            .field("store", &self.source)
            .field("replace", &self.replace)
            .field("gzip", &self.gzip)
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
            s3_key: s3_key.into(),
            s3_bucket: None,
            sql_conn_id: "sql_default".to_string(),
            hook: None,
            source: Source::default(),
            replace: false,
            gzip: false,
        }
    }

    /// Overwrites an existing object (default `false`, as Airflow).
    pub fn replace(mut self, on: bool) -> Self {
        self.replace = on;
        self
    }

    /// Gzip-compresses the object (also on when the key ends in `.gz`).
    pub fn gzip(mut self, on: bool) -> Self {
        self.gzip = on;
        self
    }
}

#[async_trait]
impl Operator for SqlToS3 {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        let query = ctx.render(&self.query)?;
        let bucket = self
            .s3_bucket
            .as_deref()
            .map(|b| ctx.render_inline(b))
            .transpose()?;
        let key = ctx.render_inline(&self.s3_key)?;
        let (bucket, key) = bucket_key(OP, bucket.as_deref(), &key)?;
        let object = format!("s3://{bucket}/{key}");

        let hook = resolve_hook(ctx, self.hook.as_ref(), &self.sql_conn_id, None).await?;
        let store = self.source.resolve(ctx, S3Settings::default()).await?;
        let gzip = self.gzip || key.ends_with(".gz");

        let (reader, mut writer) = tokio::io::duplex(256 * 1024);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Result<()>>();
        let (rows_tx, rows_rx) = tokio::sync::oneshot::channel::<u64>();
        let dump = async move {
            let result = hook.bulk_dump(&query, &mut writer).await;
            // The result goes before the end of the pipe, so the upload, at the
            // end of its input, learns whether the input was whole.
            let _ = done_tx.send(result.map(drop).map_err(|e| e.with_operation(OP)));
            let _ = writer.shutdown().await;
        };
        let mut body = read_through(reader, done_rx, rows_tx);
        if gzip {
            body = gzip_stream(body);
        }
        let opts = PutOptions::new()
            .replace(self.replace)
            .content_type(if gzip { "application/gzip" } else { "text/csv" });
        let (_, put) = futures::join!(dump, store.put_stream(&bucket, &key, body, &opts));
        let put = put.map_err(|e| e.with("object", &object))?;
        let rows = rows_rx.await.unwrap_or(0);
        tracing::info!(%object, rows, bytes = put.size, "query result written");
        Ok(json!({
            "bucket": bucket,
            "key": key,
            "rows": rows,
            "bytes": put.size,
            "format": "csv",
        }))
    }
}

/// The dump's CSV as a stream of chunks, ending with the dump's error if it
/// failed (so the upload is aborted instead of storing a truncated object), and
/// counting the records on the way (`rows` gets the count, header excluded).
fn read_through(
    reader: tokio::io::DuplexStream,
    done: tokio::sync::oneshot::Receiver<Result<()>>,
    rows: tokio::sync::oneshot::Sender<u64>,
) -> BytesStream {
    // The unfold ends after `Ok(None)` or an error, so `done` and `rows` are
    // used once each without being `Option`s.
    struct State {
        body: BytesStream,
        done: tokio::sync::oneshot::Receiver<Result<()>>,
        rows: tokio::sync::oneshot::Sender<u64>,
        lines: LineCounter,
    }
    let state = State {
        body: reader_stream(reader),
        done,
        rows,
        lines: LineCounter::default(),
    };
    futures::stream::try_unfold(state, |mut s| async move {
        if let Some(chunk) = s.body.next().await {
            let chunk = chunk.map_err(|e| {
                Error::new(ErrorKind::Io, OP, format!("reading the dump: {e}")).with_source(e)
            })?;
            s.lines.feed(&chunk);
            return Ok(Some((chunk, s)));
        }
        match s.done.await {
            Ok(Ok(())) => {
                let _ = s.rows.send(s.lines.records().saturating_sub(1));
                Ok(None)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::new(
                ErrorKind::Cancelled,
                OP,
                "the dump ended without a result",
            )),
        }
    })
    .boxed()
}

/// Counts CSV records (line ends outside quotes) without parsing the fields.
#[derive(Debug, Default)]
struct LineCounter {
    in_quotes: bool,
    lines: u64,
    /// Whether a record has begun since the last line end (the last one may
    /// have none).
    open: bool,
}

impl LineCounter {
    fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            match b {
                b'"' => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => {
                    self.lines += 1;
                    self.open = false;
                    continue;
                }
                _ => {}
            }
            self.open = true;
        }
    }

    /// Records seen, the last one counted even without its line end.
    fn records(&self) -> u64 {
        self.lines + u64::from(self.open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_counted_outside_quotes() {
        let mut c = LineCounter::default();
        c.feed(b"id,note\n1,\"a\nb\"\n2,");
        c.feed(b"\"\"\"x\"\"\"\n");
        assert_eq!(c.records(), 3);
        let mut c = LineCounter::default();
        c.feed(b"id\n1");
        assert_eq!(c.records(), 2);
        assert_eq!(LineCounter::default().records(), 0);
    }
}
