//! S3Hook without a real server: connection parsing, secrets in `Debug`, the
//! unreachable-endpoint error, and the retry policy observed on a scripted HTTP
//! server (503s retried, 403 not), counting requests instead of timing them.

use std::io::{Read, Write};

use gust::hooks::s3::S3Hook;
use gust::{Connection, ErrorKind};

mod common;

fn conn(extra: serde_json::Value) -> Connection {
    let mut c = Connection::new("test_aws", "aws")
        .unwrap()
        .with_login("AKID")
        .with_password("s3cr3t-value");
    for (k, v) in extra.as_object().unwrap() {
        c = c.with_extra(k.clone(), v.clone());
    }
    c
}

#[tokio::test]
async fn unreachable_endpoint_is_retryable_unavailable() {
    let c = conn(serde_json::json!({
        "endpoint_url": "http://127.0.0.1:1",
        "region_name": "us-east-1",
        "config_kwargs": {"retries": {"max_attempts": 1}},
    }));
    let s3 = S3Hook::from_connection(&c).await.unwrap();
    let e = s3.read_key("k", Some("bucket")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    assert_eq!(
        (e.context("conn_id"), e.context("bucket"), e.context("key")),
        (Some("test_aws"), Some("bucket"), Some("k"))
    );
    assert!(!format!("{e} {e:?}").contains("s3cr3t-value"));
}

#[tokio::test]
async fn connection_config_errors_and_debug() {
    let ok = S3Hook::from_connection(&conn(serde_json::json!({
        "endpoint_url": "http://global:1",
        "service_config": {"s3": {"endpoint_url": "http://127.0.0.1:9", "bucket_name": "dflt"}},
        "region_name": "ap-northeast-2",
    })))
    .await
    .unwrap();
    assert_eq!(ok.region(), "ap-northeast-2");
    let dbg = format!("{ok:?}");
    assert!(
        dbg.contains("http://127.0.0.1:9"),
        "service_config.s3 overrides endpoint_url: {dbg}"
    );
    assert!(!dbg.contains("s3cr3t-value"));
    // The default bucket applies when none is given and the key is relative.
    assert_eq!(
        ok.get_s3_bucket_key(None, "k").unwrap(),
        ("dflt".into(), "k".into())
    );
    let e = ok.get_s3_bucket_key(Some("b"), "s3://other/k").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);

    let only_key = Connection::new("half", "aws").unwrap().with_login("AKID");
    let e = S3Hook::from_connection(&only_key).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.context("conn_id")),
        (ErrorKind::Config, Some("half"))
    );
    let pg = Connection::new("pg", "postgres").unwrap();
    assert_eq!(
        S3Hook::from_connection(&pg).await.unwrap_err().kind(),
        ErrorKind::Config
    );
    let bad_url = conn(serde_json::json!({"endpoint_url": "not a url"}));
    assert_eq!(
        S3Hook::from_connection(&bad_url).await.unwrap_err().kind(),
        ErrorKind::Config
    );
    // Credentials from extras work like login/password.
    let extras = Connection::new("x", "aws")
        .unwrap()
        .with_extra("aws_access_key_id", "AKID".into())
        .with_extra("aws_secret_access_key", "s3cr3t-value".into())
        .with_extra("region_name", "us-east-1".into());
    assert!(S3Hook::from_connection(&extras).await.is_ok());
}

/// A scripted HTTP server: answers the i-th request with `statuses[i]` and
/// counts requests, to observe the retry policy without timing anything.
fn scripted_server(statuses: Vec<u16>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            let mut buf = [0u8; 8192];
            let mut req = Vec::new();
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let i = seen.fetch_add(1, Ordering::SeqCst);
            let status = statuses.get(i).copied().unwrap_or(200);
            let body = match status {
                200 => "<ListAllMyBucketsResult><Buckets></Buckets></ListAllMyBucketsResult>"
                    .to_string(),
                403 => {
                    "<Error><Code>AccessDenied</Code><Message>denied</Message></Error>".to_string()
                }
                _ => "<Error><Code>ServiceUnavailable</Code><Message>busy</Message></Error>"
                    .to_string(),
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, count)
}

