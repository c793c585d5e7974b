//! `S3ToRedis` against the real single node (`redis_default`) and the 6-node
//! cluster (`redis_cluster`): CSV round trips (JSON values and hashes, TTL, gzip,
//! the real S3 server), `replace` removing exactly the stale keys, the bad-input
//! catalogue, and a cluster master stopped mid-load (a retryable error, then a
//! re-run with exactly the expected keys).
//!
//! The fault test freezes one cluster master (`SIGSTOP`, shorter than the
//! cluster's node timeout, so no failover happens): the other cluster tests of
//! this file wait for it through `CLUSTER_USE`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use gust::formats::FileFormat;
use gust::formats::csv::CsvFormat;
use gust::hooks::object_store::{MemoryStore, ObjectStore, PutOptions};
use gust::hooks::redis::RedisHook;
use gust::transfers::s3_to_redis::{S3ToRedis, StoreAs};
use gust::{Connection, Context, Error, ErrorKind, Operator};
use serde_json::{Value, json};

/// Cluster tests hold it shared; the fault test holds it alone.
static CLUSTER_USE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Runs one check on the single node and on the cluster, as two tests.
macro_rules! both {
    ($name:ident, $check:ident) => {
        mod $name {
            #[tokio::test]
            async fn single_node() {
                let conn = crate::require_conn!("redis_default");
                super::$check(conn).await;
            }
            #[tokio::test]
            async fn cluster() {
                let conn = crate::require_conn!("redis_cluster");
                let _shared = crate::CLUSTER_USE.read().await;
                super::$check(conn).await;
            }
        }
    };
}

fn ctx() -> Context {
    Context::builder("redis", "read_s3_and_store_to_redis").build()
}

/// A store with bucket `raw` holding `objects` (key, text).
async fn memory_store(objects: &[(&str, &str)]) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    store.create_bucket("raw").await.unwrap();
    for (key, body) in objects {
        put(&store, key, body.as_bytes().to_vec()).await;
    }
    store
}

async fn put(store: &MemoryStore, key: &str, body: Vec<u8>) {
    store
        .put("raw", key, body.into(), &PutOptions::new())
        .await
        .unwrap();
}

async fn hook(conn: &Connection) -> RedisHook {
    RedisHook::from_connection(conn).await.expect("connect")
}

/// Every key under `prefix`, from `SCAN` over every master.
async fn keys_under(h: &RedisHook, prefix: &str) -> BTreeSet<String> {
    h.scan(&format!("{prefix}*"), 1000)
        .try_collect()
        .await
        .unwrap()
}

/// The JSON value of every key under `prefix`.
async fn json_under(h: &RedisHook, prefix: &str) -> BTreeMap<String, Value> {
    let keys: Vec<String> = keys_under(h, prefix).await.into_iter().collect();
    let values: Vec<Option<Value>> = h.mget_json(&keys).await.unwrap();
    keys.into_iter()
        .zip(values)
        .map(|(k, v)| (k, v.expect("scanned key has a value")))
        .collect()
}

/// An error shown on one line that names the object.
fn assert_one_line(e: &Error, object: &str) {
    let text = e.to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(text.contains(object), "names the object: {text}");
    assert_eq!(e.operation(), "s3_to_redis.load", "{text}");
}

/// The seed's CSV: `;`-separated, plus NULL, an empty string, quotes, Korean and
/// a blank line (no row in a file of several columns).
const IRIS: &str = "SepalLength;SepalWidth;Species;Note\n\
    5.1;3.5;Iris-setosa;\n\
    4.9;3.0;Iris-setosa;\"\"\n\
    7.0;3.2;Iris-versicolor;\"a;\"\"b\"\"\"\n\
    \n\
    6.3;3.3;Iris-virginica;붓꽃\n";

fn iris_expected(prefix: &str, infer: bool) -> BTreeMap<String, Value> {
    let n = |s: &str| {
        if infer {
            json!(s.parse::<f64>().unwrap())
        } else {
            json!(s)
        }
    };
    let rows = [
        ("5.1", "3.5", "Iris-setosa", Value::Null),
        ("4.9", "3.0", "Iris-setosa", json!("")),
        ("7.0", "3.2", "Iris-versicolor", json!("a;\"b\"")),
        ("6.3", "3.3", "Iris-virginica", json!("붓꽃")),
    ];
    rows.into_iter()
        .enumerate()
        .map(|(i, (l, w, s, note))| {
            (
                format!("{prefix}{i}"),
                json!({"SepalLength": n(l), "SepalWidth": n(w), "Species": s, "Note": note}),
            )
        })
        .collect()
}

