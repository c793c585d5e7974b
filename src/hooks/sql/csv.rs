//! The CSV of `bulk_dump` / `bulk_load`: [`crate::formats::csv`]'s default
//! dialect (RFC 4180, `,`, a header row, NULL an empty *unquoted* field and the
//! empty string `""`: PostgreSQL's `COPY … (FORMAT csv)` convention, which the
//! other databases follow so a dump from one loads into another), read from and
//! written to tokio I/O in chunks so memory stays flat whatever the size.

use futures::stream::{BoxStream, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::Row;
use crate::error::{Error, ErrorKind, Result};
pub use crate::formats::csv::Record;
use crate::formats::csv::{CsvFormat, Parser, cell_text, write_record};

/// Reads CSV records (`None` a NULL field) from an async byte source, in
/// chunks of 64 KiB: memory stays flat whatever the input's size. The first
/// record of a `bulk_load` input is its header row.
pub struct Reader<'a> {
    input: &'a mut (dyn AsyncRead + Send + Unpin),
    parser: Parser,
    pending: std::collections::VecDeque<Record>,
    buf: Vec<u8>,
    done: bool,
    /// Bytes read so far, for callers that forward the raw input (PostgreSQL's COPY).
    pub(crate) raw: Vec<u8>,
    /// Whether to keep the raw bytes in `raw`.
    pub(crate) keep_raw: bool,
}

impl<'a> Reader<'a> {
    /// A reader over `input`.
    pub fn new(input: &'a mut (dyn AsyncRead + Send + Unpin)) -> Self {
        Reader {
            input,
            parser: Parser::new(&CsvFormat::default(), "sql.bulk_load"),
            pending: Default::default(),
            buf: vec![0; 64 * 1024],
            done: false,
            raw: Vec::new(),
            keep_raw: false,
        }
    }

    /// The next record, or `None` at the end of the input. Malformed CSV is an
    /// [`ErrorKind::InvalidInput`] error naming the line; a failed read an
    /// [`ErrorKind::Io`] error.
    pub async fn next(&mut self) -> Result<Option<Record>> {
        loop {
            if let Some(r) = self.pending.pop_front() {
                return Ok(Some(r));
            }
            if self.done {
                return Ok(None);
            }
            let n = self
                .input
                .read(&mut self.buf)
                .await
                .map_err(|e| super::input_error("sql.bulk_load", e))?;
            let mut out = Vec::new();
            if n == 0 {
                self.done = true;
                self.parser.finish(&mut out)?;
            } else {
                if self.keep_raw {
                    self.raw.extend_from_slice(&self.buf[..n]);
                }
                self.parser.feed(&self.buf[..n], &mut out)?;
            }
            self.pending.extend(out);
        }
    }

    /// Reads the raw input on without parsing it (after the header was parsed):
    /// PostgreSQL's COPY and the SQL-to-SQL transfer's relay.
    #[cfg_attr(
        not(any(feature = "postgres", feature = "object-store")),
        allow(dead_code)
    )]
    pub(crate) async fn read_raw(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.input
            .read(buf)
            .await
            .map_err(|e| super::input_error("sql.bulk_load", e))
    }
}

/// Writes a stream of rows to `out` as the CSV of `bulk_dump`: a header row of
/// the first row's columns, NULL an empty unquoted field, the empty string `""`,
/// written in 64 KiB chunks and flushed at the end. Returns the bytes written.
/// A row error ends the dump with that error; a failed write is an
/// [`ErrorKind::Io`] error of operation `op`.
pub async fn rows_to_csv(
    rows: BoxStream<'_, Result<Row>>,
    out: &mut (dyn AsyncWrite + Send + Unpin),
    op: &'static str,
) -> Result<u64> {
    rows_to_csv_as(rows, &CsvFormat::default(), out, op).await
}

/// [`rows_to_csv`] in `format`'s dialect (delimiter, header row or not, NULL
/// marker).
pub async fn rows_to_csv_as(
    mut rows: BoxStream<'_, Result<Row>>,
    format: &CsvFormat,
    out: &mut (dyn AsyncWrite + Send + Unpin),
    op: &'static str,
) -> Result<u64> {
    use tokio::io::AsyncWriteExt;
    let io = |e: std::io::Error| {
        Error::new(ErrorKind::Io, op, format!("writing the CSV output: {e}")).with_source(e)
    };
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut written = 0u64;
    let mut header = !format.header;
    while let Some(row) = rows.next().await {
        let row = row?;
        if !header {
            write_record(&mut buf, row.keys().map(|k| Some(k.as_str())), format);
            header = true;
        }
        let cells: Vec<Option<String>> = row.values().map(cell_text).collect();
        write_record(&mut buf, cells.iter().map(|c| c.as_deref()), format);
        if buf.len() >= 60 * 1024 {
            out.write_all(&buf).await.map_err(io)?;
            written += buf.len() as u64;
            buf.clear();
        }
    }
    out.write_all(&buf).await.map_err(io)?;
    out.flush().await.map_err(io)?;
    Ok(written + buf.len() as u64)
}
