//! Parquet (feature `parquet`): a [`Writer`] of typed columns from a query's
//! rows, and a [`Reader`] that gives a file's rows back as text cells for a
//! database's bulk load.
//!
//! The writer's schema comes from the SQL types ([`Column`]), not from the
//! values, so an all-NULL column or an empty result keeps its type. It buffers
//! one row group (128 Ki rows by default, see [`ParquetFormat::row_group_size`])
//! and hands over the encoded bytes after each one: memory is bounded by the
//! row group, whatever the row count. Snappy compresses each page by default.
//!
//! # Types
//!
//! | SQL type ([`ColumnType`]) | Parquet / Arrow type |
//! |---|---|
//! | `boolean` | `BOOLEAN` |
//! | `smallint`, `integer`, `bigint` | `INT16`, `INT32`, `INT64` (signed) |
//! | `real`, `double precision` | `FLOAT`, `DOUBLE` |
//! | `numeric(p, s)`, p ≤ 38 | `DECIMAL(p, s)` (exact) |
//! | `numeric` without precision, or p > 38 | `STRING` of the exact digits (a Parquet decimal needs a fixed scale: cast in SQL to `numeric(p, s)` for a decimal column) |
//! | text, `json` | `STRING` (UTF-8) |
//! | `date` | `DATE` |
//! | `time` | `TIME(MICROS)` |
//! | `timestamp` | `TIMESTAMP(MICROS)`, no zone |
//! | `timestamptz` (MySQL `TIMESTAMP`) | `TIMESTAMP(MICROS, UTC)` |
//! | `bytea`, `BLOB` | `BINARY` |
//!
//! Reading, each cell becomes the text a bulk load reads (the [CSV
//! table](super::csv)): digits, `true`/`false`, `2025-01-08`,
//! `2025-01-08T00:00:00Z` for zoned timestamps. A file whose columns are
//! nested (lists, structs, maps), dictionary-encoded by type, or binary is
//! refused as an incompatible schema, naming the column.

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use super::csv::Record;
use super::{Column, ColumnType};
use crate::error::{Error, ErrorKind, Result};

/// How Parquet files are written. Default: snappy, 128 Ki rows per row group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParquetFormat {
    /// The page compression (default [`Compression::Snappy`]).
    pub compression: Compression,
    /// Rows per row group (default 131,072): the writer holds one row group
    /// in memory, so this bounds it; readers skip and parallelize by row group.
    pub row_group_size: usize,
}

impl Default for ParquetFormat {
    fn default() -> Self {
        ParquetFormat {
            compression: Compression::Snappy,
            row_group_size: 128 * 1024,
        }
    }
}

impl ParquetFormat {
    /// Snappy, 128 Ki rows per row group.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the page compression.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets the rows per row group (at least 1).
    pub fn row_group_size(mut self, rows: usize) -> Self {
        self.row_group_size = rows.max(1);
        self
    }
}

/// The page compression of a Parquet file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Snappy: fast, and what pandas and Spark write by default.
    #[default]
    Snappy,
    /// No compression.
    Uncompressed,
}

/// A column's Arrow type and the builder its values go into.
enum Builder {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Decimal(Decimal128Builder, u32),
    Text(StringBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Bytes(BinaryBuilder),
}

/// The Arrow type and an empty builder for a SQL type.
fn builder_for(column: &Column, op: &'static str) -> Result<(DataType, Builder)> {
    Ok(match &column.ty {
        ColumnType::Bool => (DataType::Boolean, Builder::Bool(BooleanBuilder::new())),
        ColumnType::Int16 => (DataType::Int16, Builder::I16(Int16Builder::new())),
        ColumnType::Int32 => (DataType::Int32, Builder::I32(Int32Builder::new())),
        ColumnType::Int64 => (DataType::Int64, Builder::I64(Int64Builder::new())),
        ColumnType::Float32 => (DataType::Float32, Builder::F32(Float32Builder::new())),
        ColumnType::Float64 => (DataType::Float64, Builder::F64(Float64Builder::new())),
        &ColumnType::Decimal { precision, scale }
            if (1..=38).contains(&precision) && scale <= precision =>
        {
            let (p, s) = (precision as u8, scale as i8);
            let builder = Decimal128Builder::new()
                .with_precision_and_scale(p, s)
                .map_err(|e| Error::new(ErrorKind::InvalidInput, op, e.to_string()))?;
            (DataType::Decimal128(p, s), Builder::Decimal(builder, scale))
        }
        ColumnType::Decimal { .. } | ColumnType::Numeric | ColumnType::Text | ColumnType::Json => {
            (DataType::Utf8, Builder::Text(StringBuilder::new()))
        }
        ColumnType::Date => (DataType::Date32, Builder::Date(Date32Builder::new())),
        ColumnType::Time => (
            DataType::Time64(TimeUnit::Microsecond),
            Builder::Time(Time64MicrosecondBuilder::new()),
        ),
        ColumnType::Timestamp => (
            DataType::Timestamp(TimeUnit::Microsecond, None),
            Builder::Timestamp(TimestampMicrosecondBuilder::new()),
        ),
        ColumnType::TimestampTz => (
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Builder::Timestamp(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
        ),
        ColumnType::Bytes => (DataType::Binary, Builder::Bytes(BinaryBuilder::new())),
        ColumnType::Other(name) => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                op,
                format!(
                    "column {:?} has the type {name}, which gust does not write to Parquet: \
                     cast it in SQL (e.g. {}::text)",
                    column.name, column.name
                ),
            )
            .with("column", &column.name));
        }
    })
}

