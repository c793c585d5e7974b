//! The security review of issue 16 as tests (the table of what is guaranteed and
//! how is in docs/RELIABILITY.md):
//! - `tls`: every client that speaks TLS refuses a server whose certificate is
//!   self-signed, by default, with a typed error, before sending a byte of its
//!   request; the databases, which gust connects to without TLS, refuse every
//!   setting that asks for TLS instead of silently going plaintext.
//! - `paths`: object keys and artifact paths cannot leave their root, through
//!   `..`, absolute paths or symbolic links.
//! - `sql`: identifiers from templates and inputs are quoted (a hostile name
//!   names a table, literally) or rejected; parameters are bound.
#![allow(dead_code, unused_imports)]

use gust::prelude::*;

#[path = "common/tls.rs"]
mod tls;

mod common;

/// A typed refusal: not retried (a certificate does not fix itself), naming the
/// certificate, without the secret.
fn assert_cert_refused(e: &Error, secret: &str) {
    let mut text = format!("{e} | {e:?}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        text.push_str(&format!(" | {s}"));
        src = s.source();
    }
    eprintln!("{text}");
    assert_eq!(e.kind(), ErrorKind::Auth, "{text}");
    assert!(!e.is_retryable(), "{text}");
    assert!(
        text.to_lowercase().contains("certificate"),
        "the cause is not named: {text}"
    );
    assert!(!text.contains(secret), "{text}");
}

#[cfg(feature = "s3")]
mod tls_s3 {
    use super::*;
    use gust::hooks::s3::{ListKeys, S3Hook};
    use tls::{Preamble, self_signed_server};

    #[tokio::test]
    async fn s3_refuses_a_self_signed_endpoint() {
        let (port, seen) = self_signed_server(Preamble::None).await;
        tls::assert_trusting_client_connects(port, Preamble::None, &seen).await;
        let app = seen.app_bytes();
        let conn = Connection::from_uri(
            "aws_tls",
            &format!(
                "aws://AKIDTLS:tls-secret-key-1@/?region_name=us-east-1&endpoint_url=https%3A%2F%2Flocalhost%3A{port}"
            ),
        )
        .unwrap();
        let hook = S3Hook::from_connection(&conn).await.unwrap();
        let e = hook
            .list_keys(Some("bucket"), &ListKeys::default())
            .await
            .unwrap_err();
        assert_cert_refused(&e, "tls-secret-key-1");
        // gust has no switch to turn verification off: Airflow's `verify`
        // extra (false, or a CA bundle) does not make it connect.
        for verify in ["false", "%2Ftmp%2Fno-such-ca.pem"] {
            let conn = Connection::from_uri(
                "aws_tls",
                &format!(
                    "aws://AKIDTLS:tls-secret-key-1@/?region_name=us-east-1&verify={verify}&endpoint_url=https%3A%2F%2Flocalhost%3A{port}"
                ),
            )
            .unwrap();
            let e = match S3Hook::from_connection(&conn).await {
                Ok(hook) => hook
                    .list_keys(Some("bucket"), &ListKeys::default())
                    .await
                    .unwrap_err(),
                Err(e) => e,
            };
            assert_cert_refused(&e, "tls-secret-key-1");
        }
        assert_eq!(
            seen.app_bytes(),
            app,
            "a request went to the untrusted server"
        );
    }
}

#[cfg(feature = "mlflow")]
mod tls_mlflow {
    use super::*;
    use gust::hooks::mlflow::MlflowHook;
    use tls::{Preamble, self_signed_server};

    #[tokio::test]
    async fn mlflow_refuses_a_self_signed_server() {
        let (port, seen) = self_signed_server(Preamble::None).await;
        tls::assert_trusting_client_connects(port, Preamble::None, &seen).await;
        let app = seen.app_bytes();
        let hook =
            MlflowHook::from_uri(&format!("https://user:mlflow-tls-pw@localhost:{port}")).unwrap();
        let e = hook.get_experiment_by_name("Default").await.unwrap_err();
        assert_cert_refused(&e, "mlflow-tls-pw");
        assert_eq!(
            seen.app_bytes(),
            app,
            "a request went to the untrusted server"
        );
    }
}

#[cfg(feature = "sagemaker")]
mod tls_sagemaker {
    use super::*;
    use gust::hooks::sagemaker::{Job, SageMakerHook};
    use tls::{Preamble, self_signed_server};

    #[tokio::test]
    async fn sagemaker_refuses_a_self_signed_endpoint() {
        let (port, seen) = self_signed_server(Preamble::None).await;
        tls::assert_trusting_client_connects(port, Preamble::None, &seen).await;
        let app = seen.app_bytes();
        let conn = Connection::from_uri(
            "aws_tls",
            &format!(
                "aws://AKIDTLS:sm-secret-key-1@/?region_name=us-east-1&endpoint_url=https%3A%2F%2Flocalhost%3A{port}"
            ),
        )
        .unwrap();
        let hook = SageMakerHook::from_connection(&conn).await.unwrap();
        let e = hook.describe_job(Job::Training, "job").await.unwrap_err();
        assert_cert_refused(&e, "sm-secret-key-1");
        assert_eq!(
            seen.app_bytes(),
            app,
            "a request went to the untrusted server"
        );
    }
}

#[cfg(feature = "redis")]
mod tls_redis {
    use super::*;
    use gust::hooks::redis::RedisHook;
    use tls::{Preamble, self_signed_server};

