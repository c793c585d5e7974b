//! RedisHook against the real single node (`redis_default`) and the 6-node cluster
//! (`redis_cluster`): every method on both, the MOVED path, and the bad-input errors.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{FutureExt, TryStreamExt};
use gust::hooks::redis::{RedisBatch, RedisHook, key_slot};
use gust::{Connection, Error, ErrorKind};
use serde_json::{Value, json};

/// Runs one check on the single node and on the cluster, as two tests; with
/// `memory`, also on `gust::testing::MemoryRedis` (feature `testing`): the
/// conformance suite of the fake and the real servers.
macro_rules! both {
    ($name:ident, $check:ident $(, $memory:ident)?) => {
        mod $name {
            #[tokio::test]
            async fn single_node() {
                let conn = crate::require_conn!("redis_default");
                super::$check(conn).await;
            }
            #[tokio::test]
            async fn cluster() {
                let conn = crate::require_conn!("redis_cluster");
                super::$check(conn).await;
            }
            $(
            #[cfg(feature = "testing")]
            #[tokio::test]
            async fn $memory() {
                super::$check(super::memory_conn()).await;
            }
            )?
        }
    };
}

/// The conn id under which [`hook`] gives the in-memory Redis.
#[cfg(feature = "testing")]
const MEMORY: &str = "redis_memory";

#[cfg(feature = "testing")]
fn memory_conn() -> Connection {
    Connection::from_uri(MEMORY, "redis://:pw@localhost").unwrap()
}

async fn hook(conn: &Connection) -> RedisHook {
    #[cfg(feature = "testing")]
    if conn.conn_id() == MEMORY {
        // One node for the whole binary, as the real servers are shared.
        static NODE: std::sync::OnceLock<gust::testing::MemoryRedis> = std::sync::OnceLock::new();
        return NODE
            .get_or_init(gust::testing::MemoryRedis::new)
            .hook(MEMORY);
    }
    let hook = RedisHook::from_connection(conn).await.expect("connect");
    assert_eq!(
        hook.is_cluster(),
        conn.conn_id() == "redis_cluster",
        "the mode comes from the connection"
    );
    hook
}

/// Every text an error can show: Display, Debug and the whole source chain.
fn all_text(e: &Error) -> String {
    let mut text = format!("{e} {e:?}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        text.push_str(&format!(" {s}"));
        src = s.source();
    }
    text
}

fn with_password(conn: &Connection, password: &str) -> Connection {
    let uri = conn.get_uri();
    let pw = conn.password().expect("the test servers have a password");
    Connection::from_uri(conn.conn_id(), &uri.replacen(pw, password, 1)).unwrap()
}

