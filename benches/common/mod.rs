//! What the benchmarks share.

use std::process::Output;

/// The result a benchmark child printed: its last stdout line that is a JSON
/// object. Panics with the child's output when there is none, so a broken child
/// shows why instead of a number.
pub fn child_result(out: &Output, who: &str) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "{who}: no result ({})\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{who}: result JSON: {e}\n{line}"))
}
