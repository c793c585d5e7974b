//! [`RedisHook`]: Redis, a single node or a Redis Cluster (feature `redis`).
//!
//! # The connection
//!
//! The mode is chosen by the [`Connection`]:
//!
//! ```text
//! # a single node, database 0 (the schema, or extra `db`)
//! AIRFLOW_CONN_REDIS_DEFAULT='redis://:password@cache:6379/0'
//! # a cluster: extra cluster=true, discovered from startup_nodes (else host:port)
//! AIRFLOW_CONN_REDIS_CLUSTER='redis://:password@node1:7000/?cluster=true&startup_nodes=node1%3A7000%2Cnode2%3A7000'
//! # TLS, Airflow-style (the system's CAs, or a private CA's PEM file)
//! AIRFLOW_CONN_REDIS_TLS='redis://app:password@cache:6380/?ssl=true'
//! AIRFLOW_CONN_REDIS_TLS='redis://app:password@cache:6380/?ssl=true&ssl_ca_certs=%2Fetc%2Fredis%2Fca.pem'
//! ```
//!
//! See [`RedisConfig::from_connection`] for every extra. A non-empty login is an ACL
//! user; `redis://:pw@h` authenticates the default user.
//!
//! # Cluster mode
//!
//! The redis crate's cluster client learns the slot map from the startup nodes and
//! follows `MOVED`/`ASK` redirects, refreshing its map. gust adds what it lacks:
//! multi-key calls ([`mget`](RedisHook::mget), [`mset`](RedisHook::mset),
//! [`delete`](RedisHook::delete)) are split into one command per hash slot, so
//! keys on different masters never fail with `CROSSSLOT`;
//! [`execute`](RedisHook::execute) sends one pipeline per master (per slot after
//! a redirect); and [`scan`](RedisHook::scan) walks every master.
//!
//! # Errors
//!
//! Every error names the operation (`redis.get`, …) and the conn id, never the
//! password: a wrong password or a refused TLS certificate is [`ErrorKind::Auth`]
//! (not retryable), an unreachable
//! node [`ErrorKind::Unavailable`] and a timeout [`ErrorKind::Timeout`] (both
//! retryable), a command on a key of another type [`ErrorKind::InvalidInput`], and a
//! cluster node reached without `cluster=true` [`ErrorKind::Config`].

mod batch;
mod config;
mod error;
mod rows;
mod scan;
mod slot;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ConnectionAddr, FromRedisValue, IntoConnectionInfo, RedisConnectionInfo};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use batch::RedisBatch;
pub use config::{DEFAULT_PORT, RedisConfig, TlsConfig};
pub use slot::{SLOTS, key_slot};

use crate::connection::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::scope::HookScope;
use crate::retry::Backoff;

/// Conn id used when none is given, as in Airflow.
pub const DEFAULT_CONN_ID: &str = "redis_default";

/// Most commands in one pipeline or one `MGET`/`MSET`/`DEL`; bounds memory per request.
const MAX_GROUP: usize = 1000;
/// Pipelines in flight at once in cluster mode (the connection multiplexes them).
const CONCURRENCY: usize = 16;

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    /// A connection the application supplied ([`RedisHook::with_connection`]).
    Custom(CustomConn),
}

/// Any [`redis::aio::ConnectionLike`], shared by the hook's clones. Calls take
/// turns: a supplied connection is a fake or a wrapper, where throughput does
/// not matter but a `&mut self` API does.
#[derive(Clone)]
struct CustomConn(Arc<tokio::sync::Mutex<Box<dyn ConnectionLike + Send>>>);

