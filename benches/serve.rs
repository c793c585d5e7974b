//! `/predict` latency of gust's model server against `mlflow models serve`,
//! side by side in one run: p50 / p99 for one row and for 1,000 rows.
//!
//! ```text
//! eval "$(scripts/services.sh env)"      # GUST_SERVICES_PYTHON (mlflow, scikit-learn, pandas)
//! cargo bench --features serve --bench serve
//! GUST_BENCH_ROUNDS=1 GUST_BENCH_REQUESTS_1=200 GUST_BENCH_REQUESTS_1000=20 cargo bench --features serve --bench serve
//! ```
//!
//! The model, on both sides: the iris CSV of `examples/iris_pipeline`
//! (150 rows), a pipeline of `RobustScaler` then a decision tree, fitted on
//! all rows. gust's is logged and registered on an MLflow file store in a
//! temporary directory and served by [`gust::serve::ModelServer`] from
//! `models:/BenchIris@champion`, in a child process (this binary re-executed).
//! scikit-learn's is saved with `mlflow.sklearn.save_model`
//! (`benches/serve_mlflow.py`) twice — answering `predict` (MLflow's default:
//! labels) and `predict_proba` (probabilities) — each served by
//! `mlflow models serve --env-manager local` (one uvicorn worker, its default).
//!
//! The client is one reqwest client per server (a kept-alive connection),
//! sending requests one after the other; a request's latency runs from
//! sending to having read the whole response body. Every body is the same
//! `dataframe_split` JSON for all servers (gust accepts MLflow's shapes), the
//! 1,000 rows the iris rows cycled. Every response is checked (status 200,
//! one prediction per row). Rounds rotate which server goes first, so drift on
//! the shared machine hits all alike; percentiles pool every round.
//! `GUST_BENCH_ROUNDS` (default 3), `GUST_BENCH_REQUESTS_1` (default 2,000)
//! and `GUST_BENCH_REQUESTS_1000` (default 300) set the amounts; `GUST_BENCH_MLFLOW=0`
//! leaves the MLflow servers out.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gust::hooks::mlflow::MlflowHook;
use gust::ml::estimator::Estimator;
use gust::ml::pipeline::Pipeline;
use gust::ml::preprocessing::RobustScaler;
use gust::ml::{Dataset, TargetKind};
use gust::serve::ModelServer;
use serde_json::{Map, Value, json};

const IRIS_CSV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/iris_pipeline/iris1.csv"
);
const FEATURES: [&str; 4] = ["SepalLength", "SepalWidth", "PetalLength", "PetalWidth"];
const MODEL: &str = "BenchIris";
const CHILD_VAR: &str = "GUST_BENCH_SERVE_CHILD";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn iris_rows() -> Vec<Map<String, Value>> {
    let text = std::fs::read_to_string(IRIS_CSV).expect("iris CSV");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(';').collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            header
                .iter()
                .zip(l.split(';'))
                .map(|(h, v)| {
                    let value = match v.parse::<f64>() {
                        Ok(x) => json!(x),
                        Err(_) => json!(v),
                    };
                    (h.to_string(), value)
                })
                .collect()
        })
        .collect()
}

/// The `dataframe_split` body of `n` rows (the iris rows cycled).
fn body(rows: &[Map<String, Value>], n: usize) -> String {
    let data: Vec<Vec<Value>> = rows
        .iter()
        .cycle()
        .take(n)
        .map(|r| FEATURES.iter().map(|f| r[*f].clone()).collect())
        .collect();
    json!({"dataframe_split": {"columns": FEATURES, "data": data}}).to_string()
}

/// The child: serves `models:/BenchIris@champion` of the store at `uri` on
/// 127.0.0.1 until its stdin closes.
fn child(uri: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let hook = MlflowHook::from_uri(uri).expect("hook");
        let server = ModelServer::builder(hook, MODEL)
            .start()
            .await
            .expect("model server");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        println!("{}", json!({"addr": addr.to_string()}));
        std::io::stdout().flush().ok();
        let stdin_closed = async {
            let _ = tokio::task::spawn_blocking(|| {
                let mut sink = String::new();
                while std::io::stdin().read_line(&mut sink).unwrap_or(0) > 0 {}
            })
            .await;
        };
        server
            .serve_with_shutdown(listener, stdin_closed)
            .await
            .expect("serve");
    });
}

/// A server under test: a name, a base URL, its predict route, and its process.
struct Target {
    name: String,
    url: String,
    child: Child,
}

