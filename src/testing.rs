//! Unit-testing operators and DAGs without servers (feature `testing`).
//!
//! * [`MemoryStore`]: an in-memory [`ObjectStore`]; operators take it with
//!   `with_store`, so a unit test runs the same code as production on S3.
//! * [`FaultyStore`]: any store with scripted faults — the N-th call of an
//!   operation fails with a given [`ErrorKind`] (retryable or not) or is
//!   delayed — to test an operator's or a DAG's retry path.
//! * [`Context::builder`](crate::Context::builder) gives a task its run:
//!   logical date, params, upstream XComs
//!   ([`xcom`](crate::context::ContextBuilder::xcom)) and connections
//!   ([`connection`](crate::context::ContextBuilder::connection)) without
//!   the environment; [`run_task`] runs one operator in it.
//!
//! * `FaultySql` (with a SQL feature): any `SqlHook` — an in-memory SQLite
//!   in a unit test — with every statement recorded and scripted faults.
//! * `FaultyMlflow` (with `mlflow`): any `MlflowStore` with scripted
//!   faults; `FaultyMlflow::temporary()` is a private `file:` store that
//!   vanishes on drop, the MLflow of unit tests.
//! * `MemoryRedis` (with `redis`): a single Redis node in memory behind
//!   `RedisHook::with_connection`, with scripted faults, for `S3ToRedis`
//!   and the ML operators' Redis sources.
//! * `FakeSupervisor` (with `airflow`): Airflow 3.3's supervisor for a gust
//!   bundle binary — spawns it with `--comm`/`--logs`, sends `StartupDetails`,
//!   answers connections, variables and XComs from scripted maps, records the
//!   requests and log lines, and returns the terminal state (`AirflowOutcome`).
//! * `ScriptedSageMaker` (with `sagemaker`): a SageMaker that answers a
//!   script of requests in order and panics on any other, for the job state
//!   machine of the SageMaker operators (`tests/sagemaker_jobs.rs`).
//!
//! An in-memory SQLite database (`SqliteHook`, the default feature) is the
//! SQL hook of unit tests: it runs real SQL, which a fake recording
//! statements would not. See `docs/TESTING.md`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> gust::Result<()> {
//! use std::sync::Arc;
//! use gust::ErrorKind;
//! use gust::hooks::object_store::ObjectStore;
//! use gust::operators::s3::S3CreateObject;
//! use gust::testing::{Fault, FaultyStore, MemoryStore, StoreOp, run_task};
//!
//! let memory = MemoryStore::new();
//! memory.create_bucket("raw").await?;
//! // The first upload fails as a throttled S3 would; the second succeeds.
//! let store = Arc::new(FaultyStore::new(memory.clone())
//!     .fail_nth(StoreOp::Put, 1, Fault::error(ErrorKind::Unavailable)));
//! let op = S3CreateObject::new("s3://raw/{{ ds }}.csv", "a,b\n").with_store(store.clone());
//! let ctx = gust::Context::builder("dag", "put").build();
//! assert_eq!(run_task(&op, &ctx).await.unwrap_err().kind(), ErrorKind::Unavailable);
//! run_task(&op, &ctx).await?;
//! assert_eq!(store.calls(StoreOp::Put), 2);
//! assert!(memory.exists("raw", &format!("{}.csv", ctx.ds())).await?);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use serde_json::Value;

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
pub use crate::hooks::object_store::MemoryStore;
use crate::hooks::object_store::{
    BytesStream, DeleteReport, ListEntry, ListOptions, ObjectMeta, ObjectStore, PutOptions,
    PutResult,
};
use crate::task::Operator;

#[cfg(feature = "airflow")]
mod airflow;
#[cfg(feature = "mlflow")]
mod mlflow;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sagemaker")]
mod sagemaker;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod sql;
#[cfg(feature = "airflow")]
#[cfg_attr(docsrs, doc(cfg(feature = "airflow")))]
pub use airflow::{AirflowOutcome, FakeSupervisor};
#[cfg(feature = "mlflow")]
#[cfg_attr(docsrs, doc(cfg(feature = "mlflow")))]
pub use mlflow::{FaultyMlflow, MlflowOp};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{MemoryRedis, RedisOp};
#[cfg(feature = "sagemaker")]
#[cfg_attr(docsrs, doc(cfg(feature = "sagemaker")))]
pub use sagemaker::{ScriptedSageMaker, aws_error};
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite")))
)]
pub use sql::{FaultySql, SqlOp};

/// Runs `op` once in `ctx`, as a task's try does (without the task's
/// retries, timeout and callbacks: build a [`Dag`](crate::Dag) for those):
/// its XCom value.
pub async fn run_task(op: &dyn Operator, ctx: &Context) -> Result<Value> {
    op.execute(ctx).await
}