/// A plain client of one node, to observe the server behind the hook's back.
async fn direct(conn: &Connection, host: &str, port: u16) -> redis::aio::MultiplexedConnection {
    let pw = conn.password().unwrap();
    redis::Client::open(format!("redis://:{pw}@{host}:{port}/"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

// ---- every method, on both ----

async fn check_test_connection(conn: Connection) {
    hook(&conn).await.test_connection().await.unwrap();
}
both!(test_connection, check_test_connection, memory);

async fn check_get_set(conn: Connection) {
    let h = hook(&conn).await;
    let key = common::unique("gust:getset");
    assert_eq!(h.get(&key).await.unwrap(), None);
    assert!(!h.exists(&key).await.unwrap());
    h.set(&key, "héllo", None).await.unwrap();
    assert!(h.exists(&key).await.unwrap());
    assert_eq!(
        h.get(&key).await.unwrap(),
        Some("héllo".as_bytes().to_vec())
    );
    assert_eq!(h.get_string(&key).await.unwrap().as_deref(), Some("héllo"));
    h.set(&key, [0xff, 0x00, 0xfe], None).await.unwrap();
    assert_eq!(h.get(&key).await.unwrap(), Some(vec![0xff, 0x00, 0xfe]));
    let e = h.get_string(&key).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(e.context("key"), Some(key.as_str()));
    assert_eq!(h.delete(&[&key]).await.unwrap(), 1);
    assert_eq!(h.delete(&[&key]).await.unwrap(), 0);
    assert_eq!(h.get_string(&key).await.unwrap(), None);
}
both!(get_set, check_get_set, memory);

async fn check_json(conn: Connection) {
    let h = hook(&conn).await;
    let key = common::unique("gust:json");
    let row = json!({"SepalLengthCm": 5.1, "Species": "Iris-setosa", "Id": 1});
    h.set_json(&key, &row, None).await.unwrap();
    assert_eq!(h.get_json::<Value>(&key).await.unwrap(), Some(row));
    assert_eq!(
        h.get_json::<Value>(&format!("{key}:none")).await.unwrap(),
        None
    );
    h.set(&key, "not json", None).await.unwrap();
    let e = h.get_json::<Value>(&key).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(e.operation(), "redis.get_json");
    assert_eq!(e.context("key"), Some(key.as_str()));
    h.delete(&[&key]).await.unwrap();
}
both!(json, check_json, memory);

async fn check_expirations(conn: Connection) {
    let h = hook(&conn).await;
    let key = common::unique("gust:ttl");
    let hour = Duration::from_secs(3600);
    h.set(&key, "v", Some(hour)).await.unwrap();
    let left = h.ttl(&key).await.unwrap().expect("an expiration");
    assert!(left <= hour && !left.is_zero(), "{left:?}");
    assert!(h.persist(&key).await.unwrap());
    assert_eq!(h.ttl(&key).await.unwrap(), None);
    assert!(!h.persist(&key).await.unwrap(), "nothing left to persist");
    assert!(h.expire(&key, hour).await.unwrap());
    assert!(h.ttl(&key).await.unwrap().is_some());
    h.set_json(&key, &[1, 2], Some(hour)).await.unwrap();
    assert!(h.ttl(&key).await.unwrap().is_some());
    h.delete(&[&key]).await.unwrap();
    assert!(!h.expire(&key, hour).await.unwrap(), "missing key");
    let e = h.ttl(&key).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.context("key"), Some(key.as_str()));
    // Redis itself rejects a zero expiration: a typed error, not a silent rounding.
    let e = h.set(&key, "v", Some(Duration::ZERO)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(!e.is_retryable());
}
both!(expirations, check_expirations, memory);

async fn check_mget_mset_delete(conn: Connection) {
    let h = hook(&conn).await;
    let prefix = common::unique("gust:m");
    let keys: Vec<String> = (0..120).map(|i| format!("{prefix}:{i}")).collect();
    let slots: BTreeSet<u16> = keys.iter().map(|k| key_slot(k.as_bytes())).collect();
    assert!(slots.len() > 50, "the keys must spread over many slots");
    let pairs: Vec<(String, String)> = keys.iter().map(|k| (k.clone(), format!("v-{k}"))).collect();
    h.mset(&pairs).await.unwrap();
    let mut asked = keys.clone();
    asked.insert(7, format!("{prefix}:missing"));
    let got = h.mget(&asked).await.unwrap();
    assert_eq!(got.len(), asked.len());
    for (k, v) in asked.iter().zip(&got) {
        if k.ends_with(":missing") {
            assert_eq!(v, &None);
        } else {
            assert_eq!(v.as_deref(), Some(format!("v-{k}").as_bytes()), "{k}");
        }
    }
    let rows: Vec<(String, Value)> = keys
        .iter()
        .take(30)
        .map(|k| (k.clone(), json!({"k": k})))
        .collect();
    h.mset_json(&rows).await.unwrap();
    let mut asked_json = keys[..30].to_vec();
    asked_json.push(format!("{prefix}:missing"));
    let back: Vec<Option<Value>> = h.mget_json(&asked_json).await.unwrap();
    assert_eq!(back.len(), 31);
    for (i, v) in back[..30].iter().enumerate() {
        assert_eq!(v, &Some(json!({"k": keys[i]})));
    }
    assert_eq!(back[30], None);
    // keys[30] holds "v-…", which is not JSON.
    let e = h.mget_json::<_, Value>(&keys[..31]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(e.context("key"), Some(keys[30].as_str()));
    assert_eq!(h.delete(&asked).await.unwrap(), keys.len() as u64);
    assert!(h.mget(&keys).await.unwrap().iter().all(Option::is_none));
}
both!(mget_mset_delete, check_mget_mset_delete, memory);

async fn check_execute(conn: Connection) {
    let h = hook(&conn).await;
    let prefix = common::unique("gust:batch");
    let mut batch = RedisBatch::new();
    for i in 0..40 {
        batch.set(format!("{prefix}:{i}"), i.to_string(), None);
    }
    batch
        .get(format!("{prefix}:3"))
        .exists(format!("{prefix}:39"))
        .exists(format!("{prefix}:40"))
        .expire(format!("{prefix}:5"), Duration::from_secs(600))
        .delete(format!("{prefix}:6"))
        .get(format!("{prefix}:6"))
        .set_json(format!("{prefix}:j"), &json!({"a": [1, 2]}), None)
        .unwrap()
        .get(format!("{prefix}:j"));
    let replies = h.execute(&batch).await.unwrap();
    assert_eq!(replies.len(), batch.len());
    assert!(replies[..40].iter().all(|r| r == "OK"), "{replies:?}");
    assert_eq!(
        &replies[40..],
        &[
            json!("3"),
            json!(1),
            json!(0),
            json!(1),
            json!(1),
            Value::Null,
            json!("OK"),
            json!(r#"{"a":[1,2]}"#)
        ]
    );
    assert!(h.ttl(&format!("{prefix}:5")).await.unwrap().is_some());
    assert_eq!(
        h.execute(&RedisBatch::new()).await.unwrap(),
        Vec::<Value>::new()
    );
    let keys: Vec<String> = (0..40)
        .map(|i| format!("{prefix}:{i}"))
        .chain([format!("{prefix}:j")])
        .collect();
    h.delete(&keys).await.unwrap();
}
both!(execute, check_execute, memory);

async fn check_rows(conn: Connection) {
    let h = hook(&conn).await;
    let prefix = common::unique("gust:row");
    let species = ["Iris-setosa", "Iris-versicolor", "Iris-virginica"];
    let rows: Vec<Value> = (0..150)
        .map(|i| json!({"Id": i + 1, "SepalLengthCm": 4.3 + (i % 36) as f64 / 10.0, "Species": species[i / 50]}))
        .collect();
    assert_eq!(h.set_rows_json(&prefix, rows.clone()).await.unwrap(), 150);
    assert_eq!(
        h.get_string(&format!("{prefix}:0"))
            .await
            .unwrap()
            .map(|s| serde_json::from_str::<Value>(&s).unwrap()),
        Some(rows[0].clone())
    );
    let back: Vec<Value> = h.get_rows_json(&prefix).await.unwrap();
    assert_eq!(back, rows);
    // A shorter re-load: readers stop at its end, not at the old rows beyond it.
    assert_eq!(
        h.set_rows_json(&prefix, rows[..20].to_vec()).await.unwrap(),
        20
    );
    let back: Vec<Value> = h.get_rows_json(&prefix).await.unwrap();
    assert_eq!(back, rows[..20]);
    assert!(
        h.get_rows_json::<Value>(&format!("{prefix}-none"))
            .await
            .unwrap()
            .is_empty()
    );
    let keys: Vec<String> = (0..150).map(|i| format!("{prefix}:{i}")).collect();
    h.delete(&keys).await.unwrap();
}
both!(rows, check_rows, memory);

async fn check_scan(conn: Connection) {
    let h = hook(&conn).await;
    let prefix = common::unique("gust:scan");
    let keys: BTreeSet<String> = (0..60).map(|i| format!("{prefix}:{i}")).collect();
    let pairs: Vec<(&String, &str)> = keys.iter().map(|k| (k, "x")).collect();
    h.mset(&pairs).await.unwrap();
    h.set(&format!("{prefix}-other"), "x", None).await.unwrap();
    let found: BTreeSet<String> = h
        .scan(&format!("{prefix}:*"), 7)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(found, keys);
    if h.is_cluster() {
        let masters = h.masters().await.unwrap();
        assert_eq!(masters.len(), 3, "{masters:?}");
    }
    let none: Vec<String> = h
        .scan(&format!("{prefix}:nothing*"), 100)
        .try_collect()
        .await
        .unwrap();
    assert!(none.is_empty());
    let mut all: Vec<String> = keys.into_iter().collect();
    all.push(format!("{prefix}-other"));
    h.delete(&all).await.unwrap();
}
both!(scan, check_scan, memory);

/// The hook works inside a closure task (no "not general enough" Send errors) and
/// its errors fail the task.
async fn check_in_task(conn: Connection) {
    use gust::prelude::*;
    let h = hook(&conn).await;
    let key = common::unique("gust:task");
    let mut dag = Dag::builder("redis_task");
    let (h2, k2) = (h.clone(), key.clone());
    dag.add(Task::from_fn("write", move |_ctx| {
        let (h, key) = (h2.clone(), k2.clone());
        async move {
            h.set_json(&key, &json!({"n": 1}), Some(Duration::from_secs(600)))
                .await?;
            let back: Option<Value> = h.get_json(&key).await?;
            let n = h.delete(&[&key]).await?;
            Ok(json!({"back": back, "deleted": n}))
        }
    }));
    let report = dag
        .build()
        .unwrap()
        .test(chrono::TimeZone::with_ymd_and_hms(&chrono_tz::UTC, 2025, 1, 1, 0, 0, 0).unwrap())
        .await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        report.xcom("write").unwrap(),
        &json!({"back": {"n": 1}, "deleted": 1})
    );
}
both!(in_task, check_in_task, memory);

// ---- bad input, on both ----

async fn check_wrong_password(conn: Connection) {
    let bad = with_password(&conn, "not-the-gust-pw");
    let e = RedisHook::from_connection(&bad).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(!e.is_retryable());
    assert_eq!(e.operation(), "redis.connect");
    assert_eq!(e.context("conn_id"), Some(conn.conn_id()));
    let text = all_text(&e);
    assert!(!text.contains("not-the-gust-pw"), "{text}");
    assert!(!text.contains(conn.password().unwrap()), "{text}");
}
both!(wrong_password, check_wrong_password);

async fn check_unknown_host(conn: Connection) {
    let uri = conn
        .get_uri()
        .replace("127.0.0.1", "gust-no-such-host.invalid");
    let bad = Connection::from_uri(conn.conn_id(), &uri).unwrap();
    let e = RedisHook::from_connection(&bad).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    assert_eq!(e.context("conn_id"), Some(conn.conn_id()));
    assert!(!all_text(&e).contains(conn.password().unwrap()));
}
both!(unknown_host, check_unknown_host);

async fn check_wrong_type(conn: Connection) {
    let h = hook(&conn).await;
    let key = common::unique("gust:list");
    // A list, made behind the hook's back; the hook's string commands must fail typed.
    let mut c = list_owner(&conn, &key).await;
    let _: () = redis::cmd("RPUSH")
        .arg(&key)
        .arg("a")
        .query_async(&mut c)
        .await
        .unwrap();
    for e in [
        h.get(&key).await.unwrap_err(),
        h.get_json::<Value>(&key).await.unwrap_err(),
        h.execute(RedisBatch::new().get(&key)).await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("WRONGTYPE"), "{e}");
        assert_eq!(e.context("conn_id"), Some(conn.conn_id()));
        assert_eq!(e.context("key"), Some(key.as_str()));
        assert!(!all_text(&e).contains(conn.password().unwrap()));
    }
    h.delete(&[&key]).await.unwrap();
}
both!(wrong_type, check_wrong_type);

/// A hash written by the hook: the string commands fail typed, and a second
/// `HSET` counts only the new fields (on the fake as on Redis).
async fn check_hash(conn: Connection) {
    let h = hook(&conn).await;
    let key = common::unique("gust:hash");
    let replies = h
        .execute(RedisBatch::new().hset(&key, [("a", "1"), ("b", "2")]))
        .await
        .unwrap();
    assert_eq!(replies, [json!(2)]);
    let replies = h
        .execute(
            RedisBatch::new()
                .hset(&key, [("b", "3"), ("c", "4")])
                .exists(&key),
        )
        .await
        .unwrap();
    assert_eq!(replies, [json!(1), json!(1)]);
    let e = h.get(&key).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");
    assert_eq!(h.delete(&[&key]).await.unwrap(), 1);
}
both!(hash, check_hash, memory);

/// A plain connection to the node that owns `key` (the single node, or the master
/// of its slot, found by asking each master).
async fn list_owner(conn: &Connection, key: &str) -> redis::aio::MultiplexedConnection {
    let h = hook(conn).await;
    for (host, port) in h.masters().await.unwrap() {
        let mut c = direct(conn, &host, port).await;
        let r: redis::RedisResult<Option<String>> =
            redis::cmd("GET").arg(key).query_async(&mut c).await;
        if r.is_ok() {
            return c;
        }
    }
    panic!("no master owns {key}");
}

#[tokio::test]
async fn tls_against_a_plain_server_is_a_typed_error() {
    let conn = crate::require_conn!("redis_default");
    let uri = format!(
        "{}?ssl=true&socket_connect_timeout=5",
        conn.get_uri().trim_end_matches('/')
    );
    let tls = Connection::from_uri(conn.conn_id(), &uri).unwrap();
    assert!(tls.extra_str("ssl").is_some(), "{uri}");
    let e = RedisHook::from_connection(&tls).await.unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Remote
        ),
        "{e}"
    );
    assert_eq!(e.operation(), "redis.connect");
    assert!(!all_text(&e).contains(conn.password().unwrap()));
}

// ---- cluster specifics ----

#[tokio::test]
async fn cluster_slots_match_the_server() {
    let conn = crate::require_conn!("redis_cluster");
    let h = hook(&conn).await;
    let (host, port) = h.masters().await.unwrap()[0].clone();
    let mut c = direct(&conn, &host, port).await;
    for key in [
        "row:0",
        "row:149",
        "foo",
        "{user1000}.following",
        "a{}b",
        "x{y}z",
        "é",
    ] {
        let server: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(key_slot(key.as_bytes()), server, "{key}");
    }
}

#[tokio::test]
async fn cluster_discovers_every_master_from_one_startup_node() {
    let conn = crate::require_conn!("redis_cluster");
    // Only the last startup node, given as host:port: the rest is discovered.
    let (host, port) = hook(&conn).await.config().nodes().last().unwrap().clone();
    let one = Connection::from_uri(
        "redis_cluster",
        &format!(
            "redis://:{}@{host}:{port}/?cluster=true",
            conn.password().unwrap()
        ),
    )
    .unwrap();
    let h = RedisHook::from_connection(&one).await.unwrap();
    h.test_connection().await.unwrap();
    assert_eq!(h.masters().await.unwrap().len(), 3);
    let prefix = common::unique("gust:one");
    let n = h
        .set_rows_json(&prefix, (0..30).map(|i| json!(i)))
        .await
        .unwrap();
    assert_eq!(h.get_rows_json::<Value>(&prefix).await.unwrap().len(), n);
    h.delete(&(0..30).map(|i| format!("{prefix}:{i}")).collect::<Vec<_>>())
        .await
        .unwrap();
}

#[tokio::test]
async fn single_node_mode_on_a_cluster_node_says_to_set_cluster_true() {
    let conn = crate::require_conn!("redis_cluster");
    let plain = Connection::from_uri(
        "redis_cluster",
        &format!("redis://:{}@127.0.0.1:57001/0", conn.password().unwrap()),
    )
    .unwrap();
    let h = RedisHook::from_connection(&plain).await.unwrap();
    assert!(!h.is_cluster());
    // Some key among a few is on another master: the node answers MOVED.
    let mut errors = Vec::new();
    for i in 0..10 {
        if let Err(e) = h.get(&format!("gust:plain:{i}")).await {
            errors.push(e);
        }
    }
    let e = errors
        .first()
        .expect("10 keys cannot all be on one of three masters");
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("cluster=true"), "{e}");
    assert!(e.to_string().to_uppercase().contains("MOVED"), "{e}");
    assert!(!all_text(e).contains(conn.password().unwrap()));
}

