//! A minimal libtest for the test targets with `harness = false`
//! (`tests/cli.rs`, `tests/airflow_mode.rs`), whose `main` is also the pipeline
//! binary under test: name filters from the arguments, one line per test, and
//! libtest's summary line (which `.ci/run` prints).

use std::process::ExitCode;
use std::time::Instant;

/// What a test returns: `Err` says what went wrong.
pub type TestResult = std::result::Result<(), String>;

/// A test's name and its function.
pub type TestCase = (&'static str, fn() -> TestResult);

/// `Ok` if `cond` holds, else the message `what` makes.
pub fn ensure(cond: bool, what: impl FnOnce() -> String) -> TestResult {
    if cond { Ok(()) } else { Err(what()) }
}

/// Runs `tests` (those matching a name filter given as an argument, if any).
pub fn run_tests(tests: &[TestCase]) -> ExitCode {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let started = Instant::now();
    let (mut passed, mut failed, mut filtered) = (0, Vec::new(), 0);
    let selected: Vec<_> = tests
        .iter()
        .filter(|(name, _)| {
            let keep = filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
            if !keep {
                filtered += 1;
            }
            keep
        })
        .collect();
    println!("\nrunning {} tests", selected.len());
    for (name, test) in selected {
        match test() {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(why) => {
                println!("test {name} ... FAILED");
                failed.push((name, why));
            }
        }
    }
    for (name, why) in &failed {
        println!("\n---- {name} ----\n{why}");
    }
    println!(
        "\ntest result: {}. {passed} passed; {} failed; 0 ignored; 0 measured; {filtered} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