/// Writes rows into a Parquet file in memory, a row group at a time; see the
/// [module docs](self).
pub struct Writer {
    writer: ArrowWriter<Vec<u8>>,
    schema: SchemaRef,
    columns: Vec<Column>,
    builders: Vec<Builder>,
    in_group: usize,
    group_size: usize,
    rows: u64,
    op: &'static str,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("columns", &self.columns)
            .field("rows", &self.rows)
            .finish()
    }
}

impl Writer {
    /// A writer of `columns` in `format`; `op` names the operation in errors.
    /// A column of [`ColumnType::Other`] is an [`ErrorKind::Unsupported`] error.
    pub fn new(columns: &[Column], format: &ParquetFormat, op: &'static str) -> Result<Self> {
        let mut fields = Vec::with_capacity(columns.len());
        let mut builders = Vec::with_capacity(columns.len());
        for column in columns {
            let (ty, builder) = builder_for(column, op)?;
            fields.push(Field::new(&column.name, ty, true));
            builders.push(builder);
        }
        let schema = Arc::new(Schema::new(fields));
        let compression = match format.compression {
            Compression::Snappy => parquet::basic::Compression::SNAPPY,
            Compression::Uncompressed => parquet::basic::Compression::UNCOMPRESSED,
        };
        let mut props = WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(format.row_group_size.max(1)))
            .set_created_by(format!("gust {}", env!("CARGO_PKG_VERSION")))
            // Min/max per column chunk, as pyarrow writes by default; per page
            // they cost CPU for every page of every column.
            .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Chunk);
        // Dictionary encoding pays for text and small integers (categories,
        // ages, dates); wide numbers and instants are mostly distinct, and
        // hashing each into a dictionary that is then dropped costs CPU (a
        // row group of unique 8-byte values exactly fills arrow-rs's 1 MiB
        // dictionary page and never falls back to plain).
        for column in columns {
            let wide = matches!(
                column.ty,
                ColumnType::Int64
                    | ColumnType::Float64
                    | ColumnType::Decimal { .. }
                    | ColumnType::Timestamp
                    | ColumnType::TimestampTz
                    | ColumnType::Time
                    | ColumnType::Bytes
            );
            if wide {
                props = props.set_column_dictionary_enabled(
                    parquet::schema::types::ColumnPath::from(column.name.as_str()),
                    false,
                );
            }
        }
        let props = props.build();
        let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))
            .map_err(|e| Error::new(ErrorKind::InvalidInput, op, e.to_string()))?;
        Ok(Writer {
            writer,
            schema,
            columns: columns.to_vec(),
            builders,
            in_group: 0,
            group_size: format.row_group_size.max(1),
            rows: 0,
            op,
        })
    }

    /// Adds one row, its values in the columns' order (as `hooks::sql` maps
    /// them: numbers, strings of exact digits or ISO dates, booleans, NULL).
    /// A value that does not fit its column's type is an
    /// [`ErrorKind::InvalidInput`] error naming the column and the row.
    pub fn push<'a>(&mut self, values: impl IntoIterator<Item = &'a Value>) -> Result<()> {
        let mut n = 0;
        for (value, (builder, column)) in values
            .into_iter()
            .zip(self.builders.iter_mut().zip(&self.columns))
        {
            append(builder, value).map_err(|why| {
                Error::new(
                    ErrorKind::InvalidInput,
                    self.op,
                    format!(
                        "row {}: the value {} of column {:?} does not fit its type {:?}: {why}",
                        self.rows + 1,
                        crate::error::shorten(&value.to_string()),
                        column.name,
                        column.ty
                    ),
                )
                .with("column", &column.name)
            })?;
            n += 1;
        }
        if n != self.columns.len() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                self.op,
                format!(
                    "row {} has {n} values for {} columns",
                    self.rows + 1,
                    self.columns.len()
                ),
            ));
        }
        self.rows += 1;
        self.in_group += 1;
        if self.in_group >= self.group_size {
            self.flush_group()?;
        }
        Ok(())
    }

    /// The rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds the rows of PostgreSQL's binary `COPY` format that `decoder`
    /// holds whole, up to `max` rows; returns how many. Each field is decoded
    /// by its column's type straight into the column's builder — no text, no
    /// JSON in between.
    pub fn push_pg_binary(&mut self, decoder: &mut PgBinary, max: u64) -> Result<u64> {
        let mut added = 0;
        while added < max && decoder.next_tuple(self.op)? {
            let fields = &decoder.fields;
            if fields.len() != self.columns.len() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    self.op,
                    format!(
                        "a COPY row has {} fields for {} columns",
                        fields.len(),
                        self.columns.len()
                    ),
                ));
            }
            for (k, field) in fields.iter().enumerate() {
                let value = field.clone().map(|r| &decoder.buf[r]);
                append_pg_binary(&mut self.builders[k], &self.columns[k].ty, value).map_err(
                    |why| {
                        Error::new(
                            ErrorKind::InvalidInput,
                            self.op,
                            format!(
                                "row {}: column {:?} ({:?}): {why}",
                                self.rows + 1,
                                self.columns[k].name,
                                self.columns[k].ty
                            ),
                        )
                        .with("column", &self.columns[k].name)
                    },
                )?;
            }
            decoder.consume();
            self.rows += 1;
            self.in_group += 1;
            added += 1;
            if self.in_group >= self.group_size {
                self.flush_group()?;
            }
        }
        Ok(added)
    }

    /// Takes the bytes encoded so far (whole row groups), leaving the writer
    /// empty of them: what can be uploaded now.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(self.writer.inner_mut())
    }

    /// Writes the last row group and the footer; returns the bytes not taken
    /// yet.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        if self.in_group > 0 {
            self.flush_group()?;
        }
        self.writer
            .into_inner()
            .map_err(|e| Error::new(ErrorKind::InvalidInput, self.op, e.to_string()))
    }

    /// Encodes the buffered rows as one row group.
    fn flush_group(&mut self) -> Result<()> {
        // `finish` hands over the values and leaves each builder empty.
        let arrays: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(|b| match b {
                Builder::Bool(b) => ArrayBuilder::finish(b),
                Builder::I16(b) => ArrayBuilder::finish(b),
                Builder::I32(b) => ArrayBuilder::finish(b),
                Builder::I64(b) => ArrayBuilder::finish(b),
                Builder::F32(b) => ArrayBuilder::finish(b),
                Builder::F64(b) => ArrayBuilder::finish(b),
                Builder::Decimal(b, _) => ArrayBuilder::finish(b),
                Builder::Text(b) => ArrayBuilder::finish(b),
                Builder::Date(b) => ArrayBuilder::finish(b),
                Builder::Time(b) => ArrayBuilder::finish(b),
                Builder::Timestamp(b) => ArrayBuilder::finish(b),
                Builder::Bytes(b) => ArrayBuilder::finish(b),
            })
            .collect();
        let internal = |e: String| Error::new(ErrorKind::InvalidInput, self.op, e);
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| internal(e.to_string()))?;
        self.writer
            .write(&batch)
            .map_err(|e| internal(e.to_string()))?;
        self.writer.flush().map_err(|e| internal(e.to_string()))?;
        // Past the writer's own buffer, so `take_output` has the row group.
        self.writer.sync().map_err(|e| internal(e.to_string()))?;
        self.in_group = 0;
        Ok(())
    }
}

