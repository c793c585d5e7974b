//! [`RedisBatch`]: commands sent together, grouped by hash slot in cluster mode.

use std::time::Duration;

use redis::Cmd;
use serde::Serialize;
use serde_json::Value as Json;

use crate::error::{Error, ErrorKind, Result};

/// One command of a batch.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Get,
    Set(Vec<u8>, Option<Duration>),
    HSet(Vec<(String, Vec<u8>)>),
    Delete,
    Expire(Duration),
    Exists,
}

/// A list of single-key commands sent to Redis in as few round trips as possible:
/// one pipeline on a single node; in cluster mode one pipeline per hash slot, so a
/// batch of `row:{i}` writes spread over all masters never fails with CROSSSLOT.
///
/// A batch is not a transaction: each command succeeds or fails on its own, and
/// [`RedisHook::execute`](super::RedisHook::execute) reports the first failure.
///
/// ```
/// # use std::time::Duration;
/// let mut batch = gust::hooks::redis::RedisBatch::new();
/// batch.set("a", "1", None).get("a").expire("a", Duration::from_secs(60)).delete("a");
/// batch.hset("h", [("name", "iris"), ("petals", "4")]);
/// assert_eq!(batch.len(), 5);
/// ```
#[derive(Debug, Clone, Default)]
pub struct RedisBatch {
    pub(crate) ops: Vec<(String, Op)>,
}

impl RedisBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// `GET key`; replies the value as a JSON string (or `null` when missing).
    pub fn get(&mut self, key: impl Into<String>) -> &mut Self {
        self.ops.push((key.into(), Op::Get));
        self
    }

    /// `SET key value [PX ttl]`; replies `"OK"`.
    pub fn set(
        &mut self,
        key: impl Into<String>,
        value: impl AsRef<[u8]>,
        ttl: Option<Duration>,
    ) -> &mut Self {
        self.ops
            .push((key.into(), Op::Set(value.as_ref().to_vec(), ttl)));
        self
    }

    /// `SET key <value as JSON> [PX ttl]`.
    pub fn set_json<T: Serialize + ?Sized>(
        &mut self,
        key: impl Into<String>,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<&mut Self> {
        let key = key.into();
        let json = serde_json::to_vec(value).map_err(|e| {
            Error::new(ErrorKind::InvalidInput, "redis.batch", e.to_string())
                .with("key", &key)
                .with_source(e)
        })?;
        Ok(self.set(key, json, ttl))
    }

    /// `HSET key field value [field value …]`; replies the number of fields
    /// added. Redis refuses an `HSET` without fields (invalid input).
    pub fn hset<F: Into<String>, V: AsRef<[u8]>>(
        &mut self,
        key: impl Into<String>,
        fields: impl IntoIterator<Item = (F, V)>,
    ) -> &mut Self {
        let fields = fields
            .into_iter()
            .map(|(f, v)| (f.into(), v.as_ref().to_vec()))
            .collect();
        self.ops.push((key.into(), Op::HSet(fields)));
        self
    }

    /// `DEL key`; replies the number of keys removed (0 or 1).
    pub fn delete(&mut self, key: impl Into<String>) -> &mut Self {
        self.ops.push((key.into(), Op::Delete));
        self
    }

    /// `PEXPIRE key ttl`; replies 1 when the key exists, else 0.
    pub fn expire(&mut self, key: impl Into<String>, ttl: Duration) -> &mut Self {
        self.ops.push((key.into(), Op::Expire(ttl)));
        self
    }

    /// `EXISTS key`; replies 1 or 0.
    pub fn exists(&mut self, key: impl Into<String>) -> &mut Self {
        self.ops.push((key.into(), Op::Exists));
        self
    }

    /// Number of commands.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch has no commands.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Milliseconds for `PX`/`PEXPIRE`. A zero duration stays zero so that Redis rejects
/// it (a typed invalid-input error) instead of gust silently rounding it up.
pub(crate) fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn command(key: &str, op: &Op) -> Cmd {
    let mut cmd;
    match op {
        Op::Get => {
            cmd = redis::cmd("GET");
            cmd.arg(key);
        }
        Op::Set(value, ttl) => {
            cmd = redis::cmd("SET");
            cmd.arg(key).arg(value.as_slice());
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg(millis(*ttl));
            }
        }
        Op::HSet(fields) => {
            cmd = redis::cmd("HSET");
            cmd.arg(key);
            for (f, v) in fields {
                cmd.arg(f.as_str()).arg(v.as_slice());
            }
        }
        Op::Delete => {
            cmd = redis::cmd("DEL");
            cmd.arg(key);
        }
        Op::Expire(ttl) => {
            cmd = redis::cmd("PEXPIRE");
            cmd.arg(key).arg(millis(*ttl));
        }
        Op::Exists => {
            cmd = redis::cmd("EXISTS");
            cmd.arg(key);
        }
    }
    cmd
}

/// A reply as JSON: bulk strings as strings (UTF-8) or arrays of bytes (binary).
pub(crate) fn to_json(v: redis::Value) -> Json {
    use redis::Value as V;
    match v {
        V::Nil => Json::Null,
        V::Int(i) => Json::from(i),
        V::Okay => Json::from("OK"),
        V::SimpleString(s) => Json::from(s),
        V::BulkString(b) => match String::from_utf8(b) {
            Ok(s) => Json::from(s),
            Err(e) => Json::from(e.into_bytes()),
        },
        V::Boolean(b) => Json::from(b),
        V::Double(d) => Json::from(d),
        V::Array(items) | V::Set(items) => Json::Array(items.into_iter().map(to_json).collect()),
        V::VerbatimString { text, .. } => Json::from(text),
        other => Json::from(format!("{other:?}")),
    }
}
