//! S3Hook: connection handling, Airflow-parity methods, multipart streaming and
//! abort, conditional PUT and the bad-input catalogue, against both real S3
//! servers (moto: `aws_default`, s3s-fs: `s3s_fs`). The `ObjectStore` contract
//! itself is covered by `tests/object_store.rs`.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use gust::hooks::object_store::{ObjectStore, PutOptions};
use gust::hooks::s3::{ConditionalPut, ListKeys, LoadOptions, PresignMethod, S3Hook};
use gust::{Connection, ErrorKind};

const MIB: usize = 1024 * 1024;

/// Runs `$body(conn)` as one test per server.
macro_rules! on_both_servers {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn moto() {
                super::$body(crate::require_conn!("aws_default")).await;
            }
            #[tokio::test]
            async fn s3s_fs() {
                super::$body(crate::require_conn!("s3s_fs")).await;
            }
        }
    };
}

async fn hook_with_bucket(conn: &Connection, prefix: &str) -> (S3Hook, String) {
    let hook = S3Hook::from_connection(conn).await.expect("hook");
    let bucket = common::unique(prefix);
    assert!(hook.create_bucket(&bucket).await.expect("create bucket"));
    (hook, bucket)
}

/// `n` chunks of `chunk` bytes each, the byte value being the chunk's index.
fn chunks(n: usize, chunk: usize) -> Vec<gust::Result<Bytes>> {
    (0..n)
        .map(|i| Ok(Bytes::from(vec![i as u8; chunk])))
        .collect()
}

