//! `examples/credit_score_ct` (seed 001's continuous training), run from its
//! own code: on the embedded defaults (a SQLite feature store and the MLflow
//! file store, in a temporary directory) and against MariaDB and the MLflow
//! server (CI).
//!
//! Each run is the DAG twice for the same date: the extract is idempotent,
//! the second run registers version 2, and `champion` follows the promotion
//! policy (the same data gives the same model, whose macro F1 does not beat
//! the champion's, so the alias stays on version 1). The preprocessing
//! artifacts are under `<model_name>/<ds>/`, and the champion, loaded back,
//! grades the rows of the table. An empty extract fails the train task with
//! a typed error, and the failure callback logs it.

#[path = "../examples/credit_score_ct/callbacks.rs"]
mod callbacks;
#[path = "../examples/credit_score_ct/pipeline.rs"]
#[allow(dead_code)]
mod pipeline;
#[path = "../examples/credit_score_ct/source.rs"]
#[allow(dead_code)]
mod source;

mod common;

use std::sync::Arc;

use gust::TaskState;
use gust::hooks::mlflow::MlflowHook;
use gust::hooks::sql::{Parameters, RunOptions, Sql, SqlHook};
use gust::ml::pipeline::{FittedPipeline, Predictions};
use gust::prelude::*;
use pipeline::{CATEGORICAL, CHAMPION, CreditScoreCt, NUMERIC};

const DS: &str = "2025-01-08";

fn run_config(ds: &str) -> RunConfig {
    RunConfig::from_ds(ds, chrono_tz::Asia::Seoul).unwrap()
}

