//! Rendering seed 001's `features.sql` and running a wide DAG: gust side by side
//! with what Airflow does (Jinja2's sandboxed environment with StrictUndefined,
//! which Airflow renders templated fields with). gust's engine lives for the whole
//! run, so the file is parsed once; the Jinja2 side is measured both with its
//! template cache and with a new environment per render, as Airflow builds one
//! per task instance.
//!
//! ```text
//! cargo bench --bench templates                      # Python side via $GUST_SERVICES_PYTHON or python3 (needs jinja2)
//! ```

use std::process::Command;
use std::time::{Duration, Instant};

use chrono::TimeZone;
use gust::prelude::*;

const RENDERS: u32 = 20_000;
const TASKS: usize = 1_000;

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sql");
    let seoul = chrono_tz::Asia::Seoul;
    let ctx = Context::builder("credit_score_classification_ct", "data_extract")
        .logical_date(seoul.with_ymd_and_hms(2025, 1, 8, 0, 0, 0).unwrap())
        .template_search_path(dir)
        .build();

    // Warm up, and check the output once.
    let expected =
        std::fs::read_to_string(format!("{dir}/features.2025-01-08.expected.sql")).unwrap();
    assert_eq!(ctx.render("features.sql").unwrap(), expected);
    let t0 = Instant::now();
    for _ in 0..RENDERS {
        std::hint::black_box(ctx.render("features.sql").unwrap());
    }
    let gust = t0.elapsed();

    // An inline field with an operator: compiled per render, as every inline field
    // is, plus the operator rewrite (cached by the field's text).
    let inline = "s3://bucket/{{ ds_nodash }}/m{{ logical_date.month + 1 }}/{{ task_id }}.csv";
    ctx.render_inline(inline).unwrap();
    let t0 = Instant::now();
    for _ in 0..RENDERS {
        std::hint::black_box(ctx.render_inline(inline).unwrap());
    }
    let gust_inline = t0.elapsed();

    let python = std::env::var("GUST_SERVICES_PYTHON").unwrap_or_else(|_| "python3".into());
    let jinja = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/templates_jinja2.py"
        ))
        .arg(dir)
        .arg(RENDERS.to_string())
        .output();
    let jinja: Option<(Duration, Duration)> = match jinja {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let secs: Vec<f64> = text
                .split_whitespace()
                .filter_map(|s| s.parse().ok())
                .collect();
            match secs[..] {
                [cached, fresh] => Some((
                    Duration::from_secs_f64(cached),
                    Duration::from_secs_f64(fresh),
                )),
                _ => None,
            }
        }
        Ok(out) => {
            eprintln!(
                "jinja2 side skipped: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("jinja2 side skipped: cannot run {python}: {e}");
            None
        }
    };

    println!("render seed 001's features.sql x{RENDERS}");
    println!(
        "{:<44} {:>12} {:>12} {:>8}",
        "implementation", "total", "per render", "vs gust"
    );
    let row = |name: &str, d: Duration| {
        println!(
            "{name:<44} {:>12.3?} {:>12.2?} {:>7.1}x",
            d,
            d / RENDERS,
            d.as_secs_f64() / gust.as_secs_f64()
        );
    };
    row("gust Context::render (minijinja)", gust);
    row("gust Context::render_inline, 1 line with +", gust_inline);
    if let Some((cached, fresh)) = jinja {
        row("Jinja2 sandbox, template cached", cached);
        row("Jinja2 sandbox, new env per render (Airflow)", fresh);
    }

    // Runner overhead: TASKS no-op tasks fanned out from one root.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut dag = Dag::builder("wide").max_active_tasks(64);
    let root = dag.add(Task::from_fn("root", |_| async { Ok(Value::Null) }));
    for i in 0..TASKS {
        let leaf = dag.add(Task::from_fn(format!("leaf_{i}"), |ctx| async move {
            Ok(Value::from(ctx.task_id().len()))
        }));
        root.set_downstream(&leaf);
    }
    let dag = dag.build().unwrap();
    let t0 = Instant::now();
    let report = rt.block_on(dag.test(seoul.with_ymd_and_hms(2025, 1, 8, 0, 0, 0).unwrap()));
    let wide = t0.elapsed();
    assert!(report.is_success());
    println!(
        "\nDAG of {} no-op tasks: {:.2?} total, {:.2?} per task",
        TASKS + 1,
        wide,
        wide / (TASKS as u32 + 1)
    );
}
