//! Downloads: `get_stream` and `download_file`.
//!
//! The first request is a plain `GET`. When the object is within the threshold,
//! that one response is the download. Otherwise only its first `threshold` bytes
//! are read, and the rest is fetched with ranged `GET`s of `part_size`,
//! `concurrency` parts at a time (the first response included), each on its own
//! tokio task, each pinned to the first response's ETag with `If-Match` — and
//! each response's own ETag and `Content-Range` checked too, for servers that
//! ignore `If-Match` — so an object replaced mid-download is an error instead of
//! a file stitched from two versions. A part whose body breaks off is asked for
//! again from where it stopped ([`PART_RESUMES`] times, pinned the same way);
//! parts are not retried whole, so what was received is never received twice.
//!
//! - **To a file**, every part writes at its own offset through its own file
//!   handle: chunks are copied into a buffer of [`WRITE_BATCH`] bytes, written on
//!   the blocking pool while a second buffer fills. Memory is about
//!   `concurrency × 2 × WRITE_BATCH` (20 MiB by default), whatever the size.
//! - **As a stream**, every part sends its chunks through a channel, and the
//!   stream yields the parts in order. The part being read arrives at one
//!   connection's speed while the parts after it fill their channels, so the
//!   bytes received ahead of the consumer are bounded by the stream buffer
//!   (48 MiB by default): once it is full, every part but the one being read
//!   pauses before its next chunk (the one being read never does, or the stream
//!   could stall behind a full buffer). All `concurrency` connections stay open
//!   whatever the buffer, so a part does not wait for the ones before it to be
//!   consumed to start. Chunks of a waiting part are copied into 1 MiB batches
//!   (reused buffers), because a chunk keeps the HTTP client's whole read
//!   buffer alive: the memory held is then what the buffer counts.

use std::collections::VecDeque;
use std::io::{Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use futures::stream::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};

use super::S3Hook;
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::object_store::BytesStream;

/// Bytes of a part gathered before one write to the file (one blocking-pool hop).
const WRITE_BATCH: usize = 1 << 20;

/// How large objects are downloaded. Defaults: threshold and part 8 MiB, 10 parts
/// at once, a 48 MiB buffer for a stream.
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
            concurrency: 10,
            stream_buffer: 48 * 1024 * 1024,
        }
    }
}

/// What a download is of: the hook, the operation and the object (for errors),
/// and the version the first response found, which every later part is pinned to.
struct Target {
    hook: S3Hook,
    op: &'static str,
    bucket: String,
    key: String,
    /// The object's size (0 when the first response did not say).
    total: u64,
    e_tag: Option<String>,
}

impl Target {
    fn err(&self, e: Error) -> Error {
        self.hook
            .wrap(self.op, e, Some(&self.bucket), Some(&self.key))
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

    /// One ranged `GET` of a part, pinned to the ETag, its answer checked.
    async fn get_part(&self, range: &Range<u64>) -> Result<Part> {
        let (total, e_tag) = (self.total, self.e_tag.as_deref());
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
                    .sdk_error(self.op, Some(&self.bucket), Some(&self.key), e);
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
        Ok(Part {
            resume: Some(Resume::new(range.start)),
            ..Part::new(out.body, Some(range.end - range.start))
        })
    }
}

/// How many times a part that breaks off is asked for again, from where it
/// stopped, before the download fails.
const PART_RESUMES: u32 = 3;
/// The pause before resumption `n`: 200, 400, 800 ms.
const RESUME_BACKOFF: crate::retry::Backoff =
    crate::retry::Backoff::exponential(std::time::Duration::from_millis(200)).jitter(false);

/// Where a part starts in its object, to ask for the rest of it again when its
/// body breaks off (a reset connection, a truncated response) — pinned to the
/// same ETag, so a resumed part cannot mix versions either — and the attempts left.
struct Resume {
    start: u64,
    left: u32,
}

impl Resume {
    fn new(start: u64) -> Self {
        Resume {
            start,
            left: PART_RESUMES,
        }
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
    /// Set for the parts of a ranged download: a part that breaks off resumes.
    resume: Option<Resume>,
}

impl Part {
    fn new(body: ByteStream, len: Option<u64>) -> Self {
        Part {
            body,
            len,
            got: 0,
            cut: false,
            resume: None,
        }
    }

