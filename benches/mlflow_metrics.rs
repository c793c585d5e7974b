//! Logging 10,000 metric points to the real MLflow server: gust against the
//! Python client (`MlflowClient.log_metric` in a loop, and `log_batch`), side by
//! side in one run.
//!
//! ```text
//! eval "$(scripts/services.sh env)"
//! cargo bench --features mlflow --bench mlflow_metrics
//! GUST_BENCH_POINTS=2000 cargo bench --features mlflow --bench mlflow_metrics
//! ```
//!
//! Each row logs `GUST_BENCH_POINTS` (default 10,000) points of metric `loss`,
//! steps 0…n-1, into a fresh run, then reads the metric history back and checks
//! that every step arrived. Rows are interleaved (gust, Python, gust, Python) so
//! drift on the shared machine hits both sides alike. The Python side is
//! `benches/mlflow_metrics_client.py`, run with `$GUST_SERVICES_PYTHON`.

mod common;

use std::process::Command;
use std::time::Instant;

use futures::StreamExt;
use gust::hooks::mlflow::{Metric, MlflowHook, RunStatus};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn points(n: usize) -> Vec<Metric> {
    let ts = now_ms();
    (0..n)
        .map(|i| Metric {
            key: "loss".into(),
            value: 1.0 / (1.0 + i as f64),
            timestamp: ts + i as i64,
            step: i as i64,
        })
        .collect()
}

struct Row {
    who: &'static str,
    how: String,
    secs: f64,
}

async fn check_history(hook: &MlflowHook, run_id: &str, n: usize, who: &str) {
    let history = hook
        .get_metric_history(run_id, "loss")
        .await
        .expect("metric history");
    let mut steps: Vec<i64> = history.iter().map(|m| m.step).collect();
    steps.sort_unstable();
    steps.dedup();
    assert_eq!(
        steps.len(),
        n,
        "{who}: {} distinct steps arrived, expected {n}",
        steps.len()
    );
}

async fn gust_row(hook: &MlflowHook, exp: &str, how: &str, n: usize) -> Row {
    let run = hook.create_run(exp, Some(how)).await.expect("create run");
    let metrics = points(n);
    let start = Instant::now();
    match how {
        "log_metric loop" => {
            for m in &metrics {
                run.log_metric(&m.key, m.value, m.step)
                    .await
                    .expect("log_metric");
            }
        }
        "log_metric, 8 in flight" => {
            futures::stream::iter(&metrics)
                .map(|m| run.log_metric(&m.key, m.value, m.step))
                .buffer_unordered(8)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<gust::Result<Vec<_>>>()
                .expect("log_metric");
        }
        _ => run.log_batch(&metrics, &[], &[]).await.expect("log_batch"),
    }
    let secs = start.elapsed().as_secs_f64();
    run.end(RunStatus::Finished).await.expect("end run");
    check_history(hook, run.run_id(), n, how).await;
    Row {
        who: "gust",
        how: how.to_string(),
        secs,
    }
}

async fn python_row(hook: &MlflowHook, exp: &str, how: &str, n: usize) -> Row {
    let python = std::env::var("GUST_SERVICES_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/mlflow_metrics_client.py"
    );
    let out = Command::new(python)
        .args([script, how, exp, &n.to_string()])
        .env("MLFLOW_TRACKING_URI", hook.tracking_uri())
        .output()
        .expect("run the Python client");
    let v = common::child_result(&out, &format!("python {how}"));
    let run_id = v["run_id"].as_str().expect("run_id");
    check_history(hook, run_id, n, how).await;
    Row {
        who: "python",
        how: how.to_string(),
        secs: v["secs"].as_f64().unwrap_or(f64::NAN),
    }
}

#[tokio::main]
async fn main() -> gust::Result<()> {
    if std::env::var_os("MLFLOW_TRACKING_URI").is_none() {
        eprintln!(
            "mlflow_metrics: MLFLOW_TRACKING_URI is not set; run `eval \"$(scripts/services.sh env)\"` first. Skipped."
        );
        return Ok(());
    }
    let n: usize = std::env::var("GUST_BENCH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let hook = MlflowHook::from_env()?;
    let exp = hook
        .get_or_create_experiment(&format!("gust-bench-metrics-{}", std::process::id()))
        .await?;

    let mut rows = Vec::new();
    rows.push(gust_row(&hook, &exp, "log_batch", n).await);
    rows.push(python_row(&hook, &exp, "log_batch", n).await);
    rows.push(gust_row(&hook, &exp, "log_metric loop", n).await);
    rows.push(python_row(&hook, &exp, "log_metric loop", n).await);
    rows.push(gust_row(&hook, &exp, "log_metric, 8 in flight", n).await);

    println!("\n{n} metric points to {}\n", hook.tracking_uri());
    println!("| side | how | time | points/s | vs Python, same call |");
    println!("|---|---|---:|---:|---:|");
    let python_secs = |how: &str| {
        rows.iter()
            .find(|r| {
                r.who == "python"
                    && (r.how == how || how.starts_with("log_metric") && r.how == "log_metric loop")
            })
            .map(|r| r.secs)
    };
    for r in &rows {
        let ratio = python_secs(&r.how)
            .map(|p| format!("{:.2}x", p / r.secs))
            .unwrap_or_default();
        println!(
            "| {} | {} | {:.2} s | {:.0} | {} |",
            r.who,
            r.how,
            r.secs,
            n as f64 / r.secs,
            if r.who == "gust" {
                ratio
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