    #[tokio::test]
    async fn redis_refuses_a_self_signed_server_unless_given_its_certificate() {
        let (port, seen) = self_signed_server(Preamble::None).await;
        tls::assert_trusting_client_connects(port, Preamble::None, &seen).await;
        let app = seen.app_bytes();
        let conn = Connection::from_uri(
            "redis_tls_self",
            &format!(
                "redis://:redis-tls-pw-1@localhost:{port}/0?ssl=true&socket_connect_timeout=5"
            ),
        )
        .unwrap();
        let e = RedisHook::from_connection(&conn).await.unwrap_err();
        assert_cert_refused(&e, "redis-tls-pw-1");
        // Neither skipping the hostname check nor redis-py's `ssl_cert_reqs`
        // turns off the verification of the chain.
        for extra in ["ssl_check_hostname=false", "ssl_cert_reqs=none"] {
            let conn = Connection::from_uri(
                "redis_tls_self",
                &format!(
                    "redis://:redis-tls-pw-1@localhost:{port}/0?ssl=true&socket_connect_timeout=5&{extra}"
                ),
            )
            .unwrap();
            let e = RedisHook::from_connection(&conn).await.unwrap_err();
            assert_cert_refused(&e, "redis-tls-pw-1");
        }
        assert_eq!(seen.app_bytes(), app, "AUTH went to the untrusted server");
        // Trusting the certificate (extra ssl_ca_certs) is the way to connect:
        // the handshake completes (the fake then fails as a Redis server).
        let handshakes = seen.handshakes();
        let ca = tls::cert_path().display().to_string();
        let conn = Connection::from_uri(
            "redis_tls_self",
            &format!(
                "redis://:redis-tls-pw-1@localhost:{port}/0?ssl=true&socket_connect_timeout=5&ssl_ca_certs={}",
                ca.replace('/', "%2F")
            ),
        )
        .unwrap();
        let e = RedisHook::from_connection(&conn).await.unwrap_err();
        assert!(!format!("{e:?}").contains("redis-tls-pw-1"), "{e:?}");
        assert!(
            seen.handshakes() > handshakes,
            "trusted, yet no handshake: {e}"
        );
    }
}

#[cfg(feature = "postgres")]
mod tls_postgres {
    use super::*;
    use gust::hooks::postgres::PostgresHook;
    use gust::hooks::sql::SqlHook;
    use tls::{Preamble, self_signed_server};

    /// gust's PostgreSQL driver is built without TLS: every `sslmode` that asks
    /// for TLS is a configuration error at once — never a plaintext fallback and
    /// never an unverified session — and the server sees no byte.
    #[tokio::test]
    async fn postgres_sslmodes_that_need_tls_are_refused_before_connecting() {
        let (port, seen) = self_signed_server(Preamble::Postgres).await;
        tls::assert_trusting_client_connects(port, Preamble::Postgres, &seen).await;
        let (before, app) = (seen.connections(), seen.app_bytes());
        for mode in ["require", "verify-ca", "verify-full"] {
            let conn = Connection::from_uri(
                "pg_tls",
                &format!("postgres://gust:pg-tls-pw-1@localhost:{port}/db?sslmode={mode}"),
            )
            .unwrap();
            let e = match PostgresHook::from_connection(&conn).await {
                Ok(h) => h.test_connection().await.unwrap_err(),
                Err(e) => e,
            };
            eprintln!("{mode}: {e}");
            assert_eq!(e.kind(), ErrorKind::Config, "{mode}: {e}");
            assert!(!e.is_retryable(), "{e}");
            assert!(e.to_string().contains("sslmode"), "{e}");
            assert!(!format!("{e:?}").contains("pg-tls-pw-1"));
        }
        assert_eq!(seen.connections(), before, "a connection was attempted");
        assert_eq!(seen.app_bytes(), app);
    }

    /// Without `sslmode` (and with `prefer`/`allow`/`disable`) gust never
    /// starts TLS, so it cannot accept an unverified certificate; the fake
    /// server, which only speaks TLS, gets no session and no password.
    #[tokio::test]
    async fn postgres_default_never_accepts_an_unverified_certificate() {
        let (port, seen) = self_signed_server(Preamble::Postgres).await;
        for query in [
            "connect_timeout=5",
            "sslmode=prefer&connect_timeout=5",
            "sslmode=disable&connect_timeout=5",
        ] {
            let conn = Connection::from_uri(
                "pg_tls",
                &format!("postgres://gust:pg-tls-pw-1@localhost:{port}/db?{query}"),
            )
            .unwrap();
            let e = match PostgresHook::from_connection(&conn).await {
                Ok(h) => h.test_connection().await.unwrap_err(),
                Err(e) => e,
            };
            eprintln!("{query}: {e}");
            assert!(!format!("{e:?}").contains("pg-tls-pw-1"));
        }
        assert_eq!(
            seen.handshakes(),
            0,
            "a TLS session with an untrusted certificate"
        );
        assert_eq!(seen.app_bytes(), 0);
    }
}

#[cfg(feature = "mysql")]
mod tls_mysql {
    use super::*;
    use gust::hooks::mysql::MySqlHook;

