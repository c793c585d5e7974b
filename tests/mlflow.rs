//! MlflowHook against the real MLflow tracking server (PostgreSQL backend store,
//! artifacts proxied to S3), as started by `scripts/services.sh`. The scenarios
//! shared with the `file:` store are in tests/common/mlflow_scenarios.rs.

mod common;

use common::fault_proxy::{FaultProxy, HttpFault, ResetWhen};
use common::mlflow_scenarios::{self as scenarios, Store};
use gust::ErrorKind;
use gust::hooks::mlflow::{MlflowHook, RunStatus, RunTag};

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

/// A hook to the MLflow server through a fault proxy whose matching HTTP
/// requests (`method` to a target containing `target`, the first one only)
/// are reset at `when`; set before the hook opens a connection, so every
/// request goes through the proxy's one-request-per-connection HTTP mode.
async fn through_reset(
    method: &'static str,
    target: &'static str,
    when: ResetWhen,
) -> Option<(MlflowHook, FaultProxy)> {
    let conn = common::server_conn("mlflow_default")?;
    let proxy = FaultProxy::start(conn.host().unwrap(), conn.port().unwrap()).await;
    proxy.set_http_reset(Some((
        HttpFault {
            method,
            target_contains: vec![target],
            nth: Some(1),
        },
        when,
    )));
    let hook = MlflowHook::new(&format!("http://127.0.0.1:{}", proxy.port())).unwrap();
    Some((hook, proxy))
}

/// `runs/create` is not idempotent: sent again after the server created the
/// run but the answer was lost (the connection reset on the way back), it
/// makes a second run. The client looks the run up by its start time, name
/// and tags before sending again, finds the one the server made, and
/// returns it: one run, the one returned.
#[tokio::test]
async fn a_lost_runs_create_answer_makes_no_second_run() {
    let Some((h, proxy)) =
        through_reset("POST", "runs/create", ResetWhen::AfterServerAnswers).await
    else {
        return;
    };
    let exp = h
        .get_or_create_experiment(&common::unique("lost-create"))
        .await
        .unwrap();
    let tags = [RunTag {
        key: "gust.task_id".into(),
        value: "train".into(),
    }];
    let run = h
        .create_run_with_tags(&exp, Some("lost"), &tags)
        .await
        .unwrap();
    assert_eq!(proxy.http_resets(), 1, "the answer was lost");
    let runs = h.search_all_runs(&[exp.as_str()], "", 100).await.unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r.info.run_id.as_str()).collect();
    assert_eq!(ids, [run.run_id()], "exactly one run, the one returned");
    assert_eq!(runs[0].data.tag("gust.task_id"), Some("train"));
    assert_eq!(runs[0].info.run_name, "lost");
    assert_eq!(runs[0].info.status, RunStatus::Running);
}

/// A `runs/create` reset before the server saw it: the lookup finds nothing,
/// so the client sends it again: one run.
#[tokio::test]
async fn a_runs_create_lost_before_the_server_is_sent_again() {
    let Some((h, proxy)) = through_reset("POST", "runs/create", ResetWhen::BeforeServer).await
    else {
        return;
    };
    let exp = h
        .get_or_create_experiment(&common::unique("lost-before"))
        .await
        .unwrap();
    let run = h.create_run(&exp, None).await.unwrap();
    assert_eq!(proxy.http_resets(), 1);
    let runs = h.search_all_runs(&[exp.as_str()], "", 100).await.unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r.info.run_id.as_str()).collect();
    assert_eq!(ids, [run.run_id()]);
}

/// `model-versions/create` likewise: the version the server registered before
/// the answer was lost is found (a version of the run's model that was not
/// there before the request) and returned, not registered again.
#[tokio::test]
async fn a_lost_model_versions_create_answer_makes_no_second_version() {
    let Some((h, proxy)) = through_reset(
        "POST",
        "model-versions/create",
        ResetWhen::AfterServerAnswers,
    )
    .await
    else {
        return;
    };
    let exp = h
        .get_or_create_experiment(&common::unique("lost-version"))
        .await
        .unwrap();
    let run = h.create_run(&exp, None).await.unwrap();
    let name = common::unique("LostVersion");
    h.create_registered_model(&name).await.unwrap();
    let source = format!("runs:/{}/model", run.run_id());
    let version = h
        .create_model_version(&name, &source, Some(run.run_id()))
        .await
        .unwrap();
    assert_eq!(proxy.http_resets(), 1, "the answer was lost");
    let versions = h
        .search_model_versions(&format!("name='{name}'"))
        .await
        .unwrap();
    let numbers: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(numbers, [version.version.as_str()], "exactly one version");
    assert_eq!(version.version, "1");
    assert_eq!(versions[0].source, source);
}
