//! MlflowHook against the real MLflow tracking server (PostgreSQL backend store,
//! artifacts proxied to S3), as started by `scripts/services.sh`. The scenarios
//! shared with the `file:` store are in tests/common/mlflow_scenarios.rs.

mod common;

use common::mlflow_scenarios::{self as scenarios, Store};
use gust::ErrorKind;
use gust::hooks::mlflow::MlflowHook;

fn hook() -> Option<MlflowHook> {
    let conn = common::server_conn("mlflow_default")?;
    Some(MlflowHook::from_connection(&conn).expect("hook"))
}

macro_rules! require_hook {
    () => {
        match hook() {
            Some(h) => h,
            None => return,
        }
    };
}

#[tokio::test]
async fn experiments_get_or_create_is_idempotent_and_race_safe() {
    let h = require_hook!();
    // Four concurrent callers: one creates, the others read the winner's id.
    let racers = vec![h.clone(); 4];
    scenarios::experiments_get_or_create_is_idempotent_and_race_safe(&h, &racers).await;
}

#[tokio::test]
async fn runs_params_metrics_tags_and_history() {
    let h = require_hook!();
    scenarios::runs_params_metrics_tags_and_history(&h, Store::SQL_SERVER).await;
}

#[tokio::test]
async fn log_batch_beyond_the_limits_is_split_not_rejected() {
    let h = require_hook!();
    scenarios::log_batch_beyond_the_limits_is_split_not_rejected(&h).await;
}

#[tokio::test]
async fn with_run_ends_failed_on_error_and_search_paginates() {
    let h = require_hook!();
    scenarios::with_run_ends_failed_on_error_and_search_paginates(&h, Store::SQL_SERVER).await;
}

#[tokio::test]
async fn registry_versions_increase_and_aliases_resolve() {
    let h = require_hook!();
    let racers = vec![h.clone(); 8];
    scenarios::registry_versions_increase_and_aliases_resolve(&h, &racers, Store::SQL_SERVER).await;
}

#[tokio::test]
async fn unreachable_server_and_wrong_token_are_typed_errors() {
    let h = require_hook!();
    let _ = h;
    let dead = MlflowHook::new("http://127.0.0.1:9")
        .unwrap()
        .with_max_retries(1);
    let e = dead.get_experiment("0").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    // The client retried once and gave up: exhausted, so the task does not
    // multiply its attempts (see gust::retry).
    assert!(e.is_exhausted() && !e.is_retryable(), "{e}");
    assert_eq!(e.context("attempts"), Some("2"));
    assert!(e.to_string().contains("cannot reach"), "{e}");

    // A token is never echoed, even by a server without auth (the server with auth,
    // and wrong credentials against it, are in tests/mlflow_auth.rs).
    let conn = gust::Connection::from_uri("tok", "http://:s3cr3t-token@127.0.0.1:9").unwrap();
    let e = MlflowHook::from_connection(&conn)
        .unwrap()
        .with_max_retries(0)
        .get_experiment("0")
        .await
        .unwrap_err();
    assert!(!format!("{e} {e:?}").contains("s3cr3t-token"));
}

/// The shared artifact scenario through the server's artifact proxy, then the
/// Python MLflow client reads what gust uploaded.
#[tokio::test]
async fn artifacts_round_trip_through_the_proxy() {
    let h = require_hook!();
    let work = tempfile::tempdir().unwrap();
    let art = scenarios::artifacts_round_trip(&h, work.path()).await;

    // The Python MLflow client reads what gust uploaded.
    if let Some(python) = common::python() {
        let py_dst = work.path().join("py");
        let script = format!(
            "import mlflow, hashlib; c = mlflow.MlflowClient('{}'); \
             p = c.download_artifacts('{}', 'model/sub/weights.bin', '{}'); \
             print(hashlib.sha256(open(p, 'rb').read()).hexdigest())",
            h.base_url(),
            art.run_id,
            py_dst.display()
        );
        std::fs::create_dir_all(&py_dst).unwrap();
        let out = std::process::Command::new(python)
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let py_sha = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(py_sha.len(), 64, "Python printed no sha256: {py_sha:?}");
        let ours = std::process::Command::new("sha256sum")
            .arg(art.model_dir.join("sub/weights.bin"))
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&ours.stdout).starts_with(&py_sha),
            "{py_sha}"
        );
    }
}
