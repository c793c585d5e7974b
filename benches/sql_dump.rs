//! `bulk_dump` of a 1,000,000-row PostgreSQL table to a CSV file: gust side by
//! side with the physical limit (`psql \copy (SELECT …) TO file`, libpq's COPY
//! straight to disk) and with what a Python user writes instead (pandas
//! `read_sql` + `to_csv`, chunked pandas, and seed 002's PostgresToS3 way:
//! `get_records` + `csv.writer` into a `StringIO`).
//!
//! Each implementation runs in its own child process (this binary re-executed,
//! `psql`, or `benches/sql_dump_pandas.py`), so that its peak RSS is its own:
//! the parent reaps each child with `wait4` and reads `ru_maxrss`. Every output
//! file is checked to hold the header and 1,000,000 records (no value of the
//! table contains a newline, so records are lines), then deleted.
//!
//! The table `gust_bench_dump_1m` is created in the connection's database once,
//! by the server itself (`INSERT … SELECT … FROM generate_series`), and reused
//! while it holds exactly 1,000,000 rows.
//!
//! ```text
//! eval "$(scripts/services.sh env)"   # AIRFLOW_CONN_POSTGRES_DEFAULT, GUST_SERVICES_PYTHON
//! cargo bench --features postgres --bench sql_dump
//! ```
//!
//! The Python side runs with `$GUST_SERVICES_PYTHON` or `python3` and needs
//! pandas, SQLAlchemy and psycopg2; it is skipped (with a message) when they are
//! missing, as `psql` is when not on the PATH.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gust::Connection;
use gust::hooks::postgres::PostgresHook;
use gust::hooks::sql::{Handler, Parameters, RunOptions, SqlHook};

const CONN_ID: &str = "postgres_default";
const TABLE: &str = "gust_bench_dump_1m";
const ROWS: u64 = 1_000_000;
/// Set in the environment of a re-executed child: what it must do.
const CHILD: &str = "GUST_BENCH_SQL_DUMP_CHILD";

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS gust_bench_dump_1m (
    id          bigint PRIMARY KEY,
    customer_id integer NOT NULL,
    name        text NOT NULL,
    email       text,
    score       double precision NOT NULL,
    amount      numeric(12, 2) NOT NULL,
    created_at  timestamptz NOT NULL,
    note        text,
    active      boolean
)";

/// Mixed columns, about a tenth of `email`, a third of `note` and a seventh of
/// `active` NULL; no value contains a newline.
const FILL: &str = "
TRUNCATE gust_bench_dump_1m;
INSERT INTO gust_bench_dump_1m
SELECT g,
       (g * 7919) % 100000,
       'customer ' || g,
       CASE WHEN g % 10 = 0 THEN NULL ELSE 'user' || g || '@example.com' END,
       sin(g) * 1000,
       round(((g * 104729) % 10000000)::numeric / 100, 2),
       timestamptz '2024-01-01 00:00:00+00' + g * interval '31 seconds',
       CASE WHEN g % 3 = 0 THEN NULL ELSE md5(g::text) END,
       CASE WHEN g % 7 = 0 THEN NULL ELSE g % 2 = 0 END
FROM generate_series(1::bigint, 1000000) AS g;
ANALYZE gust_bench_dump_1m";

const SELECT: &str = "SELECT id, customer_id, name, email, score, amount, created_at, note, active \
                      FROM gust_bench_dump_1m";

