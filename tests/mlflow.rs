//! MlflowHook against the real MLflow tracking server (PostgreSQL backend store,
//! artifacts proxied to S3), as started by `scripts/services.sh`.

mod common;

use gust::ErrorKind;
use gust::hooks::mlflow::{BatchLimits, Metric, MlflowHook, Param, RunStatus, RunTag};

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
    h.test_connection().await.unwrap();
    let name = common::unique("gust-exp");
    // Four concurrent callers: one creates, the others read the winner's id.
    let ids = futures::future::join_all((0..4).map(|_| h.get_or_create_experiment(&name))).await;
    let ids: Vec<String> = ids.into_iter().map(Result::unwrap).collect();
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    let exp = h.get_experiment(&ids[0]).await.unwrap();
    assert_eq!(exp.name, name);
    assert_eq!(
        h.get_experiment_by_name(&name).await.unwrap().experiment_id,
        ids[0]
    );
    let e = h.create_experiment(&name).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert!(
        !e.to_string().contains("INSERT"),
        "server SQL leaked into: {e}"
    );
    let e = h
        .get_experiment_by_name(&common::unique("nope"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("experiment="), "{e}");
}

#[tokio::test]
async fn runs_params_metrics_tags_and_history() {
    let h = require_hook!();
    let exp = h
        .get_or_create_experiment(&common::unique("gust-runs"))
        .await
        .unwrap();
    let run = h.create_run(&exp, Some("iris-rf")).await.unwrap();
    run.log_param("n_estimators", "100").await.unwrap();
    run.log_param("n_estimators", "100").await.unwrap(); // same value: fine
    let e = run.log_param("n_estimators", "200").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(e.context("param"), Some("n_estimators"));
    for step in 0..5 {
        run.log_metric("loss", 1.0 / (step as f64 + 1.0), step)
            .await
            .unwrap();
    }
    run.log_metric("weird", f64::NAN, 0).await.unwrap();
    run.log_metric("weird", f64::INFINITY, 1).await.unwrap();
    run.set_tag("team", "06").await.unwrap();
    run.set_tag("team", "07").await.unwrap();
    run.end(RunStatus::Finished).await.unwrap();

    let got = h.get_run(run.run_id()).await.unwrap();
    assert_eq!(got.info.status, RunStatus::Finished);
    assert!(got.info.end_time.is_some());
    assert_eq!(got.info.run_name, "iris-rf");
    assert_eq!(got.data.param("n_estimators"), Some("100"));
    assert_eq!(got.data.metric("loss"), Some(0.2));
    assert_eq!(got.data.tag("team"), Some("07"));

    let history = h.get_metric_history(run.run_id(), "loss").await.unwrap();
    let mut steps: Vec<i64> = history.iter().map(|m| m.step).collect();
    steps.sort();
    assert_eq!(steps, vec![0, 1, 2, 3, 4]);
    let weird = h.get_metric_history(run.run_id(), "weird").await.unwrap();
    let mut weird: Vec<(i64, f64)> = weird.iter().map(|m| (m.step, m.value)).collect();
    weird.sort_by_key(|w| w.0);
    assert!(weird[0].1.is_nan(), "{weird:?}");
    // The SQL backend clamps infinity to the largest double (documented on log_metric).
    assert_eq!(weird[1].1, f64::MAX, "{weird:?}");

    let e = h.get_run(&"0".repeat(32)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn log_batch_beyond_the_limits_is_split_not_rejected() {
    let h = require_hook!().with_batch_limits(BatchLimits {
        max_metrics: 300,
        ..BatchLimits::default()
    });
    let exp = h
        .get_or_create_experiment(&common::unique("gust-batch"))
        .await
        .unwrap();
    let run = h.create_run(&exp, None).await.unwrap();
    let metrics: Vec<Metric> = (0..2_500)
        .map(|i| Metric {
            key: "acc".into(),
            value: i as f64 / 2_500.0,
            timestamp: 1_700_000_000_000 + i,
            step: i,
        })
        .collect();
    let params: Vec<Param> = (0..250)
        .map(|i| Param {
            key: format!("p{i}"),
            value: i.to_string(),
        })
        .collect();
    let tags: Vec<RunTag> = (0..150)
        .map(|i| RunTag {
            key: format!("t{i}"),
            value: "x".into(),
        })
        .collect();
    run.log_batch(&metrics, &params, &tags).await.unwrap();
    run.end(RunStatus::Finished).await.unwrap();
    let got = h.get_run(run.run_id()).await.unwrap();
    assert_eq!(got.data.params.len(), 250);
    assert_eq!(
        got.data
            .tags
            .iter()
            .filter(|t| t.key.starts_with('t'))
            .count(),
        150
    );
    assert_eq!(
        h.get_metric_history(run.run_id(), "acc")
            .await
            .unwrap()
            .len(),
        2_500
    );
}

#[tokio::test]
async fn with_run_ends_failed_on_error_and_search_paginates() {
    let h = require_hook!();
    let exp = h
        .get_or_create_experiment(&common::unique("gust-guard"))
        .await
        .unwrap();
    let ok: u32 = h
        .with_run(&exp, Some("good"), |run| async move {
            run.log_metric("accuracy", 0.9, 0).await?;
            Ok(7)
        })
        .await
        .unwrap();
    assert_eq!(ok, 7);
    let err = h
        .with_run(&exp, Some("bad"), |run| async move {
            run.log_param("x", "1").await?;
            Err::<(), _>(gust::Error::fail_now("training diverged"))
        })
        .await
        .unwrap_err();
    let failed_run = err
        .context("run_id")
        .expect("the error names the run")
        .to_string();
    assert_eq!(
        h.get_run(&failed_run).await.unwrap().info.status,
        RunStatus::Failed
    );

    for i in 0..3 {
        h.with_run(&exp, Some(&format!("extra{i}")), |_run| async { Ok(()) })
            .await
            .unwrap();
    }
    let (page, token) = h.search_runs(&[exp.as_str()], "", 2, None).await.unwrap();
    assert_eq!(page.len(), 2);
    assert!(token.is_some());
    let all = h.search_all_runs(&[exp.as_str()], "", 2).await.unwrap();
    assert_eq!(all.len(), 5);
    let finished = h
        .search_all_runs(&[exp.as_str()], "attributes.status = 'FINISHED'", 100)
        .await
        .unwrap();
    assert_eq!(finished.len(), 4);
    let good = h
        .search_all_runs(&[exp.as_str()], "metrics.accuracy > 0.5", 100)
        .await
        .unwrap();
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].info.run_name, "good");
}

