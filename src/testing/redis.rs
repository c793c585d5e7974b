//! [`MemoryRedis`]: a single Redis node in memory, for a [`RedisHook`] in unit tests.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use redis::aio::ConnectionLike;
use redis::{Arg, Cmd, Pipeline, RedisError, RedisFuture, Value};
use tokio::time::{Duration, Instant};

use super::{Calls, Fault, Script};
use crate::error::ErrorKind;
use crate::hooks::redis::RedisHook;

/// The round trips of a [`MemoryRedis`] a rule can fail: one per command
/// the hook sends, and one per pipeline (a [`RedisBatch`](crate::hooks::redis::RedisBatch)
/// sent by [`RedisHook::execute`], in chunks of up to 1,000 commands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedisOp {
    /// A pipeline (`execute`, and `set_rows_json`/`get_rows_json`).
    Pipeline,
    /// `GET`.
    Get,
    /// `SET`.
    Set,
    /// `MGET`.
    MGet,
    /// `MSET`.
    MSet,
    /// `DEL`.
    Del,
    /// `EXISTS`.
    Exists,
    /// `PEXPIRE` / `EXPIRE`.
    Expire,
    /// `PERSIST`.
    Persist,
    /// `PTTL` / `TTL`.
    Ttl,
    /// `SCAN` (each page).
    Scan,
    /// `PING`.
    Ping,
    /// Any other command.
    Other,
}

impl RedisOp {
    fn of(name: &str) -> Self {
        match name {
            "GET" => RedisOp::Get,
            "SET" => RedisOp::Set,
            "MGET" => RedisOp::MGet,
            "MSET" => RedisOp::MSet,
            "DEL" => RedisOp::Del,
            "EXISTS" => RedisOp::Exists,
            "PEXPIRE" | "EXPIRE" => RedisOp::Expire,
            "PERSIST" => RedisOp::Persist,
            "PTTL" | "TTL" => RedisOp::Ttl,
            "SCAN" => RedisOp::Scan,
            "PING" => RedisOp::Ping,
            _ => RedisOp::Other,
        }
    }
}

#[derive(Debug, Clone)]
enum Data {
    String(Vec<u8>),
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
}

#[derive(Debug, Clone)]
struct Entry {
    data: Data,
    expires: Option<Instant>,
}

/// The keyspace, sorted so that `SCAN` cursors are positions in it.
type Keyspace = BTreeMap<Vec<u8>, Entry>;

/// A single Redis node in memory: a [`redis::aio::ConnectionLike`] that
/// runs the commands [`RedisHook`] sends — strings, hashes, expirations,
/// `SCAN` — with Redis's replies and errors (`WRONGTYPE`, an invalid expire
/// time), so an operator's Redis code runs unchanged in a unit test:
/// `RedisHook::with_connection("redis_default", MemoryRedis::new())`, or
/// [`hook`](Self::hook).
///
/// Clones share the keyspace. Expirations follow tokio's clock, so a test
/// with paused time (`tokio::time::pause`, `advance`) sees keys expire
/// without waiting. Rules fail or delay the N-th round trip of an operation
/// ([`fail_nth`](Self::fail_nth)); a fault's [`ErrorKind`] becomes the
/// failure the hook would meet on a real server, and the hook classifies it
/// as it would that one:
///
/// | fault | what the hook meets | the hook's error |
/// |---|---|---|
/// | `Unavailable` | the connection reset | `Unavailable`, retryable |
/// | `Timeout` | no answer in time | `Timeout`, retryable |
/// | `Auth` | a `WRONGPASS` reply | `Auth` |
/// | `InvalidInput` | a `WRONGTYPE` reply | `InvalidInput` |
/// | any other | an `ERR` reply | `InvalidInput` |
///
/// ([`Fault::retryable`] does not apply here: the hook decides, as with a
/// server.) Not a cluster: keys of any slot mix freely, and `CLUSTER`
/// commands answer as a plain node does. Unknown commands answer
/// `ERR unknown command`, as Redis does.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> gust::Result<()> {
/// use gust::ErrorKind;
/// use gust::hooks::redis::RedisBatch;
/// use gust::testing::{Fault, MemoryRedis, RedisOp};
///
/// let redis = MemoryRedis::new().fail_nth(RedisOp::Pipeline, 1, Fault::error(ErrorKind::Unavailable));
/// let hook = redis.hook("redis_default");
/// let mut batch = RedisBatch::new();
/// batch.set("row:0", "a", None).set("row:1", "b", None);
/// let e = hook.execute(&batch).await.unwrap_err();
/// assert!(e.is_retryable());
/// assert!(redis.keys().is_empty(), "the failed pipeline wrote nothing");
/// hook.execute(&batch).await?;
/// assert_eq!(redis.keys(), ["row:0", "row:1"]);
/// assert_eq!(redis.calls(RedisOp::Pipeline), 2);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemoryRedis {
    keys: Arc<Mutex<Keyspace>>,
    script: Arc<Script<RedisOp>>,
}

