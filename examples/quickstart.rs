//! The quick start: a three-task DAG that renders a templated `.sql` file for one
//! logical date and runs it on an embedded SQLite database.
//!
//! ```text
//! cargo run --example quickstart                 # logical date 2025-01-08 (Asia/Seoul)
//! cargo run --example quickstart -- 2025-01-07   # another date
//! ```
//!
//! It uses the connection `AIRFLOW_CONN_SQLITE_DEFAULT` when set (for example
//! `sqlite://%2Ftmp%2Fgust.db`), and an in-memory database otherwise.

use gust::hooks::sql::{Parameters, SqlHook};
use gust::hooks::sqlite::{DEFAULT_CONN_ID, SqliteHook};
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

    let ds = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "2025-01-08".into());
    let tz = chrono_tz::Asia::Seoul;
    let run = RunConfig::from_ds(&ds, tz)?;

    let hook = match std::env::var_os("AIRFLOW_CONN_SQLITE_DEFAULT") {
        Some(_) => SqliteHook::from_conn_id(DEFAULT_CONN_ID).await?,
        None => SqliteHook::open(DEFAULT_CONN_ID, ":memory:").await?,
    };
    let sql_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sql");

    let mut dag = Dag::builder("quickstart")
        .schedule(Schedule::Daily)
        .timezone(tz)
        .params(json!({ "keep_days": 7 }))
        .template_search_path(sql_dir);

    let h = hook.clone();
    let create = dag.add(Task::from_fn("create_tables", move |ctx| {
        let h = h.clone();
        async move { Ok(json!({ "rows": h.run_script(&ctx.render("create_tables.sql")?).await? })) }
    }));
    let h = hook.clone();
    let summarize =
        dag.add(
            Task::from_fn("daily_summary", move |ctx| {
                let h = h.clone();
                async move {
                    Ok(json!({ "rows": h.run_script(&ctx.render("daily_summary.sql")?).await? }))
                }
            })
            .with_options(TaskOptions::default().retries(2)),
        );
    let h = hook.clone();
    let report = dag.add(Task::from_fn("report", move |ctx| {
        let h = h.clone();
        async move {
            let sql = ctx.render(
                "SELECT customer, n_events, total FROM daily_summary \
                 WHERE base_dt = '{{ ds }}' ORDER BY customer",
            )?;
            Ok(Value::from(
                h.get_records(&sql, Parameters::None)
                    .await?
                    .into_iter()
                    .map(Value::Object)
                    .collect::<Vec<_>>(),
            ))
        }
    }));
    let _ = &create >> &summarize >> &report;

    let run = dag.build()?.run(run).await;
    println!("{run}");
    println!(
        "daily_summary for {ds}: {}",
        serde_json::to_string_pretty(run.xcom("report").unwrap_or(&Value::Null))?
    );
    run.into_result().map(|_| ())
}
