//! Seed 000's second DAG, `examples/iris_redis_pipeline`, run from its own code
//! against the Redis Cluster (rows under a prefix unique to the run) with a
//! local object store and an embedded MLflow file store: twice for one date,
//! then once after the object shrank.

#[path = "../examples/iris_redis_pipeline/pipeline.rs"]
mod pipeline;

mod common;

use std::sync::Arc;

use chrono::TimeZone;
use gust::hooks::mlflow::MlflowHook;
use gust::hooks::object_store::{LocalStore, PutOptions};
use gust::hooks::redis::RedisHook;
use gust::ml::pipeline::FittedPipeline;
use pipeline::Pipeline;

#[tokio::test]
async fn s3_to_redis_cluster_train_register_twice_then_a_shorter_object() {
    let conn = require_conn!("redis_cluster");
    let dir = tempfile::tempdir().unwrap();
    let p = Pipeline {
        objects: Arc::new(LocalStore::new(dir.path().join("objects")).unwrap()),
        bucket: "team06-mlflow-feature".into(),
        redis: RedisHook::from_connection(&conn).await.unwrap(),
        key_prefix: common::unique("iris-row"),
        mlflow: MlflowHook::from_uri(&format!("file:{}", dir.path().join("mlruns").display()))
            .unwrap(),
        experiment: "iris_experiment".into(),
        model_name: "IrisModel".into(),
    };
    p.ensure_csv().await.unwrap();
    let day = chrono_tz::Asia::Seoul
        .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
        .unwrap();
    let mut outs = Vec::new();
    for _ in 0..2 {
        let report = p.dag().unwrap().test(day).await;
        assert!(report.is_success(), "{report}");
        assert_eq!(report.xcom("s3_to_redis").unwrap()["rows"], 150);
        let train = report.xcom("train").unwrap().clone();
        assert_eq!(train["rows"], serde_json::json!({"train": 120, "test": 30}));
        outs.push((train, report.xcom("register").unwrap().clone()));
    }
    // Same rows, same seed: the same scores; the rerun is a new version that
    // does not beat (equal is not better) the champion.
    assert_eq!(outs[0].0["metrics"], outs[1].0["metrics"]);
    assert_eq!(outs[0].1["version"], "1");
    assert_eq!(outs[1].1["version"], "2");
    assert_eq!(outs[1].1["promoted"], false, "{}", outs[1].1);
    let champion = p
        .mlflow
        .get_model_version_by_alias("IrisModel", "champion")
        .await
        .unwrap();
    assert_eq!(champion.version, "1");
    assert_eq!(champion.tag("source"), Some("redis"));

    // The champion predicts the rows as stored in Redis.
    let model: FittedPipeline = p
        .mlflow
        .load_model("models:/IrisModel@champion")
        .await
        .unwrap();
    let rows: Vec<serde_json::Map<String, serde_json::Value>> =
        p.redis.get_rows_json(&p.key_prefix).await.unwrap();
    assert_eq!(rows.len(), 150);
    let data = gust::ml::Columns::new(pipeline::LABEL)
        .numeric(pipeline::FEATURES)
        .read_rows(&rows)
        .unwrap();
    let accuracy = model
        .score(&data, gust::ml::metrics::Metric::Accuracy)
        .unwrap();
    assert!(accuracy > 0.9, "{accuracy}");

    // A shorter object: the stale rows are gone, so training reads 90 rows.
    let short: String = pipeline::IRIS_CSV
        .lines()
        .enumerate()
        .filter(|(i, _)| *i == 0 || (i - 1) % 50 < 30)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    p.objects
        .put(
            &p.bucket,
            pipeline::CSV_KEY,
            short.into(),
            &PutOptions::new(),
        )
        .await
        .unwrap();
    let report = p.dag().unwrap().test(day).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(report.xcom("s3_to_redis").unwrap()["rows"], 90);
    assert_eq!(
        report.xcom("train").unwrap()["rows"],
        serde_json::json!({"train": 72, "test": 18})
    );
    let stale = p
        .redis
        .get_json::<serde_json::Value>(&format!("{}:90", p.key_prefix))
        .await
        .unwrap();
    assert!(stale.is_none(), "{stale:?}");
}