/// A reader of PostgreSQL's binary `COPY … TO STDOUT (FORMAT binary)`
/// stream, fed chunk by chunk: the 19-byte header, then per row a field count
/// and each field's length (−1 for NULL) and bytes, then the trailer −1.
#[derive(Debug, Default)]
pub struct PgBinary {
    buf: Vec<u8>,
    /// Where the next unread row starts in `buf`.
    pos: usize,
    /// Where the current row ends, once `next_tuple` has parsed it.
    row_end: usize,
    fields: Vec<Option<std::ops::Range<usize>>>,
    header_done: bool,
    ended: bool,
}

/// PostgreSQL's binary COPY signature.
const PG_COPY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

impl PgBinary {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a chunk of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        // Drop what was read, unless a parsed row still points into it.
        let consumed = self.row_end <= self.pos;
        if consumed && self.pos > 0 && (self.pos == self.buf.len() || self.pos > 1 << 20) {
            self.buf.drain(..self.pos);
            self.pos = 0;
            self.row_end = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// Whether the trailer was read: no row follows.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Whether a whole row (or the trailer) is buffered.
    pub fn ready(&mut self, op: &'static str) -> Result<bool> {
        if self.ended {
            return Ok(true);
        }
        if self.row_end > self.pos {
            return Ok(true);
        }
        Ok(self.parse(op)?.is_some())
    }

    /// Whether the next whole row is parsed into `fields` (ranges of `buf`,
    /// `None` for NULL); `false` when no whole row is buffered or the trailer
    /// was read. [`consume`](Self::consume) moves past it.
    fn next_tuple(&mut self, op: &'static str) -> Result<bool> {
        if self.row_end <= self.pos && self.parse(op)?.is_none() {
            return Ok(false);
        }
        Ok(!self.ended)
    }

    fn consume(&mut self) {
        self.pos = self.row_end;
    }

    /// Parses the header if due and the next row's bounds; `Some(())` when a
    /// row (or the trailer) is whole.
    fn parse(&mut self, op: &'static str) -> Result<Option<()>> {
        let bad = |m: &str| Error::new(ErrorKind::InvalidInput, op, format!("binary COPY: {m}"));
        if !self.header_done {
            let n = PG_COPY_SIGNATURE.len() + 8;
            if self.buf.len() - self.pos < n {
                return Ok(None);
            }
            if &self.buf[self.pos..self.pos + PG_COPY_SIGNATURE.len()] != PG_COPY_SIGNATURE {
                return Err(bad("not PostgreSQL's binary COPY format"));
            }
            let ext = &self.buf[self.pos + 15..self.pos + 19];
            let ext = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]) as usize;
            if self.buf.len() - self.pos < n + ext {
                return Ok(None);
            }
            self.pos += n + ext;
            self.header_done = true;
        }
        let b = &self.buf[self.pos..];
        if b.len() < 2 {
            return Ok(None);
        }
        let count = i16::from_be_bytes([b[0], b[1]]);
        if count == -1 {
            self.ended = true;
            self.row_end = self.pos + 2;
            return Ok(Some(()));
        }
        let mut at = 2;
        self.fields.clear();
        for _ in 0..count.max(0) {
            if b.len() < at + 4 {
                return Ok(None);
            }
            let len = i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            at += 4;
            if len < 0 {
                self.fields.push(None);
                continue;
            }
            let len = len as usize;
            if b.len() < at + len {
                return Ok(None);
            }
            self.fields.push(Some(self.pos + at..self.pos + at + len));
            at += len;
        }
        self.row_end = self.pos + at;
        Ok(Some(()))
    }
}

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;

