//! The transfer operators of issue 12 on a 1,000,000-row table shaped like seed
//! 001's credit data, each side by side in one run with two references: the
//! seeds' Python way and the fastest pipeline of standard tools.
//!
//! | operation | gust | standard tools | the seeds' Python way |
//! |---|---|---|---|
//! | `sql_to_s3_csv` | `SqlToS3` (PostgreSQL → CSV object) | `psql \copy (query) TO STDOUT` piped into boto3 `upload_fileobj` | pandas `read_sql` + `to_csv` to a temporary file + boto3 `upload_file` (Airflow's `SqlToS3Operator`) |
//! | `sql_to_s3_parquet` | `SqlToS3` to a `.parquet` key (typed columns from the query's SQL types, snappy, row groups of 128 Ki rows) | `psql \copy (query) TO STDOUT` (CSV) piped into pyarrow `open_csv` (the same types given) → `ParquetWriter` (snappy) to a temporary file + boto3 `upload_file` | pandas `read_sql` + `to_parquet` (pyarrow, snappy: the defaults) to a temporary file + boto3 `upload_file` |
//! | `s3_to_sql_csv` | `S3ToSql`, `;`-separated, `IfExists::Replace` | a streaming boto3 `get_object` piped into `psql -1 -c 'TRUNCATE' -c '\copy … FROM pstdin'` | seed 000: `get_object` + pandas `read_csv(sep=';')` + `to_sql(if_exists='replace')` |
//! | `s3_to_redis` | `S3ToRedis`, `;`, JSON values, into the 6-node cluster (`redis_cluster`) | `redis-benchmark --cluster -t set -P 64 -n 1000000 -r 1000000 -d <the rows' mean JSON size>`: the cluster's SET rate, the physical limit | seed 000's second DAG: `get_object` + pandas `read_csv(sep=';')` + a redis-py `RedisCluster.set(f"row:{index}", json.dumps(row.to_dict()))` per row |
//!
//! The seeds' redis-py loop makes one round trip per row, so it runs on the first
//! `GUST_BENCH_REDIS_PY_ROWS` rows (default 30,000) of the whole frame, and its
//! rate is that of its loop (the download and `read_csv` timed apart). Every
//! measurement of `s3_to_redis` starts with the bench's keys removed from the
//! cluster (`SCAN` + `DEL` on every master, outside the clock) and ends with
//! them counted. `s3_to_redis` needs `--features redis` (without it the operation
//! says so and is skipped).
//!
//! A fourth operation, `replace_server_side`, shows the server's part of
//! `s3_to_sql_csv`: psql loads the same CSV from a local file (no S3, no
//! client-side parsing) straight into the target (`TRUNCATE` + `COPY` in one
//! transaction, what `S3ToSql` does on PostgreSQL since it stopped staging), and
//! through the staging statements `S3ToSql` ran before (`CREATE TABLE … AS …
//! WHERE 1 = 0`, `COPY` into it, `DELETE` + `INSERT … SELECT` in one
//! transaction) and variants of them (an `UNLOGGED` staging table, `TRUNCATE`
//! for `DELETE`); the staging path is still `S3ToSql`'s for MySQL/MariaDB,
//! SQLite and `Merge`.
//!
//! `sql_to_s3_parquet`'s target is against the pandas way (pandas + pyarrow),
//! so there the pandas way runs in every round, taking its turn with the
//! others; its standard tools' pipeline, shown without a target, is what the
//! same file (the same types, row groups of about the same size) costs with
//! Arrow's own C++ CSV reader and Parquet writer. It needs `--features parquet`
//! (without it the operation says so and is skipped).
//!
//! ```text
//! eval "$(scripts/services.sh env)"   # AIRFLOW_CONN_POSTGRES_DEFAULT, AIRFLOW_CONN_S3S_FS, AIRFLOW_CONN_REDIS_CLUSTER, GUST_SERVICES_PYTHON
//! cargo bench --features postgres,s3,redis,parquet --bench transfers
//! GUST_BENCH_10M=1 cargo bench --features postgres,s3,redis,parquet --bench transfers   # + SqlToS3's peak RSS at 10M rows
//! ```
//!
//! Every measurement is its own set of processes — this binary re-executed, or
//! `psql` and `benches/transfers_python.py` with `$GUST_SERVICES_PYTHON` — each
//! started by a small [`launch`]er that reaps it with `wait4`, so its peak RSS
//! (`ru_maxrss`) and CPU time are its own; a pipeline's time runs from starting
//! its first process to the exit of its last. Every
//! measurement starts after a `sync` (so none pays for the previous one's
//! writeback in s3s-fs's files) and, for the loads, after a `VACUUM` of its
//! target table; both are outside the clock. Every output is checked: an object
//! must hold the header and every row (no value contains a newline, so records
//! are lines), a Parquet object every row (downloaded to a temporary file, its
//! footer's row count and the rows gust's `formats::parquet::Reader` decodes,
//! under the source's column names), a table the same rows as the source (a
//! hash over every row's text), pandas' table the same row count.
//!
//! The tables are created in the connection's database by the server itself
//! (`INSERT … SELECT … FROM generate_series`) once, and reused while they hold
//! their row count: `gust_bench_credit_1m` (and `gust_bench_credit_10m`), the
//! load targets `gust_bench_load_gust` and `gust_bench_load_psql` (copies of the
//! source with its primary key, holding "yesterday's" rows, which each load
//! replaces), pandas' own `gust_bench_load_pandas`, and
//! `gust_bench_load_probe` for `replace_server_side`.
//!
//! Environment: `GUST_BENCH_CONN` (the S3 connection, default `s3s_fs`, the Rust
//! S3 server), `GUST_BENCH_OPS` (default
//! `sql_to_s3_csv,sql_to_s3_parquet,s3_to_sql_csv,replace_server_side,s3_to_redis`),
//! `GUST_BENCH_ROUNDS` (default 3; gust and the standard tools in every round,
//! in alternating order; the pandas way, ten times slower or worse, only in the
//! first round, but for `sql_to_s3_parquet`), `GUST_BENCH_PANDAS=0` (leave the
//! pandas way out),
//! `GUST_BENCH_10M=1` (also dump a 10,000,000-row table with `SqlToS3` and the
//! pipeline: about 1.2 GB of CSV, and the table takes a few minutes to fill the
//! first time), `GUST_BENCH_REDIS_PY_ROWS` (the redis-py loop's rows, default
//! 30,000), `GUST_BENCH_REDIS_BATCH_ROWS` and `GUST_BENCH_REDIS_IN_FLIGHT`
//! (`S3ToRedis`'s `batch_rows` and `max_in_flight`, default theirs: 1,000 and 4).
//! A missing `psql`, `redis-benchmark` or Python module leaves its rows
//! out, saying so.

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use gust::formats::csv::CsvFormat;
use gust::hooks::object_store::{ListEntry, ObjectStore};
use gust::hooks::postgres::PostgresHook;
use gust::hooks::s3::{LoadOptions, S3Hook};
use gust::hooks::sql::{Handler, Parameters, RunOptions, SqlHook};
use gust::transfers::IfExists;
use gust::transfers::s3_to_sql::S3ToSql;
use gust::transfers::sql_to_s3::SqlToS3;
use gust::{Connection, Context, Operator};
#[cfg(feature = "redis")]
use gust::{hooks::redis::RedisBatch, hooks::redis::RedisHook, transfers::s3_to_redis::S3ToRedis};
use serde_json::{Value, json};

const PG: &str = "postgres_default";
/// Set in the environment of a re-executed child: what it must do.
const CHILD: &str = "GUST_BENCH_TRANSFERS_CHILD";
/// Set in the environment of a re-executed launcher (see [`launch`]).
const LAUNCH: &str = "GUST_BENCH_TRANSFERS_LAUNCH";
/// The launcher's last line on stderr: its child's peak RSS in KiB and CPU
/// seconds.
const RSS_MARK: &str = "gust-bench-peak-rss-kib-cpu-secs:";
const ROWS: u64 = 1_000_000;
const ROWS_10M: u64 = 10_000_000;
/// The delimiter of the CSV every side of `sql_to_s3_csv` writes (seed 000's).
const DUMP_DELIMITER: char = ';';
/// The targets of the issue: gust's throughput against the standard tools', and
/// `SqlToS3`'s peak RSS.
const MIN_VS_TOOLS: f64 = 1.0;
const MAX_DUMP_RSS_MIB: f64 = 64.0;
/// `sql_to_s3_parquet`'s targets: gust's throughput against the pandas way's
/// (pandas + pyarrow), and `SqlToS3`'s peak RSS writing Parquet.
const MIN_PARQUET_VS_PANDAS: f64 = 3.0;
const MAX_PARQUET_RSS_MIB: f64 = 128.0;
/// The source's columns as Arrow types, for the standard tools' Parquet
/// (`csv_stdin_to_parquet` in transfers_python.py): the types gust's writer
/// gives `create_sql`'s SQL types, so both files hold the same types.
const PARQUET_ARROW_TYPES: &str = "row_id=int64 id=string customer_id=string date=date32 \
     age=int32 annual_income=float64 occupation=string outstanding_debt=decimal128(12,2) \
     updated_at=timestamp[us,UTC] payment_behaviour=string credit_score=string";