/// The operations of an [`ObjectStore`] a [`FaultyStore`] can fail.
/// `get` and `exists` count as the `GetStream` and `Head` they are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreOp {
    /// `create_bucket`.
    CreateBucket,
    /// `put`.
    Put,
    /// `put_stream`.
    PutStream,
    /// `get_stream` (and `get`).
    GetStream,
    /// `get_range`.
    GetRange,
    /// `head` (and `exists`).
    Head,
    /// `list` (the stream's first item is the error).
    List,
    /// `copy`.
    Copy,
    /// `delete`.
    Delete,
}

impl StoreOp {
    fn name(self) -> &'static str {
        match self {
            StoreOp::CreateBucket => "create_bucket",
            StoreOp::Put => "put",
            StoreOp::PutStream => "put_stream",
            StoreOp::GetStream => "get_stream",
            StoreOp::GetRange => "get_range",
            StoreOp::Head => "head",
            StoreOp::List => "list",
            StoreOp::Copy => "copy",
            StoreOp::Delete => "delete",
        }
    }
}

/// What a scripted call does instead of (or before) the real one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    kind: Option<ErrorKind>,
    retryable: Option<bool>,
    delay: Duration,
}

impl Fault {
    /// Fails the call with an error of `kind` (retryable as the kind is by
    /// default: `Unavailable` and `Timeout` are).
    pub fn error(kind: ErrorKind) -> Self {
        Fault {
            kind: Some(kind),
            retryable: None,
            delay: Duration::ZERO,
        }
    }

    /// Delays the call by `d`, then lets it through.
    pub fn delay(d: Duration) -> Self {
        Fault {
            kind: None,
            retryable: None,
            delay: d,
        }
    }

    /// Overrides whether the injected error is retryable.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = Some(retryable);
        self
    }

    /// Waits `d` before failing (or before letting the call through).
    pub fn after(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

/// Which calls of an operation a rule applies to (1 is the first call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Calls {
    Nth(usize),
    From(usize),
}

/// The fault rules of a decorator and its call counts, per operation.
#[derive(Debug)]
struct Script<Op> {
    rules: Vec<(Op, Calls, Fault)>,
    counts: Mutex<HashMap<Op, usize>>,
}