/// The reverse mistake: `cluster=true` on a plain node is a configuration error
/// that says to drop the extra, not invalid input.
#[tokio::test]
async fn cluster_mode_on_a_plain_node_is_a_config_error() {
    let conn = crate::require_conn!("redis_default");
    let clustered = conn
        .clone()
        .with_extra("cluster", Value::String("true".into()));
    let e = RedisHook::from_connection(&clustered)
        .await
        .expect_err("a plain node has no cluster slots");
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(!e.is_retryable());
    assert_eq!(e.operation(), "redis.connect");
    assert!(e.to_string().contains("cluster"), "{e}");
    assert!(!all_text(&e).contains(conn.password().unwrap()));
}

/// The MOVED path: the hook learns the slot map, then the key's slot is migrated to
/// another master behind its back (as a resharding does). The old owner now answers
/// MOVED, and the hook must follow it for reads, writes and batches.
#[tokio::test]
async fn cluster_follows_moved_after_a_slot_migration() {
    let conn = crate::require_conn!("redis_cluster");
    let h = hook(&conn).await;
    let tag = common::unique("moved");
    let key = format!("gust:{{{tag}}}:k");
    let slot = key_slot(key.as_bytes());
    h.set(&key, "v1", None).await.unwrap();

    let masters = h.masters().await.unwrap();
    let mut owner = None;
    for (i, (host, port)) in masters.iter().enumerate() {
        let mut c = direct(&conn, host, *port).await;
        let r: redis::RedisResult<Option<String>> =
            redis::cmd("GET").arg(&key).query_async(&mut c).await;
        if let Ok(v) = r {
            assert_eq!(v.as_deref(), Some("v1"));
            owner = Some(i);
        }
    }
    let a = owner.expect("one master owns the slot");
    let b = (a + 1) % masters.len();
    // A batch before the migration: `execute` caches the slot map it routes by.
    let replies = h
        .execute(RedisBatch::new().get(&key).exists(&key))
        .await
        .unwrap();
    assert_eq!(replies, vec![json!("v1"), json!(1)]);
    migrate_slot(&conn, slot, &masters[a], &masters[b]).await;

    let outcome = std::panic::AssertUnwindSafe(async {
        // The old owner now redirects: a client with the old map gets MOVED.
        let mut ca = direct(&conn, &masters[a].0, masters[a].1).await;
        let r: redis::RedisResult<Option<String>> =
            redis::cmd("GET").arg(&key).query_async(&mut ca).await;
        let err = r.expect_err("the old owner must redirect");
        let to = format!("{}:{}", masters[b].0, masters[b].1);
        assert_eq!(err.redirect_node(), Some((to.as_str(), slot)), "{err}");
        // The hook, whose maps (the driver's and execute's) are stale, follows it.
        assert_eq!(h.get_string(&key).await?.as_deref(), Some("v1"));
        h.set(&key, "v2", None).await?;
        let replies = h.execute(RedisBatch::new().get(&key).exists(&key)).await?;
        assert_eq!(replies, vec![json!("v2"), json!(1)]);
        let mut cb = direct(&conn, &masters[b].0, masters[b].1).await;
        let on_b: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut cb)
            .await
            .unwrap();
        assert_eq!(
            on_b.as_deref(),
            Some("v2"),
            "the write went to the new owner"
        );
        Ok::<(), Error>(())
    })
    .catch_unwind()
    .await;
    // Put the slot back whatever happened, so the cluster stays as the harness made it.
    migrate_slot(&conn, slot, &masters[b], &masters[a]).await;
    match outcome {
        Ok(result) => result.unwrap(),
        Err(panic) => std::panic::resume_unwind(panic),
    }
    assert_eq!(h.delete(&[&key]).await.unwrap(), 1);
}

