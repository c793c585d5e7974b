//! [`MemoryStore`]: buckets of objects in a map, for unit tests.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};

use super::{
    BytesStream, DELETE_BATCH, DeleteReport, ListEntry, ListOptions, ObjectMeta, ObjectStore,
    PutOptions, PutResult, clamp_range, list_sorted, stream_entries, validate, validate_list,
    weak_etag,
};
use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone)]
struct Object {
    data: Bytes,
    content_type: Option<String>,
    last_modified: DateTime<Utc>,
    e_tag: String,
}

type Buckets = BTreeMap<String, BTreeMap<String, Object>>;

/// An in-memory [`ObjectStore`]. Cloning shares the same buckets, so a test can
/// keep a handle on what an operator wrote.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    buckets: Arc<Mutex<Buckets>>,
}

impl MemoryStore {
    /// An empty store with no buckets.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Buckets> {
        // A panic while holding the lock cannot leave a map half-updated (every
        // update is a single insert/remove), so a poisoned lock is still consistent.
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn no_bucket(operation: &'static str, bucket: &str) -> Error {
        Error::new(ErrorKind::NotFound, operation, "no such bucket")
            .with("store", "memory")
            .with("bucket", bucket)
    }

    fn no_key(operation: &'static str, bucket: &str, key: &str) -> Error {
        Error::new(ErrorKind::NotFound, operation, "no such key")
            .with("store", "memory")
            .with("bucket", bucket)
            .with("key", key)
    }

    fn object(&self, operation: &'static str, bucket: &str, key: &str) -> Result<Object> {
        validate(operation, bucket, Some(key))?;
        let buckets = self.lock();
        let objects = buckets
            .get(bucket)
            .ok_or_else(|| Self::no_bucket(operation, bucket))?;
        objects
            .get(key)
            .cloned()
            .ok_or_else(|| Self::no_key(operation, bucket, key))
    }

    fn store(
        &self,
        operation: &'static str,
        bucket: &str,
        key: &str,
        data: Bytes,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        let mut buckets = self.lock();
        let objects = buckets
            .get_mut(bucket)
            .ok_or_else(|| Self::no_bucket(operation, bucket))?;
        if !opts.replace && objects.contains_key(key) {
            return Err(already_exists(operation, bucket, key));
        }
        let e_tag = weak_etag(&data);
        let size = data.len() as u64;
        objects.insert(
            key.to_string(),
            Object {
                data,
                content_type: opts.content_type.clone(),
                last_modified: Utc::now(),
                e_tag: e_tag.clone(),
            },
        );
        Ok(PutResult {
            size,
            e_tag: Some(e_tag),
        })
    }
}

pub(crate) fn already_exists(operation: &'static str, bucket: &str, key: &str) -> Error {
    Error::new(
        ErrorKind::AlreadyExists,
        operation,
        "the key exists and replace=false",
    )
    .with("bucket", bucket)
    .with("key", key)
}

fn meta(key: &str, o: &Object) -> ObjectMeta {
    ObjectMeta {
        key: key.to_string(),
        size: o.data.len() as u64,
        last_modified: Some(o.last_modified),
        e_tag: Some(o.e_tag.clone()),
        content_type: o.content_type.clone(),
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn create_bucket(&self, bucket: &str) -> Result<bool> {
        validate("object_store.create_bucket", bucket, None)?;
        let mut buckets = self.lock();
        if buckets.contains_key(bucket) {
            return Ok(false);
        }
        buckets.insert(bucket.to_string(), BTreeMap::new());
        Ok(true)
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        validate("object_store.put", bucket, Some(key))?;
        self.store("object_store.put", bucket, key, data, opts)
    }

    async fn put_stream(
        &self,
        bucket: &str,
        key: &str,
        data: BytesStream,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        let op = "object_store.put_stream";
        validate(op, bucket, Some(key))?;
        // The object ends up in memory anyway; collect first so a failing stream
        // stores nothing.
        let chunks: Vec<Bytes> = data
            .try_collect()
            .await
            .map_err(|e| e.with("bucket", bucket).with("key", key))?;
        self.store(op, bucket, key, chunks.concat().into(), opts)
    }

    async fn get_stream(&self, bucket: &str, key: &str) -> Result<BytesStream> {
        let o = self.object("object_store.get", bucket, key)?;
        Ok(futures::stream::once(async move { Ok(o.data) }).boxed())
    }

    async fn get_range(&self, bucket: &str, key: &str, range: Range<u64>) -> Result<Bytes> {
        let op = "object_store.get_range";
        let o = self.object(op, bucket, key)?;
        let r = clamp_range(&range, o.data.len() as u64).map_err(|m| {
            Error::new(ErrorKind::InvalidInput, op, m)
                .with("bucket", bucket)
                .with("key", key)
        })?;
        Ok(o.data.slice(r.start as usize..r.end as usize))
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        let o = self.object("object_store.head", bucket, key)?;
        Ok(meta(key, &o))
    }

    fn list<'a>(&'a self, bucket: &'a str, opts: ListOptions) -> BoxStream<'a, Result<ListEntry>> {
        let op = "object_store.list";
        let entries = validate_list(op, bucket, &opts).and_then(|()| {
            let buckets = self.lock();
            let objects = buckets
                .get(bucket)
                .ok_or_else(|| Self::no_bucket(op, bucket))?;
            let metas = objects.iter().map(|(k, o)| ObjectMeta {
                content_type: None,
                ..meta(k, o)
            });
            Ok(list_sorted(metas.collect(), &opts))
        });
        stream_entries(entries)
    }

    async fn copy(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
    ) -> Result<()> {
        let op = "object_store.copy";
        validate(op, dst_bucket, Some(dst_key))?;
        let o = self.object(op, src_bucket, src_key)?;
        let mut buckets = self.lock();
        let objects = buckets
            .get_mut(dst_bucket)
            .ok_or_else(|| Self::no_bucket(op, dst_bucket))?;
        objects.insert(
            dst_key.to_string(),
            Object {
                last_modified: Utc::now(),
                ..o
            },
        );
        Ok(())
    }

    async fn delete(&self, bucket: &str, keys: &[String]) -> Result<DeleteReport> {
        let op = "object_store.delete";
        validate(op, bucket, None)?;
        for k in keys {
            validate(op, bucket, Some(k))?;
        }
        let mut report = DeleteReport::default();
        for chunk in keys.chunks(DELETE_BATCH) {
            let mut buckets = self.lock();
            let objects = buckets
                .get_mut(bucket)
                .ok_or_else(|| Self::no_bucket(op, bucket))?;
            for k in chunk {
                objects.remove(k);
                report.deleted.push(k.clone());
            }
        }
        Ok(report)
    }
}