    /// The next chunk; `None` at the end, an error when the body holds more
    /// bytes than its range, or broke off and could not be resumed.
    async fn next(&mut self, t: &Target) -> Result<Option<Bytes>> {
        loop {
            match self.read(t).await {
                Err(e) if e.kind() == ErrorKind::Unavailable && self.can_resume() => {
                    self.reopen(t, e).await?;
                }
                // Resumed as often as allowed: say so, so a task does not start
                // the whole download again for every try (see crate::retry).
                Err(e) if e.kind() == ErrorKind::Unavailable && self.resumed_all() => {
                    return Err(e.exhausted().with("attempts", PART_RESUMES + 1));
                }
                r => return r,
            }
        }
    }

    fn can_resume(&self) -> bool {
        self.len.is_some() && self.resume.as_ref().is_some_and(|r| r.left > 0)
    }

    fn resumed_all(&self) -> bool {
        self.len.is_some() && self.resume.as_ref().is_some_and(|r| r.left == 0)
    }

    /// Asks for the rest of the part again, after a pause that grows with each
    /// attempt; `broke` is the error that made it necessary, for the log.
    async fn reopen(&mut self, t: &Target, broke: Error) -> Result<()> {
        let (Some(len), Some(r)) = (self.len, self.resume.as_mut()) else {
            return Err(broke);
        };
        r.left -= 1;
        let attempt = PART_RESUMES - r.left;
        let range = r.start + self.got..r.start + len;
        tracing::warn!(
            conn_id = %t.hook.conn_id(),
            bucket = %t.bucket,
            key = %t.key,
            from = range.start,
            to = range.end,
            attempt,
            error = %broke,
            "a download part broke off; asking for the rest again"
        );
        tokio::time::sleep(RESUME_BACKOFF.delay(attempt)).await;
        let rest = t.get_part(&range).await?;
        self.body = rest.body;
        Ok(())
    }

    /// One chunk from the current body (see [`next`](Self::next)).
    async fn read(&mut self, t: &Target) -> Result<Option<Bytes>> {
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
    /// The first response, to be read up to `first_len` bytes; the rest is to
    /// be fetched by `ranges`.
    Ranged {
        first: Part,
        first_len: u64,
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
    /// The first `GET`, of the whole object: within the threshold it is the
    /// download (and on AWS the SDK validates the object's checksum); above it,
    /// only its first `threshold` bytes are read and the connection is dropped.
    /// A plain `GET` rather than a ranged one keeps small objects one ordinary
    /// request, checksum included, and needs no `HEAD` to learn the size.
    async fn open_download(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
    ) -> Result<(Arc<Target>, Opened)> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.sdk_error(op, Some(bucket), Some(key), e))?;
        let threshold = self.download.threshold;
        let total = out.content_length().map(|n| n.max(0) as u64);
        let t = Arc::new(Target {
            hook: self.clone(),
            op,
            bucket: bucket.to_string(),
            key: key.to_string(),
            total: total.unwrap_or_default(),
            e_tag: out.e_tag,
        });
        let opened = match total {
            Some(total) if total > threshold => Opened::Ranged {
                first: Part {
                    cut: true,
                    resume: Some(Resume::new(0)),
                    ..Part::new(out.body, Some(threshold))
                },
                first_len: threshold,
                ranges: Ranges {
                    next: threshold,
                    total,
                    part_size: self.download.part_size,
                },
            },
            _ => Opened::Whole(out.body),
        };
        Ok((t, opened))
    }

