//! `TrainModel` and `RegisterModel` against the real MLflow tracking server:
//! a grid search logged as `mlflow.sklearn` logs `GridSearchCV` (params,
//! `best_<param>`s, `best_cv_score`, `cv_results.csv`, child runs tagged
//! `mlflow.parentRunId`), the logged pipeline loaded back predicting exactly
//! what a refit predicts, the promotion policy both ways, and two
//! registrations racing for the alias.

mod common;

use std::sync::Arc;

use chrono::TimeZone;
use gust::hooks::mlflow::MlflowHook;
use gust::hooks::sql::{Parameters, RunOptions, Sql, SqlHook};
use gust::hooks::sqlite::SqliteHook;
use gust::ml::estimator::Estimator;
use gust::ml::grid_search::GridSearch;
use gust::ml::metrics::Metric;
use gust::ml::pipeline::{FittedPipeline, Pipeline};
use gust::ml::preprocessing::{ImputeStrategy, RobustScaler, SimpleImputer};
use gust::ml::split::Split;
use gust::ml::{Dataset, TargetKind};
use gust::operators::ml::{RegisterModel, TrainModel};
use gust::prelude::*;
use serde_json::json;

const FEATURES: [&str; 3] = ["a", "b", "noise"];

/// 150 rows of three classes that overlap a little, with a few NULLs.
async fn database() -> Arc<SqliteHook> {
    let db = Arc::new(SqliteHook::open("lite", ":memory:").await.unwrap());
    let mut values = Vec::new();
    for i in 0..150u64 {
        let class = i % 3;
        let wobble = ((i * 7919) % 13) as f64 / 4.0;
        let a = class as f64 * 3.0 + wobble;
        let b = if i % 17 == 0 {
            "NULL".to_string()
        } else {
            format!("{}", (i % 11) as f64 - class as f64 * 2.0)
        };
        let noise = ((i * 104729) % 101) as f64;
        values.push(format!("({i}, {a}, {b}, {noise}, 'class_{class}')"));
    }
    db.run(
        Sql::Many(vec![
            "CREATE TABLE samples (id INTEGER, a REAL, b REAL, noise REAL, label TEXT)".into(),
            format!("INSERT INTO samples VALUES {}", values.join(", ")),
        ]),
        RunOptions::default(),
    )
    .await
    .unwrap();
    db
}

fn pipeline() -> Pipeline {
    Pipeline::new(Estimator::decision_tree_classifier())
        .step(SimpleImputer::new(ImputeStrategy::Median))
        .step(RobustScaler::new())
}

fn grid() -> GridSearch {
    GridSearch::new(pipeline(), Metric::Accuracy)
        .param("max_depth", [json!(1), json!(2), json!(6)])
        .param("min_samples_leaf", [json!(1), json!(10)])
        .folds(3)
}

