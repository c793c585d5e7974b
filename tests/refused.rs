//! Every networked hook against a port nothing listens on: it must fail within
//! seconds, name `host:port` and say the connection was refused, instead of
//! retrying until a pool timeout that hides the cause. Needs no server; each
//! hook's tests are compiled with its feature.
#![allow(dead_code, unused_imports)]

use std::time::{Duration, Instant};

use common::refused_port;
use gust::Error;

mod common;

/// How long a refused connection may take to be reported, retries included.
const FAST: Duration = Duration::from_secs(5);

/// Runs `connect`, asserting it fails within [`FAST`] as
/// [`Unavailable`](gust::ErrorKind::Unavailable) and that the error's Display names
/// `127.0.0.1:<port>` and the refusal.
async fn assert_refused<T: std::fmt::Debug>(
    port: u16,
    connect: impl std::future::Future<Output = gust::Result<T>>,
) -> Error {
    let start = Instant::now();
    // Bounded, so a regression fails the test instead of hanging it.
    let res = tokio::time::timeout(Duration::from_secs(60), connect).await;
    let elapsed = start.elapsed();
    let err = res
        .unwrap_or_else(|_| panic!("still connecting after {elapsed:?}"))
        .expect_err("a refused port must be an error");
    let text = err.to_string();
    eprintln!("after {elapsed:?}: {text}");
    assert!(
        elapsed < FAST,
        "took {elapsed:?} (limit {FAST:?}) to report: {text}"
    );
    assert!(
        text.contains(&format!("127.0.0.1:{port}")),
        "no host:port in: {text}"
    );
    assert!(
        text.to_lowercase().contains("refused"),
        "no cause in: {text}"
    );
    assert!(
        !text.contains("ConnectorError") && !text.contains("Os {"),
        "a Debug dump in: {text}"
    );
    assert_eq!(err.kind(), gust::ErrorKind::Unavailable, "{text}");
    err
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use gust::Connection;
    use gust::hooks::postgres::PostgresHook;

    #[tokio::test]
    async fn postgres_refused_port_fails_fast_with_the_cause() {
        let port = refused_port();
        let conn = Connection::from_uri(
            "pg_refused",
            &format!("postgres://gust:Secret-pw-1@127.0.0.1:{port}/gust_test"),
        )
        .unwrap();
        let err = assert_refused(port, PostgresHook::from_connection(&conn)).await;
        assert_eq!(err.context("conn_id"), Some("pg_refused"));
        assert!(!format!("{err} {err:?}").contains("Secret-pw-1"));
    }

    /// The direct connection's bound comes from the extra `connect_timeout`.
    #[tokio::test]
    async fn postgres_bad_connect_timeout_is_a_config_error() {
        let conn = Connection::from_uri(
            "pg_timeout",
            "postgres://gust:Secret-pw-1@127.0.0.1:1/gust_test?connect_timeout=soon",
        )
        .unwrap();
        let err = PostgresHook::from_connection(&conn).await.unwrap_err();
        assert_eq!(err.kind(), gust::ErrorKind::Config, "{err}");
        assert!(err.to_string().contains("connect_timeout"), "{err}");
    }

    /// `postgres:/user:pw@host/db` (one slash) leaves the host empty and puts
    /// `user:pw@host/db` into the schema.
    #[tokio::test]
    async fn postgres_uri_with_one_slash_fails_fast_as_config() {
        let conn = Connection::from_uri(
            "pg_one_slash",
            "postgres:/gust:Secret-pw-1@127.0.0.1/gust_test",
        )
        .unwrap();
        let start = Instant::now();
        let err = tokio::time::timeout(
            Duration::from_secs(60),
            PostgresHook::from_connection(&conn),
        )
        .await
        .expect("still connecting after 60 s")
        .unwrap_err();
        assert!(start.elapsed() < FAST, "took {:?}: {err}", start.elapsed());
        assert_eq!(err.kind(), gust::ErrorKind::Config, "{err}");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("//"), "no hint in: {err}");
        assert!(!format!("{err} {err:?}").contains("Secret-pw-1"), "{err:?}");
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use gust::Connection;
    use gust::hooks::mysql::MySqlHook;

    #[tokio::test]
    async fn mysql_refused_port_fails_fast_with_the_cause() {
        let port = refused_port();
        let conn = Connection::from_uri(
            "my_refused",
            &format!("mysql://gust:Secret-pw-1@127.0.0.1:{port}/gust_test"),
        )
        .unwrap();
        let err = assert_refused(port, MySqlHook::from_connection(&conn)).await;
        assert_eq!(err.context("conn_id"), Some("my_refused"));
    }
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use gust::Connection;
    use gust::hooks::redis::RedisHook;

    #[tokio::test]
    async fn redis_refused_port_fails_fast_with_the_cause() {
        let port = refused_port();
        let conn = Connection::from_uri(
            "redis_refused",
            &format!("redis://:Secret-pw-1@127.0.0.1:{port}/0"),
        )
        .unwrap();
        let err = assert_refused(port, RedisHook::from_connection(&conn)).await;
        assert_eq!(err.context("conn_id"), Some("redis_refused"));
    }

    #[tokio::test]
    async fn redis_cluster_refused_port_fails_fast_with_the_cause() {
        let port = refused_port();
        let conn = Connection::from_uri(
            "redis_cluster_refused",
            &format!("redis://:Secret-pw-1@127.0.0.1:{port}/?cluster=true"),
        )
        .unwrap();
        assert_refused(port, RedisHook::from_connection(&conn)).await;
    }
}