/// `s3_to_redis`: the Redis connection (the 6-node cluster), the key templates
/// (under a prefix of the bench's own, which it removes), the targets.
const REDIS: &str = "redis_cluster";
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
const REDIS_PREFIX: &str = "gust_bench:";
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
const REDIS_GUST_KEY: &str = "gust_bench:credit:{{ ds }}:row:{{ index }}";
const REDIS_PY_PREFIX: &str = "gust_bench:py:row:";
/// The keys `redis-benchmark --cluster -r` writes: `key:{<slot tag>}:<12 digits>`.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
const REDIS_BENCHMARK_PATTERN: &str = "key:{*}:*";
const REDIS_PY_ROWS: u64 = 30_000;
const MIN_VS_REDIS_PY: f64 = 100.0;
const MIN_VS_REDIS_BENCHMARK: f64 = 0.25;

fn source_table(rows: u64) -> String {
    match rows {
        ROWS => "gust_bench_credit_1m".into(),
        ROWS_10M => "gust_bench_credit_10m".into(),
        n => format!("gust_bench_credit_{n}"),
    }
}

/// Seed 001's credit data (`credit_score` joined with `credit_score_features`),
/// cut to one column of each kind: a bigint key, text ids as the data set writes
/// them (`0x1602`, `CUS_0xd40`), a date, an int, a double with 1 % NULL, a text
/// with NULLs (and empty strings, which must stay apart), `numeric(12,2)`,
/// `timestamptz`, and text with the data set's junk values (`!@9#%8`, `_______`).
/// About 124 bytes a row in CSV; no value contains a newline.
fn create_sql(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            row_id            bigint PRIMARY KEY,
            id                text NOT NULL,
            customer_id       text NOT NULL,
            date              date NOT NULL,
            age               integer NOT NULL,
            annual_income     double precision,
            occupation        text,
            outstanding_debt  numeric(12, 2) NOT NULL,
            updated_at        timestamptz NOT NULL,
            payment_behaviour text NOT NULL,
            credit_score      text NOT NULL
        )"
    )
}

fn fill_sql(table: &str, rows: u64) -> String {
    format!(
        "TRUNCATE {table};
        INSERT INTO {table}
        SELECT g,
               '0x' || to_hex(5634 + g),
               'CUS_0x' || to_hex((g * 7919) % 50000),
               date '2024-01-01' + (g % 366)::int,
               (18 + g % 40)::int,
               CASE WHEN g % 100 = 7 THEN NULL
                    ELSE round((abs(sin(g)) * 180000 + 7000)::numeric, 2)::float8 END,
               CASE WHEN g % 13 = 0 THEN NULL
                    WHEN g % 29 = 0 THEN ''
                    ELSE (ARRAY['Scientist', 'Teacher', 'Engineer', 'Entrepreneur', 'Lawyer',
                                'Media_Manager', 'Doctor', 'Journalist', '_______'])[1 + g % 9] END,
               round(((g * 104729) % 500000)::numeric / 100, 2),
               timestamptz '2024-01-01 00:00:00+00' + g * interval '31 seconds',
               (ARRAY['High_spent_Small_value_payments', 'Low_spent_Large_value_payments',
                      'Low_spent_Medium_value_payments', 'High_spent_Medium_value_payments',
                      'Low_spent_Small_value_payments', '!@9#%8'])[1 + (g * 31) % 6],
               (ARRAY['Good', 'Standard', 'Poor'])[1 + (g * 17) % 3]
        FROM generate_series(1::bigint, {rows}) AS g;
        ANALYZE {table}"
    )
}

/// The columns every side reads, in order.
const COLUMNS: [&str; 11] = [
    "row_id",
    "id",
    "customer_id",
    "date",
    "age",
    "annual_income",
    "occupation",
    "outstanding_debt",
    "updated_at",
    "payment_behaviour",
    "credit_score",
];

fn select_sql(table: &str) -> String {
    format!("SELECT {} FROM {table}", COLUMNS.join(", "))
}

/// The load targets: one per side, so that no side replaces another's rows.
fn load_table(who: Who) -> &'static str {
    match who {
        Who::Gust => "gust_bench_load_gust",
        Who::Tools => "gust_bench_load_psql",
        Who::Python => "gust_bench_load_pandas",
        Who::Probe => "gust_bench_load_probe",
    }
}

fn main() {
    if std::env::var_os(LAUNCH).is_some() {
        launch();
    }
    if let Ok(what) = std::env::var(CHILD) {
        child(&what);
        return;
    }
    let s3_conn_id = std::env::var("GUST_BENCH_CONN").unwrap_or_else(|_| "s3s_fs".into());
    for id in [PG, &s3_conn_id] {
        let var = format!("AIRFLOW_CONN_{}", id.to_uppercase());
        if std::env::var_os(&var).is_none() {
            eprintln!(
                "transfers: {var} is not set; run `eval \"$(scripts/services.sh env)\"` first. Skipped."
            );
            return;
        }
    }
    let ops: Vec<String> = std::env::var("GUST_BENCH_OPS")
        .unwrap_or_else(|_| {
            "sql_to_s3_csv,sql_to_s3_parquet,s3_to_sql_csv,replace_server_side,s3_to_redis".into()
        })
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let rounds: usize = env_parse("GUST_BENCH_ROUNDS").unwrap_or(3);
    let with_pandas = std::env::var("GUST_BENCH_PANDAS").map_or(true, |v| v != "0");
    let with_10m = std::env::var("GUST_BENCH_10M").is_ok_and(|v| v == "1");

    let rt = runtime();
    let env = Env::new(&s3_conn_id, &rt);
    println!("{}", env.versions());
    let floor = run_pipeline(vec![("true", Command::new("true"))]).procs[0].rss_kib;
    println!(
        "peak RSS is measured through a launcher; a process under {:.1} MiB shows as {0:.1} MiB (the launcher's own)",
        floor as f64 / 1024.0
    );
    let server = rt.block_on(prepare_source(ROWS));
    println!("{server}");
    let bucket = format!("gust-bench-transfers-{}", std::process::id());
    rt.block_on(env.s3.create_bucket(&bucket)).unwrap();
    let bench = Bench {
        env,
        bucket,
        rt,
        load_bytes: Default::default(),
        csv_path: std::env::temp_dir()
            .join(format!("gust-bench-credit-{}.csv", std::process::id())),
        redis_value_len: Default::default(),
        redis_py_rows: env_parse("GUST_BENCH_REDIS_PY_ROWS")
            .unwrap_or(REDIS_PY_ROWS)
            .clamp(1, ROWS),
    };
    let mut results: Vec<Measure> = Vec::new();

    for op in &ops {
        if op == "sql_to_s3_parquet" && !cfg!(feature = "parquet") {
            println!("\n{op}: skipped, it needs --features parquet");
            continue;
        }
        if op == "s3_to_redis"
            && let Some(why) = bench.env.redis_missing()
        {
            println!("\n{op}: skipped, {why}");
            continue;
        }
        let sides = bench.sides(op, ROWS);
        if sides.is_empty() {
            println!("\n{op}: unknown operation, skipped");
            continue;
        }
        println!("\n{op}: {}", describe(op));
        bench.setup(op);
        Measure::header();
        // The pandas way in the first round only, last, unless the target is
        // against it: then in every round, taking its turn.
        let pandas_rounds = pandas_is_target(op);
        for round in 0..rounds {
            // Rotate who goes first from round to round (gust and the tools
            // alternate).
            let mut order: Vec<&Side> = sides
                .iter()
                .filter(|s| s.who != Who::Python || (pandas_rounds && with_pandas))
                .collect();
            let n = order.len();
            order.rotate_left(round % n.max(1));
            if round == 0 && with_pandas && !pandas_rounds {
                order.extend(sides.iter().filter(|s| s.who == Who::Python));
            }
            for side in order {
                let m = bench.measure(op, side, round + 1, ROWS);
                m.print();
                results.push(m);
            }
        }
    }
    if with_10m {
        let server = bench.rt.block_on(prepare_source(ROWS_10M));
        println!("\n{server}");
        println!("sql_to_s3_csv at {ROWS_10M} rows: is SqlToS3's peak RSS flat?");
        Measure::header();
        let sides = bench.sides("sql_to_s3_csv", ROWS_10M);
        for side in sides.iter().filter(|s| s.who != Who::Python) {
            let m = bench.measure("sql_to_s3_csv", side, 1, ROWS_10M);
            m.print();
            results.push(m);
        }
    }
    bench.cleanup();
    report(&results, &ops);
}

/// Whether the operation's throughput target is against the pandas way (not the
/// standard tools).
fn pandas_is_target(op: &str) -> bool {
    op == "sql_to_s3_parquet"
}

/// The operation's peak RSS targets for gust: `(rows, MiB)`.
fn rss_targets(op: &str) -> Vec<(u64, f64)> {
    match op {
        "sql_to_s3_csv" => vec![(ROWS, MAX_DUMP_RSS_MIB), (ROWS_10M, MAX_DUMP_RSS_MIB)],
        "sql_to_s3_parquet" => vec![(ROWS, MAX_PARQUET_RSS_MIB)],
        _ => Vec::new(),
    }
}

fn env_parse<T: std::str::FromStr>(var: &str) -> Option<T> {
    std::env::var(var).ok().and_then(|v| v.parse().ok())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn describe(op: &str) -> &'static str {
    match op {
        "sql_to_s3_csv" => {
            "a 1M-row PostgreSQL query to a `;`-separated CSV object with a header, through the S3 server"
        }
        "sql_to_s3_parquet" => {
            "the same 1M-row PostgreSQL query to a Parquet object (typed columns, snappy), through the S3 server"
        }
        "s3_to_sql_csv" => {
            "a `;`-separated CSV object into a PostgreSQL table, replacing its rows, all or nothing"
        }
        "replace_server_side" => {
            "the server's part of S3ToSql's replace alone: psql loading the same CSV from a local file, \
             straight into the target (S3ToSql's way now) and through the staging statements it ran before"
        }
        "s3_to_redis" => {
            "the `;`-separated CSV object's 1M rows into the 6-node Redis Cluster, one JSON value per row"
        }
        _ => "",
    }
}