async fn parity(conn: Connection) {
    let (s3, bucket) = hook_with_bucket(&conn, "gust-parity").await;
    let b = Some(bucket.as_str());
    s3.test_connection()
        .await
        .expect("test_connection without STS");
    assert!(
        !s3.create_bucket(&bucket).await.unwrap(),
        "create_bucket is idempotent"
    );
    assert!(s3.check_for_bucket(b).await.unwrap());
    assert!(
        !s3.check_for_bucket(Some(&format!("{bucket}-nope")))
            .await
            .unwrap()
    );

    // load_string / read_key / check_for_key / head_object / get_key, with s3:// URLs.
    let url = format!("s3://{bucket}/raw/iris1.csv");
    s3.load_string(
        "a;b\n1;2\n",
        &url,
        None,
        &LoadOptions::new().content_type("text/csv"),
    )
    .await
    .expect("load_string");
    assert_eq!(s3.read_key("raw/iris1.csv", b).await.unwrap(), "a;b\n1;2\n");
    assert_eq!(s3.read_key(&url, None).await.unwrap(), "a;b\n1;2\n");
    assert!(s3.check_for_key(&url, None).await.unwrap());
    assert!(!s3.check_for_key("raw/nope.csv", b).await.unwrap());
    let head = s3.head_object(&url, None).await.unwrap().expect("head");
    assert_eq!(head.size, 8);
    assert_eq!(head.content_type.as_deref(), Some("text/csv"));
    assert!(s3.head_object("raw/nope.csv", b).await.unwrap().is_none());
    assert_eq!(s3.get_key("raw/iris1.csv", b).await.unwrap().size, 8);
    let e = s3.get_key("raw/nope.csv", b).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.context("key")),
        (ErrorKind::NotFound, Some("raw/nope.csv"))
    );

    // load_bytes with gzip and server-side encryption.
    let text = "x".repeat(10_000);
    let put = s3
        .load_bytes(
            text.clone(),
            "gz/x.txt.gz",
            b,
            &LoadOptions::new().gzip(true).encrypt(true),
        )
        .await
        .expect("load_bytes gzip");
    assert!(put.size < 1000, "gzip shrinks 10 kB of 'x': {}", put.size);
    let gz = s3.get(&bucket, "gz/x.txt.gz").await.unwrap();
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut plain)
        .unwrap();
    assert_eq!(plain, text);

    // load_stream (Airflow's load_file_obj) with gzip over several chunks.
    let stream = futures::stream::iter(chunks(3, 1000)).boxed();
    s3.load_stream(
        stream,
        "gz/stream.bin.gz",
        b,
        &LoadOptions::new().gzip(true),
    )
    .await
    .expect("load_stream");
    let gz = s3.get(&bucket, "gz/stream.bin.gz").await.unwrap();
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut plain)
        .unwrap();
    let expected: Vec<u8> = (0..3u8).flat_map(|i| vec![i; 1000]).collect();
    assert_eq!(plain, expected);

    // create_bucket with a region constraint (any region but us-east-1 sends one).
    let regional = common::unique("gust-eu");
    assert!(
        s3.clone()
            .with_bucket_region("eu-west-1")
            .create_bucket(&regional)
            .await
            .expect("regional bucket")
    );
    assert!(s3.check_for_bucket(Some(&regional)).await.unwrap());

    // load_file / download_file (streamed; no temporary file left).
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("up.bin");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&src, &content).unwrap();
    s3.load_file(&src, "files/up.bin", b, &LoadOptions::new())
        .await
        .expect("load_file");
    let out = tempfile::tempdir().unwrap();
    let path = s3
        .download_file("files/up.bin", b, out.path(), true)
        .await
        .expect("download");
    assert_eq!(path, out.path().join("up.bin"));
    assert_eq!(std::fs::read(&path).unwrap(), content);
    let anon = s3
        .download_file("files/up.bin", b, out.path(), false)
        .await
        .unwrap();
    assert!(
        anon.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("airflow_tmp_")
    );
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        2,
        "only the two downloads"
    );
    let e = s3
        .download_file("files/nope.bin", b, out.path(), true)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        2,
        "a failed download leaves nothing"
    );

    // list_keys / list_prefixes / check_for_prefix.
    for k in [
        "l/2025-01-01/a.csv",
        "l/2025-01-02/b.csv",
        "l/2025-01-02/c.json",
        "l/top.csv",
    ] {
        s3.load_string(k, k, b, &LoadOptions::new()).await.unwrap();
    }
    let all = s3
        .list_keys(b, &ListKeys::new().prefix("l/"))
        .await
        .unwrap();
    assert_eq!(
        all,
        [
            "l/2025-01-01/a.csv",
            "l/2025-01-02/b.csv",
            "l/2025-01-02/c.json",
            "l/top.csv"
        ]
    );
    let top = s3
        .list_keys(b, &ListKeys::new().prefix("l/").delimiter("/"))
        .await
        .unwrap();
    assert_eq!(top, ["l/top.csv"]);
    let csv = s3
        .list_keys(
            b,
            &ListKeys::new().prefix("l/2025-*.csv").apply_wildcard(true),
        )
        .await
        .unwrap();
    assert_eq!(csv, ["l/2025-01-01/a.csv", "l/2025-01-02/b.csv"]);
    let after = s3
        .list_keys(
            b,
            &ListKeys::new()
                .prefix("l/")
                .start_after_key("l/2025-01-02/b.csv")
                .max_items(1)
                .page_size(1),
        )
        .await
        .unwrap();
    assert_eq!(after, ["l/2025-01-02/c.json"]);
    let prefixes = s3
        .list_prefixes(b, &ListKeys::new().prefix("l/").delimiter("/"))
        .await
        .unwrap();
    assert_eq!(prefixes, ["l/2025-01-01/", "l/2025-01-02/"]);
    assert!(s3.check_for_prefix("l/2025-01-02", "/", b).await.unwrap());
    assert!(!s3.check_for_prefix("l/2025-01-03", "/", b).await.unwrap());

    // copy_object with URLs; delete_objects.
    s3.copy_object(&url, &format!("s3://{bucket}/copy/iris1.csv"), None, None)
        .await
        .expect("copy");
    assert_eq!(
        s3.read_key("copy/iris1.csv", b).await.unwrap(),
        "a;b\n1;2\n"
    );
    let report = s3
        .delete_objects(b, &["copy/iris1.csv".into(), "l/top.csv".into()])
        .await
        .expect("delete_objects");
    assert_eq!(report.deleted.len(), 2);
    assert!(!s3.check_for_key("l/top.csv", b).await.unwrap());

    // generate_presigned_url: a plain HTTP GET (no credentials) reads the object.
    let signed = s3
        .generate_presigned_url(
            PresignMethod::GetObject,
            "raw/iris1.csv",
            b,
            Duration::from_secs(300),
        )
        .await
        .expect("presign");
    let (status, body) = tokio::task::spawn_blocking(move || http_get(&signed))
        .await
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(body.ends_with(b"a;b\n1;2\n"));

    // A presigned PUT: a plain HTTP PUT (no credentials) writes the object.
    let signed = s3
        .generate_presigned_url(
            PresignMethod::PutObject,
            "presigned/up.txt",
            b,
            Duration::from_secs(300),
        )
        .await
        .expect("presign put");
    let (status, body) =
        tokio::task::spawn_blocking(move || http_request("PUT", &signed, b"uploaded by URL\n"))
            .await
            .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        s3.read_key("presigned/up.txt", b).await.unwrap(),
        "uploaded by URL\n"
    );
}
on_both_servers!(airflow_parity, parity);

