//! S3Hook without a real server: connection parsing, secrets in `Debug`, the
//! unreachable-endpoint error, and the retry policy observed on a scripted HTTP
//! server (503s retried, 403 not), counting requests instead of timing them.

use std::io::{Read, Write};

use gust::hooks::s3::S3Hook;
use gust::{Connection, ErrorKind};

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
    assert!(e.is_retryable(), "still retryable by the task's own policy");
    assert_eq!(
        count.load(Ordering::SeqCst),
        3,
        "max_attempts (3) requests in all"
    );
}