fn main() {
    if let Ok(what) = std::env::var(CHILD) {
        child(&what);
        return;
    }

    let conn = Connection::from_env(CONN_ID)
        .expect("AIRFLOW_CONN_POSTGRES_DEFAULT (eval \"$(scripts/services.sh env)\")");
    let server = runtime().block_on(prepare());
    let dir = std::env::temp_dir().join(format!("gust-bench-sql-dump-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let python = std::env::var("GUST_SERVICES_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/sql_dump_pandas.py");
    let py_versions = Command::new(&python)
        .args([script, "versions"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let psql = Command::new("psql")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());

    let bench = Bench {
        conn,
        dir: dir.clone(),
    };
    let limited = |n: u64| format!("{SELECT} LIMIT {n}");
    let gust_run = |sql: &str, out: &Path| {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env(CHILD, "gust")
            .env("GUST_BENCH_SQL", sql)
            .env("GUST_BENCH_OUT", out);
        cmd
    };
    let py_run = |mode: &str| {
        let (python, mode) = (python.clone(), mode.to_string());
        move |sql: &str, out: &Path| {
            let mut cmd = Command::new(&python);
            cmd.arg(script).arg(&mode).arg(sql).arg(out);
            cmd
        }
    };
    let psql_run = |sql: &str, out: &Path| {
        let mut cmd = Command::new("psql");
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"])
            .arg(format!(
                "\\copy ({sql}) TO '{}' WITH (FORMAT csv, HEADER true)",
                out.display()
            ));
        cmd
    };

    println!("{server}");
    println!("psql: {}", psql.as_deref().unwrap_or("not found, skipped"));
    println!(
        "python: {}",
        py_versions
            .as_deref()
            .unwrap_or("pandas/SQLAlchemy/psycopg2 not importable, skipped")
    );
    println!("\ndump `{SELECT}` ({ROWS} rows) to a CSV file, each in its own process");
    Row::header();

    let gust_1m = bench.run("gust PostgresHook::bulk_dump", SELECT, ROWS, gust_run);
    let mut results = vec![gust_1m.clone()];
    if psql.is_some() {
        results.push(bench.run("psql \\copy (SELECT …) TO file", SELECT, ROWS, psql_run));
    }
    let mut pandas_1m = None;
    if py_versions.is_some() {
        let r = bench.run("pandas read_sql + to_csv", SELECT, ROWS, py_run("read_sql"));
        pandas_1m = Some(r.clone());
        results.push(r);
        results.push(bench.run(
            "pandas read_sql(chunksize=50k) + to_csv",
            SELECT,
            ROWS,
            py_run("chunked"),
        ));
        results.push(bench.run(
            "  … over stream_results=True",
            SELECT,
            ROWS,
            py_run("chunked_stream"),
        ));
        results.push(bench.run(
            "seed 002: get_records + csv.writer(StringIO)",
            SELECT,
            ROWS,
            py_run("seed"),
        ));
    }
    Row::ratios(&results, &gust_1m);

    println!("\npeak RSS against rows dumped (is it flat?)");
    Row::header();
    for n in [10_000, 100_000] {
        bench.run("gust PostgresHook::bulk_dump", &limited(n), n, gust_run);
    }
    gust_1m.print();
    if let Some(p) = pandas_1m {
        for n in [10_000, 100_000] {
            bench.run(
                "pandas read_sql + to_csv",
                &limited(n),
                n,
                py_run("read_sql"),
            );
        }
        p.print();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Creates and fills the table unless it already holds `ROWS` rows; returns the
/// server's version line.
async fn prepare() -> String {
    let hook = PostgresHook::from_conn_id(CONN_ID).await.unwrap();
    hook.run(CREATE.into(), RunOptions::default())
        .await
        .unwrap();
    let count = |hook: PostgresHook| async move {
        let row = hook
            .get_first(
                "SELECT count(*)::text AS n FROM gust_bench_dump_1m",
                Parameters::None,
            )
            .await
            .unwrap()
            .unwrap();
        row["n"].as_str().unwrap().parse::<u64>().unwrap()
    };
    if count(hook.clone()).await != ROWS {
        eprintln!("filling {TABLE} with {ROWS} rows…");
        let t0 = Instant::now();
        hook.run(
            FILL.into(),
            RunOptions {
                split_statements: true,
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
        eprintln!("filled in {:.1?}", t0.elapsed());
        assert_eq!(count(hook.clone()).await, ROWS);
    }
    let size = hook
        .run(
            "SELECT version() AS v, pg_size_pretty(pg_total_relation_size('gust_bench_dump_1m')) AS s"
                .into(),
            RunOptions {
                handler: Handler::FetchOne,
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
    format!(
        "server: {}\ntable {TABLE}: {ROWS} rows, {} with its index",
        size["v"].as_str().unwrap_or("?"),
        size["s"].as_str().unwrap_or("?")
    )
}

/// A re-executed child: dumps `GUST_BENCH_SQL` to `GUST_BENCH_OUT` and prints
/// "<seconds> <bytes>", seconds from connecting to the file flushed.
fn child(what: &str) {
    assert_eq!(what, "gust");
    let sql = std::env::var("GUST_BENCH_SQL").unwrap();
    let out = std::env::var("GUST_BENCH_OUT").unwrap();
    let t0 = Instant::now();
    let bytes = runtime().block_on(async {
        let hook = PostgresHook::from_conn_id(CONN_ID).await.unwrap();
        let file = File::create(&out).unwrap();
        let mut sink = BlockingWrite(BufWriter::with_capacity(1 << 16, file));
        hook.bulk_dump(&sql, &mut sink).await.unwrap()
    });
    println!("{:.6} {bytes}", t0.elapsed().as_secs_f64());
}

/// A blocking `std::io::Write` as a tokio writer, each write done in place (as
/// `futures::io::AllowStdIo` did before `bulk_dump` took tokio's traits): the
/// measurement stays comparable with earlier runs, free of `tokio::fs`'s
/// hand-off of every write to the blocking pool.
struct BlockingWrite<W>(W);

impl<W: std::io::Write + Unpin> tokio::io::AsyncWrite for BlockingWrite<W> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(self.get_mut().0.write(buf))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(self.get_mut().0.flush())
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

struct Bench {
    conn: Connection,
    dir: PathBuf,
}

#[derive(Clone)]
struct Row {
    name: String,
    rows: u64,
    /// From connecting to the file written (psql: the whole process).
    time: Duration,
    /// The whole child process, start-up and imports included.
    wall: Duration,
    bytes: u64,
    rss_kib: u64,
}

impl Bench {
    /// Runs one child with libpq's PG* variables set, reaps it with `wait4` for its
    /// peak RSS, checks the output holds `rows` records and deletes it.
    #[expect(
        clippy::zombie_processes,
        reason = "the child is reaped by wait4, not Child::wait"
    )]
    fn run(
        &self,
        name: &str,
        sql: &str,
        rows: u64,
        command: impl Fn(&str, &Path) -> Command,
    ) -> Row {
        let out = self.dir.join("out.csv");
        let _ = std::fs::remove_file(&out);
        let mut cmd = command(sql, &out);
        let c = &self.conn;
        cmd.env("PGHOST", c.host().unwrap_or("localhost"))
            .env("PGPORT", c.port().unwrap_or(5432).to_string())
            .env("PGUSER", c.login().unwrap_or_default())
            .env("PGPASSWORD", c.password().unwrap_or_default())
            .env("PGDATABASE", c.schema().unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let t0 = Instant::now();
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut stderr = child.stderr.take().unwrap();
        let errs = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut stdout = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let (status, rss_kib) = wait4(child.id());
        let wall = t0.elapsed();
        let errs = errs.join().unwrap();
        assert!(status, "{name} failed:\n{errs}");
        // gust and Python print "<seconds> <count>"; psql prints nothing.
        let time = stdout
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .map_or(wall, Duration::from_secs_f64);
        let (bytes, lines) = count_lines(&out);
        assert_eq!(
            lines,
            rows + 1,
            "{name}: {} has {lines} lines, expected a header and {rows} records",
            out.display()
        );
        std::fs::remove_file(&out).unwrap();
        let row = Row {
            name: name.to_string(),
            rows,
            time,
            wall,
            bytes,
            rss_kib,
        };
        row.print();
        row
    }
}

impl Row {
    fn header() {
        println!(
            "{:<46} {:>9} {:>10} {:>10} {:>12} {:>10} {:>13}",
            "implementation", "rows", "time", "process", "rows/s", "output", "peak RSS"
        );
    }

    fn print(&self) {
        println!(
            "{:<46} {:>9} {:>10.2?} {:>10.2?} {:>12.0} {:>7.1} MB {:>9.1} MiB",
            self.name,
            self.rows,
            self.time,
            self.wall,
            self.rows as f64 / self.time.as_secs_f64(),
            self.bytes as f64 / 1e6,
            self.rss_kib as f64 / 1024.0
        );
    }

    fn ratios(rows: &[Row], gust: &Row) {
        println!("\nagainst gust: time, peak RSS");
        for r in rows {
            println!(
                "{:<46} {:>6.2}x {:>7.2}x",
                r.name,
                r.time.as_secs_f64() / gust.time.as_secs_f64(),
                r.rss_kib as f64 / gust.rss_kib as f64
            );
        }
    }
}

/// Reaps `pid`: whether it exited with 0, and its peak RSS in KiB.
fn wait4(pid: u32) -> (bool, u64) {
    let mut status = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for the child we spawned
    // and have not waited for (std's Child is dropped without waiting).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(
        r,
        pid as libc::pid_t,
        "wait4: {}",
        std::io::Error::last_os_error()
    );
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    // Linux reports ru_maxrss in KiB, macOS in bytes.
    let rss = usage.ru_maxrss as u64;
    let rss = if cfg!(target_os = "macos") {
        rss / 1024
    } else {
        rss
    };
    (ok, rss)
}

/// The size of a file and its number of lines.
fn count_lines(path: &Path) -> (u64, u64) {
    let mut f = File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let (mut bytes, mut lines) = (0u64, 0u64);
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    (bytes, lines)
}
