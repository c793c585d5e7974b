//! Downloads: `get_stream` and `download_file`.
//!
//! The first request is a plain `GET`. When the object is within the threshold,
//! that one response is the download. Otherwise only its first `threshold` bytes
//! are read, and the rest is fetched with ranged `GET`s of `part_size`,
//! `concurrency` parts at a time (the first response included), each on its own
//! tokio task, each pinned to the first response's ETag with `If-Match` — and
//! each response's own ETag and `Content-Range` checked too, for servers that
//! ignore `If-Match` — so an object replaced mid-download is an error instead of
//! a file stitched from two versions.
//!
//! - **To a file**, every part writes at its own offset through its own file
//!   handle: chunks are copied into a buffer of [`WRITE_BATCH`] bytes, written on
//!   the blocking pool while a second buffer fills. Memory is about
//!   `concurrency × 2 × WRITE_BATCH` (16 MiB by default), whatever the size.
//! - **As a stream**, every part sends its chunks through a channel, and the
//!   stream yields the parts in order. A consumer reading as fast as the network
//!   can only take the first part at one connection's speed while the others
//!   fill their channels, so running `n` connections at once takes a buffer of
//!   `n × part_size`: a stream runs as many parts as fit in the stream buffer
//!   (48 MiB, 6 parts, by default) and holds at most that (plus the first
//!   part, when the threshold is larger than a part), whatever the consumer's
//!   speed.

use std::collections::VecDeque;
use std::io::{Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use futures::stream::StreamExt;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use super::S3Hook;
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::object_store::BytesStream;

/// Bytes of a part gathered before one write to the file (one blocking-pool hop).
const WRITE_BATCH: usize = 1 << 20;

/// How large objects are downloaded. Defaults: threshold and part 8 MiB, 8 parts
/// at once to a file, a 48 MiB buffer (6 parts) for a stream.
#[derive(Debug, Clone, Copy)]
pub(super) struct DownloadConfig {
    pub threshold: u64,
    pub part_size: u64,
    pub concurrency: usize,
    pub stream_buffer: u64,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        DownloadConfig {
            threshold: 8 * 1024 * 1024,
            part_size: 8 * 1024 * 1024,
            concurrency: 8,
            stream_buffer: 48 * 1024 * 1024,
        }
    }
}

impl DownloadConfig {
    /// Parts in flight for a stream: as many as fit in the stream buffer, at
    /// least 1 and at most `concurrency`.
    pub fn stream_window(&self) -> usize {
        let fit = (self.stream_buffer / self.part_size).min(usize::MAX as u64) as usize;
        fit.clamp(1, self.concurrency)
    }
}

/// What a download is of: the hook, the operation and the object, for errors.
struct Target {
    hook: S3Hook,
    op: &'static str,
    bucket: String,
    key: String,
}

impl Target {
    fn err(&self, e: Error) -> Error {
        self.hook.context(e, Some(&self.bucket), Some(&self.key))
    }

    fn remote(&self, kind: ErrorKind, msg: impl Into<String>) -> Error {
        self.err(Error::new(kind, self.op, msg))
    }

    /// The object is not the version the download started with: `got` is the
    /// new ETag when the server answered with it, `None` when it refused `If-Match`.
    fn changed(&self, expected: &str, got: Option<&str>) -> Error {
        let mut e = Error::new(
            ErrorKind::Unavailable,
            self.op,
            "the object changed during the download; retry to download the new version",
        )
        .with("e_tag", expected);
        if let Some(got) = got {
            e = e.with("new_e_tag", got);
        }
        self.err(e)
    }

    /// One ranged `GET` of a part, pinned to `e_tag`, its answer checked.
    async fn get_part(&self, range: &Range<u64>, total: u64, e_tag: Option<&str>) -> Result<Part> {
        let out = self
            .hook
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .set_if_match(e_tag.map(str::to_string))
            .send()
            .await
            .map_err(|e| {
                let e = self
                    .hook
                    .sdk_err(self.op, Some(&self.bucket), Some(&self.key), e);
                // 412 on If-Match (gust's errors read a failed precondition as
                // "exists", which is right for If-None-Match only).
                match (e.kind(), e_tag) {
                    (ErrorKind::AlreadyExists, Some(t)) => self.changed(t, None),
                    _ => e,
                }
            })?;
        if let (Some(want), Some(got)) = (e_tag, out.e_tag())
            && want != got
        {
            return Err(self.changed(want, Some(got)));
        }
        let expected = format!("bytes {}-{}/{total}", range.start, range.end - 1);
        if out.content_range() != Some(expected.as_str()) {
            let msg = format!(
                "asked for {expected}, the server answered {}",
                out.content_range().unwrap_or("the whole object")
            );
            return Err(self.remote(ErrorKind::Remote, msg));
        }
        Ok(Part::new(out.body, Some(range.end - range.start)))
    }
}