impl<Op: Copy + Eq + std::hash::Hash> Script<Op> {
    fn new() -> Self {
        Script {
            rules: Vec::new(),
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn calls(&self, op: Op) -> usize {
        self.counts
            .lock()
            .map(|c| c.get(&op).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Counts the call and finds its fault, if any.
    fn next(&self, op: Op) -> (usize, Option<Fault>) {
        let n = match self.counts.lock() {
            Ok(mut c) => {
                let n = c.entry(op).or_insert(0);
                *n += 1;
                *n
            }
            Err(_) => 0,
        };
        let fault = self.rules.iter().find_map(|(o, calls, f)| {
            let hit = *o == op
                && match calls {
                    Calls::Nth(k) => n == *k,
                    Calls::From(k) => n >= *k,
                };
            hit.then(|| f.clone())
        });
        (n, fault)
    }

    /// Counts the call, waits its fault's delay, and fails with its error.
    async fn apply(&self, op: Op, error: impl FnOnce(ErrorKind, usize) -> Error) -> Result<()> {
        let (n, fault) = self.next(op);
        let Some(fault) = fault else { return Ok(()) };
        if !fault.delay.is_zero() {
            tokio::time::sleep(fault.delay).await;
        }
        match fault.kind {
            None => Ok(()),
            Some(kind) => {
                let e = error(kind, n).with("call", n);
                Err(match fault.retryable {
                    Some(r) => e.with_retryable(r),
                    None => e,
                })
            }
        }
    }
}

/// An [`ObjectStore`] that forwards to `inner` except where a rule says a
/// call fails or waits: object_store's `ThrottledStore`, with errors. It
/// counts every call per operation ([`calls`](Self::calls)).
pub struct FaultyStore<S> {
    inner: S,
    script: Script<StoreOp>,
}

impl<S: fmt::Debug> fmt::Debug for FaultyStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore")
            .field("inner", &self.inner)
            .field("rules", &self.script.rules)
            .finish_non_exhaustive()
    }
}

impl<S: ObjectStore> FaultyStore<S> {
    /// `inner` with no faults yet.
    pub fn new(inner: S) -> Self {
        FaultyStore {
            inner,
            script: Script::new(),
        }
    }

    /// The `n`-th call of `op` (1 for the first) gets `fault`.
    pub fn fail_nth(mut self, op: StoreOp, n: usize, fault: Fault) -> Self {
        self.script.rules.push((op, Calls::Nth(n.max(1)), fault));
        self
    }

    /// Every call of `op` from the `n`-th on gets `fault` (1: every call).
    pub fn fail_from(mut self, op: StoreOp, n: usize, fault: Fault) -> Self {
        self.script.rules.push((op, Calls::From(n.max(1)), fault));
        self
    }

    /// How many calls of `op` were made (failed ones included).
    pub fn calls(&self, op: StoreOp) -> usize {
        self.script.calls(op)
    }

    /// The store behind the faults.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Applies the call's fault: waits, then fails or lets it through.
    async fn before(&self, op: StoreOp, bucket: &str, key: Option<&str>) -> Result<()> {
        self.script
            .apply(op, |kind, _| {
                let e = Error::new(kind, format!("faulty.{}", op.name()), "injected fault")
                    .with("bucket", bucket);
                match key {
                    Some(k) => e.with("key", k),
                    None => e,
                }
            })
            .await
    }
}

#[async_trait]
impl<S: ObjectStore> ObjectStore for FaultyStore<S> {
    async fn create_bucket(&self, bucket: &str) -> Result<bool> {
        self.before(StoreOp::CreateBucket, bucket, None).await?;
        self.inner.create_bucket(bucket).await
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        self.before(StoreOp::Put, bucket, Some(key)).await?;
        self.inner.put(bucket, key, data, opts).await
    }

    async fn put_stream(
        &self,
        bucket: &str,
        key: &str,
        data: BytesStream,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        self.before(StoreOp::PutStream, bucket, Some(key)).await?;
        self.inner.put_stream(bucket, key, data, opts).await
    }

    async fn get_stream(&self, bucket: &str, key: &str) -> Result<BytesStream> {
        self.before(StoreOp::GetStream, bucket, Some(key)).await?;
        self.inner.get_stream(bucket, key).await
    }

    async fn get_range(&self, bucket: &str, key: &str, range: Range<u64>) -> Result<Bytes> {
        self.before(StoreOp::GetRange, bucket, Some(key)).await?;
        self.inner.get_range(bucket, key, range).await
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        self.before(StoreOp::Head, bucket, Some(key)).await?;
        self.inner.head(bucket, key).await
    }

    fn list<'a>(&'a self, bucket: &'a str, opts: ListOptions) -> BoxStream<'a, Result<ListEntry>> {
        futures::stream::once(async move {
            match self.before(StoreOp::List, bucket, None).await {
                Ok(()) => self.inner.list(bucket, opts),
                Err(e) => futures::stream::once(async { Err(e) }).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    async fn copy(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
    ) -> Result<()> {
        self.before(StoreOp::Copy, dst_bucket, Some(dst_key))
            .await?;
        self.inner
            .copy(src_bucket, src_key, dst_bucket, dst_key)
            .await
    }

    async fn delete(&self, bucket: &str, keys: &[String]) -> Result<DeleteReport> {
        self.before(StoreOp::Delete, bucket, None).await?;
        self.inner.delete(bucket, keys).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::object_store::{ListKeys, ObjectStoreExt};
    use futures::TryStreamExt;

    async fn keys(store: &dyn ObjectStore, bucket: &str) -> Vec<String> {
        store
            .list_keys_stream(bucket, &ListKeys::new())
            .try_collect()
            .await
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn faults_hit_the_scripted_calls_only() {
        let memory = MemoryStore::new();
        memory.create_bucket("b").await.unwrap();
        let store = FaultyStore::new(memory.clone())
            .fail_nth(StoreOp::Put, 2, Fault::error(ErrorKind::Unavailable))
            .fail_from(
                StoreOp::Head,
                2,
                Fault::error(ErrorKind::Auth).retryable(true),
            )
            .fail_nth(StoreOp::List, 1, Fault::error(ErrorKind::Timeout))
            .fail_nth(StoreOp::GetStream, 1, Fault::delay(Duration::from_secs(3)));
        let opts = PutOptions::new();
        store
            .put("b", "k1", Bytes::from_static(b"1"), &opts)
            .await
            .unwrap();
        let e = store
            .put("b", "k2", Bytes::from_static(b"2"), &opts)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_retryable());
        assert_eq!(e.operation(), "faulty.put");
        assert_eq!(e.context("key"), Some("k2"));
        assert_eq!(e.context("call"), Some("2"));
        store
            .put("b", "k2", Bytes::from_static(b"2"), &opts)
            .await
            .unwrap();
        assert_eq!(store.calls(StoreOp::Put), 3);

        assert!(store.exists("b", "k1").await.unwrap());
        for _ in 0..2 {
            let e = store.head("b", "k1").await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Auth);
            assert!(e.is_retryable());
        }

        let first: Vec<_> = store.list("b", ListOptions::new()).collect().await;
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].as_ref().unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(keys(&store, "b").await, ["k1", "k2"]);

        let began = tokio::time::Instant::now();
        assert_eq!(&store.get("b", "k1").await.unwrap()[..], b"1");
        assert_eq!(began.elapsed(), Duration::from_secs(3));
        // Nothing injected reached the inner store.
        assert_eq!(keys(&memory, "b").await, ["k1", "k2"]);
    }
}