/// Moves `slot` with its keys from master `from` to master `to`, as `redis-cli --cluster reshard`.
async fn migrate_slot(conn: &Connection, slot: u16, from: &(String, u16), to: &(String, u16)) {
    let pw = conn.password().unwrap();
    let mut src = direct(conn, &from.0, from.1).await;
    let mut dst = direct(conn, &to.0, to.1).await;
    let src_id: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query_async(&mut src)
        .await
        .unwrap();
    let dst_id: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query_async(&mut dst)
        .await
        .unwrap();
    let _: () = redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg("IMPORTING")
        .arg(&src_id)
        .query_async(&mut dst)
        .await
        .unwrap();
    let _: () = redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg("MIGRATING")
        .arg(&dst_id)
        .query_async(&mut src)
        .await
        .unwrap();
    loop {
        let keys: Vec<String> = redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(100)
            .query_async(&mut src)
            .await
            .unwrap();
        if keys.is_empty() {
            break;
        }
        let _: () = redis::cmd("MIGRATE")
            .arg(&to.0)
            .arg(to.1)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("AUTH")
            .arg(pw)
            .arg("KEYS")
            .arg(&keys)
            .query_async(&mut src)
            .await
            .unwrap();
    }
    let _: () = redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg("NODE")
        .arg(&dst_id)
        .query_async(&mut dst)
        .await
        .unwrap();
    let _: () = redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg("NODE")
        .arg(&dst_id)
        .query_async(&mut src)
        .await
        .unwrap();
}

