//! File formats, streamed: what transfers read from and write to object stores.
//!
//! Each format is a writer and a reader that work chunk by chunk, so a transfer's
//! memory stays flat whatever the size of the data.

pub mod csv;
#[cfg(feature = "object-store")]
pub(crate) mod decode;
pub mod jsonl;
#[cfg(feature = "mnist")]
#[cfg_attr(docsrs, doc(cfg(feature = "mnist")))]
pub mod mnist;
#[cfg(feature = "parquet")]
#[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
pub mod parquet;
#[cfg(feature = "object-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "object-store")))]
pub mod recordio;

use csv::CsvFormat;

/// A column of a query's result: its name and type, as the database describes
/// it before the query runs (see `SqlHook::describe`). Typed formats (Parquet)
/// take their schema from it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Column {
    /// The column's name in the result.
    pub name: String,
    /// Its type.
    pub ty: ColumnType,
}

impl Column {
    /// A column named `name` of type `ty`.
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Self {
        Column {
            name: name.into(),
            ty,
        }
    }
}

/// The type of a result column, across databases. Each variant is what the
/// row mapping of `hooks::sql` yields for it (a `NUMERIC` as a string of its
/// exact digits, a `DATE` as `YYYY-MM-DD`…).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ColumnType {
    /// `boolean`.
    Bool,
    /// `smallint`, MySQL's `TINYINT`/`SMALLINT`.
    Int16,
    /// `integer`, MySQL's `MEDIUMINT`/`INT`.
    Int32,
    /// `bigint`, SQLite's `INTEGER`.
    Int64,
    /// `real`, MySQL's `FLOAT`.
    Float32,
    /// `double precision`, SQLite's `REAL`.
    Float64,
    /// `numeric(precision, scale)`, MySQL's `DECIMAL(p, s)`.
    Decimal {
        /// Total digits.
        precision: u32,
        /// Digits after the point.
        scale: u32,
    },
    /// `numeric` without a declared precision: exact digits of any length.
    Numeric,
    /// Text of any length (`text`, `varchar`, `char`…).
    Text,
    /// `date`.
    Date,
    /// `time` (without a zone).
    Time,
    /// `timestamp` without a zone (MySQL's `DATETIME`).
    Timestamp,
    /// `timestamptz`, an instant (MySQL's `TIMESTAMP`, read as UTC).
    TimestampTz,
    /// `json`/`jsonb`.
    Json,
    /// `bytea`, `BLOB`.
    Bytes,
    /// A type gust does not map, by the database's name for it.
    Other(String),
}

/// The format of an object a transfer reads or writes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileFormat {
    /// CSV in the given dialect.
    Csv(CsvFormat),
    /// JSON Lines: one object per line (Airflow's `file_format="json"`).
    JsonLines,
    /// Parquet, with typed columns (feature `parquet`).
    #[cfg(feature = "parquet")]
    #[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
    Parquet(parquet::ParquetFormat),
}

impl Default for FileFormat {
    /// CSV in the default dialect.
    fn default() -> Self {
        FileFormat::Csv(CsvFormat::default())
    }
}

impl From<CsvFormat> for FileFormat {
    fn from(format: CsvFormat) -> Self {
        FileFormat::Csv(format)
    }
}

#[cfg(feature = "parquet")]
impl From<parquet::ParquetFormat> for FileFormat {
    fn from(format: parquet::ParquetFormat) -> Self {
        FileFormat::Parquet(format)
    }
}

/// The kinds of format a key suffix names.
#[derive(Clone, Copy)]
enum Kind {
    Csv,
    Jsonl,
    Parquet,
}

/// The key suffixes a format is known by, longest first so `.csv.gz` wins
/// over `.gz`. Parquet compresses inside the file: it has no `.gz` form.
const SUFFIXES: &[(&str, Kind)] = &[
    (".jsonl.gz", Kind::Jsonl),
    (".ndjson.gz", Kind::Jsonl),
    (".json.gz", Kind::Jsonl),
    (".csv.gz", Kind::Csv),
    (".jsonl", Kind::Jsonl),
    (".ndjson", Kind::Jsonl),
    (".json", Kind::Jsonl),
    (".csv", Kind::Csv),
    (".parquet", Kind::Parquet),
];

impl FileFormat {
    /// The format a key's suffix names — `.csv` (default dialect), `.jsonl`,
    /// `.ndjson` or `.json` (JSON Lines), each optionally followed by `.gz`,
    /// or `.parquet` (with the feature `parquet`) — or `None`.
    pub fn from_key(key: &str) -> Option<FileFormat> {
        let lower = key.to_ascii_lowercase();
        let (_, kind) = SUFFIXES.iter().find(|(s, _)| lower.ends_with(s))?;
        match kind {
            Kind::Csv => Some(FileFormat::default()),
            Kind::Jsonl => Some(FileFormat::JsonLines),
            #[cfg(feature = "parquet")]
            Kind::Parquet => Some(FileFormat::Parquet(Default::default())),
            #[cfg(not(feature = "parquet"))]
            Kind::Parquet => None,
        }
    }

