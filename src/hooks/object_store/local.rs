//! [`LocalStore`]: one directory per bucket on the local filesystem.
//!
//! Writes go to a temporary file under `<root>/.gust-tmp/` and are moved into
//! place with one `rename` (or a `hard_link` for `replace=false`, which fails
//! atomically when the key exists), so a reader never sees half an object and a
//! failed write leaves nothing behind. Bucket names cannot start with `.`, so the
//! temporary directory never collides with a bucket.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::memory::already_exists;
use super::{
    BytesStream, DeleteReport, ListEntry, ListOptions, ObjectMeta, ObjectStore, PutOptions,
    PutResult, clamp_range, list_sorted, stream_entries, validate, validate_list,
};
use crate::error::{Error, ErrorKind, Result};

const TMP_DIR: &str = ".gust-tmp";
const READ_CHUNK: usize = 256 * 1024;

/// An [`ObjectStore`] on the local filesystem: bucket `b`, key `x/y.csv` is the
/// file `<root>/b/x/y.csv`.
///
/// Because segments are directories, a key cannot also be a "directory" of
/// other keys (`a` and `a/b` cannot both exist); such a put fails with
/// [`InvalidInput`](ErrorKind::InvalidInput). Content types are not kept.
///
/// Keys cannot leave their bucket's directory: `..`, `.` and empty segments and
/// a leading `/` are refused, and so is a key that would go out through a
/// symbolic link inside the bucket (an [`InvalidInput`](ErrorKind::InvalidInput)
/// error); listings skip symbolic links.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl LocalStore {
    /// A store rooted at `root`, created when missing.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(root.join(TMP_DIR)).map_err(|e| {
            Error::from(e)
                .with("store", "local")
                .with("root", root.display())
        })?;
        Ok(LocalStore { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root.join(bucket)
    }

    fn path(&self, bucket: &str, key: &str) -> PathBuf {
        // The key rule (no empty, `.` or `..` segments, no leading `/`) makes this
        // join stay inside the bucket directory.
        self.bucket_dir(bucket).join(key)
    }

    /// The path of `key`, checked not to lead out of the bucket's directory
    /// through a symbolic link (planted in the bucket, to `/etc` or to another
    /// bucket); see [`stays_under`](crate::paths::stays_under). Reads follow
    /// the last link (`follow_last`); writes and deletes replace or remove the
    /// link itself. A bucket directory that is itself a link is fine.
    async fn contained(
        &self,
        operation: &'static str,
        bucket: &str,
        key: &str,
        follow_last: bool,
    ) -> Result<PathBuf> {
        let path = self.path(bucket, key);
        let (root, probe) = (self.bucket_dir(bucket), path.clone());
        let inside = tokio::task::spawn_blocking(move || {
            crate::paths::stays_under(&root, &probe, follow_last)
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Io, operation, e.to_string()))?
        .map_err(|e| self.io_err(operation, bucket, Some(key), e))?;
        if !inside {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                operation,
                "the key leads out of its bucket through a symbolic link",
            )
            .with("store", "local")
            .with("bucket", bucket)
            .with("key", key));
        }
        Ok(path)
    }

    fn tmp_path(&self) -> PathBuf {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        self.root
            .join(TMP_DIR)
            .join(format!("{}-{n}-{nanos}.part", std::process::id()))
    }

    fn io_err(
        &self,
        operation: &'static str,
        bucket: &str,
        key: Option<&str>,
        e: io::Error,
    ) -> Error {
        let mut err = match e.kind() {
            io::ErrorKind::NotFound => {
                let what = if self.bucket_dir(bucket).is_dir() {
                    "no such key"
                } else {
                    "no such bucket"
                };
                Error::new(ErrorKind::NotFound, operation, what).with_source(e)
            }
            io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory => Error::new(
                ErrorKind::InvalidInput,
                operation,
                "the key collides with a key used as a directory (`a` and `a/b` cannot both exist in a local store)",
            )
            .with_source(e),
            _ => {
                let msg = e.to_string();
                let kind = Error::from(e).kind();
                Error::new(kind, operation, msg)
            }
        };
        err = err.with("store", "local").with("bucket", bucket);
        if let Some(k) = key {
            err = err.with("key", k);
        }
        err
    }

    async fn require_bucket(&self, operation: &'static str, bucket: &str) -> Result<()> {
        match tokio::fs::metadata(self.bucket_dir(bucket)).await {
            Ok(m) if m.is_dir() => Ok(()),
            _ => Err(Error::new(ErrorKind::NotFound, operation, "no such bucket")
                .with("store", "local")
                .with("bucket", bucket)),
        }
    }

    /// Moves a finished temporary file into place.
    async fn commit(
        &self,
        operation: &'static str,
        tmp: &Path,
        bucket: &str,
        key: &str,
        replace: bool,
    ) -> Result<()> {
        let dst = match self.contained(operation, bucket, key, false).await {
            Ok(p) => p,
            Err(e) => {
                let _ = tokio::fs::remove_file(tmp).await;
                return Err(e);
            }
        };
        if let Some(parent) = dst.parent()
            && let Err(e) = tokio::fs::create_dir_all(parent).await
        {
            let _ = tokio::fs::remove_file(tmp).await;
            // EEXIST here means a segment of the key is an existing object (a file).
            let e = match e.kind() {
                io::ErrorKind::AlreadyExists => io::Error::new(io::ErrorKind::NotADirectory, e),
                _ => e,
            };
            return Err(self.io_err(operation, bucket, Some(key), e));
        }
        let res = async {
            if replace {
                tokio::fs::rename(tmp, &dst).await
            } else {
                // `link` fails if the destination exists: an atomic "create new".
                tokio::fs::hard_link(tmp, &dst).await?;
                tokio::fs::remove_file(tmp).await
            }
        }
        .await;
        match res {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = tokio::fs::remove_file(tmp).await;
                if e.kind() == io::ErrorKind::AlreadyExists && !replace {
                    return Err(already_exists(operation, bucket, key).with("store", "local"));
                }
                Err(self.io_err(operation, bucket, Some(key), e))
            }
        }
    }

    /// Writes `data` to a temporary file, then commits it.
    async fn write(
        &self,
        operation: &'static str,
        bucket: &str,
        key: &str,
        mut data: BytesStream,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        validate(operation, bucket, Some(key))?;
        self.require_bucket(operation, bucket).await?;
        let tmp = self.tmp_path();
        let written: Result<u64> = async {
            let mut file = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| self.io_err(operation, bucket, Some(key), e))?;
            let mut size = 0u64;
            while let Some(chunk) = data.next().await {
                let chunk = chunk.map_err(|e| e.with("bucket", bucket).with("key", key))?;
                file.write_all(&chunk)
                    .await
                    .map_err(|e| self.io_err(operation, bucket, Some(key), e))?;
                size += chunk.len() as u64;
            }
            file.flush()
                .await
                .map_err(|e| self.io_err(operation, bucket, Some(key), e))?;
            Ok(size)
        }
        .await;
        let size = match written {
            Ok(s) => s,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        self.commit(operation, &tmp, bucket, key, opts.replace)
            .await?;
        tracing::debug!(bucket, key, size, "local store wrote object");
        Ok(PutResult { size, e_tag: None })
    }

    fn walk(dir: &Path, prefix: &str, out: &mut Vec<ObjectMeta>) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not a UTF-8 name, so not a key gust wrote
            };
            let key = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let ft = entry.file_type()?;
            if ft.is_dir() {
                Self::walk(&entry.path(), &key, out)?;
            } else if ft.is_file() {
                out.push(file_meta(key, &entry.metadata()?));
            }
        }
        Ok(())
    }
}