impl fmt::Debug for MemoryRedis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRedis")
            .field("keys", &self.keys().len())
            .field("rules", &self.script.rules)
            .finish()
    }
}

impl Default for MemoryRedis {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRedis {
    /// An empty node with no faults.
    pub fn new() -> Self {
        MemoryRedis {
            keys: Arc::default(),
            script: Arc::new(Script::new()),
        }
    }

    /// A [`RedisHook`] on this node whose errors name `conn_id`; the
    /// operators take it with `with_hook` / `with_redis`.
    pub fn hook(&self, conn_id: &str) -> RedisHook {
        RedisHook::with_connection(conn_id, self.clone())
    }

    /// The `n`-th round trip of `op` (1 for the first) gets `fault`.
    ///
    /// # Panics
    ///
    /// When called after the node was cloned (rules are set up first).
    pub fn fail_nth(self, op: RedisOp, n: usize, fault: Fault) -> Self {
        self.rule(op, Calls::Nth(n.max(1)), fault)
    }

    /// Every round trip of `op` from the `n`-th on gets `fault` (1: every one).
    ///
    /// # Panics
    ///
    /// When called after the node was cloned (rules are set up first).
    pub fn fail_from(self, op: RedisOp, n: usize, fault: Fault) -> Self {
        self.rule(op, Calls::From(n.max(1)), fault)
    }

    fn rule(mut self, op: RedisOp, calls: Calls, fault: Fault) -> Self {
        Arc::get_mut(&mut self.script)
            .expect("MemoryRedis rules are set before the node is cloned")
            .rules
            .push((op, calls, fault));
        self
    }

    /// How many round trips of `op` were made (failed ones included).
    pub fn calls(&self, op: RedisOp) -> usize {
        self.script.calls(op)
    }

