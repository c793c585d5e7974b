//! Fuzzing every parser of outside input: property-based, seeded from the
//! real files in `tests/data/`, `tests/fixtures/` and `examples/` (each
//! mutated: bytes overwritten, inserted, the end cut off) and from random
//! bytes. The property is always the same: a typed error or a value, never a
//! panic (and no hang: every case ends, or the test would not).
//!
//! `GUST_FUZZ_CASES` sets the cases per target (default 300, so the full
//! suite stays quick); `.ci/run` runs this file once more with 3000 and
//! `--nocapture`, which prints the count of each target.
//!
//! The targets need `full`, except `airflow_frames` (feature `airflow`), so
//! that `cargo test --features airflow,testing --test fuzz` runs it alone.
#![cfg_attr(not(feature = "full"), allow(dead_code))]

use std::path::Path;
use std::sync::Arc;

#[cfg(feature = "full")]
use gust::Connection;
#[cfg(feature = "full")]
use gust::formats::csv::{CsvFormat, Parser as CsvParser};
#[cfg(feature = "full")]
use gust::formats::jsonl::Parser as JsonlParser;
#[cfg(feature = "full")]
use gust::formats::{mnist, recordio};
#[cfg(feature = "full")]
use gust::hooks::mlflow::MlModel;
#[cfg(feature = "full")]
use gust::hooks::object_store::{check_bucket, check_key, parse_s3_url};
#[cfg(feature = "full")]
use gust::hooks::sagemaker::error_from_response;
#[cfg(feature = "full")]
use gust::hooks::sql::Dialect;
#[cfg(feature = "full")]
use gust::hooks::sql::implement::split_statements;
#[cfg(feature = "full")]
use gust::operators::sagemaker::{SageMakerTraining, check_name};
#[cfg(feature = "full")]
use gust::template::{TemplateEngine, TemplateVars};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn cases() -> u32 {
    std::env::var("GUST_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn read(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("corpus file {}: {e}", path.display()))
}

/// Every file of `dir` whose name ends in one of `endings`.
fn read_dir(dir: &str, endings: &[&str]) -> Vec<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut names: Vec<_> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("corpus dir {}: {e}", path.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| endings.iter().any(|end| p.to_string_lossy().ends_with(end)))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// Random bytes, or a corpus entry mutated: bytes overwritten, bytes
/// inserted, the end cut off.
fn inputs(corpus: Vec<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    assert!(!corpus.is_empty(), "an empty corpus");
    let corpus = Arc::new(corpus);
    let n = corpus.len();
    let mutated = (
        0..n,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        prop::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(move |(i, overwrite, insert, cut)| {
            let mut b = corpus[i].clone();
            for (at, byte) in overwrite {
                if !b.is_empty() {
                    let k = at.index(b.len());
                    b[k] = byte;
                }
            }
            for (at, byte) in insert {
                let k = at.index(b.len() + 1);
                b.insert(k, byte);
            }
            if let Some(at) = cut {
                b.truncate(at.index(b.len() + 1));
            }
            b
        });
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        4 => mutated,
    ]
    .boxed()
}

/// Text inputs: the bytes above as (lossy) UTF-8.
fn texts(corpus: Vec<Vec<u8>>) -> BoxedStrategy<String> {
    inputs(corpus)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
        .boxed()
}

/// Runs `check` on `cases()` inputs of `strategy`; prints the count.
fn fuzz<T: std::fmt::Debug>(
    name: &str,
    strategy: BoxedStrategy<T>,
    check: impl Fn(T) -> Result<(), TestCaseError>,
) {
    let n = cases();
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, check)
        .unwrap_or_else(|e| panic!("fuzz target {name}: {e}"));
    println!("fuzz target {name}: {n} cases, no panic");
}