/// A body being read, with the number of bytes it must hold (`None`: unchecked).
struct Part {
    body: ByteStream,
    len: Option<u64>,
    got: u64,
    /// The body goes on past `len` (the first response of a large object):
    /// stop there instead of failing.
    cut: bool,
}

impl Part {
    fn new(body: ByteStream, len: Option<u64>) -> Self {
        Part {
            body,
            len,
            got: 0,
            cut: false,
        }
    }

    /// The next chunk; `None` at the end, an error when the body broke off or
    /// holds more or fewer bytes than its range.
    async fn next(&mut self, t: &Target) -> Result<Option<Bytes>> {
        if self.cut && self.len == Some(self.got) {
            return Ok(None);
        }
        match self.body.try_next().await {
            Ok(Some(mut chunk)) => {
                let len = self.len.unwrap_or(u64::MAX);
                let room = len - self.got;
                if chunk.len() as u64 > room {
                    if !self.cut {
                        return Err(t.remote(ErrorKind::Remote, "a part is longer than its range"));
                    }
                    chunk.truncate(room as usize);
                }
                self.got += chunk.len() as u64;
                Ok(Some(chunk))
            }
            Ok(None) if self.len.is_some_and(|len| self.got < len) => Err(t.remote(
                ErrorKind::Unavailable,
                format!(
                    "the download broke off ({} of {} bytes)",
                    self.got,
                    self.len.unwrap_or_default()
                ),
            )),
            Ok(None) => Ok(None),
            Err(e) => Err(t.err(
                Error::new(ErrorKind::Unavailable, t.op, "the download broke off").with_source(e),
            )),
        }
    }
}

/// The first response of a download.
enum Opened {
    /// The whole object, in one response (its length checked by the HTTP client).
    Whole(ByteStream),
    /// The first response, to be read up to `first_len` of `total` bytes; the
    /// rest is to be fetched by `ranges`.
    Ranged {
        first: Part,
        first_len: u64,
        total: u64,
        e_tag: Option<String>,
        ranges: Ranges,
    },
}

/// The ranges after the first response, in order.
struct Ranges {
    next: u64,
    total: u64,
    part_size: u64,
}

impl Iterator for Ranges {
    type Item = Range<u64>;
    fn next(&mut self) -> Option<Range<u64>> {
        (self.next < self.total).then(|| {
            let start = self.next;
            self.next = start.saturating_add(self.part_size).min(self.total);
            start..self.next
        })
    }
}

