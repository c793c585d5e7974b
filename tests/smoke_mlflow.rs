//! Harness smoke test: the MLflow tracking server (PostgreSQL backend, S3 artifacts)
//! creates and returns an experiment over its REST API.

mod common;

use serde_json::{Value, json};

#[tokio::test]
async fn mlflow_experiment_round_trip() {
    let conn = require_conn!("mlflow_default");
    let base = format!(
        "{}://{}:{}",
        if conn.conn_type() == "https" {
            "https"
        } else {
            "http"
        },
        conn.host().expect("host"),
        conn.port().unwrap_or(5000)
    );
    let http = reqwest::Client::new();
    let name = common::unique("gust-smoke");
    let created: Value = http
        .post(format!("{base}/api/2.0/mlflow/experiments/create"))
        .json(&json!({ "name": name }))
        .send()
        .await
        .expect("create experiment")
        .error_for_status()
        .expect("create experiment status")
        .json()
        .await
        .unwrap();
    let id = created["experiment_id"]
        .as_str()
        .expect("experiment_id")
        .to_string();

    let got: Value = http
        .get(format!("{base}/api/2.0/mlflow/experiments/get-by-name"))
        .query(&[("experiment_name", &name)])
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["experiment"]["experiment_id"], Value::String(id));
    // Artifacts go to the S3 bucket through the server's proxy.
    let location = got["experiment"]["artifact_location"]
        .as_str()
        .unwrap_or_default();
    assert!(
        location.starts_with("mlflow-artifacts:") || location.starts_with("s3://"),
        "{location}"
    );
}