#[cfg(feature = "full")]
fn uri_corpus() -> Vec<Vec<u8>> {
    // Every URI and JSON of Airflow's own reference file, one entry each.
    let all: serde_json::Value =
        serde_json::from_slice(&read("tests/data/airflow_connections.json")).unwrap();
    let mut out = Vec::new();
    let mut walk = vec![&all];
    while let Some(v) = walk.pop() {
        match v {
            serde_json::Value::String(s) if s.contains("://") || s.starts_with('{') => {
                out.push(s.as_bytes().to_vec())
            }
            serde_json::Value::Array(a) => walk.extend(a.iter()),
            serde_json::Value::Object(m) => walk.extend(m.values()),
            _ => {}
        }
    }
    out.extend([
        b"postgres://u:p%40ss@h:5432/db?sslmode=require".to_vec(),
        b"aws://KEY:SECRET@/?region_name=us-east-1&endpoint_url=http%3A%2F%2F127.0.0.1%3A55000"
            .to_vec(),
        br#"{"conn_type": "redis", "host": "h", "port": 6379, "extra": {"ssl": true}}"#.to_vec(),
    ]);
    out
}

#[cfg(feature = "full")]
#[test]
fn connection_uris_and_json() {
    fuzz("connection", texts(uri_corpus()), |s| {
        let _ = Connection::from_uri("fuzz", &s);
        let _ = Connection::from_json("fuzz", &s);
        if let Ok(c) = Connection::from_uri("fuzz", &s) {
            // What parses, prints and parses again.
            let _ = Connection::from_uri("fuzz", &c.get_uri());
            let _ = c.as_json();
        }
        Ok(())
    });
}

#[cfg(feature = "full")]
fn sql_corpus() -> Vec<Vec<u8>> {
    let mut c = read_dir("tests/fixtures/sql", &[".sql"]);
    c.extend(read_dir("examples/sql", &[".sql"]));
    c.push(b"SELECT 'a;b' AS x; -- c;\n/* d; */ SELECT $$e;f$$; SELECT `g;h`".to_vec());
    c
}

#[cfg(feature = "full")]
#[test]
fn sql_statement_splitter() {
    fuzz("sql_split", texts(sql_corpus()), |s| {
        for dialect in [Dialect::Postgres, Dialect::MySql, Dialect::Sqlite] {
            let _ = split_statements(dialect, &s);
        }
        Ok(())
    });
}