    /// The format's name in XCom and logs: `csv`, `jsonl` or `parquet`.
    pub fn name(&self) -> &'static str {
        match self {
            FileFormat::Csv(_) => "csv",
            FileFormat::JsonLines => "jsonl",
            #[cfg(feature = "parquet")]
            FileFormat::Parquet(_) => "parquet",
        }
    }

    /// The key suffix of the format: `.csv`, `.jsonl` or `.parquet`.
    pub fn extension(&self) -> &'static str {
        match self {
            FileFormat::Csv(_) => ".csv",
            FileFormat::JsonLines => ".jsonl",
            #[cfg(feature = "parquet")]
            FileFormat::Parquet(_) => ".parquet",
        }
    }

    /// The object's `Content-Type`.
    pub fn content_type(&self) -> &'static str {
        match self {
            FileFormat::Csv(_) => "text/csv",
            FileFormat::JsonLines => "application/x-ndjson",
            #[cfg(feature = "parquet")]
            FileFormat::Parquet(_) => "application/vnd.apache.parquet",
        }
    }
}

/// Every row of the object at `url` (`s3://bucket/key`) as a JSON object,
/// in `format` or the one its key's suffix names (CSV by default; `.gz`
/// gunzipped): a CSV record or Parquet row by its header's names, its cells
/// as strings (NULL as `null`); a JSON Lines object as it is. For data that
/// fits in memory — a training set; the transfers stream instead. A missing
/// object is [`ErrorKind::NotFound`](crate::ErrorKind::NotFound); an empty
/// one, or a record that does not fit the header, is
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming the
/// object.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gust::Result<()> {
/// use gust::hooks::object_store::{MemoryStore, ObjectStore, PutOptions};
///
/// let store = MemoryStore::new();
/// store.create_bucket("raw").await?;
/// let csv = "a;species\n1.5;setosa\n;virginica\n";
/// store.put("raw", "iris.csv", csv.into(), &PutOptions::new()).await?;
/// let format = gust::formats::csv::CsvFormat::new().delimiter(b';');
/// let rows = gust::formats::read_object_rows(&store, "s3://raw/iris.csv", Some(format.into())).await?;
/// assert_eq!(rows[0]["a"], "1.5");
/// assert_eq!(rows[1]["species"], "virginica");
/// # Ok(()) }
/// ```
#[cfg(feature = "object-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "object-store")))]
pub async fn read_object_rows(
    store: &dyn crate::hooks::object_store::ObjectStore,
    url: &str,
    format: Option<FileFormat>,
) -> crate::Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    const OP: &str = "formats.read_object_rows";
    let (bucket, key) = crate::hooks::object_store::parse_s3_url(url)?;
    let format = format
        .or_else(|| FileFormat::from_key(&key))
        .unwrap_or_default();
    let name = |e: crate::Error| e.with("bucket", &bucket).with("key", &key);
    let body = store.get_stream(&bucket, &key).await.map_err(name)?;
    let rows = decode::read_rows(body, &format, key.ends_with(".gz"), OP)
        .await
        .map_err(name)?;
    tracing::info!(%bucket, %key, format = format.name(), rows = rows.len(), "object rows read");
    Ok(rows)
}

/// Splits a key into its stem and a known format suffix (`.csv`, `.csv.gz`,
/// `.jsonl`, `.parquet`…; empty when none): `"d/t.csv.gz"` → `("d/t", ".csv.gz")`.
pub fn split_suffix(key: &str) -> (&str, &str) {
    let lower = key.to_ascii_lowercase();
    match SUFFIXES.iter().find(|(s, _)| lower.ends_with(s)) {
        Some((s, _)) => key.split_at(key.len() - s.len()),
        None => (key, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_stems_from_keys() {
        assert_eq!(FileFormat::from_key("a/b.CSV"), Some(FileFormat::default()));
        assert_eq!(
            FileFormat::from_key("a/b.csv.gz"),
            Some(FileFormat::default())
        );
        assert_eq!(
            FileFormat::from_key("a/b.ndjson"),
            Some(FileFormat::JsonLines)
        );
        assert_eq!(
            FileFormat::from_key("a/b.json.gz"),
            Some(FileFormat::JsonLines)
        );
        assert_eq!(FileFormat::from_key("a/b.txt"), None);
        #[cfg(feature = "parquet")]
        assert_eq!(
            FileFormat::from_key("a/b.PARQUET").map(|f| f.name()),
            Some("parquet")
        );
        assert_eq!(split_suffix("d/t.parquet"), ("d/t", ".parquet"));
        assert_eq!(split_suffix("d/t.csv.gz"), ("d/t", ".csv.gz"));
        assert_eq!(split_suffix("d/t.jsonl"), ("d/t", ".jsonl"));
        assert_eq!(split_suffix("d/t"), ("d/t", ""));
        assert_eq!(split_suffix("d/t.gz"), ("d/t.gz", ""));
    }
}