/// A minimal HTTP/1.1 GET, so the test needs no HTTP client crate.
fn http_get(url: &str) -> (u16, Vec<u8>) {
    http_request("GET", url, &[])
}

/// A minimal HTTP/1.1 request with `body` (sent with its `Content-Length` when
/// not empty), answered by `(status, body)`.
fn http_request(method: &str, url: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let u = url::Url::parse(url).unwrap();
    let host = format!(
        "{}:{}",
        u.host_str().unwrap(),
        u.port_or_known_default().unwrap()
    );
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    let mut s = std::net::TcpStream::connect(&host).unwrap();
    let length = if body.is_empty() {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{length}Connection: close\r\n\r\n"
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, resp[split + 4..].to_vec())
}

async fn multipart_round_trip(conn: Connection) {
    let (s3, bucket) = hook_with_bucket(&conn, "gust-mpu").await;
    let s3 = s3.with_part_size(5 * MIB).with_max_in_flight(2);
    // 12 MiB in 1 MiB chunks: parts of 5 + 5 + 2 MiB.
    let stream = futures::stream::iter(chunks(12, MIB)).boxed();
    let put = s3
        .put_stream(&bucket, "big/12m.bin", stream, &PutOptions::new())
        .await
        .expect("put_stream");
    assert_eq!(put.size, 12 * MIB as u64);
    let got = s3.get(&bucket, "big/12m.bin").await.unwrap();
    let expected: Vec<u8> = (0..12).flat_map(|i| vec![i as u8; MIB]).collect();
    assert!(got[..] == expected[..], "multipart content differs");
    // replace=false onto an existing key, through CompleteMultipartUpload.
    let stream = futures::stream::iter(chunks(6, MIB)).boxed();
    let e = s3
        .put_stream(
            &bucket,
            "big/12m.bin",
            stream,
            &PutOptions::new().replace(false),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert_eq!(
        s3.head(&bucket, "big/12m.bin").await.unwrap().size,
        12 * MIB as u64
    );

    // Multipart copy (UploadPartCopy) with a small threshold: 12 MiB in 5 MiB parts.
    let copier = s3
        .clone()
        .with_copy_multipart(6 * MIB as u64, 5 * MIB as u64);
    copier
        .copy_object("big/12m.bin", "big/copy.bin", Some(&bucket), Some(&bucket))
        .await
        .expect("multipart copy");
    assert!(s3.get(&bucket, "big/copy.bin").await.unwrap()[..] == expected[..]);
}
on_both_servers!(multipart, multipart_round_trip);

async fn broken_stream_aborts(conn: Connection) {
    let (s3, bucket) = hook_with_bucket(&conn, "gust-abort").await;
    let s3 = s3.with_part_size(5 * MIB);
    // 11 MiB (two parts uploaded) and then the source fails.
    let mut items = chunks(11, MIB);
    items.push(Err(gust::Error::new(
        ErrorKind::Io,
        "source.read",
        "connection to the source lost",
    )));
    let e = s3
        .put_stream(
            &bucket,
            "big/broken.bin",
            futures::stream::iter(items).boxed(),
            &PutOptions::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    // The failed call is the upload; the source's failure is its message.
    assert_eq!(e.operation(), "s3.put_stream", "{e}");
    assert!(e.message().contains("connection to the source lost"), "{e}");
    assert_eq!(e.context("key"), Some("big/broken.bin"));
    let upload_id = e
        .context("upload_id")
        .expect("the error names the aborted upload")
        .to_string();
    assert!(
        !s3.exists(&bucket, "big/broken.bin").await.unwrap(),
        "no object"
    );
    let client = s3.client();
    match client.list_multipart_uploads().bucket(&bucket).send().await {
        Ok(out) => assert!(
            out.uploads().is_empty(),
            "pending uploads: {:?}",
            out.uploads()
        ),
        // s3s-fs lacks ListMultipartUploads: the aborted upload must have no parts
        // and accept no new part.
        Err(err)
            if err
                .raw_response()
                .is_some_and(|r| r.status().as_u16() == 501) =>
        {
            if let Ok(parts) = client
                .list_parts()
                .bucket(&bucket)
                .key("big/broken.bin")
                .upload_id(&upload_id)
                .send()
                .await
            {
                assert!(
                    parts.parts().is_empty(),
                    "parts remain: {:?}",
                    parts.parts()
                );
            }
            let late = client
                .upload_part()
                .bucket(&bucket)
                .key("big/broken.bin")
                .upload_id(&upload_id)
                .part_number(9)
                .body(Bytes::from_static(b"late").into())
                .send()
                .await;
            assert!(late.is_err(), "the upload {upload_id} still accepts parts");
        }
        Err(err) => panic!("ListMultipartUploads: {err:?}"),
    }
}
on_both_servers!(multipart_abort, broken_stream_aborts);

async fn conditional_put(conn: Connection) {
    let (s3, bucket) = hook_with_bucket(&conn, "gust-cond").await;
    for mode in [ConditionalPut::IfNoneMatch, ConditionalPut::HeadThenPut] {
        let s3 = s3.clone().with_conditional_put(mode);
        let key = format!("cond/{mode:?}.txt");
        s3.load_string("first", &key, Some(&bucket), &LoadOptions::new())
            .await
            .expect("new key");
        let e = s3
            .load_string("second", &key, Some(&bucket), &LoadOptions::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{mode:?}: {e}");
        assert_eq!(e.context("key"), Some(key.as_str()));
        assert_eq!(e.context("conn_id"), Some(conn.conn_id()));
        assert_eq!(s3.read_key(&key, Some(&bucket)).await.unwrap(), "first");
        s3.load_string(
            "third",
            &key,
            Some(&bucket),
            &LoadOptions::new().replace(true),
        )
        .await
        .unwrap();
        assert_eq!(s3.read_key(&key, Some(&bucket)).await.unwrap(), "third");
    }
}
on_both_servers!(conditional_put_replace_false, conditional_put);

async fn bad_input(conn: Connection) {
    let (s3, bucket) = hook_with_bucket(&conn, "gust-bad").await;
    let b = Some(bucket.as_str());
    let check = |e: gust::Error, kind: ErrorKind| {
        let text = e.to_string();
        assert_eq!(e.kind(), kind, "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
        assert!(!text.contains("gust-secret-key"), "no secret: {text}");
        assert_eq!(e.context("conn_id"), Some(conn.conn_id()), "{text}");
        e
    };
    let missing = format!("{bucket}-missing");
    let e = check(
        s3.read_key("k", Some(&missing)).await.unwrap_err(),
        ErrorKind::NotFound,
    );
    assert_eq!(e.context("bucket"), Some(missing.as_str()));
    let e = check(
        s3.read_key("nope/k", b).await.unwrap_err(),
        ErrorKind::NotFound,
    );
    assert_eq!(e.context("key"), Some("nope/k"));
    check(
        s3.read_key("s3:/bucket-only", None).await.unwrap_err(),
        ErrorKind::InvalidInput,
    );
    check(
        s3.read_key("k", None).await.unwrap_err(),
        ErrorKind::InvalidInput,
    ); // no bucket
    check(
        s3.load_string("x", "", b, &LoadOptions::new())
            .await
            .unwrap_err(),
        ErrorKind::InvalidInput,
    );
    let e = check(
        s3.load_string("x", "/iris1.csv", b, &LoadOptions::new())
            .await
            .unwrap_err(),
        ErrorKind::InvalidInput,
    );
    assert!(e.message().contains("starts with '/'"), "{e}");
    s3.load_string("0123456789", "r.txt", b, &LoadOptions::new())
        .await
        .unwrap();
    check(
        s3.get_range(&bucket, "r.txt", 10..20).await.unwrap_err(),
        ErrorKind::InvalidInput,
    );
    assert_eq!(
        &s3.get_range(&bucket, "r.txt", 8..20).await.unwrap()[..],
        b"89"
    );
}
on_both_servers!(bad_input_catalogue, bad_input);

/// Encryption and the bucket region are settings of the hook, so code written
/// against `ObjectStore` (operators, transfers) gets them on every write path:
/// `PutObject`, a multipart upload, a multipart and a single-request copy.
#[tokio::test]
async fn hook_settings_reach_every_write() {
    use aws_sdk_s3::types::ServerSideEncryption;
    use common::s3::{location_of, sse_of};
    use gust::hooks::s3::MIN_PART_SIZE;
    let conn = require_conn!("aws_default");
    let (plain, bucket) = hook_with_bucket(&conn, "gust-sse").await;
    // Small parts and every copy multipart, so a few MiB take those paths.
    let hook = plain
        .clone()
        .with_server_side_encryption(true)
        .with_part_size(MIN_PART_SIZE)
        .with_copy_multipart(0, MIN_PART_SIZE as u64);
    let store: Arc<dyn ObjectStore> = Arc::new(hook.clone());
    store
        .put(&bucket, "put", Bytes::from_static(b"x"), &PutOptions::new())
        .await
        .unwrap();
    // 12 MiB in 5 MiB parts: CreateMultipartUpload, three parts.
    let stream = futures::stream::iter(chunks(12, MIB)).boxed();
    let put = store
        .put_stream(&bucket, "stream", stream, &PutOptions::new())
        .await
        .unwrap();
    assert_eq!(put.size, 12 * MIB as u64);
    plain
        .put(
            &bucket,
            "plain",
            Bytes::from(vec![7u8; MIN_PART_SIZE + 1]),
            &PutOptions::new(),
        )
        .await
        .unwrap();
    // Two UploadPartCopy parts.
    store
        .copy(&bucket, "plain", &bucket, "copied")
        .await
        .unwrap();
    // And a single CopyObject, with the default copy threshold.
    plain
        .clone()
        .with_server_side_encryption(true)
        .copy(&bucket, "plain", &bucket, "copied-single")
        .await
        .unwrap();
    for (key, expected) in [
        ("put", Some(ServerSideEncryption::Aes256)),
        ("stream", Some(ServerSideEncryption::Aes256)),
        ("copied", Some(ServerSideEncryption::Aes256)),
        ("copied-single", Some(ServerSideEncryption::Aes256)),
        ("plain", None),
    ] {
        assert_eq!(sse_of(&hook, &bucket, key).await, expected, "{key}");
    }
    // The multipart paths ran: their objects' ETags count the parts.
    for (key, parts) in [("stream", "-3"), ("copied", "-2")] {
        let head = hook.head(&bucket, key).await.unwrap();
        let e_tag = head.e_tag.unwrap_or_default();
        assert!(e_tag.trim_matches('"').ends_with(parts), "{key}: {e_tag}");
    }
    let regional = common::unique("gust-region");
    let store: Arc<dyn ObjectStore> = Arc::new(plain.with_bucket_region("eu-west-1"));
    assert!(store.create_bucket(&regional).await.unwrap());
    assert_eq!(
        location_of(&hook, &regional).await.as_deref(),
        Some("eu-west-1")
    );
}

/// s3s-fs checks signatures (moto does not): a wrong secret is a typed Auth error
/// that never quotes the secret.
#[tokio::test]
async fn wrong_secret_is_auth_error() {
    let conn = require_conn!("s3s_fs");
    let bad = conn.clone().with_password("definitely-wrong-secret");
    let s3 = S3Hook::from_connection(&bad).await.unwrap();
    let e = s3.test_connection().await.unwrap_err();
    let text = format!("{e} {e:?}");
    assert_eq!(e.kind(), ErrorKind::Auth, "{text}");
    assert!(!e.is_retryable());
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    assert!(!text.contains("definitely-wrong-secret"), "{text}");
    assert_eq!(e.context("conn_id"), Some("s3s_fs"));
}

/// Bytes that depend on their offset, so a part written at the wrong place shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i % 251) as u8) ^ ((i / 251) as u8).wrapping_mul(7) ^ seed)
        .collect()
}

/// Ranged downloads (small threshold and parts, so small objects take the path):
/// `get`/`get_stream` and `download_file` return the exact bytes at the edges of
/// the threshold, for a multipart object in parts that straddle its upload
/// parts, and for an empty object; a stream dropped halfway stops.
async fn ranged_download(conn: Connection) {
    let (s3, bucket) = hook_with_bucket(&conn, "gust-ranged").await;
    let ranged = s3
        .clone()
        .with_download_threshold(MIB as u64)
        .with_download_parts(300 * 1024, 3);
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("r/empty", 0),
        ("r/one", 1),
        ("r/at-threshold", MIB),
        ("r/above", MIB + 1),
        ("r/odd", 3 * MIB + 12_345),
    ];
    for (key, len) in cases {
        let data = pattern(len, len as u8);
        s3.put(&bucket, key, Bytes::from(data.clone()), &PutOptions::new())
            .await
            .unwrap();
        let got = ranged.get(&bucket, key).await.expect(key);
        assert!(got[..] == data[..], "{key}: get_stream differs");
        let path = ranged
            .download_file(key, Some(&bucket), dir.path(), true)
            .await
            .expect(key);
        assert!(
            std::fs::read(&path).unwrap() == data,
            "{key}: download_file differs"
        );
        std::fs::remove_file(path).unwrap();
    }

    // A multipart object (ETag "…-3"), downloaded in parts that straddle its
    // upload parts.
    let data = pattern(11 * MIB + 5, 9);
    let stream = futures::stream::iter(
        data.chunks(MIB)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    )
    .boxed();
    s3.clone()
        .with_part_size(5 * MIB)
        .put_stream(&bucket, "r/multipart", stream, &PutOptions::new())
        .await
        .unwrap();
    let straddling = s3
        .clone()
        .with_download_threshold(MIB as u64 + 3)
        .with_download_parts(2 * MIB as u64 + 17, 4);
    assert!(straddling.get(&bucket, "r/multipart").await.unwrap()[..] == data[..]);
    let path = straddling
        .download_file("r/multipart", Some(&bucket), dir.path(), true)
        .await
        .unwrap();
    assert!(std::fs::read(&path).unwrap() == data);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "the downloaded file and no temporary file"
    );

    // Streams whatever the buffer and the parts in flight, down to a 1-byte
    // buffer and one connection (parts after the head then wait for every
    // chunk), with a consumer that pauses: no deadlock, the exact bytes.
    let data = pattern(3 * MIB + 12_345, (3 * MIB + 12_345) as u8);
    for (parts, buffer) in [(1, 1), (3, 1), (3, 200 * 1024), (6, 64 << 20)] {
        let tuned = ranged
            .clone()
            .with_download_parts(300 * 1024, parts)
            .with_download_stream_buffer(buffer);
        let mut stream = tuned.get_stream(&bucket, "r/odd").await.unwrap();
        let mut got = Vec::new();
        let read = async {
            let mut chunks = 0;
            while let Some(chunk) = stream.next().await {
                got.extend_from_slice(&chunk.unwrap());
                chunks += 1;
                if chunks % 5 == 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), read)
            .await
            .unwrap_or_else(|_| {
                panic!("{parts} parts, a {buffer}-byte buffer: the stream stalled")
            });
        assert!(
            got == data,
            "{parts} parts, a {buffer}-byte buffer: the stream differs"
        );
    }

    // A stream dropped after its first chunk (its part tasks aborted) leaves
    // the hook whole: the next download of the object is exact.
    let mut stream = ranged.get_stream(&bucket, "r/odd").await.unwrap();
    assert!(stream.next().await.unwrap().is_ok());
    drop(stream);
    assert!(ranged.get(&bucket, "r/odd").await.unwrap()[..] == data[..]);
}
on_both_servers!(ranged_downloads, ranged_download);

/// A consumer that stops reading for longer than the SDK's stalled-stream grace
/// period (5 s) while the parts after the one it reads are held back by a full
/// buffer: the held-back parts are not being polled, which the SDK does not
/// count as a stall, so the stream still delivers the exact bytes (checked with
/// part resumption off too: no part broke off).
async fn slow_consumer(conn: Connection) {
    let (s3, bucket) = hook_with_bucket(&conn, "gust-slow").await;
    let data = pattern(4 * MIB + 777, 5);
    s3.put(
        &bucket,
        "s/slow.bin",
        Bytes::from(data.clone()),
        &PutOptions::new(),
    )
    .await
    .unwrap();
    let tuned = s3
        .with_download_threshold(MIB as u64)
        .with_download_parts(MIB as u64, 3)
        .with_download_stream_buffer(MIB as u64);
    let mut stream = tuned.get_stream(&bucket, "s/slow.bin").await.unwrap();
    let mut got = stream.next().await.unwrap().unwrap().to_vec();
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.expect("no stall error after the pause"));
    }
    assert!(got == data, "the stream differs");
}
on_both_servers!(slow_consumer_stream, slow_consumer);

