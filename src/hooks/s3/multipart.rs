//! Single and multipart uploads and copies, with abort on every failure path.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::task::JoinSet;

use super::{ConditionalPut, S3Hook};
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::object_store::{BytesStream, PutOptions, PutResult};

/// Everything a write needs beyond bucket and key.
#[derive(Debug, Clone, Default)]
pub(super) struct Upload {
    pub replace: bool,
    pub content_type: Option<String>,
    /// Encryption asked for by this call; the hook's setting adds to it
    /// ([`S3Hook::sse`]).
    pub encrypt: bool,
}

impl From<&PutOptions> for Upload {
    fn from(o: &PutOptions) -> Self {
        Upload {
            replace: o.replace,
            content_type: o.content_type.clone(),
            ..Upload::default()
        }
    }
}

/// Aborts a multipart upload when dropped armed: covers a cancelled future (a
/// task timeout drops it mid-upload), where no error path runs.
struct AbortGuard {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    armed: bool,
}

impl AbortGuard {
    async fn abort(mut self) {
        self.armed = false;
        let res = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
        match res {
            Ok(_) => {
                tracing::info!(bucket = %self.bucket, key = %self.key, upload_id = %self.upload_id, "multipart upload aborted")
            }
            Err(e) => {
                tracing::warn!(bucket = %self.bucket, key = %self.key, upload_id = %self.upload_id, error = %aws_sdk_s3::error::DisplayErrorContext(&e), "aborting the multipart upload failed; a bucket lifecycle rule must clean it up")
            }
        }
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let guard = AbortGuard {
            client: self.client.clone(),
            bucket: std::mem::take(&mut self.bucket),
            key: std::mem::take(&mut self.key),
            upload_id: std::mem::take(&mut self.upload_id),
            armed: false,
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(guard.abort());
        }
    }
}

/// Reads up to `size` bytes from `stream` (after `carry`, the rest of the last
/// chunk). Returns the part and whether the stream ended. A failure of the
/// stream itself becomes an error of `op`: see [`source_err`].
async fn next_part(
    op: &'static str,
    stream: &mut BytesStream,
    carry: &mut Option<Bytes>,
    size: usize,
) -> Result<(Bytes, bool)> {
    let mut buf = BytesMut::new();
    loop {
        let chunk = match carry.take() {
            Some(c) => c,
            None => match stream.next().await {
                Some(c) => c.map_err(|e| source_err(op, e))?,
                None => return Ok((buf.freeze(), true)),
            },
        };
        let room = size - buf.len();
        if !(buf.is_empty() && chunk.len() == room) && buf.capacity() == 0 {
            // One allocation of the whole part, not doublings from 64 KiB: the
            // freed halves stayed in glibc's per-thread heaps and the peak RSS
            // of a long upload grew with its length (benches/transfers, 10M
            // rows). Pages of a large allocation cost memory once written.
            buf.reserve(size);
        }
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            *carry = Some(chunk.slice(room..));
        } else {
            if buf.is_empty() && chunk.len() == room {
                return Ok((chunk, false)); // a whole part, no copy
            }
            buf.extend_from_slice(&chunk);
        }
        if buf.len() == size {
            return Ok((buf.freeze(), false));
        }
    }
}

/// The upload `op` failed because its source stream did: the caller asked for
/// `op` (`s3.put_stream`), so that is the operation, while the source's kind,
/// retryability and message are kept and the source error chained (its Display
/// names the source's own operation and context); an exhausted source stays
/// exhausted.
fn source_err(op: &'static str, e: Error) -> Error {
    Error::new(
        e.kind(),
        op,
        format!("the data to upload failed: {}", e.message()),
    )
    .with_retry_state_of(&e)
    .with_source(e)
}

impl S3Hook {
    /// Refuses early when `replace=false` is enforced by the HEAD fallback.
    async fn head_check(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
        up: &Upload,
    ) -> Result<()> {
        if !up.replace && self.conditional_put == ConditionalPut::HeadThenPut {
            use crate::hooks::object_store::ObjectStore;
            if self.exists(bucket, key).await? {
                return Err(self.wrap(op, exists_err(op), Some(bucket), Some(key)));
            }
        }
        Ok(())
    }

    fn if_none_match(&self, up: &Upload) -> Option<String> {
        (!up.replace && self.conditional_put == ConditionalPut::IfNoneMatch)
            .then(|| "*".to_string())
    }