fn be<const N: usize>(b: &[u8]) -> std::result::Result<[u8; N], String> {
    b.try_into()
        .map_err(|_| format!("{} bytes where {N} were expected", b.len()))
}

/// A `numeric`'s binary form: sign, the base-10000 digits and their weight,
/// the display scale.
struct PgNumeric<'a> {
    negative: bool,
    weight: i32,
    dscale: usize,
    digits: &'a [u8],
}

fn pg_numeric(b: &[u8]) -> std::result::Result<PgNumeric<'_>, String> {
    if b.len() < 8 {
        return Err("a numeric of fewer than 8 bytes".into());
    }
    let ndigits = u16::from_be_bytes([b[0], b[1]]) as usize;
    let weight = i32::from(i16::from_be_bytes([b[2], b[3]]));
    let sign = u16::from_be_bytes([b[4], b[5]]);
    let dscale = u16::from_be_bytes([b[6], b[7]]) as usize;
    if sign != 0 && sign != 0x4000 {
        return Err("NaN or infinity, which a decimal cannot hold".into());
    }
    let digits = &b[8..];
    if digits.len() != ndigits * 2 {
        return Err("a numeric of the wrong length".into());
    }
    Ok(PgNumeric {
        negative: sign == 0x4000,
        weight,
        dscale,
        digits,
    })
}

impl PgNumeric<'_> {
    fn digit(&self, i: i32) -> u16 {
        if i < 0 || (i as usize) * 2 >= self.digits.len() {
            return 0;
        }
        let k = i as usize * 2;
        u16::from_be_bytes([self.digits[k], self.digits[k + 1]])
    }

    /// The unscaled value at `scale` (exact: digits beyond it must be zeros).
    fn unscaled(&self, scale: u32) -> std::result::Result<i128, String> {
        let n = (self.digits.len() / 2) as i32;
        let mut v: i128 = 0;
        for i in 0..n {
            v = v
                .checked_mul(10_000)
                .and_then(|v| v.checked_add(i128::from(self.digit(i))))
                .ok_or("too many digits for a decimal")?;
        }
        // value = v · 10^(4·(weight + 1 − n))
        let exp = 4 * (self.weight + 1 - n) + scale as i32;
        let v = if exp >= 0 {
            10i128
                .checked_pow(exp as u32)
                .and_then(|p| v.checked_mul(p))
                .ok_or("too many digits for a decimal")?
        } else {
            let p = 10i128
                .checked_pow((-exp) as u32)
                .ok_or("too many digits for a decimal")?;
            if v % p != 0 {
                return Err(format!("more than {scale} digits after the point"));
            }
            v / p
        };
        Ok(if self.negative { -v } else { v })
    }

    /// The text PostgreSQL prints: every digit of the display scale.
    fn text(&self) -> String {
        let n = (self.digits.len() / 2) as i32;
        let mut out = String::new();
        if self.negative && n > 0 {
            out.push('-');
        }
        if self.weight < 0 {
            out.push('0');
        } else {
            for i in 0..=self.weight {
                if i == 0 {
                    out.push_str(&self.digit(i).to_string());
                } else {
                    out.push_str(&format!("{:04}", self.digit(i)));
                }
            }
        }
        if self.dscale > 0 {
            out.push('.');
            let mut frac = String::new();
            let mut i = self.weight + 1;
            while frac.len() < self.dscale {
                frac.push_str(&format!("{:04}", self.digit(i)));
                i += 1;
            }
            frac.truncate(self.dscale);
            out.push_str(&frac);
        }
        out
    }
}

fn utf8(b: &[u8]) -> std::result::Result<&str, String> {
    std::str::from_utf8(b).map_err(|_| "text that is not UTF-8".to_string())
}

/// Appends one field of PostgreSQL's binary COPY, of SQL type `ty`.
fn append_pg_binary(
    builder: &mut Builder,
    ty: &ColumnType,
    value: Option<&[u8]>,
) -> std::result::Result<(), String> {
    let Some(b) = value else {
        return append(builder, &Value::Null);
    };
    match builder {
        Builder::Bool(x) => x.append_value(b.first().copied().unwrap_or(0) != 0),
        Builder::I16(x) => x.append_value(i16::from_be_bytes(be(b)?)),
        Builder::I32(x) => x.append_value(i32::from_be_bytes(be(b)?)),
        Builder::I64(x) => x.append_value(i64::from_be_bytes(be(b)?)),
        Builder::F32(x) => x.append_value(f32::from_be_bytes(be(b)?)),
        Builder::F64(x) => x.append_value(f64::from_be_bytes(be(b)?)),
        Builder::Decimal(x, scale) => x.append_value(pg_numeric(b)?.unscaled(*scale)?),
        Builder::Text(x) => match ty {
            ColumnType::Numeric | ColumnType::Decimal { .. } => {
                x.append_value(pg_numeric(b)?.text())
            }
            // jsonb starts with its format version, 1; JSON text never does.
            ColumnType::Json if b.first() == Some(&1) => x.append_value(utf8(&b[1..])?),
            _ => x.append_value(utf8(b)?),
        },
        Builder::Date(x) => {
            let days = i32::from_be_bytes(be(b)?);
            if days == i32::MAX || days == i32::MIN {
                return Err("an infinite date".into());
            }
            x.append_value(days + PG_EPOCH_DAYS);
        }
        Builder::Time(x) => x.append_value(i64::from_be_bytes(be(b)?)),
        Builder::Timestamp(x) => {
            let micros = i64::from_be_bytes(be(b)?);
            if micros == i64::MAX || micros == i64::MIN {
                return Err("an infinite timestamp".into());
            }
            x.append_value(micros + PG_EPOCH_MICROS);
        }
        Builder::Bytes(x) => x.append_value(b),
    }
    Ok(())
}

