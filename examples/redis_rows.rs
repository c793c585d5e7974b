//! Seed 000's Redis step: every CSV row stored as JSON under `row:{index}` in a Redis
//! Cluster, then read back `row:0, row:1, …` until one is missing.
//!
//! ```text
//! eval "$(scripts/services.sh env)"
//! cargo run --example redis_rows --features redis                      # conn redis_cluster, prefix row
//! cargo run --example redis_rows --features redis -- redis_default my:rows
//! ```
//!
//! The CSV is a small iris-like sample embedded below (the seed reads `iris1.csv`
//! from S3; the S3 side lives with the S3 hook). Its fields hold no quotes or
//! commas, so a plain split is enough here; numbers become JSON numbers, as pandas'
//! `row.to_dict()` gives them.

use std::collections::BTreeMap;

use chrono::TimeZone;
use gust::hooks::redis::RedisHook;
use gust::prelude::*;
use serde_json::Map;

const IRIS: &str = "\
Id,SepalLengthCm,SepalWidthCm,PetalLengthCm,PetalWidthCm,Species
1,5.1,3.5,1.4,0.2,Iris-setosa
2,4.9,3.0,1.4,0.2,Iris-setosa
3,4.7,3.2,1.3,0.2,Iris-setosa
51,7.0,3.2,4.7,1.4,Iris-versicolor
52,6.4,3.2,4.5,1.5,Iris-versicolor
53,6.9,3.1,4.9,1.5,Iris-versicolor
101,6.3,3.3,6.0,2.5,Iris-virginica
102,5.8,2.7,5.1,1.9,Iris-virginica
103,7.1,3.0,5.9,2.1,Iris-virginica
";

/// Parses `csv` (header line first) into JSON objects.
fn parse_csv(csv: &str) -> Result<Vec<Value>> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    lines
        .enumerate()
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != header.len() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "redis_rows.parse_csv",
                    format!(
                        "line {} has {} fields, the header {}",
                        i + 2,
                        fields.len(),
                        header.len()
                    ),
                ));
            }
            let row: Map<String, Value> = header
                .iter()
                .zip(fields)
                .map(|(h, f)| {
                    let v = f
                        .parse::<i64>()
                        .map(Value::from)
                        .or_else(|_| f.parse::<f64>().map(Value::from))
                        .unwrap_or_else(|_| Value::from(f));
                    (h.to_string(), v)
                })
                .collect();
            Ok(Value::Object(row))
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "gust=info".into()),
        )
        .with_target(false)
        .init();
    let mut args = std::env::args().skip(1);
    let conn_id = args.next().unwrap_or_else(|| "redis_cluster".into());
    let prefix = args.next().unwrap_or_else(|| "row".into());

    let hook = RedisHook::from_conn_id(&conn_id).await?;
    hook.test_connection().await?;

    let mut dag = Dag::builder("redis");
    let (h, p) = (hook.clone(), prefix.clone());
    let store = dag.add(Task::from_fn("read_csv_and_store_to_redis", move |_ctx| {
        let (h, p) = (h.clone(), p.clone());
        async move {
            let rows = parse_csv(IRIS)?;
            let n = h.set_rows_json(&p, rows).await?;
            Ok(json!({ "rows": n }))
        }
    }));
    let (h, p) = (hook.clone(), prefix.clone());
    let load = dag.add(Task::from_fn("load_from_redis", move |_ctx| {
        let (h, p) = (h.clone(), p.clone());
        async move {
            let rows: Vec<Value> = h.get_rows_json(&p).await?;
            if rows.is_empty() {
                return Err(Error::fail_now(format!("no rows under {p}:0")));
            }
            let mut species: BTreeMap<String, usize> = BTreeMap::new();
            for row in &rows {
                let s = row["Species"].as_str().unwrap_or("?").to_string();
                *species.entry(s).or_default() += 1;
            }
            Ok(json!({ "rows": rows.len(), "species": species }))
        }
    }));
    store.set_downstream(&load);

    let report = dag
        .build()?
        .test(
            chrono_tz::UTC
                .with_ymd_and_hms(2023, 9, 26, 0, 0, 0)
                .unwrap(),
        )
        .await;
    if !report.is_success() {
        return Err(Error::fail_now(format!("the DAG failed: {report:?}")));
    }
    println!(
        "stored: {}",
        report
            .xcom("read_csv_and_store_to_redis")
            .unwrap_or(&Value::Null)
    );
    println!(
        "loaded: {}",
        report.xcom("load_from_redis").unwrap_or(&Value::Null)
    );
    Ok(())
}