async fn count(db: &dyn SqlHook, sql: &str) -> i64 {
    let row = db.get_first(sql, Parameters::None).await.unwrap().unwrap();
    row["n"]
        .as_i64()
        .or_else(|| row["n"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("count {row:?}"))
}

/// What one DAG run left: the target's rows for the date and in all, and
/// the XComs of `train` and `register`.
struct Outcome {
    rows_of_date: i64,
    rows_total: i64,
    train: Value,
    register: Value,
}

async fn run_once(p: &CreditScoreCt, ds: &str) -> Outcome {
    let report = p.dag().unwrap().run(run_config(ds)).await;
    assert!(report.is_success(), "{report}");
    let target = &p.tables.target;
    Outcome {
        rows_of_date: count(
            p.db.as_ref(),
            &format!("SELECT COUNT(*) AS n FROM {target} WHERE base_dt = '{ds}'"),
        )
        .await,
        rows_total: count(
            p.db.as_ref(),
            &format!("SELECT COUNT(*) AS n FROM {target}"),
        )
        .await,
        train: report.xcom("train").unwrap().clone(),
        register: report.xcom("register").unwrap().clone(),
    }
}

/// The pipeline twice for `DS`, and everything the task asks of it.
async fn twice_for_one_date(p: &CreditScoreCt) {
    let days = p.prepare_sources(DS).await.unwrap();
    assert_eq!(days as i64, source::HISTORY_DAYS + 1, "a fresh store");
    assert_eq!(
        p.prepare_sources(DS).await.unwrap(),
        0,
        "setup is idempotent"
    );
    let source_rows = count(
        p.db.as_ref(),
        &format!(
            "SELECT COUNT(*) AS n FROM {} WHERE date BETWEEN '2024-12-08' AND '{DS}'",
            p.tables.scores
        ),
    )
    .await;
    assert_eq!(source_rows, 32 * source::ROWS_PER_DAY as i64);

    let first = run_once(p, DS).await;
    let second = run_once(p, DS).await;

    // The extract of a date is replaced, not doubled: a month of rows.
    assert_eq!(first.rows_of_date, source_rows);
    assert_eq!(second.rows_of_date, first.rows_of_date);
    assert_eq!(second.rows_total, first.rows_total);
    let rows = &first.train["rows"];
    assert_eq!(
        rows["train"].as_i64().unwrap() + rows["test"].as_i64().unwrap(),
        source_rows
    );

    // The model learnt something, and the same rows gave the same model.
    let f1 = first.train["metrics"]["f1_macro"].as_f64().unwrap();
    assert!(f1 > 0.6, "macro F1 {f1}: {}", first.train);
    assert_eq!(first.train["metrics"], second.train["metrics"]);
    assert_eq!(first.train["best_params"], second.train["best_params"]);

    // Two versions; the second does not beat the first, so champion stays.
    assert_eq!(first.register["version"], "1", "{}", first.register);
    assert_eq!(first.register["promoted"], true);
    assert_eq!(second.register["version"], "2", "{}", second.register);
    assert_eq!(second.register["promoted"], false, "{}", second.register);
    assert!(
        second.register["reason"]
            .as_str()
            .unwrap()
            .contains("does not beat"),
        "{}",
        second.register
    );
    let champion = p
        .mlflow
        .get_model_version_by_alias(&p.model_name, CHAMPION)
        .await
        .unwrap();
    assert_eq!(champion.version, "1");
    assert_eq!(champion.run_id, first.train["run_id"].as_str().unwrap());
    let v2 = p
        .mlflow
        .get_model_version(&p.model_name, "2")
        .await
        .unwrap();
    assert_eq!(v2.tag("base_dt"), Some(DS));

    // Every trial is a child run of the training run: 4 candidates.
    let run_id = second.train["run_id"].as_str().unwrap();
    let experiment_id = second.train["experiment_id"].as_str().unwrap();
    let children = p
        .mlflow
        .search_all_runs(
            &[experiment_id],
            &format!("tags.mlflow.parentRunId = '{run_id}'"),
            100,
        )
        .await
        .unwrap();
    assert_eq!(children.len(), 4, "one child run per candidate");

    // The preprocessing artifacts, under <model_name>/<ds>/.
    let dir = format!("{}/{DS}", p.model_name);
    let listed = p.mlflow.list_artifacts(run_id, &dir).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("{dir}/preprocessing.json"),
            format!("{dir}/test.csv"),
            format!("{dir}/train.csv")
        ]
    );
    let got = tempfile::tempdir().unwrap();
    let learnt = p
        .mlflow
        .download_artifacts(run_id, &format!("{dir}/preprocessing.json"), got.path())
        .await
        .unwrap();
    let learnt: Value = serde_json::from_slice(&std::fs::read(learnt).unwrap()).unwrap();
    assert_eq!(learnt["steps"][0]["step"], "imputer", "{learnt}");
    assert_eq!(learnt["steps"][1]["step"], "robust_scaler", "{learnt}");
    assert_eq!(learnt["features"], json!(NUMERIC));
    assert_eq!(learnt["encoder"]["columns"], json!(CATEGORICAL));
    let train_csv = p
        .mlflow
        .download_artifacts(run_id, &format!("{dir}/train.csv"), got.path())
        .await
        .unwrap();
    let text = std::fs::read_to_string(train_csv).unwrap();
    let header = text.lines().next().unwrap();
    // The export's oddities are categories of their own.
    for column in [
        "credit_mix__",
        "payment_behaviour_!@9#%8",
        "occupation________",
    ] {
        assert!(
            header.split(',').any(|c| c == column),
            "{column} in {header}"
        );
    }
    assert_eq!(
        text.lines().count() as i64 - 1,
        rows["train"].as_i64().unwrap()
    );

    // The champion, loaded back, grades the table's rows.
    let served: FittedPipeline = p
        .mlflow
        .load_model(&format!("models:/{}@{CHAMPION}", p.model_name))
        .await
        .unwrap();
    let table_rows =
        p.db.get_records(
            &format!(
                "SELECT * FROM {} WHERE base_dt = '{DS}' ORDER BY id",
                p.tables.target
            ),
            Parameters::None,
        )
        .await
        .unwrap();
    let Predictions::Classes {
        labels, classes, ..
    } = served.predict_rows(&table_rows).unwrap()
    else {
        panic!("a classifier's predictions")
    };
    assert_eq!(classes, source::GRADES);
    assert_eq!(labels.len(), table_rows.len());
    let right = labels
        .iter()
        .zip(&table_rows)
        .filter(|(l, r)| r["credit_score"].as_str() == Some(l.as_str()))
        .count();
    let accuracy = right as f64 / labels.len() as f64;
    assert!(accuracy > 0.6, "accuracy {accuracy} on the table's rows");
}

