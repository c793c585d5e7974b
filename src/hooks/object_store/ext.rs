//! Airflow's vocabulary over any [`ObjectStore`]: `s3://` URLs, `list_keys`
//! parameters with `fnmatch` wildcards, and [`ObjectStoreExt`], the conveniences
//! built on the trait (object_store's `ObjectStoreExt` pattern) — the same code
//! for `S3Hook`, `MemoryStore` and `LocalStore`.

use futures::stream::{BoxStream, StreamExt, TryStreamExt};

use super::{ListEntry, ListOptions, ObjectStore};
use crate::error::{Error, ErrorKind, Result};

/// Airflow's `parse_s3_url`: `(bucket, key)` of `s3://`, `s3a://`, `s3n://`
/// URLs and of path-style (`https://s3.region.amazonaws.com/bucket/key`) and
/// virtual-hosted (`https://bucket.s3.region.amazonaws.com/key`) HTTPS URLs.
/// The key may be empty (a bucket URL).
pub fn parse_s3_url(url: &str) -> Result<(String, String)> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad_url(url, "not an S3 URL"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (bucket, key) = match scheme.to_ascii_lowercase().as_str() {
        "s3" | "s3a" | "s3n" => (host, path),
        "http" | "https" => {
            let labels: Vec<&str> = host.split('.').collect();
            if labels
                .first()
                .is_some_and(|l| *l == "s3" || l.starts_with("s3-"))
            {
                path.split_once('/').unwrap_or((path, ""))
            } else if labels.len() > 2 && labels[1] == "s3" {
                (labels[0], path)
            } else {
                return Err(bad_url(
                    url,
                    "not a path-style or virtual-hosted S3 URL (https://bucket.s3.region.amazonaws.com/key)",
                ));
            }
        }
        _ => return Err(bad_url(url, "the scheme is not s3, s3a, s3n or https")),
    };
    if bucket.is_empty() {
        return Err(bad_url(url, "the URL names no bucket"));
    }
    Ok((bucket.to_string(), key.to_string()))
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

fn bad_url(url: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "s3.parse_s3_url",
        format!("{why}, e.g. s3://bucket/key"),
    )
    .with("url", url)
}

/// Conveniences over any [`ObjectStore`], with Airflow's names. Implemented for
/// every store; do not implement it yourself.
pub trait ObjectStoreExt: ObjectStore {
    /// Airflow's `list_keys` as a stream, fetched page by page (nothing held in
    /// memory): the keys under `q.prefix`, or matching it as a wildcard pattern,
    /// at most `q.max_items`.
    fn list_keys_stream<'a>(
        &'a self,
        bucket: &'a str,
        q: &ListKeys,
    ) -> BoxStream<'a, Result<String>> {
        let pattern = q.apply_wildcard.then(|| q.prefix.clone());
        let keys = self
            .list(bucket, q.list_options())
            .try_filter_map(move |e| {
                let keep = match e {
                    ListEntry::Object(m)
                        if pattern.as_deref().is_none_or(|p| wildcard_match(p, &m.key)) =>
                    {
                        Some(m.key)
                    }
                    _ => None,
                };
                futures::future::ready(Ok(keep))
            });
        match q.max_items {
            Some(n) => keys.take(n).boxed(),
            None => keys.boxed(),
        }
    }
}

impl<T: ObjectStore + ?Sized> ObjectStoreExt for T {}

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
