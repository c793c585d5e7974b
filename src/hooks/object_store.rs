//! [`ObjectStore`]: the small async trait every object store implements (feature
//! `object-store`, which the `s3` feature includes; it compiles no AWS crate).
//!
//! Three implementations share it: [`S3Hook`](crate::hooks::s3::S3Hook) for AWS
//! and S3-compatible servers, [`MemoryStore`] for unit tests, and [`LocalStore`]
//! (one directory per bucket) for development without a server. Operators take
//! any of them, so a pipeline is unit-tested against `MemoryStore` and runs
//! unchanged against S3. One conformance suite (`tests/object_store.rs`) runs
//! against all of them.
//!
//! # The key rule
//!
//! A key starting with `/` is a classic pipeline breaker: S3 accepts
//! `/iris1.csv` as a *different* key from `iris1.csv`, so the read fails far from
//! the typo. gust therefore accepts only **canonical keys**: one or more non-empty
//! segments joined by single `/`. Every store rejects, with a typed
//! [`InvalidInput`](crate::ErrorKind::InvalidInput) error naming the key,
//!
//! * an empty key,
//! * a leading `/` (`/iris1.csv`) — nothing is stripped silently, the typo is reported,
//! * a trailing `/` (`dir/`, a "folder marker") and repeated slashes (`a//b`),
//! * `.` and `..` segments, and control characters,
//! * keys longer than 1024 bytes (S3's limit).
//!
//! The rule is the same for every store, so a key that works on `LocalStore`
//! (where segments are directories) works on S3 and back. List *prefixes* may end
//! with `/` (`data/`) but may not start with one.

mod ext;
mod local;
mod memory;

use std::fmt;
use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};

use crate::error::{Error, ErrorKind, Result};

pub use ext::{ListKeys, ObjectStoreExt, parse_s3_url};
pub use local::LocalStore;
pub use memory::MemoryStore;

/// A stream of byte chunks: the body of a streamed upload or download.
pub type BytesStream = BoxStream<'static, Result<Bytes>>;

/// S3's limit on the length of a key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// How many keys S3 deletes in one `DeleteObjects` request; larger batches are chunked.
pub const DELETE_BATCH: usize = 1000;

/// Options of a put.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PutOptions {
    /// Overwrite an existing object (default `true`). With `false` the put fails
    /// with [`AlreadyExists`](crate::ErrorKind::AlreadyExists) when the key exists,
    /// atomically (a conditional write, not a check followed by a write).
    pub replace: bool,
    /// The object's `Content-Type`.
    pub content_type: Option<String>,
}

impl Default for PutOptions {
    fn default() -> Self {
        PutOptions {
            replace: true,
            content_type: None,
        }
    }
}

impl PutOptions {
    /// Default options: replace, no content type.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets whether an existing object may be overwritten.
    pub fn replace(mut self, replace: bool) -> Self {
        self.replace = replace;
        self
    }

    /// Sets the content type.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }
}

/// What a put stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    /// Bytes written.
    pub size: u64,
    /// The entity tag, when the store reports one.
    pub e_tag: Option<String>,
}

/// Metadata of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, when the store reports one.
    pub last_modified: Option<DateTime<Utc>>,
    /// The entity tag, when the store reports one.
    pub e_tag: Option<String>,
    /// The content type, when the store keeps one (`head` only; listings leave it out).
    pub content_type: Option<String>,
}

/// Options of a listing: S3's `ListObjectsV2` parameters.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ListOptions {
    /// Only keys starting with this prefix.
    pub prefix: Option<String>,
    /// Roll keys up to their first `delimiter` after the prefix into [`ListEntry::Prefix`].
    pub delimiter: Option<String>,
    /// Only keys sorting after this one.
    pub start_after: Option<String>,
    /// Keys per request (S3 caps it at 1000); the stream fetches pages as it is read.
    pub page_size: Option<u32>,
}