/// Creates and fills the source table of `rows` rows unless it holds them;
/// returns a description of the server and the table.
async fn prepare_source(rows: u64) -> String {
    let table = source_table(rows);
    let hook = PostgresHook::from_conn_id(PG).await.unwrap();
    hook.run(create_sql(&table).into(), RunOptions::default())
        .await
        .unwrap();
    if count(&hook, &table).await != rows {
        eprintln!("filling {table} with {rows} rows…");
        let t0 = Instant::now();
        hook.run(
            fill_sql(&table, rows).into(),
            RunOptions {
                split_statements: true,
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
        eprintln!("filled in {:.1?}", t0.elapsed());
        assert_eq!(count(&hook, &table).await, rows);
    }
    let info = hook
        .run(
            format!(
                "SELECT version() AS v, \
                 pg_size_pretty(pg_total_relation_size('{table}')) AS s, \
                 current_setting('wal_level') AS wal, \
                 current_setting('shared_buffers') AS sb"
            )
            .into(),
            RunOptions {
                handler: Handler::FetchOne,
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
    let s = |k: &str| info[k].as_str().unwrap_or("?").to_string();
    format!(
        "server: {} (wal_level {}, shared_buffers {})\ntable {table}: {rows} rows, {} with its index",
        s("v"),
        s("wal"),
        s("sb"),
        s("s")
    )
}

async fn count(hook: &PostgresHook, table: &str) -> u64 {
    let row = hook
        .get_first(
            &format!("SELECT count(*)::text AS n FROM {table}"),
            Parameters::None,
        )
        .await
        .unwrap()
        .unwrap();
    row["n"].as_str().unwrap().parse().unwrap()
}

/// A re-executed child: runs one operator and prints its result as JSON,
/// `secs` from building the operator (connections included) to its end.
fn child(what: &str) {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let (bucket, key, conn) = (
        var("GUST_BENCH_BUCKET"),
        var("GUST_BENCH_KEY"),
        var("GUST_BENCH_S3_CONN"),
    );
    let url = format!("s3://{bucket}/{key}");
    let ctx = Context::builder("bench_transfers", what).build();
    let t0 = Instant::now();
    let out = runtime()
        .block_on(async {
            match what {
                "sql_to_s3" => {
                    SqlToS3::new(var("GUST_BENCH_SQL"), url)
                        .file_format(CsvFormat::new().delimiter(DUMP_DELIMITER as u8))
                        .sql_conn_id(PG)
                        .aws_conn_id(conn)
                        .replace(true)
                        .execute(&ctx)
                        .await
                }
                // The key's `.parquet` picks the format, as a user would write it.
                #[cfg(feature = "parquet")]
                "sql_to_s3_parquet" => {
                    SqlToS3::new(var("GUST_BENCH_SQL"), url)
                        .sql_conn_id(PG)
                        .aws_conn_id(conn)
                        .replace(true)
                        .execute(&ctx)
                        .await
                }
                "s3_to_sql" => {
                    S3ToSql::new(url, var("GUST_BENCH_TABLE"))
                        .file_format(CsvFormat::new().delimiter(b';'))
                        .if_exists(IfExists::Replace)
                        .sql_conn_id(PG)
                        .aws_conn_id(conn)
                        .execute(&ctx)
                        .await
                }
                #[cfg(feature = "redis")]
                "s3_to_redis" => {
                    let mut op = S3ToRedis::new(url, REDIS_GUST_KEY)
                        .file_format(CsvFormat::new().delimiter(b';'))
                        .redis_conn_id(REDIS);
                    // Defaults unless set: 1,000 rows a batch, 4 batches in flight.
                    if let Some(n) = env_parse("GUST_BENCH_REDIS_BATCH_ROWS") {
                        op = op.batch_rows(n);
                    }
                    if let Some(n) = env_parse("GUST_BENCH_REDIS_IN_FLIGHT") {
                        op = op.max_in_flight(n);
                    }
                    op.aws_conn_id(conn).execute(&ctx).await
                }
                other => panic!("unknown child {other}"),
            }
        })
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"secs": secs, "rows": out["rows"], "bytes": out["bytes"], "vmhwm_kib": vm_hwm_kib()})
    );
}

/// This process's peak RSS (`VmHWM`: of its own address space, since its exec).
fn vm_hwm_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A re-executed launcher: runs its arguments as a command (stdio inherited)
/// and reaps it with `wait4`, then prints the command's peak RSS on stderr and
/// exits with its status.
///
/// Why not `wait4` on the benchmark's children directly: Linux records, at
/// `exec`, the peak RSS of the address space the process had before
/// (`setmax_mm_hiwater_rss` in `exec_mmap`), and a child spawned with
/// `posix_spawn` (`vfork`) had its parent's. So every direct child of this
/// process reported at least the parent's peak RSS, which grows as the parent
/// checks the objects (the first run of this bench showed 88 MiB for `psql`).
/// A child of this small launcher carries only the launcher's few MiB.
fn launch() -> ! {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let child = Command::new(&args[0])
        .args(&args[1..])
        .env_remove(LAUNCH)
        .spawn()
        .unwrap_or_else(|e| {
            eprintln!("launch {:?}: {e}", args[0]);
            std::process::exit(127)
        });
    let (status, rss, cpu) = wait4(child.id());
    eprintln!("{RSS_MARK} {rss} {cpu:.3}");
    std::process::exit(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    })
}

/// The connections and the tools found.
struct Env {
    pg: Connection,
    s3_conn_id: String,
    s3_conn: Connection,
    s3: S3Hook,
    python: String,
    script: &'static str,
    /// `python versions`' JSON, or why it failed.
    py: Result<Value, String>,
    psql: Option<String>,
    /// `redis_cluster`, when `AIRFLOW_CONN_REDIS_CLUSTER` is set.
    redis_conn: Option<Connection>,
    /// `redis-benchmark --version`, when found.
    redis_benchmark: Option<String>,
    /// The cluster, connected (the bench's keys are removed and counted with it).
    #[cfg(feature = "redis")]
    redis: Option<RedisHook>,
}

