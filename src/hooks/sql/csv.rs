//! The CSV of `bulk_dump` / `bulk_load`: RFC 4180 with a header row, written and
//! read incrementally so memory stays flat whatever the size.
//!
//! NULL is an empty *unquoted* field and the empty string is `""`: PostgreSQL's
//! `COPY … (FORMAT csv)` convention, which the other databases follow here so a
//! dump from one loads into another. The `csv` crate cannot tell `,,` from `,"",`,
//! hence this small parser.

use futures::stream::{BoxStream, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::Row;
use crate::error::{Error, ErrorKind, Result};

/// A parsed CSV record: `None` is NULL.
pub type Record = Vec<Option<String>>;

/// Appends one field to `out`, quoted when needed (and always when empty, so an
/// empty string is not read back as NULL).
pub fn write_field(out: &mut Vec<u8>, field: Option<&str>) {
    let Some(f) = field else { return };
    if f.is_empty() || f.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        for b in f.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(f.as_bytes());
    }
}

/// Appends one record and its line end.
pub fn write_record<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = Option<&'a str>>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_field(out, f);
    }
    out.push(b'\n');
}

/// The CSV text of a JSON cell: strings as they are, numbers and booleans printed,
/// arrays and objects as JSON text, NULL as `None`.
pub fn cell_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// A push parser: feed it chunks, take complete records out.
#[derive(Debug)]
pub struct Parser {
    state: State,
    field: Vec<u8>,
    quoted: bool,
    record: Record,
    line: u64,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            state: State::FieldStart,
            field: Vec::new(),
            quoted: false,
            record: Vec::new(),
            line: 1,
        }
    }
}

fn bad(line: u64, msg: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "sql.bulk_load",
        format!("malformed CSV at line {line}: {msg}"),
    )
}

impl Parser {
    fn end_field(&mut self) -> Result<()> {
        let bytes = std::mem::take(&mut self.field);
        let value = if bytes.is_empty() && !self.quoted {
            None
        } else {
            Some(String::from_utf8(bytes).map_err(|_| bad(self.line, "not UTF-8"))?)
        };
        self.record.push(value);
        self.quoted = false;
        self.state = State::FieldStart;
        Ok(())
    }

    fn end_record(&mut self, out: &mut Vec<Record>) -> Result<()> {
        self.end_field()?;
        let record = std::mem::take(&mut self.record);
        // A blank line is no record (e.g. a trailing newline).
        if !(record.len() == 1 && record[0].is_none()) {
            out.push(record);
        }
        self.line += 1;
        Ok(())
    }

    /// Parses `chunk`, appending each completed record to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Record>) -> Result<()> {
        for &b in chunk {
            match (self.state, b) {
                (State::Quoted, b'"') => self.state = State::QuoteInQuoted,
                (State::Quoted, b) => {
                    if b == b'\n' {
                        self.line += 1;
                    }
                    self.field.push(b)
                }
                (State::QuoteInQuoted, b'"') => {
                    self.field.push(b'"');
                    self.state = State::Quoted;
                }
                (State::FieldStart, b'"') => {
                    self.quoted = true;
                    self.state = State::Quoted;
                }
                (_, b',') => self.end_field()?,
                (_, b'\n') => self.end_record(out)?,
                // \r of a \r\n line end.
                (_, b'\r') => {}
                (State::QuoteInQuoted, _) => {
                    return Err(bad(
                        self.line,
                        "a quote inside a quoted field must be doubled",
                    ));
                }
                (_, b'"') => return Err(bad(self.line, "a quote inside an unquoted field")),
                (_, b) => {
                    self.field.push(b);
                    self.state = State::Unquoted;
                }
            }
        }
        Ok(())
    }

    /// Ends the input: the last record may lack its newline.
    pub fn finish(&mut self, out: &mut Vec<Record>) -> Result<()> {
        match self.state {
            State::Quoted => Err(bad(self.line, "unterminated quoted field")),
            State::FieldStart if self.record.is_empty() => Ok(()),
            _ => self.end_record(out),
        }
    }
}

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
            parser: Parser::default(),
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
            let n = self.input.read(&mut self.buf).await.map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    "sql.bulk_load",
                    format!("reading the CSV input: {e}"),
                )
                .with_source(e)
            })?;
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

    /// Reads the raw input on without parsing it (after the header was parsed).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) async fn read_raw(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.input.read(buf).await.map_err(|e| {
            Error::new(
                ErrorKind::Io,
                "sql.bulk_load",
                format!("reading the CSV input: {e}"),
            )
            .with_source(e)
        })
    }
}

/// Writes a stream of rows to `out` as the CSV of `bulk_dump`: a header row of
/// the first row's columns, NULL an empty unquoted field, the empty string `""`,
/// written in 64 KiB chunks and flushed at the end. Returns the bytes written.
/// A row error ends the dump with that error; a failed write is an
/// [`ErrorKind::Io`] error of operation `op`.
pub async fn rows_to_csv(
    mut rows: BoxStream<'_, Result<Row>>,
    out: &mut (dyn AsyncWrite + Send + Unpin),
    op: &'static str,
) -> Result<u64> {
    use tokio::io::AsyncWriteExt;
    let io = |e: std::io::Error| {
        Error::new(ErrorKind::Io, op, format!("writing the CSV output: {e}")).with_source(e)
    };
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut written = 0u64;
    let mut header = false;
    while let Some(row) = rows.next().await {
        let row = row?;
        if !header {
            write_record(&mut buf, row.keys().map(|k| Some(k.as_str())));
            header = true;
        }
        let cells: Vec<Option<String>> = row.values().map(cell_text).collect();
        write_record(&mut buf, cells.iter().map(|c| c.as_deref()));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, chunk: usize) -> Result<Vec<Record>> {
        let mut p = Parser::default();
        let mut out = Vec::new();
        for c in text.as_bytes().chunks(chunk) {
            p.feed(c, &mut out)?;
        }
        p.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trip_keeps_null_empty_quotes_and_newlines() {
        let rows: Vec<Record> = vec![
            vec![Some("a".into()), None, Some(String::new())],
            vec![Some("x,\"y\"\nz".into()), Some("한글".into()), None],
        ];
        let mut text = Vec::new();
        for r in &rows {
            write_record(&mut text, r.iter().map(|f| f.as_deref()));
        }
        let text = String::from_utf8(text).unwrap();
        assert_eq!(text, "a,,\"\"\n\"x,\"\"y\"\"\nz\",한글,\n");
        for chunk in [1, 2, 3, 1000] {
            assert_eq!(parse(&text, chunk).unwrap(), rows, "chunk {chunk}");
        }
    }

    #[test]
    fn crlf_and_missing_final_newline() {
        let out = parse("a,b\r\n1,2", 4).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], vec![Some("1".into()), Some("2".into())]);
    }

    #[test]
    fn malformed_input_names_the_line() {
        let e = parse("a\n\"open", 3).unwrap_err();
        assert!(e.message().contains("line 2"), "{e}");
        assert!(parse("a\"b\n", 10).is_err());
    }
}
