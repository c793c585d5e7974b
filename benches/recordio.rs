//! MNIST-shaped data to RecordIO-protobuf: gust's `recordio::write_dense_matrix`
//! vs the SageMaker Python SDK's `write_numpy_to_dense_tensor` (the seed
//! pipeline's step), side by side in one run, with time and peak RSS of each.
//!
//! | operation | gust | the seed's Python way |
//! |---|---|---|
//! | `local` | `write_dense_matrix` into a `LocalStore` file | `write_numpy_to_dense_tensor` into a file |
//! | `upload` (feature `s3`) | `write_dense_matrix` streamed to S3 (`S3Hook::put_stream`) | `write_numpy_to_dense_tensor` into a `BytesIO` + boto3 `upload_fileobj` |
//!
//! Both sides convert the same 50,000 × 784 float32 matrix with int64 labels,
//! already in memory (as after reading `mnist.pkl.gz`): pixel `k` of the matrix
//! is `((k · 2654435761) mod 2^32) / 2^32` as float32, label `i` is `i mod 10`.
//! Only the conversion and the write/upload are timed; the peak RSS (`VmHWM` /
//! `ru_maxrss`) includes the matrix on both sides (about 150 MiB). The two
//! outputs are compared byte for byte after each pair.
//!
//! ```text
//! eval "$(scripts/services.sh env)"     # AIRFLOW_CONN_S3S_FS, for `upload`
//! python3 -m venv /tmp/sm-venv && /tmp/sm-venv/bin/pip install 'sagemaker>=2.257,<3' numpy
//! GUST_BENCH_PYTHON=/tmp/sm-venv/bin/python cargo bench --features s3 --bench recordio
//! GUST_BENCH_PYTHON=/tmp/sm-venv/bin/python cargo bench --no-default-features --features object-store --bench recordio  # local only
//! ```
//!
//! Environment: `GUST_BENCH_PYTHON` (a Python with `sagemaker` 2.x, numpy and
//! boto3; default `$GUST_SERVICES_PYTHON`, then `python3`), `GUST_BENCH_ROWS`
//! (default 50,000), `GUST_BENCH_ROUNDS` (default 1; the sides alternate who
//! goes first), `GUST_BENCH_CONN` (default `s3s_fs`), `GUST_BENCH_DIR` (the
//! local files; default the system's temporary directory).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use gust::formats::recordio;
#[cfg(feature = "s3")]
use gust::hooks::object_store::ObjectStore;
use gust::hooks::object_store::{LocalStore, PutOptions};

const COLS: usize = 784;
const KEY: &str = "bench/mnist.rec";

/// An operation, its target (a directory or a bucket) and the Python side's
/// extra environment.
type Op = (&'static str, String, Vec<(&'static str, String)>);

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The matrix and labels both sides convert (see the module docs).
fn data(rows: usize) -> (Vec<f32>, Vec<i64>) {
    let x = (0..(rows * COLS) as u64)
        .map(|k| ((k * 2_654_435_761) % (1 << 32)) as f32 / 4_294_967_296.0)
        .collect();
    let y = (0..rows as i64).map(|i| i % 10).collect();
    (x, y)
}