    /// gust's MySQL driver is built without TLS: Airflow's `ssl` extra (a CA,
    /// a client certificate) and an `ssl_mode` that requires TLS are
    /// configuration errors, not silently ignored for a plaintext connection.
    #[tokio::test]
    async fn mysql_tls_extras_are_refused_not_ignored() {
        let port = common::refused_port();
        for extra in [
            r#"{"ssl": {"ca": "/etc/ssl/ca.pem"}}"#,
            r#"{"ssl": "{\"ca\": \"/etc/ssl/ca.pem\"}"}"#,
            r#"{"ssl_mode": "REQUIRED"}"#,
            r#"{"ssl_mode": "verify_identity"}"#,
        ] {
            let conn = Connection::from_json(
                "my_tls",
                &format!(
                    r#"{{"conn_type": "mysql", "host": "127.0.0.1", "port": {port}, "login": "gust", "password": "my-tls-pw-1", "extra": {extra}}}"#
                ),
            )
            .unwrap();
            let e = MySqlHook::from_connection(&conn).await.unwrap_err();
            eprintln!("{extra}: {e}");
            assert_eq!(e.kind(), ErrorKind::Config, "{extra}: {e}");
            assert!(e.to_string().contains("ssl"), "{e}");
            assert!(!format!("{e:?}").contains("my-tls-pw-1"));
        }
        // Settings that allow plaintext still connect as before (here: refused).
        for extra in [
            r#"{"ssl_mode": "DISABLED"}"#,
            r#"{"ssl_mode": "PREFERRED"}"#,
            r#"{"ssl": false}"#,
        ] {
            let conn = Connection::from_json(
                "my_tls",
                &format!(
                    r#"{{"conn_type": "mysql", "host": "127.0.0.1", "port": {port}, "extra": {extra}}}"#
                ),
            )
            .unwrap();
            let e = MySqlHook::from_connection(&conn).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{extra}: {e}");
        }
    }
}

#[cfg(feature = "object-store")]
mod paths_local_store {
    use super::*;
    use futures::TryStreamExt;
    use gust::hooks::object_store::{ListEntry, ListOptions, LocalStore, ObjectStore, PutOptions};
    use std::path::Path;