/// Appends one value to its column's builder; the reason when it does not fit.
fn append(builder: &mut Builder, value: &Value) -> std::result::Result<(), String> {
    if value.is_null() {
        match builder {
            Builder::Bool(b) => b.append_null(),
            Builder::I16(b) => b.append_null(),
            Builder::I32(b) => b.append_null(),
            Builder::I64(b) => b.append_null(),
            Builder::F32(b) => b.append_null(),
            Builder::F64(b) => b.append_null(),
            Builder::Decimal(b, _) => b.append_null(),
            Builder::Text(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Time(b) => b.append_null(),
            Builder::Timestamp(b) => b.append_null(),
            Builder::Bytes(b) => b.append_null(),
        }
        return Ok(());
    }
    let int = || -> std::result::Result<i64, String> {
        match value {
            Value::Number(n) => n.as_i64().ok_or_else(|| "not an integer".to_string()),
            Value::Bool(b) => Ok(i64::from(*b)),
            Value::String(s) => s.parse().map_err(|_| "not an integer".to_string()),
            _ => Err("not an integer".to_string()),
        }
    };
    let float = || -> std::result::Result<f64, String> {
        match value {
            Value::Number(n) => n.as_f64().ok_or_else(|| "not a number".to_string()),
            // The row mapping writes the non-finite floats as strings.
            Value::String(s) => match s.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                s => s.parse().map_err(|_| "not a number".to_string()),
            },
            _ => Err("not a number".to_string()),
        }
    };
    let text = || match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match builder {
        Builder::Bool(b) => b.append_value(match value {
            Value::Bool(v) => *v,
            Value::Number(n) if n.as_i64() == Some(0) => false,
            Value::Number(n) if n.as_i64() == Some(1) => true,
            _ => return Err("not a boolean".into()),
        }),
        Builder::I16(b) => b.append_value(int()?.try_into().map_err(|_| "out of range")?),
        Builder::I32(b) => b.append_value(int()?.try_into().map_err(|_| "out of range")?),
        Builder::I64(b) => b.append_value(int()?),
        Builder::F32(b) => b.append_value(float()? as f32),
        Builder::F64(b) => b.append_value(float()?),
        Builder::Decimal(b, scale) => b.append_value(decimal(&text(), *scale)?),
        Builder::Text(b) => match value {
            Value::String(s) => b.append_value(s),
            other => b.append_value(other.to_string()),
        },
        Builder::Date(b) => {
            let d = NaiveDate::parse_from_str(&text(), "%Y-%m-%d")
                .map_err(|_| "not a date (YYYY-MM-DD)")?;
            b.append_value((d - NaiveDate::default()).num_days() as i32);
        }
        Builder::Time(b) => {
            let t = NaiveTime::parse_from_str(&text(), "%H:%M:%S%.f")
                .map_err(|_| "not a time of day (HH:MM:SS)")?;
            let since = t - NaiveTime::MIN;
            b.append_value(since.num_microseconds().ok_or("out of range")?);
        }
        Builder::Timestamp(b) => {
            let micros = timestamp_micros(&text()).ok_or("not a timestamp")?;
            b.append_value(micros);
        }
        Builder::Bytes(b) => match value {
            // The row mapping gives bytes as an array of numbers.
            Value::Array(items) => {
                let bytes: Option<Vec<u8>> = items
                    .iter()
                    .map(|x| x.as_u64().and_then(|x| u8::try_from(x).ok()))
                    .collect();
                b.append_value(bytes.ok_or("not an array of bytes")?);
            }
            Value::String(s) => b.append_value(s.as_bytes()),
            _ => return Err("not bytes".into()),
        },
    }
    Ok(())
}

/// Microseconds since the epoch of an ISO timestamp: with an offset (an
/// instant), or without one (read as UTC for a zoned column, as is for a
/// naive one), `T` or a space between date and time.
fn timestamp_micros(text: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc).timestamp_micros());
    }
    // PostgreSQL's text form ends in a bare hour offset (`+09`).
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z") {
        return Some(t.with_timezone(&Utc).timestamp_micros());
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc().timestamp_micros())
}

/// The unscaled value of a decimal's text at `scale` (`"12.5"`, 2 → 1250),
/// exact: digits beyond the scale must be zeros.
fn decimal(text: &str, scale: u32) -> std::result::Result<i128, String> {
    let bad = || format!("not a decimal with at most {scale} digits after the point");
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let scale = scale as usize;
    let (kept, dropped) = frac.split_at(frac.len().min(scale));
    if dropped.bytes().any(|c| c != b'0') {
        return Err(bad());
    }
    let mut unscaled: i128 = 0;
    let padding = std::iter::repeat_n(b'0', scale - kept.len());
    for c in int.bytes().chain(kept.bytes()).chain(padding) {
        unscaled = unscaled
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(c - b'0')))
            .ok_or_else(bad)?;
    }
    Ok(if negative { -unscaled } else { unscaled })
}

