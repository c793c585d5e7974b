//! MlflowHook on the local `file:` store (FileStore) in a temporary directory: no
//! server needed, so these always run. The scenarios shared with the tracking
//! server are in tests/common/mlflow_scenarios.rs; here each is followed by what
//! only the file store has (MLflow's on-disk layout, other processes on the same
//! directory). The last tests have the real MLflow read (and, where it can,
//! `mlflow migrate-filestore`) what gust wrote, and gust read what MLflow wrote.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::mlflow_scenarios::{self as scenarios, Store};
use gust::ErrorKind;
use gust::hooks::mlflow::{FileStore, MlflowHook, MlflowStore, RunStatus};

fn store() -> (tempfile::TempDir, MlflowHook) {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("file://{}", dir.path().join("mlruns").display());
    let hook = MlflowHook::from_uri(&uri).unwrap();
    (dir, hook)
}

fn root(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("mlruns")
}

/// Another hook on the same directory, as another process would have.
fn other_hook(dir: &tempfile::TempDir) -> MlflowHook {
    MlflowHook::from_uri(root(dir).to_str().unwrap()).unwrap()
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
    let mut racers = vec![h.clone(); 8];
    racers.extend((0..4).map(|_| other_hook(&dir)));
    let (_, id) =
        scenarios::experiments_get_or_create_is_idempotent_and_race_safe(&h, &racers).await;
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
    assert_eq!(
        experiment_dirs, 3,
        "Default, the raced one and the scenario's nested one only"
    );
    assert!(
        !std::fs::read_dir(root(&dir)).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".gust-")),
        "no staging left behind"
    );
    assert_eq!(
        h.get_experiment(&id).await.unwrap().artifact_location,
        format!("{}/{id}", h.tracking_uri())
    );
    let e = h.get_experiment("123456").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn runs_params_metrics_tags_and_history() {
    let (dir, h) = store();
    let (exp, run_id) = scenarios::runs_params_metrics_tags_and_history(&h, Store::FILE).await;

    // The history comes back in the order it was logged.
    let history = h.get_metric_history(&run_id, "loss").await.unwrap();
    let steps: Vec<i64> = history.iter().map(|m| m.step).collect();
    assert_eq!(steps, vec![0, 1, 2, 3, 4]);

    // MLflow's layout, byte for byte where it matters.
    let run_dir = root(&dir).join(&exp).join(&run_id);
    let meta = std::fs::read_to_string(run_dir.join("meta.yaml")).unwrap();
    assert!(meta.contains("status: 3\n"), "{meta}");
    assert!(meta.contains("lifecycle_stage: active\n"), "{meta}");
    assert!(
        meta.contains(&format!(
            "artifact_uri: {}/{exp}/{run_id}/artifacts\n",
            h.tracking_uri(),
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

    // A run id is a directory name here: one that is a path is refused (a server
    // just does not find it).
    let e = h.get_run("../../etc").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    // Nothing the scenario's bad keys named escaped the run's directory.
    assert!(!root(&dir).join(&exp).join("x").exists());
}

#[tokio::test]
async fn log_batch_beyond_the_limits_is_split_not_rejected() {
    let (_dir, h) = store();
    scenarios::log_batch_beyond_the_limits_is_split_not_rejected(&h).await;
}

#[tokio::test]
async fn with_run_ends_failed_on_error_and_search_paginates() {
    let (_dir, h) = store();
    scenarios::with_run_ends_failed_on_error_and_search_paginates(&h, Store::FILE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registry_versions_increase_and_aliases_resolve() {
    let (dir, h) = store();
    // Concurrent registrations also go through a second hook, as another process.
    let other = other_hook(&dir);
    let racers: Vec<MlflowHook> = (0..8)
        .map(|i| if i % 2 == 0 { h.clone() } else { other.clone() })
        .collect();
    let (name, _) =
        scenarios::registry_versions_increase_and_aliases_resolve(&h, &racers, Store::FILE).await;
    let model_dir = root(&dir).join("models").join(&name);
    // An alias is a file holding its version (the scenario moved `champion` to 2,
    // then deleted it, and left `challenger` on 3).
    assert_eq!(
        std::fs::read_to_string(model_dir.join("aliases/challenger")).unwrap(),
        "3"
    );
    assert!(!model_dir.join("aliases/champion").exists());
    assert!(model_dir.join("version-10/meta.yaml").is_file());
    // The file store's search knows name and run_id only (a server also
    // filters on tags).
    let e = h
        .search_model_versions("tags.stage = 'prod'")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn artifacts_round_trip() {
    let (dir, h) = store();
    let art = scenarios::artifacts_round_trip(&h, dir.path()).await;
    // The files sit where MLflow puts them.
    let stored = root(&dir)
        .join(&art.exp)
        .join(&art.run_id)
        .join("artifacts");
    assert_eq!(
        std::fs::read(stored.join("model/sub/weights.bin")).unwrap(),
        art.big
    );
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
    let Some(python) = common::python() else {
        return;
    };
    let (dir, h) = store();
    let exp = h
        .get_or_create_experiment("gust-cross-check")
        .await
        .unwrap();
    let src = dir.path().join("src");
    scenarios::write_tree(&src);
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
    let Some(python) = common::python() else {
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

/// The scenario suite on `gust::testing::FaultyMlflow::temporary()`, the
/// MLflow of unit tests, with no fault scripted: the conformance of the fake
/// (tests/mlflow.rs runs the same scenarios on the tracking server).
#[cfg(feature = "testing")]
mod faulty_temporary {
    use std::sync::Arc;

    use gust::hooks::mlflow::MlflowHook;
    use gust::testing::{FaultyMlflow, MlflowOp};

    use super::{Store, scenarios};

    fn hook() -> (Arc<FaultyMlflow>, MlflowHook) {
        let store = Arc::new(FaultyMlflow::temporary().unwrap());
        (store.clone(), MlflowHook::with_store(store))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn experiments() {
        let (_, h) = hook();
        let racers = vec![h.clone(); 8];
        scenarios::experiments_get_or_create_is_idempotent_and_race_safe(&h, &racers).await;
    }

    #[tokio::test]
    async fn runs_and_batches() {
        let (store, h) = hook();
        scenarios::runs_params_metrics_tags_and_history(&h, Store::FILE).await;
        scenarios::log_batch_beyond_the_limits_is_split_not_rejected(&h).await;
        scenarios::with_run_ends_failed_on_error_and_search_paginates(&h, Store::FILE).await;
        assert!(
            store.calls(MlflowOp::LogBatch) > 1,
            "the calls went through the fake"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn registry() {
        let (_, h) = hook();
        let racers = vec![h.clone(); 8];
        scenarios::registry_versions_increase_and_aliases_resolve(&h, &racers, Store::FILE).await;
    }

    #[tokio::test]
    async fn artifacts() {
        let (_, h) = hook();
        let work = tempfile::tempdir().unwrap();
        scenarios::artifacts_round_trip(&h, work.path()).await;
    }

    #[tokio::test]
    async fn its_directory_goes_with_it() {
        let store = FaultyMlflow::temporary().unwrap();
        let root = store.inner().root().to_path_buf();
        assert!(root.is_dir());
        drop(store);
        assert!(!root.exists());
    }
}

/// Tags given to `create_run_with_tags` are on the run from its creation (the
/// file store writes them before `meta.yaml`, which makes the run visible);
/// a `mlflow.runName` tag names a run given no name, as in MLflow.
#[tokio::test]
async fn runs_carry_their_creation_tags() {
    use gust::hooks::mlflow::RunTag;
    let (_dir, h) = store();
    let exp = h.get_or_create_experiment("tagged").await.unwrap();
    let tag = |k: &str, v: &str| RunTag {
        key: k.into(),
        value: v.into(),
    };
    let run = h
        .create_run_with_tags(&exp, Some("named"), &[tag("gust.task_id", "train")])
        .await
        .unwrap();
    let got = h.get_run(run.run_id()).await.unwrap();
    assert_eq!(got.data.tag("gust.task_id"), Some("train"));
    assert_eq!(got.info.run_name, "named");
    let (found, _) = h
        .search_runs(&[exp.as_str()], "tags.`gust.task_id` = 'train'", 10, None)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let by_tag = h
        .create_run_with_tags(&exp, None, &[tag("mlflow.runName", "from-tag")])
        .await
        .unwrap();
    assert_eq!(by_tag.info().run_name, "from-tag");
    // A bad key is refused before anything is written: no half-made run.
    let e = h
        .create_run_with_tags(&exp, None, &[tag("../escape", "x")])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let all = h.search_all_runs(&[exp.as_str()], "", 100).await.unwrap();
    assert_eq!(all.len(), 2);
}

/// `TrainModel` retried on the MLflow of unit tests (`FaultyMlflow`, a file
/// store with scripted faults).
#[cfg(all(feature = "ml", feature = "testing"))]
mod train_model_retries {
    use std::time::Duration;

    use chrono::TimeZone;
    use gust::hooks::mlflow::{MlflowHook, Run, RunStatus, RunTag};
    use gust::ml::Columns;
    use gust::ml::estimator::Estimator;
    use gust::ml::pipeline::Pipeline;
    use gust::operators::ml::{TrainModel, TrainingData};
    use gust::prelude::*;
    use gust::testing::{Fault, FaultyMlflow, MlflowOp};
    use serde_json::json;
    use std::sync::Arc;

    /// A DAG `dag_id`: `extract` returns 60 rows of two classes, `train` fits
    /// a tree on them into experiment `experiment`, with `retries`.
    fn dag(dag_id: &str, mlflow: &MlflowHook, experiment: &str, retries: u32) -> Dag {
        let rows: Vec<serde_json::Value> = (0..60)
            .map(|i| json!({"a": f64::from(i % 10) + f64::from(i % 2) * 20.0, "label": format!("c{}", i % 2)}))
            .collect();
        let mut dag = Dag::builder(dag_id);
        let extract = dag.add(Task::from_fn("extract", move |_| {
            let rows = rows.clone();
            async move { Ok(json!(rows)) }
        }));
        let train = dag.add(
            Task::new(
                "train",
                TrainModel::new(
                    TrainingData::upstream("extract"),
                    Columns::new("label").numeric(["a"]),
                    Pipeline::new(Estimator::decision_tree_classifier()),
                )
                .with_mlflow(mlflow.clone())
                .experiment(experiment),
            )
            .with_options(
                TaskOptions::default()
                    .retries(retries)
                    .retry_delay(Duration::from_millis(10)),
            ),
        );
        let _ = &extract >> &train;
        dag.build().unwrap()
    }

    fn day() -> chrono::DateTime<chrono_tz::Tz> {
        chrono_tz::UTC
            .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
            .unwrap()
    }

    /// The runs of `experiment` tagged with task `train` of DAG `dag_id`.
    async fn instance_runs(mlflow: &MlflowHook, experiment: &str, dag_id: &str) -> Vec<Run> {
        let exp = mlflow.get_experiment_by_name(experiment).await.unwrap();
        let runs = mlflow
            .search_all_runs(&[exp.experiment_id.as_str()], "", 100)
            .await
            .unwrap();
        runs.into_iter()
            .filter(|r| {
                r.data.tag("gust.dag_id") == Some(dag_id)
                    && r.data.tag("gust.task_id") == Some("train")
            })
            .collect()
    }

    fn with_status(runs: &[Run], status: RunStatus) -> Vec<String> {
        runs.iter()
            .filter(|r| r.info.status == status)
            .map(|r| r.info.run_id.clone())
            .collect()
    }

    /// A train task whose first try created its run, then lost the server:
    /// the model upload failed, and so did the call that would have ended
    /// the run `FAILED` — the run is left `RUNNING`, as by a killed worker.
    /// The retry ends that run `FAILED` (found by the task-instance tags set
    /// when it was created) and logs its own: one `FINISHED` run, no
    /// `RUNNING` orphan.
    #[tokio::test]
    async fn a_retried_training_leaves_one_finished_run_and_no_running_orphan() {
        let store = Arc::new(
            FaultyMlflow::temporary()
                .unwrap()
                .fail_nth(
                    MlflowOp::UploadArtifact,
                    1,
                    Fault::error(ErrorKind::Unavailable),
                )
                .fail_nth(MlflowOp::UpdateRun, 1, Fault::error(ErrorKind::Unavailable)),
        );
        let mlflow = MlflowHook::with_store(store.clone());
        let report = dag("train_retry", &mlflow, "train-retry", 1)
            .test(day())
            .await;
        assert!(report.is_success(), "{report}");
        assert_eq!(report.task("train").unwrap().tries, 2);
        assert_eq!(store.calls(MlflowOp::CreateRun), 2);
        let run_id = report.xcom("train").unwrap()["run_id"]
            .as_str()
            .unwrap()
            .to_string();

        let runs = instance_runs(&mlflow, "train-retry", "train_retry").await;
        assert_eq!(
            with_status(&runs, RunStatus::Running),
            Vec::<String>::new(),
            "no RUNNING orphan: {runs:?}"
        );
        assert_eq!(
            with_status(&runs, RunStatus::Finished),
            std::slice::from_ref(&run_id)
        );
        let failed = with_status(&runs, RunStatus::Failed);
        assert_eq!(failed.len(), 1, "{runs:?}");
        // Each run says which try made it; the earlier one got an end time.
        let earlier = runs.iter().find(|r| r.info.run_id == failed[0]).unwrap();
        assert_eq!(earlier.data.tag("gust.try_number"), Some("1"));
        assert!(earlier.info.end_time.is_some());
        let ours = runs.iter().find(|r| r.info.run_id == run_id).unwrap();
        assert_eq!(ours.data.tag("gust.try_number"), Some("2"));
        assert_eq!(ours.data.tag("gust.run_id"), Some(report.run_id.as_str()));
    }

    /// The same task instance run again after it succeeded (a cleared task):
    /// its `FINISHED` run is history and stays; the re-run adds one of its
    /// own. A `RUNNING` run of another task in the same experiment, or of the
    /// same task in another DAG run, is never touched.
    #[tokio::test]
    async fn a_rerun_keeps_the_finished_run_and_leaves_other_runs_alone() {
        let store = Arc::new(FaultyMlflow::temporary().unwrap());
        let mlflow = MlflowHook::with_store(store.clone());
        let exp = mlflow.get_or_create_experiment("rerun").await.unwrap();
        let tag = |k: &str, v: &str| RunTag {
            key: k.into(),
            value: v.into(),
        };
        let other_task = mlflow
            .create_run_with_tags(
                &exp,
                Some("other-task"),
                &[tag("gust.dag_id", "rerun"), tag("gust.task_id", "other")],
            )
            .await
            .unwrap();
        let other_dag_run = mlflow
            .create_run_with_tags(
                &exp,
                Some("other-dag-run"),
                &[
                    tag("gust.dag_id", "rerun"),
                    tag("gust.task_id", "train"),
                    tag("gust.run_id", "manual__2020-01-01T00:00:00+00:00"),
                ],
            )
            .await
            .unwrap();
        let dag = dag("rerun", &mlflow, "rerun", 0);
        let first = dag.test(day()).await;
        let second = dag.test(day()).await;
        assert!(
            first.is_success() && second.is_success(),
            "{first}\n{second}"
        );
        assert_eq!(first.run_id, second.run_id, "the same task instance");
        let runs: Vec<Run> = instance_runs(&mlflow, "rerun", "rerun")
            .await
            .into_iter()
            .filter(|r| r.data.tag("gust.run_id") == Some(first.run_id.as_str()))
            .collect();
        assert_eq!(with_status(&runs, RunStatus::Finished).len(), 2, "{runs:?}");
        assert_eq!(runs.len(), 2, "{runs:?}");
        for other in [other_task, other_dag_run] {
            assert_eq!(
                mlflow.get_run(other.run_id()).await.unwrap().info.status,
                RunStatus::Running
            );
        }
    }
}
