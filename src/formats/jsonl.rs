//! JSON Lines, streamed: one JSON object per line, the form Airflow's
//! `SqlToS3Operator(file_format="json")` writes (`DataFrame.to_json(orient="records",
//! lines=True)`) and seed 000's rows take in Redis.
//!
//! A record is a JSON object, column → value. Values keep the JSON types the SQL
//! hooks give rows (see [`hooks::sql`](crate::hooks::sql)): integers and floats
//! as numbers, booleans as booleans, NULL as `null`, `NUMERIC`/`DECIMAL` as a
//! string of its exact digits, dates as `YYYY-MM-DD`, `TIMESTAMPTZ` as RFC 3339 in
//! UTC, `TIMESTAMP` without a zone as `YYYY-MM-DDTHH:MM:SS[.f]`. Key order is the
//! query's column order.
//!
//! The reader is a push [`Parser`]: feed it chunks as they arrive, take complete
//! objects out. Blank lines are skipped; anything else that is not one JSON object
//! on one line is an error naming the line.

use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};

/// One JSON Lines record: column → value, in column order.
pub type Object = Map<String, Value>;

/// Appends `record` as one line of JSON to `out`.
pub fn write_record(out: &mut Vec<u8>, record: &Object) {
    // Writing a `Map` of `Value`s into a Vec cannot fail: no I/O, string keys.
    serde_json::to_writer(&mut *out, record).expect("a JSON map always serializes");
    out.push(b'\n');
}

/// A push parser of JSON Lines: feed it chunks, take complete objects out.
#[derive(Debug)]
pub struct Parser {
    /// The bytes of the line being read (the part after the last line end).
    pending: Vec<u8>,
    /// The 1-based line number of the line in `pending`.
    line: u64,
    op: &'static str,
}

impl Parser {
    /// A parser whose errors are of operation `op`.
    pub fn new(op: &'static str) -> Self {
        Parser {
            pending: Vec::new(),
            line: 1,
            op,
        }
    }

    /// The line the parser is on (1-based): the next record's line.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Parses `chunk`, appending each completed object to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Object>) -> Result<()> {
        let mut numbered = Vec::new();
        self.feed_numbered(chunk, &mut numbered)?;
        out.extend(numbered.into_iter().map(|(_, o)| o));
        Ok(())
    }

    /// Ends the input: the last line may lack its line end.
    pub fn finish(&mut self, out: &mut Vec<Object>) -> Result<()> {
        let mut numbered = Vec::new();
        self.finish_numbered(&mut numbered)?;
        out.extend(numbered.into_iter().map(|(_, o)| o));
        Ok(())
    }

    /// [`feed`](Self::feed), each object with its 1-based line number.
    pub fn feed_numbered(&mut self, chunk: &[u8], out: &mut Vec<(u64, Object)>) -> Result<()> {
        let mut rest = chunk;
        while let Some(nl) = memchr(b'\n', rest) {
            let (line, tail) = rest.split_at(nl);
            rest = &tail[1..];
            if self.pending.is_empty() {
                self.parse_line(line, out)?;
            } else {
                let mut whole = std::mem::take(&mut self.pending);
                whole.extend_from_slice(line);
                self.parse_line(&whole, out)?;
                // Keep the allocation for the next split line.
                whole.clear();
                self.pending = whole;
            }
        }
        self.pending.extend_from_slice(rest);
        Ok(())
    }

    /// [`finish`](Self::finish), the object with its 1-based line number.
    pub fn finish_numbered(&mut self, out: &mut Vec<(u64, Object)>) -> Result<()> {
        let last = std::mem::take(&mut self.pending);
        if !last.is_empty() {
            self.parse_line(&last, out)?;
        }
        Ok(())
    }

    fn parse_line(&mut self, line: &[u8], out: &mut Vec<(u64, Object)>) -> Result<()> {
        let line_no = self.line;
        self.line += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let bad = |msg: String| {
            Error::new(
                ErrorKind::InvalidInput,
                self.op,
                format!("malformed JSON Lines at line {line_no}: {msg}"),
            )
            .with("line", line_no)
        };
        match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(map)) => {
                out.push((line_no, map));
                Ok(())
            }
            Ok(other) => Err(bad(format!(
                "expected an object, found {}",
                json_type(&other)
            ))),
            Err(e) => Err(bad(format!("{e}"))),
        }
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &[u8], chunk: usize) -> Result<Vec<Object>> {
        let mut p = Parser::new("test");
        let mut out = Vec::new();
        for c in text.chunks(chunk) {
            p.feed(c, &mut out)?;
        }
        p.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trip_in_any_chunking() {
        let rows = vec![
            json!({"id": 1, "name": "한글 \"q\"\nline", "score": null, "ok": true}),
            json!({"id": 2, "name": "", "amount": "12.50", "at": "2025-01-08T00:00:00Z"}),
        ];
        let mut text = Vec::new();
        for r in &rows {
            write_record(&mut text, r.as_object().unwrap());
        }
        assert_eq!(text.iter().filter(|&&b| b == b'\n').count(), 2);
        for chunk in [1, 2, 7, 1000] {
            let back: Vec<Value> = parse(&text, chunk)
                .unwrap()
                .into_iter()
                .map(Value::Object)
                .collect();
            assert_eq!(back, rows, "chunk {chunk}");
        }
        // Column order is kept.
        let first = &parse(&text, 3).unwrap()[0];
        assert_eq!(
            first.keys().collect::<Vec<_>>(),
            ["id", "name", "score", "ok"]
        );
    }

    #[test]
    fn blank_lines_crlf_and_no_final_newline() {
        let out = parse(b"{\"a\":1}\r\n\n  \n{\"a\":2}", 4).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[1]["a"], 2);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse(b"{\"a\":1}\n{\"a\":\n", 5).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("line 2"), "{e}");
        let e = parse(b"{\"a\":1}\n\n[1,2]\n", 100).unwrap_err();
        assert!(e.message().contains("line 3"), "{e}");
        assert!(e.message().contains("an array"), "{e}");
        let e = parse(b"{\"a\":1} x", 100).unwrap_err();
        assert!(e.message().contains("line 1"), "{e}");
    }
}