impl ListOptions {
    /// No prefix, no delimiter: every key of the bucket.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into()).filter(|p: &String| !p.is_empty());
        self
    }

    /// Sets the delimiter.
    pub fn delimiter(mut self, delimiter: impl Into<String>) -> Self {
        self.delimiter = Some(delimiter.into()).filter(|d: &String| !d.is_empty());
        self
    }

    /// Sets the key to start after.
    pub fn start_after(mut self, key: impl Into<String>) -> Self {
        self.start_after = Some(key.into()).filter(|k: &String| !k.is_empty());
        self
    }

    /// Sets the page size.
    pub fn page_size(mut self, n: u32) -> Self {
        self.page_size = Some(n);
        self
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListEntry {
    /// An object.
    Object(ObjectMeta),
    /// A common prefix (a "directory") rolled up by the delimiter, delimiter included.
    Prefix(String),
}

/// A key a batch delete could not delete, with the store's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteFailure {
    /// The key.
    pub key: String,
    /// The store's error code (`AccessDenied`, …).
    pub code: String,
    /// The store's message.
    pub message: String,
}

/// The outcome of a batch delete: deleting a missing key succeeds, as in S3.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteReport {
    /// Keys deleted (or already absent).
    pub deleted: Vec<String>,
    /// Keys that could not be deleted.
    pub errors: Vec<DeleteFailure>,
}

/// An async object store. See the [module docs](self) for the key rule.
///
/// Errors are [`crate::Error`]s whose context names the bucket and key; a missing
/// bucket or key is [`NotFound`](ErrorKind::NotFound).
#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// Creates `bucket`; `Ok(false)` when it existed already (idempotent).
    async fn create_bucket(&self, bucket: &str) -> Result<bool>;

    /// Stores `data` under `key`.
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        opts: &PutOptions,
    ) -> Result<PutResult>;

    /// Stores a stream of unknown length with bounded memory. When the stream
    /// fails, nothing is stored and nothing partial remains.
    async fn put_stream(
        &self,
        bucket: &str,
        key: &str,
        data: BytesStream,
        opts: &PutOptions,
    ) -> Result<PutResult>;

    /// The whole object as a stream of chunks.
    async fn get_stream(&self, bucket: &str, key: &str) -> Result<BytesStream>;

    /// The whole object in memory.
    async fn get(&self, bucket: &str, key: &str) -> Result<Bytes> {
        let chunks: Vec<Bytes> = self.get_stream(bucket, key).await?.try_collect().await?;
        Ok(chunks.concat().into())
    }

    /// Bytes `range.start..range.end` of the object; the end is clamped to its size.
    /// An empty range, or one starting at or past the end, is
    /// [`InvalidInput`](ErrorKind::InvalidInput).
    async fn get_range(&self, bucket: &str, key: &str, range: Range<u64>) -> Result<Bytes>;

    /// The object's metadata.
    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta>;

    /// Whether the object exists (a missing bucket counts as a missing object, as
    /// S3's `HEAD` cannot tell them apart).
    async fn exists(&self, bucket: &str, key: &str) -> Result<bool> {
        match self.head(bucket, key).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Objects and common prefixes in key order, fetched page by page as the
    /// stream is read.
    fn list<'a>(&'a self, bucket: &'a str, opts: ListOptions) -> BoxStream<'a, Result<ListEntry>>;

    /// Copies an object, within or across buckets.
    async fn copy(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
    ) -> Result<()>;

    /// Deletes `keys` (any number: stores chunk them), reporting per-key failures.
    async fn delete(&self, bucket: &str, keys: &[String]) -> Result<DeleteReport>;
}

