//! Upload and download of a large object through a local S3 server: gust vs
//! boto3 (default `TransferConfig`), side by side in one run, reporting
//! throughput and peak RSS of each. Three operations:
//!
//! - `upload`: a generated stream — `ObjectStore::put_stream` vs `upload_fileobj`;
//! - `download`: into a discarding sink — `ObjectStore::get_stream` (chunks in
//!   order) vs `download_fileobj` into a seekable sink (ranges at offsets);
//! - `download_file`: to a file on disk — `S3Hook::download_file` vs boto3's
//!   `download_file`, both through a temporary file renamed at the end.
//!
//! ```text
//! eval "$(scripts/services.sh env)"
//! cargo bench --features s3 --bench s3_transfer                # 1 GiB on s3s-fs
//! GUST_BENCH_MIB=256 GUST_BENCH_CONN=aws_default cargo bench --features s3 --bench s3_transfer
//! ```
//!
//! Every measurement runs in its own process (this binary re-executed with
//! `--child`, or `benches/s3_transfer_boto3.py`) so its peak RSS (`VmHWM`,
//! `ru_maxrss`) is its own. The upload's data is generated while it is sent and
//! the stream download's discarded while it is received: neither side holds the
//! object. Downloaded files go to `GUST_BENCH_DIR` (default: the system's
//! temporary directory), are checked for their size and deleted.
//! The stream download is also measured against the server's own limit: ten
//! `curl` processes, each one ranged `GET` of a tenth of the object into
//! /dev/null (left out when curl cannot sign requests).
//!
//! Every measurement starts after a `sync`, so no transfer pays for the
//! previous one's writeback. `GUST_BENCH_OPS` picks the operations (comma-separated, default all three),
//! `GUST_BENCH_ROUNDS` repeats the interleaved gust/boto3 pairs (default 1),
//! `GUST_BENCH_DOWNLOAD=PART_MIB,PARTS[,STREAM_BUFFER_MIB]` overrides gust's
//! download part size (and threshold), parts in flight and stream buffer.

mod common;

use std::process::Command;
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use gust::hooks::object_store::{ObjectStore, PutOptions};
use gust::hooks::s3::S3Hook;

const CHUNK: usize = 1 << 20;
const KEY: &str = "bench/stream.bin";

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

