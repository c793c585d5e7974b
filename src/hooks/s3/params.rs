//! Parameter types of the Airflow-parity methods, and their stream helpers.

use bytes::Bytes;
use futures::stream::StreamExt;
use tokio::io::AsyncReadExt;

use super::multipart::Upload;
use crate::error::{Error, ErrorKind};
use crate::hooks::object_store::{BytesStream, ListOptions};

/// Options of `load_*`. Defaults follow Airflow: **`replace = false`**.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Overwrite an existing key (Airflow's `replace`, default `false`).
    pub replace: bool,
    /// Server-side encryption with S3-managed keys (`AES256`), Airflow's `encrypt`.
    pub encrypt: bool,
    /// Gzip the data before upload (Airflow's `gzip` / `compression="gzip"`).
    pub gzip: bool,
    /// The object's `Content-Type`.
    pub content_type: Option<String>,
}

impl LoadOptions {
    /// Airflow's defaults: no replace, no encryption, no compression.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `replace`.
    pub fn replace(mut self, on: bool) -> Self {
        self.replace = on;
        self
    }
    /// Sets `encrypt`.
    pub fn encrypt(mut self, on: bool) -> Self {
        self.encrypt = on;
        self
    }
    /// Sets `gzip`.
    pub fn gzip(mut self, on: bool) -> Self {
        self.gzip = on;
        self
    }
    /// Sets the content type.
    pub fn content_type(mut self, ct: impl Into<String>) -> Self {
        self.content_type = Some(ct.into());
        self
    }
    pub(super) fn upload(&self) -> Upload {
        Upload {
            replace: self.replace,
            content_type: self.content_type.clone(),
            encrypt: self.encrypt,
        }
    }
}

/// Parameters of `list_keys` / `list_prefixes` (Airflow's names).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ListKeys {
    /// Key prefix; with `apply_wildcard`, a pattern where `*` and `?` match any text / one character.
    pub prefix: String,
    /// Delimiter (Airflow's `delimiter`).
    pub delimiter: String,
    /// Start after this key (Airflow's `start_after_key`).
    pub start_after_key: String,
    /// Keys per request.
    pub page_size: Option<u32>,
    /// Stop after this many results.
    pub max_items: Option<usize>,
    /// Treat `*` and `?` in `prefix` as wildcards over the whole key.
    pub apply_wildcard: bool,
}

impl ListKeys {
    /// Every key of the bucket.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the prefix.
    pub fn prefix(mut self, p: impl Into<String>) -> Self {
        self.prefix = p.into();
        self
    }
    /// Sets the delimiter.
    pub fn delimiter(mut self, d: impl Into<String>) -> Self {
        self.delimiter = d.into();
        self
    }
    /// Sets the key to start after.
    pub fn start_after_key(mut self, k: impl Into<String>) -> Self {
        self.start_after_key = k.into();
        self
    }
    /// Sets the page size.
    pub fn page_size(mut self, n: u32) -> Self {
        self.page_size = Some(n);
        self
    }
    /// Sets the maximum number of results.
    pub fn max_items(mut self, n: usize) -> Self {
        self.max_items = Some(n);
        self
    }
    /// Turns wildcard matching on.
    pub fn apply_wildcard(mut self, on: bool) -> Self {
        self.apply_wildcard = on;
        self
    }

    pub(crate) fn list_options(&self) -> ListOptions {
        let prefix = if self.apply_wildcard {
            // List the literal part before the first wildcard, then match.
            let end = self.prefix.find(['*', '?']).unwrap_or(self.prefix.len());
            &self.prefix[..end]
        } else {
            &self.prefix
        };
        let mut o = ListOptions::new()
            .prefix(prefix)
            .delimiter(self.delimiter.clone())
            .start_after(self.start_after_key.clone());
        o.page_size = self.page_size;
        o
    }
}

/// The operation a presigned URL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresignMethod {
    /// `get_object`: download.
    GetObject,
    /// `put_object`: upload.
    PutObject,
}

/// `fnmatch` for `*` and `?` (Airflow matches wildcard keys with `fnmatch`).
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

pub(super) fn bad_url(url: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "s3.parse_s3_url",
        format!("{why}, e.g. s3://bucket/key"),
    )
    .with("url", url)
}

/// gzip-compresses a stream chunk by chunk, with bounded memory.
pub(super) fn gzip_stream(input: BytesStream) -> BytesStream {
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;
    let enc = GzEncoder::new(Vec::new(), Compression::default());
    futures::stream::try_unfold((input, Some(enc)), |(mut input, enc)| async move {
        let Some(mut enc) = enc else {
            return Ok(None);
        };
        loop {
            match input.next().await {
                Some(chunk) => {
                    enc.write_all(&chunk?)?;
                    if !enc.get_ref().is_empty() {
                        let out = std::mem::take(enc.get_mut());
                        return Ok(Some((Bytes::from(out), (input, Some(enc)))));
                    }
                }
                None => return Ok(Some((Bytes::from(enc.finish()?), (input, None)))),
            }
        }
    })
    .boxed()
}

/// A file as a stream of 1 MiB chunks.
pub(crate) fn file_stream(file: tokio::fs::File) -> BytesStream {
    futures::stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 1 << 20];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), file)))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("data/*.csv", "data/a.csv"));
        assert!(wildcard_match("data/*.csv", "data/x/a.csv")); // fnmatch's * crosses '/'
        assert!(wildcard_match("d?t*", "data"));
        assert!(!wildcard_match("data/*.csv", "data/a.json"));
        assert!(!wildcard_match("a", "ab"));
        let o = ListKeys::new()
            .prefix("raw/2025-*/x.csv")
            .apply_wildcard(true)
            .list_options();
        assert_eq!(o.prefix.as_deref(), Some("raw/2025-"));
    }
}