    /// The live keys, sorted (lossy UTF-8).
    pub fn keys(&self) -> Vec<String> {
        let now = Instant::now();
        lock(&self.keys)
            .iter()
            .filter(|(_, e)| live(e, now))
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    /// Counts the round trip, waits its fault's delay, and returns its error.
    async fn fault(&self, op: RedisOp) -> Option<RedisError> {
        let (n, fault) = self.script.next(op);
        let fault = fault?;
        if !fault.delay.is_zero() {
            tokio::time::sleep(fault.delay).await;
        }
        let message = format!("injected fault (call {n})");
        Some(match fault.kind? {
            ErrorKind::Unavailable => {
                std::io::Error::new(std::io::ErrorKind::ConnectionReset, message).into()
            }
            ErrorKind::Timeout => std::io::Error::new(std::io::ErrorKind::TimedOut, message).into(),
            ErrorKind::Auth => server_error(&format!("WRONGPASS {message}")).into(),
            ErrorKind::InvalidInput => server_error(&format!("WRONGTYPE {message}")).into(),
            _ => server_error(&format!("ERR {message}")).into(),
        })
    }

    /// Runs `cmds` on the keyspace, under one lock: a round trip is atomic
    /// here (a real pipeline is not, but nothing else runs in a unit test).
    fn run<'c>(&self, cmds: impl Iterator<Item = &'c Cmd>) -> Vec<Value> {
        let mut keys = lock(&self.keys);
        let now = Instant::now();
        keys.retain(|_, e| live(e, now));
        cmds.map(|cmd| {
            let args: Vec<&[u8]> = cmd
                .args_iter()
                .map(|a| match a {
                    Arg::Simple(a) => a,
                    // Only the driver's iterators send cursors, as a `0` to start.
                    _ => b"0",
                })
                .collect();
            match args.split_first() {
                None => error("ERR empty command"),
                Some((name, args)) => {
                    let name = String::from_utf8_lossy(name).to_ascii_uppercase();
                    run(&mut keys, now, &name, args)
                }
            }
        })
        .collect()
    }
}

impl ConnectionLike for MemoryRedis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let name = cmd
                .args_iter()
                .next()
                .and_then(|a| match a {
                    Arg::Simple(a) => Some(String::from_utf8_lossy(a).to_ascii_uppercase()),
                    _ => None,
                })
                .unwrap_or_default();
            if let Some(e) = self.fault(RedisOp::of(&name)).await {
                return Err(e);
            }
            Ok(self.run(std::iter::once(cmd)).pop().unwrap_or(Value::Nil))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            if let Some(e) = self.fault(RedisOp::Pipeline).await {
                return Err(e);
            }
            // A pipeline is not atomic on Redis either, but it arrives whole:
            // a failed round trip (above) ran none of it.
            let replies = self.run(pipeline.cmd_iter());
            Ok(replies.into_iter().skip(offset).take(count).collect())
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn live(e: &Entry, now: Instant) -> bool {
    e.expires.is_none_or(|t| t > now)
}

/// A server error reply, parsed as the driver parses one off the wire.
fn server_error(text: &str) -> redis::ServerError {
    match redis::parse_redis_value(format!("-{text}\r\n").as_bytes()) {
        Ok(Value::ServerError(e)) => e,
        _ => unreachable!("an error line parses as a server error"),
    }
}

fn error(text: &str) -> Value {
    Value::ServerError(server_error(text))
}

fn wrong_type() -> Value {
    error("WRONGTYPE Operation against a key holding the wrong kind of value")
}

fn wrong_args(name: &str) -> Value {
    error(&format!(
        "ERR wrong number of arguments for '{}' command",
        name.to_ascii_lowercase()
    ))
}

fn int(n: usize) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn number(arg: &[u8]) -> Option<i64> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

fn get(keys: &Keyspace, key: &[u8]) -> Value {
    match keys.get(key).map(|e| &e.data) {
        None => Value::Nil,
        Some(Data::String(v)) => Value::BulkString(v.clone()),
        Some(Data::Hash(_)) => wrong_type(),
    }
}

/// Runs command `name` with `args` on `keys` (expired keys already gone).
fn run(keys: &mut Keyspace, now: Instant, name: &str, args: &[&[u8]]) -> Value {
    let ms = |n: i64| now + Duration::from_millis(n.unsigned_abs());
    match (name, args) {
        ("PING", []) => Value::SimpleString("PONG".into()),
        ("PING", [msg]) => Value::BulkString(msg.to_vec()),
        ("GET", [key]) => get(keys, key),
        ("MGET", ks) if !ks.is_empty() => Value::Array(
            ks.iter()
                .map(|k| match get(keys, k) {
                    Value::ServerError(_) => Value::Nil,
                    v => v,
                })
                .collect(),
        ),
        ("SET", [key, value, opts @ ..]) => {
            let expires = match opts {
                [] => None,
                [unit, n] => {
                    let unit = String::from_utf8_lossy(unit).to_ascii_uppercase();
                    match (unit.as_str(), number(n)) {
                        ("PX", Some(n)) if n > 0 => Some(ms(n)),
                        ("EX", Some(n)) if n > 0 => Some(ms(n.saturating_mul(1000))),
                        ("PX" | "EX", _) => {
                            return error("ERR invalid expire time in 'set' command");
                        }
                        _ => return error("ERR syntax error"),
                    }
                }
                _ => return error("ERR syntax error"),
            };
            let data = Data::String(value.to_vec());
            keys.insert(key.to_vec(), Entry { data, expires });
            Value::Okay
        }
        ("MSET", kvs) if !kvs.is_empty() && kvs.len() % 2 == 0 => {
            for kv in kvs.chunks(2) {
                let data = Data::String(kv[1].to_vec());
                keys.insert(
                    kv[0].to_vec(),
                    Entry {
                        data,
                        expires: None,
                    },
                );
            }
            Value::Okay
        }
        ("HSET", [key, fvs @ ..]) if !fvs.is_empty() && fvs.len() % 2 == 0 => {
            let entry = keys.entry(key.to_vec()).or_insert_with(|| Entry {
                data: Data::Hash(BTreeMap::new()),
                expires: None,
            });
            let Data::Hash(fields) = &mut entry.data else {
                return wrong_type();
            };
            let added = fvs
                .chunks(2)
                .filter(|fv| fields.insert(fv[0].to_vec(), fv[1].to_vec()).is_none())
                .count();
            int(added)
        }
        ("HGET", [key, field]) => match keys.get(*key).map(|e| &e.data) {
            None => Value::Nil,
            Some(Data::Hash(f)) => f.get(*field).cloned().map_or(Value::Nil, Value::BulkString),
            Some(Data::String(_)) => wrong_type(),
        },
        ("HGETALL", [key]) => match keys.get(*key).map(|e| &e.data) {
            None => Value::Array(Vec::new()),
            Some(Data::Hash(f)) => Value::Array(
                f.iter()
                    .flat_map(|(k, v)| [Value::BulkString(k.clone()), Value::BulkString(v.clone())])
                    .collect(),
            ),
            Some(Data::String(_)) => wrong_type(),
        },
        ("DEL", ks) if !ks.is_empty() => {
            int(ks.iter().filter(|k| keys.remove(**k).is_some()).count())
        }
        ("EXISTS", ks) if !ks.is_empty() => {
            int(ks.iter().filter(|k| keys.contains_key(**k)).count())
        }
        ("PEXPIRE" | "EXPIRE", [key, n]) => {
            let Some(n) = number(n) else {
                return error("ERR value is not an integer or out of range");
            };
            let n = if name == "EXPIRE" {
                n.saturating_mul(1000)
            } else {
                n
            };
            if !keys.contains_key(*key) {
                return Value::Int(0);
            }
            // As Redis: a time not in the future deletes the key.
            if n <= 0 {
                keys.remove(*key);
            } else if let Some(e) = keys.get_mut(*key) {
                e.expires = Some(ms(n));
            }
            Value::Int(1)
        }
        ("PERSIST", [key]) => match keys.get_mut(*key) {
            Some(e) if e.expires.is_some() => {
                e.expires = None;
                Value::Int(1)
            }
            _ => Value::Int(0),
        },
        ("PTTL" | "TTL", [key]) => match keys.get(*key) {
            None => Value::Int(-2),
            Some(Entry { expires: None, .. }) => Value::Int(-1),
            Some(Entry {
                expires: Some(t), ..
            }) => {
                let left = t.saturating_duration_since(now);
                let left = if name == "TTL" {
                    left.as_secs().into()
                } else {
                    left.as_millis()
                };
                Value::Int(i64::try_from(left).unwrap_or(i64::MAX))
            }
        },
        ("SCAN", [cursor, opts @ ..]) => scan(keys, cursor, opts),
        ("KEYS", [pattern]) => Value::Array(
            keys.keys()
                .filter(|k| glob(pattern, k))
                .map(|k| Value::BulkString(k.clone()))
                .collect(),
        ),
        ("DBSIZE", []) => int(keys.len()),
        ("FLUSHDB" | "FLUSHALL", _) => {
            keys.clear();
            Value::Okay
        }
        ("CLUSTER", _) => error("ERR This instance has cluster support disabled"),
        (
            "GET" | "MGET" | "SET" | "MSET" | "HSET" | "HGET" | "HGETALL" | "DEL" | "EXISTS"
            | "PEXPIRE" | "EXPIRE" | "PERSIST" | "PTTL" | "TTL" | "SCAN" | "KEYS" | "PING"
            | "DBSIZE",
            _,
        ) => wrong_args(name),
        _ => error(&format!("ERR unknown command '{name}'")),
    }
}

/// `SCAN cursor [MATCH pattern] [COUNT n]`: the cursor is a position in the
/// sorted keyspace, so a key present for the whole scan is returned once.
fn scan(keys: &Keyspace, cursor: &[u8], opts: &[&[u8]]) -> Value {
    let Some(start) = number(cursor).and_then(|c| usize::try_from(c).ok()) else {
        return error("ERR invalid cursor");
    };
    let (mut pattern, mut count): (&[u8], usize) = (b"*", 10);
    for opt in opts.chunks(2) {
        let [name, value] = opt else {
            return error("ERR syntax error");
        };
        match String::from_utf8_lossy(name).to_ascii_uppercase().as_str() {
            "MATCH" => pattern = value,
            "COUNT" => match number(value).and_then(|n| usize::try_from(n).ok()) {
                Some(n) if n > 0 => count = n,
                _ => return error("ERR syntax error"),
            },
            _ => return error("ERR syntax error"),
        }
    }
    let page: Vec<&Vec<u8>> = keys.keys().skip(start).take(count).collect();
    let next = if start.saturating_add(page.len()) >= keys.len() {
        0
    } else {
        start + page.len()
    };
    Value::Array(vec![
        Value::BulkString(next.to_string().into_bytes()),
        Value::Array(
            page.into_iter()
                .filter(|k| glob(pattern, k))
                .map(|k| Value::BulkString(k.clone()))
                .collect(),
        ),
    ])
}

/// Redis's glob: `*`, `?`, `[abc]`, `[^a-z]` and `\x`.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((b'?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((b'[', rest)) => {
            let Some(end) = rest.iter().position(|&c| c == b']') else {
                return literal(b'[', rest, text);
            };
            let (class, rest) = (&rest[..end], &rest[end + 1..]);
            let (negated, class) = match class.split_first() {
                Some((b'^', c)) => (true, c),
                _ => (false, class),
            };
            let Some((&c, tail)) = text.split_first() else {
                return false;
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    hit |= (class[i]..=class[i + 2]).contains(&c);
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negated && glob(rest, tail)
        }
        Some((b'\\', rest)) if !rest.is_empty() => literal(rest[0], &rest[1..], text),
        Some((&c, rest)) => literal(c, rest, text),
    }
}