#[tokio::test]
async fn transient_failures_are_retried_client_errors_are_not() {
    use std::sync::atomic::Ordering;
    let (endpoint, count) = scripted_server(vec![503, 503, 200]);
    let s3 = S3Hook::from_connection(&conn(
        serde_json::json!({"endpoint_url": endpoint, "region_name": "us-east-1"}),
    ))
    .await
    .unwrap();
    s3.test_connection().await.expect("third attempt succeeds");
    assert_eq!(count.load(Ordering::SeqCst), 3, "two 503s retried");

    let (endpoint, count) = scripted_server(vec![403, 200]);
    let s3 = S3Hook::from_connection(&conn(
        serde_json::json!({"endpoint_url": endpoint, "region_name": "us-east-1"}),
    ))
    .await
    .unwrap();
    let e = s3.test_connection().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert_eq!(count.load(Ordering::SeqCst), 1, "a 403 is not retried");

    let (endpoint, count) = scripted_server(vec![503, 503, 503, 503]);
    let s3 = S3Hook::from_connection(&conn(
        serde_json::json!({"endpoint_url": endpoint, "region_name": "us-east-1"}),
    ))
    .await
    .unwrap();
    let e = s3.test_connection().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    // The SDK retried and gave up: exhausted, so a task's retries do not
    // multiply its attempts (TaskOptions::retry_exhausted opts back in).
    assert!(e.is_exhausted(), "{e}");
    assert!(!e.is_retryable(), "{e}");
    assert_eq!(e.context("max_attempts"), Some("3"));
    assert_eq!(
        count.load(Ordering::SeqCst),
        3,
        "max_attempts (3) requests in all"
    );
}

/// What the scripted object server answers to ranges after the first one.
#[derive(Clone, Copy, PartialEq)]
enum Later {
    /// `412 Precondition Failed`, as S3 answers `If-Match` once the object changed.
    PreconditionFailed,
    /// The right headers, then half the body and a closed connection.
    CutShort,
    /// As `CutShort` for a range starting at a multiple of `PART`, in full for
    /// the rest: every part breaks off once, and its resumption succeeds.
    CutShortOnce,
    /// Never answers; reports the request on the channel.
    Hang,
}

/// A scripted S3 server holding one object with ETag `"v1"`: answers a `GET`
/// without a range (or of a range starting at 0) with the data, the other ranges
/// as `later` says, one thread per connection. Returns the endpoint, the request heads it received, and a channel
/// told of every request left hanging.
fn object_server(
    object: Vec<u8>,
    later: Later,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    tokio::sync::mpsc::UnboundedReceiver<()>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (hung_tx, hung_rx) = tokio::sync::mpsc::unbounded_channel();
    let (seen, object) = (heads.clone(), std::sync::Arc::new(object));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            let (seen, object, hung_tx) = (seen.clone(), object.clone(), hung_tx.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&req).to_lowercase();
                seen.lock().unwrap().push(head.clone());
                let total = object.len();
                let range = head
                    .lines()
                    .find_map(|l| l.strip_prefix("range: bytes="))
                    .and_then(|r| {
                        let (a, b) = r.trim().split_once('-')?;
                        Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?))
                    });
                let (start, end) = match range {
                    Some((a, b)) => (a, b.min(total - 1)),
                    None => (0, total - 1),
                };
                if start > 0 {
                    match later {
                        Later::PreconditionFailed => {
                            let body = "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>";
                            let _ = write!(
                                s,
                                "HTTP/1.1 412 Precondition Failed\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            return;
                        }
                        Later::Hang => {
                            let _ = hung_tx.send(());
                            // Hold the connection open until the client gives up.
                            let _ = s.read(&mut buf);
                            return;
                        }
                        // A resumed part (`CutShortOnce`) is served in full.
                        Later::CutShort | Later::CutShortOnce
                            if later == Later::CutShortOnce && start % PART != 0 => {}
                        Later::CutShort | Later::CutShortOnce => {
                            let len = end - start + 1;
                            let _ = write!(
                                s,
                                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{end}/{total}\r\nETag: \"v1\"\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                            );
                            let _ = s.write_all(&object[start..start + len / 2]);
                            return;
                        }
                    }
                }
                let status = if range.is_some() {
                    format!("206 Partial Content\r\nContent-Range: bytes {start}-{end}/{total}")
                } else {
                    "200 OK".to_string()
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nETag: \"v1\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    end - start + 1
                );
                let _ = s.write_all(&object[start..=end]);
            });
        }
    });
    (addr, heads, hung_rx)
}