impl Env {
    /// `rt`: the runtime the bench runs its Redis commands on (a Redis
    /// connection lives on the runtime that made it).
    fn new(s3_conn_id: &str, #[allow(unused_variables)] rt: &tokio::runtime::Runtime) -> Self {
        let python = std::env::var("GUST_SERVICES_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/transfers_python.py");
        let py = Command::new(&python)
            .args([script, "versions"])
            .output()
            .map_err(|e| format!("{python}: {e}"))
            .and_then(|o| {
                serde_json::from_slice::<Value>(&o.stdout)
                    .map_err(|_| format!("{python}: {}", String::from_utf8_lossy(&o.stderr)))
            });
        let psql = Command::new("psql")
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let version = |program: &str| {
            Command::new(program)
                .arg("--version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let redis_conn = Connection::from_env(REDIS).ok();
        #[cfg(feature = "redis")]
        let redis = redis_conn.as_ref().and_then(|c| {
            rt.block_on(RedisHook::from_connection(c))
                .map_err(|e| eprintln!("transfers: {REDIS}: {e}"))
                .ok()
        });
        let s3_conn = Connection::from_env(s3_conn_id).unwrap();
        let s3 = runtime()
            .block_on(S3Hook::from_conn_id(s3_conn_id))
            .unwrap();
        Env {
            pg: Connection::from_env(PG).unwrap(),
            s3_conn_id: s3_conn_id.to_string(),
            s3_conn,
            s3,
            python,
            script,
            py,
            psql,
            redis_conn,
            redis_benchmark: version("redis-benchmark"),
            #[cfg(feature = "redis")]
            redis,
        }
    }

    /// Why `s3_to_redis` cannot run, if it cannot.
    fn redis_missing(&self) -> Option<String> {
        if self.redis_conn.is_none() {
            return Some(format!(
                "AIRFLOW_CONN_{} is not set (scripts/services.sh env sets it)",
                REDIS.to_uppercase()
            ));
        }
        #[cfg(feature = "redis")]
        {
            self.redis
                .is_none()
                .then(|| format!("the Redis connection {REDIS} failed (see above)"))
        }
        #[cfg(not(feature = "redis"))]
        Some("it needs --features redis".into())
    }

    /// The cluster's startup node and password, as `(host, port, password)`.
    fn redis_node(&self) -> (String, u16, String) {
        let c = self.redis_conn.as_ref().expect("redis connection");
        (
            c.host().unwrap_or("127.0.0.1").to_string(),
            c.port().unwrap_or(6379),
            c.password().unwrap_or_default().to_string(),
        )
    }

    /// The CPU time (user + system, seconds) every node of the cluster, replicas
    /// included, has spent since it started, from `INFO cpu` through redis-cli.
    fn redis_servers_cpu(&self) -> Option<f64> {
        let (host, port, password) = self.redis_node();
        let cli = |port: &str, args: &[&str]| {
            Command::new("redis-cli")
                .args(["-h", &host, "-p", port])
                .args(args)
                .env("REDISCLI_AUTH", &password)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        };
        let nodes = cli(&port.to_string(), &["cluster", "nodes"])?;
        let mut total = 0.0;
        for line in nodes.lines() {
            // `<id> <host:port@bus> <flags> …`
            let addr = line.split_whitespace().nth(1)?;
            let port = addr.split('@').next()?.rsplit(':').next()?;
            let info = cli(port, &["info", "cpu"])?;
            for l in info.lines() {
                if let Some((k, v)) = l.trim().split_once(':')
                    && (k == "used_cpu_sys" || k == "used_cpu_user")
                {
                    total += v.parse::<f64>().ok()?;
                }
            }
        }
        Some(total)
    }

    /// Whether every Python module in `needs` imports.
    fn python_has(&self, needs: &[&str]) -> Result<(), String> {
        let py = self.py.as_ref().map_err(Clone::clone)?;
        let missing: Vec<&str> = needs.iter().copied().filter(|m| py[*m].is_null()).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} cannot import {} (not installed in that environment)",
                self.python,
                missing.join(", ")
            ))
        }
    }

    fn versions(&self) -> String {
        let py = match &self.py {
            Ok(v) => v
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or("missing")))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
            Err(e) => e.clone(),
        };
        let redis_server = Command::new("redis-server")
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        format!(
            "gust {} ({} {})\npsql: {}\npython ({}): {py}\nS3: connection {} at {}\n\
             redis: connection {REDIS} at {}; {}; {}",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH,
            self.psql.as_deref().unwrap_or("not found"),
            self.python,
            self.s3_conn_id,
            self.s3_conn.extra_str("endpoint_url").unwrap_or("AWS"),
            self.redis_conn
                .as_ref()
                .map_or("(not set)".to_string(), |c| format!(
                    "{}:{}",
                    c.host().unwrap_or("?"),
                    c.port().unwrap_or(0)
                )),
            redis_server.as_deref().unwrap_or("redis-server not found"),
            self.redis_benchmark
                .as_deref()
                .unwrap_or("redis-benchmark not found"),
        )
    }

    /// libpq's variables for psql and psycopg2.
    fn pg_env(&self, cmd: &mut Command) {
        let c = &self.pg;
        cmd.env("PGHOST", c.host().unwrap_or("localhost"))
            .env("PGPORT", c.port().unwrap_or(5432).to_string())
            .env("PGUSER", c.login().unwrap_or_default())
            .env("PGPASSWORD", c.password().unwrap_or_default())
            .env("PGDATABASE", c.schema().unwrap_or_default());
    }

    fn python(&self, args: &[&str]) -> Command {
        let c = &self.s3_conn;
        let mut cmd = Command::new(&self.python);
        cmd.arg(self.script)
            .args(args)
            .env(
                "BENCH_ENDPOINT",
                c.extra_str("endpoint_url").unwrap_or_default(),
            )
            .env("BENCH_KEY_ID", c.login().unwrap_or_default())
            .env("BENCH_SECRET", c.password().unwrap_or_default())
            .env(
                "BENCH_REGION",
                c.extra_str("region_name").unwrap_or("us-east-1"),
            );
        self.pg_env(&mut cmd);
        if self.redis_conn.is_some() {
            let (host, port, password) = self.redis_node();
            cmd.env("BENCH_REDIS_HOST", host)
                .env("BENCH_REDIS_PORT", port.to_string())
                .env("BENCH_REDIS_PASSWORD", password);
        }
        cmd
    }

    /// psql running `commands` in order, in one transaction if `single` (BEGIN
    /// before the first, COMMIT after the last), else each on its own.
    fn psql(&self, commands: &[String], single: bool) -> Command {
        let mut cmd = Command::new("psql");
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1"]);
        if single {
            cmd.arg("--single-transaction");
        }
        for c in commands {
            cmd.arg("-c").arg(c);
        }
        self.pg_env(&mut cmd);
        cmd
    }

    fn gust(&self, what: &str) -> Command {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env(CHILD, what)
            .env("GUST_BENCH_S3_CONN", &self.s3_conn_id);
        cmd
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Gust,
    /// The fastest pipeline of standard tools.
    Tools,
    /// The seeds' Python way.
    Python,
    /// A variant measured to explain a result (the server side of a load).
    Probe,
}

/// The processes of a measurement, named, in pipeline order.
type Procs = Vec<(&'static str, Command)>;

/// One implementation of an operation: its processes (a pipeline, stdout into
/// the next one's stdin), built afresh for every measurement.
struct Side<'a> {
    who: Who,
    label: String,
    /// Why the side cannot run here (a missing tool), printed instead of a row.
    missing: Option<String>,
    /// The processes of one measurement writing or reading object `key`.
    make: Box<dyn Fn(&str) -> Procs + 'a>,
}

struct Bench {
    env: Env,
    bucket: String,
    rt: tokio::runtime::Runtime,
    /// The size of the loads' object, once written.
    load_bytes: std::cell::Cell<u64>,
    /// The loads' CSV as a local file (for `replace_server_side`).
    csv_path: std::path::PathBuf,
    /// The mean size of the JSON value `S3ToRedis` writes per row (bytes, from
    /// the CSV): `redis-benchmark -d`.
    redis_value_len: std::cell::Cell<u64>,
    /// The rows of the redis-py loop.
    redis_py_rows: u64,
}