fn file_meta(key: String, m: &std::fs::Metadata) -> ObjectMeta {
    ObjectMeta {
        key,
        size: m.len(),
        last_modified: m.modified().ok().map(DateTime::<Utc>::from),
        e_tag: None,
        content_type: None,
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn create_bucket(&self, bucket: &str) -> Result<bool> {
        let op = "object_store.create_bucket";
        validate(op, bucket, None)?;
        match tokio::fs::create_dir(self.bucket_dir(bucket)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(self.io_err(op, bucket, None, e)),
        }
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        let stream = futures::stream::once(async move { Ok(data) }).boxed();
        self.write("object_store.put", bucket, key, stream, opts)
            .await
    }

    async fn put_stream(
        &self,
        bucket: &str,
        key: &str,
        data: BytesStream,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        self.write("object_store.put_stream", bucket, key, data, opts)
            .await
    }

    async fn get_stream(&self, bucket: &str, key: &str) -> Result<BytesStream> {
        let op = "object_store.get";
        validate(op, bucket, Some(key))?;
        let path = self.contained(op, bucket, key, true).await?;
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| self.io_err(op, bucket, Some(key), e))?;
        let (bucket, key) = (bucket.to_string(), key.to_string());
        let stream = futures::stream::try_unfold(file, move |mut file| {
            let (bucket, key) = (bucket.clone(), key.clone());
            async move {
                let mut buf = vec![0u8; READ_CHUNK];
                let n = file.read(&mut buf).await.map_err(|e| {
                    Error::from(e)
                        .with("store", "local")
                        .with("bucket", &bucket)
                        .with("key", &key)
                })?;
                if n == 0 {
                    return Ok(None);
                }
                buf.truncate(n);
                Ok(Some((Bytes::from(buf), file)))
            }
        });
        Ok(stream.boxed())
    }

    async fn get_range(&self, bucket: &str, key: &str, range: Range<u64>) -> Result<Bytes> {
        let op = "object_store.get_range";
        validate(op, bucket, Some(key))?;
        let err = |e| self.io_err(op, bucket, Some(key), e);
        let path = self.contained(op, bucket, key, true).await?;
        let mut file = tokio::fs::File::open(path).await.map_err(err)?;
        let size = file.metadata().await.map_err(err)?.len();
        let r = clamp_range(&range, size).map_err(|m| {
            Error::new(ErrorKind::InvalidInput, op, m)
                .with("bucket", bucket)
                .with("key", key)
        })?;
        file.seek(io::SeekFrom::Start(r.start)).await.map_err(err)?;
        let mut buf = vec![0u8; (r.end - r.start) as usize];
        file.read_exact(&mut buf).await.map_err(err)?;
        Ok(buf.into())
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        let op = "object_store.head";
        validate(op, bucket, Some(key))?;
        let path = self.contained(op, bucket, key, true).await?;
        let m = tokio::fs::metadata(path)
            .await
            .map_err(|e| self.io_err(op, bucket, Some(key), e))?;
        if !m.is_file() {
            return Err(Error::new(ErrorKind::NotFound, op, "no such key")
                .with("store", "local")
                .with("bucket", bucket)
                .with("key", key));
        }
        Ok(file_meta(key.to_string(), &m))
    }

    fn list<'a>(&'a self, bucket: &'a str, opts: ListOptions) -> BoxStream<'a, Result<ListEntry>> {
        let op = "object_store.list";
        let dir = self.bucket_dir(bucket);
        let store = self.clone();
        let bucket_owned = bucket.to_string();
        let fut = async move {
            validate_list(op, &bucket_owned, &opts)?;
            store.require_bucket(op, &bucket_owned).await?;
            // A directory walk is blocking I/O: keep it off the async workers.
            let walked = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                LocalStore::walk(&dir, "", &mut out).map(|()| out)
            })
            .await
            .map_err(|e| Error::new(ErrorKind::Io, op, e.to_string()))?;
            let mut metas = walked.map_err(|e| store.io_err(op, &bucket_owned, None, e))?;
            metas.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(list_sorted(metas, &opts))
        };
        futures::stream::once(fut).flat_map(stream_entries).boxed()
    }

    async fn copy(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
    ) -> Result<()> {
        let op = "object_store.copy";
        validate(op, src_bucket, Some(src_key))?;
        validate(op, dst_bucket, Some(dst_key))?;
        self.require_bucket(op, dst_bucket).await?;
        let src = self.contained(op, src_bucket, src_key, true).await?;
        let tmp = self.tmp_path();
        if let Err(e) = tokio::fs::copy(src, &tmp).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(self.io_err(op, src_bucket, Some(src_key), e));
        }
        self.commit(op, &tmp, dst_bucket, dst_key, true).await
    }

    async fn delete(&self, bucket: &str, keys: &[String]) -> Result<DeleteReport> {
        let op = "object_store.delete";
        validate(op, bucket, None)?;
        for k in keys {
            validate(op, bucket, Some(k))?;
        }
        self.require_bucket(op, bucket).await?;
        let bucket_dir = self.bucket_dir(bucket);
        let mut report = DeleteReport::default();
        for k in keys {
            // Removes a link itself, never what it points to; but not through
            // a linked directory out of the bucket.
            let path = match self.contained(op, bucket, k, false).await {
                Ok(p) => p,
                Err(e) => {
                    report.errors.push(super::DeleteFailure {
                        key: k.clone(),
                        code: "InvalidInput".to_string(),
                        message: e.message().to_string(),
                    });
                    continue;
                }
            };
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {
                    // Drop directories the key leaves empty, so that a later key
                    // may reuse the name; stop at the first non-empty one.
                    let mut dir = path.parent();
                    while let Some(d) = dir.filter(|d| *d != bucket_dir) {
                        if tokio::fs::remove_dir(d).await.is_err() {
                            break;
                        }
                        dir = d.parent();
                    }
                    report.deleted.push(k.clone());
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => report.deleted.push(k.clone()),
                Err(e) => report.errors.push(super::DeleteFailure {
                    key: k.clone(),
                    code: format!("{:?}", e.kind()),
                    message: e.to_string(),
                }),
            }
        }
        Ok(report)
    }
}
