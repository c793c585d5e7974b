//! Airflow's `S3Hook` methods, with the names and semantics Airflow users know.
//!
//! Like Airflow, methods taking `key` and `bucket: Option<&str>` accept a full
//! `s3://bucket/key` URL as the key when no bucket is given, and fall back to the
//! connection's `service_config.s3.bucket_name`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use bytes::Bytes;
use futures::stream::{StreamExt, TryStreamExt};

use super::S3Hook;
use super::multipart::Upload;
use super::params::{LoadOptions, PresignMethod, file_stream};
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::object_store::gzip_stream;
use crate::hooks::object_store::{
    BytesStream, DeleteReport, ListEntry, ListKeys, ListOptions, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutResult,
};

impl S3Hook {
    /// Airflow's `parse_s3_url`; see [`parse_s3_url`](crate::hooks::object_store::parse_s3_url).
    pub fn parse_s3_url(url: &str) -> Result<(String, String)> {
        crate::hooks::object_store::parse_s3_url(url)
    }

    /// Airflow's `get_s3_bucket_key`: `(bucket, key)` from an explicit bucket, an
    /// `s3://` URL key, or the connection's default bucket.
    pub fn get_s3_bucket_key(&self, bucket: Option<&str>, key: &str) -> Result<(String, String)> {
        match bucket {
            Some(_) if key.contains("://") => Err(self.fail(
                ErrorKind::InvalidInput,
                "s3.get_s3_bucket_key",
                "a bucket was given, so the key must be relative, not a URL",
                None,
                Some(key),
            )),
            Some(b) => Ok((b.to_string(), key.to_string())),
            None if key.contains("://") => Self::parse_s3_url(key),
            None => Ok((self.bucket_or_default(None)?, key.to_string())),
        }
    }

    fn bucket_or_default(&self, bucket: Option<&str>) -> Result<String> {
        bucket
            .or(self.default_bucket.as_deref())
            .map(str::to_string)
            .ok_or_else(|| {
                self.fail(
                    ErrorKind::InvalidInput,
                    "s3.bucket",
                    "no bucket: pass one, use an s3:// URL, or set the extra service_config.s3.bucket_name",
                    None,
                    None,
                )
            })
    }