async fn ranged_hook(endpoint: &str) -> S3Hook {
    S3Hook::from_connection(&conn(
        serde_json::json!({"endpoint_url": endpoint, "region_name": "us-east-1"}),
    ))
    .await
    .unwrap()
    .with_download_threshold(PART as u64)
    .with_download_parts(PART as u64, 2)
}

/// The download part size of [`ranged_hook`].
const PART: usize = 1 << 20;

fn object(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Ranged downloads are pinned to the first response's ETag: when a later range
/// fails its `If-Match` (the object was replaced), the download fails as
/// retryable, and no file — neither the target nor the temporary — remains.
#[tokio::test]
async fn replaced_object_fails_the_download_and_leaves_no_file() {
    let (endpoint, heads, _) = object_server(object(3 << 20), Later::PreconditionFailed);
    let s3 = ranged_hook(&endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    let e = s3
        .download_file("big.bin", Some("bucket"), dir.path(), true)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    assert!(e.message().contains("changed during the download"), "{e}");
    assert_eq!(e.context("e_tag"), Some("\"v1\""), "{e}");
    assert_eq!(e.context("key"), Some("big.bin"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file");

    let heads = heads.lock().unwrap();
    // The first GET is of the whole object, read up to the threshold.
    assert!(!heads[0].contains("range:"), "{}", heads[0]);
    assert!(!heads[0].contains("if-match"), "{}", heads[0]);
    let later: Vec<_> = heads.iter().skip(1).collect();
    assert!(!later.is_empty(), "the rest was fetched by range");
    for h in later {
        assert!(h.contains("if-match: \"v1\""), "pinned to the ETag: {h}");
    }
}

/// A part whose body breaks off is asked for again from where it stopped,
/// pinned to the ETag: every part breaking off once, the download still returns
/// the exact bytes, to a file and as a stream.
#[tokio::test]
async fn broken_parts_resume_where_they_stopped() {
    let data = object(3 * PART + 12_345);
    let (endpoint, heads, _) = object_server(data.clone(), Later::CutShortOnce);
    let s3 = ranged_hook(&endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    let path = s3
        .download_file("big.bin", Some("bucket"), dir.path(), false)
        .await
        .unwrap();
    assert!(
        std::fs::read(&path).unwrap() == data,
        "download_file differs"
    );
    assert!(
        gust::hooks::object_store::ObjectStore::get(&s3, "bucket", "big.bin")
            .await
            .unwrap()[..]
            == data[..],
        "get differs"
    );

    let heads = heads.lock().unwrap();
    // Per download: the first GET, 3 parts cut at half, 3 resumptions from there.
    let resumed: Vec<_> = heads
        .iter()
        .filter(|h| {
            h.lines()
                .find_map(|l| l.strip_prefix("range: bytes="))
                .and_then(|r| r.split_once('-')?.0.trim().parse::<usize>().ok())
                .is_some_and(|start| start % PART != 0)
        })
        .collect();
    assert_eq!(resumed.len(), 6, "{heads:#?}");
    for h in resumed {
        assert!(h.contains("if-match: \"v1\""), "pinned to the ETag: {h}");
    }
}

/// A part that keeps breaking off fails the download once its resumptions are
/// spent; the file is removed.
#[tokio::test]
async fn broken_part_fails_the_download_and_leaves_no_file() {
    let (endpoint, _, _) = object_server(object(3 << 20), Later::CutShort);
    let s3 = ranged_hook(&endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    let e = s3
        .download_file("big.bin", Some("bucket"), dir.path(), false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.message().contains("broke off"), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file");
}

/// A download cancelled mid-way (its future dropped, as `execution_timeout`
/// does) removes its temporary file.
#[tokio::test]
async fn cancelled_download_leaves_no_file() {
    let (endpoint, _, mut hung) = object_server(object(3 << 20), Later::Hang);
    let s3 = ranged_hook(&endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    let mut download = Box::pin(s3.download_file("big.bin", Some("bucket"), dir.path(), true));
    tokio::select! {
        r = &mut download => panic!("the download cannot finish: {r:?}"),
        _ = hung.recv() => {} // a later part is in flight
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "the temporary file exists mid-download"
    );
    drop(download);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "the temporary file is removed"
    );
}

/// An object within the download threshold is one plain `GET`.
#[tokio::test]
async fn ranged_download_round_trip_on_a_scripted_server() {
    let data = object((3 << 20) + 12_345);
    let (endpoint, heads, _) = object_server(data.clone(), Later::PreconditionFailed);
    // Everything in the first range: one GET, no If-Match needed.
    let s3 = ranged_hook(&endpoint)
        .await
        .with_download_threshold(4 << 20);
    let dir = tempfile::tempdir().unwrap();
    let path = s3
        .download_file("big.bin", Some("bucket"), dir.path(), true)
        .await
        .unwrap();
    assert!(std::fs::read(&path).unwrap() == data);
    assert_eq!(heads.lock().unwrap().len(), 1, "one GET");
}

/// `localhost:9000` parses as a URL of scheme `localhost`: it must not build a
/// hook whose every request fails retryably, but be a Config error at once.
#[tokio::test]
async fn endpoint_without_a_scheme_is_a_config_error() {
    let uri = Connection::from_uri(
        "no_scheme",
        "aws://AKID:s3cr3t-value@/?endpoint_url=localhost%3A9000",
    )
    .unwrap();
    let nested = conn(serde_json::json!({
        "service_config": {"s3": {"endpoint_url": "localhost:9000"}},
    }));
    for c in [uri, nested] {
        let e = S3Hook::from_connection(&c)
            .await
            .expect_err("an endpoint without http:// must not build");
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(!e.is_retryable());
        assert_eq!(e.operation(), "s3.connect");
        assert!(e.to_string().contains("http://localhost:9000"), "{e}");
        assert!(!format!("{e} {e:?}").contains("s3cr3t-value"));
    }
}

/// Messages carry the service's code and message, or the innermost cause and
/// the endpoint: never the SDK's `Debug` of its wrappers.
#[tokio::test]
async fn sdk_errors_show_codes_and_causes_not_debug_dumps() {
    let (endpoint, _) = scripted_server(vec![403]);
    let s3 = S3Hook::from_connection(&conn(serde_json::json!({
        "endpoint_url": endpoint, "region_name": "us-east-1",
    })))
    .await
    .unwrap();
    let e = s3.test_connection().await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("AccessDenied: denied"), "{text}");
    assert!(!text.contains('{'), "a Debug dump in: {text}");

    let port = common::refused_port();
    let s3 = S3Hook::from_connection(&conn(serde_json::json!({
        "endpoint_url": format!("http://127.0.0.1:{port}"),
        "region_name": "us-east-1",
        "config_kwargs": {"retries": {"max_attempts": 1}},
    })))
    .await
    .unwrap();
    let e = s3.read_key("k", Some("bucket")).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("Connection refused"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains('{'), "a Debug dump in: {text}");
    assert!(!text.contains("ConnectorError"), "{text}");
}
