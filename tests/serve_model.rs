//! `gust::serve::ModelServer` through a real HTTP client (reqwest) on
//! 127.0.0.1: two pipelines registered as versions 1 and 2 of a model, the
//! server started on the alias, `/health` and `/predict` (the three body
//! shapes answered exactly as `predict_rows` answers in process; missing
//! columns, bad values and malformed JSON as 400s), the alias moved and picked
//! up without a restart (by `check_now`, `POST /reload`, and the background
//! poll), and a broken version that keeps the old one serving. On an MLflow
//! file store in a temporary directory, and once against the real tracking
//! server (`AIRFLOW_CONN_MLFLOW_DEFAULT`).

mod common;

use std::path::Path;
use std::time::Duration;

use gust::hooks::mlflow::{FlavorConfig, MlflowFlavor, MlflowHook};
use gust::ml::estimator::{Estimator, TreeParams};
use gust::ml::pipeline::{FittedPipeline, Pipeline};
use gust::ml::preprocessing::{ImputeStrategy, RobustScaler, SimpleImputer};
use gust::ml::{Dataset, TargetKind};
use gust::serve::{ModelServer, Reload};
use gust::{ErrorKind, Result};
use serde_json::{Map, Value, json};

type Row = Map<String, Value>;

/// 150 rows of three overlapping classes over `a` and `b`, with a few NULLs.
fn rows() -> Vec<Row> {
    (0..150u64)
        .map(|i| {
            let class = i % 3;
            let a = class as f64 * 3.0 + ((i * 7919) % 13) as f64 / 4.0;
            let b = if i % 17 == 0 {
                Value::Null
            } else {
                json!((i % 11) as f64 - class as f64 * 2.0)
            };
            json!({"a": a, "b": b, "label": format!("class_{class}")})
                .as_object()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// Version 1: a stump (two leaves for three classes).
fn stump(data: &Dataset) -> FittedPipeline {
    let mut params = TreeParams::default();
    params.max_depth = Some(1);
    Pipeline::new(Estimator::DecisionTreeClassifier(params))
        .step(SimpleImputer::new(ImputeStrategy::Median))
        .fit(data)
        .unwrap()
}

/// Version 2: a full tree on robust-scaled columns.
fn tree(data: &Dataset) -> FittedPipeline {
    Pipeline::new(Estimator::decision_tree_classifier())
        .step(SimpleImputer::new(ImputeStrategy::Median))
        .step(RobustScaler::new())
        .fit(data)
        .unwrap()
}

/// A model of another flavor, to register where a gust pipeline is expected.
struct NotAPipeline;

impl MlflowFlavor for NotAPipeline {
    const FLAVOR_NAME: &'static str = "something_else";

    fn save_flavor(&self, dir: &Path) -> Result<FlavorConfig> {
        std::fs::write(dir.join("model.txt"), "not a pipeline")?;
        let mut conf = FlavorConfig::new();
        conf.insert("data".into(), "model.txt".into());
        Ok(conf)
    }

    fn load_flavor(_dir: &Path, _config: &FlavorConfig) -> Result<Self> {
        Ok(NotAPipeline)
    }
}

/// Logs `model` in a new run of `experiment_id` and registers it as the
/// next version of `name`; returns (version, run id).
async fn register<M: MlflowFlavor>(
    mlflow: &MlflowHook,
    experiment_id: &str,
    name: &str,
    model: &M,
) -> (String, String) {
    let run = mlflow.create_run(experiment_id, None).await.unwrap();
    let info = mlflow
        .log_model(run.run_id(), "model", model, None)
        .await
        .unwrap();
    run.end(gust::hooks::mlflow::RunStatus::Finished)
        .await
        .unwrap();
    mlflow.create_registered_model(name).await.unwrap();
    let v = mlflow
        .create_model_version(name, &info.model_uri, Some(run.run_id()))
        .await
        .unwrap();
    mlflow
        .wait_model_version_ready(name, &v.version, Duration::from_secs(60))
        .await
        .unwrap();
    (v.version, run.run_id().to_string())
}

fn file_store() -> (tempfile::TempDir, MlflowHook) {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("file://{}", dir.path().join("mlruns").display());
    (dir, MlflowHook::from_uri(&uri).unwrap())
}

/// A running server: its base URL and what stops it.
struct Running {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Running {
    async fn start(server: ModelServer) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve_with_shutdown(listener, async {
            let _ = stopped.await;
        }));
        Running {
            base,
            stop: Some(stop),
            task,
        }
    }

    /// Stops it gracefully; the serve future returns Ok.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap().unwrap();
    }
}

async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = client.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn post(client: &reqwest::Client, url: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, value)
}