    /// Airflow's `head_object`: the metadata, or `None` when the key does not exist.
    pub async fn head_object(&self, key: &str, bucket: Option<&str>) -> Result<Option<ObjectMeta>> {
        let (b, k) = self.get_s3_bucket_key(bucket, key)?;
        match self.head(&b, &k).await {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Airflow's `get_key`: the object's metadata; a missing key is an error.
    pub async fn get_key(&self, key: &str, bucket: Option<&str>) -> Result<ObjectMeta> {
        let (b, k) = self.get_s3_bucket_key(bucket, key)?;
        self.head(&b, &k).await
    }

    /// Airflow's `check_for_key`.
    pub async fn check_for_key(&self, key: &str, bucket: Option<&str>) -> Result<bool> {
        let (b, k) = self.get_s3_bucket_key(bucket, key)?;
        self.exists(&b, &k).await
    }

    /// Airflow's `check_for_bucket`.
    pub async fn check_for_bucket(&self, bucket: Option<&str>) -> Result<bool> {
        self.bucket_exists(&self.bucket_or_default(bucket)?).await
    }

    /// Airflow's `read_key`: the object as UTF-8 text.
    pub async fn read_key(&self, key: &str, bucket: Option<&str>) -> Result<String> {
        let (b, k) = self.get_s3_bucket_key(bucket, key)?;
        let data = self.get(&b, &k).await?;
        String::from_utf8(data.to_vec()).map_err(|_| {
            self.fail(
                ErrorKind::InvalidInput,
                "s3.read_key",
                "the object is not UTF-8 text; use get()",
                Some(&b),
                Some(&k),
            )
        })
    }

    /// Airflow's `check_for_prefix`: whether any key lives under `prefix` (taken
    /// as a "directory": `delimiter` is appended when missing).
    pub async fn check_for_prefix(
        &self,
        prefix: &str,
        delimiter: &str,
        bucket: Option<&str>,
    ) -> Result<bool> {
        let b = self.bucket_or_default(bucket)?;
        let p = if prefix.ends_with(delimiter) {
            prefix.to_string()
        } else {
            format!("{prefix}{delimiter}")
        };
        let first = self
            .list(&b, ListOptions::new().prefix(p).page_size(1))
            .next()
            .await;
        first.transpose().map(|e| e.is_some())
    }

    /// Airflow's `list_keys`.
    pub async fn list_keys(&self, bucket: Option<&str>, q: &ListKeys) -> Result<Vec<String>> {
        let b = self.bucket_or_default(bucket)?;
        ObjectStoreExt::list_keys_stream(self, &b, q)
            .try_collect()
            .await
    }

    /// Airflow's `list_prefixes`: the common prefixes under `q.prefix` split by `q.delimiter`.
    pub async fn list_prefixes(&self, bucket: Option<&str>, q: &ListKeys) -> Result<Vec<String>> {
        let b = self.bucket_or_default(bucket)?;
        let prefixes = self.list(&b, q.list_options()).try_filter_map(|e| {
            futures::future::ready(Ok(match e {
                ListEntry::Prefix(p) => Some(p),
                ListEntry::Object(_) => None,
            }))
        });
        match q.max_items {
            Some(n) => prefixes.take(n).try_collect().await,
            None => prefixes.try_collect().await,
        }
    }

    /// Airflow's `load_bytes`.
    pub async fn load_bytes(
        &self,
        data: impl Into<Bytes>,
        key: &str,
        bucket: Option<&str>,
        opts: &LoadOptions,
    ) -> Result<PutResult> {
        let (b, k) = self.get_s3_bucket_key(bucket, key)?;
        let op = "s3.load_bytes";
        crate::hooks::object_store::validate(op, &b, Some(&k))
            .map_err(|e| self.wrap(op, e, None, None))?;
        let data: Bytes = data.into();
        if opts.gzip {
            let one = futures::stream::once(async move { Ok(data) }).boxed();
            return self
                .put_stream_inner(op, &b, &k, gzip_stream(one), &Upload::from(opts))
                .await;
        }
        self.put_bytes(op, &b, &k, data, &Upload::from(opts)).await
    }

    /// Airflow's `load_string` (UTF-8).
    pub async fn load_string(
        &self,
        data: &str,
        key: &str,
        bucket: Option<&str>,
        opts: &LoadOptions,
    ) -> Result<PutResult> {
        self.load_bytes(Bytes::copy_from_slice(data.as_bytes()), key, bucket, opts)
            .await
    }

    /// Airflow's `load_file_obj`: uploads a stream of unknown length (multipart,
    /// bounded memory; aborted on failure).
    pub async fn load_stream(
        &self,
        data: BytesStream,
        key: &str,
        bucket: Option<&str>,
        opts: &LoadOptions,
    ) -> Result<PutResult> {
        let (b, k) = self.get_s3_bucket_key(bucket, key)?;
        let op = "s3.load_stream";
        crate::hooks::object_store::validate(op, &b, Some(&k))
            .map_err(|e| self.wrap(op, e, None, None))?;
        let data = if opts.gzip { gzip_stream(data) } else { data };
        self.put_stream_inner(op, &b, &k, data, &Upload::from(opts))
            .await
    }

    /// Airflow's `load_file`: streams a local file up.
    pub async fn load_file(
        &self,
        path: impl AsRef<Path>,
        key: &str,
        bucket: Option<&str>,
        opts: &LoadOptions,
    ) -> Result<PutResult> {
        let path = path.as_ref();
        let file = tokio::fs::File::open(path).await.map_err(|e| {
            self.wrap(
                "s3.load_file",
                Error::from(e).with("path", path.display()),
                bucket,
                Some(key),
            )
        })?;
        self.load_stream(file_stream(file), key, bucket, opts).await
    }

    /// Airflow's `download_file`: downloads the object into `local_dir`, named
    /// after the key's last segment with `preserve_file_name`, else
    /// `airflow_tmp_<random>`. Objects above the download threshold are fetched
    /// with concurrent ranged `GET`s written at their offsets, pinned to one
    /// ETag (see [`with_download_parts`](Self::with_download_parts)). The file
    /// appears complete or not at all: the download goes to a hidden temporary
    /// file in `local_dir`, renamed when complete and removed on failure or when
    /// the future is dropped (a task timeout).
    pub async fn download_file(
        &self,
        key: &str,
        bucket: Option<&str>,
        local_dir: impl AsRef<Path>,
        preserve_file_name: bool,
    ) -> Result<PathBuf> {
        let op = "s3.download_file";
        let (b, k) = self.get_s3_bucket_key(bucket, key)?;
        let name = if preserve_file_name {
            k.rsplit('/').next().unwrap_or(&k).to_string()
        } else {
            format!("airflow_tmp_{:016x}", rand::random::<u64>())
        };
        let dest = local_dir.as_ref().join(&name);
        match self.download_to(op, &b, &k, &dest).await {
            Ok(n) => {
                tracing::info!(conn_id = %self.conn_id(), bucket = %b, key = %k, path = %dest.display(), bytes = n, "s3 object downloaded");
                Ok(dest)
            }
            Err(e) => Err(self.wrap(op, e.with("path", dest.display()), Some(&b), Some(&k))),
        }
    }

    /// Downloads the object to the file `dest` and returns its size: through a
    /// hidden temporary file beside it, renamed when complete and removed on
    /// failure or when the future is dropped, so `dest` appears whole or not at
    /// all. Errors are left for the caller to put in context.
    pub(crate) async fn download_to(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
        dest: &Path,
    ) -> Result<u64> {
        crate::hooks::object_store::validate(op, bucket, Some(key))?;
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        let mut tmp = TempFile {
            path: dest.with_file_name(format!(".{name}.gust-part-{:08x}", rand::random::<u32>())),
            armed: true,
        };
        let n = self.download_to_path(op, bucket, key, &tmp.path).await?;
        tokio::fs::rename(&tmp.path, dest).await?;
        tmp.armed = false;
        Ok(n)
    }

    /// Airflow's `copy_object`: keys may be `s3://` URLs when their bucket is `None`.
    /// Objects above the copy threshold (5 GiB) are copied in parts.
    pub async fn copy_object(
        &self,
        source_key: &str,
        dest_key: &str,
        source_bucket: Option<&str>,
        dest_bucket: Option<&str>,
    ) -> Result<()> {
        let (sb, sk) = self.get_s3_bucket_key(source_bucket, source_key)?;
        let (db, dk) = self.get_s3_bucket_key(dest_bucket, dest_key)?;
        self.copy(&sb, &sk, &db, &dk).await
    }

    /// Airflow's `delete_objects`: deletes in chunks of 1000 and fails, naming the
    /// first failed key, when any key could not be deleted.
    pub async fn delete_objects(
        &self,
        bucket: Option<&str>,
        keys: &[String],
    ) -> Result<DeleteReport> {
        let b = self.bucket_or_default(bucket)?;
        let report = self.delete(&b, keys).await?;
        if let Some(first) = report.errors.first() {
            let msg = format!(
                "{} of {} keys were not deleted; first: {} ({})",
                report.errors.len(),
                keys.len(),
                first.code,
                first.message
            );
            return Err(self.fail(
                ErrorKind::Remote,
                "s3.delete_objects",
                msg,
                Some(&b),
                Some(&first.key),
            ));
        }
        Ok(report)
    }

    /// Airflow's `generate_presigned_url` for `get_object` / `put_object`.
    pub async fn generate_presigned_url(
        &self,
        method: PresignMethod,
        key: &str,
        bucket: Option<&str>,
        expires_in: Duration,
    ) -> Result<String> {
        let op = "s3.generate_presigned_url";
        let (b, k) = self.get_s3_bucket_key(bucket, key)?;
        crate::hooks::object_store::validate(op, &b, Some(&k))
            .map_err(|e| self.wrap(op, e, None, None))?;
        let cfg = PresigningConfig::expires_in(expires_in).map_err(|e| {
            self.fail(
                ErrorKind::InvalidInput,
                op,
                e.to_string(),
                Some(&b),
                Some(&k),
            )
        })?;
        let req = match method {
            PresignMethod::GetObject => self
                .client
                .get_object()
                .bucket(&b)
                .key(&k)
                .presigned(cfg)
                .await
                .map_err(|e| self.sdk_error(op, Some(&b), Some(&k), e)),
            PresignMethod::PutObject => self
                .client
                .put_object()
                .bucket(&b)
                .key(&k)
                .presigned(cfg)
                .await
                .map_err(|e| self.sdk_error(op, Some(&b), Some(&k), e)),
        }?;
        Ok(req.uri().to_string())
    }
}

/// A temporary file removed when dropped armed: a failed download, or one whose
/// future was dropped (a task timeout), leaves nothing behind.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            // Absent when the download failed before creating it.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_s3_url_forms() {
        let ok = |u: &str, b: &str, k: &str| {
            assert_eq!(
                S3Hook::parse_s3_url(u).unwrap(),
                (b.to_string(), k.to_string()),
                "{u}"
            )
        };
        ok("s3://bucket/dir/key.csv", "bucket", "dir/key.csv");
        ok("s3a://bucket/key", "bucket", "key");
        ok("S3N://bucket/key", "bucket", "key");
        ok("s3://bucket", "bucket", "");
        ok(
            "https://s3.ap-northeast-2.amazonaws.com/team06/iris1.csv",
            "team06",
            "iris1.csv",
        );
        ok(
            "https://team06.s3.ap-northeast-2.amazonaws.com/a/iris1.csv",
            "team06",
            "a/iris1.csv",
        );
        ok("https://team06.s3.amazonaws.com/k", "team06", "k");
        for bad in [
            "bucket/key",
            "ftp://b/k",
            "s3:///key",
            "https://example.com/b/k",
        ] {
            let e = S3Hook::parse_s3_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
            assert!(!e.to_string().contains('\n'));
        }
    }
}