/// An `aws` connection whose endpoint is `127.0.0.1:<port>`.
#[cfg(feature = "s3")]
fn aws_conn(port: u16) -> gust::Connection {
    gust::Connection::from_uri(
        "aws_refused",
        &format!(
            "aws://key-id:Secret-pw-1@/?region_name=us-east-1&endpoint_url=http%3A%2F%2F127.0.0.1%3A{port}"
        ),
    )
    .unwrap()
}

#[cfg(feature = "s3")]
mod s3 {
    use super::*;
    use gust::hooks::s3::S3Hook;

    #[tokio::test]
    async fn s3_refused_endpoint_fails_fast_with_the_cause() {
        let port = refused_port();
        let conn = aws_conn(port);
        let s3 = S3Hook::from_connection(&conn).await.unwrap();
        let err = assert_refused(port, s3.test_connection()).await;
        // The SDK retried the refusal (3 attempts by default) and gave up: the
        // error is exhausted, so a task's retries do not multiply them.
        assert!(err.is_exhausted() && !err.is_retryable(), "{err}");
        assert!(!format!("{err} {err:?}").contains("Secret-pw-1"));
    }
}

#[cfg(feature = "sagemaker")]
mod sagemaker {
    use super::*;
    use gust::hooks::sagemaker::{Job, SageMakerHook};

    #[tokio::test]
    async fn sagemaker_refused_endpoint_fails_fast_with_the_cause() {
        let port = refused_port();
        let conn = aws_conn(port);
        let sm = SageMakerHook::from_connection(&conn).await.unwrap();
        let err = assert_refused(port, sm.describe_job(Job::Training, "j")).await;
        // Retried (3 attempts by default), then exhausted.
        assert!(err.is_exhausted() && !err.is_retryable(), "{err}");
        assert_eq!(err.operation(), "sagemaker.DescribeTrainingJob");
        assert!(!format!("{err} {err:?}").contains("Secret-pw-1"));
    }
}

#[cfg(feature = "mlflow")]
mod mlflow {
    use super::*;
    use gust::hooks::mlflow::MlflowHook;

    /// The client's own retries (3, jittered from 200 ms) stay within the limit,
    /// and the error names the cause, not only reqwest's "error sending request".
    #[tokio::test]
    async fn mlflow_refused_port_fails_fast_with_the_cause() {
        let port = refused_port();
        let hook = MlflowHook::from_uri(&format!("http://127.0.0.1:{port}")).unwrap();
        let e = assert_refused(port, hook.get_experiment_by_name("Default")).await;
        assert!(e.is_exhausted(), "the client retried and gave up: {e}");
    }
}