    /// The object as a stream of chunks, in order; see the [module docs](self).
    pub(super) async fn download_stream(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
    ) -> Result<BytesStream> {
        let (t, opened) = self.open_download(op, bucket, key).await?;
        let (first, first_len, ranges) = match opened {
            Opened::Whole(body) => return Ok(whole_stream(t, body)),
            Opened::Ranged {
                first,
                first_len,
                ranges,
            } => (first, first_len, ranges),
        };
        tracing::debug!(conn_id = %self.conn_id(), bucket, key, total = t.total, "ranged download");
        let mut state = StreamState::new(t, ranges, &self.download);
        let permit = state
            .connections
            .clone()
            .try_acquire_owned()
            .expect("a new stream has all its connections free");
        state.spawn_feed(0..first_len, Some(first), permit);
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
        let (t, opened) = self.open_download(op, bucket, key).await?;
        let file = tokio::fs::File::create(path).await?.into_std().await;
        let (first, ranges) = match opened {
            Opened::Whole(body) => {
                return write_part(&t, Part::new(body, None), file, 0).await;
            }
            Opened::Ranged { first, ranges, .. } => (first, ranges),
        };
        let total = t.total;
        tracing::debug!(conn_id = %self.conn_id(), bucket, key, total, "ranged download to a file");
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
                let (t, path) = (t.clone(), path.to_path_buf());
                tasks.spawn(async move {
                    let part = t.get_part(&range).await?;
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

/// The bytes parts of a streamed download have received and the consumer has
/// not taken yet, shared by the parts and the stream.
struct Buffered {
    bytes: AtomicU64,
    limit: u64,
    /// The part the consumer is reading: it never waits for room, or the
    /// stream could stall with a full buffer of later parts.
    head: AtomicU64,
    room: Notify,
}

impl Buffered {
    /// Waits until part `index` may read another chunk: it is the head, or the
    /// buffer has room.
    async fn wait_for_room(&self, index: u64) {
        loop {
            let notified = self.room.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check, so a wake-up in between is not lost.
            notified.as_mut().enable();
            if self.has_room(index) {
                return;
            }
            notified.await;
        }
    }

    /// Whether part `index` may read another chunk now.
    fn has_room(&self, index: u64) -> bool {
        self.is_head(index) || self.bytes.load(Ordering::Acquire) < self.limit
    }

    fn is_head(&self, index: u64) -> bool {
        self.head.load(Ordering::Acquire) == index
    }

    fn add(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::AcqRel);
    }

    /// The consumer took `n` bytes: wakes the parts waiting for room.
    fn take(&self, n: u64) {
        let before = self.bytes.fetch_sub(n, Ordering::AcqRel);
        if before >= self.limit {
            self.room.notify_waiters();
        }
    }

    /// The consumer moved on to part `index`.
    fn set_head(&self, index: u64) {
        self.head.store(index, Ordering::Release);
        self.room.notify_waiters();
    }
}

/// The batch buffers ([`WRITE_BATCH`] bytes) of a streamed download's waiting
/// parts, lent to the consumer and given back when it drops them. Reusing a few
/// buffers keeps the peak RSS at what the stream buffer counts: with fresh
/// buffers, glibc kept the freed ones in its heap, doubling it.
#[derive(Default)]
struct BatchPool(std::sync::Mutex<Vec<Vec<u8>>>);

impl BatchPool {
    /// An empty buffer of [`WRITE_BATCH`] bytes' capacity.
    fn take(&self) -> Vec<u8> {
        let reused = self.0.lock().ok().and_then(|mut free| free.pop());
        reused.unwrap_or_else(|| Vec::with_capacity(WRITE_BATCH))
    }

    /// `batch` as `Bytes` that give its buffer back to the pool when dropped;
    /// `batch` is left empty, without a buffer.
    fn lend(self: &Arc<Self>, batch: &mut Vec<u8>) -> Bytes {
        Bytes::from_owner(Lent {
            buf: std::mem::take(batch),
            pool: self.clone(),
        })
    }
}

/// A batch lent to the consumer.
struct Lent {
    buf: Vec<u8>,
    pool: Arc<BatchPool>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if let Ok(mut free) = self.pool.0.lock() {
            free.push(buf);
        }
    }
}

/// One part of a streamed download, fetched on its own task: its chunks arrive
/// through `rx`. The channel needs no bound: [`Buffered`] holds the parts back.
struct Feed {
    rx: mpsc::UnboundedReceiver<Result<Bytes>>,
    index: u64,
    len: u64,
    got: u64,
    _task: AbortOnDrop,
}

struct StreamState {
    t: Arc<Target>,
    ranges: Ranges,
    feeds: VecDeque<Feed>,
    /// A part holds a permit from its request to its last byte received.
    connections: Arc<Semaphore>,
    buffered: Arc<Buffered>,
    pool: Arc<BatchPool>,
    /// Parts started ahead of the consumer at most (connections plus the parts
    /// that fit in the buffer): a bound on tasks when parts are tiny.
    max_feeds: usize,
    next_index: u64,
}

/// What the stream waits for: the head part's next message, or a free connection.
enum Event {
    Chunk(Option<Result<Bytes>>),
    Connection(OwnedSemaphorePermit),
}

impl StreamState {
    fn new(t: Arc<Target>, ranges: Ranges, c: &DownloadConfig) -> Self {
        let fit = (c.stream_buffer / c.part_size).min(1024) as usize;
        StreamState {
            t,
            ranges,
            feeds: VecDeque::new(),
            connections: Arc::new(Semaphore::new(c.concurrency)),
            buffered: Arc::new(Buffered {
                bytes: AtomicU64::new(0),
                limit: c.stream_buffer,
                head: AtomicU64::new(0),
                room: Notify::new(),
            }),
            pool: Arc::default(),
            max_feeds: c.concurrency + fit,
            next_index: 0,
        }
    }

    /// Starts the part `range` (from `body` when already open) on its own task,
    /// holding `permit` until its last byte is received.
    fn spawn_feed(&mut self, range: Range<u64>, body: Option<Part>, permit: OwnedSemaphorePermit) {
        let (tx, rx) = mpsc::unbounded_channel();
        let t = self.t.clone();
        let buffered = self.buffered.clone();
        let pool = self.pool.clone();
        let index = self.next_index;
        self.next_index += 1;
        let len = range.end - range.start;
        let task = tokio::spawn(async move {
            let _permit = permit;
            let res: Result<()> = async {
                let mut part = match body {
                    Some(p) => p,
                    None => t.get_part(&range).await?,
                };
                // Chunks are slices of the HTTP client's read buffers and keep
                // them whole: while the part waits, they are copied into
                // batches, so that what waits is what `buffered` counts.
                let mut batch: Vec<u8> = Vec::new();
                let send = |bytes: Bytes| tx.send(Ok(bytes)).is_ok();
                loop {
                    if !buffered.has_room(index) {
                        // What waits in the batch must reach the stream first,
                        // or the room it takes would never be given back.
                        if !batch.is_empty() && !send(pool.lend(&mut batch)) {
                            return Ok(());
                        }
                        buffered.wait_for_room(index).await;
                    }
                    let Some(mut chunk) = part.next(&t).await? else {
                        if !batch.is_empty() {
                            send(pool.lend(&mut batch));
                        }
                        return Ok(());
                    };
                    buffered.add(chunk.len() as u64);
                    if buffered.is_head(index) {
                        if !batch.is_empty() && !send(pool.lend(&mut batch)) {
                            return Ok(());
                        }
                        if !send(chunk) {
                            return Ok(()); // the stream was dropped
                        }
                        continue;
                    }
                    while !chunk.is_empty() {
                        if batch.capacity() == 0 {
                            batch = pool.take();
                        }
                        let n = chunk.len().min(WRITE_BATCH - batch.len());
                        batch.extend_from_slice(&chunk.split_to(n));
                        if batch.len() == WRITE_BATCH && !send(pool.lend(&mut batch)) {
                            return Ok(());
                        }
                    }
                }
            }
            .await;
            if let Err(e) = res {
                let _ = tx.send(Err(e));
            }
        });
        self.feeds.push_back(Feed {
            rx,
            index,
            len,
            got: 0,
            _task: AbortOnDrop(task),
        });
    }

    /// Whether another part may start once a connection is free.
    fn wants_more(&self) -> bool {
        self.feeds.len() < self.max_feeds && self.ranges.next < self.ranges.total
    }

    /// Starts the next part with `permit`.
    fn start_next(&mut self, permit: OwnedSemaphorePermit) {
        if let Some(range) = self.ranges.next() {
            self.spawn_feed(range, None, permit);
        }
    }

    /// The next chunk in order; `None` at the end. While it waits for the head
    /// part, it starts the next parts as connections free up.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            while self.wants_more() {
                match self.connections.clone().try_acquire_owned() {
                    Ok(permit) => self.start_next(permit),
                    Err(_) => break,
                }
            }
            let more = self.wants_more();
            let connections = self.connections.clone();
            let Some(feed) = self.feeds.front_mut() else {
                return Ok(None);
            };
            let event = tokio::select! {
                biased;
                msg = feed.rx.recv() => Event::Chunk(msg),
                Ok(permit) = connections.acquire_owned(), if more => Event::Connection(permit),
            };
            match event {
                Event::Connection(permit) => self.start_next(permit),
                Event::Chunk(Some(Ok(chunk))) => {
                    feed.got += chunk.len() as u64;
                    self.buffered.take(chunk.len() as u64);
                    return Ok(Some(chunk));
                }
                Event::Chunk(Some(Err(e))) => return Err(e),
                Event::Chunk(None) if feed.got != feed.len => {
                    // The task ended without an error and without its bytes: it panicked.
                    return Err(self.t.remote(ErrorKind::Io, "a download task ended early"));
                }
                Event::Chunk(None) => {
                    self.feeds.pop_front();
                    // The next part in order, started or not.
                    let head = self.feeds.front().map_or(self.next_index, |f| f.index);
                    self.buffered.set_head(head);
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
