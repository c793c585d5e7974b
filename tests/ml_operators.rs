//! `TrainModel` and `RegisterModel` against the real MLflow tracking server:
//! a grid search logged as `mlflow.sklearn` logs `GridSearchCV` (params,
//! `best_<param>`s, `best_cv_score`, `cv_results.csv`, child runs tagged
//! `mlflow.parentRunId`), the logged pipeline loaded back predicting exactly
//! what a refit predicts, the promotion policy both ways, and two
//! registrations racing for the alias. Then the other training sources — an
//! object, an upstream task's rows, Redis — with categorical columns, the
//! input example, and the version's tags and description; the object and
//! upstream ones on an embedded MLflow file store, with no server.

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
use gust::ml::{Columns, Dataset, TargetKind};
use gust::operators::ml::{RegisterModel, TrainModel, TrainingData};
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

fn query(sql: &str) -> TrainingData {
    TrainingData::query(sql)
}

fn columns(target: &str) -> Columns {
    Columns::new(target).numeric(FEATURES)
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
        TrainModel::new(
            query("SELECT * FROM samples ORDER BY id"),
            columns("label"),
            weak,
        )
        .with_sql_hook(db.clone())
        .experiment(&experiment)
        .run_name("weak-{{ ds }}"),
    ));
    let register = dag.add(Task::new(
        "register",
        RegisterModel::new(&model_name, "train")
            .promote_on(Metric::Accuracy)
            .tag("base_dt", "{{ ds }}")
            .description("weak model of {{ ds }}"),
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
    let version = mlflow.get_model_version(&model_name, "1").await.unwrap();
    assert_eq!(version.tag("base_dt"), Some("2025-01-08"));
    assert_eq!(
        version.description.as_deref(),
        Some("weak model of 2025-01-08")
    );
    let weak_accuracy = weak_out["metrics"]["accuracy"].as_f64().unwrap();
    let run = mlflow
        .get_run(weak_out["run_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(run.info.run_name, "weak-2025-01-08");

    // The grid search: a better model, logged as GridSearchCV is.
    let ctx = Context::builder("ml_operators", "grid").build();
    let out = TrainModel::new(
        query("SELECT * FROM samples ORDER BY id"),
        columns("label"),
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
    // Equal is not better either (another task registering the same model:
    // a new version).
    let other_task = Context::builder("ml_operators", "register_again").build();
    let same = register(out["model_uri"].as_str().unwrap())
        .execute(&other_task)
        .await
        .unwrap();
    assert_eq!(same["promoted"], false, "{same}");
    assert_ne!(same["version"], better["version"], "{same}");
    // The same task instance again: its version is reused, not duplicated.
    let again = register(out["model_uri"].as_str().unwrap())
        .execute(&ctx)
        .await
        .unwrap();
    assert_eq!(again["version"], better["version"], "{again}");
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
        TrainModel::new(TrainingData::query(query), columns(target), pipeline())
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
        query("SELECT * FROM samples"),
        columns("label"),
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

/// 120 rows of a numeric column and a categorical one whose category
/// decides most labels (`_` and NULL included, as in seed 001's credit mix).
fn credit_rows() -> Vec<serde_json::Map<String, serde_json::Value>> {
    let mixes = [Some("Good"), Some("Bad"), Some("_"), Some("Standard"), None];
    (0..120u64)
        .map(|i| {
            let mix = mixes[(i % 5) as usize];
            let a = ((i * 7919) % 23) as f64 / 2.0;
            let label = match mix {
                Some("Good") => "good",
                Some("Bad") | None => "poor",
                _ if a > 6.0 => "good",
                _ => "poor",
            };
            let row = json!({"id": i, "a": a, "mix": mix, "label": label});
            row.as_object().unwrap().clone()
        })
        .collect()
}

fn credit_csv(rows: &[serde_json::Map<String, serde_json::Value>]) -> String {
    let mut out = String::from("id,a,mix,label\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{}\n",
            r["id"],
            r["a"],
            r["mix"].as_str().unwrap_or(""),
            r["label"].as_str().unwrap()
        ));
    }
    out
}

fn credit_columns() -> Columns {
    Columns::new("label").numeric(["a"]).categorical(["mix"])
}

fn credit_pipeline() -> Pipeline {
    use gust::ml::encoding::{OneHotEncoder, Unknown};
    Pipeline::new(Estimator::decision_tree_classifier())
        .step(RobustScaler::new())
        .encoder(OneHotEncoder::new().handle_unknown(Unknown::Ignore))
}

#[tokio::test]
async fn object_and_upstream_sources_with_categories_on_the_file_store() {
    use gust::hooks::object_store::{MemoryStore, ObjectStore, PutOptions};
    use gust::ml::pipeline::Predictions;

    let dir = tempfile::tempdir().unwrap();
    let mlflow =
        MlflowHook::from_uri(&format!("file://{}", dir.path().join("mlruns").display())).unwrap();
    let store = Arc::new(MemoryStore::new());
    store.create_bucket("raw").await.unwrap();
    let rows = credit_rows();
    // An empty unquoted cell is a NULL category, as pandas reads it.
    store
        .put(
            "raw",
            "2025-01-08/credit.csv",
            credit_csv(&rows).into(),
            &PutOptions::new(),
        )
        .await
        .unwrap();

    let mut dag = Dag::builder("credit");
    let train_object = dag.add(Task::new(
        "train_object",
        TrainModel::new(
            TrainingData::object("s3://raw/{{ ds }}/credit.csv"),
            credit_columns(),
            credit_pipeline(),
        )
        .with_store(store.clone())
        .with_mlflow(mlflow.clone())
        .experiment("credit")
        .log_preprocessing("credit_score/{{ ds }}"),
    ));
    let register = dag.add(Task::new(
        "register",
        RegisterModel::new("Credit", "train_object")
            .tag("base_dt", "{{ ds }}")
            .description("credit model of {{ ds }}")
            .with_mlflow(mlflow.clone()),
    ));
    let served_rows = rows.clone();
    let extract = dag.add(Task::from_fn("extract", move |_ctx| {
        let rows = served_rows.clone();
        async move { Ok(json!({ "rows": rows })) }
    }));
    let train_upstream = dag.add(Task::new(
        "train_upstream",
        TrainModel::new(
            TrainingData::upstream("extract"),
            credit_columns(),
            credit_pipeline(),
        )
        .with_mlflow(mlflow.clone())
        .experiment("credit"),
    ));
    let _ = &train_object >> &register;
    let _ = &extract >> &train_upstream;
    let day = chrono_tz::UTC
        .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
        .unwrap();
    let report = dag.build().unwrap().test(day).await;
    assert!(report.is_success(), "{report}");
    let from_object = report.xcom("train_object").unwrap().clone();
    let from_upstream = report.xcom("train_upstream").unwrap().clone();
    // The same rows through CSV text and through JSON: the same model.
    assert_eq!(from_object["metrics"], from_upstream["metrics"]);
    assert!(
        from_object["metrics"]["accuracy"].as_f64().unwrap() > 0.9,
        "{from_object}"
    );

    // The version carries the rendered tag and description.
    let version = mlflow.get_model_version("Credit", "1").await.unwrap();
    assert_eq!(version.tag("base_dt"), Some("2025-01-08"));
    assert_eq!(
        version.description.as_deref(),
        Some("credit model of 2025-01-08")
    );

    // What preprocessing learnt and made, beside the model.
    let run_id = from_object["run_id"].as_str().unwrap();
    let listed = mlflow
        .list_artifacts(run_id, "credit_score/2025-01-08")
        .await
        .unwrap();
    let names: Vec<&str> = listed.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        names,
        [
            "credit_score/2025-01-08/preprocessing.json",
            "credit_score/2025-01-08/test.csv",
            "credit_score/2025-01-08/train.csv"
        ]
    );
    let got = tempfile::tempdir().unwrap();
    let train_csv = mlflow
        .download_artifacts(run_id, "credit_score/2025-01-08/train.csv", got.path())
        .await
        .unwrap();
    let text = std::fs::read_to_string(train_csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("a,mix_Bad,mix_Good,mix_Standard,mix__,mix_None,label")
    );
    assert_eq!(lines.count(), 96);
    let learnt = mlflow
        .download_artifacts(
            run_id,
            "credit_score/2025-01-08/preprocessing.json",
            got.path(),
        )
        .await
        .unwrap();
    let learnt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(learnt).unwrap()).unwrap();
    assert_eq!(learnt["steps"][0]["step"], "robust_scaler");
    assert_eq!(learnt["encoder"]["columns"], json!(["mix"]));

    // The model directory has MLflow's input example files.
    let uri = from_object["model_uri"].as_str().unwrap();
    let local = tempfile::tempdir().unwrap();
    let (model_dir, _) = mlflow.download_model(uri, local.path()).await.unwrap();
    let mlmodel = gust::hooks::mlflow::MlModel::read(&model_dir).unwrap();
    assert_eq!(
        mlmodel.extra["saved_input_example_info"]["serving_input_path"],
        "serving_input_example.json"
    );
    let example: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model_dir.join("input_example.json")).unwrap())
            .unwrap();
    assert_eq!(example["columns"], json!(["a", "mix"]));
    assert_eq!(example["data"].as_array().unwrap().len(), 5);
    let signature = mlmodel.signature.unwrap();
    assert_eq!(signature.input_names(), ["a", "mix"]);

    // Loaded back, it takes JSON rows with the category as text; an unseen
    // category is ignored, a missing column named.
    let loaded: FittedPipeline = mlflow.load_model("models:/Credit@champion").await.unwrap();
    assert_eq!(loaded.categorical, ["mix"]);
    let ask =
        |a: f64, mix: serde_json::Value| json!({"a": a, "mix": mix}).as_object().unwrap().clone();
    let predicted = loaded
        .predict_rows(&[
            ask(1.0, json!("Good")),
            ask(1.0, json!("Bad")),
            ask(2.0, json!("Gold")),
        ])
        .unwrap();
    match predicted {
        Predictions::Classes {
            labels, classes, ..
        } => {
            assert_eq!(&labels[..2], ["good", "poor"]);
            assert_eq!(classes, ["good", "poor"]);
        }
        other => panic!("{other:?}"),
    }
    let e = loaded
        .predict_rows(&[json!({"a": 1.0}).as_object().unwrap().clone()])
        .unwrap_err();
    assert!(e.message().contains("\"mix\""), "{e}");
}