#[tokio::test]
async fn registry_versions_increase_and_aliases_resolve() {
    let h = require_hook!();
    let name = common::unique("GustIris");
    let exp = h
        .get_or_create_experiment(&common::unique("gust-reg"))
        .await
        .unwrap();
    let m1 = h.create_registered_model(&name).await.unwrap();
    let m2 = h.create_registered_model(&name).await.unwrap(); // idempotent
    assert_eq!(m1.name, m2.name);

    let mut versions = Vec::new();
    for _ in 0..2 {
        let run = h.create_run(&exp, None).await.unwrap();
        run.end(RunStatus::Finished).await.unwrap();
        let source = format!("runs:/{}/model", run.run_id());
        let v = h
            .create_model_version(&name, &source, Some(run.run_id()))
            .await
            .unwrap();
        let v = h
            .wait_model_version_ready(&name, &v.version, std::time::Duration::from_secs(30))
            .await
            .unwrap();
        versions.push(v.version_number().unwrap());
    }
    assert_eq!(
        versions[1],
        versions[0] + 1,
        "registering again creates the next version"
    );

    h.set_registered_model_alias(&name, "champion", &versions[0].to_string())
        .await
        .unwrap();
    h.set_registered_model_alias(&name, "champion", &versions[1].to_string())
        .await
        .unwrap();
    let champ = h
        .get_model_version_by_alias(&name, "champion")
        .await
        .unwrap();
    assert_eq!(champ.version_number(), Some(versions[1]));
    assert!(
        h.get_registered_model(&name)
            .await
            .unwrap()
            .aliases
            .iter()
            .any(|a| a.alias == "champion")
    );
    let found = h
        .search_model_versions(&format!("name='{name}'"))
        .await
        .unwrap();
    assert_eq!(found.len(), 2);

    h.delete_registered_model_alias(&name, "champion")
        .await
        .unwrap();
    let e = h
        .get_model_version_by_alias(&name, "champion")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = h
        .set_registered_model_alias(&name, "v3", "1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = h
        .get_model_version(&common::unique("NoSuchModel"), "1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
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
    assert!(e.is_retryable());
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

#[tokio::test]
async fn artifacts_round_trip_through_the_proxy() {
    let h = require_hook!();
    let exp = h
        .get_or_create_experiment(&common::unique("gust-art"))
        .await
        .unwrap();
    let run = h.create_run(&exp, None).await.unwrap();
    let src = std::env::temp_dir().join(common::unique("gust-art-src"));
    std::fs::create_dir_all(src.join("model/sub")).unwrap();
    std::fs::write(src.join("model/MLmodel"), "flavors: {}\n").unwrap();
    // 3 MiB of non-repeating bytes: more than one network chunk each way.
    let big: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("model/sub/weights.bin"), &big).unwrap();
    std::fs::write(src.join("notes.txt"), "héllo").unwrap();

    h.log_artifact(run.run_id(), &src.join("notes.txt"), None)
        .await
        .unwrap();
    h.log_artifacts(run.run_id(), &src.join("model"), Some("model"))
        .await
        .unwrap();

    let mut root: Vec<(String, bool)> = h
        .list_artifacts(run.run_id(), "")
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.path, f.is_dir))
        .collect();
    root.sort();
    assert_eq!(
        root,
        vec![
            ("model".to_string(), true),
            ("notes.txt".to_string(), false)
        ]
    );
    let sub = h.list_artifacts(run.run_id(), "model/sub").await.unwrap();
    assert_eq!(sub.len(), 1);
    assert_eq!(sub[0].path, "model/sub/weights.bin");
    assert_eq!(sub[0].file_size, Some(big.len() as u64));

    let dst = std::env::temp_dir().join(common::unique("gust-art-dst"));
    let model_dir = h
        .download_artifacts(run.run_id(), "model", &dst)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(model_dir.join("sub/weights.bin")).unwrap(),
        big
    );
    assert_eq!(
        std::fs::read_to_string(model_dir.join("MLmodel")).unwrap(),
        "flavors: {}\n"
    );
    let notes = h
        .download_artifacts(run.run_id(), "notes.txt", &dst)
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(notes).unwrap(), "héllo");

    let e = h
        .download_artifacts(run.run_id(), "missing.txt", &dst)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(e.context("artifact"), Some("missing.txt"));
    assert!(!dst.join("missing.gust-partial").exists());
    assert!(h.list_artifacts(run.run_id(), "../escape").await.is_err());
    run.end(RunStatus::Finished).await.unwrap();

    // The Python MLflow client reads what gust uploaded.
    if let Ok(python) = std::env::var("GUST_SERVICES_PYTHON") {
        let script = format!(
            "import mlflow, hashlib; c = mlflow.MlflowClient('{}'); \
             p = c.download_artifacts('{}', 'model/sub/weights.bin', '{}'); \
             print(hashlib.sha256(open(p, 'rb').read()).hexdigest())",
            h.base_url(),
            run.run_id(),
            dst.join("py").display()
        );
        std::fs::create_dir_all(dst.join("py")).unwrap();
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
        let ours = std::process::Command::new("sha256sum")
            .arg(model_dir.join("sub/weights.bin"))
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&ours.stdout).starts_with(&py_sha),
            "{py_sha}"
        );
    } else if common::ci() {
        panic!("CI=true but GUST_SERVICES_PYTHON is unset: eval \"$(scripts/services.sh env)\"");
    }
    let _ = std::fs::remove_dir_all(&src);
    let _ = std::fs::remove_dir_all(&dst);
}