/// One measurement.
struct Measure {
    op: String,
    who: Who,
    label: String,
    round: usize,
    rows: u64,
    /// From starting the first process to the exit of the last.
    wall: Duration,
    /// The time the side's main process reported (gust: from building the
    /// operator to its end; Python: imports excluded).
    inner: Option<f64>,
    /// Python's imports, when a Python process is part of the side.
    imports: Option<f64>,
    bytes: u64,
    /// Peak RSS of each process, KiB.
    rss: Vec<(&'static str, u64)>,
    /// CPU time (user + system) of each process, seconds.
    cpu: Vec<f64>,
    /// gust's own `VmHWM`, a check of its `rss`.
    own_hwm_kib: Option<u64>,
    /// The CPU time the Redis servers (all six nodes) spent meanwhile, seconds.
    server_cpu: Option<f64>,
    /// What else the side reported, printed after its row.
    note: Option<String>,
    /// Why the measurement failed.
    failed: Option<String>,
}

impl Bench {
    fn sides(&self, op: &str, rows: u64) -> Vec<Side<'_>> {
        let env = &self.env;
        let py_missing = |needs: &[&str]| env.python_has(needs).err();
        let psql_missing = env.psql.is_none().then(|| "psql not found".to_string());
        let bucket = self.bucket.clone();
        match op {
            "sql_to_s3_csv" => {
                let sql = select_sql(&source_table(rows));
                let delim = DUMP_DELIMITER.to_string();
                let (b, s) = (bucket.clone(), sql.clone());
                let gust = Side {
                    who: Who::Gust,
                    label: "gust SqlToS3".into(),
                    missing: None,
                    make: Box::new(move |key| {
                        let mut c = env.gust("sql_to_s3");
                        c.env("GUST_BENCH_BUCKET", &b)
                            .env("GUST_BENCH_KEY", key)
                            .env("GUST_BENCH_SQL", &s);
                        vec![("gust", c)]
                    }),
                };
                let (b, s) = (bucket.clone(), sql.clone());
                let tools = Side {
                    who: Who::Tools,
                    label: "psql \\copy TO STDOUT | boto3 upload_fileobj".into(),
                    missing: psql_missing.or_else(|| py_missing(&["boto3"])),
                    make: Box::new(move |key| {
                        let copy = format!(
                            "\\copy ({s}) TO pstdout WITH (FORMAT csv, HEADER true, DELIMITER '{}')",
                            DUMP_DELIMITER
                        );
                        vec![
                            ("psql", env.psql(&[copy], false)),
                            ("python", env.python(&["upload_stdin", &b, key])),
                        ]
                    }),
                };
                let (b, s) = (bucket, sql);
                let pandas = Side {
                    who: Who::Python,
                    label: "pandas read_sql + to_csv + boto3 upload_file".into(),
                    missing: py_missing(&["boto3", "pandas", "sqlalchemy", "psycopg2"]),
                    make: Box::new(move |key| {
                        vec![(
                            "python",
                            env.python(&["sql_to_s3_pandas", &s, &b, key, delim.as_str()]),
                        )]
                    }),
                };
                vec![gust, tools, pandas]
            }
            "sql_to_s3_parquet" => {
                let sql = select_sql(&source_table(rows));
                let (b, s) = (bucket.clone(), sql.clone());
                let gust = Side {
                    who: Who::Gust,
                    label: "gust SqlToS3 (Parquet)".into(),
                    missing: None,
                    make: Box::new(move |key| {
                        let mut c = env.gust("sql_to_s3_parquet");
                        c.env("GUST_BENCH_BUCKET", &b)
                            .env("GUST_BENCH_KEY", key)
                            .env("GUST_BENCH_SQL", &s);
                        vec![("gust", c)]
                    }),
                };
                let (b, s) = (bucket.clone(), sql.clone());
                let tools = Side {
                    who: Who::Tools,
                    label: "psql \\copy TO STDOUT | pyarrow ParquetWriter + upload".into(),
                    missing: psql_missing.or_else(|| py_missing(&["boto3", "pyarrow"])),
                    make: Box::new(move |key| {
                        let copy =
                            format!("\\copy ({s}) TO pstdout WITH (FORMAT csv, HEADER true)");
                        vec![
                            ("psql", env.psql(&[copy], false)),
                            (
                                "python",
                                env.python(&["csv_stdin_to_parquet", &b, key, PARQUET_ARROW_TYPES]),
                            ),
                        ]
                    }),
                };
                let (b, s) = (bucket, sql);
                let pandas = Side {
                    who: Who::Python,
                    label: "pandas read_sql + to_parquet + boto3 upload_file".into(),
                    missing: py_missing(&["boto3", "pandas", "sqlalchemy", "psycopg2", "pyarrow"]),
                    make: Box::new(move |key| {
                        vec![(
                            "python",
                            env.python(&["sql_to_s3_parquet_pandas", &s, &b, key]),
                        )]
                    }),
                };
                vec![gust, tools, pandas]
            }
            "s3_to_sql_csv" => {
                let b = bucket.clone();
                let gust = Side {
                    who: Who::Gust,
                    label: "gust S3ToSql (replace)".into(),
                    missing: None,
                    make: Box::new(move |key| {
                        let mut c = env.gust("s3_to_sql");
                        c.env("GUST_BENCH_BUCKET", &b)
                            .env("GUST_BENCH_KEY", key)
                            .env("GUST_BENCH_TABLE", load_table(Who::Gust));
                        vec![("gust", c)]
                    }),
                };
                let b = bucket.clone();
                let tools = Side {
                    who: Who::Tools,
                    label: "boto3 get_object | psql TRUNCATE + \\copy FROM STDIN".into(),
                    missing: psql_missing.or_else(|| py_missing(&["boto3"])),
                    make: Box::new(move |key| {
                        let t = load_table(Who::Tools);
                        vec![
                            ("python", env.python(&["download_stdout", &b, key])),
                            (
                                "psql",
                                env.psql(
                                    &[
                                        format!("TRUNCATE {t}"),
                                        format!(
                                            "\\copy {t} FROM pstdin WITH (FORMAT csv, HEADER true, DELIMITER ';')"
                                        ),
                                    ],
                                    true,
                                ),
                            ),
                        ]
                    }),
                };
                let b = bucket;
                let pandas = Side {
                    who: Who::Python,
                    label: "pandas read_csv + to_sql(replace) (seed 000)".into(),
                    missing: py_missing(&["boto3", "pandas", "sqlalchemy", "psycopg2"]),
                    make: Box::new(move |key| {
                        vec![(
                            "python",
                            env.python(&["s3_to_sql_pandas", &b, key, load_table(Who::Python)]),
                        )]
                    }),
                };
                vec![gust, tools, pandas]
            }
            "replace_server_side" => {
                let path = self.csv_path.display().to_string();
                let t = load_table(Who::Probe);
                let copy = move |table: &str| {
                    format!(
                        "\\copy {table} FROM '{path}' WITH (FORMAT csv, HEADER true, DELIMITER ';')"
                    )
                };
                let direct = {
                    let copy = copy.clone();
                    Side {
                        who: Who::Probe,
                        label: "TRUNCATE + COPY into the target, one transaction".into(),
                        missing: psql_missing.clone(),
                        make: Box::new(move |_| {
                            vec![("psql", env.psql(&[format!("TRUNCATE {t}"), copy(t)], true))]
                        }),
                    }
                };
                // S3ToSql's statements (transfers/staging.rs) and variants: COPY
                // into a staging table, then one transaction that empties the
                // target and copies the staging table in.
                let staged = |label: &str, unlogged: bool, truncate: bool| {
                    let copy = copy.clone();
                    Side {
                        who: Who::Probe,
                        label: label.into(),
                        missing: psql_missing.clone(),
                        make: Box::new(move |_| {
                            let st = "gust_bench_load_probe_staging";
                            let kind = if unlogged { "UNLOGGED TABLE" } else { "TABLE" };
                            let empty = if truncate { "TRUNCATE" } else { "DELETE FROM" };
                            let stmts = [
                                format!("DROP TABLE IF EXISTS {st}"),
                                format!("CREATE {kind} {st} AS SELECT * FROM {t} WHERE 1 = 0"),
                                copy(st),
                                "BEGIN".into(),
                                format!("{empty} {t}"),
                                format!("INSERT INTO {t} SELECT * FROM {st}"),
                                "COMMIT".into(),
                                format!("DROP TABLE {st}"),
                            ];
                            vec![("psql", env.psql(&stmts, false))]
                        }),
                    }
                };
                vec![
                    direct,
                    staged(
                        "staging + DELETE + INSERT … SELECT (S3ToSql before)",
                        false,
                        false,
                    ),
                    staged("UNLOGGED staging + DELETE + INSERT … SELECT", true, false),
                    staged("staging + TRUNCATE + INSERT … SELECT", false, true),
                    staged("UNLOGGED staging + TRUNCATE + INSERT … SELECT", true, true),
                ]
            }
            "s3_to_redis" => {
                let b = bucket.clone();
                let gust = Side {
                    who: Who::Gust,
                    label: "gust S3ToRedis (JSON)".into(),
                    missing: None,
                    make: Box::new(move |key| {
                        let mut c = env.gust("s3_to_redis");
                        c.env("GUST_BENCH_BUCKET", &b).env("GUST_BENCH_KEY", key);
                        vec![("gust", c)]
                    }),
                };
                let value_len = &self.redis_value_len;
                let tools = Side {
                    who: Who::Tools,
                    label: "redis-benchmark --cluster -t set -P 64".into(),
                    missing: env
                        .redis_benchmark
                        .is_none()
                        .then(|| "redis-benchmark not found".to_string()),
                    make: Box::new(move |_| {
                        let (host, port, password) = env.redis_node();
                        let n = rows.to_string();
                        let mut c = Command::new("redis-benchmark");
                        c.args(["-h", &host, "-p", &port.to_string(), "-a", &password])
                            .args(["--cluster", "-t", "set", "-P", "64", "-n", &n, "-r", &n])
                            .args(["-d", &value_len.get().to_string(), "--csv"]);
                        vec![("redis-benchmark", c)]
                    }),
                };
                let limit = self.redis_py_rows.to_string();
                let pandas = Side {
                    who: Who::Python,
                    label: "pandas read_csv + redis-py set per row (seed 000)".into(),
                    missing: py_missing(&["boto3", "pandas", "redis"]),
                    make: Box::new(move |key| {
                        vec![(
                            "python",
                            env.python(&[
                                "s3_to_redis_python",
                                &bucket,
                                key,
                                REDIS_PY_PREFIX,
                                &limit,
                            ]),
                        )]
                    }),
                };
                vec![gust, tools, pandas]
            }
            _ => Vec::new(),
        }
    }

    fn hook(&self) -> PostgresHook {
        self.rt.block_on(PostgresHook::from_conn_id(PG)).unwrap()
    }

    /// Runs `sql`'s statements, each committed on its own (`VACUUM` cannot run
    /// in a transaction).
    fn sql(&self, sql: String) {
        let hook = self.hook();
        self.rt
            .block_on(hook.run(
                sql.into(),
                RunOptions {
                    split_statements: true,
                    autocommit: true,
                    ..RunOptions::default()
                },
            ))
            .unwrap();
    }

