//! Finding the real servers that integration tests run against.
//!
//! `scripts/services.sh start` starts them and `scripts/services.sh env` prints the
//! `AIRFLOW_CONN_*` variables that point at them. Without a variable a test prints
//! why it is skipped and passes; with `CI=true` a missing server is a failure.
#![allow(dead_code)]

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
pub mod sql;

#[cfg(all(
    feature = "object-store",
    any(feature = "postgres", feature = "mysql", feature = "sqlite")
))]
pub mod transfers;

#[cfg(feature = "mlflow")]
pub mod mlflow_scenarios;

pub mod fault_proxy;
pub mod logs;

pub mod private;

#[cfg(feature = "object-store")]
pub mod gated_store;

#[cfg(feature = "mlflow")]
pub mod mlflow_tripwire;

#[cfg(feature = "s3")]
pub mod s3;

use gust::Connection;

/// Whether this is a CI run, where every server must be there.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The connection `conn_id` from `AIRFLOW_CONN_<CONN_ID>`, or `None` (test skipped)
/// when it is unset outside CI. Panics under `CI=true` when it is unset.
pub fn server_conn(conn_id: &str) -> Option<Connection> {
    let var = format!("AIRFLOW_CONN_{}", conn_id.to_uppercase());
    if std::env::var_os(&var).is_none() {
        let why = format!(
            "{var} is not set: start the servers with `scripts/services.sh start` and \
             `eval \"$(scripts/services.sh env)\"`"
        );
        if ci() {
            panic!("CI=true and a required server is missing: {why}");
        }
        eprintln!("SKIPPED: {why}");
        return None;
    }
    Some(Connection::from_env(conn_id).unwrap_or_else(|e| panic!("{var} is malformed: {e}")))
}

/// The Python that has MLflow installed (`GUST_SERVICES_PYTHON`), for tests that
/// check gust against the real MLflow client, or `None` (that check skipped) when
/// it is unset outside CI. Panics under `CI=true` when it is unset.
pub fn python() -> Option<String> {
    match std::env::var("GUST_SERVICES_PYTHON") {
        Ok(p) => Some(p),
        Err(_) if ci() => {
            panic!("CI=true but GUST_SERVICES_PYTHON is unset: eval \"$(scripts/services.sh env)\"")
        }
        Err(_) => {
            eprintln!("SKIPPED: GUST_SERVICES_PYTHON is not set (scripts/services.sh env)");
            None
        }
    }
}

/// Skips the calling test (returns early) unless `AIRFLOW_CONN_<CONN_ID>` is set.
#[macro_export]
macro_rules! require_conn {
    ($conn_id:expr) => {
        match $crate::common::server_conn($conn_id) {
            Some(c) => c,
            None => return,
        }
    };
}

/// A port on 127.0.0.1 that nothing listens on: bound by the OS, then released.
pub fn refused_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A name unique to this test process, for buckets, tables, keys and experiments.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}", std::process::id())
}