/// Reads a Parquet file's rows as records of text cells; see the [module
/// docs](self).
pub struct Reader {
    batches: ParquetRecordBatchReader,
    columns: Vec<String>,
    types: Vec<DataType>,
    rows: u64,
    op: &'static str,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("columns", &self.columns)
            .field("rows", &self.rows)
            .finish()
    }
}

impl Reader {
    /// Opens a Parquet file and checks its schema: a file that is not Parquet
    /// or has a column of a type gust does not read is an
    /// [`ErrorKind::InvalidInput`] error naming the column.
    pub fn open(file: std::fs::File, op: &'static str) -> Result<Self> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                op,
                format!("the object is not a readable Parquet file: {e}"),
            )
        })?;
        let schema = builder.schema().clone();
        for field in schema.fields() {
            if !readable(field.data_type()) {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    op,
                    format!(
                        "incompatible Parquet schema: column {:?} has the type {}, which gust \
                         does not load into a SQL column (flat numbers, decimals, text, dates, \
                         times and timestamps are read)",
                        field.name(),
                        field.data_type()
                    ),
                )
                .with("column", field.name()));
            }
        }
        let batches = builder
            .with_batch_size(8192)
            .build()
            .map_err(|e| Error::new(ErrorKind::InvalidInput, op, e.to_string()))?;
        Ok(Reader {
            batches,
            columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
            types: schema
                .fields()
                .iter()
                .map(|f| f.data_type().clone())
                .collect(),
            rows: 0,
            op,
        })
    }

    /// The file's column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The Arrow types of the file's columns.
    pub fn types(&self) -> &[DataType] {
        &self.types
    }

    /// Appends the next batch of rows (up to 8,192) to `out`; `false` once
    /// the file has no more.
    pub fn next_records(&mut self, out: &mut Vec<Record>) -> Result<bool> {
        let Some(batch) = self.batches.next() else {
            return Ok(false);
        };
        let batch = batch.map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                self.op,
                format!("reading the Parquet rows after row {}: {e}", self.rows),
            )
        })?;
        let start = out.len();
        let n = batch.num_rows();
        out.extend((0..n).map(|_| Vec::with_capacity(batch.num_columns())));
        for array in batch.columns() {
            for (i, record) in out[start..].iter_mut().enumerate() {
                record.push(cell(array, i));
            }
        }
        self.rows += n as u64;
        Ok(true)
    }
}

/// Whether the reader turns values of this type into text.
fn readable(ty: &DataType) -> bool {
    use DataType::*;
    matches!(
        ty,
        Null | Boolean
            | Int8
            | Int16
            | Int32
            | Int64
            | UInt8
            | UInt16
            | UInt32
            | UInt64
            | Float32
            | Float64
            | Decimal128(..)
            | Utf8
            | LargeUtf8
            | Utf8View
            | Date32
            | Date64
            | Time32(TimeUnit::Second | TimeUnit::Millisecond)
            | Time64(TimeUnit::Microsecond | TimeUnit::Nanosecond)
            | Timestamp(..)
    )
}

/// A float's text as JSON writes it (`1e300`, `-2.5`), or PostgreSQL's names
/// of the non-finite ones.
fn float_text(f: f64) -> String {
    match serde_json::Number::from_f64(f) {
        Some(n) => n.to_string(),
        None if f.is_nan() => "NaN".into(),
        None if f > 0.0 => "Infinity".into(),
        None => "-Infinity".into(),
    }
}