/// An object replaced during a ranged download is an error, never a mix of
/// versions: later ranges carry `If-Match` (moto answers 412) and their ETag is
/// compared too (s3s-fs ignores `If-Match` on `GetObject` and answers with the
/// new version).
async fn replaced_mid_download(conn: Connection) {
    let (s3, bucket) = hook_with_bucket(&conn, "gust-etag").await;
    // One part at a time, so the second range is asked for after the first is read.
    let s3 = s3
        .with_download_threshold(MIB as u64)
        .with_download_parts(MIB as u64, 1);
    let key = "v/object.bin";
    s3.put(
        &bucket,
        key,
        Bytes::from(vec![1u8; 3 * MIB]),
        &PutOptions::new(),
    )
    .await
    .unwrap();
    let mut stream = s3.get_stream(&bucket, key).await.unwrap();
    let mut got = 0;
    while got < MIB {
        let chunk = stream.next().await.unwrap().expect("the first range");
        assert!(chunk.iter().all(|b| *b == 1));
        got += chunk.len();
    }
    s3.put(
        &bucket,
        key,
        Bytes::from(vec![2u8; 3 * MIB]),
        &PutOptions::new(),
    )
    .await
    .unwrap();
    let e = loop {
        match stream.next().await {
            Some(Ok(chunk)) => assert!(chunk.iter().all(|b| *b == 1), "a mixed stream"),
            Some(Err(e)) => break e,
            None => panic!("the stream ended without noticing the replacement"),
        }
    };
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.message().contains("changed during the download"), "{e}");
    assert_eq!(e.context("key"), Some(key));
    assert!(stream.next().await.is_none(), "nothing after the error");
    // A new download gets the new version whole.
    assert!(s3.get(&bucket, key).await.unwrap().iter().all(|b| *b == 2));
}
on_both_servers!(replaced_object_mid_download, replaced_mid_download);

