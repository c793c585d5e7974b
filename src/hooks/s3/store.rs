//! [`ObjectStore`] for [`S3Hook`].

use std::ops::Range;

use async_trait::async_trait;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectIdentifier,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::S3Hook;
use super::multipart::Upload;
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::object_store::{
    BytesStream, DELETE_BATCH, DeleteFailure, DeleteReport, ListEntry, ListOptions, ObjectMeta,
    ObjectStore, PutOptions, PutResult, validate, validate_list,
};

/// Characters left as they are in `x-amz-copy-source`: unreserved ones and `/`.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// The `x-amz-copy-source` value of an object: `bucket/key`, URL-encoded.
pub(super) fn copy_source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", utf8_percent_encode(key, COPY_SOURCE))
}

pub(super) fn to_utc(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

impl S3Hook {
    /// Creates `bucket` in `region` (the hook's region when `None`): `Ok(false)`
    /// when it exists already and is ours.
    pub(super) async fn create_bucket_in(
        &self,
        bucket: &str,
        region: Option<&str>,
    ) -> Result<bool> {
        let op = "s3.create_bucket";
        validate(op, bucket, None).map_err(|e| self.wrap(op, e, None, None))?;
        // HEAD first: some servers (moto in us-east-1) answer a re-create with 200,
        // others with BucketAlreadyExists even for the owner.
        if self.bucket_exists(bucket).await? {
            return Ok(false);
        }
        let region = region.unwrap_or(&self.region);
        // us-east-1 is the one region that must not be sent as a constraint.
        let config = (region != "us-east-1").then(|| {
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build()
        });
        match self
            .client
            .create_bucket()
            .bucket(bucket)
            .set_create_bucket_configuration(config)
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!(conn_id = %self.conn_id(), bucket, region, "s3 bucket created");
                Ok(true)
            }
            Err(e) => {
                let e = self.sdk_error(op, Some(bucket), None, e);
                if e.kind() == ErrorKind::AlreadyExists && self.bucket_exists(bucket).await? {
                    return Ok(false); // created concurrently by someone with our credentials
                }
                Err(e)
            }
        }
    }

    /// `HeadBucket`: whether the bucket exists and is reachable with our credentials.
    pub(super) async fn bucket_exists(&self, bucket: &str) -> Result<bool> {
        match self.client.head_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = self.sdk_error("s3.head_bucket", Some(bucket), None, e);
                if e.kind() == ErrorKind::NotFound {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn list_page(
        &self,
        bucket: &str,
        opts: &ListOptions,
        token: Option<String>,
    ) -> Result<(Vec<ListEntry>, Option<String>)> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .set_prefix(opts.prefix.clone())
            .set_delimiter(opts.delimiter.clone())
            .set_start_after(opts.start_after.clone())
            .set_max_keys(opts.page_size.map(|n| n.clamp(1, 1000) as i32))
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| self.sdk_error("s3.list_objects", Some(bucket), None, e))?;
        let mut entries: Vec<ListEntry> = out
            .contents()
            .iter()
            .map(|o| {
                ListEntry::Object(ObjectMeta {
                    key: o.key().unwrap_or_default().to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    last_modified: to_utc(o.last_modified()),
                    e_tag: o.e_tag().map(str::to_string),
                    content_type: None,
                })
            })
            .chain(
                out.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(|p| ListEntry::Prefix(p.to_string()))),
            )
            .collect();
        // S3 returns objects and prefixes as two lists; merge them into key order.
        entries.sort_by(|a, b| entry_key(a).cmp(entry_key(b)));
        let next = if out.is_truncated() == Some(true) {
            out.next_continuation_token().map(str::to_string)
        } else {
            None
        };
        Ok((entries, next))
    }
}

fn entry_key(e: &ListEntry) -> &str {
    match e {
        ListEntry::Object(m) => &m.key,
        ListEntry::Prefix(p) => p,
    }
}

#[async_trait]
impl ObjectStore for S3Hook {
    async fn create_bucket(&self, bucket: &str) -> Result<bool> {
        self.create_bucket_in(bucket, self.bucket_region.as_deref())
            .await
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        let op = "s3.put_object";
        validate(op, bucket, Some(key)).map_err(|e| self.wrap(op, e, None, None))?;
        self.put_bytes(op, bucket, key, data, &Upload::from(opts))
            .await
    }

    async fn put_stream(
        &self,
        bucket: &str,
        key: &str,
        data: BytesStream,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        let op = "s3.put_stream";
        validate(op, bucket, Some(key)).map_err(|e| self.wrap(op, e, None, None))?;
        self.put_stream_inner(op, bucket, key, data, &Upload::from(opts))
            .await
    }