/// The text of row `i` of a column of a [`readable`] type; `None` for NULL.
fn cell(array: &ArrayRef, i: usize) -> Option<String> {
    if array.is_null(i) {
        return None;
    }
    let ts = |micros: Option<i64>, zoned: bool| -> Option<String> {
        let t = DateTime::from_timestamp_micros(micros?)?;
        Some(if zoned {
            t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        } else {
            t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string()
        })
    };
    let time = |nanos: i64| -> Option<String> {
        let secs = u32::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
        let nano = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
        Some(
            NaiveTime::from_num_seconds_from_midnight_opt(secs, nano)?
                .format("%H:%M:%S%.f")
                .to_string(),
        )
    };
    Some(match array.data_type() {
        DataType::Null => return None,
        DataType::Boolean => array.as_boolean().value(i).to_string(),
        DataType::Int8 => array.as_primitive::<Int8Type>().value(i).to_string(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(i).to_string(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(i).to_string(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(i).to_string(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(i).to_string(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(i).to_string(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(i).to_string(),
        DataType::Float32 => float_text(f64::from(array.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => float_text(array.as_primitive::<Float64Type>().value(i)),
        DataType::Decimal128(_, scale) => {
            decimal_text(array.as_primitive::<Decimal128Type>().value(i), *scale)
        }
        DataType::Utf8 => array.as_string::<i32>().value(i).to_string(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(i).to_string(),
        DataType::Utf8View => array.as_string_view().value(i).to_string(),
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(i);
            (NaiveDate::default() + chrono::Duration::days(i64::from(days)))
                .format("%Y-%m-%d")
                .to_string()
        }
        DataType::Date64 => {
            let ms = array.as_primitive::<Date64Type>().value(i);
            DateTime::from_timestamp_millis(ms)?
                .date_naive()
                .format("%Y-%m-%d")
                .to_string()
        }
        DataType::Time32(TimeUnit::Second) => {
            time(i64::from(array.as_primitive::<Time32SecondType>().value(i)) * 1_000_000_000)?
        }
        DataType::Time32(_) => {
            time(i64::from(array.as_primitive::<Time32MillisecondType>().value(i)) * 1_000_000)?
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            time(array.as_primitive::<Time64MicrosecondType>().value(i) * 1_000)?
        }
        DataType::Time64(_) => time(array.as_primitive::<Time64NanosecondType>().value(i))?,
        DataType::Timestamp(unit, tz) => {
            let micros = match unit {
                TimeUnit::Second => array
                    .as_primitive::<TimestampSecondType>()
                    .value(i)
                    .checked_mul(1_000_000),
                TimeUnit::Millisecond => array
                    .as_primitive::<TimestampMillisecondType>()
                    .value(i)
                    .checked_mul(1_000),
                TimeUnit::Microsecond => {
                    Some(array.as_primitive::<TimestampMicrosecondType>().value(i))
                }
                TimeUnit::Nanosecond => Some(
                    array
                        .as_primitive::<TimestampNanosecondType>()
                        .value(i)
                        .div_euclid(1_000),
                ),
            };
            ts(micros, tz.is_some())?
        }
        // `readable` admits no other type.
        _ => return None,
    })
}

/// A decimal's text: every digit of the scale (`1250`, 2 → `"12.50"`).
fn decimal_text(unscaled: i128, scale: i8) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale <= 0 {
        let zeros = "0".repeat(scale.unsigned_abs() as usize);
        return if unscaled == 0 {
            "0".into()
        } else {
            format!("{sign}{digits}{zeros}")
        };
    }
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn columns() -> Vec<Column> {
        vec![
            Column::new("id", ColumnType::Int64),
            Column::new("ok", ColumnType::Bool),
            Column::new(
                "amount",
                ColumnType::Decimal {
                    precision: 12,
                    scale: 2,
                },
            ),
            Column::new("big", ColumnType::Numeric),
            Column::new("name", ColumnType::Text),
            Column::new("day", ColumnType::Date),
            Column::new("at", ColumnType::TimestampTz),
            Column::new("local", ColumnType::Timestamp),
            Column::new("score", ColumnType::Float64),
            Column::new("t", ColumnType::Time),
        ]
    }

    #[test]
    fn rows_round_trip_through_a_file_in_small_row_groups() {
        let rows = [
            json!([
                1,
                true,
                "12.50",
                "123456789012345678901234567890.123",
                "한국어 !@9#%8",
                "2025-01-08",
                "2025-01-08T00:00:00Z",
                "2025-01-08T09:00:00",
                0.5,
                "09:30:00.25"
            ]),
            json!([
                2,
                false,
                "-0.05",
                "0",
                "",
                "1970-01-01",
                "2025-01-08 09:00:00+09",
                "2025-01-08 09:00:00.000001",
                "NaN",
                "00:00:00"
            ]),
            json!([3, null, null, null, null, null, null, null, null, null]),
        ];
        let mut w = Writer::new(&columns(), &ParquetFormat::new().row_group_size(2), "t").unwrap();
        let mut file = Vec::new();
        for row in &rows {
            w.push(row.as_array().unwrap()).unwrap();
            file.extend(w.take_output());
        }
        assert_eq!(w.rows(), 3);
        // The first row group went out before the end.
        assert!(!file.is_empty());
        file.extend(w.finish().unwrap());

        let mut tmp = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut tmp, &file).unwrap();
        let mut r = Reader::open(tmp, "t").unwrap();
        assert_eq!(r.columns()[2], "amount");
        assert_eq!(r.types()[2], DataType::Decimal128(12, 2));
        assert_eq!(
            r.types()[6],
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        let mut out = Vec::new();
        while r.next_records(&mut out).unwrap() {}
        let text = |r: &Record| {
            r.iter()
                .map(|c| c.as_deref().unwrap_or("∅").to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            text(&out[0]),
            [
                "1",
                "true",
                "12.50",
                "123456789012345678901234567890.123",
                "한국어 !@9#%8",
                "2025-01-08",
                "2025-01-08T00:00:00Z",
                "2025-01-08T09:00:00",
                "0.5",
                "09:30:00.250"
            ]
        );
        assert_eq!(
            text(&out[1]),
            [
                "2",
                "false",
                "-0.05",
                "0",
                "",
                "1970-01-01",
                "2025-01-08T00:00:00Z",
                "2025-01-08T09:00:00.000001",
                "NaN",
                "00:00:00"
            ]
        );
        assert_eq!(
            out[1][4].as_deref(),
            Some(""),
            "the empty string is not NULL"
        );
        assert!(out[2][1..].iter().all(Option::is_none));
    }

    #[test]
    fn a_value_that_does_not_fit_names_the_column_and_row() {
        let mut w = Writer::new(&columns()[..3], &ParquetFormat::new(), "op").unwrap();
        w.push(json!([1, true, "1.25"]).as_array().unwrap())
            .unwrap();
        let e = w
            .push(json!([2, true, "1.255"]).as_array().unwrap())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            e.message().contains("row 2") && e.message().contains("\"amount\""),
            "{e}"
        );
        let e = w
            .push(json!(["x", true, "1"]).as_array().unwrap())
            .unwrap_err();
        assert!(e.message().contains("not an integer"), "{e}");
        let other = [Column::new("p", ColumnType::Other("POINT".into()))];
        let e = Writer::new(&other, &ParquetFormat::new(), "op").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
    }

    #[test]
    fn pg_binary_rows_in_one_byte_chunks() {
        // Header, (7, 'é', 12.50, NULL), (-1, '', -0.05, 0), trailer.
        let mut copy = PG_COPY_SIGNATURE.to_vec();
        copy.extend([0, 0, 0, 0, 0, 0, 0, 0]);
        let numeric = |weight: i16, sign: u16, dscale: u16, digits: &[u16]| {
            let mut b = (digits.len() as u16).to_be_bytes().to_vec();
            b.extend(weight.to_be_bytes());
            b.extend(sign.to_be_bytes());
            b.extend(dscale.to_be_bytes());
            digits.iter().for_each(|d| b.extend(d.to_be_bytes()));
            b
        };
        let rows: [[Option<Vec<u8>>; 4]; 2] = [
            [
                Some(7i64.to_be_bytes().to_vec()),
                Some("é".as_bytes().to_vec()),
                Some(numeric(0, 0, 2, &[12, 5000])),
                None,
            ],
            [
                Some((-1i64).to_be_bytes().to_vec()),
                Some(Vec::new()),
                Some(numeric(-1, 0x4000, 2, &[500])),
                Some(numeric(0, 0, 0, &[])),
            ],
        ];
        for row in &rows {
            copy.extend(4i16.to_be_bytes());
            for field in row {
                match field {
                    Some(b) => {
                        copy.extend((b.len() as i32).to_be_bytes());
                        copy.extend(b);
                    }
                    None => copy.extend((-1i32).to_be_bytes()),
                }
            }
        }
        copy.extend((-1i16).to_be_bytes());
        let columns = [
            Column::new("id", ColumnType::Int64),
            Column::new("name", ColumnType::Text),
            Column::new(
                "amount",
                ColumnType::Decimal {
                    precision: 12,
                    scale: 2,
                },
            ),
            Column::new("big", ColumnType::Numeric),
        ];
        let mut w = Writer::new(&columns, &ParquetFormat::new(), "t").unwrap();
        let mut d = PgBinary::new();
        for byte in &copy {
            d.feed(std::slice::from_ref(byte));
            w.push_pg_binary(&mut d, u64::MAX).unwrap();
        }
        assert!(d.ended());
        assert_eq!(w.rows(), 2);
        let mut tmp = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut tmp, &w.finish().unwrap()).unwrap();
        let mut out = Vec::new();
        let mut r = Reader::open(tmp, "t").unwrap();
        while r.next_records(&mut out).unwrap() {}
        let cell = |i: usize, j: usize| out[i][j].clone();
        assert_eq!(cell(0, 1).as_deref(), Some("é"));
        assert_eq!(cell(0, 2).as_deref(), Some("12.50"));
        assert_eq!(cell(0, 3), None);
        assert_eq!(cell(1, 0).as_deref(), Some("-1"));
        assert_eq!(cell(1, 1).as_deref(), Some(""));
        assert_eq!(cell(1, 2).as_deref(), Some("-0.05"));
        assert_eq!(cell(1, 3).as_deref(), Some("0"));
        assert_eq!(pg_numeric(&numeric(0, 0, 3, &[1])).unwrap().text(), "1.000");
        assert_eq!(
            pg_numeric(&numeric(-1, 0, 6, &[12])).unwrap().text(),
            "0.001200"
        );
        assert_eq!(
            pg_numeric(&numeric(-2, 0, 8, &[12])).unwrap().text(),
            "0.00000012"
        );
        assert_eq!(
            pg_numeric(&numeric(1, 0, 0, &[1, 0])).unwrap().text(),
            "10000"
        );
        assert!(
            pg_numeric(&numeric(0, 0, 3, &[1]))
                .unwrap()
                .unscaled(2)
                .is_ok()
        );
        assert!(
            pg_numeric(&numeric(-1, 0, 4, &[1234]))
                .unwrap()
                .unscaled(2)
                .is_err()
        );
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal("12.5", 2), Ok(1250));
        assert_eq!(decimal("-0.05", 2), Ok(-5));
        assert_eq!(decimal("7", 0), Ok(7));
        assert_eq!(decimal("1.230", 2), Ok(123));
        assert!(decimal("1.231", 2).is_err());
        assert!(decimal("1e5", 2).is_err());
        assert!(decimal("", 2).is_err());
        assert_eq!(decimal_text(1250, 2), "12.50");
        assert_eq!(decimal_text(-5, 2), "-0.05");
        assert_eq!(decimal_text(7, 0), "7");
        assert_eq!(decimal_text(12, -2), "1200");
    }

    #[test]
    fn nested_and_non_parquet_files_are_refused() {
        let mut tmp = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut tmp, b"a,b\n1,2\n").unwrap();
        let e = Reader::open(tmp, "op").unwrap_err();
        assert!(e.message().contains("not a readable Parquet file"), "{e}");

        let item = Arc::new(Field::new("item", DataType::Int32, true));
        let schema = Arc::new(Schema::new(vec![Field::new(
            "xs",
            DataType::List(item),
            true,
        )]));
        let list = arrow_array::ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(
            vec![Some(1)],
        )]);
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(list)]).unwrap();
        let mut w = ArrowWriter::try_new(Vec::new(), schema, None).unwrap();
        w.write(&batch).unwrap();
        let bytes = w.into_inner().unwrap();
        let mut tmp = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut tmp, &bytes).unwrap();
        let e = Reader::open(tmp, "op").unwrap_err();
        assert!(
            e.message().contains("incompatible Parquet schema") && e.message().contains("\"xs\""),
            "{e}"
        );
    }
}
