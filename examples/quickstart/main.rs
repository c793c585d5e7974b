//! The quick start: a three-task DAG that renders a templated `.sql` file for one
//! logical date and runs it on an embedded SQLite database, driven by gust's
//! command line (Airflow's verbs):
//!
//! ```text
//! cargo run --features cli --example quickstart -- dags test quickstart 2025-01-08
//! cargo run --features cli --example quickstart -- tasks render quickstart daily_summary 2025-01-08
//! cargo run --features cli --example quickstart -- dags show quickstart --format mermaid
//! cargo run --features cli --example quickstart -- --help
//! ```
//!
//! It uses the connection `AIRFLOW_CONN_SQLITE_DEFAULT` when set (for example
//! `sqlite://%2Ftmp%2Fgust.db`), and an in-memory database otherwise — which
//! `dags test` can use, but `tasks run` in separate processes cannot share.

mod dag;

use std::process::ExitCode;

use gust::hooks::sqlite::{DEFAULT_CONN_ID, SqliteHook};

#[tokio::main]
async fn main() -> ExitCode {
    let hook = match std::env::var_os("AIRFLOW_CONN_SQLITE_DEFAULT") {
        Some(_) => SqliteHook::from_conn_id(DEFAULT_CONN_ID).await,
        None => SqliteHook::open(DEFAULT_CONN_ID, ":memory:").await,
    };
    match hook.and_then(dag::quickstart) {
        Ok(dag) => gust::cli::main([dag]).await,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
