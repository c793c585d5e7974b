//! Unit-testing your own operator and a whole DAG without servers, with the
//! `testing` feature: `MemoryStore` in place of S3, `FaultyStore` to make
//! the upload fail the way S3 does, `Context::builder` for the upstream's
//! XCom, and paused time so retry delays pass at once. With `redis` too,
//! gust's own `S3ToRedis` runs against `MemoryRedis`, its second batch
//! failing as a reset connection would.
//!
//! ```text
//! cargo test --features testing --example testing_operators   # the tests below
//! cargo test --features testing,redis --example testing_operators
//! cargo run --features testing --example testing_operators    # the DAG once, in memory
//! ```

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gust::hooks::object_store::{ObjectStore, PutOptions};
use gust::prelude::*;
use gust::testing::MemoryStore;

/// A user's operator: writes the row count the upstream `extract` task
/// reported as a small JSON object for the run's date.
struct WriteSummary {
    store: Arc<dyn ObjectStore>,
    bucket: String,
}

#[async_trait]
impl Operator for WriteSummary {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        let rows = ctx
            .xcom_pull("extract")
            .and_then(|v| v["rows"].as_u64())
            // A missing upstream result is a bug, not a blip: never retried.
            .ok_or_else(|| Error::fail_now("extract reported no row count"))?;
        let key = ctx.render_inline("summary/{{ ds }}.json")?;
        let body = json!({"ds": ctx.ds(), "rows": rows}).to_string();
        self.store
            .put(
                &self.bucket,
                &key,
                Bytes::from(body),
                &PutOptions::new().replace(true),
            )
            .await?;
        Ok(json!({"key": key, "rows": rows}))
    }
}

/// `extract >> summary`, the summary retried twice, 30 s apart.
fn dag(store: Arc<dyn ObjectStore>) -> Result<Dag> {
    let mut dag = Dag::builder("daily_summary");
    let extract = dag.add(Task::from_fn("extract", |_ctx| async {
        Ok(json!({"rows": 150}))
    }));
    let summary = dag.add(
        Task::new(
            "summary",
            WriteSummary {
                store,
                bucket: "reports".into(),
            },
        )
        .with_options(
            TaskOptions::default()
                .retries(2)
                .retry_delay(Duration::from_secs(30)),
        ),
    );
    let _ = &extract >> &summary;
    dag.build()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let store = MemoryStore::new();
    store.create_bucket("reports").await?;
    let report = dag(Arc::new(store))?
        .run(RunConfig::from_ds("2025-01-08", chrono_tz::UTC)?)
        .await;
    println!("{report}");
    println!(
        "summary: {}",
        report.xcom("summary").cloned().unwrap_or_default()
    );
    report.into_result().map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use gust::TaskState;
    use gust::testing::{Fault, FaultyStore, StoreOp, run_task};

    fn day() -> chrono::DateTime<chrono_tz::Tz> {
        chrono_tz::UTC
            .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
            .unwrap()
    }

    async fn store() -> MemoryStore {
        let store = MemoryStore::new();
        store.create_bucket("reports").await.unwrap();
        store
    }

    #[tokio::test]
    async fn the_operator_alone_with_its_upstreams_xcom() {
        let store = store().await;
        let op = WriteSummary {
            store: Arc::new(store.clone()),
            bucket: "reports".into(),
        };
        let ctx = Context::builder("daily_summary", "summary")
            .logical_date(day())
            .xcom("extract", json!({"rows": 3}))
            .build();
        let xcom = run_task(&op, &ctx).await.unwrap();
        assert_eq!(xcom, json!({"key": "summary/2025-01-08.json", "rows": 3}));
        let body = store
            .get("reports", "summary/2025-01-08.json")
            .await
            .unwrap();
        assert_eq!(&body[..], br#"{"ds":"2025-01-08","rows":3}"#);

        // Without the upstream's result: a permanent failure, nothing written.
        let ctx = Context::builder("daily_summary", "summary")
            .logical_date(day())
            .build();
        let e = run_task(&op, &ctx).await.unwrap_err();
        assert!(!e.is_retryable(), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_dag_retries_a_throttled_upload() {
        let memory = store().await;
        let faulty = Arc::new(FaultyStore::new(memory.clone()).fail_nth(
            StoreOp::Put,
            1,
            Fault::error(ErrorKind::Unavailable),
        ));
        let report = dag(faulty.clone()).unwrap().test(day()).await;
        assert!(report.is_success(), "{report}");
        let summary = report.task("summary").unwrap();
        assert_eq!(summary.tries, 2);
        // (The 30 s retry delay passed at once: time is paused.)
        assert_eq!(faulty.calls(StoreOp::Put), 2);
        assert!(
            memory
                .exists("reports", "summary/2025-01-08.json")
                .await
                .unwrap()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_is_not_retried() {
        let memory = store().await;
        let faulty = Arc::new(FaultyStore::new(memory.clone()).fail_from(
            StoreOp::Put,
            1,
            Fault::error(ErrorKind::Auth),
        ));
        let report = dag(faulty.clone()).unwrap().test(day()).await;
        let summary = report.task("summary").unwrap();
        assert_eq!(summary.state, TaskState::Failed);
        assert_eq!(summary.tries, 1);
        assert!(summary.error.as_deref().unwrap().contains("injected fault"));
        assert!(
            !memory
                .exists("reports", "summary/2025-01-08.json")
                .await
                .unwrap()
        );
    }

    /// A load into Redis whose second batch meets a reset connection: the
    /// task's retry writes every row again, and the keys are exactly the rows.
    #[cfg(feature = "redis")]
    #[tokio::test(start_paused = true)]
    async fn a_redis_load_retried_after_a_reset() {
        use gust::testing::{MemoryRedis, RedisOp};
        use gust::transfers::s3_to_redis::S3ToRedis;

        let store = MemoryStore::new();
        store.create_bucket("features").await.unwrap();
        let csv: String = std::iter::once("id,species\n".to_string())
            .chain((0..10).map(|i| format!("{i},iris-{i}\n")))
            .collect();
        store
            .put("features", "iris.csv", Bytes::from(csv), &PutOptions::new())
            .await
            .unwrap();
        let redis =
            MemoryRedis::new().fail_nth(RedisOp::Pipeline, 2, Fault::error(ErrorKind::Unavailable));
        let load = S3ToRedis::new("s3://features/iris.csv", "iris:{{ ds }}:{{ index }}")
            .batch_rows(4)
            .max_in_flight(1)
            .replace(true)
            .with_store(Arc::new(store))
            .with_hook(redis.hook("redis_default"));
        let mut dag = Dag::builder("features_to_redis");
        dag.add(
            Task::new("load", load).with_options(
                TaskOptions::default()
                    .retries(1)
                    .retry_delay(Duration::from_secs(60)),
            ),
        );
        let report = dag.build().unwrap().test(day()).await;
        assert!(report.is_success(), "{report}");
        assert_eq!(report.task("load").unwrap().tries, 2);
        let mut expected: Vec<String> = (0..10).map(|i| format!("iris:2025-01-08:{i}")).collect();
        expected.sort();
        assert_eq!(redis.keys(), expected);
        let row: Value = redis
            .hook("redis_default")
            .get_json("iris:2025-01-08:3")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row, json!({"id": "3", "species": "iris-3"}));
    }
}