// ---- TLS (the single node's TLS port, a certificate for `localhost` from a private CA) ----

/// `conn` with its extras replaced by `extra` (and its host by `host`).
fn tls_variant(conn: &Connection, host: &str, extra: Value) -> Connection {
    let mut uri = url::Url::parse(&conn.get_uri()).unwrap();
    uri.set_host(Some(host)).unwrap();
    let query = extra
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
        .collect::<Vec<_>>()
        .join("&");
    uri.set_query(Some(&query));
    Connection::from_uri(conn.conn_id(), uri.as_str()).unwrap()
}

/// With the private CA of extra `ssl_ca_certs`, the hook talks TLS to the server:
/// a value written over TLS is read back over TLS.
#[tokio::test]
async fn tls_with_a_private_ca_round_trips() {
    let conn = crate::require_conn!("redis_tls");
    assert!(
        conn.extra_str("ssl_ca_certs").is_some(),
        "{}",
        conn.conn_id()
    );
    let h = RedisHook::from_connection(&conn)
        .await
        .expect("connect over TLS");
    h.test_connection().await.unwrap();
    let key = format!("gust:tls:{}", std::process::id());
    h.set(&key, b"over tls".to_vec(), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(
        h.get(&key).await.unwrap().as_deref(),
        Some(&b"over tls"[..])
    );
}

/// What TLS refuses, each a typed connect error that shows no password (a
/// refused certificate a non-retryable `Auth`): the
/// system's CAs do not know the private one; the address 127.0.0.1 is not the
/// name on the certificate (`localhost`) — unless `ssl_check_hostname=false`,
/// which still verifies the chain; and a CA file that does not exist is a
/// configuration error naming it.
#[tokio::test]
async fn tls_refusals_are_typed_errors() {
    let conn = crate::require_conn!("redis_tls");
    let ca = conn.extra_str("ssl_ca_certs").unwrap().to_string();
    let password = conn.password().unwrap().to_string();
    let refused = |e: &Error, what: &str| {
        assert_eq!(e.operation(), "redis.connect", "{what}: {e}");
        assert!(!all_text(e).contains(&password), "{what}: {e}");
    };

    // A refused certificate is `Auth` and not retried: it will not heal.
    let bad_certificate = |e: &Error, what: &str| {
        refused(e, what);
        assert_eq!(e.kind(), ErrorKind::Auth, "{what}: {e}");
        assert!(!e.is_retryable(), "{what}: {e}");
        assert!(
            e.to_string().contains("invalid peer certificate"),
            "{what}: {e}"
        );
    };

    let no_ca = tls_variant(
        &conn,
        "localhost",
        json!({"ssl": "true", "socket_connect_timeout": "5"}),
    );
    let e = RedisHook::from_connection(&no_ca).await.unwrap_err();
    refused(&e, "unknown CA");
    assert!(
        all_text(&e).to_lowercase().contains("certificate"),
        "{}",
        all_text(&e)
    );

    let by_address = tls_variant(
        &conn,
        "127.0.0.1",
        json!({"ssl": "true", "ssl_ca_certs": ca}),
    );
    let e = RedisHook::from_connection(&by_address).await.unwrap_err();
    refused(&e, "hostname mismatch");
    assert!(
        all_text(&e).to_lowercase().contains("certificate"),
        "{}",
        all_text(&e)
    );

    let unchecked = tls_variant(
        &conn,
        "127.0.0.1",
        json!({"ssl": "true", "ssl_ca_certs": ca, "ssl_check_hostname": "false"}),
    );
    let h = RedisHook::from_connection(&unchecked)
        .await
        .expect("an unchecked hostname connects");
    h.test_connection().await.unwrap();
    // Unchecked hostname, unknown CA: the chain is still verified.
    let unchecked_no_ca = tls_variant(
        &conn,
        "127.0.0.1",
        json!({"ssl": "true", "ssl_check_hostname": "false", "socket_connect_timeout": "5"}),
    );
    let e = RedisHook::from_connection(&unchecked_no_ca)
        .await
        .unwrap_err();
    bad_certificate(&e, "unchecked hostname, unknown CA");

    let missing = tls_variant(
        &conn,
        "localhost",
        json!({"ssl": "true", "ssl_ca_certs": "/nonexistent/gust-ca.pem"}),
    );
    let e = RedisHook::from_connection(&missing).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_eq!(e.context("path"), Some("/nonexistent/gust-ca.pem"));
    refused(&e, "missing CA file");
}
