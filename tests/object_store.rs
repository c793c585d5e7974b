//! The `ObjectStore` conformance suite: one function, run against `MemoryStore`,
//! `LocalStore`, `S3Hook` on both real S3 servers (moto and s3s-fs), and the
//! testing feature's `FaultyStore` with no fault scripted.

mod common;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use gust::ErrorKind;
use gust::hooks::object_store::{
    ListEntry, ListOptions, LocalStore, MemoryStore, ObjectStore, PutOptions,
};
use gust::hooks::s3::S3Hook;

/// Lists `opts` and renders entries as `key` / `P:prefix`, in stream order.
async fn names(store: &dyn ObjectStore, bucket: &str, opts: ListOptions) -> Vec<String> {
    store
        .list(bucket, opts)
        .map_ok(|e| match e {
            ListEntry::Object(m) => m.key,
            ListEntry::Prefix(p) => format!("P:{p}"),
        })
        .try_collect()
        .await
        .expect("list")
}

fn kind<T: std::fmt::Debug>(r: gust::Result<T>) -> ErrorKind {
    r.expect_err("expected an error").kind()
}

/// Where a server knowingly departs from S3's contract; each departure is
/// documented in the store's docs or docs/ARCHITECTURE.md.
#[derive(Clone, Copy, Default)]
struct Quirks {
    /// s3s-fs creates a missing bucket on `PutObject` instead of `NoSuchBucket`.
    put_creates_bucket: bool,
}