fn literal(c: u8, rest: &[u8], text: &[u8]) -> bool {
    text.first() == Some(&c) && glob(rest, &text[1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_as_redis() {
        for (p, t, hit) in [
            ("*", "", true),
            ("iris:*", "iris:2025-01-01:row:1", true),
            ("iris:*:row:?", "iris:d:row:1", true),
            ("iris:*:row:?", "iris:d:row:12", false),
            ("h[ae]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-c]llo", "hbllo", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("[", "[", true),
        ] {
            assert_eq!(glob(p.as_bytes(), t.as_bytes()), hit, "{p} {t}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn keys_expire_on_tokio_time() {
        let redis = MemoryRedis::new();
        let hook = redis.hook("redis_default");
        hook.set("k", "v", Some(Duration::from_secs(10)))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(hook.ttl("k").await.unwrap(), Some(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(hook.get("k").await.unwrap(), None);
        assert!(redis.keys().is_empty());
    }

    #[tokio::test]
    async fn faults_become_the_errors_a_server_gives() {
        let redis = MemoryRedis::new()
            .fail_nth(RedisOp::Get, 1, Fault::error(ErrorKind::Timeout))
            .fail_nth(RedisOp::Get, 2, Fault::error(ErrorKind::Auth))
            .fail_nth(RedisOp::Get, 3, Fault::error(ErrorKind::InvalidInput))
            .fail_nth(RedisOp::Get, 4, Fault::error(ErrorKind::Remote));
        let hook = redis.hook("cache");
        for (kind, retryable) in [
            (ErrorKind::Timeout, true),
            (ErrorKind::Auth, false),
            (ErrorKind::InvalidInput, false),
            (ErrorKind::InvalidInput, false),
        ] {
            let e = hook.get("k").await.unwrap_err();
            assert_eq!((e.kind(), e.is_retryable()), (kind, retryable), "{e}");
            assert_eq!(e.context("conn_id"), Some("cache"));
            assert_eq!(e.context("key"), Some("k"));
        }
        assert_eq!(hook.get("k").await.unwrap(), None);
        assert_eq!(redis.calls(RedisOp::Get), 5);
    }

    #[tokio::test]
    async fn unknown_commands_and_arities_are_redis_errors() {
        let mut redis = MemoryRedis::new();
        for (cmd, text) in [
            (
                redis::cmd("LPUSH").arg("k").arg("v").clone(),
                "unknown command 'LPUSH'",
            ),
            (
                redis::cmd("GET").clone(),
                "wrong number of arguments for 'get'",
            ),
            (
                redis::cmd("SET").arg("k").arg("v").arg("PX").arg(0).clone(),
                "invalid expire time",
            ),
        ] {
            let e = cmd.query_async::<()>(&mut redis).await.unwrap_err();
            assert!(e.to_string().contains(text), "{e}");
        }
    }
}
