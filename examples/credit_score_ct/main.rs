//! Seed 001's continuous-training pipeline, `credit_score_classification_ct`:
//! the seed's `features.sql` extracts the last month of the feature store
//! into `credit_score_features_target` for `{{ ds }}`, a grid-searched
//! gradient-boosted classifier (median imputation and a `RobustScaler` per
//! numeric column, one-hot categories) is trained on it with every trial
//! logged to MLflow and the fitted preprocessing kept under
//! `credit_score_classification/<ds>/`, and the model is registered, alias
//! `champion` moving only when macro F1 improves.
//!
//! ```text
//! cargo run --features full --example credit_score_ct                 # today (Asia/Seoul)
//! cargo run --features full --example credit_score_ct -- 2025-01-08   # a logical date
//! ```
//!
//! Configuration comes from the environment, and in development from a
//! `.env` file (never committed; `cp examples/credit_score_ct/.env.example .env`):
//! `AIRFLOW_CONN_FEATURE_STORE` (MySQL/MariaDB, the seed's `feature_store`;
//! unset: the SQLite file `gust-ct/feature_store.db`), `MLFLOW_TRACKING_URI`
//! (unset: the file store `file:./gust-ct/mlruns`), `GUST_CT_DIR` (the
//! working directory, default `gust-ct`). Before the DAG runs, the source
//! tables get deterministic synthetic rows for the days up to the logical
//! date they do not hold yet; a second run of a date replaces its extract
//! and registers the next version.

mod callbacks;
mod pipeline;
mod source;

use gust::prelude::*;

#[tokio::main]
async fn main() -> Result<()> {
    // Before anything reads the environment; a variable already set wins.
    let dotenv = gust::load_dotenv()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "gust=info,credit_score_ct=info".into()),
        )
        .with_target(false)
        .init();
    if let Some(path) = dotenv {
        tracing::info!(path = %path.display(), "loaded .env");
    }

    let tz = chrono_tz::Asia::Seoul;
    let ds = std::env::args().nth(1).unwrap_or_else(|| {
        chrono::Utc::now()
            .with_timezone(&tz)
            .format("%Y-%m-%d")
            .to_string()
    });
    let run = RunConfig::from_ds(&ds, tz)?;

    let workdir = pipeline::workdir();
    std::fs::create_dir_all(&workdir).map_err(|e| {
        Error::new(ErrorKind::Io, "credit_score_ct", e.to_string()).with("path", workdir.display())
    })?;
    let p = pipeline::CreditScoreCt::from_env(&workdir).await?;
    let days = p.prepare_sources(&ds).await?;
    println!(
        "feature store: {} ({}, {days} new day(s) of source rows); mlflow: {}",
        p.db.conn_id(),
        p.db.dialect(),
        p.mlflow.tracking_uri()
    );

    let run = p.dag()?.run(run).await;
    println!("{run}");
    for task in ["train", "register"] {
        if let Some(result) = run.xcom(task) {
            println!("{task}: {}", serde_json::to_string(result)?);
        }
    }
    run.into_result().map(|_| ())
}