    /// What an operation needs before its rounds: the loads' `;` CSV (a local
    /// file, and an object for `s3_to_sql_csv`) and target tables.
    fn setup(&self, op: &str) {
        let probe = op == "replace_server_side";
        let redis = op == "s3_to_redis";
        if op != "s3_to_sql_csv" && !probe && !redis {
            return;
        }
        let src = source_table(ROWS);
        let path = &self.csv_path;
        if !path.exists() {
            // PostgreSQL's CSV with `;`, written by psql.
            let mut psql = self.env.psql(
                &[format!(
                    "\\copy ({} ORDER BY row_id) TO '{}' WITH (FORMAT csv, HEADER true, DELIMITER ';')",
                    select_sql(&src),
                    path.display()
                )],
                false,
            );
            let out = psql.output().expect("psql (it writes the loads' CSV)");
            assert!(
                out.status.success(),
                "psql: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let (bytes, lines) = count_lines_file(path);
            assert_eq!(lines, ROWS + 1, "the CSV holds a header and every row");
            self.load_bytes.set(bytes);
        }
        if !probe {
            self.rt
                .block_on(self.env.s3.load_file(
                    path,
                    LOAD_KEY,
                    Some(&self.bucket),
                    &LoadOptions::new().replace(true),
                ))
                .unwrap();
            println!(
                "object s3://{}/{LOAD_KEY}: {:.1} MB, {} records and a header, `;`",
                self.bucket,
                self.load_bytes.get() as f64 / 1e6,
                ROWS
            );
        } else {
            println!(
                "psql loads {} ({:.1} MB) from the local disk: no S3, no client-side parsing",
                path.display(),
                self.load_bytes.get() as f64 / 1e6
            );
        }
        if redis {
            let (rows, len) = json_sizes(path);
            assert_eq!(rows, ROWS);
            self.redis_value_len.set(len.div_ceil(rows));
            println!(
                "S3ToRedis's JSON values: {:.1} MB, {} bytes a row on average (redis-benchmark -d {})",
                len as f64 / 1e6,
                self.redis_value_len.get(),
                self.redis_value_len.get()
            );
            return;
        }
        // The targets hold "yesterday's" rows, which every load replaces.
        let hook = self.hook();
        let whos: &[Who] = if probe {
            &[Who::Probe]
        } else {
            &[Who::Gust, Who::Tools]
        };
        for &who in whos {
            let t = load_table(who);
            self.sql(format!(
                "CREATE TABLE IF NOT EXISTS {t} (LIKE {src} INCLUDING ALL)"
            ));
            if self.rt.block_on(count(&hook, t)) != ROWS {
                self.sql(format!("TRUNCATE {t}; INSERT INTO {t} SELECT * FROM {src}"));
            }
        }
    }

    /// Runs `side` once, checks its output and returns the measurement.
    fn measure(&self, op: &str, side: &Side, round: usize, rows: u64) -> Measure {
        let redis = op == "s3_to_redis";
        let rows = if redis && side.who == Who::Python {
            self.redis_py_rows
        } else {
            rows
        };
        let mut m = Measure {
            op: op.to_string(),
            who: side.who,
            label: side.label.clone(),
            round,
            rows,
            wall: Duration::ZERO,
            inner: None,
            imports: None,
            bytes: 0,
            rss: Vec::new(),
            cpu: Vec::new(),
            own_hwm_kib: None,
            server_cpu: None,
            note: None,
            failed: None,
        };
        if let Some(why) = &side.missing {
            m.failed = Some(format!("not run: {why}"));
            return m;
        }
        let key = match op {
            "sql_to_s3_csv" => format!("dump/{}-{round}-{rows}.csv", side_key(side.who)),
            "sql_to_s3_parquet" => format!("dump/{}-{round}-{rows}.parquet", side_key(side.who)),
            _ => LOAD_KEY.to_string(),
        };
        if (op == "s3_to_sql_csv" || op == "replace_server_side") && side.who != Who::Python {
            // Yesterday's deleted rows are vacuumed (as autovacuum would have
            // done by the next day), outside the clock.
            self.sql(format!("VACUUM ANALYZE {}", load_table(side.who)));
        }
        let mut cpu0 = None;
        if redis {
            // The keys of the last measurement go, outside the clock.
            self.redis_clean();
            cpu0 = self.env.redis_servers_cpu();
        }
        let _ = Command::new("sync").status();
        let ran = run_pipeline((side.make)(&key));
        m.wall = ran.wall;
        if let (Some(a), Some(b)) = (cpu0, redis.then(|| self.env.redis_servers_cpu()).flatten()) {
            m.server_cpu = Some(b - a);
        }
        m.rss = ran.procs.iter().map(|p| (p.name, p.rss_kib)).collect();
        m.cpu = ran.procs.iter().map(|p| p.cpu_secs).collect();
        if let Some(failed) = ran.procs.iter().find(|p| !p.output.status.success()) {
            let err = String::from_utf8_lossy(&failed.output.stderr);
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            m.failed = Some(format!(
                "{} failed ({}): {last}",
                failed.name, failed.output.status
            ));
            eprintln!("{}: {}\n{err}", side.label, failed.name);
            return m;
        }
        for p in &ran.procs {
            let result = match (side.who, op, p.name) {
                (Who::Gust, _, _)
                | (Who::Python, _, _)
                | (Who::Tools, "sql_to_s3_csv" | "sql_to_s3_parquet", "python") => {
                    common::child_result(&p.output, p.name)
                }
                // download_stdout's stdout is the data: it reports on stderr.
                (Who::Tools, _, "python") => common::child_result(
                    &Output {
                        status: p.output.status,
                        stdout: p.output.stderr.clone(),
                        stderr: Vec::new(),
                    },
                    p.name,
                ),
                (Who::Tools, "s3_to_redis", "redis-benchmark") => {
                    // `--csv`: `"SET","<requests per second>",…` after the cluster's
                    // description.
                    let out = String::from_utf8_lossy(&p.output.stdout);
                    let rps = out
                        .lines()
                        .find_map(|l| l.strip_prefix("\"SET\",\""))
                        .and_then(|l| l.split('"').next())
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or_else(|| panic!("redis-benchmark printed no SET rate:\n{out}"));
                    m.inner = Some(rows as f64 / rps);
                    m.bytes = rows * self.redis_value_len.get();
                    m.note = Some(format!(
                        "redis-benchmark's own rate: {rps:.0} SET/s (its time excludes its start and the cluster's discovery)"
                    ));
                    continue;
                }
                _ => continue,
            };
            if p.name == "gust" || side.who == Who::Python {
                m.inner = result["secs"].as_f64();
            }
            if redis && side.who == Who::Python {
                let (read, lp) = (
                    result["read_secs"].as_f64().unwrap_or(f64::NAN),
                    result["loop_secs"].as_f64().unwrap_or(f64::NAN),
                );
                m.inner = Some(lp);
                let frame = result["frame_rows"].as_u64().unwrap_or(0);
                m.note = Some(format!(
                    "the loop: {rows} SETs in {lp:.2} s = {:.0} rows/s; get_object + read_csv of all {frame} rows {read:.2} s; \
                     at {ROWS} rows the job would take about {:.0} s",
                    rows as f64 / lp,
                    m.imports.unwrap_or(0.0) + read + lp * ROWS as f64 / rows as f64
                ));
            }
            if p.name == "gust" {
                m.own_hwm_kib = result["vmhwm_kib"].as_u64();
            }
            if p.name == "python" {
                m.imports = result["import_secs"].as_f64();
            }
            if let Some(b) = result["bytes"].as_u64() {
                m.bytes = b;
            }
            if let Some(r) = result["rows"].as_u64() {
                assert_eq!(r, rows, "{}: rows reported", side.label);
            }
        }
        match op {
            "sql_to_s3_csv" => {
                let (bytes, lines) = self.rt.block_on(self.count_object_lines(&key));
                assert_eq!(
                    lines,
                    rows + 1,
                    "{}: s3://{}/{key} has {lines} lines, expected a header and {rows} records",
                    side.label,
                    self.bucket
                );
                m.bytes = bytes;
                self.rt
                    .block_on(self.env.s3.delete(&self.bucket, &[key]))
                    .unwrap();
            }
            "sql_to_s3_parquet" => {
                let (bytes, note) = self.check_parquet(side, &key, rows);
                m.bytes = bytes;
                // The file's layout and types, once per side.
                if round == 1 {
                    m.note = Some(note);
                }
                self.rt
                    .block_on(self.env.s3.delete(&self.bucket, &[key]))
                    .unwrap();
            }
            "s3_to_sql_csv" | "replace_server_side" => {
                self.check_load(side);
                m.bytes = self.load_bytes.get();
            }
            "s3_to_redis" => {
                if side.who == Who::Gust {
                    m.bytes = rows * self.redis_value_len.get();
                }
                let note = self.check_redis(side, rows);
                m.note = Some(match m.note.take() {
                    Some(n) => format!("{n}; {note}"),
                    None => note,
                });
            }
            _ => {}
        }
        m
    }

    /// Removes the bench's keys from the cluster (gust's, redis-py's and
    /// redis-benchmark's), checking that none is left.
    #[cfg(feature = "redis")]
    fn redis_clean(&self) {
        let hook = self.env.redis.as_ref().expect("redis hook");
        for pattern in [
            format!("{REDIS_PREFIX}*"),
            REDIS_BENCHMARK_PATTERN.to_string(),
        ] {
            let keys = self.redis_keys(&pattern);
            for chunk in keys.chunks(10_000) {
                let mut batch = RedisBatch::new();
                for k in chunk {
                    batch.delete(k.clone());
                }
                self.rt.block_on(hook.execute(&batch)).unwrap();
            }
            assert_eq!(self.redis_keys(&pattern).len(), 0, "{pattern} left");
        }
    }

    #[cfg(not(feature = "redis"))]
    fn redis_clean(&self) {
        unreachable!("s3_to_redis is skipped without the redis feature")
    }

    /// The distinct keys matching `pattern` on every master.
    #[cfg(feature = "redis")]
    fn redis_keys(&self, pattern: &str) -> Vec<String> {
        use futures::StreamExt;
        let hook = self.env.redis.as_ref().expect("redis hook");
        let keys: std::collections::HashSet<String> = self.rt.block_on(
            hook.scan(pattern, 1000)
                .map(|k| k.unwrap())
                .collect::<std::collections::HashSet<String>>(),
        );
        keys.into_iter().collect()
    }

    /// Counts what a side wrote: gust's and redis-py's keys must be one per row,
    /// row 0 the source's first row; redis-benchmark's distinct keys are counted.
    /// Returns a note on it.
    #[cfg(feature = "redis")]
    fn check_redis(&self, side: &Side, rows: u64) -> String {
        let hook = self.env.redis.as_ref().expect("redis hook");
        let pattern = match side.who {
            Who::Gust => format!("{}*", REDIS_GUST_KEY.split("{{").next().unwrap()),
            Who::Python => format!("{REDIS_PY_PREFIX}*"),
            _ => {
                let n = self.redis_keys(REDIS_BENCHMARK_PATTERN).len();
                return format!("{n} distinct keys written (random among {rows})");
            }
        };
        let keys = self.redis_keys(&pattern);
        assert_eq!(keys.len() as u64, rows, "{}: keys {pattern}", side.label);
        let first = keys
            .iter()
            .find(|k| k.ends_with(":row:0"))
            .unwrap_or_else(|| panic!("{}: no key of row 0", side.label));
        let value: Value = self
            .rt
            .block_on(hook.get_json(first))
            .unwrap()
            .unwrap_or_else(|| panic!("{first} is missing"));
        // gust: every field a string; pandas: typed numbers.
        let row_id = value["row_id"]
            .as_str()
            .map(str::to_string)
            .unwrap_or(value["row_id"].to_string());
        assert_eq!(row_id, "1", "{}: {first} = {value}", side.label);
        format!("{} keys counted ({pattern}), {first} checked", keys.len())
    }

    #[cfg(not(feature = "redis"))]
    fn check_redis(&self, _: &Side, _: u64) -> String {
        unreachable!("s3_to_redis is skipped without the redis feature")
    }

    /// A side's Parquet object holds every row under the source's column names:
    /// downloaded to a temporary file, its footer's row count and the rows
    /// gust's Reader decodes (every page read). Returns its size and a note on
    /// its row groups and column types.
    #[cfg(feature = "parquet")]
    fn check_parquet(&self, side: &Side, key: &str, rows: u64) -> (u64, String) {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use std::io::{Seek, Write};
        let what = format!("{}: s3://{}/{key}", side.label, self.bucket);
        let mut file = tempfile::tempfile().unwrap();
        let bytes = self.rt.block_on(async {
            let mut body = self.env.s3.get_stream(&self.bucket, key).await.unwrap();
            let mut n = 0u64;
            while let Some(chunk) = body.try_next().await.unwrap() {
                file.write_all(&chunk).unwrap();
                n += chunk.len() as u64;
            }
            n
        });
        file.rewind().unwrap();
        let footer = SerializedFileReader::new(file.try_clone().unwrap())
            .unwrap_or_else(|e| panic!("{what}: not a Parquet file: {e}"));
        let meta = footer.metadata();
        let footer_rows = meta.file_metadata().num_rows() as u64;
        let groups = meta.num_row_groups();
        let largest = meta.row_groups().iter().map(|g| g.num_rows()).max();
        assert_eq!(footer_rows, rows, "{what}: the footer's row count");
        file.rewind().unwrap();
        let mut reader = gust::formats::parquet::Reader::open(file, "bench")
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(reader.columns(), COLUMNS, "{what}: the columns");
        let types: Vec<String> = COLUMNS
            .iter()
            .zip(reader.types())
            .map(|(n, t)| format!("{n} {t}"))
            .collect();
        let (mut decoded, mut batch) = (0u64, Vec::new());
        while reader.next_records(&mut batch).unwrap() {
            decoded += batch.len() as u64;
            batch.clear();
        }
        assert_eq!(decoded, rows, "{what}: the rows decoded");
        let note = format!(
            "{groups} row groups of up to {} rows; {}",
            largest.unwrap_or(0),
            types.join(", ")
        );
        (bytes, note)
    }

    #[cfg(not(feature = "parquet"))]
    fn check_parquet(&self, _: &Side, _: &str, _: u64) -> (u64, String) {
        unreachable!("sql_to_s3_parquet is skipped without the parquet feature")
    }

    /// The object's size and number of lines, streamed.
    async fn count_object_lines(&self, key: &str) -> (u64, u64) {
        self.env
            .s3
            .get_stream(&self.bucket, key)
            .await
            .unwrap()
            .try_fold((0u64, 0u64), |(b, l), c| async move {
                let n = c.iter().filter(|&&x| x == b'\n').count() as u64;
                Ok((b + c.len() as u64, l + n))
            })
            .await
            .unwrap()
    }

    /// A loaded table holds the source's rows: the same count and the same hash
    /// over every row's text (pandas' table, with its own column types, the
    /// same count).
    fn check_load(&self, side: &Side) {
        let hook = self.hook();
        let t = load_table(side.who);
        if side.who == Who::Python {
            assert_eq!(self.rt.block_on(count(&hook, t)), ROWS, "{t}");
            return;
        }
        let fingerprint = |table: &str| {
            let row = self
                .rt
                .block_on(hook.get_first(
                    &format!(
                        "SELECT count(*)::text AS n, sum(hashtext(t::text)::bigint)::text AS h \
                         FROM {table} t"
                    ),
                    Parameters::None,
                ))
                .unwrap()
                .unwrap();
            (row["n"].clone(), row["h"].clone())
        };
        assert_eq!(
            fingerprint(t),
            fingerprint(&source_table(ROWS)),
            "{}: {t} differs from the source",
            side.label
        );
    }

    fn cleanup(&self) {
        let _ = std::fs::remove_file(&self.csv_path);
        // The last `s3_to_redis` measurement's keys.
        #[cfg(feature = "redis")]
        if self.env.redis.is_some() {
            self.redis_clean();
        }
        let keys: Vec<String> = self
            .rt
            .block_on(async {
                use futures::StreamExt;
                self.env
                    .s3
                    .list(&self.bucket, Default::default())
                    .filter_map(|e| async move { e.ok() })
                    .collect::<Vec<_>>()
                    .await
            })
            .into_iter()
            .filter_map(|e| match e {
                ListEntry::Object(o) => Some(o.key),
                ListEntry::Prefix(_) => None,
            })
            .collect();
        if !keys.is_empty() {
            let _ = self.rt.block_on(self.env.s3.delete(&self.bucket, &keys));
        }
        let _ = self.rt.block_on(
            self.env
                .s3
                .client()
                .delete_bucket()
                .bucket(&self.bucket)
                .send(),
        );
    }
}

/// The table of every measurement, then each target, met or missed.
fn report(results: &[Measure], ops: &[String]) {
    println!(
        "\n| operation | implementation | round | rows | time | rows/s | MB/s | peak RSS | CPU | gust's rows/s vs it |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for m in results {
        let gust = results.iter().find(|g| {
            g.who == Who::Gust
                    && g.op == m.op
                    && g.round == m.round
                    // The redis-py loop runs on fewer rows.
                    && (g.rows == m.rows || m.op == "s3_to_redis")
        });
        m.markdown(gust);
    }
    println!();
    for op in ops {
        if op == "s3_to_redis" {
            report_redis(results);
            continue;
        }
        let tools = pairs(results, op, Who::Tools, ROWS);
        let python = pairs(results, op, Who::Python, ROWS);
        if tools.is_empty() && python.is_empty() {
            continue;
        }
        let list = |v: &[f64]| {
            v.iter()
                .map(|r| format!("{r:.2}x"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "{op}: gust throughput = {} the standard tools (median {}), = {} the pandas way (median {})",
            list(&tools),
            median(&tools).map_or("—".into(), |r| format!("{r:.2}x")),
            list(&python),
            median(&python).map_or("—".into(), |r| format!("{r:.2}x")),
        );
        let verdict = |r: f64, min: f64| {
            if r >= min {
                "met".to_string()
            } else {
                format!("MISSED by {:.0} %", (1.0 - r / min) * 100.0)
            }
        };
        if pandas_is_target(op) {
            if let Some(r) = median(&python) {
                println!(
                    "  target: at least {MIN_PARQUET_VS_PANDAS:.1}x the pandas way's throughput: {} ({r:.2}x)",
                    verdict(r, MIN_PARQUET_VS_PANDAS)
                );
            }
        } else if let Some(r) = median(&tools) {
            println!(
                "  target: at least {MIN_VS_TOOLS:.1}x the standard tools' throughput: {} ({r:.2}x)",
                verdict(r, MIN_VS_TOOLS)
            );
        }
        for (rows, max) in rss_targets(op) {
            let peak = results
                .iter()
                .filter(|m| m.who == Who::Gust && m.op == *op && m.rows == rows)
                .filter(|m| m.failed.is_none())
                .map(|m| m.rss.iter().map(|r| r.1).sum::<u64>() as f64 / 1024.0)
                .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))));
            if let Some(peak) = peak {
                let verdict = if peak <= max {
                    "met".to_string()
                } else {
                    format!("MISSED by {:.1} MiB", peak - max)
                };
                println!(
                    "  target: peak RSS <= {max} MiB at {rows} rows: {verdict} ({peak:.1} MiB)"
                );
            }
        }
    }
    // The probes: each variant's median time against the first one's.
    for op in ops {
        let probes: Vec<&Measure> = results
            .iter()
            .filter(|m| &m.op == op && m.who == Who::Probe && m.failed.is_none())
            .collect();
        let mut labels: Vec<&str> = probes.iter().map(|m| m.label.as_str()).collect();
        labels.dedup();
        let med = |label: &str| {
            let v: Vec<f64> = probes
                .iter()
                .filter(|m| m.label == label)
                .map(|m| m.wall.as_secs_f64())
                .collect();
            median(&v)
        };
        let Some(base) = labels.first().and_then(|l| med(l)) else {
            continue;
        };
        println!("{op}: median time of each variant (vs the first)");
        let mut seen = Vec::new();
        for label in labels {
            if seen.contains(&label) {
                continue;
            }
            seen.push(label);
            if let Some(t) = med(label) {
                println!("  {label}: {t:.2} s ({:.2}x)", t / base);
            }
        }
    }
}