    /// One `PutObject`.
    pub(super) async fn put_bytes(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
        data: Bytes,
        up: &Upload,
    ) -> Result<PutResult> {
        self.head_check(op, bucket, key, up).await?;
        let size = data.len() as u64;
        let out = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(data))
            .set_content_type(up.content_type.clone())
            .set_server_side_encryption(self.sse(up.encrypt))
            .set_if_none_match(self.if_none_match(up))
            .send()
            .await
            .map_err(|e| self.write_err(op, bucket, key, e))?;
        tracing::debug!(conn_id = %self.conn_id(), bucket, key, size, "s3 object put");
        Ok(PutResult {
            size,
            e_tag: out.e_tag,
        })
    }

    fn write_err<E>(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
        e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Error
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let e = self.sdk_error(op, Some(bucket), Some(key), e);
        match e.kind() {
            ErrorKind::AlreadyExists => self.wrap(op, exists_err(op), Some(bucket), Some(key)),
            ErrorKind::Unsupported => e.map_message(|m| {
                format!("{m} (if the server lacks If-None-Match, set the connection extra conditional_put=head)")
            }),
            _ => e,
        }
    }

    /// Uploads a stream of unknown length: one `PutObject` when it fits in one
    /// part, else a multipart upload with at most `max_in_flight` parts in flight.
    /// Any failure aborts the upload, so neither an object nor parts remain.
    pub(super) async fn put_stream_inner(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
        mut stream: BytesStream,
        up: &Upload,
    ) -> Result<PutResult> {
        let ctx = |e: Error| self.wrap(op, e, Some(bucket), Some(key));
        let mut carry = None;
        let (first, eof) = next_part(op, &mut stream, &mut carry, self.part_size)
            .await
            .map_err(ctx)?;
        if eof {
            return self.put_bytes(op, bucket, key, first, up).await;
        }
        self.head_check(op, bucket, key, up).await?;
        let created = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .set_content_type(up.content_type.clone())
            .set_server_side_encryption(self.sse(up.encrypt))
            .send()
            .await
            .map_err(|e| self.sdk_error(op, Some(bucket), Some(key), e))?;
        let upload_id = created.upload_id.unwrap_or_default();
        let guard = AbortGuard {
            client: self.client.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload_id: upload_id.clone(),
            armed: true,
        };
        tracing::debug!(conn_id = %self.conn_id(), bucket, key, %upload_id, "multipart upload started");
        match self
            .upload_parts(op, bucket, key, &upload_id, first, stream, carry, up)
            .await
        {
            Ok(r) => {
                let mut guard = guard;
                guard.armed = false;
                Ok(r)
            }
            Err(e) => {
                guard.abort().await;
                Err(e.with("upload_id", &upload_id))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn upload_parts(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
        upload_id: &str,
        first: Bytes,
        mut stream: BytesStream,
        mut carry: Option<Bytes>,
        up: &Upload,
    ) -> Result<PutResult> {
        let mut tasks: JoinSet<Result<CompletedPart>> = JoinSet::new();
        let mut parts = Vec::new();
        let mut size = 0u64;
        let mut number = 0i32;
        let mut pending = Some(first);
        let mut eof = false;
        while let Some(part) = pending.take() {
            number += 1;
            size += part.len() as u64;
            self.spawn_part(&mut tasks, op, bucket, key, upload_id, number, part);
            while tasks.len() >= self.max_in_flight {
                parts.push(join_one(&mut tasks, op).await?);
            }
            // A finished stream must not be polled again.
            if !eof {
                let (next, ended) = next_part(op, &mut stream, &mut carry, self.part_size)
                    .await
                    .map_err(|e| self.wrap(op, e, Some(bucket), Some(key)))?;
                eof = ended;
                pending = Some(next).filter(|p| !p.is_empty());
            }
        }
        while !tasks.is_empty() {
            parts.push(join_one(&mut tasks, op).await?);
        }
        parts.sort_by_key(|p| p.part_number);
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .set_if_none_match(self.if_none_match(up))
            .send()
            .await
            .map_err(|e| self.write_err(op, bucket, key, e))?;
        tracing::info!(conn_id = %self.conn_id(), bucket, key, size, parts = number, "multipart upload completed");
        Ok(PutResult {
            size,
            e_tag: out.e_tag,
        })
    }

    /// Uploads one part on its own task, so parts upload while the source is read.
    #[allow(clippy::too_many_arguments)]
    fn spawn_part(
        &self,
        tasks: &mut JoinSet<Result<CompletedPart>>,
        op: &'static str,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: i32,
        part: Bytes,
    ) {
        let hook = self.clone();
        let (b, k, id) = (bucket.to_string(), key.to_string(), upload_id.to_string());
        tasks.spawn(async move {
            let out = hook
                .client
                .upload_part()
                .bucket(&b)
                .key(&k)
                .upload_id(id)
                .part_number(number)
                .body(ByteStream::from(part))
                .send()
                .await
                .map_err(|e| hook.sdk_error(op, Some(&b), Some(&k), e))?;
            tracing::debug!(bucket = %b, key = %k, part = number, "part uploaded");
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .build())
        });
    }

    /// Copies an object larger than the copy threshold with `UploadPartCopy`.
    pub(super) async fn copy_multipart(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        size: u64,
    ) -> Result<()> {
        let op = "s3.copy_object";
        let created = self
            .client
            .create_multipart_upload()
            .bucket(dst_bucket)
            .key(dst_key)
            .set_server_side_encryption(self.sse(false))
            .send()
            .await
            .map_err(|e| self.sdk_error(op, Some(dst_bucket), Some(dst_key), e))?;
        let upload_id = created.upload_id.unwrap_or_default();
        let guard = AbortGuard {
            client: self.client.clone(),
            bucket: dst_bucket.to_string(),
            key: dst_key.to_string(),
            upload_id: upload_id.clone(),
            armed: true,
        };
        let source = super::store::copy_source(src_bucket, src_key);
        let mut tasks: JoinSet<Result<CompletedPart>> = JoinSet::new();
        let mut parts = Vec::new();
        let result: Result<()> = async {
            let mut start = 0u64;
            let mut n = 0i32;
            while start < size {
                let end = (start + self.copy_part_size).min(size) - 1;
                n += 1;
                let (client, hook, source, id) =
                    (self.client.clone(), self.clone(), source.clone(), upload_id.clone());
                let (b, k, part) = (dst_bucket.to_string(), dst_key.to_string(), n);
                tasks.spawn(async move {
                    let out = client
                        .upload_part_copy()
                        .bucket(&b)
                        .key(&k)
                        .upload_id(id)
                        .part_number(part)
                        .copy_source(source)
                        .copy_source_range(format!("bytes={start}-{end}"))
                        .send()
                        .await
                        .map_err(|e| hook.sdk_error(op, Some(&b), Some(&k), e))?;
                    let e_tag = out.copy_part_result.and_then(|r| r.e_tag);
                    Ok(CompletedPart::builder().part_number(part).set_e_tag(e_tag).build())
                });
                while tasks.len() >= self.max_in_flight {
                    parts.push(join_one(&mut tasks, op).await?);
                }
                start = end + 1;
            }
            while !tasks.is_empty() {
                parts.push(join_one(&mut tasks, op).await?);
            }
            parts.sort_by_key(|p| p.part_number);
            self.client
                .complete_multipart_upload()
                .bucket(dst_bucket)
                .key(dst_key)
                .upload_id(&upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(std::mem::take(&mut parts))).build())
                .send()
                .await
                .map_err(|e| self.sdk_error(op, Some(dst_bucket), Some(dst_key), e))?;
            tracing::info!(conn_id = %self.conn_id(), src_bucket, src_key, dst_bucket, dst_key, size, parts = n, "multipart copy completed");
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                let mut guard = guard;
                guard.armed = false;
                Ok(())
            }
            Err(e) => {
                tasks.abort_all();
                guard.abort().await;
                Err(e.with("upload_id", &upload_id))
            }
        }
    }
}

fn exists_err(op: &'static str) -> Error {
    Error::new(
        ErrorKind::AlreadyExists,
        op,
        "the key exists and replace=false",
    )
}

async fn join_one(
    tasks: &mut JoinSet<Result<CompletedPart>>,
    op: &'static str,
) -> Result<CompletedPart> {
    match tasks.join_next().await {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(Error::new(
            ErrorKind::Io,
            op,
            format!("part upload task failed: {e}"),
        )),
        None => Err(Error::new(ErrorKind::Io, op, "no part upload in flight")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_err_keeps_the_source_retry_state() {
        let src = Error::new(ErrorKind::Unavailable, "sql.bulk_dump", "gone").exhausted();
        let e = source_err("s3.put_stream", src);
        assert_eq!(e.operation(), "s3.put_stream");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.message(), "the data to upload failed: gone");
        assert!(e.is_exhausted());
        let src = Error::new(ErrorKind::Unavailable, "x", "refused").with_retryable(false);
        assert!(!source_err("s3.put_stream", src).is_retryable());
    }
}