/// A task whose `execution_timeout` passes mid-upload leaves neither an object
/// nor a pending multipart upload. The runner cancels by dropping the execute
/// future, so no error path runs: the upload's `AbortGuard` spawns the abort
/// from its `Drop` onto the runtime, and this test waits for it by listing.
/// Real time: the I/O against the server cannot run on tokio's paused clock, so
/// the timeout is 2 s, long after the source stalls (about 0.1 s in).
async fn timeout_mid_upload(conn: Connection) {
    let (s3, bucket) = hook_with_bucket(&conn, "gust-timeout").await;
    let key = "big/timed-out.bin";
    let stalled = Arc::new(AtomicBool::new(false));
    let mut dag = gust::Dag::builder("s3_timeout");
    let (hook, b, flag) = (
        s3.clone().with_part_size(5 * MIB),
        bucket.clone(),
        stalled.clone(),
    );
    dag.add(
        gust::Task::from_fn("upload", move |_ctx| {
            let (hook, b, flag) = (hook.clone(), b.clone(), flag.clone());
            async move {
                // Two parts, then a source that never ends: by the time it stalls,
                // the multipart upload exists and its parts are in flight.
                let stall = futures::stream::once(async move {
                    flag.store(true, Ordering::SeqCst);
                    futures::future::pending::<gust::Result<Bytes>>().await
                });
                let source = futures::stream::iter(chunks(11, MIB)).chain(stall).boxed();
                hook.put_stream(&b, key, source, &PutOptions::new()).await?;
                Ok(serde_json::Value::Null)
            }
        })
        .with_options(gust::TaskOptions::default().execution_timeout(Duration::from_secs(2))),
    );
    let date = chrono::TimeZone::with_ymd_and_hms(&chrono_tz::UTC, 2025, 1, 8, 0, 0, 0).unwrap();
    let report = dag.build().unwrap().test(date).await;
    let t = report.task("upload").unwrap();
    assert_eq!(t.state, gust::TaskState::Failed, "{t:?}");
    assert!(
        t.error
            .as_deref()
            .unwrap_or_default()
            .contains("execution_timeout"),
        "{t:?}"
    );
    assert!(
        stalled.load(Ordering::SeqCst),
        "the source stalled before the timeout (else the machine is too slow for this test)"
    );

    assert!(!s3.exists(&bucket, key).await.unwrap(), "no object");
    // The abort runs on a spawned task: list until it is gone (each listing is
    // a round trip during which the abort proceeds).
    let client = s3.client();
    let mut pending = Vec::new();
    for _ in 0..200 {
        match client.list_multipart_uploads().bucket(&bucket).send().await {
            Ok(out) => {
                pending = out.uploads().to_vec();
                if pending.is_empty() {
                    break;
                }
            }
            // s3s-fs lacks ListMultipartUploads: only "no object" is checked there.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 501) => break,
            Err(e) => panic!("ListMultipartUploads: {e:?}"),
        }
        tokio::task::yield_now().await;
    }
    assert!(pending.is_empty(), "pending uploads: {pending:?}");
}
on_both_servers!(task_timeout_mid_upload, timeout_mid_upload);
