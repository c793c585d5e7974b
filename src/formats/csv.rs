//! CSV, streamed: a push [`Parser`] fed chunk by chunk and a writer of records,
//! in one dialect described by [`CsvFormat`] — the delimiter (`;` in many
//! European exports), whether the first record is a header, and how NULL is
//! written.
//!
//! NULL and the empty string stay apart. By default NULL is an empty *unquoted*
//! field and the empty string is `""` (PostgreSQL's `COPY … (FORMAT csv)`
//! convention, the one `SqlHook::bulk_dump` / `bulk_load` speak); with
//! [`CsvFormat::null`] an unquoted marker such as `NA` or `\N` is NULL instead
//! and an empty field is the empty string. A blank line is a record of one empty
//! field (a NULL in a one-column table, as PostgreSQL reads it).
//! The `csv` crate cannot tell `,,` from `,"",`, hence this small parser.
//!
//! # Types
//!
//! A CSV value is text, written as each database writes it and read back by
//! each database's bulk load:
//!
//! | SQL type | PostgreSQL (`COPY`) | MySQL / MariaDB, SQLite (the row's JSON value) |
//! |---|---|---|
//! | integers, floats | digits (`1e+300`, `-1.5e-07`) | digits as JSON prints them (`1e300`, `-2.0`) |
//! | `numeric`/`DECIMAL` | every digit of the scale (`12.50`) | the same |
//! | booleans | `t` / `f` | `1` / `0` (`tinyint(1)`) |
//! | `date` | `2025-01-08` | `2025-01-08` |
//! | `timestamptz` / `TIMESTAMP` | `2025-01-08 09:00:00+09` (the session's zone) | `2025-01-08T00:00:00` (UTC for `TIMESTAMP`) |
//! | `timestamp` / `DATETIME` | `2025-01-08 09:00:00` | `2025-01-08T09:00:00` |
//! | text | as stored (UTF-8), quoted when it holds the delimiter, a quote or a line end | the same |
//!
//! Loading, PostgreSQL reads all of these; MySQL's `bulk_load` also reads
//! PostgreSQL's `t`/`f` and zoned timestamps (as UTC) by the target column's
//! type, so a dump of either loads into the other (see
//! `hooks::mysql`).

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};

/// A CSV dialect. The default is RFC 4180 with `,`, a header row, and NULL as an
/// empty unquoted field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CsvFormat {
    /// The field delimiter (default `,`).
    pub delimiter: u8,
    /// Whether the first record names the columns (default `true`).
    pub header: bool,
    /// An unquoted field equal to this is NULL, and an empty unquoted field is
    /// then the empty string, as with PostgreSQL's `COPY … (NULL 'NA')`
    /// (default: none — NULL is an empty unquoted field, the empty string `""`).
    pub null: Option<String>,
}

impl Default for CsvFormat {
    fn default() -> Self {
        CsvFormat {
            delimiter: b',',
            header: true,
            null: None,
        }
    }
}

impl CsvFormat {
    /// The default dialect: `,`, a header row, NULL as an empty unquoted field.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the delimiter (`b';'`, `b'\t'`…).
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Sets whether the first record is a header.
    pub fn header(mut self, header: bool) -> Self {
        self.header = header;
        self
    }

    /// Reads (and writes) NULL as this unquoted marker, e.g. `NA` or `\N`.
    pub fn null(mut self, marker: impl Into<String>) -> Self {
        self.null = Some(marker.into());
        self
    }

    /// Checks that the dialect can be read back: the delimiter is one ASCII
    /// character other than a quote or a line end, and the NULL marker holds
    /// none of those. An [`ErrorKind::InvalidInput`] error of operation `op`
    /// otherwise.
    pub fn validate(&self, op: &'static str) -> Result<()> {
        let d = self.delimiter;
        if !d.is_ascii() || matches!(d, b'"' | b'\n' | b'\r') {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                op,
                format!(
                    "the CSV delimiter must be one ASCII character other than a quote or a line end, not {:?}",
                    char::from(d)
                ),
            ));
        }
        if let Some(m) = &self.null
            && m.bytes()
                .any(|b| matches!(b, b'"' | b'\n' | b'\r') || b == d)
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                op,
                format!(
                    "the CSV NULL marker {m:?} must not hold a quote, a line end or the delimiter"
                ),
            ));
        }
        Ok(())
    }
}

/// Whether `record` is what a blank line parses to (one empty or NULL field).
pub fn is_blank(record: &Record) -> bool {
    record.len() == 1 && record[0].as_deref().is_none_or(str::is_empty)
}

/// A parsed CSV record: `None` is NULL.
pub type Record = Vec<Option<String>>;

