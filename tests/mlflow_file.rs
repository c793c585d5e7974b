//! MlflowHook on the local `file:` store (FileStore) in a temporary directory: no
//! server needed, so these always run. The last test has the real MLflow read
//! (and, where it can, `mlflow migrate-filestore`) what gust wrote.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gust::ErrorKind;
use gust::hooks::mlflow::{
    BatchLimits, FileStore, Metric, MlflowHook, MlflowStore, Param, RunStatus, RunTag,
};

fn store() -> (tempfile::TempDir, MlflowHook) {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("file://{}", dir.path().join("mlruns").display());
    let hook = MlflowHook::from_uri(&uri).unwrap();
    (dir, hook)
}

fn root(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("mlruns")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn experiments_get_or_create_is_idempotent_and_race_safe() {
    let (dir, h) = store();
    h.test_connection().await.unwrap();
    assert!(h.tracking_uri().starts_with("file:///"));
    // The Default experiment exists from the first call on, as MLflow makes it.
    let default = h.get_experiment("0").await.unwrap();
    assert_eq!(default.name, "Default");
    assert!(root(&dir).join("0/meta.yaml").is_file());
    assert!(root(&dir).join(".trash").is_dir());

    // Eight concurrent callers on one hook and four on other hooks over the same
    // directory (as separate processes would be): one experiment.
    let others: Vec<MlflowHook> = (0..4)
        .map(|_| MlflowHook::from_uri(root(&dir).to_str().unwrap()).unwrap())
        .collect();
    let mut calls = Vec::new();
    for _ in 0..8 {
        let h = h.clone();
        calls.push(tokio::spawn(async move {
            h.get_or_create_experiment("iris").await
        }));
    }
    for o in &others {
        let o = o.clone();
        calls.push(tokio::spawn(async move {
            o.get_or_create_experiment("iris").await
        }));
    }
    let mut ids = Vec::new();
    for c in calls {
        ids.push(c.await.unwrap().unwrap());
    }
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    let experiment_dirs = std::fs::read_dir(root(&dir))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .count();
    assert_eq!(experiment_dirs, 2, "Default and iris only");
    assert!(
        !std::fs::read_dir(root(&dir)).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".gust-")),
        "no staging left behind"
    );

    let exp = h.get_experiment(&ids[0]).await.unwrap();
    assert_eq!(exp.name, "iris");
    assert_eq!(exp.lifecycle_stage, "active");
    assert_eq!(
        exp.artifact_location,
        format!("{}/{}", h.tracking_uri(), ids[0])
    );
    assert_eq!(h.get_or_create_experiment("iris").await.unwrap(), ids[0]);
    let e = h.create_experiment("iris").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert_eq!(e.context("experiment"), Some("iris"));

    // Experiment names are not paths: slashes are fine, as in MLflow.
    let nested = h.get_or_create_experiment("/Users/me/exp").await.unwrap();
    assert_eq!(
        h.get_experiment(&nested).await.unwrap().name,
        "/Users/me/exp"
    );

    let e = h.get_experiment_by_name("nope").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("experiment="), "{e}");
    let e = h.get_experiment("123456").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    for bad in ["../0", "0/..", ".trash", ""] {
        let e = h.get_experiment(bad).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
    }
    assert_eq!(
        h.create_experiment("").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[tokio::test]
async fn runs_params_metrics_tags_and_history() {
    let (dir, h) = store();
    let exp = h.get_or_create_experiment("runs").await.unwrap();
    let run = h.create_run(&exp, Some("iris-rf")).await.unwrap();
    assert_eq!(run.info().status, RunStatus::Running);
    run.log_param("n_estimators", "100").await.unwrap();
    run.log_param("n_estimators", "100").await.unwrap(); // same value: fine
    let e = run.log_param("n_estimators", "200").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(e.context("param"), Some("n_estimators"));
    assert_eq!(e.context("run_id"), Some(run.run_id()));
    run.log_param("model/depth", "3").await.unwrap(); // nested key, as in MLflow
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
    assert_eq!(got.info.experiment_id, exp);
    assert_eq!(got.data.param("n_estimators"), Some("100"));
    assert_eq!(got.data.param("model/depth"), Some("3"));
    assert_eq!(got.data.metric("loss"), Some(0.2));
    assert_eq!(got.data.tag("team"), Some("07"));
    assert_eq!(got.data.tag("mlflow.runName"), Some("iris-rf"));
    // The file store keeps infinity (a SQL-backed server clamps it).
    assert_eq!(got.data.metric("weird"), Some(f64::INFINITY));

    let history = h.get_metric_history(run.run_id(), "loss").await.unwrap();
    let steps: Vec<i64> = history.iter().map(|m| m.step).collect();
    assert_eq!(steps, vec![0, 1, 2, 3, 4]);
    let weird = h.get_metric_history(run.run_id(), "weird").await.unwrap();
    assert!(weird[0].value.is_nan());
    assert!(
        h.get_metric_history(run.run_id(), "never")
            .await
            .unwrap()
            .is_empty()
    );

    // MLflow's layout, byte for byte where it matters.
    let run_dir = root(&dir).join(&exp).join(run.run_id());
    let meta = std::fs::read_to_string(run_dir.join("meta.yaml")).unwrap();
    assert!(meta.contains("status: 3\n"), "{meta}");
    assert!(meta.contains("lifecycle_stage: active\n"), "{meta}");
    assert!(
        meta.contains(&format!(
            "artifact_uri: {}/{exp}/{}/artifacts\n",
            h.tracking_uri(),
            run.run_id()
        )),
        "{meta}"
    );
    assert!(
        meta.contains(&format!("experiment_id: '{exp}'\n")),
        "{meta}"
    );
    let loss = std::fs::read_to_string(run_dir.join("metrics/loss")).unwrap();
    let first: Vec<&str> = loss.lines().next().unwrap().split(' ').collect();
    assert_eq!(first[1..], ["1.0", "0"]);
    assert_eq!(
        std::fs::read_to_string(run_dir.join("params/n_estimators")).unwrap(),
        "100"
    );
    assert_eq!(
        std::fs::read_to_string(run_dir.join("params/model/depth")).unwrap(),
        "3"
    );
    assert!(run_dir.join("artifacts").is_dir());

    let e = h.get_run(&"0".repeat(32)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.context("run_id"), Some("0".repeat(32).as_str()));
    let e = h.get_run("../../etc").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    for bad in ["../x", "a//b", "/abs", "", "x/..", "a*b"] {
        let e = h.log_metric(run.run_id(), bad, 1.0, 0).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
        let e = h.log_param(run.run_id(), bad, "1").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
    }
    // Nothing escaped the run's directory.
    assert!(!root(&dir).join(&exp).join("x").exists());
    // An unnamed run gets a name.
    let unnamed = h.create_run(&exp, None).await.unwrap();
    assert!(!unnamed.info().run_name.is_empty());
    let e = h.create_run("424242", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn log_batch_beyond_the_limits_is_split_not_rejected() {
    let (_dir, h) = store();
    let h = h.with_batch_limits(BatchLimits {
        max_metrics: 300,
        ..BatchLimits::default()
    });
    let exp = h.get_or_create_experiment("batch").await.unwrap();
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
    let history = h.get_metric_history(run.run_id(), "acc").await.unwrap();
    assert_eq!(history.len(), 2_500);
    assert_eq!(history, metrics, "every point, in order");
    assert_eq!(got.data.metric("acc"), Some(2_499.0 / 2_500.0));

    // A conflicting param inside a later chunk fails naming the chunk.
    let e = run
        .log_batch(
            &[],
            &[Param {
                key: "p7".into(),
                value: "other".into(),
            }],
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(e.context("batch"), Some("1/1"));
}

#[tokio::test]
async fn with_run_ends_failed_on_error_and_search_paginates() {
    let (_dir, h) = store();
    let exp = h.get_or_create_experiment("guard").await.unwrap();
    let ok: u32 = h
        .with_run(&exp, Some("good"), |run| async move {
            run.log_metric("accuracy", 0.9, 0).await?;
            run.log_param("model", "rf").await?;
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
    let failed = h.get_run(&failed_run).await.unwrap();
    assert_eq!(failed.info.status, RunStatus::Failed);
    assert!(failed.info.end_time.is_some());

    let panicked = tokio::spawn({
        let h = h.clone();
        let exp = exp.clone();
        async move {
            h.with_run(&exp, Some("panics"), |_run| async move {
                if true {
                    panic!("boom");
                }
                Ok(())
            })
            .await
        }
    })
    .await;
    assert!(panicked.is_err());

    for i in 0..3 {
        h.with_run(&exp, Some(&format!("extra{i}")), |_run| async { Ok(()) })
            .await
            .unwrap();
    }
    let (page, token) = h.search_runs(&[exp.as_str()], "", 2, None).await.unwrap();
    assert_eq!(page.len(), 2);
    assert!(token.is_some());
    let all = h.search_all_runs(&[exp.as_str()], "", 2).await.unwrap();
    assert_eq!(all.len(), 6);
    assert!(
        all.windows(2)
            .all(|w| w[0].info.start_time >= w[1].info.start_time),
        "newest first"
    );
    let finished = h
        .search_all_runs(&[exp.as_str()], "attributes.status = 'FINISHED'", 100)
        .await
        .unwrap();
    assert_eq!(finished.len(), 4);
    let failed = h
        .search_all_runs(&[exp.as_str()], "attributes.status = 'FAILED'", 100)
        .await
        .unwrap();
    assert_eq!(failed.len(), 2, "the error and the panic");
    let good = h
        .search_all_runs(
            &[exp.as_str()],
            "metrics.accuracy > 0.5 and params.model = 'rf' and tags.mlflow.runName = 'good'",
            100,
        )
        .await
        .unwrap();
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].info.run_name, "good");
    let e = h
        .search_runs(
            &[exp.as_str()],
            "metrics.accuracy > 0.5 or params.x = '1'",
            10,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    let e = h
        .search_runs(&[exp.as_str()], "", 10, Some("not-a-token"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registry_versions_increase_and_aliases_resolve() {
    let (dir, h) = store();
    let name = "IrisModel";
    let exp = h.get_or_create_experiment("reg").await.unwrap();
    let m1 = h.create_registered_model(name).await.unwrap();
    let m2 = h.create_registered_model(name).await.unwrap(); // idempotent
    assert_eq!(m1.name, m2.name);
    let e = h.store().create_registered_model(name).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);

    let run = h.create_run(&exp, None).await.unwrap();
    run.end(RunStatus::Finished).await.unwrap();
    let source = format!("runs:/{}/model", run.run_id());
    let mut versions = Vec::new();
    for _ in 0..2 {
        let v = h
            .create_model_version(name, &source, Some(run.run_id()))
            .await
            .unwrap();
        let v = h
            .wait_model_version_ready(name, &v.version, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(v.source, source);
        assert_eq!(v.run_id, run.run_id());
        versions.push(v.version_number().unwrap());
    }
    assert_eq!(versions, vec![1, 2]);

    // Concurrent registrations (also through a second hook, as another process)
    // never share a number.
    let other = MlflowHook::from_uri(root(&dir).to_str().unwrap()).unwrap();
    let mut calls = Vec::new();
    for i in 0..8 {
        let h = if i % 2 == 0 { h.clone() } else { other.clone() };
        let source = source.clone();
        calls.push(tokio::spawn(async move {
            h.create_model_version(name, &source, None).await
        }));
    }
    let mut numbers = Vec::new();
    for c in calls {
        numbers.push(c.await.unwrap().unwrap().version_number().unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, (3..=10).collect::<Vec<u64>>());

    h.set_registered_model_alias(name, "champion", "1")
        .await
        .unwrap();
    h.set_registered_model_alias(name, "champion", "2")
        .await
        .unwrap();
    h.set_registered_model_alias(name, "challenger", "3")
        .await
        .unwrap();
    let champ = h
        .get_model_version_by_alias(name, "champion")
        .await
        .unwrap();
    assert_eq!(champ.version_number(), Some(2));
    assert_eq!(champ.aliases, vec!["champion".to_string()]);
    let model = h.get_registered_model(name).await.unwrap();
    let mut aliases: Vec<(String, String)> = model
        .aliases
        .iter()
        .map(|a| (a.alias.clone(), a.version.clone()))
        .collect();
    aliases.sort();
    assert_eq!(
        aliases,
        vec![
            ("challenger".to_string(), "3".to_string()),
            ("champion".to_string(), "2".to_string())
        ]
    );
    let model_dir = root(&dir).join("models").join(name);
    assert_eq!(
        std::fs::read_to_string(model_dir.join("aliases/champion")).unwrap(),
        "2"
    );
    assert!(model_dir.join("version-10/meta.yaml").is_file());

    let found = h
        .search_model_versions(&format!("name='{name}'"))
        .await
        .unwrap();
    assert_eq!(found.len(), 10);
    let by_run = h
        .search_model_versions(&format!("run_id = '{}'", run.run_id()))
        .await
        .unwrap();
    assert_eq!(by_run.len(), 2);
    let e = h
        .search_model_versions("tags.stage = 'prod'")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);

    h.delete_registered_model_alias(name, "champion")
        .await
        .unwrap();
    h.delete_registered_model_alias(name, "champion")
        .await
        .unwrap(); // already gone: no-op, as in MLflow
    let e = h
        .get_model_version_by_alias(name, "champion")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.context("alias"), Some("champion"));
    let e = h
        .set_registered_model_alias(name, "v3", "1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = h
        .set_registered_model_alias(name, "prod", "99")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = h.get_model_version("NoSuchModel", "1").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.context("model"), Some("NoSuchModel"));
    let e = h.get_model_version(name, "11").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = h.get_model_version(name, "x").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = h
        .create_model_version("NoSuchModel", &source, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    for bad in ["a/b", "..", "../models", "x:y", " "] {
        let e = h.create_registered_model(bad).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
        let e = h.get_model_version(bad, "1").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
    }
}

fn write_tree(src: &Path) -> Vec<u8> {
    std::fs::create_dir_all(src.join("model/sub")).unwrap();
    std::fs::write(src.join("model/MLmodel"), "flavors: {}\n").unwrap();
    // 3 MiB of non-repeating bytes.
    let big: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("model/sub/weights.bin"), &big).unwrap();
    std::fs::write(src.join("notes.txt"), "héllo").unwrap();
    big
}

#[tokio::test]
async fn artifacts_round_trip() {
    let (dir, h) = store();
    let exp = h.get_or_create_experiment("art").await.unwrap();
    let run = h.create_run(&exp, None).await.unwrap();
    let src = dir.path().join("src");
    let big = write_tree(&src);

    h.log_artifact(run.run_id(), &src.join("notes.txt"), None)
        .await
        .unwrap();
    h.log_artifacts(run.run_id(), &src.join("model"), Some("model"))
        .await
        .unwrap();
    // The files sit where MLflow puts them.
    let art = root(&dir).join(&exp).join(run.run_id()).join("artifacts");
    assert_eq!(
        std::fs::read(art.join("model/sub/weights.bin")).unwrap(),
        big
    );

    let mut top: Vec<(String, bool)> = h
        .list_artifacts(run.run_id(), "")
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.path, f.is_dir))
        .collect();
    top.sort();
    assert_eq!(
        top,
        vec![
            ("model".to_string(), true),
            ("notes.txt".to_string(), false)
        ]
    );
    let sub = h.list_artifacts(run.run_id(), "model/sub").await.unwrap();
    assert_eq!(sub.len(), 1);
    assert_eq!(sub[0].path, "model/sub/weights.bin");
    assert_eq!(sub[0].file_size, Some(big.len() as u64));
    assert!(
        h.list_artifacts(run.run_id(), "nothing/here")
            .await
            .unwrap()
            .is_empty()
    );

    let dst = dir.path().join("dst");
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
    let everything = h
        .download_artifacts(run.run_id(), "", &dst.join("all"))
        .await
        .unwrap();
    assert!(everything.join("model/sub/weights.bin").is_file());

    let e = h
        .download_artifacts(run.run_id(), "missing.txt", &dst)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(e.context("artifact"), Some("missing.txt"));
    assert!(!dst.join("missing.txt").exists());
    for bad in ["../escape", "model/../../x"] {
        assert_eq!(
            h.list_artifacts(run.run_id(), bad)
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
        assert!(h.download_artifacts(run.run_id(), bad, &dst).await.is_err());
        assert!(
            h.log_artifact(run.run_id(), &src.join("notes.txt"), Some(bad))
                .await
                .is_err()
        );
    }
    let e = h
        .log_artifact(run.run_id(), &src.join("absent.txt"), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    run.end(RunStatus::Finished).await.unwrap();
}

/// A user's own store plugs in with `with_store`; here, a FileStore built directly.
#[tokio::test]
async fn with_store_and_from_uri_forms() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MlflowStore> = Arc::new(FileStore::new(dir.path().join("a")).unwrap());
    let h = MlflowHook::with_store(store);
    let id = h.get_or_create_experiment("x").await.unwrap();
    // The same directory through a plain path and through file:///.
    let h2 = MlflowHook::from_uri(dir.path().join("a").to_str().unwrap()).unwrap();
    assert_eq!(
        h2.get_experiment_by_name("x").await.unwrap().experiment_id,
        id
    );
    assert_eq!(h.tracking_uri(), h2.tracking_uri());
    assert_eq!(h.base_url(), h.tracking_uri());
    let rel = MlflowHook::from_uri("mlruns-not-created").unwrap();
    assert!(
        rel.tracking_uri().ends_with("/mlruns-not-created"),
        "a plain relative path"
    );
    assert!(
        !Path::new("mlruns-not-created").exists(),
        "created on first use only"
    );
    for unsupported in ["sqlite:///x.db", "databricks", "databricks://profile"] {
        assert_eq!(
            MlflowHook::from_uri(unsupported).unwrap_err().kind(),
            ErrorKind::Unsupported,
            "{unsupported}"
        );
    }
    // A file where the root should be is a configuration error.
    let file = dir.path().join("f");
    std::fs::write(&file, "").unwrap();
    let e = MlflowHook::from_uri(file.to_str().unwrap())
        .unwrap()
        .test_connection()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
}

/// The real MLflow reads the store gust wrote (and migrates it, where it can).
#[tokio::test]
async fn mlflow_reads_what_gust_wrote() {
    let Ok(python) = std::env::var("GUST_SERVICES_PYTHON") else {
        if common::ci() {
            panic!(
                "CI=true but GUST_SERVICES_PYTHON is unset: eval \"$(scripts/services.sh env)\""
            );
        }
        eprintln!("SKIPPED: GUST_SERVICES_PYTHON is not set (scripts/services.sh env)");
        return;
    };
    let (dir, h) = store();
    let exp = h
        .get_or_create_experiment("gust-cross-check")
        .await
        .unwrap();
    let src = dir.path().join("src");
    write_tree(&src);
    let run_id = h
        .with_run(&exp, Some("iris-rf"), |run| {
            let src = src.clone();
            async move {
                run.log_param("n_estimators", "100").await?;
                run.log_param("criterion", "gini").await?;
                for step in 0..3 {
                    run.log_metric("loss", 1.0 / (step as f64 + 1.0), step)
                        .await?;
                }
                run.log_metric("accuracy", 0.93, 0).await?;
                run.set_tag("team", "06").await?;
                run.hook()
                    .log_artifact(run.run_id(), &src.join("notes.txt"), None)
                    .await?;
                run.hook()
                    .log_artifacts(run.run_id(), &src.join("model"), Some("model"))
                    .await?;
                Ok(run.run_id().to_string())
            }
        })
        .await
        .unwrap();
    let failed = h
        .with_run(&exp, Some("bad"), |run| async move {
            Err::<(), _>(gust::Error::fail_now("no").with("run", run.run_id()))
        })
        .await
        .unwrap_err();
    let failed_run_id = failed.context("run_id").unwrap().to_string();
    let model = "GustIris";
    h.create_registered_model(model).await.unwrap();
    for _ in 0..2 {
        h.create_model_version(model, &format!("runs:/{run_id}/model"), Some(&run_id))
            .await
            .unwrap();
    }
    h.set_registered_model_alias(model, "champion", "2")
        .await
        .unwrap();

    let spec = serde_json::json!({
        "experiment": "gust-cross-check",
        "experiment_id": exp,
        "run_id": run_id,
        "run_name": "iris-rf",
        "failed_run_id": failed_run_id,
        "params": {"n_estimators": "100", "criterion": "gini"},
        "metrics": {"accuracy": 0.93, "loss": 1.0 / 3.0},
        "history": {"loss": [[0, 1.0], [1, 0.5], [2, 1.0 / 3.0]]},
        "tags": {"team": "06", "mlflow.runName": "iris-rf"},
        "artifact_root": [["model", true], ["notes.txt", false]],
        "artifact_files": {"notes.txt": "héllo", "model/MLmodel": "flavors: {}\n"},
        "model": model,
        "versions": [1, 2],
        "aliases": {"champion": "2"},
    });
    let spec_path = dir.path().join("expect.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mlflow_file_check.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(root(&dir))
        .arg(&spec_path)
        .env("MLFLOW_ALLOW_FILE_STORE", "true")
        .env_remove("MLFLOW_TRACKING_URI")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the MLflow check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    eprintln!("{stdout}");
}

/// gust reads a store the real MLflow wrote (and keeps writing to it).
#[tokio::test]
async fn gust_reads_what_mlflow_wrote() {
    let Ok(python) = std::env::var("GUST_SERVICES_PYTHON") else {
        if common::ci() {
            panic!(
                "CI=true but GUST_SERVICES_PYTHON is unset: eval \"$(scripts/services.sh env)\""
            );
        }
        eprintln!("SKIPPED: GUST_SERVICES_PYTHON is not set (scripts/services.sh env)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let uri = url::Url::from_directory_path(root(&dir))
        .unwrap()
        .to_string();
    let script = r#"
import json, os, sys, tempfile
import mlflow
from mlflow import MlflowClient
uri = sys.argv[1]
mlflow.set_tracking_uri(uri); mlflow.set_registry_uri(uri)
c = MlflowClient(uri, uri)
exp = c.create_experiment("py-exp")
run = c.create_run(exp, run_name="py-run")
rid = run.info.run_id
c.log_param(rid, "alpha", "0.5")
c.log_metric(rid, "rmse", 1e-05, step=0)
c.log_metric(rid, "rmse", 0.25, step=1)
c.set_tag(rid, "owner", "python")
with tempfile.TemporaryDirectory() as d:
    p = os.path.join(d, "model.txt")
    open(p, "w").write("weights")
    c.log_artifact(rid, p, "model")
c.set_terminated(rid, "KILLED")
c.create_registered_model("PyModel")
c.create_model_version("PyModel", f"runs:/{rid}/model", rid)
c.set_registered_model_alias("PyModel", "prod", "1")
print(json.dumps({"experiment_id": exp, "run_id": rid}))
"#;
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&uri)
        .current_dir(dir.path())
        .env("MLFLOW_ALLOW_FILE_STORE", "true")
        .env_remove("MLFLOW_TRACKING_URI")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let (exp_id, run_id) = (
        ids["experiment_id"].as_str().unwrap(),
        ids["run_id"].as_str().unwrap(),
    );

    let h = MlflowHook::from_uri(&uri).unwrap();
    assert_eq!(h.get_or_create_experiment("py-exp").await.unwrap(), exp_id);
    let run = h.get_run(run_id).await.unwrap();
    assert_eq!(run.info.status, RunStatus::Killed);
    assert_eq!(run.info.run_name, "py-run");
    assert_eq!(run.data.param("alpha"), Some("0.5"));
    assert_eq!(run.data.metric("rmse"), Some(0.25));
    assert_eq!(run.data.tag("owner"), Some("python"));
    let history = h.get_metric_history(run_id, "rmse").await.unwrap();
    assert_eq!(history[0].value, 1e-05);
    let files = h.list_artifacts(run_id, "model").await.unwrap();
    assert_eq!(files[0].path, "model/model.txt");
    let local = h
        .download_artifacts(run_id, "model/model.txt", &dir.path().join("dl"))
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(local).unwrap(), "weights");
    let v = h
        .get_model_version_by_alias("PyModel", "prod")
        .await
        .unwrap();
    assert_eq!((v.version.as_str(), v.run_id.as_str()), ("1", run_id));
    // And gust continues where Python stopped.
    let v2 = h
        .create_model_version("PyModel", &format!("runs:/{run_id}/model"), Some(run_id))
        .await
        .unwrap();
    assert_eq!(v2.version, "2");
    let e = h.log_param(run_id, "alpha", "0.7").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let found = h
        .search_all_runs(&[exp_id], "params.alpha = '0.5' and metrics.rmse < 1", 10)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
}