    async fn get_stream(&self, bucket: &str, key: &str) -> Result<BytesStream> {
        let op = "s3.get_object";
        validate(op, bucket, Some(key)).map_err(|e| self.wrap(op, e, None, None))?;
        self.download_stream(op, bucket, key).await
    }

    async fn get_range(&self, bucket: &str, key: &str, range: Range<u64>) -> Result<Bytes> {
        let op = "s3.get_range";
        validate(op, bucket, Some(key)).map_err(|e| self.wrap(op, e, None, None))?;
        if range.start >= range.end {
            let msg = format!("the range {}..{} is empty", range.start, range.end);
            return Err(self.fail(ErrorKind::InvalidInput, op, msg, Some(bucket), Some(key)));
        }
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await
            .map_err(|e| self.sdk_error(op, Some(bucket), Some(key), e))?;
        let data = out.body.collect().await.map_err(|e| {
            self.wrap(
                op,
                Error::new(ErrorKind::Unavailable, op, "the download broke off").with_source(e),
                Some(bucket),
                Some(key),
            )
        })?;
        Ok(data.into_bytes())
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        let op = "s3.head_object";
        validate(op, bucket, Some(key)).map_err(|e| self.wrap(op, e, None, None))?;
        let out = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.sdk_error(op, Some(bucket), Some(key), e))?;
        Ok(ObjectMeta {
            key: key.to_string(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            last_modified: to_utc(out.last_modified()),
            e_tag: out.e_tag().map(str::to_string),
            content_type: out.content_type().map(str::to_string),
        })
    }

    fn list<'a>(&'a self, bucket: &'a str, opts: ListOptions) -> BoxStream<'a, Result<ListEntry>> {
        if let Err(e) = validate_list("s3.list_objects", bucket, &opts) {
            let e = self.wrap("s3.list_objects", e, None, None);
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        // State: Some(token) = a page to fetch (None token = the first page).
        futures::stream::try_unfold(Some(None), move |state: Option<Option<String>>| {
            let opts = opts.clone();
            async move {
                let Some(token) = state else {
                    return Ok(None);
                };
                let (entries, next) = self.list_page(bucket, &opts, token).await?;
                Ok::<_, Error>(Some((entries, next.map(Some))))
            }
        })
        .map_ok(|entries| futures::stream::iter(entries.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    async fn copy(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
    ) -> Result<()> {
        let op = "s3.copy_object";
        validate(op, src_bucket, Some(src_key)).map_err(|e| self.wrap(op, e, None, None))?;
        validate(op, dst_bucket, Some(dst_key)).map_err(|e| self.wrap(op, e, None, None))?;
        let size = self.head(src_bucket, src_key).await?.size;
        if size > self.copy_threshold {
            return self
                .copy_multipart(src_bucket, src_key, dst_bucket, dst_key, size)
                .await;
        }
        self.client
            .copy_object()
            .copy_source(copy_source(src_bucket, src_key))
            .bucket(dst_bucket)
            .key(dst_key)
            .set_server_side_encryption(self.sse(false))
            .send()
            .await
            .map_err(|e| {
                self.sdk_error(op, Some(dst_bucket), Some(dst_key), e)
                    .with("source", format!("{src_bucket}/{src_key}"))
            })?;
        tracing::debug!(conn_id = %self.conn_id(), src_bucket, src_key, dst_bucket, dst_key, "s3 object copied");
        Ok(())
    }

    async fn delete(&self, bucket: &str, keys: &[String]) -> Result<DeleteReport> {
        let op = "s3.delete_objects";
        validate(op, bucket, None).map_err(|e| self.wrap(op, e, None, None))?;
        for k in keys {
            validate(op, bucket, Some(k)).map_err(|e| self.wrap(op, e, None, None))?;
        }
        let mut report = DeleteReport::default();
        for chunk in keys.chunks(DELETE_BATCH) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| {
                    self.fail(
                        ErrorKind::InvalidInput,
                        op,
                        e.to_string(),
                        Some(bucket),
                        None,
                    )
                })?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(false)
                .build()
                .map_err(|e| {
                    self.fail(
                        ErrorKind::InvalidInput,
                        op,
                        e.to_string(),
                        Some(bucket),
                        None,
                    )
                })?;
            let out = self
                .client
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.sdk_error(op, Some(bucket), None, e))?;
            report.deleted.extend(
                out.deleted()
                    .iter()
                    .filter_map(|d| d.key().map(str::to_string)),
            );
            report
                .errors
                .extend(out.errors().iter().map(|e| DeleteFailure {
                    key: e.key().unwrap_or_default().to_string(),
                    code: e.code().unwrap_or_default().to_string(),
                    message: e.message().unwrap_or_default().to_string(),
                }));
        }
        tracing::info!(conn_id = %self.conn_id(), bucket, deleted = report.deleted.len(), failed = report.errors.len(), "s3 objects deleted");
        Ok(report)
    }
}
