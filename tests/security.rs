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
        assert_eq!(seen.app_bytes(), app, "a request went to the untrusted server");
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
        assert_eq!(seen.app_bytes(), app, "a request went to the untrusted server");
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
        assert_eq!(seen.app_bytes(), app, "a request went to the untrusted server");
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
            &format!("redis://:redis-tls-pw-1@localhost:{port}/0?ssl=true&socket_connect_timeout=5"),
        )
        .unwrap();
        let e = RedisHook::from_connection(&conn).await.unwrap_err();
        assert_cert_refused(&e, "redis-tls-pw-1");
        assert_eq!(seen.app_bytes(), app, "AUTH went to the untrusted server");
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
        assert_eq!(seen.handshakes(), 0, "a TLS session with an untrusted certificate");
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
        for extra in [r#"{"ssl_mode": "DISABLED"}"#, r#"{"ssl_mode": "PREFERRED"}"#, r#"{"ssl": false}"#] {
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
