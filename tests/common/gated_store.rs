//! [`GatedStore`]: an object store whose first download stops halfway until
//! the test opens the gate, so a fault can be injected while a load is surely
//! under way (its first rows written, the rest still to come).
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use gust::hooks::object_store::{
    BytesStream, DeleteReport, ListEntry, ListOptions, MemoryStore, ObjectMeta, ObjectStore,
    PutOptions, PutResult,
};
use tokio::sync::Notify;

/// Chunk size of the gated download.
pub const CHUNK: usize = 4096;

/// A [`MemoryStore`] whose first `get_stream` yields `at` chunks of [`CHUNK`]
/// bytes, then waits for [`open`](Self::open) before the rest; later
/// downloads (a retry's) are not gated.
pub struct GatedStore {
    pub inner: Arc<MemoryStore>,
    at: usize,
    used: AtomicBool,
    paused: Arc<Notify>,
    gate: Arc<Notify>,
}

impl std::fmt::Debug for GatedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatedStore")
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl GatedStore {
    /// A store over `inner` gated after `at` chunks.
    pub fn new(inner: Arc<MemoryStore>, at: usize) -> Self {
        GatedStore {
            inner,
            at,
            used: AtomicBool::new(false),
            paused: Arc::new(Notify::new()),
            gate: Arc::new(Notify::new()),
        }
    }

    /// Returns once the first download has delivered its `at` chunks and waits.
    pub async fn paused(&self) {
        self.paused.notified().await;
    }

    /// Lets the first download go on.
    pub fn open(&self) {
        self.gate.notify_one();
    }
}

#[async_trait]
impl ObjectStore for GatedStore {
    async fn create_bucket(&self, bucket: &str) -> gust::Result<bool> {
        self.inner.create_bucket(bucket).await
    }
    async fn put(&self, b: &str, k: &str, data: Bytes, o: &PutOptions) -> gust::Result<PutResult> {
        self.inner.put(b, k, data, o).await
    }
    async fn put_stream(
        &self,
        b: &str,
        k: &str,
        data: BytesStream,
        o: &PutOptions,
    ) -> gust::Result<PutResult> {
        self.inner.put_stream(b, k, data, o).await
    }
    async fn get_stream(&self, bucket: &str, key: &str) -> gust::Result<BytesStream> {
        if self.used.swap(true, Ordering::SeqCst) {
            return self.inner.get_stream(bucket, key).await;
        }
        let all = self.inner.get(bucket, key).await?;
        let chunks: Vec<Bytes> = all.chunks(CHUNK).map(Bytes::copy_from_slice).collect();
        let (at, paused, gate) = (self.at, self.paused.clone(), self.gate.clone());
        Ok(futures::stream::iter(chunks.into_iter().enumerate())
            .then(move |(i, c)| {
                let (paused, gate) = (paused.clone(), gate.clone());
                async move {
                    if i == at {
                        // notify_one keeps a permit when the test is not waiting yet.
                        paused.notify_one();
                        gate.notified().await;
                    }
                    Ok::<_, gust::Error>(c)
                }
            })
            .boxed())
    }
    async fn get_range(&self, b: &str, k: &str, r: std::ops::Range<u64>) -> gust::Result<Bytes> {
        self.inner.get_range(b, k, r).await
    }
    async fn head(&self, b: &str, k: &str) -> gust::Result<ObjectMeta> {
        self.inner.head(b, k).await
    }
    fn list<'a>(&'a self, b: &'a str, o: ListOptions) -> BoxStream<'a, gust::Result<ListEntry>> {
        self.inner.list(b, o)
    }
    async fn copy(&self, sb: &str, sk: &str, db: &str, dk: &str) -> gust::Result<()> {
        self.inner.copy(sb, sk, db, dk).await
    }
    async fn delete(&self, b: &str, keys: &[String]) -> gust::Result<DeleteReport> {
        self.inner.delete(b, keys).await
    }
}
