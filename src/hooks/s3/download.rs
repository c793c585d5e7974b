//! Streamed downloads: the first part with one ranged `GET`, the rest with up to
//! `max_in_flight` concurrent ranged `GET`s pinned to the first part's ETag,
//! yielded in order. Memory stays under `part_size × (max_in_flight + 1)`.

use aws_sdk_s3::primitives::ByteStream;
use futures::stream::StreamExt;

use super::S3Hook;
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::object_store::BytesStream;

impl S3Hook {
    /// A body as a stream of chunks, with errors in context.
    fn body_stream(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
        body: ByteStream,
    ) -> BytesStream {
        let hook = self.clone();
        let (b, k) = (bucket.to_string(), key.to_string());
        futures::stream::try_unfold(body, move |mut body| {
            let (hook, b, k) = (hook.clone(), b.clone(), k.clone());
            async move {
                match body.try_next().await {
                    Ok(Some(chunk)) => Ok(Some((chunk, body))),
                    Ok(None) => Ok(None),
                    Err(e) => Err(hook.context(
                        Error::new(ErrorKind::Unavailable, op, "the download broke off")
                            .with_source(e),
                        Some(&b),
                        Some(&k),
                    )),
                }
            }
        })
        .boxed()
    }

    /// The whole object as a stream; see the [module docs](self).
    pub(super) async fn download_stream(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
    ) -> Result<BytesStream> {
        let part = self.part_size as u64;
        let first = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .range(format!("bytes=0-{}", part - 1))
            .send()
            .await;
        let first = match first {
            Ok(out) => out,
            Err(e) => {
                let e = self.sdk_err(op, Some(bucket), Some(key), e);
                if e.kind() != ErrorKind::InvalidInput {
                    return Err(e);
                }
                // 416 on `bytes=0-…`: the object is empty; fetch it without a range.
                let out = self
                    .client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| self.sdk_err(op, Some(bucket), Some(key), e))?;
                return Ok(self.body_stream(op, bucket, key, out.body));
            }
        };
        // `Content-Range: bytes 0-8388607/TOTAL`; absent when the server ignored
        // the range and sent the whole object.
        let total = first
            .content_range()
            .and_then(|r| r.rsplit('/').next())
            .and_then(|t| t.parse::<u64>().ok());
        let head = self.body_stream(op, bucket, key, first.body);
        let Some(total) = total.filter(|t| *t > part) else {
            return Ok(head);
        };
        let e_tag = first.e_tag;
        let hook = self.clone();
        let (b, k) = (bucket.to_string(), key.to_string());
        let ranges = (1..).map(move |i| i * part).take_while(move |s| *s < total);
        let rest = futures::stream::iter(ranges)
            .map(move |start| {
                let (hook, b, k, e_tag) = (hook.clone(), b.clone(), k.clone(), e_tag.clone());
                let end = (start + part).min(total) - 1;
                async move {
                    let out = hook
                        .client
                        .get_object()
                        .bucket(&b)
                        .key(&k)
                        .range(format!("bytes={start}-{end}"))
                        // Every part from the same version of the object.
                        .set_if_match(e_tag)
                        .send()
                        .await
                        .map_err(|e| {
                            let e = hook.sdk_err(op, Some(&b), Some(&k), e);
                            if e.kind() == ErrorKind::AlreadyExists {
                                // 412 from If-Match: the object was replaced mid-download.
                                let msg = "the object changed during the download; retry";
                                return hook.context(
                                    Error::new(ErrorKind::Unavailable, op, msg),
                                    Some(&b),
                                    Some(&k),
                                );
                            }
                            e
                        })?;
                    let data = out.body.collect().await.map_err(|e| {
                        hook.context(
                            Error::new(ErrorKind::Unavailable, op, "the download broke off")
                                .with_source(e),
                            Some(&b),
                            Some(&k),
                        )
                    })?;
                    Ok::<_, Error>(data.into_bytes())
                }
            })
            .buffered(self.max_in_flight);
        tracing::debug!(conn_id = %self.conn_id, bucket, key, total, "ranged download");
        Ok(head.chain(rest).boxed())
    }
}