impl Drop for Target {
    fn drop(&mut self) {
        // Its own process group (uvicorn runs under `mlflow models serve`).
        let pid = self.child.id() as i32;
        unsafe {
            libc::kill(-pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn start_gust(store_uri: &str) -> Target {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_VAR, store_uri)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("gust server child");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("the child's address");
    let addr: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    Target {
        name: "gust ModelServer".into(),
        url: format!("http://{}/predict", addr["addr"].as_str().unwrap()),
        child,
    }
}

async fn start_mlflow(
    mlflow_bin: &str,
    model_dir: &str,
    name: &str,
    log: &std::path::Path,
) -> Target {
    let port = free_port();
    let log = std::fs::File::create(log).unwrap();
    // It runs `uvicorn` from PATH: the venv's, beside the mlflow script.
    let bin = std::path::Path::new(mlflow_bin)
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let child = Command::new(mlflow_bin)
        .env("PATH", path)
        .args([
            "models",
            "serve",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
        ])
        .args(["-p", &port.to_string(), "-m", model_dir])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("mlflow models serve");
    let target = Target {
        name: name.into(),
        url: format!("http://127.0.0.1:{port}/invocations"),
        child,
    };
    let client = reqwest::Client::new();
    let ping = format!("http://127.0.0.1:{port}/ping");
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(&ping).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "{name} did not answer /ping within 180 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("{name}: up after {:.1} s", started.elapsed().as_secs_f64());
    target
}

/// How many predictions a response holds (gust's `predictions.labels`,
/// MLflow's `predictions` list).
fn predictions_in(v: &Value) -> usize {
    match &v["predictions"] {
        Value::Array(a) => a.len(),
        Value::Object(o) => o
            .get("labels")
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
        _ => 0,
    }
}

async fn measure(
    client: &reqwest::Client,
    t: &Target,
    body: &str,
    rows: usize,
    n: usize,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        let r = client
            .post(&t.url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request");
        let status = r.status();
        let bytes = r.bytes().await.expect("body");
        let micros = start.elapsed().as_secs_f64() * 1e6;
        assert!(status.is_success(), "{}: {status}", t.name);
        // Checking every response costs a parse; outside the clock.
        if i == 0 || i + 1 == n {
            let v: Value = serde_json::from_slice(&bytes).expect("JSON");
            assert_eq!(predictions_in(&v), rows, "{}: {v}", t.name);
        }
        out.push(micros);
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn fmt_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

fn main() {
    if let Ok(uri) = std::env::var(CHILD_VAR) {
        child(&uri);
        return;
    }
    let rounds = env_usize("GUST_BENCH_ROUNDS", 3);
    let n1 = env_usize("GUST_BENCH_REQUESTS_1", 2000);
    let n1000 = env_usize("GUST_BENCH_REQUESTS_1000", 300);
    let with_mlflow = std::env::var("GUST_BENCH_MLFLOW").map_or(true, |v| v != "0");
    let python = std::env::var("GUST_SERVICES_PYTHON").unwrap_or_else(|_| "python3".into());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rows = iris_rows();
    let store_uri = format!("file://{}", dir.path().join("mlruns").display());

    // gust's model, registered as BenchIris@champion.
    let fitted = {
        let data = Dataset::from_rows(&rows, &FEATURES, "Species", TargetKind::Classes).unwrap();
        Pipeline::new(Estimator::decision_tree_classifier())
            .step(RobustScaler::new())
            .fit(&data)
            .unwrap()
    };
    rt.block_on(async {
        let hook = MlflowHook::from_uri(&store_uri).unwrap();
        let exp = hook.get_or_create_experiment("bench").await.unwrap();
        let run = hook.create_run(&exp, None).await.unwrap();
        let info = hook
            .log_model(run.run_id(), "model", &fitted, Some(fitted.signature()))
            .await
            .unwrap();
        hook.create_registered_model(MODEL).await.unwrap();
        let v = hook
            .create_model_version(MODEL, &info.model_uri, Some(run.run_id()))
            .await
            .unwrap();
        hook.set_registered_model_alias(MODEL, "champion", &v.version)
            .await
            .unwrap();
    });

    let mut targets = vec![start_gust(&store_uri)];
    let mut versions = Value::Null;
    if with_mlflow {
        let out = Command::new(&python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/benches/serve_mlflow.py"
            ))
            .arg(IRIS_CSV)
            .arg(dir.path().join("sklearn"))
            .output()
            .expect("python");
        versions = common::child_result(&out, "serve_mlflow.py");
        let mlflow_bin = std::path::Path::new(&python)
            .with_file_name("mlflow")
            .to_string_lossy()
            .into_owned();
        for (f, label) in [
            ("predict", "mlflow models serve, predict"),
            ("predict_proba", "mlflow models serve, predict_proba"),
        ] {
            let model = versions["models"][f].as_str().unwrap().to_string();
            let log = dir.path().join(format!("mlflow-{f}.log"));
            targets.push(rt.block_on(start_mlflow(&mlflow_bin, &model, label, &log)));
        }
    }
    eprintln!("python side: {versions}");

    let one = body(&rows, 1);
    let thousand = body(&rows, 1000);
    eprintln!(
        "bodies: 1 row {} bytes, 1,000 rows {} bytes",
        one.len(),
        thousand.len()
    );
    // Same labels on both sides? (Two tree implementations may split ties apart.)
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut labels: Vec<(String, Vec<Value>)> = Vec::new();
        for t in &targets {
            let v: Value = client
                .post(&t.url)
                .header("content-type", "application/json")
                .body(body(&rows, rows.len()))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let l = match &v["predictions"] {
                Value::Array(a) => a.clone(),
                Value::Object(o) => o["labels"].as_array().cloned().unwrap_or_default(),
                _ => Vec::new(),
            };
            labels.push((t.name.clone(), l));
        }
        for (name, l) in &labels[1..] {
            if l.first().is_some_and(Value::is_string) {
                let same = l.iter().zip(&labels[0].1).filter(|(a, b)| a == b).count();
                eprintln!("labels equal to gust's on the 150 iris rows: {name}: {same}/150");
            }
        }
    });

    // The model alone, in process: what a request costs beyond HTTP and JSON.
    let in_process = |n_rows: usize, reps: usize| {
        let batch: Vec<Map<String, Value>> = rows.iter().cycle().take(n_rows).cloned().collect();
        let mut t: Vec<f64> = (0..reps)
            .map(|_| {
                let start = Instant::now();
                let p = fitted.predict_rows(&batch).unwrap();
                let us = start.elapsed().as_secs_f64() * 1e6;
                std::hint::black_box(p);
                us
            })
            .collect();
        t.sort_by(f64::total_cmp);
        percentile(&t, 50.0)
    };
    eprintln!(
        "predict_rows in process, p50: 1 row {}, 1,000 rows {}",
        fmt_us(in_process(1, 2000)),
        fmt_us(in_process(1000, 200))
    );

    let n = targets.len();
    let mut samples: Vec<[Vec<f64>; 2]> = (0..n).map(|_| [Vec::new(), Vec::new()]).collect();
    let clients: Vec<reqwest::Client> = (0..n).map(|_| reqwest::Client::new()).collect();
    for round in 0..rounds {
        for k in 0..n {
            let i = (k + round) % n;
            let t = &targets[i];
            rt.block_on(async {
                // Warm-up: connection, caches, Python's first-call costs.
                measure(&clients[i], t, &one, 1, 50).await;
                measure(&clients[i], t, &thousand, 1000, 5).await;
                let a = measure(&clients[i], t, &one, 1, n1).await;
                let b = measure(&clients[i], t, &thousand, 1000, n1000).await;
                let mut sa = a.clone();
                sa.sort_by(f64::total_cmp);
                let mut sb = b.clone();
                sb.sort_by(f64::total_cmp);
                eprintln!(
                    "round {} {:<36} 1 row p50 {} p99 {} | 1,000 rows p50 {} p99 {}",
                    round + 1,
                    t.name,
                    fmt_us(percentile(&sa, 50.0)),
                    fmt_us(percentile(&sa, 99.0)),
                    fmt_us(percentile(&sb, 50.0)),
                    fmt_us(percentile(&sb, 99.0)),
                );
                samples[i][0].extend(a);
                samples[i][1].extend(b);
            });
        }
    }

    println!(
        "\n| server | 1 row p50 | 1 row p99 | 1,000 rows p50 | 1,000 rows p99 | requests (1 / 1,000 rows) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let mut p50s = Vec::new();
    for (t, [a, b]) in targets.iter().zip(samples.iter_mut()) {
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        println!(
            "| {} | {} | {} | {} | {} | {} / {} |",
            t.name,
            fmt_us(percentile(a, 50.0)),
            fmt_us(percentile(a, 99.0)),
            fmt_us(percentile(b, 50.0)),
            fmt_us(percentile(b, 99.0)),
            a.len(),
            b.len()
        );
        p50s.push((percentile(a, 50.0), percentile(b, 50.0)));
    }
    for (t, (a, b)) in targets.iter().zip(&p50s).skip(1) {
        println!(
            "{}: p50 {:.1}x gust's for 1 row, {:.1}x for 1,000 rows",
            t.name,
            a / p50s[0].0,
            b / p50s[0].1
        );
    }
    drop(targets);
}