/// Checks `key` against the [key rule](self#the-key-rule); the `Err` says why.
pub fn check_key(key: &str) -> std::result::Result<(), &'static str> {
    if key.is_empty() {
        return Err("the key is empty");
    }
    if key.len() > MAX_KEY_LEN {
        return Err("the key is longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return Err("the key starts with '/' (write `dir/file`, not `/dir/file`)");
    }
    if key.ends_with('/') {
        return Err("the key ends with '/'");
    }
    if key.chars().any(char::is_control) {
        return Err("the key contains a control character");
    }
    for segment in key.split('/') {
        match segment {
            "" => return Err("the key contains '//'"),
            "." | ".." => return Err("the key contains a '.' or '..' segment"),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a bucket name: non-empty, at most 255 characters of `[A-Za-z0-9._-]`,
/// not starting with `.` (S3's own rules are stricter; the server enforces those).
pub fn check_bucket(bucket: &str) -> std::result::Result<(), &'static str> {
    if bucket.is_empty() {
        return Err("the bucket name is empty");
    }
    if bucket.len() > 255
        || bucket.starts_with('.')
        || !bucket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err("the bucket name is not a valid S3 bucket name");
    }
    Ok(())
}

/// Validates bucket and key for `operation`, as a typed error naming both.
pub(crate) fn validate(operation: &'static str, bucket: &str, key: Option<&str>) -> Result<()> {
    let bad = |msg: &str| {
        let e = Error::new(ErrorKind::InvalidInput, operation, msg).with("bucket", bucket);
        match key {
            Some(k) => e.with("key", k),
            None => e,
        }
    };
    check_bucket(bucket).map_err(bad)?;
    if let Some(k) = key {
        check_key(k).map_err(bad)?;
    }
    Ok(())
}

/// Validates list options: a prefix may end with `/` but not start with one.
pub(crate) fn validate_list(
    operation: &'static str,
    bucket: &str,
    opts: &ListOptions,
) -> Result<()> {
    validate(operation, bucket, None)?;
    if let Some(p) = &opts.prefix
        && p.starts_with('/')
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            operation,
            "the prefix starts with '/' (write `dir/`, not `/dir/`)",
        )
        .with("bucket", bucket)
        .with("prefix", p));
    }
    Ok(())
}

/// Validates a byte range against an object size and clamps its end.
pub(crate) fn clamp_range(
    range: &Range<u64>,
    size: u64,
) -> std::result::Result<Range<u64>, String> {
    if range.start >= range.end {
        return Err(format!("the range {}..{} is empty", range.start, range.end));
    }
    if range.start >= size {
        return Err(format!(
            "the range {}..{} starts at or past the end of the object ({size} bytes)",
            range.start, range.end
        ));
    }
    Ok(range.start..range.end.min(size))
}

/// Applies S3's listing semantics (prefix, start_after, delimiter roll-up) to
/// objects already sorted by key. Used by the in-process stores.
pub(crate) fn list_sorted(objects: Vec<ObjectMeta>, opts: &ListOptions) -> Vec<ListEntry> {
    let prefix = opts.prefix.as_deref().unwrap_or("");
    let mut out: Vec<ListEntry> = Vec::new();
    for meta in objects {
        if !meta.key.starts_with(prefix) {
            continue;
        }
        if opts
            .start_after
            .as_deref()
            .is_some_and(|s| meta.key.as_str() <= s)
        {
            continue;
        }
        let rest = &meta.key[prefix.len()..];
        match opts
            .delimiter
            .as_deref()
            .and_then(|d| rest.find(d).map(|i| i + d.len()))
        {
            Some(end) => {
                let common = &meta.key[..prefix.len() + end];
                // Keys are sorted, so a repeated prefix is always the last entry.
                if !matches!(out.last(), Some(ListEntry::Prefix(p)) if p == common) {
                    out.push(ListEntry::Prefix(common.to_string()));
                }
            }
            None => out.push(ListEntry::Object(meta)),
        }
    }
    out
}

/// A stream over a listing computed in one go.
pub(crate) fn stream_entries<'a>(
    entries: Result<Vec<ListEntry>>,
) -> BoxStream<'a, Result<ListEntry>> {
    match entries {
        Ok(v) => futures::stream::iter(v.into_iter().map(Ok)).boxed(),
        Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
    }
}

/// A weak, non-cryptographic entity tag for the in-process stores.
pub(crate) fn weak_etag(data: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    format!("\"{:016x}\"", h.finish())
}