/// gust's throughput over `who`'s, per round, where both ran.
fn pairs(results: &[Measure], op: &str, who: Who, rows: u64) -> Vec<f64> {
    let ok = |m: &&Measure| m.op == op && m.rows == rows && m.failed.is_none();
    results
        .iter()
        .filter(ok)
        .filter(|m| m.who == who)
        .filter_map(|o| {
            let g = results
                .iter()
                .filter(ok)
                .find(|g| g.who == Who::Gust && g.round == o.round)?;
            // Throughputs (the redis-py loop runs on fewer rows).
            Some((g.rows as f64 / g.wall.as_secs_f64()) / (o.rows as f64 / o.wall.as_secs_f64()))
        })
        .collect()
}

/// `s3_to_redis`'s targets: gust's rows/s (each round's, from start to exit)
/// against the redis-py loop's rate and redis-benchmark's own SET rate — the
/// references' faster figures, so the stricter ratios.
fn report_redis(results: &[Measure]) {
    let ok = |m: &&Measure| m.op == "s3_to_redis" && m.failed.is_none();
    let gust: Vec<f64> = results
        .iter()
        .filter(ok)
        .filter(|m| m.who == Who::Gust)
        .map(Measure::rate)
        .collect();
    let Some(g) = median(&gust) else {
        return;
    };
    let list = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "s3_to_redis: gust S3ToRedis {} rows/s (median {g:.0})",
        list(&gust)
    );
    let verdict = |r: f64, min: f64| {
        if r >= min {
            "met".to_string()
        } else {
            format!("MISSED by {:.0} %", (1.0 - r / min) * 100.0)
        }
    };
    let refs = |who: Who| -> Vec<f64> {
        results
            .iter()
            .filter(ok)
            .filter(|m| m.who == who)
            .map(Measure::rate)
            .collect()
    };
    if let Some(py) = median(&refs(Who::Python)) {
        let r = g / py;
        println!(
            "  target: at least {MIN_VS_REDIS_PY:.0}x the redis-py per-row loop ({py:.0} rows/s): {} ({r:.1}x)",
            verdict(r, MIN_VS_REDIS_PY)
        );
    }
    let rb = refs(Who::Tools);
    if let Some(b) = median(&rb) {
        let r = g / b;
        println!(
            "  target: at least {MIN_VS_REDIS_BENCHMARK:.2}x redis-benchmark -P 64's SET rate ({} SET/s, median {b:.0}): {} ({r:.2}x)",
            list(&rb),
            verdict(r, MIN_VS_REDIS_BENCHMARK)
        );
    }
}