    /// Every file under `dir` with its content, to prove nothing outside changed.
    fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(snapshot(&path));
            } else {
                out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
        out.sort();
        out
    }

    /// A store root with bucket `b`, and beside it a directory `outside` holding
    /// `secret.txt`, which no operation on the store may read, change or delete.
    fn setup() -> (tempfile::TempDir, LocalStore, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(outside.join("sub")).unwrap();
        std::fs::write(outside.join("secret.txt"), b"outside secret").unwrap();
        std::fs::write(outside.join("sub/deep.txt"), b"deep secret").unwrap();
        let store = LocalStore::new(tmp.path().join("root")).unwrap();
        std::fs::create_dir(tmp.path().join("root/b")).unwrap();
        std::fs::write(tmp.path().join("root/b/ok.txt"), b"inside").unwrap();
        (tmp, store, outside)
    }

    async fn all_keys(store: &LocalStore, bucket: &str) -> Vec<String> {
        store
            .list(bucket, ListOptions::new())
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .into_iter()
            .map(|e| match e {
                ListEntry::Object(m) => m.key,
                ListEntry::Prefix(p) => p,
            })
            .collect()
    }

    #[tokio::test]
    async fn local_store_keys_with_dot_dot_or_absolute_paths_are_rejected() {
        let (tmp, store, outside) = setup();
        let before = snapshot(tmp.path());
        let abs = format!("{}/secret.txt", outside.display());
        let bad_keys = [
            "../outside/secret.txt",
            "../../outside/secret.txt",
            "a/../../outside/secret.txt",
            "a/../../../x",
            "..",
            ".",
            "./ok.txt",
            abs.as_str(),
            "/etc/passwd",
            "a//b",
            "a/\0/b",
            "a\n/../x",
        ];
        for key in bad_keys {
            let is_bad = |e: Error| {
                assert_eq!(e.kind(), ErrorKind::InvalidInput, "{key:?}: {e}");
            };
            is_bad(store.get("b", key).await.unwrap_err());
            is_bad(store.head("b", key).await.unwrap_err());
            is_bad(store.get_range("b", key, 0..4).await.unwrap_err());
            is_bad(
                store
                    .put("b", key, "x".into(), &PutOptions::default())
                    .await
                    .unwrap_err(),
            );
            is_bad(store.copy("b", key, "b", "copy.txt").await.unwrap_err());
            is_bad(store.copy("b", "ok.txt", "b", key).await.unwrap_err());
            is_bad(store.delete("b", &[key.to_string()]).await.unwrap_err());
        }
        for bucket in ["..", "../outside", ".", "b/..", "/tmp", "outside/.."] {
            let e = store.get(bucket, "secret.txt").await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bucket:?}: {e}");
            let e = store.create_bucket(bucket).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bucket:?}: {e}");
        }
        let e = store
            .list("b", ListOptions::new().prefix("/etc"))
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        // A `../` prefix only filters this bucket's keys: it matches none.
        let listed: Vec<_> = store
            .list("b", ListOptions::new().prefix("../"))
            .try_collect()
            .await
            .unwrap();
        assert!(listed.is_empty(), "{listed:?}");
        assert_eq!(snapshot(tmp.path()), before);
    }

    /// Encoded or look-alike traversals are plain names: they stay in the bucket.
    #[tokio::test]
    async fn local_store_encoded_traversals_are_literal_names_inside_the_bucket() {
        let (tmp, store, outside) = setup();
        let outside_before = snapshot(&outside);
        for key in [
            "%2e%2e/outside/secret.txt",
            "..%2foutside%2fsecret.txt",
            "..\\outside\\secret.txt",
            "\u{2025}/outside/secret.txt",
            "...",
            "a/..b/c",
        ] {
            store
                .put("b", key, "in".into(), &PutOptions::default())
                .await
                .unwrap_or_else(|e| panic!("{key:?}: {e}"));
            assert_eq!(&store.get("b", key).await.unwrap()[..], b"in");
            assert!(all_keys(&store, "b").await.contains(&key.to_string()));
            let file = tmp.path().join("root/b").join(key);
            assert!(file.is_file(), "{key:?} is not at {}", file.display());
            store.delete("b", &[key.to_string()]).await.unwrap();
        }
        assert_eq!(snapshot(&outside), outside_before);
    }

    /// Symbolic links planted inside the bucket, to a directory and to a file
    /// outside it: reads, writes, copies and deletes through them are refused,
    /// listings skip them, and nothing outside changes.
    #[tokio::test]
    async fn local_store_symlinks_out_of_the_bucket_are_not_followed() {
        let (tmp, store, outside) = setup();
        let bucket = tmp.path().join("root/b");
        std::os::unix::fs::symlink(&outside, bucket.join("dirlink")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret.txt"), bucket.join("filelink")).unwrap();
        std::fs::create_dir(bucket.join("real")).unwrap();
        std::os::unix::fs::symlink("../../../outside", bucket.join("real/rel")).unwrap();
        let outside_before = snapshot(&outside);

        let refused = |what: &str, e: Error| {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}");
            assert!(e.to_string().contains("symbolic link"), "{what}: {e}");
        };
        for key in [
            "dirlink/secret.txt",
            "dirlink/sub/deep.txt",
            "filelink",
            "real/rel/secret.txt",
        ] {
            refused(key, store.get("b", key).await.unwrap_err());
            refused(key, store.head("b", key).await.unwrap_err());
            refused(key, store.get_range("b", key, 0..3).await.unwrap_err());
            refused(
                key,
                store.copy("b", key, "b", "stolen.txt").await.unwrap_err(),
            );
        }
        for key in [
            "dirlink/secret.txt",
            "dirlink/new.txt",
            "dirlink/newdir/new.txt",
            "real/rel/sub/deep.txt",
        ] {
            let e = store
                .put("b", key, "overwritten".into(), &PutOptions::default())
                .await
                .unwrap_err();
            refused(key, e);
            refused(key, store.copy("b", "ok.txt", "b", key).await.unwrap_err());
            let report = store.delete("b", &[key.to_string()]).await.unwrap();
            assert!(report.deleted.is_empty(), "{key}: {report:?}");
            assert_eq!(report.errors.len(), 1, "{key}: {report:?}");
        }
        // A listing shows the bucket's own files, not what the links point to.
        let keys = all_keys(&store, "b").await;
        assert_eq!(keys, vec!["ok.txt".to_string()], "{keys:?}");
        assert_eq!(snapshot(&outside), outside_before);
        // Deleting the link key removes the link, never its target.
        let report = store.delete("b", &["filelink".to_string()]).await.unwrap();
        assert_eq!(report.deleted, vec!["filelink".to_string()]);
        assert!(!bucket.join("filelink").exists());
        // Overwriting a link key replaces the link, not the file it names.
        std::os::unix::fs::symlink(outside.join("secret.txt"), bucket.join("filelink")).unwrap();
        store
            .put("b", "filelink", "mine".into(), &PutOptions::default())
            .await
            .unwrap();
        assert_eq!(&store.get("b", "filelink").await.unwrap()[..], b"mine");
        assert_eq!(snapshot(&outside), outside_before);
    }

    /// Links that stay inside the bucket, and a bucket directory that is itself a
    /// link (to another disk), keep working.
    #[tokio::test]
    async fn local_store_links_inside_the_bucket_and_linked_buckets_work() {
        let (tmp, store, _outside) = setup();
        let bucket = tmp.path().join("root/b");
        std::os::unix::fs::symlink(bucket.join("ok.txt"), bucket.join("alias.txt")).unwrap();
        assert_eq!(&store.get("b", "alias.txt").await.unwrap()[..], b"inside");
        let disk = tmp.path().join("other-disk");
        std::fs::create_dir(&disk).unwrap();
        std::os::unix::fs::symlink(&disk, tmp.path().join("root/linked")).unwrap();
        store
            .put("linked", "x/y.txt", "z".into(), &PutOptions::default())
            .await
            .unwrap();
        assert_eq!(&store.get("linked", "x/y.txt").await.unwrap()[..], b"z");
        assert!(disk.join("x/y.txt").is_file());
    }
}

#[cfg(feature = "mlflow")]
mod paths_mlflow_rest {
    use super::*;
    use gust::hooks::mlflow::MlflowHook;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A tracking server with a proxied artifact root whose artifact listing
    /// is `listing(path)` (the JSON `files`), and whose every file holds `pwn`.
    async fn malicious_server(listing: fn(&str) -> String) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    let body = if target.starts_with("/api/2.0/mlflow/runs/get") {
                        r#"{"run": {"info": {"run_id": "r1", "experiment_id": "1", "status": "RUNNING", "artifact_uri": "mlflow-artifacts:/1/r1/artifacts"}, "data": {}}}"#.to_string()
                    } else if let Some(q) =
                        target.strip_prefix("/api/2.0/mlflow-artifacts/artifacts?path=")
                    {
                        let dir = percent_encoding::percent_decode_str(q)
                            .decode_utf8_lossy()
                            .into_owned();
                        let rel = dir
                            .trim_start_matches("1/r1/artifacts")
                            .trim_start_matches('/');
                        format!(r#"{{"files": {}}}"#, listing(rel))
                    } else {
                        "pwn".to_string()
                    };
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        port
    }