impl S3Hook {
    fn target(&self, op: &'static str, bucket: &str, key: &str) -> Arc<Target> {
        Arc::new(Target {
            hook: self.clone(),
            op,
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// The first `GET`, of the whole object: within the threshold it is the
    /// download (and on AWS the SDK validates the object's checksum); above it,
    /// only its first `threshold` bytes are read and the connection is dropped.
    /// A plain `GET` rather than a ranged one keeps small objects one ordinary
    /// request, checksum included, and needs no `HEAD` to learn the size.
    async fn open_download(&self, t: &Target) -> Result<Opened> {
        let out = self
            .client
            .get_object()
            .bucket(&t.bucket)
            .key(&t.key)
            .send()
            .await
            .map_err(|e| self.sdk_err(t.op, Some(&t.bucket), Some(&t.key), e))?;
        let threshold = self.download.threshold;
        match out.content_length().map(|n| n.max(0) as u64) {
            Some(total) if total > threshold => Ok(Opened::Ranged {
                first: Part {
                    cut: true,
                    ..Part::new(out.body, Some(threshold))
                },
                first_len: threshold,
                total,
                e_tag: out.e_tag,
                ranges: Ranges {
                    next: threshold,
                    total,
                    part_size: self.download.part_size,
                },
            }),
            _ => Ok(Opened::Whole(out.body)),
        }
    }

    /// The object as a stream of chunks, in order; see the [module docs](self).
    pub(super) async fn download_stream(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
    ) -> Result<BytesStream> {
        let t = self.target(op, bucket, key);
        let (first, first_len, total, e_tag, ranges) = match self.open_download(&t).await? {
            Opened::Whole(body) => return Ok(whole_stream(t, body)),
            Opened::Ranged {
                first,
                first_len,
                total,
                e_tag,
                ranges,
            } => (first, first_len, total, e_tag, ranges),
        };
        tracing::debug!(conn_id = %self.conn_id, bucket, key, total, "ranged download");
        let mut state = StreamState {
            t,
            total,
            e_tag,
            ranges,
            feeds: VecDeque::new(),
            window: self.download.stream_window(),
        };
        state
            .feeds
            .push_back(state.spawn_feed(0..first_len, Some(first)));
        state.refill();
        let stream = futures::stream::unfold(state, |mut st| async move {
            let item = st.next_chunk().await.transpose()?;
            if item.is_err() {
                st.stop();
            }
            Some((item, st))
        });
        Ok(stream.boxed())
    }

    /// Downloads the object into the file at `path` (created or truncated) and
    /// returns its size; see the [module docs](self). On error, the file holds
    /// garbage: the caller removes it.
    pub(super) async fn download_to_path(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
        path: &Path,
    ) -> Result<u64> {
        let t = self.target(op, bucket, key);
        let opened = self.open_download(&t).await?;
        let file = tokio::fs::File::create(path).await?.into_std().await;
        let (first, total, e_tag, ranges) = match opened {
            Opened::Whole(body) => {
                return write_part(&t, Part::new(body, None), file, 0).await;
            }
            Opened::Ranged {
                first,
                total,
                e_tag,
                ranges,
                ..
            } => (first, total, e_tag, ranges),
        };
        tracing::debug!(conn_id = %self.conn_id, bucket, key, total, "ranged download to a file");
        let mut tasks: JoinSet<Result<u64>> = JoinSet::new();
        let res: Result<()> = async {
            {
                let t = t.clone();
                tasks.spawn(async move { write_part(&t, first, file, 0).await });
            }
            for range in ranges {
                while tasks.len() >= self.download.concurrency {
                    join_part(&mut tasks, op).await?;
                }
                let (t, e_tag, path) = (t.clone(), e_tag.clone(), path.to_path_buf());
                tasks.spawn(async move {
                    let part = t.get_part(&range, total, e_tag.as_deref()).await?;
                    let file = tokio::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .await?
                        .into_std()
                        .await;
                    write_part(&t, part, file, range.start).await
                });
            }
            while !tasks.is_empty() {
                join_part(&mut tasks, op).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = res {
            // Wait for the aborted parts, so that no handle writes after we return.
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            return Err(e);
        }
        Ok(total)
    }
}

async fn join_part(tasks: &mut JoinSet<Result<u64>>, op: &'static str) -> Result<u64> {
    match tasks.join_next().await {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(Error::new(
            ErrorKind::Io,
            op,
            format!("a download task failed: {e}"),
        )),
        None => Ok(0),
    }
}

/// A whole-object body as a stream, errors in context.
fn whole_stream(t: Arc<Target>, body: ByteStream) -> BytesStream {
    let part = Part::new(body, None);
    futures::stream::try_unfold((t, part), |(t, mut part)| async move {
        Ok(part.next(&t).await?.map(|chunk| (chunk, (t, part))))
    })
    .boxed()
}

/// Streams `part` into `file` at `offset`: chunks are copied into a buffer of
/// [`WRITE_BATCH`] bytes, written on the blocking pool while a second buffer
/// fills. Copying costs a `memcpy` but releases the HTTP client's buffers at
/// once, so a part holds two buffers and nothing else. Returns the bytes written.
async fn write_part(
    t: &Target,
    mut part: Part,
    mut file: std::fs::File,
    offset: u64,
) -> Result<u64> {
    let io_err = |e: std::io::Error| t.err(Error::from(e));
    if offset > 0 {
        file.seek(SeekFrom::Start(offset)).map_err(io_err)?;
    }
    let mut file = Some(file);
    let mut writing: Option<WriteTask> = None;
    let mut batch: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
    let mut spare: Option<Vec<u8>> = None;
    let mut written = 0u64;
    loop {
        let chunk = part.next(t).await?;
        let end = chunk.is_none();
        let mut chunk = chunk.unwrap_or_default();
        while !chunk.is_empty() || (end && !batch.is_empty()) {
            let take = chunk.len().min(WRITE_BATCH - batch.len());
            batch.extend_from_slice(&chunk.split_to(take));
            if batch.len() < WRITE_BATCH && !end {
                break;
            }
            let mut f = match writing.take() {
                Some(h) => {
                    let (f, mut buf) = join_write(t, h).await?;
                    buf.clear();
                    spare = Some(buf);
                    f
                }
                None => file.take().expect("the file is here when no write is"),
            };
            let next = spare
                .take()
                .unwrap_or_else(|| Vec::with_capacity(WRITE_BATCH));
            let full = std::mem::replace(&mut batch, next);
            written += full.len() as u64;
            writing = Some(tokio::task::spawn_blocking(move || {
                f.write_all(&full)?;
                Ok((f, full))
            }));
        }
        if end {
            break;
        }
    }
    if let Some(h) = writing {
        join_write(t, h).await?;
    }
    Ok(written)
}

/// A buffer being written on the blocking pool: gives back the file and the buffer.
type WriteTask = JoinHandle<std::io::Result<(std::fs::File, Vec<u8>)>>;

async fn join_write(t: &Target, h: WriteTask) -> Result<(std::fs::File, Vec<u8>)> {
    match h.await {
        Ok(r) => r.map_err(|e| t.err(Error::from(e))),
        Err(e) => Err(t.remote(ErrorKind::Io, format!("a file write failed: {e}"))),
    }
}

/// Aborts a task when dropped: a dropped download stream stops its parts.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One part of a streamed download, fetched on its own task: its chunks arrive
/// through `rx`. The channel needs no bound: a part holds at most its own
/// length, and the stream runs at most `window` parts.
struct Feed {
    rx: mpsc::UnboundedReceiver<Result<Bytes>>,
    len: u64,
    got: u64,
    _task: AbortOnDrop,
}

struct StreamState {
    t: Arc<Target>,
    total: u64,
    e_tag: Option<String>,
    ranges: Ranges,
    feeds: VecDeque<Feed>,
    window: usize,
}

impl StreamState {
    /// Starts the part `range` (from `body` when already open) on its own task.
    fn spawn_feed(&self, range: Range<u64>, body: Option<Part>) -> Feed {
        let (tx, rx) = mpsc::unbounded_channel();
        let (t, e_tag, total) = (self.t.clone(), self.e_tag.clone(), self.total);
        let len = range.end - range.start;
        let task = tokio::spawn(async move {
            let res: Result<()> = async {
                let mut part = match body {
                    Some(p) => p,
                    None => t.get_part(&range, total, e_tag.as_deref()).await?,
                };
                while let Some(chunk) = part.next(&t).await? {
                    if tx.send(Ok(chunk)).is_err() {
                        return Ok(()); // the stream was dropped
                    }
                }
                Ok(())
            }
            .await;
            if let Err(e) = res {
                let _ = tx.send(Err(e));
            }
        });
        Feed {
            rx,
            len,
            got: 0,
            _task: AbortOnDrop(task),
        }
    }

    /// Keeps `window` parts in flight.
    fn refill(&mut self) {
        while self.feeds.len() < self.window {
            let Some(range) = self.ranges.next() else {
                break;
            };
            let feed = self.spawn_feed(range, None);
            self.feeds.push_back(feed);
        }
    }

    /// The next chunk in order; `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            let Some(feed) = self.feeds.front_mut() else {
                return Ok(None);
            };
            match feed.rx.recv().await {
                Some(Ok(chunk)) => {
                    feed.got += chunk.len() as u64;
                    return Ok(Some(chunk));
                }
                Some(Err(e)) => return Err(e),
                None if feed.got != feed.len => {
                    // The task ended without an error and without its bytes: it panicked.
                    return Err(self.t.remote(ErrorKind::Io, "a download task ended early"));
                }
                None => {
                    self.feeds.pop_front();
                    self.refill();
                }
            }
        }
    }

    /// After an error: no more parts, the running ones aborted.
    fn stop(&mut self) {
        self.feeds.clear();
        self.ranges.next = self.ranges.total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_window_fits_the_buffer() {
        let mib = 1024 * 1024;
        let c = |part_size, concurrency, stream_buffer| DownloadConfig {
            threshold: part_size,
            part_size,
            concurrency,
            stream_buffer,
        };
        assert_eq!(DownloadConfig::default().stream_window(), 6);
        assert_eq!(c(8 * mib, 4, 48 * mib).stream_window(), 4);
        assert_eq!(c(64 * mib, 8, 48 * mib).stream_window(), 1);
        assert_eq!(c(mib, 8, 48 * mib).stream_window(), 8);
    }

    #[test]
    fn ranges_cover_the_rest_in_parts() {
        let r: Vec<_> = Ranges {
            next: 8,
            total: 30,
            part_size: 10,
        }
        .collect();
        assert_eq!(r, [8..18, 18..28, 28..30]);
        assert_eq!(
            Ranges {
                next: 8,
                total: 8,
                part_size: 10
            }
            .count(),
            0
        );
    }
}
