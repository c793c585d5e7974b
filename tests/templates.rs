//! Rendering templated SQL the way seed 001's data-extract task does.

use chrono::TimeZone;
use gust::prelude::*;

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sql")
}

#[test]
fn seed_001_features_sql_renders_for_2025_01_08() {
    let expected =
        std::fs::read_to_string(fixtures().join("features.2025-01-08.expected.sql")).unwrap();
    let ctx = Context::builder("credit_score_classification_ct", "data_extract")
        .logical_date(
            chrono_tz::Asia::Seoul
                .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
                .unwrap(),
        )
        .template_search_path(fixtures())
        .build();
    let rendered = ctx.render("features.sql").unwrap();
    assert_eq!(rendered, expected);
    assert!(!rendered.contains("{{"));
}

#[tokio::test]
async fn a_dag_task_renders_the_sql_file_from_its_search_path() {
    let expected =
        std::fs::read_to_string(fixtures().join("features.2025-01-08.expected.sql")).unwrap();
    let mut dag = Dag::builder("credit_score_classification_ct")
        .timezone(chrono_tz::Asia::Seoul)
        .template_search_path(fixtures());
    dag.add(Task::from_fn("data_extract", |ctx| async move {
        Ok(ctx.render("features.sql")?.into())
    }));
    let report = dag
        .build()
        .unwrap()
        .test(
            chrono_tz::Asia::Seoul
                .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
                .unwrap(),
        )
        .await;
    assert_eq!(
        report.xcom("data_extract").unwrap(),
        &Value::String(expected)
    );
}

#[test]
fn a_missing_sql_file_names_the_file() {
    let ctx = Context::builder("d", "t")
        .template_search_path(fixtures())
        .build();
    let err = ctx.render("nope/missing.sql").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.context("template"), Some("nope/missing.sql"));
    assert_eq!(err.context("task_id"), Some("t"));
}

#[test]
fn render_inline_never_loads_a_file() {
    let ctx = Context::builder("d", "t")
        .logical_date(
            chrono_tz::Asia::Seoul
                .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
                .unwrap(),
        )
        .template_search_path(fixtures())
        .build();
    // `render` loads tests/fixtures/sql/features.sql; `render_inline` keeps the key.
    assert_eq!(
        ctx.render_inline("exports/{{ ds_nodash }}/features.sql")
            .unwrap(),
        "exports/20250108/features.sql"
    );
    assert_eq!(ctx.render_inline("features.sql").unwrap(), "features.sql");
    assert!(ctx.render("features.sql").unwrap().contains("DELETE FROM"));
}

// Issue #11: an undefined variable is named in the error, not just "undefined value".
#[test]
fn an_undefined_variable_is_named_inline() {
    let ctx = Context::builder("d", "t")
        .params(serde_json::json!({"table": "iris"}))
        .build();
    let err = ctx
        .render("SELECT *\nFROM {{ params.table }}\nWHERE ds = '{{ dss }}'")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Template);
    let text = err.to_string();
    assert!(text.contains("undefined variable 'dss'"), "{text}");
    assert!(text.contains("line 3"), "{text}");

    let err = ctx
        .render("SELECT * FROM {{ params.table }}_{{ params.missing }}")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Template);
    let text = err.to_string();
    assert!(text.contains("'params.missing'"), "{text}");
    assert!(text.contains("line 1"), "{text}");
}

#[test]
fn an_undefined_variable_is_named_in_a_sql_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("q.sql"),
        "SELECT *\nFROM t\nWHERE base_dt = '{{ ds }}'\n  AND n < {{ params.limit }};\n",
    )
    .unwrap();
    let ctx = Context::builder("d", "t")
        .template_search_path(dir.path())
        .build();
    let err = ctx.render("q.sql").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Template);
    let text = err.to_string();
    assert!(text.contains("template q.sql line 4"), "{text}");
    assert!(text.contains("undefined variable 'params.limit'"), "{text}");
}

#[tokio::test]
async fn ti_xcom_pull_reads_an_upstream_tasks_xcom() {
    use serde_json::json;
    let mut dag = Dag::builder("seed002");
    let train = dag.add(Task::from_fn("train", |ctx| async move {
        ctx.xcom_push("job", json!("mnist-2-1700000000"))?;
        Ok(json!({"Training": {"ModelArtifacts": {
            "S3ModelArtifacts": "s3://b/out/mnist-2-1700000000/output/model.tar.gz"}}}))
    }));
    let model = dag.add(Task::from_fn("model", |ctx| async move {
        Ok(json!(ctx.render_inline(
            "{{ ti.xcom_pull(task_ids='train')['Training']['ModelArtifacts']['S3ModelArtifacts'] }}|\
             {{ ti.xcom_pull('train', key='job') }}|{{ task_instance.task_id }}"
        )?))
    }));
    let missing = dag.add(Task::from_fn("missing", |ctx| async move {
        Ok(json!(
            ctx.render_inline("{{ ti.xcom_pull(task_ids='nope') }}")?
        ))
    }));
    let _ = &train >> &model;
    let _ = &model >> &missing;
    let report = dag
        .build()
        .unwrap()
        .test(
            chrono_tz::UTC
                .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
                .unwrap(),
        )
        .await;
    assert_eq!(
        report.xcom("model").unwrap(),
        "s3://b/out/mnist-2-1700000000/output/model.tar.gz|mnist-2-1700000000|model"
    );
    let error = report.task("missing").unwrap().error.clone().unwrap();
    assert!(
        error.contains("task `nope` has no XCom `return_value` in this run"),
        "{error}"
    );
}

// Issue #15: Python's operators work in `.sql` files and their `{% include %}`s
// too (the loader rewrites them), and errors there keep their file and line.
#[test]
fn python_operators_in_sql_files_and_includes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("outer.sql"),
        "-- month {{ '%02d' % logical_date.month }}\n{% include 'inner.sql' %}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("inner.sql"),
        "SELECT '{{ (logical_date - macros.timedelta(days=1)).strftime('%Y-%m-%d') }}'\n\
         -- 100% sure: a % outside a tag is text\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.sql"),
        "SELECT 1\n-- x\n  + {{ params.nope - 1 }}\n",
    )
    .unwrap();
    let ctx = Context::builder("d", "t")
        .logical_date(
            chrono_tz::UTC
                .with_ymd_and_hms(2025, 3, 1, 0, 0, 0)
                .unwrap(),
        )
        .template_search_path(dir.path())
        .build();
    assert_eq!(
        ctx.render("outer.sql").unwrap(),
        "-- month 03\nSELECT '2025-02-28'\n-- 100% sure: a % outside a tag is text\n\n"
    );
    let err = ctx.render("bad.sql").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("template bad.sql line 3: undefined variable 'params.nope'"),
        "{text}"
    );
}