#[tokio::test]
async fn train_from_redis_rows() {
    let conn = require_conn!("redis_default");
    let redis = gust::hooks::redis::RedisHook::from_connection(&conn)
        .await
        .unwrap();
    let prefix = common::unique("credit-row");
    redis.set_rows_json(&prefix, credit_rows()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mlflow =
        MlflowHook::from_uri(&format!("file://{}", dir.path().join("mlruns").display())).unwrap();
    let ctx = Context::builder("credit", "train_redis").build();
    let out = TrainModel::new(
        TrainingData::redis(prefix.clone()),
        credit_columns(),
        credit_pipeline(),
    )
    .with_redis(redis.clone())
    .with_mlflow(mlflow)
    .execute(&ctx)
    .await
    .unwrap();
    assert_eq!(out["rows"], json!({"train": 96, "test": 24}));
    // No row under the prefix: the extract is empty, which is an error.
    let e = TrainModel::new(
        TrainingData::redis(format!("{prefix}-none")),
        credit_columns(),
        credit_pipeline(),
    )
    .with_redis(redis)
    .execute(&ctx)
    .await
    .unwrap_err();
    assert!(e.message().contains("empty"), "{e}");
}

/// The same rows as CSV, JSON Lines and (with the feature) Parquet objects
/// make the same dataset: numbers from text or JSON numbers, NULL categories
/// missing in every format.
#[tokio::test]
async fn csv_jsonl_and_parquet_objects_make_the_same_dataset() {
    use gust::hooks::object_store::{MemoryStore, ObjectStore, PutOptions};
    let store = MemoryStore::new();
    store.create_bucket("raw").await.unwrap();
    let rows = credit_rows();
    let put = |key: &'static str, body: Vec<u8>| {
        let store = &store;
        async move {
            store
                .put("raw", key, body.into(), &PutOptions::new())
                .await
                .unwrap()
        }
    };
    put("d/credit.csv", credit_csv(&rows).into_bytes()).await;
    let jsonl: String = rows
        .iter()
        .map(|r| format!("{}\n", serde_json::Value::Object(r.clone())))
        .collect();
    put("d/credit.jsonl.gz", {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(jsonl.as_bytes()).unwrap();
        gz.finish().unwrap()
    })
    .await;
    let read = |url: &'static str| {
        let store = &store;
        async move {
            let rows = gust::formats::read_object_rows(store, url, None)
                .await
                .unwrap();
            credit_columns().read_rows(&rows).unwrap()
        }
    };
    let from_csv = read("s3://raw/d/credit.csv").await;
    assert_eq!(from_csv.len(), 120);
    assert_eq!(from_csv.categorical[0].values[4], None);
    assert_eq!(read("s3://raw/d/credit.jsonl.gz").await, from_csv);

    #[cfg(feature = "parquet")]
    {
        use gust::formats::parquet::{ParquetFormat, Writer};
        use gust::formats::{Column, ColumnType};
        let columns = [
            Column::new("id", ColumnType::Int64),
            Column::new("a", ColumnType::Float64),
            Column::new("mix", ColumnType::Text),
            Column::new("label", ColumnType::Text),
        ];
        let mut writer = Writer::new(&columns, &ParquetFormat::new(), "test").unwrap();
        for r in &rows {
            writer
                .push([&r["id"], &r["a"], &r["mix"], &r["label"]])
                .unwrap();
        }
        put("d/credit.parquet", writer.finish().unwrap()).await;
        assert_eq!(read("s3://raw/d/credit.parquet").await, from_csv);
    }

    // A missing object is NotFound naming it; a record of the wrong width
    // names its line.
    let e = gust::formats::read_object_rows(&store, "s3://raw/d/none.csv", None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), gust::ErrorKind::NotFound, "{e}");
    put("d/bad.csv", b"a,mix,label\n1,Good,good\n2,Bad\n".to_vec()).await;
    let e = gust::formats::read_object_rows(&store, "s3://raw/d/bad.csv", None)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("record 3") && e.to_string().contains("bad.csv"),
        "{e}"
    );
}