/// `rows` as the three body shapes of `/predict`.
fn bodies(rows: &[Row]) -> Vec<(&'static str, String)> {
    let columns: Vec<String> = rows[0].keys().cloned().collect();
    let data: Vec<Vec<Value>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| r[c].clone()).collect())
        .collect();
    vec![
        ("records", json!({ "dataframe_records": rows }).to_string()),
        (
            "split",
            json!({"dataframe_split": {"columns": columns, "data": data}}).to_string(),
        ),
        ("array", Value::from(rows.to_vec()).to_string()),
    ]
}

/// Asserts `/predict` answers `rows`, in every shape, exactly as `model`
/// predicts them in process, from `version`.
async fn assert_predicts(
    client: &reqwest::Client,
    base: &str,
    rows: &[Row],
    model: &FittedPipeline,
    version: &str,
) {
    let want = serde_json::to_value(model.predict_rows(rows).unwrap()).unwrap();
    for (shape, body) in bodies(rows) {
        let (status, got) = post(client, &format!("{base}/predict"), body).await;
        assert_eq!(status, 200, "{shape}: {got}");
        assert_eq!(got["predictions"], want, "{shape}, {} rows", rows.len());
        assert_eq!(got["model_version"], version, "{shape}");
    }
}

/// The whole scenario on one store: versions 1 and 2 of `name`, served,
/// swapped, and a broken version 3 that does not replace version 2.
async fn serve_scenario(mlflow: MlflowHook, name: &str) {
    let rows = rows();
    let data = Dataset::from_rows(&rows, &["a", "b"], "label", TargetKind::Classes).unwrap();
    let (v1, v2) = (stump(&data), tree(&data));
    // The two versions must tell apart on these rows, or the swap proves nothing.
    assert_ne!(
        v1.predict_rows(&rows).unwrap(),
        v2.predict_rows(&rows).unwrap()
    );
    let experiment = mlflow
        .get_or_create_experiment(&common::unique("gust-serve"))
        .await
        .unwrap();
    let (version1, run1) = register(&mlflow, &experiment, name, &v1).await;
    assert_eq!(version1, "1");
    mlflow
        .set_registered_model_alias(name, "champion", "1")
        .await
        .unwrap();

    // No polling here: the swaps below happen when the test says.
    let server = ModelServer::builder(mlflow.clone(), name)
        .no_polling()
        .reload_endpoint(true)
        .offload_above(1024) // one row inline, larger bodies on a blocking thread
        .start()
        .await
        .unwrap();
    assert_eq!(server.current().version(), "1");
    let running = Running::start(server.clone()).await;
    let base = running.base.clone();
    let client = reqwest::Client::new();

    let (status, health) = get_json(&client, &format!("{base}/health")).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["model"], name);
    assert_eq!(health["alias"], "champion");
    assert_eq!(health["version"], "1");
    assert_eq!(health["run_id"], run1.as_str());
    assert_eq!(health["last_reload_error"], Value::Null);

    // One row, a few, and 1,000 (with the label as an extra column, ignored).
    let thousand: Vec<Row> = rows.iter().cycle().take(1000).cloned().collect();
    let features_only: Vec<Row> = rows[..5]
        .iter()
        .map(|r| {
            r.iter()
                .filter(|(k, _)| *k != "label")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .collect();
    assert_predicts(&client, &base, &rows[..1], &v1, "1").await;
    assert_predicts(&client, &base, &features_only, &v1, "1").await;
    assert_predicts(&client, &base, &thousand, &v1, "1").await;

    // Wrong columns: 400, naming the missing ones.
    let (status, e) = post(
        &client,
        &format!("{base}/predict"),
        json!({"dataframe_records": [{"a": 1.0, "B": 2.0}, {"a": 2.0, "c": 1.0}]}).to_string(),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error_code"], "BAD_REQUEST");
    assert_eq!(e["missing_columns"], json!(["b"]));
    assert_eq!(e["expected_columns"], json!(["a", "b"]));
    assert!(e["message"].as_str().unwrap().contains("\"b\""), "{e}");
    let (status, e) = post(
        &client,
        &format!("{base}/predict"),
        json!({"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}).to_string(),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["missing_columns"], json!(["a", "b"]));
    // A value the model cannot take.
    let (status, e) = post(
        &client,
        &format!("{base}/predict"),
        json!([{"a": "three", "b": 1.0}]).to_string(),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error_code"], "BAD_REQUEST");
    assert!(e.get("missing_columns").is_none(), "{e}");
    // Malformed JSON, a shape that is not one of the three, no rows.
    for bad in [
        "{\"dataframe_records\": [",
        "not json",
        "{\"instances\": [{\"a\": 1}]}",
        "[]",
    ] {
        let (status, e) = post(&client, &format!("{base}/predict"), bad).await;
        assert_eq!(status, 400, "{bad}: {e}");
        assert_eq!(e["error_code"], "MALFORMED_REQUEST", "{bad}");
        assert_eq!(e["model_version"], "1", "{bad}");
    }

    // Version 2 registered and the alias moved: nothing changes until a check.
    let (version2, run2) = register(&mlflow, &experiment, name, &v2).await;
    assert_eq!(version2, "2");
    mlflow
        .set_registered_model_alias(name, "champion", "2")
        .await
        .unwrap();
    assert_predicts(&client, &base, &rows[..3], &v1, "1").await;
    assert_eq!(
        server.check_now().await.unwrap(),
        Reload::Swapped {
            from: "1".into(),
            to: "2".into()
        }
    );
    let (_, health) = get_json(&client, &format!("{base}/health")).await;
    assert_eq!(health["version"], "2", "{health}");
    assert_eq!(health["run_id"], run2.as_str());
    assert_predicts(&client, &base, &rows, &v2, "2").await;
    assert_predicts(&client, &base, &thousand, &v2, "2").await;
    // A second check finds nothing new.
    let (status, r) = post(&client, &format!("{base}/reload"), "").await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        r,
        json!({"reloaded": false, "version": "2", "previous_version": "2"})
    );

    // Version 3's source has no model: the reload fails and version 2 stays.
    let v3 = mlflow
        .create_model_version(name, &format!("runs:/{run2}/no-model-here"), Some(&run2))
        .await
        .unwrap();
    mlflow
        .set_registered_model_alias(name, "champion", &v3.version)
        .await
        .unwrap();
    let (status, e) = post(&client, &format!("{base}/reload"), "").await;
    assert_eq!(status, 502, "{e}");
    assert_eq!(e["error_code"], "RELOAD_FAILED");
    assert_eq!(e["model_version"], "2");
    let (_, health) = get_json(&client, &format!("{base}/health")).await;
    assert_eq!(health["version"], "2", "{health}");
    let last = health["last_reload_error"].as_str().unwrap_or_default();
    assert!(
        last.contains("MLmodel") && last.contains("serving_version=2"),
        "{health}"
    );
    assert_predicts(&client, &base, &rows[..4], &v2, "2").await;
    let e = server.check_now().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(e.context("model"), Some(name));
    assert_eq!(e.context("version"), Some(v3.version.as_str()));

    // Back to a good version: the error clears.
    mlflow
        .set_registered_model_alias(name, "champion", "1")
        .await
        .unwrap();
    assert_eq!(server.check_now().await.unwrap().version(), "1");
    assert!(server.last_reload_error().is_none());
    let (_, health) = get_json(&client, &format!("{base}/health")).await;
    assert_eq!(health["version"], "1", "{health}");
    assert_eq!(health["last_reload_error"], Value::Null);

    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_and_swaps_on_the_file_store() {
    let (_dir, mlflow) = file_store();
    serve_scenario(mlflow, "Served").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_and_swaps_on_the_tracking_server() {
    let conn = require_conn!("mlflow_default");
    let mlflow = MlflowHook::from_connection(&conn).unwrap();
    serve_scenario(mlflow, &common::unique("GustServed")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_poll_picks_up_a_new_champion() {
    let (_dir, mlflow) = file_store();
    let rows = rows();
    let data = Dataset::from_rows(&rows, &["a", "b"], "label", TargetKind::Classes).unwrap();
    let experiment = mlflow.get_or_create_experiment("poll").await.unwrap();
    register(&mlflow, &experiment, "Polled", &stump(&data)).await;
    register(&mlflow, &experiment, "Polled", &tree(&data)).await;
    mlflow
        .set_registered_model_alias("Polled", "prod", "1")
        .await
        .unwrap();
    let server = ModelServer::builder(mlflow.clone(), "Polled")
        .alias("prod")
        .poll_interval(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let running = Running::start(server).await;
    let client = reqwest::Client::new();
    let health = format!("{}/health", running.base);
    assert_eq!(get_json(&client, &health).await.1["version"], "1");
    mlflow
        .set_registered_model_alias("Polled", "prod", "2")
        .await
        .unwrap();
    // Waits for the swap; the bound only turns a poll that never comes into a
    // failure instead of a hung test.
    let mut seen = Value::Null;
    for _ in 0..3000 {
        seen = get_json(&client, &health).await.1;
        if seen["version"] == "2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen["version"], "2", "the poll never swapped: {seen}");
    assert_eq!(seen["alias"], "prod");
    running.stop().await;
}

#[tokio::test]
async fn start_fails_on_an_unset_alias_or_a_model_that_is_not_a_pipeline() {
    let (_dir, mlflow) = file_store();
    let rows = rows();
    let data = Dataset::from_rows(&rows, &["a", "b"], "label", TargetKind::Classes).unwrap();
    let experiment = mlflow.get_or_create_experiment("start").await.unwrap();
    register(&mlflow, &experiment, "Start", &stump(&data)).await;

    // No alias set yet.
    let e = ModelServer::builder(mlflow.clone(), "Start")
        .start()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(e.operation(), "serve.load", "{e}");
    assert_eq!(e.context("model"), Some("Start"));
    assert_eq!(e.context("alias"), Some("champion"));

    // A model that does not exist.
    let e = ModelServer::builder(mlflow.clone(), "Nobody")
        .start()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");

    // An alias MLflow refuses, and a zero poll interval.
    let e = ModelServer::builder(mlflow.clone(), "Start")
        .alias("latest")
        .start()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    mlflow
        .set_registered_model_alias("Start", "champion", "1")
        .await
        .unwrap();
    let e = ModelServer::builder(mlflow.clone(), "Start")
        .poll_interval(Duration::ZERO)
        .start()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");

    // The champion is another flavor.
    let (v, _) = register(&mlflow, &experiment, "Start", &NotAPipeline).await;
    mlflow
        .set_registered_model_alias("Start", "champion", &v)
        .await
        .unwrap();
    let e = ModelServer::builder(mlflow.clone(), "Start")
        .start()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("something_else"), "{e}");
    assert_eq!(e.context("version"), Some(v.as_str()));

    // The same models served fine once the alias points at a pipeline.
    mlflow
        .set_registered_model_alias("Start", "champion", "1")
        .await
        .unwrap();
    let server = ModelServer::builder(mlflow, "Start")
        .no_polling()
        .start()
        .await
        .unwrap();
    assert_eq!(server.current().version(), "1");
    assert_eq!(server.current().model_uri(), "models:/Start/1");
}

#[tokio::test]
async fn a_body_above_the_limit_is_413() {
    let (_dir, mlflow) = file_store();
    let rows = rows();
    let data = Dataset::from_rows(&rows, &["a", "b"], "label", TargetKind::Classes).unwrap();
    let experiment = mlflow.get_or_create_experiment("limit").await.unwrap();
    register(&mlflow, &experiment, "Limited", &stump(&data)).await;
    mlflow
        .set_registered_model_alias("Limited", "champion", "1")
        .await
        .unwrap();
    let server = ModelServer::builder(mlflow, "Limited")
        .no_polling()
        .body_limit(256)
        .start()
        .await
        .unwrap();
    let running = Running::start(server).await;
    let client = reqwest::Client::new();
    let small = json!([{"a": 1.0, "b": 2.0}]).to_string();
    let big = Value::from(rows.clone()).to_string();
    assert!(big.len() > 256);
    let url = format!("{}/predict", running.base);
    assert_eq!(post(&client, &url, small).await.0, 200);
    let r = client.post(&url).body(big).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    running.stop().await;
}
