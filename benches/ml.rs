//! The ML benchmarks of issue 13, each side by side in one run with what a
//! Python user writes (scikit-learn, `benches/ml_sklearn.py` run with
//! `$GUST_SERVICES_PYTHON`):
//!
//! | operation | gust | scikit-learn |
//! |---|---|---|
//! | `grid_search` | `GridSearch` over `Pipeline::new(Estimator::gradient_boosting_classifier()).step(RobustScaler::new())`, scored `f1_macro`, 5 folds, on every core | `GridSearchCV(Pipeline([RobustScaler(), HistGradientBoostingClassifier(…)]), cv=5, scoring="f1_macro", n_jobs=-1)` |
//! | `robust_scaler` | `RobustScaler::new().fit(&x)` + `transform(&x)` | `RobustScaler().fit_transform(X)` |
//!
//! The data is generated here, deterministically (splitmix64 from a fixed
//! seed), and written once to a temporary directory that both sides read:
//! seed 001's grid search on 100,000 credit-score-like rows (18 numeric
//! features with the real data's outliers, 3 classes `Good` / `Poor` /
//! `Standard`, no missing values) as a CSV file (every value written in
//! Rust's shortest round-trip form, which pandas parses exactly — the bench
//! checks 32 values of both sides' matrices for equality); the
//! scaler's 1,000,000 × 20 matrix as raw little-endian `f64`s, row-major
//! (`np.fromfile`). Reading is timed apart ("load") and not in the
//! comparison.
//!
//! The grid is gust's parameter names; the Python side maps them onto
//! `HistGradientBoostingClassifier` (`iterations` → `max_iter`, `max_depth` →
//! `max_depth`, `learning_rate` → `learning_rate`) and sets HGB's other knobs
//! to gust's forust booster: trees limited by depth only
//! (`max_leaf_nodes=None`), 255 bins, `l2_regularization=1`, and no early
//! stopping (HGB's `"auto"` turns it on above 10,000 rows). Both sides use
//! scikit-learn's folds for `cv=5` (`StratifiedKFold`, not shuffled; gust's
//! equal scikit-learn's) and refit the best candidate on all rows, inside
//! the timed call.
//!
//! Every measurement is its own process — this binary re-executed, or the
//! Python script — so its peak RSS (`VmHWM`) is its own, from the end of the
//! data's loading (reset there through `/proc/self/clear_refs`: the data held
//! counts, the CSV parser's and the imports' peaks do not); scikit-learn's
//! loky workers report theirs apart. Each measurement notes the load average
//! it started at: the machine is shared. Rounds alternate who goes first. The
//! scaler's outputs are compared: every `center_` and `scale_` and 32 sampled
//! transformed values must agree to 1e-12 (relative), or the bench panics —
//! a correctness check, not a timing threshold.
//!
//! ```text
//! eval "$(scripts/services.sh env)"   # GUST_SERVICES_PYTHON: the venv with scikit-learn and pandas
//! cargo bench --features ml --bench ml
//! ```
//!
//! Environment: `GUST_BENCH_OPS` (default `robust_scaler,grid_search`),
//! `GUST_BENCH_SCALER_ROUNDS` (default 3), `GUST_BENCH_GRID_ROUNDS` (default
//! 2), `GUST_BENCH_GRID_ROWS` (default 100,000), `GUST_BENCH_DIR` (where the
//! data is written; default the system's temporary directory).

mod common;

use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use gust::ml::estimator::Estimator;
use gust::ml::grid_search::GridSearch;
use gust::ml::metrics::Metric;
use gust::ml::pipeline::Pipeline;
use gust::ml::preprocessing::RobustScaler;
use gust::ml::{Dataset, Matrix, Target};
use serde_json::{Value, json};