    async fn download(port: u16, path: &str, dst: &std::path::Path) -> Result<std::path::PathBuf> {
        let hook = MlflowHook::from_uri(&format!("http://127.0.0.1:{port}"))
            .unwrap()
            .with_max_retries(0);
        // Bounded: a listing that loops must fail the test, not hang it.
        tokio::time::timeout(
            Duration::from_secs(20),
            hook.download_artifacts("r1", path, dst),
        )
        .await
        .expect("download_artifacts still running after 20 s: a listing loop?")
    }

    /// A listing naming `../..` paths or absolute paths writes nothing outside
    /// the destination directory.
    #[tokio::test]
    async fn mlflow_rest_download_stays_in_its_destination_whatever_the_listing() {
        let tmp = tempfile::tempdir().unwrap();
        let dst = tmp.path().join("a/b/dst");
        std::fs::create_dir_all(&dst).unwrap();
        let port = malicious_server(|dir| match dir {
            "" => r#"[{"path": "../../../escape.txt", "is_dir": false, "file_size": 3}]"#.into(),
            _ => "[]".into(),
        })
        .await;
        let e = download(port, "", &dst).await.unwrap_err();
        eprintln!("{e}");
        assert_eq!(e.kind(), ErrorKind::Remote, "{e}");
        assert!(e.to_string().contains("escape.txt"), "{e}");
        let port = malicious_server(|dir| match dir {
            "model" => r#"[{"path": "../../../../escape2.txt", "is_dir": false}]"#.into(),
            "" => r#"[{"path": "model", "is_dir": true}]"#.into(),
            _ => "[]".into(),
        })
        .await;
        assert!(download(port, "", &dst).await.is_err());
        assert!(download(port, "model", &dst).await.is_err());
        // An absolute path in a listing is a path under the destination.
        let port = malicious_server(|dir| match dir {
            "" => format!(
                r#"[{{"path": "{}/abs.txt", "is_dir": false}}]"#,
                std::env::temp_dir().join("gust-security-abs").display()
            ),
            _ => "[]".into(),
        })
        .await;
        let _ = download(port, "", &dst).await;
        assert!(
            !std::env::temp_dir()
                .join("gust-security-abs/abs.txt")
                .exists()
        );
        let mut found = Vec::new();
        let mut stack = vec![tmp.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    found.push(p);
                }
            }
        }
        assert!(
            found.iter().all(|p| p.starts_with(&dst)),
            "written outside {}: {found:?}",
            dst.display()
        );
    }

    /// A listing that names the listed directory inside itself (`""`, `.`,
    /// `x/`) is refused, not followed forever.
    #[tokio::test]
    async fn mlflow_rest_download_refuses_a_listing_that_loops() {
        let tmp = tempfile::tempdir().unwrap();
        let loops: [fn(&str) -> String; 3] = [
            |_| r#"[{"path": "", "is_dir": true}]"#.into(),
            |_| r#"[{"path": ".", "is_dir": true}]"#.into(),
            |dir| match dir {
                "" => r#"[{"path": "m", "is_dir": true}]"#.into(),
                _ => r#"[{"path": "/", "is_dir": true}]"#.into(),
            },
        ];
        for listing in loops {
            let port = malicious_server(listing).await;
            let e = download(port, "", tmp.path()).await.unwrap_err();
            eprintln!("{e}");
            assert_eq!(e.kind(), ErrorKind::Remote, "{e}");
        }
    }
}

#[cfg(feature = "mlflow")]
mod paths_mlflow_file {
    use super::*;
    use gust::hooks::mlflow::MlflowHook;
    use std::path::{Path, PathBuf};

    fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return out;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_symlink() {
                continue;
            }
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
        out.sort();
        out
    }

    /// A file store with one run, its artifact directory, a local file to
    /// upload, and a directory `outside` the store with a secret.
    async fn setup() -> (
        tempfile::TempDir,
        MlflowHook,
        String,
        PathBuf,
        PathBuf,
        PathBuf,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let hook = MlflowHook::from_uri(&format!("file://{}", tmp.path().join("mlruns").display()))
            .unwrap();
        let exp = hook.get_or_create_experiment("security").await.unwrap();
        let run = hook.create_run(&exp, None).await.unwrap();
        let artifacts = PathBuf::from(
            run.info()
                .artifact_uri
                .strip_prefix("file://")
                .unwrap()
                .to_string(),
        );
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.txt"), b"outside secret").unwrap();
        let local = tmp.path().join("upload.txt");
        std::fs::write(&local, b"mine").unwrap();
        (
            tmp,
            hook,
            run.run_id().to_string(),
            artifacts,
            outside,
            local,
        )
    }

    #[tokio::test]
    async fn mlflow_file_store_ids_and_artifact_paths_cannot_escape() {
        let (tmp, hook, run_id, artifacts, outside, local) = setup().await;
        let dst = tmp.path().join("dst");
        let before = files_under(tmp.path());
        for bad_run in ["../0", "..", "0/..", "a/b", "/etc", "", "r\0"] {
            let e = hook.log_artifact(bad_run, &local, None).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad_run:?}: {e}");
            let e = hook.list_artifacts(bad_run, "").await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad_run:?}: {e}");
            let e = hook
                .download_artifacts(bad_run, "", &dst)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad_run:?}: {e}");
        }
        for bad_exp in ["../0", "..", "a/b", "/etc"] {
            let e = hook.create_run(bad_exp, None).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad_exp:?}: {e}");
        }
        for bad in ["..", "../x", "a/../../x", "a/../..", "./../x"] {
            let e = hook
                .log_artifact(&run_id, &local, Some(bad))
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
            let e = hook
                .log_artifacts(&run_id, &outside, Some(bad))
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
            let e = hook.list_artifacts(&run_id, bad).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
            let e = hook
                .download_artifacts(&run_id, bad, &dst)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
        }
        assert_eq!(files_under(tmp.path()), before, "a rejected call wrote");
        // An absolute artifact path is a path under the run's artifact root.
        let abs = format!("{}/abs", outside.display());
        hook.log_artifact(&run_id, &local, Some(&abs))
            .await
            .unwrap();
        assert!(!outside.join("abs").exists());
        let stored = artifacts
            .join(abs.trim_start_matches('/'))
            .join("upload.txt");
        assert!(stored.is_file(), "{}", stored.display());
        let got = hook
            .download_artifacts(&run_id, &format!("{abs}/upload.txt"), &dst)
            .await
            .unwrap();
        assert!(got.starts_with(&dst), "{}", got.display());
        assert_eq!(std::fs::read(&got).unwrap(), b"mine");
    }

    /// A symbolic link in a run's artifact directory to a directory or a file
    /// outside the run: listing, downloading and uploading through it are
    /// refused, and nothing outside changes or is read.
    #[tokio::test]
    async fn mlflow_file_store_symlinks_out_of_the_run_are_not_followed() {
        let (tmp, hook, run_id, artifacts, outside, local) = setup().await;
        std::os::unix::fs::symlink(&outside, artifacts.join("dirlink")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret.txt"), artifacts.join("filelink")).unwrap();
        let outside_before = files_under(&outside);
        let dst = tmp.path().join("dst");

        let refused = |what: &str, r: Result<()>| {
            let e = r.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}");
            assert!(e.to_string().contains("symbolic link"), "{what}: {e}");
        };
        refused(
            "list dirlink",
            hook.list_artifacts(&run_id, "dirlink").await.map(drop),
        );
        for path in ["dirlink/secret.txt", "filelink"] {
            let r = hook.download_artifacts(&run_id, path, &dst).await;
            assert!(r.is_err(), "{path}: downloaded {r:?}");
        }
        // The whole tree: the links are not followed into `outside`.
        let _ = hook.download_artifacts(&run_id, "", &dst).await;
        for p in files_under(&dst) {
            assert_ne!(
                p.1,
                b"outside secret",
                "read through a link: {}",
                p.0.display()
            );
        }
        for at in ["dirlink", "dirlink/new"] {
            refused(at, hook.log_artifact(&run_id, &local, Some(at)).await);
        }
        refused(
            "log_artifacts",
            hook.log_artifacts(
                &run_id,
                local.parent().unwrap().join("outside").as_path(),
                Some("dirlink/x"),
            )
            .await,
        );
        assert_eq!(files_under(&outside), outside_before);
    }
}

#[cfg(all(
    feature = "object-store",
    any(feature = "sqlite", feature = "postgres", feature = "mysql")
))]
mod sql_identifiers {
    use super::*;
    use gust::hooks::object_store::{MemoryStore, ObjectStore, PutOptions};
    use gust::hooks::sql::{InsertOptions, Parameters, RunOptions, Sql, SqlHook};
    use gust::operators::sql::SqlExecuteQuery;
    use gust::transfers::IfExists;
    use gust::transfers::s3_to_sql::S3ToSql;
    use gust::transfers::sql_to_sql::SqlToSql;
    use serde_json::json;
    use std::sync::Arc;

    /// Names that would end the identifier and run a `DROP TABLE victim` if
    /// they were pasted into SQL unquoted or quoted naively, for every dialect's
    /// quote character, plus names that are merely unusual.
    fn hostile(victim: &str) -> Vec<String> {
        vec![
            format!("a\"; DROP TABLE {victim}; --"),
            format!("b`; DROP TABLE {victim}; --"),
            format!("c'); DROP TABLE {victim}; --"),
            format!("d\\\"; DROP TABLE {victim}; #"),
            format!("e\" = \"e\" OR 1=1 --"),
            "표 테이블 é ✓".to_string(),
            "select".to_string(),
        ]
    }

