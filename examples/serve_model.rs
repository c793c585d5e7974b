//! Seed 002's small HTTP API on seed 001's model store: serves the `champion`
//! of a registered model and follows the alias without a restart.
//!
//! ```text
//! cargo run --features full --example train_model    # registers IrisGust@champion
//! cargo run --features full --example serve_model    # serves it on 127.0.0.1:8080
//! ```
//!
//! `MLFLOW_TRACKING_URI` picks the MLflow store (default
//! `file:./gust-train/mlruns`, the train_model example's), `GUST_SERVE_MODEL`
//! the model (default `IrisGust`), `GUST_SERVE_ALIAS` the alias (default
//! `champion`), `GUST_SERVE_ADDR` the address (default `127.0.0.1:8080`) and
//! `GUST_SERVE_POLL_SECS` how often the alias is checked (default 30). Ctrl-C
//! stops it after the requests in flight.

use std::time::Duration;

use gust::hooks::mlflow::MlflowHook;
use gust::serve::{DEFAULT_ALIAS, ModelServer};

fn var_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() -> gust::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "gust=info".into()),
        )
        .with_target(false)
        .init();
    let name = var_or("GUST_SERVE_MODEL", "IrisGust");
    let alias = var_or("GUST_SERVE_ALIAS", DEFAULT_ALIAS);
    let addr = var_or("GUST_SERVE_ADDR", "127.0.0.1:8080");
    let poll = var_or("GUST_SERVE_POLL_SECS", "30")
        .parse::<u64>()
        .map_err(|e| {
            gust::Error::new(
                gust::ErrorKind::Config,
                "serve_model",
                format!("GUST_SERVE_POLL_SECS: {e}"),
            )
        })?;

    let mlflow = MlflowHook::from_env_or("file:./gust-train/mlruns")?;
    let server = ModelServer::builder(mlflow, &name)
        .alias(&alias)
        .poll_interval(Duration::from_secs(poll))
        .reload_endpoint(true)
        .start()
        .await?;
    let model = server.current();
    let columns = model.pipeline().input_columns();
    let row: serde_json::Map<String, serde_json::Value> = columns
        .iter()
        .map(|c| (c.to_string(), serde_json::json!(1.0)))
        .collect();
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let bound = listener.local_addr()?;
    println!(
        "serving models:/{name}@{alias} (version {}) on http://{bound}\n\
         \n  curl -s http://{bound}/health\
         \n  curl -s http://{bound}/predict -H 'Content-Type: application/json' \\\
         \n       -d '{{\"dataframe_records\": [{}]}}'\
         \n  curl -s -X POST http://{bound}/reload    # check the alias now (also every {poll} s)\n",
        model.version(),
        serde_json::Value::Object(row),
    );
    server
        .serve_with_shutdown(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
