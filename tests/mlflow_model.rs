//! The MLflow model format against the real MLflow server: a smartcore random
//! forest logged with `log_model`, registered, and loaded back through every
//! model URI form; MLflow's Python client reads the `MLmodel` gust wrote.

mod common;

use std::time::Duration;

use gust::ErrorKind;
use gust::hooks::mlflow::{
    ColType, LOG_MODEL_HISTORY_TAG, MlflowHook, ModelSignature, RunStatus, SMARTCORE_FLAVOR, Schema,
};
use smartcore::ensemble::random_forest_classifier::{
    RandomForestClassifier, RandomForestClassifierParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::linear_regression::LinearRegression;

type Forest = RandomForestClassifier<f64, i64, DenseMatrix<f64>, Vec<i64>>;

const FEATURES: [&str; 4] = ["sepal_length", "sepal_width", "petal_length", "petal_width"];

fn hook() -> Option<MlflowHook> {
    let conn = common::server_conn("mlflow_default")?;
    Some(MlflowHook::from_connection(&conn).expect("hook"))
}

/// Three iris-like classes around fixed centres, deterministic.
fn dataset() -> (DenseMatrix<f64>, Vec<i64>) {
    let centres = [
        [5.0, 3.4, 1.5, 0.2],
        [5.9, 2.8, 4.3, 1.3],
        [6.6, 3.0, 5.6, 2.0],
    ];
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for (class, c) in centres.iter().enumerate() {
        for i in 0..15 {
            let jitter = |k: usize| ((i * 7 + k * 3) % 11) as f64 / 11.0 - 0.5;
            rows.push((0..4).map(|k| c[k] + 0.6 * jitter(k)).collect::<Vec<f64>>());
            labels.push(class as i64);
        }
    }
    (DenseMatrix::from_2d_vec(&rows).unwrap(), labels)
}

fn signature() -> ModelSignature {
    let cols: Vec<(&str, ColType)> = FEATURES.iter().map(|f| (*f, ColType::Double)).collect();
    ModelSignature::from_columns(&cols, Some(Schema::unnamed(ColType::Long)))
}

/// Loads the forest at `uri` and predicts the training set.
async fn predict_with(h: &MlflowHook, uri: String) -> Vec<i64> {
    let m: Forest = h
        .load_model(&uri)
        .await
        .unwrap_or_else(|e| panic!("{uri}: {e}"));
    m.predict(&dataset().0).unwrap()
}

#[tokio::test]
async fn logged_models_load_through_every_uri_form() {
    let Some(h) = hook() else { return };
    let (x, y) = dataset();
    // Two forests that predict differently, so each load is told apart.
    let deep = Forest::fit(
        &x,
        &y,
        RandomForestClassifierParameters::default()
            .with_n_trees(10)
            .with_seed(7),
    )
    .unwrap();
    let stumps = Forest::fit(
        &x,
        &y,
        RandomForestClassifierParameters::default()
            .with_n_trees(3)
            .with_max_depth(1)
            .with_seed(7),
    )
    .unwrap();
    let deep_pred = deep.predict(&x).unwrap();
    let stump_pred = stumps.predict(&x).unwrap();
    assert_ne!(
        deep_pred, stump_pred,
        "the two models must be distinguishable"
    );

    let exp = h
        .get_or_create_experiment(&common::unique("gust-model"))
        .await
        .unwrap();
    let run1 = h.create_run(&exp, Some("deep")).await.unwrap();
    let info1 = h
        .log_model(run1.run_id(), "model", &deep, Some(signature()))
        .await
        .unwrap();
    assert_eq!(info1.model_uri, format!("runs:/{}/model", run1.run_id()));
    assert_eq!(info1.mlmodel.run_id.as_deref(), Some(run1.run_id()));
    assert_eq!(
        info1.mlmodel.flavor(SMARTCORE_FLAVOR).unwrap()["model_type"],
        "smartcore::ensemble::random_forest_classifier::RandomForestClassifier"
    );
    // A second model in the same run: the history tag lists both, as MLflow's does.
    let extra = h
        .log_model(run1.run_id(), "models/stumps", &stumps, None)
        .await
        .unwrap();
    run1.end(RunStatus::Finished).await.unwrap();
    let tag = h.get_run(run1.run_id()).await.unwrap();
    let history: Vec<serde_json::Value> =
        serde_json::from_str(tag.data.tag(LOG_MODEL_HISTORY_TAG).expect("history tag")).unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(
        history[0]["model_uuid"].as_str(),
        info1.mlmodel.model_uuid.as_deref()
    );
    assert_eq!(history[1]["artifact_path"], "models/stumps");
    assert!(history[0]["flavors"][SMARTCORE_FLAVOR].is_object());

    let run2 = h.create_run(&exp, Some("stumps")).await.unwrap();
    let info2 = h
        .log_model(run2.run_id(), "model", &stumps, Some(signature()))
        .await
        .unwrap();
    run2.end(RunStatus::Finished).await.unwrap();

    // Register: v1 = deep, v2 = stumps; champion → v1, so champion ≠ latest.
    let name = common::unique("GustForest");
    h.create_registered_model(&name).await.unwrap();
    let mut versions = Vec::new();
    for (info, run_id) in [(&info1, run1.run_id()), (&info2, run2.run_id())] {
        let v = h
            .create_model_version(&name, &info.model_uri, Some(run_id))
            .await
            .unwrap();
        let v = h
            .wait_model_version_ready(&name, &v.version, Duration::from_secs(30))
            .await
            .unwrap();
        versions.push(v.version);
    }
    h.set_registered_model_alias(&name, "champion", &versions[0])
        .await
        .unwrap();

    let load = |uri: String| predict_with(&h, uri);
    assert_eq!(load(format!("models:/{name}@champion")).await, deep_pred);
    assert_eq!(
        load(format!("models:/{name}/{}", versions[0])).await,
        deep_pred
    );
    assert_eq!(
        load(format!("models:/{name}/{}", versions[1])).await,
        stump_pred
    );
    assert_eq!(load(format!("models:/{name}/latest")).await, stump_pred);
    assert_eq!(load(info1.model_uri.clone()).await, deep_pred);
    assert_eq!(load(extra.model_uri.clone()).await, stump_pred);

    // A version whose source is an artifact URI under the run's root (what some
    // servers and clients store), and one copied from another version.
    let root = h.get_run(run1.run_id()).await.unwrap().info.artifact_uri;
    let v3 = h
        .create_model_version(&name, &format!("{root}/model"), Some(run1.run_id()))
        .await
        .unwrap();
    let v4 = h
        .create_model_version(&name, &format!("models:/{name}/{}", versions[1]), None)
        .await
        .unwrap();
    // The server stores both as given, so each resolution path really runs.
    assert!(v3.source.starts_with(&root), "{}", v3.source);
    assert_eq!(v4.source, format!("models:/{name}/{}", versions[1]));
    assert_eq!(v4.run_id, run2.run_id(), "the server copies the run id");
    for v in [&v3, &v4] {
        h.wait_model_version_ready(&name, &v.version, Duration::from_secs(30))
            .await
            .unwrap();
    }
    assert_eq!(
        load(format!("models:/{name}/{}", v3.version)).await,
        deep_pred
    );
    assert_eq!(
        load(format!("models:/{name}/{}", v4.version)).await,
        stump_pred
    );
    let resolved = h
        .resolve_model_uri(&format!("models:/{name}/latest"))
        .await
        .unwrap();
    assert_eq!(
        resolved.model_version.as_ref().map(|v| v.version.as_str()),
        Some(v4.version.as_str())
    );
    assert_eq!(resolved.run_uri(), info2.model_uri);

    // download_model: a local directory loadable offline.
    let tmp = tempfile::tempdir().unwrap();
    let (local, _) = h
        .download_model(&format!("models:/{name}@champion"), tmp.path())
        .await
        .unwrap();
    let offline: Forest = gust::hooks::mlflow::load_model_from_dir(&local).unwrap();
    assert_eq!(offline.predict(&x).unwrap(), deep_pred);

    // Typed failures.
    let e = h
        .load_model::<LinearRegression<f64, f64, DenseMatrix<f64>, Vec<f64>>>(&info1.model_uri)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = h
        .load_model::<Forest>(&format!("runs:/{}/nope", run1.run_id()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let e = h
        .load_model::<Forest>(&format!("models:/{name}/99"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let e = h
        .load_model::<Forest>(&format!("models:/{}/latest", common::unique("NoSuchModel")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let e = h
        .load_model::<Forest>(&format!("models:/{name}/Production"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    let e = h.load_model::<Forest>("models:/").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = h
        .log_model(run2.run_id(), "../escape", &deep, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");

    // MLflow's Python client parses the MLmodel gust wrote, by run and through
    // the registry.
    if let Some(python) = common::python() {
        let script = r#"
import sys, tempfile
import mlflow
from mlflow.models import Model

uri, run_id, name, version, expected_uuid = sys.argv[1:6]
mlflow.set_tracking_uri(uri)
m = Model.load(f"runs:/{run_id}/model")
assert m.run_id == run_id, m.run_id
assert m.artifact_path == "model", m.artifact_path
assert m.model_uuid == expected_uuid, m.model_uuid
assert m.flavors["smartcore"]["data"] == "model.json", m.flavors
assert m.signature.inputs.input_names() == ["sepal_length", "sepal_width", "petal_length", "petal_width"], m.signature
assert [c.type.name for c in m.signature.inputs.inputs] == ["double"] * 4
assert m.signature.outputs.inputs[0].type.name == "long"
assert m.model_size_bytes > 0
local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=tempfile.mkdtemp())
r = Model.load(local)
assert r.model_uuid == expected_uuid, r.model_uuid
print("ok", m.utc_time_created)
"#;
        let out = std::process::Command::new(python)
            .arg("-c")
            .arg(script)
            .arg(h.base_url())
            .arg(run1.run_id())
            .arg(&name)
            .arg(&versions[0])
            .arg(info1.mlmodel.model_uuid.as_deref().unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python could not read the model: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok "));
    }
}