    async fn count(db: &dyn SqlHook, table: &str) -> i64 {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM {}",
            db.quote_identifier(table).unwrap()
        );
        let row = db.get_first(&sql, Parameters::None).await.unwrap().unwrap();
        row["n"].as_i64().unwrap()
    }

    async fn run(db: &dyn SqlHook, sql: String) {
        db.run(Sql::from(sql), RunOptions::default()).await.unwrap();
    }

    /// A CSV field, quoted.
    fn csv(s: &str) -> String {
        format!("\"{}\"", s.replace('"', "\"\""))
    }

    /// Every place a transfer or a hook puts a table or column name into SQL,
    /// with hostile names from a template's `params` and from an object's
    /// header: the hostile table is created and filled literally, and the
    /// victim table is untouched. A NUL or empty name is `InvalidInput`.
    async fn identifiers_are_quoted(db: Arc<dyn SqlHook>) {
        let store = Arc::new(MemoryStore::new());
        store.create_bucket("raw").await.unwrap();
        let victim = common::sql::table("victim");
        let qv = db.quote_identifier(&victim).unwrap();
        run(&*db, format!("CREATE TABLE {qv} (name VARCHAR(100))")).await;
        run(&*db, format!("INSERT INTO {qv} VALUES ('kept')")).await;

        for name in hostile(&victim) {
            let qt = db.quote_identifier(&name).unwrap();
            let qc = &qt;
            run(&*db, format!("DROP TABLE IF EXISTS {qt}")).await;
            let ctx = Context::builder("security", "load")
                .params(json!({"table": name}))
                .build();

            // S3ToSql: the table from a template, the columns from the
            // object's header; created with a hostile key column, then merged
            // on it (the staging table, the upsert keys), then replaced.
            let header = format!("{},v\n", csv(&name));
            // ASCII values: a test database's default character set may be latin1.
            let body = format!("{header}k1,1\nplain,2\n");
            store
                .put("raw", "in.csv", body.into(), &PutOptions::default())
                .await
                .unwrap();
            let load = |if_exists: IfExists| {
                S3ToSql::new("s3://raw/in.csv", "{{ params.table }}")
                    .create_table([
                        (name.as_str(), "VARCHAR(100) PRIMARY KEY"),
                        ("v", "INTEGER"),
                    ])
                    .if_exists(if_exists)
                    .with_store(store.clone() as Arc<dyn ObjectStore>)
                    .with_hook(db.clone())
            };
            let out = load(IfExists::Append)
                .execute(&ctx)
                .await
                .unwrap_or_else(|e| panic!("{name:?}: {e}"));
            assert_eq!(out["table"], json!(name));
            assert_eq!(count(&*db, &name).await, 2, "{name:?}");
            let body = format!("{header}k1,10\nnew,3\n");
            store
                .put("raw", "in.csv", body.into(), &PutOptions::default())
                .await
                .unwrap();
            load(IfExists::merge([name.clone()]))
                .execute(&ctx)
                .await
                .unwrap_or_else(|e| panic!("merge {name:?}: {e}"));
            let row = db
                .get_first(
                    &format!("SELECT v FROM {qt} WHERE {qc} = :k"),
                    Parameters::from(json!({"k": "k1"})),
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row["v"], json!(10), "{name:?}");
            assert_eq!(count(&*db, &name).await, 3, "{name:?}");
            load(IfExists::Replace)
                .execute(&ctx)
                .await
                .unwrap_or_else(|e| panic!("replace {name:?}: {e}"));
            assert_eq!(count(&*db, &name).await, 2, "{name:?}");

            // insert_rows with an upsert on the hostile column.
            db.insert_rows(
                &name,
                &[name.clone(), "v".to_string()],
                vec![vec![json!("k1"), json!(20)], vec![json!("x"), json!(4)]],
                InsertOptions {
                    replace: true,
                    replace_index: vec![name.clone()],
                    ..InsertOptions::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("insert_rows {name:?}: {e}"));
            assert_eq!(count(&*db, &name).await, 3, "{name:?}");

            // SqlToSql: a source column with the hostile name into the
            // hostile table (from a template), through a staging table.
            let source = Arc::new(
                gust::hooks::sqlite::SqliteHook::open("src", ":memory:")
                    .await
                    .unwrap(),
            );
            let src_col = source.quote_identifier(&name).unwrap();
            let op = SqlToSql::new(
                format!("SELECT 'from sql' AS {src_col}, 7 AS v"),
                "{{ params.table }}",
            )
            .with_source_hook(source)
            .with_destination_hook(db.clone())
            .if_exists(IfExists::Replace);
            op.execute(&ctx)
                .await
                .unwrap_or_else(|e| panic!("sql_to_sql {name:?}: {e}"));
            assert_eq!(count(&*db, &name).await, 1, "{name:?}");

            assert_eq!(count(&*db, &victim).await, 1, "victim changed by {name:?}");
            run(&*db, format!("DROP TABLE {qt}")).await;
        }

        // Names no database can hold: refused before any SQL runs.
        for bad in ["a\0b", ""] {
            let ctx = Context::builder("security", "load")
                .params(json!({"table": bad}))
                .build();
            let e = S3ToSql::new("s3://raw/in.csv", "{{ params.table }}")
                .with_store(store.clone() as Arc<dyn ObjectStore>)
                .with_hook(db.clone())
                .execute(&ctx)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
            let e = db
                .insert_rows(
                    "t",
                    &[bad.to_string()],
                    vec![vec![json!(1)]],
                    Default::default(),
                )
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
        }
        // Longer than any database's identifiers (PostgreSQL cuts at 63 bytes,
        // consistently; MariaDB refuses beyond 64 characters): a working
        // table or a typed error, never anything else.
        let long = format!("{}\"; DROP TABLE {victim}; --", "l".repeat(200));
        let ctx = Context::builder("security", "load")
            .params(json!({"table": long}))
            .build();
        store
            .put("raw", "in.csv", "id\n1\n".into(), &PutOptions::default())
            .await
            .unwrap();
        let loaded = S3ToSql::new("s3://raw/in.csv", "{{ params.table }}")
            .create_table([("id", "INTEGER")])
            .with_store(store.clone() as Arc<dyn ObjectStore>)
            .with_hook(db.clone())
            .execute(&ctx)
            .await;
        match loaded {
            Ok(out) => {
                assert_eq!(out["rows"], json!(1));
                assert_eq!(count(&*db, &long).await, 1);
                run(
                    &*db,
                    format!("DROP TABLE {}", db.quote_identifier(&long).unwrap()),
                )
                .await;
            }
            Err(e) => {
                eprintln!("{}: {e}", db.dialect());
                assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            }
        }
        assert_eq!(count(&*db, &victim).await, 1);
        run(&*db, format!("DROP TABLE {qv}")).await;
    }

    /// Values given as `parameters` (rendered from `params` first) are bound,
    /// never pasted into the statement: a value that is SQL stays a value. (A
    /// template that pastes `{{ params.x }}` into the SQL text itself is the
    /// author's SQL, rendered as written.)
    async fn parameters_are_bound(db: Arc<dyn SqlHook>) {
        let victim = common::sql::table("pvictim");
        let qv = db.quote_identifier(&victim).unwrap();
        run(&*db, format!("CREATE TABLE {qv} (name VARCHAR(200))")).await;
        let evil = format!("x'); DROP TABLE {victim}; --");
        let ctx = Context::builder("security", "insert")
            .params(json!({"evil": evil}))
            .build();
        let op = SqlExecuteQuery::new(
            db.conn_id(),
            format!("INSERT INTO {qv} (name) VALUES (:name)"),
        )
        .parameters(json!({"name": "{{ params.evil }}"}))
        .with_hook(db.clone());
        op.execute(&ctx).await.unwrap();
        let rows = db
            .get_records(&format!("SELECT name FROM {qv}"), Parameters::None)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["name"], json!(evil));
        run(&*db, format!("DROP TABLE {qv}")).await;
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_identifiers_are_quoted_and_parameters_bound() {
        let db = Arc::new(
            gust::hooks::sqlite::SqliteHook::open("lite", ":memory:")
                .await
                .unwrap(),
        );
        identifiers_are_quoted(db.clone()).await;
        parameters_are_bound(db).await;
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn postgres_identifiers_are_quoted_and_parameters_bound() {
        let conn = crate::require_conn!("postgres_default");
        let db = Arc::new(
            gust::hooks::postgres::PostgresHook::from_connection(&conn)
                .await
                .unwrap(),
        );
        identifiers_are_quoted(db.clone()).await;
        parameters_are_bound(db).await;
    }

    /// The CSV options PostgreSQL's `COPY` gets as string constants (the
    /// delimiter, the NULL marker) hold quotes and backslashes literally.
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn postgres_copy_options_are_literal() {
        use gust::formats::csv::CsvFormat;
        let conn = crate::require_conn!("postgres_default");
        let db: Arc<dyn SqlHook> = Arc::new(
            gust::hooks::postgres::PostgresHook::from_connection(&conn)
                .await
                .unwrap(),
        );
        let victim = common::sql::table("cvictim");
        let target = common::sql::table("copyopts");
        run(&*db, format!("CREATE TABLE {victim} (x INTEGER)")).await;
        run(
            &*db,
            format!("CREATE TABLE {target} (id INTEGER, name TEXT)"),
        )
        .await;
        let marker = format!("n\\'); DROP TABLE {victim}; --\\");
        let store = Arc::new(MemoryStore::new());
        store.create_bucket("raw").await.unwrap();
        let body = format!("id|name\n1|{marker}\n2|it's\n");
        store
            .put("raw", "in.csv", body.into(), &PutOptions::default())
            .await
            .unwrap();
        // Replace on PostgreSQL: the direct COPY with these options.
        S3ToSql::new("s3://raw/in.csv", target.clone())
            .file_format(CsvFormat::new().delimiter(b'|').null(marker.clone()))
            .if_exists(IfExists::Replace)
            .with_store(store.clone() as Arc<dyn ObjectStore>)
            .with_hook(db.clone())
            .execute(&Context::builder("security", "copy").build())
            .await
            .unwrap();
        let rows = db
            .get_records(
                &format!("SELECT id, name FROM {target} ORDER BY id"),
                Parameters::None,
            )
            .await
            .unwrap();
        assert_eq!(rows[0]["name"], json!(null), "{rows:?}");
        assert_eq!(rows[1]["name"], json!("it's"), "{rows:?}");
        assert_eq!(count(&*db, &victim).await, 0);
        run(&*db, format!("DROP TABLE {victim}")).await;
        run(&*db, format!("DROP TABLE {target}")).await;
    }

    #[cfg(feature = "mysql")]
    #[tokio::test]
    async fn mysql_identifiers_are_quoted_and_parameters_bound() {
        let conn = crate::require_conn!("mysql_default").with_extra("local_infile", json!(true));
        let db = Arc::new(
            gust::hooks::mysql::MySqlHook::from_connection(&conn)
                .await
                .unwrap(),
        );
        identifiers_are_quoted(db.clone()).await;
        parameters_are_bound(db).await;
    }
}

#[cfg(feature = "s3")]
mod paths_s3_download {
    use super::*;
    use gust::hooks::s3::S3Hook;

    /// `download_file` names the local file after the key's last segment: a
    /// key whose last segment is `..` (or that has one anywhere) is refused
    /// before any request, so the file cannot land outside `local_dir`.
    #[tokio::test]
    async fn s3_download_file_cannot_leave_its_directory() {
        let port = common::refused_port();
        let conn = Connection::from_uri(
            "aws_paths",
            &format!(
                "aws://AKID:secret-key-1@/?region_name=us-east-1&endpoint_url=http%3A%2F%2F127.0.0.1%3A{port}"
            ),
        )
        .unwrap();
        let hook = S3Hook::from_connection(&conn).await.unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("downloads");
        std::fs::create_dir(&dir).unwrap();
        for key in ["a/..", "..", "a/../../x", "/etc/passwd", "a/", "a/./b"] {
            let e = hook
                .download_file(key, Some("bucket"), &dir, true)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{key:?}: {e}");
        }
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("downloads")]);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }
}
