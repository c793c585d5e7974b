//! Template parity with Airflow: every case of `tests/data/templates/template_parity.json`
//! (Airflow 3.3.2's own rendering, made by `gen_template_parity.py` with Airflow's
//! sandboxed environment, filters, `StrictUndefined`, `macros` and pendulum dates)
//! rendered by gust's engine with the same context.
//!
//! - `expected`: gust renders exactly that text;
//! - `error`: Airflow raised, and gust fails with a template error too;
//! - `check`: a non-deterministic macro (uuid4, random, time), checked by shape;
//! - `gust_unsupported`: gust deliberately does not support it, and must fail
//!   with a template error instead of rendering something else.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use gust::ErrorKind;
use gust::template::{TemplateEngine, TemplateVars};
use serde_json::Value as Json;

fn data() -> Json {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/templates/template_parity.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn date(ctx: &Json, key: &str, tz: chrono_tz::Tz) -> DateTime<chrono_tz::Tz> {
    DateTime::<FixedOffset>::parse_from_rfc3339(ctx[key].as_str().unwrap())
        .unwrap()
        .with_timezone(&tz)
}

/// The context the generator rendered with, as gust's template variables.
fn vars(ctx: &Json) -> TemplateVars {
    let tz: chrono_tz::Tz = ctx["timezone"].as_str().unwrap().parse().unwrap();
    TemplateVars {
        logical_date: date(ctx, "logical_date", tz),
        data_interval_start: date(ctx, "data_interval_start", tz),
        data_interval_end: date(ctx, "data_interval_end", tz),
        dag_id: ctx["dag_id"].as_str().unwrap().into(),
        task_id: ctx["task_id"].as_str().unwrap().into(),
        run_id: ctx["run_id"].as_str().unwrap().into(),
        try_number: 1,
        params: ctx["params"].clone(),
        xcom: None,
    }
}

fn shape_ok(check: &str, text: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    match check {
        "uuid" => {
            let parts: Vec<&str> = text.split('-').collect();
            parts.len() == 5
                && [8, 4, 4, 4, 12]
                    .iter()
                    .zip(&parts)
                    .all(|(n, p)| hex(p, *n) && p.bytes().all(|b| !b.is_ascii_uppercase()))
                && parts[2].starts_with('4')
                && matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b')
        }
        "hex32" => hex(text, 32),
        "float_0_1" => text
            .parse::<f64>()
            .is_ok_and(|f| (0.0..1.0).contains(&f) && text.contains('.')),
        "float_positive" => text.parse::<f64>().is_ok_and(|f| f > 0.0),
        other => panic!("unknown check {other}"),
    }
}

#[test]
fn gust_renders_every_case_as_airflow_does() {
    let data = data();
    let vars = vars(&data["context"]);
    let engine = TemplateEngine::default();
    let cases = data["cases"].as_array().unwrap();
    assert!(cases.len() >= 80, "only {} cases", cases.len());
    let mut failures = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let template = case["template"].as_str().unwrap();
        let got = engine.render_inline(template, &vars);
        let (kind, ok) = if let Some(reason) = case.get("gust_unsupported") {
            let ok = matches!(&got, Err(e) if e.kind() == ErrorKind::Template);
            if !ok {
                failures.push(format!(
                    "{name}: unsupported ({reason}) must be a template error, got {got:?}"
                ));
            }
            ("unsupported", ok)
        } else if let Some(error) = case.get("error") {
            let ok = matches!(&got, Err(e) if e.kind() == ErrorKind::Template);
            if !ok {
                failures.push(format!(
                    "{name}: Airflow raised {error}, gust must fail with a template error, got {got:?}"
                ));
            }
            ("error", ok)
        } else if let Some(check) = case.get("check").and_then(Json::as_str) {
            let ok = matches!(&got, Ok(text) if shape_ok(check, text));
            if !ok {
                failures.push(format!("{name}: {got:?} is not a {check}"));
            }
            ("check", ok)
        } else {
            let expected = case["expected"].as_str().unwrap();
            let ok = matches!(&got, Ok(text) if text == expected);
            if !ok {
                failures.push(format!(
                    "{name}: {template:?}\n    airflow: {expected:?}\n    gust:    {got:?}"
                ));
            }
            ("expected", ok)
        };
        if ok {
            *counts.entry(kind).or_default() += 1;
        }
    }
    println!("passed: {counts:?} of {} cases", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Airflow:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_unsupported_case_says_why() {
    for case in data()["cases"].as_array().unwrap() {
        if let Some(reason) = case.get("gust_unsupported") {
            assert!(
                reason.as_str().is_some_and(|r| r.len() > 10),
                "{}: give a reason",
                case["name"]
            );
        }
    }
}

#[test]
fn errors_in_rewritten_operators_keep_the_line_and_name_the_variable() {
    let data = data();
    let vars = vars(&data["context"]);
    let engine = TemplateEngine::default();
    let e = engine
        .render_inline(
            "SELECT 1\n-- a comment\nWHERE x = {{ params.nope + 1 }}",
            &vars,
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Template);
    let text = e.to_string();
    assert!(
        text.contains("line 3: undefined variable 'params.nope'"),
        "{text}"
    );
    let e = engine
        .render_inline("a\nb\n{{ '%d' % params.table }}", &vars)
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("line 3"), "{text}");
    assert!(text.contains("%d format"), "{text}");
}