#[cfg(feature = "full")]
#[test]
fn templates() {
    let mut corpus = sql_corpus();
    corpus.push(
        b"{{ ds }} {{ macros.ds_add(ds, -7) }} {{ logical_date.strftime('%Y-%m') }} {% if params.x %}{{ params.x }}{% endif %}"
            .to_vec(),
    );
    // Every case of the Airflow parity test (operators, macros, pendulum methods,
    // `%` formatting), each alone.
    let parity: serde_json::Value =
        serde_json::from_slice(&read("tests/data/templates/template_parity.json")).unwrap();
    corpus.extend(
        parity["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["template"].as_str().unwrap().as_bytes().to_vec()),
    );
    let engine = TemplateEngine::default();
    let vars = TemplateVars {
        logical_date: chrono::TimeZone::with_ymd_and_hms(
            &chrono_tz::Asia::Seoul,
            2025,
            1,
            8,
            0,
            0,
            0,
        )
        .unwrap(),
        data_interval_start: chrono::TimeZone::with_ymd_and_hms(
            &chrono_tz::Asia::Seoul,
            2025,
            1,
            8,
            0,
            0,
            0,
        )
        .unwrap(),
        data_interval_end: chrono::TimeZone::with_ymd_and_hms(
            &chrono_tz::Asia::Seoul,
            2025,
            1,
            9,
            0,
            0,
            0,
        )
        .unwrap(),
        dag_id: "d".into(),
        task_id: "t".into(),
        run_id: "r".into(),
        try_number: 1,
        params: serde_json::json!({"x": 1}),
        xcom: None,
    };
    fuzz("template", texts(corpus), |s| {
        let _ = engine.render_inline(&s, &vars);
        Ok(())
    });
}

#[cfg(feature = "full")]
#[test]
fn csv_and_jsonl_readers() {
    let mut corpus = vec![read("examples/iris_pipeline/iris1.csv")];
    corpus.push(b"a,b\n\"x,\"\"y\",2\n\"open\n".to_vec());
    corpus.push(b"{\"a\": 1}\n{\"b\": [1, 2]}\n\n{\"c\": \"\\u00e9\"}\n".to_vec());
    let strategy = (inputs(corpus), 1usize..64).boxed();
    fuzz("csv_jsonl", strategy, |(bytes, chunk)| {
        for format in [
            CsvFormat::new(),
            CsvFormat::new().delimiter(b';').header(false).null("NA"),
        ] {
            let mut p = CsvParser::new(&format, "fuzz");
            let mut out = Vec::new();
            let fed = bytes.chunks(chunk).try_for_each(|c| p.feed(c, &mut out));
            if fed.is_ok() {
                let _ = p.finish(&mut out);
            }
        }
        let mut p = JsonlParser::new("fuzz");
        let mut out = Vec::new();
        if bytes
            .chunks(chunk)
            .try_for_each(|c| p.feed(c, &mut out))
            .is_ok()
        {
            let _ = p.finish(&mut out);
        }
        Ok(())
    });
}

#[cfg(feature = "full")]
#[test]
fn recordio_reader() {
    let corpus = read_dir("tests/data/recordio", &[".rec"]);
    fuzz("recordio", inputs(corpus), |b| {
        let _ = recordio::read_records(&b);
        Ok(())
    });
}

#[cfg(feature = "full")]
#[test]
fn mnist_pickle_and_idx_readers() {
    let corpus = read_dir("tests/data/mnist", &[".gz", ".pkl", "ubyte"]);
    fuzz("mnist", inputs(corpus), |b| {
        let _ = mnist::read_pickle(&b);
        let _ = mnist::read_idx_images(&b);
        let _ = mnist::read_idx_labels(&b);
        Ok(())
    });
}

const MLMODEL: &str = "artifact_path: model
flavors:
  gust_pipeline:
    data: model.json
    gust_version: 0.1.0
  python_function:
    env: conda.yaml
    loader_module: mlflow.pyfunc.model
mlflow_version: 2.19.0
model_uuid: 3f1b5a7c
run_id: 0a1b2c
signature:
  inputs: '[{\"type\": \"double\", \"name\": \"SepalLength\", \"required\": true}]'
  outputs: '[{\"type\": \"long\", \"required\": true}]'
utc_time_created: '2025-01-08 00:00:00.000000'
";

#[cfg(feature = "full")]
#[test]
fn mlmodel_yaml() {
    fuzz("mlmodel", texts(vec![MLMODEL.as_bytes().to_vec()]), |s| {
        let _ = MlModel::from_yaml(&s);
        Ok(())
    });
}

#[cfg(feature = "full")]
#[test]
fn s3_urls_keys_and_buckets() {
    let corpus = vec![
        b"s3://team06-mlflow-feature/raw/2025-01-08/iris1.csv".to_vec(),
        b"s3://b/k with spaces/%2F/../x".to_vec(),
        b"s3a://bucket.with.dots/key?versionId=1".to_vec(),
    ];
    fuzz("s3_url", texts(corpus), |s| {
        if let Ok((bucket, key)) = parse_s3_url(&s) {
            let _ = check_bucket(&bucket);
            let _ = check_key(&key);
        }
        let _ = check_key(&s);
        let _ = check_bucket(&s);
        Ok(())
    });
}

#[cfg(feature = "full")]
#[test]
fn sagemaker_configs_names_and_error_bodies() {
    let corpus = vec![
        br#"{"TrainingJobName": "mnistclassifier-{{ ds_nodash }}", "ResourceConfig": {"InstanceCount": "{{ params.n }}"}}"#.to_vec(),
        br#"{"__type": "com.amazonaws.sagemaker#ValidationException", "message": "Could not find model"}"#.to_vec(),
        b"<!doctype html><title>500 Internal Server Error</title>".to_vec(),
    ];
    fuzz(
        "sagemaker",
        (inputs(corpus), 100u16..600).boxed(),
        |(b, status)| {
            let text = String::from_utf8_lossy(&b);
            let _ = SageMakerTraining::from_json(&text);
            let _ = check_name(&text);
            let _ = error_from_response(status, None, &b);
            let _ = error_from_response(status, Some(&text), &b);
            Ok(())
        },
    );
}

/// The `meta.yaml` files of the `file:` MLflow store (an experiment's, a
/// run's, a registered model's, a version's), as the store wrote them, then
/// mutated on disk: every read of them is a value or a typed error.
#[cfg(feature = "full")]
#[test]
fn mlflow_file_store_meta_yaml() {
    use gust::hooks::mlflow::{FileStore, MlflowStore};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let root = store.root().to_path_buf();
    let (exp, run) = rt.block_on(async {
        let exp = store.create_experiment("fuzz", None).await.unwrap();
        let run = store.create_run(&exp, Some("r"), 0, &[]).await.unwrap();
        store.create_registered_model("m").await.unwrap();
        store
            .create_model_version(
                "m",
                &format!("runs:/{}/model", run.run_id),
                Some(&run.run_id),
            )
            .await
            .unwrap();
        (exp, run.run_id)
    });
    let files = [
        root.join(&exp).join("meta.yaml"),
        root.join(&exp).join(&run).join("meta.yaml"),
        root.join("models/m/meta.yaml"),
        root.join("models/m/version-1/meta.yaml"),
    ];
    let corpus: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    fuzz(
        "mlflow_meta_yaml",
        (0..files.len(), inputs(corpus)).boxed(),
        |(target, bytes)| {
            std::fs::write(&files[target], &bytes).unwrap();
            rt.block_on(async {
                let _ = store.get_experiment(&exp).await;
                let _ = store.get_experiment_by_name("fuzz").await;
                let _ = store.get_run(&run).await;
                let _ = store.search_runs(&[exp.as_str()], "", 10, None).await;
                let _ = store.get_registered_model("m").await;
                let _ = store.get_model_version("m", "1").await;
                let _ = store.search_model_versions("name='m'", 10, None).await;
            });
            Ok(())
        },
    );
}

/// The `--comm` frames of Airflow's supervisor protocol, seeded from the
/// golden frames Airflow 3.3.2's own encoder wrote (`tests/data/airflow/frames`,
/// whole and without their length prefix): through the stream reader, the
/// in-memory splitter, both envelope decoders, the msgpack → JSON conversion
/// and the typed bodies. Every input gives a value or an `InvalidInput`/`Io`
/// error; the stream reader ends on an in-memory reader (no hang).
#[cfg(feature = "airflow")]
#[test]
fn airflow_frames() {
    use gust::ErrorKind;
    use gust::airflow::codec;
    use gust::airflow::messages::{FromSupervisor, ToSupervisor};

    fn typed_error(e: &gust::Error) -> Result<(), TestCaseError> {
        prop_assert!(
            matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Io),
            "{e}"
        );
        Ok(())
    }
    fn decode(payload: &[u8]) -> Result<(), TestCaseError> {
        match codec::decode_response(payload) {
            Ok(f) => {
                for slot in [f.body, f.error].into_iter().flatten() {
                    if let Err(e) = FromSupervisor::from_json(slot) {
                        typed_error(&e)?;
                    }
                }
            }
            Err(e) => typed_error(&e)?,
        }
        match codec::decode_request(payload) {
            Ok(f) => {
                if let Some(Err(e)) = f.body.map(ToSupervisor::from_json) {
                    typed_error(&e)?;
                }
            }
            Err(e) => typed_error(&e)?,
        }
        if let Err(e) = codec::msgpack_bytes_to_json(payload) {
            typed_error(&e)?;
        }
        Ok(())
    }

    let frames = read_dir("tests/data/airflow/frames", &[".bin"]);
    assert!(frames.len() >= 14, "golden frames: {}", frames.len());
    let mut corpus: Vec<Vec<u8>> = frames.iter().map(|f| f[4..].to_vec()).collect();
    corpus.extend(frames);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    fuzz("airflow_frames", inputs(corpus), |bytes| {
        decode(&bytes)?;
        match codec::split_frame(&bytes) {
            Ok(payload) => decode(payload)?,
            Err(e) => typed_error(&e)?,
        }
        rt.block_on(async {
            let mut reader = &bytes[..];
            loop {
                match codec::read_frame(&mut reader).await {
                    Ok(Some(payload)) => decode(&payload)?,
                    Ok(None) => break,
                    Err(e) => {
                        typed_error(&e)?;
                        break;
                    }
                }
            }
            Ok(())
        })
    });
}
