//! File formats, streamed: what transfers read from and write to object stores.
//!
//! Each format is a writer and a reader that work chunk by chunk, so a transfer's
//! memory stays flat whatever the size of the data.

pub mod csv;
pub mod jsonl;

use csv::CsvFormat;

/// The format of an object a transfer reads or writes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileFormat {
    /// CSV in the given dialect.
    Csv(CsvFormat),
    /// JSON Lines: one object per line (Airflow's `file_format="json"`).
    JsonLines,
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

/// The key suffixes a format is known by, longest first so `.csv.gz` wins
/// over `.gz`.
const SUFFIXES: &[(&str, bool)] = &[
    (".jsonl.gz", false),
    (".ndjson.gz", false),
    (".json.gz", false),
    (".csv.gz", true),
    (".jsonl", false),
    (".ndjson", false),
    (".json", false),
    (".csv", true),
];

impl FileFormat {
    /// The format a key's suffix names — `.csv` (default dialect), `.jsonl`,
    /// `.ndjson` or `.json` (JSON Lines), each optionally followed by `.gz` —
    /// or `None`.
    pub fn from_key(key: &str) -> Option<FileFormat> {
        let lower = key.to_ascii_lowercase();
        SUFFIXES
            .iter()
            .find(|(s, _)| lower.ends_with(s))
            .map(|&(_, csv)| {
                if csv {
                    FileFormat::default()
                } else {
                    FileFormat::JsonLines
                }
            })
    }

    /// The format's name in XCom and logs: `csv` or `jsonl`.
    pub fn name(&self) -> &'static str {
        match self {
            FileFormat::Csv(_) => "csv",
            FileFormat::JsonLines => "jsonl",
        }
    }

    /// The key suffix of the format, `.csv` or `.jsonl`.
    pub fn extension(&self) -> &'static str {
        match self {
            FileFormat::Csv(_) => ".csv",
            FileFormat::JsonLines => ".jsonl",
        }
    }

    /// The object's `Content-Type`.
    pub fn content_type(&self) -> &'static str {
        match self {
            FileFormat::Csv(_) => "text/csv",
            FileFormat::JsonLines => "application/x-ndjson",
        }
    }
}

/// Splits a key into its stem and a known format suffix (`.csv`, `.csv.gz`,
/// `.jsonl`…; empty when none): `"d/t.csv.gz"` → `("d/t", ".csv.gz")`.
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
        assert_eq!(split_suffix("d/t.csv.gz"), ("d/t", ".csv.gz"));
        assert_eq!(split_suffix("d/t.jsonl"), ("d/t", ".jsonl"));
        assert_eq!(split_suffix("d/t"), ("d/t", ""));
        assert_eq!(split_suffix("d/t.gz"), ("d/t.gz", ""));
    }
}