/// Appends one field to `out` in `format`'s dialect, quoted when needed; `None`
/// (NULL) is the NULL marker, or nothing by default. A value that would read
/// back as NULL — the empty string without a marker, or the marker itself — is
/// quoted, as PostgreSQL's `COPY` does.
pub fn write_field(out: &mut Vec<u8>, field: Option<&str>, format: &CsvFormat) {
    let Some(f) = field else {
        if let Some(marker) = &format.null {
            out.extend_from_slice(marker.as_bytes());
        }
        return;
    };
    let delimiter = format.delimiter;
    let reads_as_null = match &format.null {
        None => f.is_empty(),
        Some(marker) => f == marker,
    };
    if reads_as_null
        || f.bytes()
            .any(|b| matches!(b, b'"' | b'\n' | b'\r') || b == delimiter)
    {
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

/// Appends one record in `format`'s dialect and its line end.
pub fn write_record<'a>(
    out: &mut Vec<u8>,
    fields: impl IntoIterator<Item = Option<&'a str>>,
    format: &CsvFormat,
) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(format.delimiter);
        }
        write_field(out, f, format);
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
    delimiter: u8,
    null: Option<String>,
    op: &'static str,
}

impl Parser {
    /// A parser of `format`'s dialect whose errors are of operation `op`.
    pub fn new(format: &CsvFormat, op: &'static str) -> Self {
        Parser {
            state: State::FieldStart,
            field: Vec::new(),
            quoted: false,
            record: Vec::new(),
            line: 1,
            delimiter: format.delimiter,
            null: format.null.clone(),
            op,
        }
    }

    /// The line the parser is on (1-based): where the next record starts, or
    /// where the current one is being read.
    pub fn line(&self) -> u64 {
        self.line
    }

    fn bad(&self, msg: &str) -> Error {
        Error::new(
            ErrorKind::InvalidInput,
            self.op,
            format!("malformed CSV at line {}: {msg}", self.line),
        )
    }
    fn end_field(&mut self) -> Result<()> {
        let bytes = std::mem::take(&mut self.field);
        let value = if bytes.is_empty() && !self.quoted && self.null.is_none() {
            None
        } else {
            let text = String::from_utf8(bytes).map_err(|_| self.bad("not UTF-8"))?;
            // A NULL marker (`NA`, `\N`) counts only unquoted: `"NA"` is text.
            if !self.quoted && self.null.as_deref() == Some(text.as_str()) {
                None
            } else {
                Some(text)
            }
        };
        self.record.push(value);
        self.quoted = false;
        self.state = State::FieldStart;
        Ok(())
    }

    fn end_record(&mut self, out: &mut Vec<Record>) -> Result<()> {
        self.end_field()?;
        // A blank line is a record of one empty field, as PostgreSQL reads it: a
        // NULL in a one-column table. Callers expecting more columns may skip it.
        out.push(std::mem::take(&mut self.record));
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
                (_, b) if b == self.delimiter => self.end_field()?,
                (_, b'\n') => self.end_record(out)?,
                // \r of a \r\n line end.
                (_, b'\r') => {}
                (State::QuoteInQuoted, _) => {
                    return Err(self.bad("a quote inside a quoted field must be doubled"));
                }
                (_, b'"') => return Err(self.bad("a quote inside an unquoted field")),
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
            State::Quoted => Err(self.bad("unterminated quoted field")),
            State::FieldStart if self.record.is_empty() => Ok(()),
            _ => self.end_record(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, chunk: usize) -> Result<Vec<Record>> {
        let mut p = Parser::new(&CsvFormat::default(), "test");
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
            write_record(&mut text, r.iter().map(|f| f.as_deref()), &CsvFormat::new());
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

    #[test]
    fn a_delimiter_and_a_null_marker() {
        let format = CsvFormat::new().delimiter(b';').null("NA");
        let mut p = Parser::new(&format, "test");
        let mut out = Vec::new();
        p.feed(b"a;b;c\n1,5;NA;\"NA\"\n", &mut out).unwrap();
        p.finish(&mut out).unwrap();
        assert_eq!(out[1], vec![Some("1,5".into()), None, Some("NA".into())]);
        let mut text = Vec::new();
        write_record(
            &mut text,
            [Some("1;5"), None, Some(""), Some("NA")],
            &format,
        );
        assert_eq!(text, b"\"1;5\";NA;;\"NA\"\n");
        // With a marker, an empty unquoted field is the empty string.
        let mut out = Vec::new();
        p.feed(&text, &mut out).unwrap();
        assert_eq!(
            out[0],
            vec![
                Some("1;5".into()),
                None,
                Some(String::new()),
                Some("NA".into())
            ]
        );
    }

    #[test]
    fn a_blank_line_is_a_one_column_null() {
        // A one-column dump of (1), (NULL), (3): the NULL is a blank line.
        let out = parse("n\n1\n\n3\n", 2).unwrap();
        assert_eq!(out.len(), 4);
        assert_eq!(out[2], vec![None]);
        assert!(is_blank(&out[2]));
        assert!(!is_blank(&out[1]));
    }

    #[test]
    fn dialects_that_cannot_be_read_back_are_refused() {
        assert!(CsvFormat::new().delimiter(b';').validate("t").is_ok());
        assert!(CsvFormat::new().delimiter(b'"').validate("t").is_err());
        assert!(CsvFormat::new().delimiter(b'\n').validate("t").is_err());
        assert!(CsvFormat::new().delimiter(0xE9).validate("t").is_err());
        let e = CsvFormat::new().null("a,b").validate("t").unwrap_err();
        assert!(e.message().contains("NULL marker"), "{e}");
    }
}