const LOAD_KEY: &str = "load/credit_1m.csv";

fn side_key(who: Who) -> &'static str {
    match who {
        Who::Gust => "gust",
        Who::Tools => "tools",
        Who::Python => "pandas",
        Who::Probe => "probe",
    }
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

impl Measure {
    fn header() {
        println!(
            "{:<56} {:>5} {:>9} {:>9} {:>9} {:>10} {:>9}  peak RSS",
            "implementation", "round", "rows", "time", "inner", "rows/s", "MB"
        );
    }

    /// Rows per second: from the first process's start to the last one's exit,
    /// but for the references of `s3_to_redis`, whose rate is their own (the
    /// redis-py loop's, redis-benchmark's).
    fn rate(&self) -> f64 {
        let secs = match (self.op.as_str(), self.who, self.inner) {
            ("s3_to_redis", Who::Python | Who::Tools, Some(s)) => s,
            _ => self.wall.as_secs_f64(),
        };
        self.rows as f64 / secs
    }

    fn rss_text(&self) -> String {
        self.rss
            .iter()
            .map(|(name, kib)| format!("{name} {:.1} MiB", *kib as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(" + ")
    }

    fn cpu_text(&self) -> String {
        let mut parts: Vec<String> = self
            .rss
            .iter()
            .zip(&self.cpu)
            .map(|((name, _), cpu)| format!("{name} {cpu:.2} s"))
            .collect();
        if let Some(s) = self.server_cpu {
            parts.push(format!("(redis servers {s:.2} s)"));
        }
        parts.join(" + ")
    }

    fn print(&self) {
        if let Some(f) = &self.failed {
            println!("{:<56} {:>5} {f}", self.label, self.round);
            return;
        }
        let inner = self.inner.map_or("—".to_string(), |s| format!("{s:.2}s"));
        let imports = self
            .imports
            .map_or(String::new(), |s| format!(" (python imports {s:.2}s)"));
        let own = self.own_hwm_kib.map_or(String::new(), |k| {
            format!(" (own VmHWM {:.1} MiB)", k as f64 / 1024.0)
        });
        println!(
            "{:<56} {:>5} {:>9} {:>8.2}s {:>9} {:>10.0} {:>9.1}  {}; CPU {}{imports}{own}",
            self.label,
            self.round,
            self.rows,
            self.wall.as_secs_f64(),
            inner,
            self.rows as f64 / self.wall.as_secs_f64(),
            self.bytes as f64 / 1e6,
            self.rss_text(),
            self.cpu_text()
        );
        if let Some(note) = &self.note {
            println!("{:<56}       {note}", "");
        }
    }

    fn markdown(&self, gust: Option<&Measure>) {
        if let Some(f) = &self.failed {
            println!(
                "| {} | {} | {} | {} | {f} | | | | | |",
                self.op,
                self.label.replace('|', "\\|"),
                self.round,
                self.rows
            );
            return;
        }
        let secs = self.wall.as_secs_f64();
        let vs = gust
            .filter(|g| g.failed.is_none())
            .map_or(String::new(), |g| {
                format!("{:.2}x", g.rows as f64 / g.wall.as_secs_f64() / self.rate())
            });
        println!(
            "| {} | {} | {} | {} | {secs:.2} s | {:.0} | {:.1} | {} | {} | {vs} |",
            self.op,
            self.label.replace('|', "\\|"),
            self.round,
            self.rows,
            self.rows as f64 / secs,
            self.bytes as f64 / 1e6 / secs,
            self.rss_text(),
            self.cpu_text()
        );
    }
}

struct Ran {
    wall: Duration,
    procs: Vec<Proc>,
}

struct Proc {
    name: &'static str,
    output: Output,
    rss_kib: u64,
    cpu_secs: f64,
}

/// Runs the commands as a pipeline (each one's stdout into the next one's
/// stdin; the first reads nothing), each through a [`launch`]er that reports its
/// peak RSS, and collects every stdout not piped on and every stderr. The wall
/// time runs from the first spawn to the last exit.
fn run_pipeline(commands: Procs) -> Ran {
    let n = commands.len();
    let t0 = Instant::now();
    let mut children = Vec::with_capacity(n);
    let mut upstream: Option<std::process::ChildStdout> = None;
    for (i, (name, inner)) in commands.into_iter().enumerate() {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env(LAUNCH, "1")
            .arg(inner.get_program())
            .args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.stdin(upstream.take().map_or_else(Stdio::null, Stdio::from))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{name}: {e}"));
        // The command (holding the read end given to this child) is dropped here.
        drop(cmd);
        if i + 1 < n {
            upstream = child.stdout.take();
        }
        children.push((name, child));
    }
    let readers: Vec<_> = children
        .iter_mut()
        .map(|(_, child)| {
            let out = child.stdout.take();
            let err = child.stderr.take();
            std::thread::spawn(move || {
                let read = |r: Option<Box<dyn Read + Send>>| {
                    let mut v = Vec::new();
                    if let Some(mut r) = r {
                        let _ = r.read_to_end(&mut v);
                    }
                    v
                };
                let err = std::thread::spawn(move || read(err.map(|e| Box::new(e) as _)));
                let out = read(out.map(|o| Box::new(o) as _));
                (out, err.join().unwrap())
            })
        })
        .collect();
    let waited: Vec<(i32, u64, f64)> = children.iter().map(|(_, c)| wait4(c.id())).collect();
    let wall = t0.elapsed();
    let procs = children
        .into_iter()
        .zip(readers)
        .zip(waited)
        .map(|(((name, _), reader), (status, _, _))| {
            let (stdout, mut stderr) = reader.join().unwrap();
            // The launcher's last line: the command's own peak RSS and CPU time.
            let text = String::from_utf8_lossy(&stderr).into_owned();
            let (mut rss_kib, mut cpu_secs) = (0, 0.0);
            if let Some(at) = text.rfind(RSS_MARK) {
                let mut nums = text[at + RSS_MARK.len()..].split_whitespace();
                rss_kib = nums.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                cpu_secs = nums.next().and_then(|n| n.parse().ok()).unwrap_or(0.0);
                stderr.truncate(at);
            }
            Proc {
                name,
                output: Output {
                    status: std::process::ExitStatus::from_raw(status),
                    stdout,
                    stderr,
                },
                rss_kib,
                cpu_secs,
            }
        })
        .collect();
    Ran { wall, procs }
}

/// Reaps `pid`: its raw wait status, its peak RSS in KiB and its CPU time
/// (user + system) in seconds.
fn wait4(pid: u32) -> (i32, u64, f64) {
    let mut status = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for a child we spawned
    // and have not waited for (std's Child is dropped without waiting).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(
        r,
        pid as libc::pid_t,
        "wait4: {}",
        std::io::Error::last_os_error()
    );
    // Linux reports ru_maxrss in KiB, macOS in bytes.
    let rss = usage.ru_maxrss as u64;
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        status,
        if cfg!(target_os = "macos") {
            rss / 1024
        } else {
            rss
        },
        secs(usage.ru_utime) + secs(usage.ru_stime),
    )
}

/// The JSON objects `S3ToRedis` writes for the `;` CSV at `path` (every field a
/// string, NULL `null`, compact): their number and total size. PostgreSQL's CSV
/// of the bench's data quotes only the empty string (`""`), and no value holds a
/// `;`, a quote or a character JSON escapes (checked).
fn json_sizes(path: &Path) -> (u64, u64) {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(std::fs::File::open(path).unwrap()).lines();
    let header = lines.next().unwrap().unwrap();
    let names: Vec<String> = header.split(';').map(str::to_string).collect();
    // `{` + `"name":` per column + `,` between + `}`.
    let fixed: u64 =
        1 + names.iter().map(|n| n.len() as u64 + 3).sum::<u64>() + (names.len() as u64 - 1) + 1;
    let (mut rows, mut total) = (0u64, 0u64);
    for line in lines {
        let line = line.unwrap();
        let mut n = 0;
        let mut len = fixed;
        for field in line.split(';') {
            n += 1;
            len += match field {
                "" => 4,     // NULL
                "\"\"" => 2, // the empty string
                v => {
                    assert!(
                        !v.contains(['"', '\\']) && !v.chars().any(char::is_control),
                        "a value JSON would escape: {v:?}"
                    );
                    v.len() as u64 + 2
                }
            };
        }
        assert_eq!(n, names.len(), "{line}");
        rows += 1;
        total += len;
    }
    (rows, total)
}

/// A file's size and number of lines.
fn count_lines_file(path: &Path) -> (u64, u64) {
    let mut f = std::fs::File::open(path).unwrap();
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