/// gzip-compresses a stream chunk by chunk, with bounded memory (S3's `load_*`
/// with `gzip`, the transfers' `.gz` objects).
#[cfg_attr(
    not(any(
        feature = "s3",
        feature = "postgres",
        feature = "mysql",
        feature = "sqlite"
    )),
    allow(dead_code)
)]
pub(crate) fn gzip_stream(input: BytesStream) -> BytesStream {
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

/// `reader`'s bytes as a stream of chunks of at most 64 KiB, read into one
/// reused buffer: each chunk is split off it (no zeroed buffer per read), and a
/// small read keeps at most that 64 KiB block alive, shared with the next reads.
/// A failed read ends the stream with its error.
#[cfg_attr(
    not(any(
        feature = "s3",
        feature = "postgres",
        feature = "mysql",
        feature = "sqlite"
    )),
    allow(dead_code)
)]
pub(crate) fn reader_stream(reader: impl tokio::io::AsyncRead + Send + 'static) -> BytesStream {
    use tokio::io::AsyncReadExt;
    const CHUNK: usize = 64 * 1024;
    let state = (Box::pin(reader), bytes::BytesMut::new());
    futures::stream::try_unfold(state, |(mut reader, mut buf)| async move {
        buf.reserve(CHUNK);
        if reader.read_buf(&mut buf).await? == 0 {
            return Ok(None);
        }
        Ok(Some((buf.split().freeze(), (reader, buf))))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reader_stream_yields_the_whole_input_in_bounded_chunks() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let chunks: Vec<Bytes> = reader_stream(std::io::Cursor::new(data.clone()))
            .try_collect()
            .await
            .unwrap();
        assert!(chunks.len() >= 4, "{} chunks", chunks.len());
        assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= 64 * 1024));
        assert_eq!(chunks.concat(), data);
        let empty: Vec<Bytes> = reader_stream(tokio::io::empty())
            .try_collect()
            .await
            .unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn key_rule() {
        for ok in [
            "a",
            "iris1.csv",
            "dir/file",
            "a/b/c.d",
            "x y/ü.txt",
            ".hidden/a",
        ] {
            assert_eq!(check_key(ok), Ok(()), "{ok}");
        }
        for bad in ["", "/iris1.csv", "dir/", "a//b", "a/./b", "../a", "a\nb"] {
            assert!(check_key(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(check_key(&"k".repeat(MAX_KEY_LEN)).is_ok());
        assert!(check_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn bucket_rule() {
        assert!(check_bucket("team06-mlflow-feature").is_ok());
        for bad in ["", ".tmp", "a/b", "a b"] {
            assert!(check_bucket(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn validate_names_bucket_and_key() {
        let e = validate("object_store.put", "b", Some("/iris1.csv")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.context("key"), Some("/iris1.csv"));
        assert_eq!(e.context("bucket"), Some("b"));
    }

    #[test]
    fn range_rules() {
        assert_eq!(clamp_range(&(2..100), 10), Ok(2..10));
        assert!(clamp_range(&(10..11), 10).is_err());
        assert!(clamp_range(&(3..3), 10).is_err());
    }

    fn meta(key: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.into(),
            size: 0,
            last_modified: None,
            e_tag: None,
            content_type: None,
        }
    }

    #[test]
    fn listing_semantics() {
        let objs = ["a/1", "a/2", "a/b/3", "b", "c/4"].map(meta).to_vec();
        let got = list_sorted(objs.clone(), &ListOptions::new().delimiter("/"));
        let names: Vec<String> = got
            .iter()
            .map(|e| match e {
                ListEntry::Object(m) => m.key.clone(),
                ListEntry::Prefix(p) => format!("P:{p}"),
            })
            .collect();
        assert_eq!(names, ["P:a/", "b", "P:c/"]);
        let got = list_sorted(
            objs.clone(),
            &ListOptions::new().prefix("a/").delimiter("/"),
        );
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], ListEntry::Prefix("a/b/".into()));
        let got = list_sorted(objs, &ListOptions::new().start_after("a/b/3"));
        assert_eq!(
            got,
            vec![ListEntry::Object(meta("b")), ListEntry::Object(meta("c/4"))]
        );
    }
}
