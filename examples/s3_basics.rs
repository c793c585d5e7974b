//! S3 basics: a DAG that creates a bucket, writes a CSV for the logical date,
//! lists it, copies it and reads it back — the S3 half of seed 000.
//!
//! ```text
//! cargo run --example s3_basics --features s3
//! ```
//!
//! By default it runs on a [`LocalStore`] in a temporary directory, so it needs no
//! server. With `AIRFLOW_CONN_AWS_DEFAULT` set (for example
//! `aws://KEY:SECRET@/?region_name=us-east-1&endpoint_url=http%3A%2F%2F127.0.0.1%3A9000`,
//! or `eval "$(scripts/services.sh env)"`) the same code runs on that S3 endpoint.

use std::sync::Arc;

use chrono::TimeZone;
use gust::hooks::object_store::{LocalStore, ObjectStore};
use gust::hooks::s3::{DEFAULT_CONN_ID, S3Hook};
use gust::operators::s3::{S3CopyObject, S3CreateBucket, S3CreateObject, S3List};
use gust::prelude::*;

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "gust=info".into()),
        )
        .with_target(false)
        .init();

    let store: Arc<dyn ObjectStore> = match std::env::var_os("AIRFLOW_CONN_AWS_DEFAULT") {
        Some(_) => Arc::new(S3Hook::from_conn_id(DEFAULT_CONN_ID).await?),
        None => {
            let root = std::env::temp_dir().join(format!("gust-s3-basics-{}", std::process::id()));
            println!(
                "no AIRFLOW_CONN_AWS_DEFAULT: using a local store in {}",
                root.display()
            );
            Arc::new(LocalStore::new(root)?)
        }
    };
    println!("store: {store:?}");

    let tz = chrono_tz::Asia::Seoul;
    let mut dag = Dag::builder("s3_basics")
        .timezone(tz)
        .params(json!({ "bucket": format!("gust-basics-{}", std::process::id()) }));
    let bucket = dag.add(Task::new(
        "create_bucket",
        S3CreateBucket::new("{{ params.bucket }}").with_store(store.clone()),
    ));
    let write = dag.add(Task::new(
        "write_csv",
        S3CreateObject::new(
            "s3://{{ params.bucket }}/raw/{{ ds }}/iris1.csv",
            "sepal_length;species\n5.1;setosa\n4.9;setosa\n",
        )
        .replace(true) // idempotent re-runs of the same date
        .with_store(store.clone()),
    ));
    let list = dag.add(Task::new(
        "list_day",
        S3List::new("{{ params.bucket }}")
            .prefix("raw/{{ ds }}/")
            .with_store(store.clone()),
    ));
    let copy = dag.add(Task::new(
        "copy_latest",
        S3CopyObject::new(
            "s3://{{ params.bucket }}/raw/{{ ds }}/iris1.csv",
            "s3://{{ params.bucket }}/latest/iris1.csv",
        )
        .with_store(store.clone()),
    ));
    let s = store.clone();
    let read = dag.add(Task::from_fn("read_latest", move |ctx| {
        let s = s.clone();
        async move {
            let bucket = ctx.render("{{ params.bucket }}")?;
            let text = s.get(&bucket, "latest/iris1.csv").await?;
            let rows = text
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
                - 1;
            Ok(json!({ "rows": rows }))
        }
    }));
    let _ = &bucket >> &write >> &list >> &copy >> &read;

    // 2025-01-08 00:00 in Seoul exists exactly once (no DST), so `single` is `Some`.
    let date = tz
        .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
        .single()
        .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "s3_basics", "ambiguous date"))?;
    let run = dag.build()?.test(date).await;
    println!("{run}");
    println!(
        "keys of the day: {}",
        run.xcom("list_day").unwrap_or(&Value::Null)
    );
    println!(
        "rows in latest: {}",
        run.xcom("read_latest").unwrap_or(&Value::Null)
    );
    run.into_result().map(|_| ())
}