#[tokio::test]
async fn embedded_defaults_twice_for_one_date() {
    let dir = tempfile::tempdir().unwrap();
    let conn = pipeline::embedded_connection(dir.path()).unwrap();
    let db: Arc<dyn SqlHook> = Arc::from(
        gust::hooks::sql::from_connection(&conn, None)
            .await
            .unwrap(),
    );
    let mlflow = MlflowHook::from_uri(&dir.path().join("mlruns").to_string_lossy()).unwrap();
    let p = CreditScoreCt::new(db, mlflow);
    assert_eq!(p.sql_file().unwrap(), "features.sqlite.sql");
    twice_for_one_date(&p).await;
}

#[tokio::test]
async fn an_empty_extract_fails_the_train_task_with_a_typed_error() {
    let (logs, _guard) = common::logs::capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let conn = pipeline::embedded_connection(dir.path()).unwrap();
    let db: Arc<dyn SqlHook> = Arc::from(
        gust::hooks::sql::from_connection(&conn, None)
            .await
            .unwrap(),
    );
    let mlflow = MlflowHook::from_uri(&dir.path().join("mlruns").to_string_lossy()).unwrap();
    let p = CreditScoreCt::new(db, mlflow);
    p.prepare_sources(DS).await.unwrap();

    // Months after the last source row: the extract runs and finds nothing.
    let late = "2025-06-01";
    let dag = p.dag().unwrap();
    let report = dag.run(run_config(late)).await;
    assert_eq!(
        report.task("data_extract").unwrap().state,
        TaskState::Success
    );
    let train = report.task("train").unwrap();
    assert_eq!(train.state, TaskState::Failed, "{report}");
    assert_eq!(train.tries, 1, "an empty extract is not retried");
    assert!(
        train
            .error
            .as_deref()
            .unwrap()
            .contains("the extract is empty"),
        "{report}"
    );
    assert_eq!(
        report.task("register").unwrap().state,
        TaskState::UpstreamFailed
    );
    // The seed's failure_callback logged it, with the task and the reason.
    let logged = logs.text();
    let line = logged
        .lines()
        .find(|l| l.contains("failure_callback"))
        .unwrap_or_else(|| panic!("no failure_callback line in:\n{logged}"));
    assert!(line.contains("train failed"), "{line}");
    assert!(line.contains("the extract is empty"), "{line}");
    assert!(line.contains("kind=invalid input"), "{line}");

    // The error itself is typed.
    let ctx = dag.context_for("train", &run_config(late)).unwrap();
    let e = p.train().execute(&ctx).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(e.operation(), "train_model", "{e}");
    assert!(e.message().contains("the extract is empty"), "{e}");
    assert!(!e.is_retryable());
    // Nothing was registered.
    assert!(
        p.mlflow
            .get_model_version_by_alias(&p.model_name, CHAMPION)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn mariadb_and_the_mlflow_server_twice_for_one_date() {
    let my = require_conn!("mysql_default");
    let server = require_conn!("mlflow_default");
    let db: Arc<dyn SqlHook> =
        Arc::from(gust::hooks::sql::from_connection(&my, None).await.unwrap());
    let mlflow = MlflowHook::from_connection(&server).unwrap();
    let mut p = CreditScoreCt::new(db.clone(), mlflow);
    let suffix = common::sql::table("ct");
    p.tables = source::Tables {
        features: format!("csf_{suffix}"),
        scores: format!("cs_{suffix}"),
        target: format!("cst_{suffix}"),
    };
    p.model_name = common::unique("credit_score_classification");
    p.experiment = common::unique("credit_score_ct");
    assert_eq!(p.sql_file().unwrap(), "features.sql");
    twice_for_one_date(&p).await;
    db.run(
        Sql::from(format!(
            "DROP TABLE {}; DROP TABLE {}; DROP TABLE {}",
            p.tables.features, p.tables.scores, p.tables.target
        )),
        RunOptions {
            split_statements: true,
            autocommit: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

/// `.env.example` parses as a `.env` file (every setting is commented out).
#[test]
fn the_env_example_parses() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/credit_score_ct/.env.example"
    );
    gust::load_dotenv_from(path).unwrap();
}