/// Runs every contract of the trait against `store`, in bucket `bucket` (created
/// here) and `other` (for cross-bucket copies).
async fn conformance(store: &dyn ObjectStore, bucket: &str, other: &str, quirks: Quirks) {
    // Buckets: created once, idempotent after.
    assert!(store.create_bucket(bucket).await.expect("create bucket"));
    assert!(!store.create_bucket(bucket).await.expect("create again"));
    store.create_bucket(other).await.expect("create other");

    // Put / get / head / exists.
    let data = Bytes::from_static(b"sepal_length;species\n5.1;setosa\n");
    let put = store
        .put(
            bucket,
            "raw/iris1.csv",
            data.clone(),
            &PutOptions::new().content_type("text/csv"),
        )
        .await
        .expect("put");
    assert_eq!(put.size, data.len() as u64);
    assert_eq!(store.get(bucket, "raw/iris1.csv").await.unwrap(), data);
    let head = store.head(bucket, "raw/iris1.csv").await.unwrap();
    assert_eq!(
        (head.key.as_str(), head.size),
        ("raw/iris1.csv", data.len() as u64)
    );
    assert!(store.exists(bucket, "raw/iris1.csv").await.unwrap());
    assert!(!store.exists(bucket, "raw/nope.csv").await.unwrap());
    assert_eq!(
        kind(store.get(bucket, "raw/nope.csv").await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(store.head(bucket, "raw/nope.csv").await),
        ErrorKind::NotFound
    );
    let missing = format!("{bucket}-missing");
    assert_eq!(kind(store.get(&missing, "a").await), ErrorKind::NotFound);
    if !quirks.put_creates_bucket {
        let e = store
            .put(&missing, "a", Bytes::from_static(b"x"), &PutOptions::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert_eq!(e.context("bucket"), Some(missing.as_str()), "{e}");
    }

    // An empty object round-trips (a ranged first GET would get 416 on it).
    store
        .put(bucket, "raw/empty", Bytes::new(), &PutOptions::new())
        .await
        .expect("put empty");
    assert!(store.get(bucket, "raw/empty").await.unwrap().is_empty());
    assert_eq!(store.head(bucket, "raw/empty").await.unwrap().size, 0);

    // replace=false: refuses an existing key, leaves it untouched; creates a new one.
    let no_replace = PutOptions::new().replace(false);
    let e = store
        .put(
            bucket,
            "raw/iris1.csv",
            Bytes::from_static(b"other"),
            &no_replace,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert_eq!(e.context("key"), Some("raw/iris1.csv"));
    assert_eq!(store.get(bucket, "raw/iris1.csv").await.unwrap(), data);
    store
        .put(bucket, "raw/new.csv", Bytes::from_static(b"n"), &no_replace)
        .await
        .expect("replace=false onto a new key");

    // Streams: chunks in, the same bytes out; a failing stream stores nothing.
    let chunks: Vec<gust::Result<Bytes>> = (0..10)
        .map(|i| Ok(Bytes::from(vec![b'a' + i as u8; 1000])))
        .collect();
    let expected: Vec<u8> = (0..10).flat_map(|i| vec![b'a' + i as u8; 1000]).collect();
    let put = store
        .put_stream(
            bucket,
            "stream/s.bin",
            futures::stream::iter(chunks).boxed(),
            &PutOptions::new(),
        )
        .await
        .expect("put_stream");
    assert_eq!(put.size, 10_000);
    let got: Vec<Bytes> = store
        .get_stream(bucket, "stream/s.bin")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.concat(), expected);
    let broken = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"first")),
        Err(gust::Error::new(ErrorKind::Io, "source.read", "disk gone")),
    ])
    .boxed();
    let e = store
        .put_stream(bucket, "stream/broken.bin", broken, &PutOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert!(!store.exists(bucket, "stream/broken.bin").await.unwrap());

    // Ranges: a slice, an end clamped to the size, and the invalid ones.
    assert_eq!(
        store
            .get_range(bucket, "stream/s.bin", 999..1002)
            .await
            .unwrap()[..],
        b"abb"[..]
    );
    assert_eq!(
        store
            .get_range(bucket, "stream/s.bin", 9998..20_000)
            .await
            .unwrap()[..],
        b"jj"[..]
    );
    let e = store
        .get_range(bucket, "stream/s.bin", 10_000..10_005)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "range past the end: {e}");
    assert_eq!(e.context("key"), Some("stream/s.bin"));
    assert_eq!(
        kind(store.get_range(bucket, "stream/s.bin", 5..5).await),
        ErrorKind::InvalidInput
    );

    // The key rule: rejected before any request, naming the key.
    for bad in ["", "/raw/iris1.csv", "raw//iris1.csv", "raw/", "raw/../x"] {
        let e = store.get(bucket, bad).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
        assert_eq!(e.context("key"), Some(bad));
        let e = store
            .put(bucket, bad, Bytes::from_static(b"x"), &PutOptions::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
    }
    let e = store
        .list(bucket, ListOptions::new().prefix("/raw"))
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);

    // Listing: prefix, delimiter, start_after, pagination.
    for k in ["l/a/1", "l/a/2", "l/a/b/3", "l/b", "l/c/4"] {
        store
            .put(bucket, k, Bytes::from(k.to_string()), &PutOptions::new())
            .await
            .unwrap();
    }
    let all = names(store, bucket, ListOptions::new().prefix("l/")).await;
    assert_eq!(all, ["l/a/1", "l/a/2", "l/a/b/3", "l/b", "l/c/4"]);
    let mut rolled = names(
        store,
        bucket,
        ListOptions::new().prefix("l/").delimiter("/"),
    )
    .await;
    rolled.sort();
    assert_eq!(rolled, ["P:l/a/", "P:l/c/", "l/b"]);
    let mut rolled = names(
        store,
        bucket,
        ListOptions::new().prefix("l/a/").delimiter("/"),
    )
    .await;
    rolled.sort();
    assert_eq!(rolled, ["P:l/a/b/", "l/a/1", "l/a/2"]);
    let after = names(
        store,
        bucket,
        ListOptions::new().prefix("l/").start_after("l/a/b/3"),
    )
    .await;
    assert_eq!(after, ["l/b", "l/c/4"]);
    let paged = names(store, bucket, ListOptions::new().prefix("l/").page_size(2)).await;
    assert_eq!(paged, all, "pages of 2 give the same listing");
    let e = store
        .list(&missing, ListOptions::new())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    // Copy: within and across buckets; a missing source is NotFound.
    store
        .copy(bucket, "raw/iris1.csv", bucket, "copy/iris1.csv")
        .await
        .expect("copy");
    store
        .copy(bucket, "raw/iris1.csv", other, "iris1.csv")
        .await
        .expect("copy across");
    assert_eq!(store.get(bucket, "copy/iris1.csv").await.unwrap(), data);
    assert_eq!(store.get(other, "iris1.csv").await.unwrap(), data);
    assert_eq!(
        kind(store.copy(bucket, "raw/nope", bucket, "x").await),
        ErrorKind::NotFound
    );

    // Batch delete, more than one S3 request's worth (1000) of keys, plus a missing one.
    let many: Vec<String> = (0..1005).map(|i| format!("many/{i:05}")).collect();
    let replace = PutOptions::new();
    futures::stream::iter(many.iter())
        .map(|k| store.put(bucket, k, Bytes::from_static(b"."), &replace))
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .expect("put many");
    assert_eq!(
        names(store, bucket, ListOptions::new().prefix("many/"))
            .await
            .len(),
        1005
    );
    let mut doomed = many.clone();
    doomed.push("many/never-existed".into());
    let report = store.delete(bucket, &doomed).await.expect("delete");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.deleted.len(), 1006);
    assert!(
        names(store, bucket, ListOptions::new().prefix("many/"))
            .await
            .is_empty()
    );
    let e = store.delete(bucket, &["/x".to_string()]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn memory_store_conforms() {
    conformance(&MemoryStore::new(), "bucket", "other", Quirks::default()).await;
}

/// The testing feature's decorator, with no fault scripted, keeps the
/// contract of the store it wraps (and with delays on every call, too).
#[cfg(feature = "testing")]
#[tokio::test]
async fn faulty_store_without_faults_conforms() {
    use gust::testing::{Fault, FaultyStore, StoreOp};
    use std::time::Duration;
    conformance(
        &FaultyStore::new(MemoryStore::new()),
        "bucket",
        "other",
        Quirks::default(),
    )
    .await;
    let slow = [
        StoreOp::Put,
        StoreOp::GetStream,
        StoreOp::Head,
        StoreOp::List,
    ]
    .into_iter()
    .fold(FaultyStore::new(MemoryStore::new()), |s, op| {
        s.fail_from(op, 1, Fault::delay(Duration::from_millis(1)))
    });
    conformance(&slow, "bucket", "other", Quirks::default()).await;
    assert!(slow.calls(StoreOp::Put) > 0 && slow.calls(StoreOp::List) > 0);
}

#[tokio::test]
async fn local_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    conformance(&store, "bucket", "other", Quirks::default()).await;
    // Atomic writes: no temporary file survives, even of the failed stream.
    let tmp: Vec<_> = std::fs::read_dir(dir.path().join(".gust-tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "temporary files left behind: {tmp:?}");
}

#[tokio::test]
async fn local_store_key_cannot_be_a_directory_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    store.create_bucket("b").await.unwrap();
    store
        .put("b", "a", Bytes::from_static(b"1"), &PutOptions::new())
        .await
        .unwrap();
    let e = store
        .put("b", "a/b", Bytes::from_static(b"2"), &PutOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    // Deleting `a` frees the name for `a/b`, and deleting `a/b` removes the empty `a/`.
    store.delete("b", &["a".into()]).await.unwrap();
    store
        .put("b", "a/b", Bytes::from_static(b"2"), &PutOptions::new())
        .await
        .unwrap();
    store.delete("b", &["a/b".into()]).await.unwrap();
    assert!(!dir.path().join("b/a").exists());
}

async fn s3_conforms(conn_id: &str, quirks: Quirks) {
    let conn = require_conn!(conn_id);
    let hook = S3Hook::from_connection(&conn).await.expect("hook");
    let bucket = common::unique("gust-conf");
    let other = common::unique("gust-conf-other");
    conformance(&hook, &bucket, &other, quirks).await;
}

#[tokio::test]
async fn s3_moto_conforms() {
    s3_conforms("aws_default", Quirks::default()).await;
}

#[tokio::test]
async fn s3_s3s_fs_conforms() {
    s3_conforms(
        "s3s_fs",
        Quirks {
            put_creates_bucket: true,
        },
    )
    .await;
}