async fn child(op: &str, conn_id: &str, bucket: &str, mib: usize) -> gust::Result<()> {
    let mut hook = S3Hook::from_conn_id(conn_id).await?;
    // `GUST_BENCH_DOWNLOAD=PART_MIB,PARTS[,STREAM_BUFFER_MIB]` overrides the
    // download defaults.
    if let Ok(v) = std::env::var("GUST_BENCH_DOWNLOAD") {
        let n: Vec<u64> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
        if let [part, parts, ..] = n[..] {
            hook = hook
                .with_download_threshold(part << 20)
                .with_download_parts(part << 20, parts as usize);
        }
        if let Some(buffer) = n.get(2) {
            hook = hook.with_download_stream_buffer(buffer << 20);
        }
    }
    let start = Instant::now();
    let mut downloaded = None;
    let bytes = match op {
        "upload" => {
            // One 1 MiB buffer shared by every chunk: the source costs no memory.
            let chunk = Bytes::from((0..CHUNK).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
            let stream = futures::stream::iter((0..mib).map(move |_| Ok(chunk.clone()))).boxed();
            hook.put_stream(bucket, KEY, stream, &PutOptions::new())
                .await?
                .size
        }
        "download_file" => {
            let path = hook
                .download_file(KEY, Some(bucket), bench_dir(), false)
                .await?;
            let n = std::fs::metadata(&path)?.len();
            downloaded = Some(path);
            n
        }
        _ => {
            hook.get_stream(bucket, KEY)
                .await?
                .try_fold(0u64, |n, c| async move { Ok(n + c.len() as u64) })
                .await?
        }
    };
    assert_eq!(bytes, (mib * CHUNK) as u64, "{op}: wrong size");
    let secs = start.elapsed().as_secs_f64();
    if let Some(path) = downloaded {
        std::fs::remove_file(path)?;
    }
    println!(
        "{{\"op\":\"{op}\",\"bytes\":{bytes},\"secs\":{secs},\"peak_rss_kib\":{}}}",
        peak_rss_kib()
    );
    Ok(())
}

fn bench_dir() -> std::path::PathBuf {
    std::env::var_os("GUST_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir)
}

struct Row {
    who: &'static str,
    op: String,
    secs: f64,
    rss_kib: u64,
}

fn run_child(cmd: &mut Command, who: &'static str) -> Row {
    // Flush the previous transfer's dirty pages first (a 1 GiB upload leaves
    // gigabytes of them in s3s-fs's files): otherwise their writeback runs
    // during the next measurement, and whoever goes first pays for it.
    let _ = Command::new("sync").status();
    let out = cmd.output().expect("run a benchmark child");
    let v = common::child_result(&out, who);
    Row {
        who,
        op: v["op"].as_str().unwrap_or("?").to_string(),
        secs: v["secs"].as_f64().unwrap_or(f64::NAN),
        rss_kib: v["peak_rss_kib"].as_u64().unwrap_or(0),
    }
}

#[tokio::main]
async fn main() -> gust::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let mib: usize = std::env::var("GUST_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let conn_id = std::env::var("GUST_BENCH_CONN").unwrap_or_else(|_| "s3s_fs".into());
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1], &conn_id, &args[i + 2], mib).await;
    }
    let env_var = format!("AIRFLOW_CONN_{}", conn_id.to_uppercase());
    if std::env::var_os(&env_var).is_none() {
        eprintln!(
            "s3_transfer: {env_var} is not set; run `eval \"$(scripts/services.sh env)\"` first. Skipped."
        );
        return Ok(());
    }
    let hook = S3Hook::from_conn_id(&conn_id).await?;
    let conn = gust::Connection::from_env(&conn_id)?;
    let bucket = format!("gust-bench-{}", std::process::id());
    hook.create_bucket(&bucket).await?;
    let exe = std::env::current_exe().expect("own path");
    let python = std::env::var("GUST_SERVICES_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/s3_transfer_boto3.py");
    let endpoint = conn
        .extra_str("endpoint_url")
        .unwrap_or_default()
        .to_string();
    let boto = |op: &str| {
        let mut c = Command::new(&python);
        c.args([script, op, &bucket, &mib.to_string()])
            .env("BENCH_ENDPOINT", &endpoint)
            .env("BENCH_KEY_ID", conn.login().unwrap_or_default())
            .env("BENCH_SECRET", conn.password().unwrap_or_default())
            .env(
                "BENCH_REGION",
                conn.extra_str("region_name").unwrap_or("us-east-1"),
            )
            .env("BENCH_DIR", bench_dir());
        c
    };
    let gust_cmd = |op: &str| {
        let mut c = Command::new(&exe);
        c.args(["--child", op, &bucket]);
        c
    };
    let ops: Vec<String> = std::env::var("GUST_BENCH_OPS")
        .unwrap_or_else(|_| "upload,download,download_file".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let rounds: usize = std::env::var("GUST_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut rows = Vec::new();
    // The downloads need the object: upload it once when only downloads run.
    if !ops.iter().any(|o| o == "upload") {
        run_child(&mut gust_cmd("upload"), "gust");
    }
    // Interleaved so that drift on the shared machine hits both sides alike.
    let curl = Curl {
        endpoint: endpoint.clone(),
        user: format!(
            "{}:{}",
            conn.login().unwrap_or_default(),
            conn.password().unwrap_or_default()
        ),
        region: conn
            .extra_str("region_name")
            .unwrap_or("us-east-1")
            .to_string(),
        url: format!("{}/{bucket}/{KEY}", endpoint.trim_end_matches('/')),
        bytes: (mib * CHUNK) as u64,
    };
    let with_curl = curl.available();
    for round in 0..rounds {
        for op in &ops {
            // Alternate who goes first, so neither side always follows the other.
            let mut pair = [(gust_cmd(op), "gust"), (boto(op), "boto3")];
            if round % 2 == 1 {
                pair.reverse();
            }
            for (mut cmd, who) in pair {
                rows.push(run_child(&mut cmd, who));
            }
            if op == "download" && with_curl {
                rows.push(curl.download());
            }
        }
    }
    hook.delete(&bucket, &[KEY.to_string()]).await?;
    hook.client()
        .delete_bucket()
        .bucket(&bucket)
        .send()
        .await
        .ok();

    println!("\n{mib} MiB through {conn_id} ({endpoint})\n");
    println!("| side | operation | time | throughput | peak RSS |");
    println!("|---|---|---:|---:|---:|");
    for r in &rows {
        let rss = match r.rss_kib {
            0 => "—".to_string(),
            kib => format!("{:.1} MiB", kib as f64 / 1024.0),
        };
        println!(
            "| {} | {} | {:.2} s | {:.0} MiB/s | {rss} |",
            r.who,
            r.op,
            r.secs,
            mib as f64 / r.secs,
        );
    }
    for op in &ops {
        // Pairs of the same round: gust's and boto3's rows of `op`, in order.
        let g: Vec<f64> = rows
            .iter()
            .filter(|r| r.who == "gust" && &r.op == op)
            .map(|r| r.secs)
            .collect();
        let b: Vec<f64> = rows
            .iter()
            .filter(|r| r.who == "boto3" && &r.op == op)
            .map(|r| r.secs)
            .collect();
        let ratios: Vec<String> = g
            .iter()
            .zip(&b)
            .map(|(g, b)| format!("{:.2}x", b / g))
            .collect();
        println!("{op}: gust throughput = {} boto3", ratios.join(", "));
    }
    let limit: Vec<String> = rows
        .iter()
        .filter(|r| r.who == CURL)
        .map(|r| format!("{:.0}", mib as f64 / r.secs))
        .collect();
    if !limit.is_empty() {
        println!(
            "download: the server's limit ({CURL}) = {} MiB/s",
            limit.join(", ")
        );
    }
    Ok(())
}

/// The side that measures the server's own limit for a download.
const CURL: &str = "curl ×10";

/// The physical limit of a download from this server: ten `curl` processes
/// (C, writing to /dev/null), each one `GET` of a tenth of the object, SigV4
/// signed by curl itself — no parts, no reassembly, no client runtime. Ten,
/// as boto3's default `max_concurrency`.
struct Curl {
    endpoint: String,
    user: String,
    region: String,
    url: String,
    bytes: u64,
}

impl Curl {
    /// Whether a curl that signs requests (`--aws-sigv4`, curl 7.75+) is here.
    fn available(&self) -> bool {
        let ok = Command::new("curl")
            .args(["--help", "all"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--aws-sigv4"));
        if !ok {
            eprintln!("s3_transfer: no curl with --aws-sigv4; the server's-limit row is left out");
        }
        ok
    }

    fn download(&self) -> Row {
        let _ = Command::new("sync").status();
        let n = 10;
        let sigv4 = format!("aws:amz:{}:s3", self.region);
        let start = Instant::now();
        let children: Vec<_> = (0..n)
            .map(|i| {
                let (from, to) = (i * self.bytes / n, (i + 1) * self.bytes / n - 1);
                Command::new("curl")
                    .args(["-sS", "--fail", "-o", "/dev/null", "--aws-sigv4", &sigv4])
                    .args(["--user", &self.user])
                    .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
                    .args(["-H", &format!("Range: bytes={from}-{to}")])
                    .arg(&self.url)
                    .spawn()
                    .expect("run curl")
            })
            .collect();
        for mut c in children {
            assert!(
                c.wait().expect("curl").success(),
                "curl failed against {}",
                self.endpoint
            );
        }
        Row {
            who: CURL,
            op: "download".into(),
            secs: start.elapsed().as_secs_f64(),
            rss_kib: 0,
        }
    }
}