/// Set in a re-executed child's environment: what it must do.
const CHILD: &str = "GUST_BENCH_ML_CHILD";
const SEED: u64 = 0x5EED_0001;
const GRID_ROWS: usize = 100_000;
const FOLDS: usize = 5;
const SCORING: Metric = Metric::F1Macro;
const SCALER_ROWS: usize = 1_000_000;
const SCALER_COLS: usize = 20;
const SCALER_SAMPLES: usize = 32;
/// The issue's targets: gust's speed against scikit-learn's (its wall time
/// over gust's), and the largest gap between the best CV scores.
const MIN_GRID_SPEEDUP: f64 = 1.0;
const MAX_SCORE_GAP: f64 = 0.01;
const MIN_SCALER_SPEEDUP: f64 = 2.0;
/// The agreement the scaler's outputs must have (relative).
const SCALER_TOLERANCE: f64 = 1e-12;

/// The grid, in gust's parameter names (the Python side maps them).
fn grid() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        ("iterations", vec![json!(50), json!(100)]),
        ("max_depth", vec![json!(3), json!(6)]),
        ("learning_rate", vec![json!(0.1), json!(0.3)]),
    ]
}

const FEATURES: [&str; 18] = [
    "age",
    "annual_income",
    "monthly_inhand_salary",
    "num_bank_accounts",
    "num_credit_card",
    "interest_rate",
    "num_of_loan",
    "delay_from_due_date",
    "num_of_delayed_payment",
    "changed_credit_limit",
    "num_credit_inquiries",
    "outstanding_debt",
    "credit_utilization_ratio",
    "credit_history_age",
    "total_emi_per_month",
    "amount_invested_monthly",
    "monthly_balance",
    "credit_mix",
];
const TARGET: &str = "credit_score";