fn bench_dir() -> PathBuf {
    std::env::var_os("GUST_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir)
}

async fn child(op: &str, target: &str, rows: usize) -> gust::Result<()> {
    let (x, y) = data(rows);
    let opts = PutOptions::new();
    let start = Instant::now();
    let put = match op {
        "local" => {
            let store = LocalStore::new(target)?;
            recordio::write_dense_matrix(&store, "b", KEY, &x, COLS, Some(&y), &opts).await?
        }
        #[cfg(feature = "s3")]
        "upload" => {
            let conn_id = std::env::var("GUST_BENCH_CONN").unwrap_or_else(|_| "s3s_fs".into());
            let hook = gust::hooks::s3::S3Hook::from_conn_id(&conn_id).await?;
            recordio::write_dense_matrix(&hook, target, KEY, &x, COLS, Some(&y), &opts).await?
        }
        other => panic!("unknown operation {other}"),
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"op\":\"{op}\",\"bytes\":{},\"secs\":{secs},\"peak_rss_kib\":{}}}",
        put.size,
        peak_rss_kib()
    );
    Ok(())
}

struct Row {
    who: &'static str,
    op: String,
    bytes: u64,
    secs: f64,
    rss_kib: u64,
}

fn run_child(cmd: &mut Command, who: &'static str) -> Row {
    let _ = Command::new("sync").status();
    let out = cmd.output().expect("run a benchmark child");
    let v = common::child_result(&out, who);
    Row {
        who,
        op: v["op"].as_str().unwrap_or("?").to_string(),
        bytes: v["bytes"].as_u64().unwrap_or(0),
        secs: v["secs"].as_f64().unwrap_or(f64::NAN),
        rss_kib: v["peak_rss_kib"].as_u64().unwrap_or(0),
    }
}

const PYTHON: &str = r#"
import io, json, os, resource, sys, time
import numpy as np
from sagemaker.amazon.common import write_numpy_to_dense_tensor
op, target, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
x = np.empty(rows * 784, dtype=np.float32)
for s in range(0, x.size, 1 << 20):  # in slices: no large temporaries in the peak RSS
    k = np.arange(s, min(s + (1 << 20), x.size), dtype=np.uint64)
    x[s:s + k.size] = ((k * np.uint64(2654435761)) % np.uint64(1 << 32)).astype(np.float32) / np.float32(4294967296.0)
x = x.reshape(rows, 784)
y = np.arange(rows, dtype=np.int64) % 10
start = time.perf_counter()
if op == "local":
    path = os.path.join(target, "b", "bench", "mnist.py.rec")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        write_numpy_to_dense_tensor(f, x, y)
    n = os.path.getsize(path)
else:
    import boto3
    from botocore.config import Config
    s3 = boto3.client("s3", endpoint_url=os.environ["BENCH_ENDPOINT"],
        aws_access_key_id=os.environ["BENCH_KEY_ID"], aws_secret_access_key=os.environ["BENCH_SECRET"],
        region_name=os.environ.get("BENCH_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                      response_checksum_validation="when_required"))
    buf = io.BytesIO()
    write_numpy_to_dense_tensor(buf, x, y)
    n = buf.tell()
    buf.seek(0)
    s3.upload_fileobj(buf, target, "bench/mnist.py.rec")
secs = time.perf_counter() - start
print(json.dumps({"op": op, "bytes": n, "secs": secs,
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"#;

fn same_files(a: &Path, b: &Path) -> bool {
    std::fs::read(a).ok() == std::fs::read(b).ok()
}

#[tokio::main]
async fn main() -> gust::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = std::env::var("GUST_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1], &args[i + 2], rows).await;
    }
    let python = std::env::var("GUST_BENCH_PYTHON")
        .or_else(|_| std::env::var("GUST_SERVICES_PYTHON"))
        .unwrap_or_else(|_| "python3".into());
    let has_sdk = Command::new(&python)
        .args(["-c", "import sagemaker.amazon.common, numpy, boto3"])
        .env("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_sdk {
        eprintln!(
            "recordio: {python} cannot import sagemaker 2.x, numpy and boto3; set GUST_BENCH_PYTHON. Skipped."
        );
        return Ok(());
    }
    let rounds: usize = std::env::var("GUST_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let exe = std::env::current_exe().expect("own path");
    let dir = tempfile::tempdir_in(bench_dir())?;
    std::fs::create_dir_all(dir.path().join("b"))?;
    let dir_s = dir.path().to_string_lossy().to_string();

    // (operation, target, extra env for Python): local always, upload with S3.
    #[cfg_attr(not(feature = "s3"), allow(unused_mut))]
    let mut ops: Vec<Op> = vec![("local", dir_s.clone(), vec![])];
    #[cfg(feature = "s3")]
    let s3 = s3_target().await?;
    #[cfg(feature = "s3")]
    if let Some((_, bucket, env)) = &s3 {
        ops.push(("upload", bucket.clone(), env.clone()));
    }

    let mut results = Vec::new();
    for round in 0..rounds {
        for (op, target, env) in &ops {
            let mut g = Command::new(&exe);
            g.args(["--child", op, target])
                .env("GUST_BENCH_ROWS", rows.to_string());
            let mut p = Command::new(&python);
            p.args(["-c", PYTHON, op, target, &rows.to_string()])
                .env("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
                .envs(env.iter().map(|(k, v)| (k, v)));
            let mut pair = [(g, "gust"), (p, "sagemaker SDK")];
            if round % 2 == 1 {
                pair.reverse();
            }
            for (mut cmd, who) in pair {
                results.push(run_child(&mut cmd, who));
            }
            let same = match *op {
                "local" => same_files(
                    &dir.path().join("b").join(KEY),
                    &dir.path().join("b/bench/mnist.py.rec"),
                ),
                #[cfg(feature = "s3")]
                _ => {
                    let (hook, bucket, _) = s3.as_ref().expect("s3 target");
                    hook.get(bucket, KEY).await? == hook.get(bucket, "bench/mnist.py.rec").await?
                }
                #[cfg(not(feature = "s3"))]
                _ => unreachable!(),
            };
            assert!(same, "{op}: gust's and the SDK's bytes differ");
        }
    }
    #[cfg(feature = "s3")]
    if let Some((hook, bucket, _)) = &s3 {
        hook.delete(bucket, &[KEY.to_string(), "bench/mnist.py.rec".to_string()])
            .await?;
        hook.client()
            .delete_bucket()
            .bucket(bucket)
            .send()
            .await
            .ok();
    }

    println!(
        "\n{rows} rows × {COLS} float32 + int64 labels → RecordIO-protobuf (outputs byte-identical)\n"
    );
    println!("| side | operation | bytes | time | rows/s | peak RSS |");
    println!("|---|---|---:|---:|---:|---:|");
    for r in &results {
        println!(
            "| {} | {} | {} | {:.2} s | {:.0} | {:.1} MiB |",
            r.who,
            r.op,
            r.bytes,
            r.secs,
            rows as f64 / r.secs,
            r.rss_kib as f64 / 1024.0
        );
    }
    for (op, _, _) in &ops {
        let secs = |who: &str| -> Vec<f64> {
            results
                .iter()
                .filter(|r| r.who == who && r.op == *op)
                .map(|r| r.secs)
                .collect()
        };
        let ratios: Vec<String> = secs("gust")
            .iter()
            .zip(secs("sagemaker SDK"))
            .map(|(g, p)| format!("{:.1}x", p / g))
            .collect();
        println!("{op}: gust throughput = {} the SDK's", ratios.join(", "));
    }
    Ok(())
}

/// The S3 hook, a fresh bucket and the Python side's endpoint and keys, or
/// `None` (saying why) when the connection is not set.
#[cfg(feature = "s3")]
async fn s3_target()
-> gust::Result<Option<(gust::hooks::s3::S3Hook, String, Vec<(&'static str, String)>)>> {
    let conn_id = std::env::var("GUST_BENCH_CONN").unwrap_or_else(|_| "s3s_fs".into());
    let env_var = format!("AIRFLOW_CONN_{}", conn_id.to_uppercase());
    if std::env::var_os(&env_var).is_none() {
        eprintln!(
            "recordio: {env_var} is not set (eval \"$(scripts/services.sh env)\"); `upload` skipped"
        );
        return Ok(None);
    }
    let hook = gust::hooks::s3::S3Hook::from_conn_id(&conn_id).await?;
    let conn = gust::Connection::from_env(&conn_id)?;
    let bucket = format!("gust-bench-recordio-{}", std::process::id());
    hook.create_bucket(&bucket).await?;
    let env = vec![
        (
            "BENCH_ENDPOINT",
            conn.extra_str("endpoint_url")
                .unwrap_or_default()
                .to_string(),
        ),
        ("BENCH_KEY_ID", conn.login().unwrap_or_default().to_string()),
        (
            "BENCH_SECRET",
            conn.password().unwrap_or_default().to_string(),
        ),
        (
            "BENCH_REGION",
            conn.extra_str("region_name")
                .unwrap_or("us-east-1")
                .to_string(),
        ),
    ];
    Ok(Some((hook, bucket, env)))
}