/// A register task whose first try registered the version, then lost the
/// alias call to a reset connection: the retry reuses that version (one
/// version, not two) and moves the alias to it. On the MLflow of unit tests,
/// `FaultyMlflow::temporary()`.
#[cfg(feature = "testing")]
#[tokio::test]
async fn a_retried_registration_adds_no_second_version() {
    use gust::testing::{Fault, FaultyMlflow, MlflowOp};

    let store = Arc::new(FaultyMlflow::temporary().unwrap().fail_nth(
        MlflowOp::SetAlias,
        1,
        Fault::error(ErrorKind::Unavailable),
    ));
    let mlflow = MlflowHook::with_store(store.clone());
    let db = database().await;
    let mut dag = Dag::builder("register_retry");
    let train = dag.add(Task::new(
        "train",
        TrainModel::new(query("SELECT * FROM samples"), columns("label"), pipeline())
            .with_sql_hook(db)
            .with_mlflow(mlflow.clone())
            .experiment("retry"),
    ));
    let register = dag.add(
        Task::new(
            "register",
            RegisterModel::new("Retried", "train")
                .promote_on(Metric::Accuracy)
                .with_mlflow(mlflow.clone()),
        )
        .with_options(
            TaskOptions::default()
                .retries(1)
                .retry_delay(std::time::Duration::from_millis(10)),
        ),
    );
    let _ = &train >> &register;
    let day = chrono_tz::UTC
        .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
        .unwrap();
    let report = dag.build().unwrap().test(day).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(report.task("register").unwrap().tries, 2);
    assert_eq!(store.calls(MlflowOp::SetAlias), 2);
    assert_eq!(store.calls(MlflowOp::CreateModelVersion), 1);
    let versions = mlflow
        .search_model_versions("name='Retried'")
        .await
        .unwrap();
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(report.xcom("register").unwrap()["version"], "1");
    let champion = mlflow
        .get_model_version_by_alias("Retried", "champion")
        .await
        .unwrap();
    assert_eq!(champion.version, "1");
}
