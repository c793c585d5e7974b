//! Retry budgets under a 5xx storm (issue #10): a hook that retried and gave up
//! returns an exhausted error, so a task with retries does not multiply the
//! hook's attempts. The budgets asserted here are the ones documented in
//! `docs/ARCHITECTURE.md`, "Who owns patience".
//!
//! Each server is a local socket that answers every request with a 503 and
//! counts them; no real time is measured, delays are 1 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::TimeZone;
use gust::hooks::mlflow::MlflowHook;
use gust::prelude::*;
use gust::retry::Backoff;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server answering every request `503 Service Unavailable` with MLflow's JSON
/// error; returns its port and the number of requests it has answered.
async fn storm_server() -> (u16, Arc<AtomicUsize>) {
    storm_server_with(
        "application/json",
        r#"{"error_code":"TEMPORARILY_UNAVAILABLE","message":"overloaded"}"#,
    )
    .await
}

/// A server answering every request `503 Service Unavailable` with `body`.
async fn storm_server_with(
    content_type: &'static str,
    body: &'static str,
) -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                // The whole head of a small GET; `connection: close` makes each
                // request its own connection, so one accept is one request.
                let mut buf = vec![0u8; 8192];
                let mut n = 0;
                while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => n += k,
                    }
                }
                seen.fetch_add(1, Ordering::SeqCst);
                let resp = format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {content_type}\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (port, count)
}

/// Runs `task` alone in a DAG for one day; returns its tries and its error.
async fn run_alone(task: Task) -> (u32, String) {
    let id = task.task_id().to_string();
    let mut dag = Dag::builder("storm");
    dag.add(task);
    let day = chrono_tz::UTC
        .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
        .unwrap();
    let report = dag.build().unwrap().test(day).await;
    let t = report.task(&id).unwrap();
    (t.tries, t.error.clone().unwrap_or_default())
}

/// Runs one task calling MLflow on `port` under `options` (with 2 task retries);
/// returns the task's tries and its error.
async fn run_mlflow_task(port: u16, options: TaskOptions) -> (u32, String) {
    run_alone(
        Task::from_fn("get_experiment", move |_ctx| async move {
            let hook = MlflowHook::from_uri(&format!("http://127.0.0.1:{port}"))?
                .with_backoff(Backoff::exponential(Duration::from_millis(1)));
            hook.get_experiment_by_name("storm").await?;
            Ok(Value::Null)
        })
        .with_options(options.retries(2).retry_delay(Duration::from_millis(1))),
    )
    .await
}

/// The documented MLflow budget: the client's 1 + 3 attempts per task run, not
/// per try.
const MLFLOW_ATTEMPTS: usize = 4;

#[tokio::test]
async fn mlflow_storm_costs_the_clients_attempts_not_attempts_times_tries() {
    let (port, requests) = storm_server().await;
    let (tries, error) = run_mlflow_task(port, TaskOptions::default()).await;
    assert_eq!(requests.load(Ordering::SeqCst), MLFLOW_ATTEMPTS);
    assert_eq!(tries, 1, "{error}");
    assert!(
        error.contains("(unavailable, retries exhausted)"),
        "{error}"
    );
    assert!(error.contains("attempts=4"), "{error}");
}

#[tokio::test]
async fn mlflow_storm_with_retry_exhausted_is_attempts_times_tries() {
    let (port, requests) = storm_server().await;
    let (tries, error) = run_mlflow_task(port, TaskOptions::default().retry_exhausted(true)).await;
    assert_eq!(tries, 3, "{error}");
    assert_eq!(requests.load(Ordering::SeqCst), MLFLOW_ATTEMPTS * 3);
}

#[tokio::test]
async fn an_mlflow_client_without_retries_leaves_patience_to_the_task() {
    let (port, requests) = storm_server().await;
    let (tries, error) = run_alone(
        Task::from_fn("get_experiment", move |_ctx| async move {
            let hook =
                MlflowHook::from_uri(&format!("http://127.0.0.1:{port}"))?.with_max_retries(0);
            hook.get_experiment_by_name("storm").await?;
            Ok(Value::Null)
        })
        .with_options(
            TaskOptions::default()
                .retries(2)
                .retry_delay(Duration::from_millis(1)),
        ),
    )
    .await;
    assert_eq!(tries, 3, "{error}");
    assert_eq!(requests.load(Ordering::SeqCst), 3);
    assert!(!error.contains("exhausted"), "{error}");
}

/// S3: the SDK's attempts per request are the budget (2 here, not the default
/// 3, so `with_retries` is seen to be honoured), whatever the task's retries.
#[cfg(feature = "s3")]
mod s3 {
    use super::*;
    use gust::hooks::s3::{ListKeys, S3Hook};

    const S3_ATTEMPTS: usize = 2;

    async fn run_s3_task(port: u16, options: TaskOptions) -> (u32, String) {
        run_alone(
            Task::from_fn("list", move |_ctx| async move {
                let conn = gust::Connection::from_uri(
                    "aws_storm",
                    &format!(
                        "aws://key:secret-key@/?region_name=us-east-1&endpoint_url=http%3A%2F%2F127.0.0.1%3A{port}"
                    ),
                )?;
                let hook = S3Hook::from_connection(&conn).await?.with_retries(
                    S3_ATTEMPTS as u32,
                    Backoff::exponential(Duration::from_millis(1)),
                );
                hook.list_keys(Some("bucket"), &ListKeys::new()).await?;
                Ok(Value::Null)
            })
            .with_options(options.retries(2).retry_delay(Duration::from_millis(1))),
        )
        .await
    }

    const SLOW_DOWN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>ServiceUnavailable</Code><Message>overloaded</Message></Error>";

    #[tokio::test]
    async fn s3_storm_costs_the_sdks_attempts_not_attempts_times_tries() {
        let (port, requests) = storm_server_with("application/xml", SLOW_DOWN).await;
        let (tries, error) = run_s3_task(port, TaskOptions::default()).await;
        assert_eq!(requests.load(Ordering::SeqCst), S3_ATTEMPTS, "{error}");
        assert_eq!(tries, 1, "{error}");
        assert!(
            error.contains("(unavailable, retries exhausted)"),
            "{error}"
        );
        assert!(
            error.contains(&format!("max_attempts={S3_ATTEMPTS}")),
            "{error}"
        );
        assert!(error.contains("ServiceUnavailable"), "{error}");
    }

    #[tokio::test]
    async fn s3_storm_with_retry_exhausted_is_attempts_times_tries() {
        let (port, requests) = storm_server_with("application/xml", SLOW_DOWN).await;
        let (tries, error) = run_s3_task(port, TaskOptions::default().retry_exhausted(true)).await;
        // The task's three tries, each costing the SDK's attempts.
        assert_eq!(tries, 3, "{error}");
        assert_eq!(requests.load(Ordering::SeqCst), S3_ATTEMPTS * 3, "{error}");
    }
}
