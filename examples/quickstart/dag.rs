//! The quick start's DAG: three tasks on one SQL hook. Shared by the example's
//! `main` and by `tests/cli.rs`, which runs it through the command line.

use gust::hooks::sql::{Parameters, SqlHook};
use gust::hooks::sqlite::SqliteHook;
use gust::prelude::*;

/// `create_tables >> daily_summary >> report`, daily, in Asia/Seoul.
pub fn quickstart(hook: SqliteHook) -> Result<Dag> {
    let sql_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sql");
    let mut dag = Dag::builder("quickstart")
        .schedule(Schedule::Daily)
        .timezone(chrono_tz::Asia::Seoul)
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
    let h = hook;
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
    dag.build()
}