impl ConnectionLike for CustomConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> redis::RedisFuture<'a, redis::Value> {
        Box::pin(async move { self.0.lock().await.req_packed_command(cmd).await })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        Box::pin(async move {
            self.0
                .lock()
                .await
                .req_packed_commands(pipeline, offset, count)
                .await
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// An async client of one Redis node or one Redis Cluster, built from a [`Connection`].
///
/// Cheap to clone (clones share the connections); safe to use from many tasks.
/// See the [module docs](self) for the connection form and the error kinds.
#[derive(Clone)]
pub struct RedisHook {
    config: Arc<RedisConfig>,
    /// Every error goes through it (conn id, the connection's and the
    /// configuration's passwords).
    scope: HookScope,
    conn: Conn,
    /// Cluster mode: which master serves which slots, learnt by the first
    /// [`execute`](RedisHook::execute) and forgotten on a redirect.
    slot_map: Arc<std::sync::Mutex<Option<Arc<SlotMap>>>>,
}

/// `(first slot, last slot, master)` ranges, sorted, from `CLUSTER SLOTS`.
type SlotMap = Vec<(u16, u16, (String, u16))>;

impl fmt::Debug for RedisHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisHook")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// How long the redis crate waits between its own retries (a cluster's
/// redirects and reconnects, a single node's reconnects). The crate computes the
/// delays itself, with its own jitter; the numbers are kept here, in gust's one
/// [`Backoff`] shape (see [`crate::retry`]): 100 ms doubling, at most 2 s.
const RECONNECT: Backoff = Backoff::exponential(std::time::Duration::from_millis(100))
    .max_delay(std::time::Duration::from_secs(2));

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RedisHook {
    /// Connects with the connection `conn_id` (`AIRFLOW_CONN_<CONN_ID>`, else the secrets backend; see [`Connection::get`](crate::Connection::get)).
    pub async fn from_conn_id(conn_id: &str) -> Result<Self> {
        Self::from_connection(&Connection::get(conn_id)?).await
    }

    /// Connects with `conn` (see [`RedisConfig::from_connection`]).
    pub async fn from_connection(conn: &Connection) -> Result<Self> {
        let config = RedisConfig::from_connection(conn)?;
        Self::open(config, conn.secrets()).await
    }

    /// Connects with an explicit configuration.
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        Self::open(config, Vec::new()).await
    }

    /// Connects with `config`, scrubbing `secrets` (the connection's) and the
    /// configuration's password from every error.
    async fn open(config: RedisConfig, secrets: Vec<String>) -> Result<Self> {
        let scope = HookScope::named("redis", &config.conn_id, secrets)
            .with_secrets(config.password.iter().cloned());
        let nodes = config
            .nodes
            .iter()
            .map(|(host, port)| format!("{host}:{port}"))
            .collect::<Vec<_>>()
            .join(", ");
        // The driver's text ("Connection refused (os error 111)") lacks the nodes.
        let fail = |e: redis::RedisError| {
            scope.wrap(
                "connect",
                error::into_error(e, config.cluster)
                    .map_message(|m| format!("cannot connect to {nodes}: {m}")),
            )
        };
        if config.tls.is_some() {
            ensure_crypto_provider();
        }
        let certs = tls_certificates(&config).map_err(|e| scope.wrap("connect", e))?;
        let infos = config
            .nodes
            .iter()
            .map(|(host, port)| node_info(&config, host, *port))
            .collect::<redis::RedisResult<Vec<_>>>()
            .map_err(fail)?;
        let conn = if config.cluster {
            let mut builder = ClusterClient::builder(infos)
                .connection_timeout(config.connect_timeout)
                .response_timeout(config.response_timeout)
                .retries(3)
                .min_retry_wait(millis(RECONNECT.base))
                .max_retry_wait(millis(RECONNECT.max_delay.unwrap_or(RECONNECT.base)))
                .retry_wait_formula(millis(RECONNECT.base), u64::from(RECONNECT.factor));
            if let Some(user) = &config.username {
                builder = builder.username(user);
            }
            if let Some(password) = &config.password {
                builder = builder.password(password);
            }
            if let Some(certs) = certs {
                builder = builder.certs(certs);
            }
            let client = builder.build().map_err(fail)?;
            Conn::Cluster(client.get_async_connection().await.map_err(fail)?)
        } else {
            let info = infos.into_iter().next().ok_or_else(|| {
                scope.error(ErrorKind::Config, "connect", "no node to connect to")
            })?;
            let client = single_client(&config, info, certs).map_err(fail)?;
            // Few reconnect attempts: the task's retry policy is the place for patience.
            let manager = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.connect_timeout))
                .set_response_timeout(Some(config.response_timeout))
                .set_number_of_retries(1)
                .set_min_delay(RECONNECT.base)
                .set_exponent_base(RECONNECT.factor as f32)
                .set_max_delay(RECONNECT.max_delay.unwrap_or(RECONNECT.base));
            Conn::Single(
                ConnectionManager::new_with_config(client, manager)
                    .await
                    .map_err(fail)?,
            )
        };
        tracing::debug!(conn_id = %config.conn_id, cluster = config.cluster, nodes = ?config.nodes, "redis connected");
        Ok(RedisHook {
            config: Arc::new(config),
            scope,
            conn,
            slot_map: Arc::default(),
        })
    }

    /// A hook that sends its commands through `conn`, any
    /// [`redis::aio::ConnectionLike`], as a single node: an in-memory Redis in
    /// unit tests (`gust::testing::MemoryRedis`, feature `testing`), a mock
    /// from the `redis-test` crate, or a connection the application set up
    /// itself. Errors name `conn_id`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> gust::Result<()> {
    /// # #[cfg(feature = "testing")] {
    /// use gust::hooks::redis::RedisHook;
    ///
    /// let redis = RedisHook::with_connection("redis_default", gust::testing::MemoryRedis::new());
    /// redis.set("k", "v", None).await?;
    /// assert_eq!(redis.get_string("k").await?.as_deref(), Some("v"));
    /// # }
    /// # Ok(()) }
    /// ```
    pub fn with_connection(conn_id: &str, conn: impl ConnectionLike + Send + 'static) -> Self {
        let config = RedisConfig::custom(conn_id);
        RedisHook {
            scope: HookScope::named("redis", conn_id, Vec::new()),
            config: Arc::new(config),
            conn: Conn::Custom(CustomConn(Arc::new(tokio::sync::Mutex::new(Box::new(
                conn,
            ))))),
            slot_map: Arc::default(),
        }
    }

    /// The connection id this hook was built from.
    pub fn conn_id(&self) -> &str {
        &self.config.conn_id
    }

    /// The configuration read from the connection.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// Whether this hook talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.config.cluster
    }

    /// Checks that the server answers `PING` and, for a cluster, that
    /// `CLUSTER INFO` reports `cluster_state:ok` (Airflow's `test_connection`).
    pub async fn test_connection(&self) -> Result<()> {
        let pong: String = self
            .query("redis.test_connection", None, &redis::cmd("PING"))
            .await?;
        if pong != "PONG" {
            return Err(self.scope.error(
                ErrorKind::Remote,
                "redis.test_connection",
                format!("PING answered {pong:?}"),
            ));
        }
        if self.is_cluster() {
            let mut cmd = redis::cmd("CLUSTER");
            cmd.arg("INFO");
            let info: String = self.query("redis.test_connection", None, &cmd).await?;
            if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
                return Err(self.scope.error(
                    ErrorKind::Unavailable,
                    "redis.test_connection",
                    "the cluster does not report cluster_state:ok",
                ));
            }
        }
        Ok(())
    }

    /// `GET key`: the value, or `None` when the key does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        self.query("redis.get", Some(key), &cmd).await
    }

    /// `GET key` as UTF-8 text; a binary value is an [`ErrorKind::InvalidInput`] error.
    pub async fn get_string(&self, key: &str) -> Result<Option<String>> {
        self.get(key)
            .await?
            .map(|v| {
                String::from_utf8(v).map_err(|e| {
                    self.scope
                        .error(ErrorKind::InvalidInput, "redis.get_string", e.to_string())
                        .with("key", key)
                })
            })
            .transpose()
    }

    /// `SET key value`, expiring after `ttl` when given (`PX`, millisecond precision;
    /// a zero `ttl` is rejected by Redis as invalid input).
    pub async fn set(
        &self,
        key: &str,
        value: impl AsRef<[u8]>,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let cmd = batch::command(key, &batch::Op::Set(value.as_ref().to_vec(), ttl));
        self.query::<()>("redis.set", Some(key), &cmd).await
    }

    /// Reads `key` and parses it as JSON; `None` when the key does not exist.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.get(key)
            .await?
            .map(|v| self.parse_json("redis.get_json", key, &v))
            .transpose()
    }

    /// Stores `value` as JSON under `key` (see [`set`](Self::set) for `ttl`).
    pub async fn set_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let json = self.to_json_bytes("redis.set_json", key, value)?;
        self.set(key, json, ttl).await
    }

    /// The values of `keys`, in order (`None` for a missing key). One `MGET` per
    /// hash slot in cluster mode, so the keys may live on different masters.
    pub async fn mget<K: AsRef<str>>(&self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>> {
        let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        let parts = self
            .for_groups(&keys, |idx| {
                let mut cmd = redis::cmd("MGET");
                for &i in &idx {
                    cmd.arg(keys[i]);
                }
                let first = keys[idx[0]];
                async move {
                    let values: Vec<Option<Vec<u8>>> =
                        self.query("redis.mget", Some(first), &cmd).await?;
                    Ok((idx, values))
                }
            })
            .await?;
        Ok(scatter(keys.len(), parts))
    }

    /// [`mget`](Self::mget), each present value parsed as JSON.
    pub async fn mget_json<K: AsRef<str>, T: DeserializeOwned>(
        &self,
        keys: &[K],
    ) -> Result<Vec<Option<T>>> {
        let values = self.mget(keys).await?;
        values
            .into_iter()
            .zip(keys)
            .map(|(v, k)| {
                v.map(|v| self.parse_json("redis.mget_json", k.as_ref(), &v))
                    .transpose()
            })
            .collect()
    }

    /// Sets every `(key, value)` pair: one `MSET` per hash slot in cluster mode.
    /// Atomic per slot, not across slots.
    pub async fn mset<K: AsRef<str>, V: AsRef<[u8]>>(&self, pairs: &[(K, V)]) -> Result<()> {
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_ref()).collect();
        self.for_groups(&keys, |idx| {
            let mut cmd = redis::cmd("MSET");
            for &i in &idx {
                cmd.arg(keys[i]).arg(pairs[i].1.as_ref());
            }
            let first = keys[idx[0]];
            async move {
                self.query::<()>("redis.mset", Some(first), &cmd).await?;
                Ok((idx, ()))
            }
        })
        .await?;
        Ok(())
    }

    /// Stores each value as JSON under its key (see [`mset`](Self::mset)).
    pub async fn mset_json<K: AsRef<str>, T: Serialize>(&self, pairs: &[(K, T)]) -> Result<()> {
        let encoded = pairs
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.as_ref(),
                    self.to_json_bytes("redis.mset_json", k.as_ref(), v)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        self.mset(&encoded).await
    }

    /// Deletes `keys`; returns how many existed. One `DEL` per hash slot in cluster mode.
    pub async fn delete<K: AsRef<str>>(&self, keys: &[K]) -> Result<u64> {
        let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        let parts = self
            .for_groups(&keys, |idx| {
                let mut cmd = redis::cmd("DEL");
                for &i in &idx {
                    cmd.arg(keys[i]);
                }
                let first = keys[idx[0]];
                async move {
                    let n: u64 = self.query("redis.delete", Some(first), &cmd).await?;
                    Ok((idx, n))
                }
            })
            .await?;
        Ok(parts.into_iter().map(|(_, n)| n).sum())
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(key);
        self.query("redis.exists", Some(key), &cmd).await
    }

    /// Makes `key` expire after `ttl`; `false` when the key does not exist.
    pub async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let cmd = batch::command(key, &batch::Op::Expire(ttl));
        self.query("redis.expire", Some(key), &cmd).await
    }

    /// Removes the expiration of `key`; `false` when it had none or does not exist.
    pub async fn persist(&self, key: &str) -> Result<bool> {
        let mut cmd = redis::cmd("PERSIST");
        cmd.arg(key);
        self.query("redis.persist", Some(key), &cmd).await
    }

    /// The time `key` has left to live: `None` when it never expires,
    /// an [`ErrorKind::NotFound`] error when it does not exist.
    pub async fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        let mut cmd = redis::cmd("PTTL");
        cmd.arg(key);
        let ms: i64 = self.query("redis.ttl", Some(key), &cmd).await?;
        match ms {
            -2 => Err(self
                .scope
                .error(ErrorKind::NotFound, "redis.ttl", "no such key")
                .with("key", key)),
            ms if ms < 0 => Ok(None),
            ms => Ok(Some(Duration::from_millis(ms.unsigned_abs()))),
        }
    }

    /// Runs `batch` and returns one JSON reply per command, in order (see
    /// [`RedisBatch`]).
    ///
    /// In cluster mode the commands are first sent as one pipeline per *master*
    /// (up to 1,000 commands each, slots mixed), routed by address from the slot
    /// map `CLUSTER SLOTS` gave: keys of a batch are spread over all 16,384
    /// slots, so per-slot pipelines would carry about one command each. A
    /// pipeline that meets a redirect (`MOVED`/`ASK`: the map is stale) is sent
    /// again per slot, which follows redirects, and the map is fetched anew; the
    /// commands it ran before are run again, so their replies are the second
    /// run's (a `DEL` already done replies 0). A pipeline that gets no answer (a
    /// master killed, not yet replaced by its replica) fails the call with a
    /// retryable error and the map is forgotten too, so a retry follows the
    /// cluster's new map.
    pub async fn execute(&self, batch: &RedisBatch) -> Result<Vec<serde_json::Value>> {
        if self.is_cluster() && batch.ops.len() > 1 {
            return self.execute_by_master(batch).await;
        }
        self.execute_by_slot(batch, &(0..batch.ops.len()).collect::<Vec<_>>())
            .await
    }

    /// The cluster path of [`execute`](Self::execute): pipelines per master.
    async fn execute_by_master(&self, batch: &RedisBatch) -> Result<Vec<serde_json::Value>> {
        use redis::cluster_routing::SingleNodeRoutingInfo;
        let map = self.slot_map().await?;
        let mut by_master: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, (key, _)) in batch.ops.iter().enumerate() {
            let slot = key_slot(key.as_bytes());
            let at = map.partition_point(|(_, last, _)| *last < slot);
            // A slot no master serves: the per-slot path reports it.
            let node = if map.get(at).is_some_and(|(first, _, _)| *first <= slot) {
                at
            } else {
                usize::MAX
            };
            by_master.entry(node).or_default().push(i);
        }
        let groups: Vec<(usize, Vec<usize>)> = by_master
            .into_iter()
            .flat_map(|(node, idx)| {
                idx.chunks(MAX_GROUP)
                    .map(|c| (node, c.to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let Conn::Cluster(conn) = &self.conn else {
            return self
                .execute_by_slot(batch, &(0..batch.ops.len()).collect::<Vec<_>>())
                .await;
        };
        let parts: Vec<(Vec<usize>, Vec<serde_json::Value>)> = futures::stream::iter(groups)
            .map(|(node, idx)| {
                let map = map.clone();
                let mut conn = conn.clone();
                async move {
                    let Some((_, _, (host, port))) = map.get(node) else {
                        let values = self.execute_by_slot(batch, &idx).await?;
                        return Ok((idx, values));
                    };
                    let mut pipe = redis::pipe();
                    for &i in &idx {
                        let (key, op) = &batch.ops[i];
                        pipe.add_command(batch::command(key, op));
                    }
                    let route = SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port: *port,
                    };
                    let first = batch.ops[idx[0]].0.as_str();
                    let values = conn
                        .route_pipeline(pipe, 0, idx.len(), route)
                        .await
                        .map_err(|e| {
                            // The master may be gone (killed, its replica promoted):
                            // routed by address, every retry would go to it again,
                            // so the next call asks CLUSTER SLOTS anew.
                            *lock(&self.slot_map) = None;
                            self.driver_error(e, "redis.execute", Some(first))
                        })?;
                    let mut redirected = false;
                    for (v, &i) in values.iter().zip(&idx) {
                        if let redis::Value::ServerError(e) = v {
                            if matches!(
                                e.kind(),
                                Some(redis::ServerErrorKind::Moved | redis::ServerErrorKind::Ask)
                            ) {
                                redirected = true;
                            } else {
                                let key = batch.ops[i].0.as_str();
                                return Err(self.driver_error(
                                    e.clone().into(),
                                    "redis.execute",
                                    Some(key),
                                ));
                            }
                        }
                    }
                    if redirected || values.len() != idx.len() {
                        // The slot map is stale: forget it, and let the per-slot
                        // pipelines follow the redirects (writes are idempotent).
                        *lock(&self.slot_map) = None;
                        tracing::debug!(conn_id = %self.conn_id(), host, port, "redis slot map stale: pipelines per slot");
                        let values = self.execute_by_slot(batch, &idx).await?;
                        return Ok((idx, values));
                    }
                    Ok((idx, values.into_iter().map(batch::to_json).collect()))
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(scatter(batch.ops.len(), parts))
    }

    /// The slot map, from `CLUSTER SLOTS` when not known yet.
    async fn slot_map(&self) -> Result<Arc<SlotMap>> {
        if let Some(map) = lock(&self.slot_map).clone() {
            return Ok(map);
        }
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SLOTS");
        // [[first, last, [host, port, id, …], replicas…], …]
        let ranges: Vec<Vec<redis::Value>> = self.query("redis.execute", None, &cmd).await?;
        let mut map: SlotMap = ranges
            .into_iter()
            .filter_map(|r| {
                let first: u16 = redis::from_redis_value(r.first()?.clone()).ok()?;
                let last: u16 = redis::from_redis_value(r.get(1)?.clone()).ok()?;
                let master: Vec<redis::Value> = redis::from_redis_value(r.get(2)?.clone()).ok()?;
                let host: String = redis::from_redis_value(master.first()?.clone()).ok()?;
                let port: u16 = redis::from_redis_value(master.get(1)?.clone()).ok()?;
                Some((first, last, (host, port)))
            })
            .collect();
        map.sort();
        let map = Arc::new(map);
        *lock(&self.slot_map) = Some(map.clone());
        Ok(map)
    }

    /// Runs the commands `idx` of `batch` as one pipeline per hash slot (chunks
    /// of [`MAX_GROUP`] on a single node); their replies, in the order of `idx`.
    async fn execute_by_slot(
        &self,
        batch: &RedisBatch,
        idx: &[usize],
    ) -> Result<Vec<serde_json::Value>> {
        let idx_of = idx;
        let keys: Vec<&str> = idx.iter().map(|&i| batch.ops[i].0.as_str()).collect();
        let parts = self
            .for_groups(&keys, |idx| {
                let mut pipe = redis::pipe();
                for &i in &idx {
                    let (key, op) = &batch.ops[idx_of[i]];
                    pipe.add_command(batch::command(key, op));
                }
                let first = keys[idx[0]];
                async move {
                    let values: Vec<redis::Value> = self
                        .run("redis.execute", Some(first), |c| {
                            let pipe = pipe.clone();
                            async move {
                                match c {
                                    Conn::Single(mut c) => pipe.query_async(&mut c).await,
                                    Conn::Cluster(mut c) => pipe.query_async(&mut c).await,
                                    Conn::Custom(mut c) => pipe.query_async(&mut c).await,
                                }
                            }
                        })
                        .await?;
                    Ok((idx, values.into_iter().map(batch::to_json).collect()))
                }
            })
            .await?;
        Ok(scatter(keys.len(), parts))
    }

    // ---- plumbing ----

    /// Runs `cmd` (routed by its key in cluster mode) and converts the reply.
    async fn query<T: FromRedisValue>(
        &self,
        op: &'static str,
        key: Option<&str>,
        cmd: &Cmd,
    ) -> Result<T> {
        self.run(op, key, |c| async move {
            match c {
                Conn::Single(mut c) => cmd.query_async(&mut c).await,
                Conn::Cluster(mut c) => cmd.query_async(&mut c).await,
                Conn::Custom(mut c) => cmd.query_async(&mut c).await,
            }
        })
        .await
    }

    /// Runs `f` on a clone of the connection (both client kinds are handles to a
    /// shared multiplexed connection) and maps its error.
    async fn run<T, F, Fut>(&self, op: &'static str, key: Option<&str>, f: F) -> Result<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        f(self.conn.clone())
            .await
            .map_err(|e| self.driver_error(e, op, key))
    }

    /// Splits the indices of `keys` into groups that one command may carry: chunks
    /// of [`MAX_GROUP`] on a single node, one hash slot per group in a cluster. Runs
    /// `f` on each group ([`CONCURRENCY`] at a time) and returns the results.
    async fn for_groups<'a, T, F, Fut>(
        &'a self,
        keys: &[&str],
        f: F,
    ) -> Result<Vec<(Vec<usize>, T)>>
    where
        F: Fn(Vec<usize>) -> Fut,
        Fut: Future<Output = Result<(Vec<usize>, T)>> + 'a,
    {
        let groups: Vec<Vec<usize>> = if self.is_cluster() {
            let mut by_slot: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
            for (i, k) in keys.iter().enumerate() {
                by_slot.entry(key_slot(k.as_bytes())).or_default().push(i);
            }
            by_slot
                .into_values()
                .flat_map(|g| {
                    g.chunks(MAX_GROUP)
                        .map(<[usize]>::to_vec)
                        .collect::<Vec<_>>()
                })
                .collect()
        } else {
            (0..keys.len())
                .collect::<Vec<_>>()
                .chunks(MAX_GROUP)
                .map(<[usize]>::to_vec)
                .collect()
        };
        tracing::trace!(conn_id = %self.conn_id(), keys = keys.len(), groups = groups.len(), "redis batch");
        futures::stream::iter(groups.into_iter().map(f))
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await
    }

    /// A driver error of operation `op` on `key`: classified, then through the scope.
    fn driver_error(&self, e: redis::RedisError, op: &'static str, key: Option<&str>) -> Error {
        let mut e = error::into_error(e, self.is_cluster());
        if let Some(key) = key {
            e = e.with("key", key);
        }
        self.scope.wrap(op, e)
    }

    fn parse_json<T: DeserializeOwned>(&self, op: &'static str, key: &str, v: &[u8]) -> Result<T> {
        serde_json::from_slice(v).map_err(|e| {
            let msg = format!("the value is not the expected JSON: {e}");
            self.scope
                .wrap(
                    op,
                    Error::new(ErrorKind::InvalidInput, "", msg).with_source(e),
                )
                .with("key", key)
        })
    }

    fn to_json_bytes<T: Serialize + ?Sized>(
        &self,
        op: &'static str,
        key: &str,
        v: &T,
    ) -> Result<Vec<u8>> {
        serde_json::to_vec(v).map_err(|e| {
            self.scope
                .wrap(
                    op,
                    Error::new(ErrorKind::InvalidInput, "", e.to_string()).with_source(e),
                )
                .with("key", key)
        })
    }
}

/// Locks `m`, recovering from a poisoned lock (the map is only a cache).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Puts each group's results back at the indices they came from.
fn scatter<T: Default>(len: usize, parts: Vec<(Vec<usize>, Vec<T>)>) -> Vec<T> {
    let mut out: Vec<T> = (0..len).map(|_| T::default()).collect();
    for (idx, values) in parts {
        for (i, v) in idx.into_iter().zip(values) {
            out[i] = v;
        }
    }
    out
}

fn node_info(
    config: &RedisConfig,
    host: &str,
    port: u16,
) -> redis::RedisResult<redis::ConnectionInfo> {
    let addr = match &config.tls {
        None => ConnectionAddr::Tcp(host.to_string(), port),
        // `insecure` would turn off certificate verification altogether; an
        // unchecked hostname is set on the client (see `single_client`).
        Some(_) => ConnectionAddr::TcpTls {
            host: host.to_string(),
            port,
            insecure: false,
            tls_params: None,
        },
    };
    let mut settings = RedisConnectionInfo::default().set_db(config.db);
    if let Some(user) = &config.username {
        settings = settings.set_username(user);
    }
    if let Some(password) = &config.password {
        settings = settings.set_password(password);
    }
    Ok(addr.into_connection_info()?.set_redis_settings(settings))
}

/// The CAs of extra `ssl_ca_certs`, read from their file; `None` without TLS or
/// without the extra (the system's CAs are trusted).
fn tls_certificates(config: &RedisConfig) -> Result<Option<redis::TlsCertificates>> {
    let Some(path) = config.tls.as_ref().and_then(|t| t.ca_certs.as_ref()) else {
        return Ok(None);
    };
    let pem = std::fs::read(path).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            "",
            format!("cannot read the CA file of extra `ssl_ca_certs`: {e}"),
        )
        .with("path", path.display().to_string())
    })?;
    Ok(Some(redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    }))
}

/// The client of a single node: with the CAs of `certs` when given, and without
/// a hostname check when `ssl_check_hostname` is false (the chain still verified).
fn single_client(
    config: &RedisConfig,
    info: redis::ConnectionInfo,
    certs: Option<redis::TlsCertificates>,
) -> redis::RedisResult<redis::Client> {
    let client = match certs {
        Some(certs) => redis::Client::build_with_tls(info, certs)?,
        None => redis::Client::open(info)?,
    };
    if config.tls.as_ref().is_some_and(|t| !t.check_hostname) {
        // `build_with_tls` resets the flag, so it is set on the built client's
        // address and the client made again from it.
        let info = client.get_connection_info().clone();
        let mut addr = info.addr().clone();
        addr.set_danger_accept_invalid_hostnames(true);
        return redis::Client::open(info.set_addr(addr));
    }
    Ok(client)
}

/// rustls needs a process-wide crypto provider. When the application installed none,
/// gust installs *ring*: with several rustls backends compiled in (as `--all-features`
/// does through other crates) rustls cannot pick one itself and would panic.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a provider is then installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
