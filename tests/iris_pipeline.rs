//! The main job, `examples/iris_pipeline`, run from its own code: on the embedded
//! defaults (always) and against S3, PostgreSQL and the MLflow server (CI).
//!
//! The check that matters: the model served from `models:/<name>@champion`
//! predicts the held-out rows with exactly the accuracy the run logged.

#[path = "../examples/iris_pipeline/pipeline.rs"]
#[allow(dead_code)]
mod pipeline;

mod common;

use std::sync::Arc;

use chrono::TimeZone;
use gust::hooks::mlflow::MlflowHook;
use gust::hooks::object_store::{LocalStore, ObjectStore, PutOptions};
use gust::hooks::sql::{Parameters, SqlHook};
use gust::hooks::sqlite::SqliteHook;
use gust::prelude::*;
use pipeline::{CHAMPION, IrisModel, Pipeline, TABLE};

fn logical_date() -> chrono::DateTime<chrono_tz::Tz> {
    chrono_tz::Asia::Seoul
        .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
        .unwrap()
}

async fn table_rows(db: &dyn SqlHook) -> i64 {
    let row = db
        .get_first(
            &format!("SELECT COUNT(*) AS n FROM {TABLE}"),
            Parameters::None,
        )
        .await
        .unwrap()
        .unwrap();
    row["n"].as_i64().unwrap()
}

/// Runs the DAG three times with different seeds — accuracies 0.833, 0.9, 0.833 on
/// this data — and checks versions, the champion alias (it moves to the second
/// version, which beats the first, and stays when the third does not) and the
/// model served from `models:/<name>@champion`.
async fn run_three_times_and_serve(p: &mut Pipeline) {
    let mut versions = Vec::new();
    let mut promoted = Vec::new();
    let mut accuracies = Vec::new();
    for seed in [13, 3, 13] {
        p.seed = seed;
        let report = p.dag().unwrap().test(logical_date()).await;
        assert!(report.is_success(), "{report}");
        let out = report.xcom("train_and_register").unwrap().clone();
        assert_eq!(report.xcom("s3_to_db").unwrap()["rows"], 150);
        versions.push(out["version"].as_str().unwrap().parse::<u64>().unwrap());
        promoted.push(out["champion"].as_bool().unwrap());
        accuracies.push(out["accuracy"].as_f64().unwrap());
    }
    assert_eq!(versions[1], versions[0] + 1, "{versions:?}");
    assert_eq!(versions[2], versions[1] + 1, "{versions:?}");
    assert!(accuracies[1] > accuracies[0], "{accuracies:?}");
    assert_eq!(promoted, [true, true, false], "accuracies {accuracies:?}");
    assert_eq!(table_rows(p.db.as_ref()).await, 150);

    let champion = p
        .mlflow
        .get_model_version_by_alias(&p.model_name, CHAMPION)
        .await
        .unwrap();
    assert_eq!(champion.version, versions[1].to_string());
    let run_id = champion.run_id.clone();
    let logged = p
        .mlflow
        .get_run(&run_id)
        .await
        .unwrap()
        .data
        .metric("accuracy")
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let local = p
        .mlflow
        .download_artifacts(&run_id, pipeline::TEST_SET_ARTIFACT, dir.path())
        .await
        .unwrap();
    let text = std::fs::read_to_string(local).unwrap();
    let (x, y) = pipeline::parse_test_csv(&text).unwrap();
    assert_eq!(y.len(), 30);

    let model: IrisModel = p
        .mlflow
        .load_model(&format!("models:/{}@{CHAMPION}", p.model_name))
        .await
        .unwrap();
    let predicted = model.predict(&x).unwrap();
    let served = pipeline::accuracy(&y, &predicted);
    assert_eq!(
        served, logged,
        "served model accuracy differs from the logged one"
    );
    assert_eq!(logged, accuracies[1]);

    // And it is the very forest the second run trained: same trees, same splits.
    let split = p.read_dataset().await.unwrap().split(0.2, 3).unwrap();
    let params =
        smartcore::ensemble::random_forest_classifier::RandomForestClassifierParameters::default()
            .with_n_trees(p.n_trees)
            .with_seed(3);
    let retrained = IrisModel::fit(&split.x_train, &split.y_train, params).unwrap();
    assert_eq!(
        serde_json::to_value(&model).unwrap(),
        serde_json::to_value(&retrained).unwrap()
    );
}

async fn embedded(dir: &std::path::Path) -> Pipeline {
    Pipeline {
        objects: Arc::new(LocalStore::new(dir.join("objects")).unwrap()),
        bucket: "team06-mlflow-feature".into(),
        db: Arc::new(
            SqliteHook::open("sqlite_default", &dir.join("iris.db").to_string_lossy())
                .await
                .unwrap(),
        ),
        mlflow: MlflowHook::from_uri(&format!("file:{}", dir.join("mlruns").display())).unwrap(),
        experiment: "testjun".into(),
        model_name: pipeline::MODEL_NAME.into(),
        seed: 42,
        n_trees: 100,
    }
}

#[tokio::test]
async fn embedded_defaults_train_register_and_serve_the_champion() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = embedded(dir.path()).await;
    run_three_times_and_serve(&mut p).await;
}

#[tokio::test]
async fn a_bad_csv_fails_the_load_and_keeps_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let p = embedded(dir.path()).await;
    p.load_csv_into_table().await.unwrap();
    assert_eq!(table_rows(p.db.as_ref()).await, 150);

    let bad = pipeline::IRIS_CSV.replacen("5.1;3.5", "5.1;oops", 1);
    p.objects
        .put(
            &p.bucket,
            pipeline::CSV_KEY,
            bad.into_bytes().into(),
            &PutOptions::new(),
        )
        .await
        .unwrap();
    let e = p.load_csv_into_table().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("line 2") && msg.contains("oops") && msg.contains("iris1.csv"),
        "{msg}"
    );
    assert_eq!(
        table_rows(p.db.as_ref()).await,
        150,
        "the table was touched"
    );

    let e = pipeline::parse_iris_csv(b"a;b\n1;2\n").unwrap_err();
    assert!(e.to_string().contains("SepalLength"), "{e}");
}

#[tokio::test]
async fn against_s3_postgres_and_the_mlflow_server() {
    let Some(aws) = common::server_conn("aws_default") else {
        return;
    };
    let Some(pg) = common::server_conn("postgres_default") else {
        return;
    };
    let Some(ml) = common::server_conn("mlflow_default") else {
        return;
    };
    let objects = gust::hooks::s3::S3Hook::from_connection(&aws)
        .await
        .unwrap();
    let bucket = common::unique("iris").to_lowercase();
    ObjectStore::create_bucket(&objects, &bucket).await.unwrap();
    let mut p = Pipeline {
        objects: Arc::new(objects),
        bucket,
        db: Arc::from(gust::hooks::sql::from_connection(&pg, None).await.unwrap()),
        mlflow: MlflowHook::from_connection(&ml).unwrap(),
        experiment: common::unique("testjun"),
        model_name: common::unique("IrisModel"),
        seed: 42,
        n_trees: 100,
    };
    run_three_times_and_serve(&mut p).await;
}