#[tokio::test]
async fn train_register_promote_and_load_back() {
    let _conn = require_conn!("mlflow_default");
    let mlflow = MlflowHook::from_env().unwrap();
    let db = database().await;
    let experiment = common::unique("gust-train");
    let model_name = common::unique("GustModel");

    // A weak model first: no champion yet, so it is promoted.
    let mut dag = Dag::builder("ml_operators");
    let weak = Pipeline::new(Estimator::DecisionTreeClassifier({
        let mut p = gust::ml::estimator::TreeParams::default();
        p.max_depth = Some(1);
        p
    }))
    .step(SimpleImputer::new(ImputeStrategy::Median));
    let train = dag.add(Task::new(
        "train",
        TrainModel::new("SELECT * FROM samples ORDER BY id", FEATURES, "label", weak)
            .with_sql_hook(db.clone())
            .experiment(&experiment)
            .run_name("weak-{{ ds }}"),
    ));
    let register = dag.add(Task::new(
        "register",
        RegisterModel::new(&model_name, "train").promote_on(Metric::Accuracy),
    ));
    let _ = &train >> &register;
    let day = chrono_tz::UTC
        .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
        .unwrap();
    let report = dag.build().unwrap().test(day).await;
    let weak_out = report.xcom("train").unwrap().clone();
    let reg = report.xcom("register").unwrap().clone();
    assert_eq!(reg["promoted"], true, "{reg}");
    assert_eq!(reg["version"], "1");
    let weak_accuracy = weak_out["metrics"]["accuracy"].as_f64().unwrap();
    let run = mlflow
        .get_run(weak_out["run_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(run.info.run_name, "weak-2025-01-08");

    // The grid search: a better model, logged as GridSearchCV is.
    let ctx = Context::builder("ml_operators", "grid").build();
    let out = TrainModel::new(
        "SELECT * FROM samples ORDER BY id",
        FEATURES,
        "label",
        grid(),
    )
    .with_sql_hook(db.clone())
    .experiment(&experiment)
    .metrics([Metric::Accuracy, Metric::F1Macro, Metric::F1Weighted])
    .execute(&ctx)
    .await
    .unwrap();
    let run_id = out["run_id"].as_str().unwrap().to_string();
    assert_eq!(out["rows"], json!({"train": 120, "test": 30}));
    let run = mlflow.get_run(&run_id).await.unwrap();
    let best = out["best_params"].clone();
    assert_eq!(
        run.data
            .params
            .iter()
            .find(|p| p.key == "best_max_depth")
            .map(|p| p.value.clone()),
        Some(best["max_depth"].to_string())
    );
    assert_eq!(
        run.data.metric("best_cv_score"),
        out["best_cv_score"].as_f64()
    );
    assert_eq!(
        run.data.metric("f1_weighted"),
        out["metrics"]["f1_weighted"].as_f64()
    );
    let artifacts = mlflow.list_artifacts(&run_id, "").await.unwrap();
    let names: Vec<&str> = artifacts.iter().map(|a| a.path.as_str()).collect();
    assert!(
        names.contains(&"cv_results.csv") && names.contains(&"model"),
        "{names:?}"
    );
    let experiment_id = out["experiment_id"].as_str().unwrap();
    let children = mlflow
        .search_all_runs(
            &[experiment_id],
            &format!("tags.mlflow.parentRunId = '{run_id}'"),
            100,
        )
        .await
        .unwrap();
    assert_eq!(children.len(), 6, "one child run per candidate");
    assert!(
        children
            .iter()
            .all(|c| c.data.metric("mean_test_score").is_some())
    );

    // Loaded back, the pipeline predicts what a refit on the same rows does.
    let loaded: FittedPipeline = mlflow
        .load_model(out["model_uri"].as_str().unwrap())
        .await
        .unwrap();
    let rows = db
        .get_records("SELECT * FROM samples ORDER BY id", Parameters::None)
        .await
        .unwrap();
    let data = Dataset::from_rows(&rows, &FEATURES, "label", TargetKind::Classes).unwrap();
    let (train_set, _) = data
        .split(&Split::new(0.2).seed(42).stratified(true))
        .unwrap();
    let refit = grid().fit(&train_set).unwrap().best;
    assert_eq!(
        loaded.predict(&data.x).unwrap(),
        refit.predict(&data.x).unwrap()
    );
    assert_eq!(loaded.features, FEATURES);

    // Promotion: the better run moves the alias, the weak one again does not.
    let grid_accuracy = out["metrics"]["accuracy"].as_f64().unwrap();
    assert!(
        grid_accuracy > weak_accuracy,
        "{grid_accuracy} vs {weak_accuracy}"
    );
    let register = |uri: &str| {
        RegisterModel::new(&model_name, "unused")
            .model_uri(uri)
            .promote_on(Metric::Accuracy)
    };
    let better = register(out["model_uri"].as_str().unwrap())
        .execute(&ctx)
        .await
        .unwrap();
    assert_eq!(better["promoted"], true, "{better}");
    let worse = register(weak_out["model_uri"].as_str().unwrap())
        .execute(&ctx)
        .await
        .unwrap();
    assert_eq!(worse["promoted"], false, "{worse}");
    assert!(
        worse["reason"].as_str().unwrap().contains("does not beat"),
        "{worse}"
    );
    // Equal is not better either.
    let same = register(out["model_uri"].as_str().unwrap())
        .execute(&ctx)
        .await
        .unwrap();
    assert_eq!(same["promoted"], false, "{same}");
    let champion = mlflow
        .get_model_version_by_alias(&model_name, "champion")
        .await
        .unwrap();
    assert_eq!(champion.version, better["version"].as_str().unwrap());

    // Two registrations racing on a fresh name: the better one ends up champion.
    let raced = common::unique("GustRace");
    let race = |uri: String| {
        let op = RegisterModel::new(&raced, "unused")
            .model_uri(uri)
            .promote_on(Metric::Accuracy);
        let ctx = ctx.clone();
        async move { op.execute(&ctx).await }
    };
    let (a, b) = futures::join!(
        race(weak_out["model_uri"].as_str().unwrap().to_string()),
        race(out["model_uri"].as_str().unwrap().to_string())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let champion = mlflow
        .get_model_version_by_alias(&raced, "champion")
        .await
        .unwrap();
    assert_eq!(champion.version, b["version"].as_str().unwrap(), "{a} {b}");

    // A model URI that does not exist is an error, not a version.
    let e = register("runs:/0123456789abcdef0123456789abcdef/model")
        .execute(&ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            gust::ErrorKind::NotFound | gust::ErrorKind::InvalidInput | gust::ErrorKind::Remote
        ),
        "{e}"
    );
}

#[tokio::test]
async fn bad_training_input_is_named() {
    let db = database().await;
    let ctx = Context::builder("ml_operators", "bad").build();
    let run = |query: &str, target: &str| {
        TrainModel::new(query, FEATURES, target, pipeline())
            .with_sql_hook(db.clone())
            .with_mlflow(MlflowHook::new("http://127.0.0.1:1").unwrap())
    };
    let e = run("SELECT * FROM samples WHERE id < 0", "label")
        .execute(&ctx)
        .await
        .unwrap_err();
    assert!(e.message().contains("empty"), "{e}");
    let e = run("SELECT * FROM samples", "species")
        .execute(&ctx)
        .await
        .unwrap_err();
    assert!(e.message().contains("no column \"species\""), "{e}");
    let e = run("SELECT id, 'x' AS a, b, noise, label FROM samples", "label")
        .execute(&ctx)
        .await
        .unwrap_err();
    assert!(e.message().contains("not a number"), "{e}");
    let e = TrainModel::new(
        "SELECT * FROM samples",
        FEATURES,
        "label",
        grid().param("learning_rate", [json!(0.1)]),
    )
    .with_sql_hook(db.clone())
    .execute(&ctx)
    .await
    .unwrap_err();
    assert!(
        e.message().contains("no parameter \"learning_rate\""),
        "{e}"
    );
}
