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
use gust::ml::metrics::Metric;
use gust::ml::pipeline::FittedPipeline;
use gust::prelude::*;
use pipeline::{CHAMPION, Pipeline, TABLE};

/// Seeds whose test accuracies on this data are 0.9, 0.967 and 0.9: the
/// second beats the first, the third does not beat the second.
const SEEDS: [u64; 3] = [SEED_WEAK, SEED_STRONG, SEED_WEAK];
const SEED_WEAK: u64 = 2;
const SEED_STRONG: u64 = 7;

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

/// Runs the DAG three times with different seeds and checks versions, the
/// champion alias (it moves to the second version, which beats the first,
/// and stays when the third does not), the version's tags, and the model
/// served from `models:/<name>@champion`: it scores the held-out rows with
/// exactly the accuracy the run logged, and it is the very forest a refit on
/// the same training rows gives.
async fn run_three_times_and_serve(p: &mut Pipeline) {
    p.ensure_csv().await.unwrap();
    let mut versions = Vec::new();
    let mut promoted = Vec::new();
    let mut accuracies = Vec::new();
    for seed in SEEDS {
        p.seed = seed;
        let report = p.dag().unwrap().test(logical_date()).await;
        assert!(report.is_success(), "{report}");
        assert_eq!(report.xcom("s3_to_db").unwrap()["rows"], 150);
        let train = report.xcom("train").unwrap();
        let register = report.xcom("register").unwrap();
        versions.push(
            register["version"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap(),
        );
        promoted.push(register["promoted"].as_bool().unwrap());
        accuracies.push(train["metrics"]["accuracy"].as_f64().unwrap());
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
    assert_eq!(champion.tag("logical_date"), Some("2025-01-08"));
    assert_eq!(champion.tag("seed"), Some(SEED_STRONG.to_string().as_str()));
    let logged = p
        .mlflow
        .get_run(&champion.run_id)
        .await
        .unwrap()
        .data
        .metric("accuracy")
        .unwrap();
    assert_eq!(logged, accuracies[1]);

    let served: FittedPipeline = p
        .mlflow
        .load_model(&format!("models:/{}@{CHAMPION}", p.model_name))
        .await
        .unwrap();
    p.seed = SEED_STRONG;
    let rows =
        p.db.get_records(&format!("SELECT * FROM {TABLE}"), Parameters::None)
            .await
            .unwrap();
    let data = Pipeline::columns().read_rows(&rows).unwrap();
    let (train, test) = data.split(&p.split()).unwrap();
    assert_eq!(test.len(), 30);
    assert_eq!(
        served.score(&test, Metric::Accuracy).unwrap(),
        logged,
        "served model accuracy differs from the logged one"
    );
    let refit = p.model().fit(&train).unwrap();
    assert_eq!(
        serde_json::to_value(&served).unwrap(),
        serde_json::to_value(&refit).unwrap(),
        "the served forest is not the one trained on these rows"
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
    p.ensure_csv().await.unwrap();
    let ctx = Context::builder("iris_model", "s3_to_db").build();
    p.load().execute(&ctx).await.unwrap();
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
    let e = p.load().execute(&ctx).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("oops") && msg.contains("iris1.csv"), "{msg}");
    assert_eq!(
        table_rows(p.db.as_ref()).await,
        150,
        "the table was touched"
    );

    // A label column missing from the table: the training task names it
    // (and reads the table's new columns, not the ones a pooled connection
    // saw before the rename).
    p.db.run(
        format!("ALTER TABLE {TABLE} RENAME COLUMN \"Species\" TO label").into(),
        Default::default(),
    )
    .await
    .unwrap();
    let ctx = Context::builder("iris_model", "train").build();
    let e = p.train().execute(&ctx).await.unwrap_err();
    assert!(e.message().contains("no column \"Species\""), "{e}");
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
    };
    run_three_times_and_serve(&mut p).await;
}