// ---- round trips ----

async fn check_csv_as_json(conn: Connection) {
    let h = hook(&conn).await;
    let store = memory_store(&[("iris1.csv", IRIS)]).await;
    let base = common::unique("gust:s3r:json");
    let ctx = ctx();
    let prefix = format!("{base}:{}:row:", ctx.ds());
    let op = S3ToRedis::new(
        "s3://raw/iris1.csv",
        format!("{base}:{{{{ ds }}}}:row:{{{{ index }}}}"),
    )
    .file_format(CsvFormat::new().delimiter(b';'))
    .with_store(store.clone())
    .with_hook(h.clone());
    let out = op.execute(&ctx).await.unwrap();
    assert_eq!(out["rows"], 4);
    assert_eq!(out["format"], "csv");
    assert_eq!(out["store_as"], "json");
    assert_eq!(out["prefix"], Value::Null, "no replace, no prefix");
    assert_eq!(json_under(&h, &prefix).await, iris_expected(&prefix, false));

    // Typed numbers; the re-run gives the same keys with the new values.
    let out = op.clone().infer_numbers(true).execute(&ctx).await.unwrap();
    assert_eq!(out["rows"], 4);
    let got = json_under(&h, &prefix).await;
    assert_eq!(got, iris_expected(&prefix, true));
    // 3.0 stays 3.0 (a float), as pandas' json would write it.
    let raw = h.get_string(&format!("{prefix}1")).await.unwrap().unwrap();
    assert!(raw.contains(r#""SepalWidth":3.0"#), "{raw}");
    h.delete(&got.keys().collect::<Vec<_>>()).await.unwrap();
}
both!(csv_as_json, check_csv_as_json);

async fn check_many_rows_in_batches_then_replace(conn: Connection) {
    // 2,500 rows in batches of 300, 3 in flight: keys on every master.
    let h = hook(&conn).await;
    let base = common::unique("gust:s3r:many");
    let csv = |n: usize| {
        let mut s = String::from("id,name\n");
        for i in 0..n {
            s.push_str(&format!("{i},name-{i}\n"));
        }
        s
    };
    let store = memory_store(&[("long.csv", &csv(2500)), ("short.csv", &csv(1000))]).await;
    let prefix = format!("{base}:row:");
    // A key under the prefix no load writes, and one next to the prefix.
    h.set(&format!("{prefix}stale"), "x", None).await.unwrap();
    h.set(&format!("{prefix}0007"), "x", None).await.unwrap();
    let outside = format!("{base}:rowx");
    h.set(&outside, "keep", None).await.unwrap();

    let op = |key: &str| {
        S3ToRedis::new(
            format!("s3://raw/{key}"),
            format!("{prefix}{{{{ index }}}}"),
        )
        .batch_rows(300)
        .max_in_flight(3)
        .replace(true)
        .with_store(store.clone())
        .with_hook(h.clone())
    };
    let out = op("long.csv").execute(&ctx()).await.unwrap();
    assert_eq!(out["rows"], 2500);
    assert_eq!(out["prefix"], prefix.as_str());
    assert_eq!(out["deleted"], 2, "the two keys no row wrote");
    let expected =
        |n: usize| -> BTreeSet<String> { (0..n).map(|i| format!("{prefix}{i}")).collect() };
    assert_eq!(keys_under(&h, &prefix).await, expected(2500));

    // The shorter object: rows 1000..2499 are stale and go; the rest is rewritten.
    let out = op("short.csv").execute(&ctx()).await.unwrap();
    assert_eq!(out["rows"], 1000);
    assert_eq!(out["deleted"], 1500);
    let values = json_under(&h, &prefix).await;
    assert_eq!(
        values.keys().cloned().collect::<BTreeSet<_>>(),
        expected(1000)
    );
    assert_eq!(
        values[&format!("{prefix}999")],
        json!({"id": "999", "name": "name-999"})
    );
    assert_eq!(
        h.get_string(&outside).await.unwrap().as_deref(),
        Some("keep")
    );

    // Same date, same object: same keys, same values, nothing deleted.
    let out = op("short.csv").execute(&ctx()).await.unwrap();
    assert_eq!(out["deleted"], 0);
    assert_eq!(json_under(&h, &prefix).await, values);
    let mut all: Vec<String> = values.into_keys().collect();
    all.push(outside);
    h.delete(&all).await.unwrap();
}
both!(
    many_rows_in_batches_then_replace,
    check_many_rows_in_batches_then_replace
);

async fn check_keys_from_a_column_with_replace(conn: Connection) {
    let h = hook(&conn).await;
    let base = common::unique("gust:s3r:col");
    let store = memory_store(&[
        ("a.csv", "user id,score\nkim,1\nlee,2\npark,3\n"),
        ("b.csv", "user id,score\nlee,20\nchoi,40\n"),
    ])
    .await;
    let op = |key: &str| {
        S3ToRedis::new(
            format!("s3://raw/{key}"),
            format!("{base}:user:{{{{ row['user id'] }}}}"),
        )
        .infer_numbers(true)
        .replace(true)
        .with_store(store.clone())
        .with_hook(h.clone())
    };
    op("a.csv").execute(&ctx()).await.unwrap();
    let out = op("b.csv").execute(&ctx()).await.unwrap();
    assert_eq!(out["deleted"], 2, "kim and park");
    let prefix = format!("{base}:user:");
    let got = json_under(&h, &prefix).await;
    let expected: BTreeMap<String, Value> = [
        (
            format!("{prefix}lee"),
            json!({"user id": "lee", "score": 20}),
        ),
        (
            format!("{prefix}choi"),
            json!({"user id": "choi", "score": 40}),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, expected);
    h.delete(&got.keys().collect::<Vec<_>>()).await.unwrap();
}
both!(
    keys_from_a_column_with_replace,
    check_keys_from_a_column_with_replace
);

async fn check_hashes_with_ttl(conn: Connection) {
    let h = hook(&conn).await;
    let base = common::unique("gust:s3r:hash");
    let store = memory_store(&[
        ("v1.csv", "a,b,c\n1,x,\"\"\n2,,y\n,,\n"),
        ("v2.csv", "a,b,c\n1,,z\n"),
    ])
    .await;
    let op = |key: &str| {
        S3ToRedis::new(format!("s3://raw/{key}"), format!("{base}:{{{{ index }}}}"))
            .store_as(StoreAs::Hash)
            .ttl(Duration::from_secs(600))
            .with_store(store.clone())
            .with_hook(h.clone())
    };
    let out = op("v1.csv").execute(&ctx()).await.unwrap();
    assert_eq!(out["rows"], 3);
    assert_eq!(out["store_as"], "hash");
    // NULL fields are absent; the empty string is kept; an all-NULL row has no key.
    let mut direct = direct_client(&conn, &h, &format!("{base}:0")).await;
    let fields: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{base}:0"))
        .query_async(&mut direct)
        .await
        .unwrap();
    assert_eq!(
        fields,
        BTreeMap::from([
            ("a".into(), "1".into()),
            ("b".into(), "x".into()),
            ("c".into(), "".into())
        ])
    );
    let ttl = h.ttl(&format!("{base}:0")).await.unwrap().unwrap();
    assert!(
        ttl > Duration::from_secs(590) && ttl <= Duration::from_secs(600),
        "{ttl:?}"
    );
    assert!(
        !h.exists(&format!("{base}:2")).await.unwrap(),
        "an all-NULL row leaves no key"
    );

    // A re-load replaces the fields: b, once x, is gone.
    op("v2.csv").execute(&ctx()).await.unwrap();
    let mut direct = direct_client(&conn, &h, &format!("{base}:0")).await;
    let fields: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{base}:0"))
        .query_async(&mut direct)
        .await
        .unwrap();
    assert_eq!(
        fields,
        BTreeMap::from([("a".into(), "1".into()), ("c".into(), "z".into())])
    );
    assert!(h.ttl(&format!("{base}:0")).await.unwrap().is_some());
    h.delete(&[format!("{base}:0"), format!("{base}:1")])
        .await
        .unwrap();
}
both!(hashes_with_ttl, check_hashes_with_ttl);

/// A plain client of the node that holds `key`, to read what the hook has no
/// method for (`HGETALL`).
async fn direct_client(
    conn: &Connection,
    h: &RedisHook,
    key: &str,
) -> redis::aio::MultiplexedConnection {
    let (host, port) = if h.is_cluster() {
        master_of(conn, h, key).await
    } else {
        h.config().nodes()[0].clone()
    };
    node_client(conn, &host, port).await
}

/// The master serving `key`'s slot, from `CLUSTER SLOTS`.
async fn master_of(conn: &Connection, h: &RedisHook, key: &str) -> (String, u16) {
    let slot = i64::from(gust::hooks::redis::key_slot(key.as_bytes()));
    let (host, port) = h.masters().await.unwrap()[0].clone();
    let mut c = node_client(conn, &host, port).await;
    // [[start, end, [host, port, id, …], replicas…], …]
    let ranges: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut c)
        .await
        .unwrap();
    for r in ranges {
        let start: i64 = redis::from_redis_value(r[0].clone()).unwrap();
        let end: i64 = redis::from_redis_value(r[1].clone()).unwrap();
        if (start..=end).contains(&slot) {
            // [host, port, id, (metadata)]
            let master: Vec<redis::Value> = redis::from_redis_value(r[2].clone()).unwrap();
            let host: String = redis::from_redis_value(master[0].clone()).unwrap();
            let port: u16 = redis::from_redis_value(master[1].clone()).unwrap();
            return (host, port);
        }
    }
    panic!("no master serves slot {slot}")
}

/// A plain client of one node.
async fn node_client(
    conn: &Connection,
    host: &str,
    port: u16,
) -> redis::aio::MultiplexedConnection {
    let pw = conn.password().unwrap();
    redis::Client::open(format!("redis://:{pw}@{host}:{port}/"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn gzip_object_on_the_single_node() {
    let conn = require_conn!("redis_default");
    let h = hook(&conn).await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(IRIS.as_bytes()).unwrap();
    let store = memory_store(&[]).await;
    put(&store, "2025/iris1.csv.gz", gz.finish().unwrap()).await;
    let base = common::unique("gust:s3r:gz");
    let out = S3ToRedis::new("2025/iris1.csv.gz", format!("{base}:{{{{ index }}}}"))
        .s3_bucket("raw")
        .file_format(CsvFormat::new().delimiter(b';'))
        .with_store(store)
        .with_hook(h.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"], 4);
    let prefix = format!("{base}:");
    let got = json_under(&h, &prefix).await;
    assert_eq!(got, iris_expected(&prefix, false));
    h.delete(&got.keys().collect::<Vec<_>>()).await.unwrap();
}

/// The whole path on real servers: the object on the S3 server, the rows into
/// the cluster, through connections as a DAG would name them.
#[cfg(feature = "s3")]
#[tokio::test]
async fn from_the_s3_server_into_the_cluster_by_conn_ids() {
    use gust::hooks::s3::S3Hook;
    let aws = require_conn!("aws_default");
    let conn = require_conn!("redis_cluster");
    let _shared = CLUSTER_USE.read().await;
    let s3 = S3Hook::from_connection(&aws).await.unwrap();
    let bucket = common::unique("gust-s3r").to_lowercase();
    s3.create_bucket(&bucket).await.unwrap();
    let ctx = ctx();
    let key = format!("{}/iris1.csv", ctx.ds());
    s3.put(
        &bucket,
        &key,
        IRIS.as_bytes().to_vec().into(),
        &PutOptions::new(),
    )
    .await
    .unwrap();
    let base = common::unique("gust:s3r:s3");
    let out = S3ToRedis::new(
        format!("s3://{bucket}/{{{{ ds }}}}/iris1.csv"),
        format!("{base}:row:{{{{ index }}}}"),
    )
    .file_format(CsvFormat::new().delimiter(b';'))
    .aws_conn_id("aws_default")
    .redis_conn_id("redis_cluster")
    .replace(true)
    .execute(&ctx)
    .await
    .unwrap();
    assert_eq!(out["bucket"], bucket.as_str());
    assert_eq!(out["rows"], 4);
    let h = hook(&conn).await;
    let prefix = format!("{base}:row:");
    let got = json_under(&h, &prefix).await;
    assert_eq!(got, iris_expected(&prefix, false));
    h.delete(&got.keys().collect::<Vec<_>>()).await.unwrap();
    s3.delete(&bucket, &[key]).await.unwrap();
}

/// JSON Lines: values keep their JSON types and the keys their order; a blank
/// line is no record.
const PEOPLE: &str = r#"{"id":"kim","age":31,"score":4.5,"tags":["a","b"],"note":null,"name":"김민수"}
{"id":"lee","age":28,"score":3.0,"tags":[],"note":"x","name":"lee"}

{"id":"park","active":true,"name":"park"}
"#;

async fn check_jsonl_as_json_and_hashes(conn: Connection) {
    let h = hook(&conn).await;
    let base = common::unique("gust:s3r:jsonl");
    let store = memory_store(&[("people.jsonl", PEOPLE)]).await;
    let prefix = format!("{base}:person:");
    let out = S3ToRedis::new("s3://raw/people.jsonl", format!("{prefix}{{{{ row.id }}}}"))
        .with_store(store.clone())
        .with_hook(h.clone())
        .execute(&ctx())
        .await
        .unwrap();
    assert_eq!(out["format"], "jsonl", "from the key's suffix");
    assert_eq!(out["rows"], 3);
    let raw = h
        .get_string(&format!("{prefix}kim"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        raw, r#"{"id":"kim","age":31,"score":4.5,"tags":["a","b"],"note":null,"name":"김민수"}"#,
        "stored as read"
    );
    let got = json_under(&h, &prefix).await;
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[&format!("{prefix}park")],
        json!({"id": "park", "active": true, "name": "park"})
    );
    h.delete(&got.keys().collect::<Vec<_>>()).await.unwrap();

    // As hashes, keyed by index, from a gzip object: numbers and booleans printed,
    // arrays as JSON text, null absent.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(PEOPLE.as_bytes()).unwrap();
    put(&store, "people.jsonl.gz", gz.finish().unwrap()).await;
    let out = S3ToRedis::new(
        "s3://raw/people.jsonl.gz",
        format!("{base}:h:{{{{ index }}}}"),
    )
    .store_as(StoreAs::Hash)
    .with_store(store)
    .with_hook(h.clone())
    .execute(&ctx())
    .await
    .unwrap();
    assert_eq!(out["rows"], 3);
    let key = format!("{base}:h:0");
    let mut direct = direct_client(&conn, &h, &key).await;
    let fields: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(&key)
        .query_async(&mut direct)
        .await
        .unwrap();
    let expected: BTreeMap<String, String> = [
        ("id", "kim"),
        ("age", "31"),
        ("score", "4.5"),
        ("tags", r#"["a","b"]"#),
        ("name", "김민수"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(fields, expected);
    h.delete(&[key, format!("{base}:h:1"), format!("{base}:h:2")])
        .await
        .unwrap();
}
both!(jsonl_as_json_and_hashes, check_jsonl_as_json_and_hashes);

// ---- bad inputs ----

async fn bad(
    store: Arc<MemoryStore>,
    h: &RedisHook,
    key: &str,
    op: impl FnOnce(S3ToRedis) -> S3ToRedis,
) -> Error {
    let base = common::unique("gust:s3r:bad");
    let e = op(
        S3ToRedis::new(format!("s3://raw/{key}"), format!("{base}:{{{{ index }}}}"))
            .with_store(store)
            .with_hook(h.clone()),
    )
    .execute(&ctx())
    .await
    .unwrap_err();
    assert_one_line(&e, &format!("s3://raw/{key}"));
    assert!(!e.is_retryable(), "bad input is not retryable: {e}");
    e
}

#[tokio::test]
async fn bad_inputs_each_fail_with_one_typed_line() {
    let conn = require_conn!("redis_default");
    let h = hook(&conn).await;
    let store = memory_store(&[
        ("empty.csv", ""),
        (
            "commas.csv",
            "SepalLength;Species\n5,1;setosa\n4,9;setosa\n",
        ),
        ("dup.csv", "id,v\na,1\nb,2\na,3\n"),
        ("null.csv", "id,v\na,1\n,2\n"),
        ("noheader.csv", "a,1\n"),
        ("dupcol.csv", "id,id\n1,2\n"),
        ("bad.csv.gz", "not gzip at all"),
        ("ok.csv", "id\n1\n"),
        ("bad.jsonl", "{\"id\":1}\n{\"id\":2\n"),
        ("nokey.jsonl", "{\"id\":1}\n{\"other\":2}\n"),
        ("empty.jsonl.gz", ""),
    ])
    .await;

    let e = bad(store.clone(), &h, "missing.csv", |o| o).await;
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");

    let e = bad(store.clone(), &h, "empty.csv", |o| o).await;
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.message().contains("empty"), "{e}");

    // `;`-separated with decimal commas, read with the default `,`.
    let e = bad(store.clone(), &h, "commas.csv", |o| o).await;
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(
        e.message()
            .contains("line 2 has 2 fields where 1 columns were expected"),
        "{e}"
    );
    assert_eq!(e.context("line"), Some("2"));

    let e = bad(store.clone(), &h, "dup.csv", |_| {
        S3ToRedis::new("s3://raw/dup.csv", "gust:s3r:dup:{{ row.id }}")
            .with_store(store.clone())
            .with_hook(h.clone())
    })
    .await;
    assert!(
        e.message().contains("line 4 has the key of an earlier row"),
        "{e}"
    );

    let e = bad(store.clone(), &h, "null.csv", |_| {
        S3ToRedis::new("s3://raw/null.csv", "gust:s3r:null:{{ row.id }}")
            .with_store(store.clone())
            .with_hook(h.clone())
    })
    .await;
    assert!(
        e.message()
            .contains("line 3: the key column \"id\" is NULL"),
        "{e}"
    );

    let e = bad(store.clone(), &h, "ok.csv", |_| {
        S3ToRedis::new("s3://raw/ok.csv", "gust:s3r:x:{{ row.nope }}")
            .with_store(store.clone())
            .with_hook(h.clone())
    })
    .await;
    assert!(e.message().contains("row.nope"), "{e}");

    let e = bad(store.clone(), &h, "noheader.csv", |o| {
        o.file_format(CsvFormat::new().header(false))
    })
    .await;
    assert!(e.message().contains("column_list"), "{e}");

    let e = bad(store.clone(), &h, "dupcol.csv", |o| o).await;
    assert!(e.message().contains("named twice"), "{e}");

    let e = bad(store.clone(), &h, "bad.csv.gz", |o| o).await;
    assert!(e.message().contains("gzip"), "{e}");

    let e = bad(store.clone(), &h, "bad.jsonl", |o| o).await;
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.message().contains("line 2"), "{e}");
    let e = bad(store.clone(), &h, "nokey.jsonl", |_| {
        S3ToRedis::new("s3://raw/nokey.jsonl", "gust:s3r:nokey:{{ row.id }}")
            .with_store(store.clone())
            .with_hook(h.clone())
    })
    .await;
    assert!(
        e.message()
            .contains("line 2: the key field \"id\" is missing"),
        "{e}"
    );
    let e = bad(store.clone(), &h, "empty.jsonl.gz", |o| o).await;
    assert!(e.message().contains("empty"), "{e}");
    // A format given explicitly wins over the suffix: this CSV is no JSON.
    let e = bad(store.clone(), &h, "ok.csv", |o| {
        o.file_format(FileFormat::JsonLines)
    })
    .await;
    assert!(
        e.message().contains("malformed JSON Lines at line 1"),
        "{e}"
    );

    // The key template: the same key for every row; an expression on a row
    // variable; replace without a prefix.
    let e = bad(store.clone(), &h, "ok.csv", |_| {
        S3ToRedis::new("s3://raw/ok.csv", "gust:s3r:{{ ds }}")
            .with_store(store.clone())
            .with_hook(h.clone())
    })
    .await;
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("same key"), "{e}");
    let e = bad(store.clone(), &h, "ok.csv", |_| {
        S3ToRedis::new("s3://raw/ok.csv", "gust:s3r:{{ index + 1 }}")
            .with_store(store.clone())
            .with_hook(h.clone())
    })
    .await;
    assert_eq!(e.kind(), ErrorKind::Template);
    let e = bad(store.clone(), &h, "ok.csv", |_| {
        S3ToRedis::new("s3://raw/ok.csv", "{{ row.id }}")
            .replace(true)
            .with_store(store.clone())
            .with_hook(h.clone())
    })
    .await;
    assert!(e.message().contains("replace needs a prefix"), "{e}");
}

// ---- a master stopped mid-load ----

#[cfg(unix)]
mod fault {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use async_trait::async_trait;
    use bytes::Bytes;
    use futures::StreamExt;
    use futures::stream::BoxStream;
    use gust::hooks::object_store::{
        BytesStream, DeleteReport, ListEntry, ListOptions, ObjectMeta, PutResult,
    };

    /// A MemoryStore whose objects stream in 4 KiB chunks, a little slowly, and
    /// that runs `on_chunk` before chunk `at`: a load is surely under way then.
    struct SlowStore {
        inner: Arc<MemoryStore>,
        at: usize,
        on_chunk: Arc<dyn Fn() + Send + Sync>,
    }

    impl std::fmt::Debug for SlowStore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("SlowStore")
                .field("at", &self.at)
                .finish_non_exhaustive()
        }
    }

    #[async_trait]
    impl ObjectStore for SlowStore {
        async fn create_bucket(&self, bucket: &str) -> gust::Result<bool> {
            self.inner.create_bucket(bucket).await
        }
        async fn put(
            &self,
            b: &str,
            k: &str,
            data: Bytes,
            o: &PutOptions,
        ) -> gust::Result<PutResult> {
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
            let all = self.inner.get(bucket, key).await?;
            let chunks: Vec<Bytes> = all.chunks(4096).map(Bytes::copy_from_slice).collect();
            let (at, on_chunk) = (self.at, self.on_chunk.clone());
            Ok(futures::stream::iter(chunks.into_iter().enumerate())
                .then(move |(i, c)| {
                    let on_chunk = on_chunk.clone();
                    async move {
                        if i == at {
                            on_chunk();
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        Ok::<_, gust::Error>(c)
                    }
                })
                .boxed())
        }
        async fn get_range(
            &self,
            b: &str,
            k: &str,
            r: std::ops::Range<u64>,
        ) -> gust::Result<Bytes> {
            self.inner.get_range(b, k, r).await
        }
        async fn head(&self, b: &str, k: &str) -> gust::Result<ObjectMeta> {
            self.inner.head(b, k).await
        }
        fn list<'a>(
            &'a self,
            b: &'a str,
            o: ListOptions,
        ) -> BoxStream<'a, gust::Result<ListEntry>> {
            self.inner.list(b, o)
        }
        async fn copy(&self, sb: &str, sk: &str, db: &str, dk: &str) -> gust::Result<()> {
            self.inner.copy(sb, sk, db, dk).await
        }
        async fn delete(&self, b: &str, keys: &[String]) -> gust::Result<DeleteReport> {
            self.inner.delete(b, keys).await
        }
    }

    /// A frozen redis-server: `SIGCONT` when dropped (even on a failed
    /// assertion), and from a watchdog thread after `limit` at the latest, well
    /// inside the cluster's 5 s node timeout.
    struct Frozen {
        pid: i32,
        stopped: Arc<AtomicBool>,
    }

    impl Frozen {
        fn new(pid: i32) -> Self {
            Frozen {
                pid,
                stopped: Arc::new(AtomicBool::new(false)),
            }
        }

        fn stop(&self, limit: Duration) {
            // SAFETY: kill(2) with a pid read from the server itself.
            assert_eq!(
                unsafe { libc::kill(self.pid, libc::SIGSTOP) },
                0,
                "SIGSTOP {}",
                self.pid
            );
            self.stopped.store(true, Ordering::SeqCst);
            let (pid, stopped) = (self.pid, self.stopped.clone());
            std::thread::spawn(move || {
                std::thread::sleep(limit);
                if stopped.swap(false, Ordering::SeqCst) {
                    // SAFETY: as above.
                    unsafe { libc::kill(pid, libc::SIGCONT) };
                }
            });
        }

        fn resume(&self) {
            self.stopped.store(false, Ordering::SeqCst);
            // SAFETY: as above; SIGCONT to a running process does nothing.
            unsafe { libc::kill(self.pid, libc::SIGCONT) };
        }
    }

    impl Drop for Frozen {
        fn drop(&mut self) {
            self.resume();
        }
    }

    /// The pid of the redis-server listening on `host:port` (`INFO server`).
    async fn server_pid(conn: &Connection, host: &str, port: u16) -> i32 {
        let mut c = node_client(conn, host, port).await;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut c)
            .await
            .unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|p| p.trim().parse().ok())
            .expect("INFO server has process_id")
    }

    #[tokio::test]
    async fn a_master_stopped_mid_load_is_retryable_and_the_rerun_is_exact() {
        let conn = require_conn!("redis_cluster");
        let _alone = CLUSTER_USE.write().await;
        // A short response timeout: the frozen master makes the load fail in about
        // a second (the driver retries a timeout 3 times), long before failover.
        let fast = conn.clone().with_extra("socket_timeout", json!(0.25));
        let h = hook(&fast).await;
        h.test_connection().await.unwrap();

        let base = common::unique("gust:s3r:fault");
        let prefix = format!("{base}:row:");
        let n = 20_000;
        let mut csv = String::from("id,payload\n");
        for i in 0..n {
            csv.push_str(&format!("{i},value-{i}\n"));
        }
        let inner = memory_store(&[("big.csv", &csv)]).await;
        // Rows of an earlier, longer load that the re-run must remove.
        let stale: Vec<(String, String)> = (n..n + 50)
            .map(|i| (format!("{prefix}{i}"), "old".into()))
            .collect();
        h.mset(&stale).await.unwrap();

        let (host, port) = h.masters().await.unwrap()[1].clone();
        let pid = server_pid(&conn, &host, port).await;
        let frozen = Arc::new(Frozen::new(pid));
        let stops = Arc::new(AtomicUsize::new(0));
        let store = Arc::new(SlowStore {
            inner: inner.clone(),
            at: 20,
            on_chunk: {
                let (frozen, stops) = (frozen.clone(), stops.clone());
                Arc::new(move || {
                    stops.fetch_add(1, Ordering::SeqCst);
                    frozen.stop(Duration::from_millis(3500));
                })
            },
        });
        let op = S3ToRedis::new("s3://raw/big.csv", format!("{prefix}{{{{ index }}}}"))
            .replace(true)
            .with_store(store)
            .with_hook(h.clone());
        let started = std::time::Instant::now();
        let e = op.execute(&ctx()).await.unwrap_err();
        frozen.resume();
        eprintln!("after {:?} the load failed: {e}", started.elapsed());
        assert_eq!(
            stops.load(Ordering::SeqCst),
            1,
            "the master was stopped mid-load"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "failed before the node timeout: {:?}",
            started.elapsed()
        );
        assert!(
            matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Unavailable),
            "a timeout or an unavailable master: {e}"
        );
        assert!(e.is_retryable(), "retryable: {e}");
        assert_one_line(&e, "s3://raw/big.csv");
        // The stale rows are still there: replace runs only after a complete load.
        assert_eq!(
            h.get_string(&format!("{prefix}{n}"))
                .await
                .ok()
                .flatten()
                .as_deref(),
            Some("old")
        );

        // The re-run (a new hook, as the task's retry would build) completes with
        // exactly the expected keys and values.
        let h = hook(&conn).await;
        h.test_connection().await.unwrap();
        let out = S3ToRedis::new("s3://raw/big.csv", format!("{prefix}{{{{ index }}}}"))
            .replace(true)
            .with_store(inner)
            .with_hook(h.clone())
            .execute(&ctx())
            .await
            .unwrap();
        assert_eq!(out["rows"], n);
        assert_eq!(out["deleted"], 50);
        let got = json_under(&h, &prefix).await;
        assert_eq!(got.len(), n);
        for i in [0, 1, n / 2, n - 1] {
            assert_eq!(
                got[&format!("{prefix}{i}")],
                json!({"id": i.to_string(), "payload": format!("value-{i}")})
            );
        }
        let expected: BTreeSet<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
        assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), expected);
        h.delete(&got.keys().collect::<Vec<_>>()).await.unwrap();
    }
}