fn main() {
    if let Ok(what) = std::env::var(CHILD) {
        child(&what);
        return;
    }
    let ops: Vec<String> = std::env::var("GUST_BENCH_OPS")
        .unwrap_or_else(|_| "robust_scaler,grid_search".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let python = std::env::var("GUST_SERVICES_PYTHON").unwrap_or_else(|_| "python3".into());
    let versions = Command::new(&python).arg(script()).arg("versions").output();
    let versions = match versions {
        Ok(out) if out.status.success() => common::child_result(&out, "python versions"),
        Ok(out) => panic!(
            "{python} {} versions failed (the services venv has scikit-learn: \
             eval \"$(scripts/services.sh env)\"):\n{}",
            script(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("cannot run {python}: {e}"),
    };
    println!(
        "gust {} (release), rustc's target {}, {} cores; {versions}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("uptime before: {}", uptime());

    let base = std::env::var_os("GUST_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::Builder::new()
        .prefix("gust-bench-ml")
        .tempdir_in(base)
        .unwrap();
    for op in &ops {
        match op.as_str() {
            "robust_scaler" => bench_scaler(dir.path(), &python),
            "grid_search" => bench_grid(dir.path(), &python),
            other => panic!("unknown operation {other} (robust_scaler, grid_search)"),
        }
    }
    println!("\nuptime after: {}", uptime());
}

fn script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/benches/ml_sklearn.py")
}

fn uptime() -> String {
    Command::new("uptime")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("(uptime: {e})"))
}

/// The 1-minute load average.
fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Runs a measurement, noting the load average it started at.
fn measured(run: impl FnOnce() -> Value) -> Value {
    let load = load1();
    let mut v = run();
    v["load1"] = json!(load);
    v
}

fn env_parse<T: std::str::FromStr>(var: &str) -> Option<T> {
    std::env::var(var).ok()?.parse().ok()
}

/// Runs this binary as a child doing `what`, with `envs`, and returns its
/// result line.
fn gust_child(what: &str, envs: &[(&str, String)]) -> Value {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(CHILD, what);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    if !out.status.success() {
        panic!(
            "gust {what} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    common::child_result(&out, &format!("gust {what}"))
}

fn python_child(python: &str, args: &[&str]) -> Value {
    let out = Command::new(python)
        .arg(script())
        .args(args)
        .output()
        .unwrap();
    if !out.status.success() {
        panic!(
            "scikit-learn {} failed ({}):\n{}",
            args[0],
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    common::child_result(&out, &format!("scikit-learn {}", args[0]))
}

// ---------------------------------------------------------------- the data

/// splitmix64: a small, fixed generator, so the data never depends on a
/// crate's version.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// An integer in [lo, hi].
    fn int(&mut self, lo: i64, hi: i64) -> f64 {
        (lo + (self.next_u64() % (hi - lo + 1) as u64) as i64) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// With probability `p`, an outlier in [lo, hi] (integer), else `x`:
    /// the real data's absurd counts (1,798 bank accounts, 5,797 % interest).
    fn dirty(&mut self, x: f64, p: f64, lo: i64, hi: i64) -> f64 {
        if self.uniform() < p {
            self.int(lo, hi)
        } else {
            x
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `rows` credit-score-like rows: 18 numeric features and a latent score
/// cut into `Poor` (lowest 29 %), `Standard`, `Good` (highest 18 %), about
/// the real data's shares. The label comes from the clean values; outliers
/// are then written over a few of them, as in the real data.
fn credit_rows(rows: usize) -> (Vec<[f64; 18]>, Vec<&'static str>) {
    let mut rng = Rng(SEED);
    let mut x = Vec::with_capacity(rows);
    let mut latent = Vec::with_capacity(rows);
    for _ in 0..rows {
        let age = rng.int(18, 56);
        let income = round2((10.8 + 0.6 * rng.normal()).exp());
        let salary = round2(income / 12.0 * rng.range(0.78, 0.95));
        let accounts = rng.int(0, 11);
        let cards = rng.int(0, 11);
        let interest = (accounts * 1.6 + rng.range(1.0, 16.0)).round();
        let loans = rng.int(0, 9);
        let delay = (loans * 3.0 + rng.range(-5.0, 40.0)).round();
        let delayed = (delay / 3.0 + rng.range(0.0, 10.0)).round().max(0.0);
        let limit = round2(rng.range(-6.0, 36.0));
        let inquiries = (loans + rng.range(0.0, 8.0)).round();
        let debt = round2(loans * 350.0 + rng.range(0.23, 1800.0));
        let utilization = round2(32.0 + 5.0 * rng.normal());
        let history = rng.int(1, 404);
        let emi = round2(loans * 25.0 * rng.range(0.5, 1.5));
        let invested = round2((4.5 + 0.9 * rng.normal()).exp());
        let balance = round2(salary - emi - invested + 150.0 * rng.normal());
        let mix = rng.int(0, 2);
        let z = 0.9 * mix - 0.035 * delay - 0.08 * delayed - 0.05 * interest + 0.004 * history
            - 0.0004 * debt
            - 0.07 * inquiries
            + 0.5 * (income / 50_000.0).ln()
            + 0.4 * ((age - 35.0) / 10.0).tanh()
            + 0.6 * f64::from(u8::from(mix == 2.0 && delayed < 8.0))
            + 0.6 * rng.normal();
        latent.push(z);
        x.push([
            age,
            rng.dirty(income, 0.01, 1_000_000, 24_000_000),
            salary,
            rng.dirty(accounts, 0.01, 12, 1_798),
            rng.dirty(cards, 0.01, 12, 1_499),
            rng.dirty(interest, 0.01, 35, 5_797),
            loans,
            delay,
            rng.dirty(delayed, 0.01, 29, 4_397),
            limit,
            rng.dirty(inquiries, 0.01, 18, 2_597),
            debt,
            utilization,
            history,
            emi,
            invested,
            balance,
            mix,
        ]);
    }
    let mut sorted = latent.clone();
    sorted.sort_by(f64::total_cmp);
    let (poor, good) = (sorted[rows * 29 / 100], sorted[rows * 82 / 100]);
    let y = latent
        .iter()
        .map(|&z| {
            if z < poor {
                "Poor"
            } else if z >= good {
                "Good"
            } else {
                "Standard"
            }
        })
        .collect();
    (x, y)
}

fn write_credit_csv(path: &Path, rows: usize) {
    let (x, y) = credit_rows(rows);
    let mut w = BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(w, "{},{TARGET}", FEATURES.join(",")).unwrap();
    for (row, label) in x.iter().zip(&y) {
        for v in row {
            write!(w, "{v},").unwrap();
        }
        writeln!(w, "{label}").unwrap();
    }
    w.flush().unwrap();
}

/// The scaler's matrix: columns of different shapes — normal, log-normal
/// with outliers, uniform, and integer counts full of ties (where the
/// interpolation between order statistics matters).
fn write_scaler_bin(path: &Path) {
    let mut rng = Rng(SEED ^ 0x0005_CA1E);
    let mut w = BufWriter::new(std::fs::File::create(path).unwrap());
    for _ in 0..SCALER_ROWS {
        for j in 0..SCALER_COLS {
            let v = match j % 4 {
                0 => 100.0 * j as f64 + (j + 1) as f64 * rng.normal(),
                1 => {
                    let v = (9.0 + rng.normal()).exp();
                    rng.dirty(v, 0.01, 1_000_000, 9_000_000)
                }
                2 => rng.range(-1.0, 1.0) * 10f64.powi(j as i32 / 4 - 2),
                _ => rng.int(0, 3 * j as i64),
            };
            w.write_all(&v.to_le_bytes()).unwrap();
        }
    }
    w.flush().unwrap();
}

/// The [row, col]s whose transformed values both sides report.
fn scaler_samples() -> Vec<[usize; 2]> {
    let mut rng = Rng(SEED ^ 0x5A3B);
    (0..SCALER_SAMPLES)
        .map(|k| {
            [
                (rng.next_u64() % SCALER_ROWS as u64) as usize,
                k % SCALER_COLS,
            ]
        })
        .collect()
}

// ---------------------------------------------------------------- children

fn child(what: &str) {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let result = match what {
        "grid" => child_grid(&var("GUST_BENCH_CSV")),
        "scaler" => child_scaler(&var("GUST_BENCH_BIN")),
        other => panic!("unknown child {other}"),
    };
    println!("{result}");
}

fn child_grid(csv_path: &str) -> Value {
    // The CSV straight into the matrix and the class indices (what
    // `Dataset::from_rows` builds from query rows, without a JSON map per
    // row). The bench wrote it: plain numbers and labels, no quoting.
    let t0 = Instant::now();
    let text = std::fs::read_to_string(csv_path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header.len(), FEATURES.len() + 1);
    assert!(header.iter().zip(FEATURES).all(|(h, f)| *h == f));
    let mut values = Vec::with_capacity(GRID_ROWS * FEATURES.len());
    let mut labels = Vec::with_capacity(GRID_ROWS);
    for line in lines {
        let mut cells = line.split(',');
        values.extend(
            cells
                .by_ref()
                .take(FEATURES.len())
                .map(|v| v.parse::<f64>().unwrap()),
        );
        labels.push(cells.next().unwrap().to_string());
        assert!(
            cells.next().is_none(),
            "a row of more than {} cells",
            header.len()
        );
    }
    drop(text);
    let mut classes = labels.clone();
    classes.sort();
    classes.dedup();
    let y = labels
        .iter()
        .map(|l| classes.binary_search(l).unwrap())
        .collect();
    let data = Dataset {
        features: FEATURES.iter().map(|f| f.to_string()).collect(),
        x: Matrix::new(labels.len(), FEATURES.len(), values).unwrap(),
        categorical: Vec::new(),
        target_name: TARGET.into(),
        target: Target::Classes { classes, y },
    };
    drop(labels);
    let load = t0.elapsed().as_secs_f64();
    let load_hwm = vm_hwm_kib();
    reset_hwm();

    let mut search = GridSearch::new(
        Pipeline::new(Estimator::gradient_boosting_classifier()).step(RobustScaler::new()),
        SCORING,
    )
    .folds(FOLDS);
    for (name, values) in grid() {
        search = search.param(name, values);
    }
    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    let result = search.fit(&data).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let candidates: Vec<Value> = result
        .candidates
        .iter()
        .map(|c| {
            json!({
                "params": c.params,
                "mean_test_score": c.mean_test_score,
                "std_test_score": c.std_test_score,
                "rank_test_score": c.rank_test_score,
                "mean_fit_time": c.mean_fit_time,
            })
        })
        .collect();
    json!({
        "secs": secs,
        "load_secs": load,
        "rows": data.len(),
        "features": data.features.len(),
        "best_score": result.best_score,
        "best_index": result.best_index,
        "best_params": result.best_params(),
        "candidates": candidates,
        "load_vmhwm_kib": load_hwm,
        "x_samples": (0..32)
            .map(|k| data.x.get(k * 7919 % data.len(), k % data.x.cols()))
            .collect::<Vec<f64>>(),
        "vmhwm_kib": vm_hwm_kib(),
        "cpu_secs": cpu,
    })
}

fn child_scaler(bin_path: &str) -> Value {
    let t0 = Instant::now();
    let mut file = std::io::BufReader::new(std::fs::File::open(bin_path).unwrap());
    let mut values = Vec::with_capacity(SCALER_ROWS * SCALER_COLS);
    let mut buf = [0u8; 8];
    for _ in 0..SCALER_ROWS * SCALER_COLS {
        file.read_exact(&mut buf).unwrap();
        values.push(f64::from_le_bytes(buf));
    }
    let x = Matrix::new(SCALER_ROWS, SCALER_COLS, values).unwrap();
    let load = t0.elapsed().as_secs_f64();
    reset_hwm();

    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    let fitted = RobustScaler::new().fit(&x).unwrap();
    let fit = t0.elapsed().as_secs_f64();
    let out = fitted.transform(&x).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let samples: Vec<f64> = scaler_samples()
        .iter()
        .map(|&[i, j]| out.get(i, j))
        .collect();
    json!({
        "secs": secs,
        "fit_secs": fit,
        "load_secs": load,
        "center": fitted.center_,
        "scale": fitted.scale_,
        "samples": samples,
        "vmhwm_kib": vm_hwm_kib(),
        "cpu_secs": cpu,
    })
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

/// Resets this process's `VmHWM` to its current RSS (Linux's `clear_refs`,
/// value 5), so the peak reported covers what follows the data's loading.
fn reset_hwm() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM (/proc/self/clear_refs)");
}

/// This process's CPU time so far (user + system, every thread).
fn cpu_secs() -> f64 {
    // SAFETY: rusage is plain old data, filled by getrusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

// ---------------------------------------------------------------- the benches

fn mib(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0) / 1024.0
}

fn bench_scaler(dir: &Path, python: &str) {
    let rounds: usize = env_parse("GUST_BENCH_SCALER_ROUNDS").unwrap_or(3);
    let bin = dir.join("scaler.f64");
    let t0 = Instant::now();
    write_scaler_bin(&bin);
    println!(
        "\nrobust_scaler: fit + transform of {SCALER_ROWS} x {SCALER_COLS} f64 \
         ({:.0} MB written in {:.2?}), {rounds} round(s)",
        (SCALER_ROWS * SCALER_COLS * 8) as f64 / 1e6,
        t0.elapsed()
    );
    let samples = serde_json::to_string(&scaler_samples()).unwrap();
    let bin_s = bin.to_string_lossy().to_string();
    let rows_s = SCALER_ROWS.to_string();
    let cols_s = SCALER_COLS.to_string();
    let mut lines = Vec::new();
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let run_gust = || gust_child("scaler", &[("GUST_BENCH_BIN", bin_s.clone())]);
        let run_py = || python_child(python, &["scaler", &bin_s, &rows_s, &cols_s, &samples]);
        let (g, p) = if round % 2 == 1 {
            let g = measured(run_gust);
            (g, measured(run_py))
        } else {
            let p = measured(run_py);
            (measured(run_gust), p)
        };
        check_scaler(&g, &p);
        let (gs, ps) = (g["secs"].as_f64().unwrap(), p["secs"].as_f64().unwrap());
        ratios.push(ps / gs);
        lines.push((round, g, p));
    }
    println!(
        "{:<44} {:>5} {:>9} {:>9} {:>9} {:>10} {:>9} {:>7}",
        "implementation", "round", "time", "(fit)", "CPU", "peak RSS", "vs gust", "load1"
    );
    for (round, g, p) in &lines {
        let gs = g["secs"].as_f64().unwrap();
        println!(
            "{:<44} {:>5} {:>8.3}s {:>8.3}s {:>8.2}s {:>6.1} MiB {:>8.2}x {:>7.2}",
            "gust RobustScaler fit + transform",
            round,
            gs,
            g["fit_secs"].as_f64().unwrap(),
            g["cpu_secs"].as_f64().unwrap(),
            mib(&g["vmhwm_kib"]),
            1.0,
            g["load1"].as_f64().unwrap()
        );
        let ps = p["secs"].as_f64().unwrap();
        println!(
            "{:<44} {:>5} {:>8.3}s {:>9} {:>8.2}s {:>6.1} MiB {:>8.2}x {:>7.2}",
            "scikit-learn RobustScaler().fit_transform",
            round,
            ps,
            "",
            p["cpu_secs"].as_f64().unwrap(),
            mib(&p["vmhwm_kib"]),
            ps / gs,
            p["load1"].as_f64().unwrap()
        );
    }
    println!(
        "outputs agree: {} centers, {} scales, {SCALER_SAMPLES} sampled values to {SCALER_TOLERANCE:e} (every round)",
        SCALER_COLS, SCALER_COLS
    );
    let med = median(&ratios);
    println!(
        "target >= {MIN_SCALER_SPEEDUP:.1}x scikit-learn: median {med:.2}x over {rounds} round(s) \
         ({:.2}x-{:.2}x) — {}",
        ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratios.iter().copied().fold(0.0, f64::max),
        verdict(med, MIN_SCALER_SPEEDUP)
    );
    println!(
        "\n| round | gust fit + transform | scikit-learn `fit_transform` | speed-up | gust peak RSS | scikit-learn peak RSS | load avg at start (gust / scikit-learn) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (round, g, p) in &lines {
        let (gs, ps) = (g["secs"].as_f64().unwrap(), p["secs"].as_f64().unwrap());
        println!(
            "| {round} | {:.3} s (fit {:.3}) | {ps:.3} s | {:.2}x | {:.1} MiB | {:.1} MiB | {:.2} / {:.2} |",
            gs,
            g["fit_secs"].as_f64().unwrap(),
            ps / gs,
            mib(&g["vmhwm_kib"]),
            mib(&p["vmhwm_kib"]),
            g["load1"].as_f64().unwrap(),
            p["load1"].as_f64().unwrap()
        );
    }
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= SCALER_TOLERANCE * a.abs().max(b.abs()).max(1.0)
}

/// Panics unless gust's and scikit-learn's centers, scales and sampled
/// outputs agree.
fn check_scaler(g: &Value, p: &Value) {
    for field in ["center", "scale", "samples"] {
        let (a, b) = (g[field].as_array().unwrap(), p[field].as_array().unwrap());
        assert_eq!(a.len(), b.len(), "robust_scaler: {field} lengths differ");
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                close(x, y),
                "robust_scaler: gust and scikit-learn disagree on {field}[{k}]: {x:e} vs {y:e}\n\
                 gust: {}\nscikit-learn: {}",
                g[field],
                p[field]
            );
        }
    }
}

fn bench_grid(dir: &Path, python: &str) {
    let rounds: usize = env_parse("GUST_BENCH_GRID_ROUNDS").unwrap_or(2);
    let rows: usize = env_parse("GUST_BENCH_GRID_ROWS").unwrap_or(GRID_ROWS);
    let csv_path = dir.join("credit.csv");
    let t0 = Instant::now();
    write_credit_csv(&csv_path, rows);
    let grid_json = serde_json::to_string(&grid()).unwrap();
    let candidates: usize = grid().iter().map(|(_, v)| v.len()).product();
    println!(
        "\ngrid_search: {rows} rows x {} features, 3 classes ({:.1} MB of CSV written in {:.2?}); \
         grid {grid_json} = {candidates} candidates x {FOLDS} folds + refit, scoring {}; {rounds} round(s)",
        FEATURES.len(),
        std::fs::metadata(&csv_path).unwrap().len() as f64 / 1e6,
        t0.elapsed(),
        SCORING.name()
    );
    let csv_s = csv_path.to_string_lossy().to_string();
    let folds_s = FOLDS.to_string();
    let mut lines = Vec::new();
    for round in 1..=rounds {
        let run_gust = || gust_child("grid", &[("GUST_BENCH_CSV", csv_s.clone())]);
        let run_py = || {
            python_child(
                python,
                &["grid", &csv_s, &grid_json, &folds_s, SCORING.name()],
            )
        };
        let (g, p) = if round % 2 == 1 {
            let g = measured(run_gust);
            (g, measured(run_py))
        } else {
            let p = measured(run_py);
            (measured(run_gust), p)
        };
        assert_eq!(
            g["candidates"].as_array().map(Vec::len),
            Some(candidates),
            "gust's candidates"
        );
        assert_eq!(
            p["candidates"].as_array().map(Vec::len),
            Some(candidates),
            "scikit-learn's candidates"
        );
        assert_eq!(
            g["x_samples"], p["x_samples"],
            "gust and scikit-learn did not read the same numbers from the CSV"
        );
        lines.push((round, g, p));
    }
    println!(
        "{:<52} {:>5} {:>9} {:>7} {:>9} {:>8} {:>15}  best params",
        "implementation", "round", "time", "load", "CPU", "best CV", "peak RSS"
    );
    let mut ratios = Vec::new();
    let mut gaps = Vec::new();
    for (round, g, p) in &lines {
        let gs = g["secs"].as_f64().unwrap();
        let ps = p["secs"].as_f64().unwrap();
        ratios.push(ps / gs);
        gaps.push(g["best_score"].as_f64().unwrap() - p["best_score"].as_f64().unwrap());
        println!(
            "{:<52} {:>5} {:>8.2}s {:>6.2}s {:>8.1}s {:>8.4} {:>11.1} MiB  {}",
            "gust GridSearch (forust GBM, RobustScaler)",
            round,
            gs,
            g["load_secs"].as_f64().unwrap(),
            g["cpu_secs"].as_f64().unwrap(),
            g["best_score"].as_f64().unwrap(),
            mib(&g["vmhwm_kib"]),
            g["best_params"]
        );
        println!(
            "{:<52} {:>5} {:>8.2}s {:>6.2}s {:>8.1}s {:>8.4} {:>15}  {}",
            "scikit-learn GridSearchCV (HistGradientBoosting)",
            round,
            ps,
            p["load_secs"].as_f64().unwrap(),
            p["cpu_secs"].as_f64().unwrap() + p["worker_cpu_secs"].as_f64().unwrap(),
            p["best_score"].as_f64().unwrap(),
            python_rss(p),
            p["best_params"]
        );
        println!(
            "{:<52}       scikit-learn: CV {:.2}s + refit {:.2}s; gust {:.2}x scikit-learn's speed, best CV {:+.4}; \
             load average at start gust {:.2}, scikit-learn {:.2}; peak RSS while loading gust {:.1} MiB, scikit-learn {:.1} MiB",
            "",
            ps - p["refit_secs"].as_f64().unwrap(),
            p["refit_secs"].as_f64().unwrap(),
            ps / gs,
            gaps.last().unwrap(),
            g["load1"].as_f64().unwrap(),
            p["load1"].as_f64().unwrap(),
            mib(&g["load_vmhwm_kib"]),
            mib(&p["load_vmhwm_kib"])
        );
    }

    // Per candidate, from the last round (the scores do not change between rounds).
    let (_, g, p) = lines.last().unwrap();
    println!(
        "\nper candidate (mean CV {} over {FOLDS} folds, mean fit seconds per fold):",
        SCORING.name()
    );
    println!(
        "\n| candidate | gust | scikit-learn | gust − scikit-learn | gust fit | scikit-learn fit |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let gc = g["candidates"].as_array().unwrap();
    let pc = p["candidates"].as_array().unwrap();
    for a in gc {
        // scikit-learn orders its candidates by sorted parameter names.
        let b = pc
            .iter()
            .find(|b| b["params"] == a["params"])
            .unwrap_or_else(|| panic!("scikit-learn has no candidate {}", a["params"]));
        let (sa, sb) = (
            a["mean_test_score"].as_f64().unwrap(),
            b["mean_test_score"].as_f64().unwrap(),
        );
        println!(
            "| {} | {sa:.4}{} | {sb:.4}{} | {:+.4} | {:.2} s | {:.2} s |",
            a["params"],
            if a["rank_test_score"] == 1 {
                " (best)"
            } else {
                ""
            },
            if b["rank_test_score"] == 1 {
                " (best)"
            } else {
                ""
            },
            sa - sb,
            a["mean_fit_time"].as_f64().unwrap(),
            b["mean_fit_time"].as_f64().unwrap()
        );
    }

    println!(
        "\n| round | gust `GridSearch` | scikit-learn `GridSearchCV` (of which refit) | speed-up | best CV gust / scikit-learn | gust peak RSS | scikit-learn peak RSS | load avg at start (gust / scikit-learn) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (round, g, p) in &lines {
        let (gs, ps) = (g["secs"].as_f64().unwrap(), p["secs"].as_f64().unwrap());
        println!(
            "| {round} | {gs:.2} s | {ps:.2} s ({:.2} s) | {:.2}x | {:.4} / {:.4} | {:.1} MiB | {} | {:.2} / {:.2} |",
            p["refit_secs"].as_f64().unwrap(),
            ps / gs,
            g["best_score"].as_f64().unwrap(),
            p["best_score"].as_f64().unwrap(),
            mib(&g["vmhwm_kib"]),
            python_rss(p),
            g["load1"].as_f64().unwrap(),
            p["load1"].as_f64().unwrap()
        );
    }
    let med = median(&ratios);
    let gap = gaps.iter().map(|g| g.abs()).fold(0.0, f64::max);
    println!(
        "\ntarget >= {MIN_GRID_SPEEDUP:.1}x scikit-learn's speed: median {med:.2}x over {rounds} round(s) — {}",
        verdict(med, MIN_GRID_SPEEDUP)
    );
    println!(
        "target best CV score within {MAX_SCORE_GAP}: |gust − scikit-learn| = {gap:.4} — {}",
        if gap <= MAX_SCORE_GAP {
            "met"
        } else {
            "MISSED"
        }
    );
}

/// scikit-learn's peak RSS: the main process and each child (the loky workers and their resource tracker).
fn python_rss(p: &Value) -> String {
    let workers: Vec<f64> = p["worker_vmhwm_kib"]
        .as_array()
        .map(|a| a.iter().map(mib).filter(|&m| m > 0.0).collect())
        .unwrap_or_default();
    let mut s = format!("{:.1} MiB", mib(&p["vmhwm_kib"]));
    if !workers.is_empty() {
        s.push_str(&format!(
            " + {} children {} (sum {:.1} MiB)",
            workers.len(),
            workers
                .iter()
                .map(|w| format!("{w:.1}"))
                .collect::<Vec<_>>()
                .join(" / "),
            mib(&p["vmhwm_kib"]) + workers.iter().sum::<f64>()
        ));
    }
    s
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn verdict(got: f64, target: f64) -> String {
    if got >= target {
        "met".into()
    } else {
        format!("MISSED by {:.0} %", (1.0 - got / target) * 100.0)
    }
}
