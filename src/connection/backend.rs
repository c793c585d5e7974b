//! Secrets backends: where connections and variables come from when the
//! environment does not define them.
//!
//! Airflow looks a connection up in a chain: the worker's environment variables
//! (`AIRFLOW_CONN_*`, `AIRFLOW_VAR_*`) first, then the configured secrets backend
//! (the metadata database, Vault, …). gust keeps the same order. A process has at
//! most one backend, installed once with [`set_secrets_backend`]; without one, the
//! environment is the whole chain. When a pipeline binary runs a task for Airflow
//! (feature `airflow`), it installs a backend that asks the Airflow worker, so a
//! connection defined only in Airflow's UI reaches [`Connection::get`], every
//! hook's `from_conn_id`, [`Context::connection`](crate::Context::connection) and
//! the templates' `conn.` and `var.` alike.

use std::sync::{Mutex, OnceLock};

use super::Connection;
use crate::{Error, ErrorKind, Result};

/// A source of connections and variables consulted after the environment.
///
/// Both lookups are synchronous because templates and
/// [`Context::connection`](crate::Context::connection) are; a backend that talks
/// to a server blocks the calling thread for one round trip, once per id and
/// run (the run caches connections).
pub trait SecretsBackend: Send + Sync {
    /// The connection `conn_id`, or `None` if the backend does not know it.
    fn get_connection(&self, conn_id: &str) -> Result<Option<Connection>>;

    /// The variable `key`, or `None` if the backend does not know it.
    fn get_variable(&self, key: &str) -> Result<Option<String>>;
}

static BACKEND: OnceLock<Box<dyn SecretsBackend>> = OnceLock::new();

/// Secrets handed out by the backend; every run scrubs them from its errors, logs
/// and XComs, as it does the environment's.
static HANDED_OUT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Installs the process's secrets backend. Only one can be installed: a second call
/// is an [`ErrorKind::Config`] error, so two parts of a program cannot silently
/// disagree about where a connection comes from.
pub fn set_secrets_backend(backend: impl SecretsBackend + 'static) -> Result<()> {
    BACKEND.set(Box::new(backend)).map_err(|_| {
        Error::new(
            ErrorKind::Config,
            "secrets.set_backend",
            "a secrets backend is already installed in this process",
        )
    })
}

pub(crate) fn backend() -> Option<&'static dyn SecretsBackend> {
    BACKEND.get().map(|b| &**b)
}

pub(crate) fn remember_secrets(secrets: impl IntoIterator<Item = String>) {
    let mut all = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    for s in secrets {
        if !s.is_empty() && !all.contains(&s) {
            all.push(s);
        }
    }
}

pub(crate) fn handed_out_secrets() -> Vec<String> {
    HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

impl Connection {
    /// The connection `conn_id` as Airflow's `BaseHook.get_connection` finds it:
    /// `AIRFLOW_CONN_<CONN_ID>` if set, else the installed [`SecretsBackend`].
    ///
    /// Neither defining it is an [`ErrorKind::Config`] error naming the environment
    /// variable to set.
    pub fn get(conn_id: &str) -> Result<Connection> {
        let from_env = Connection::from_env(conn_id);
        let Some(backend) = backend() else {
            return from_env;
        };
        match from_env {
            Err(e) if e.kind() == ErrorKind::Config && !env_defines(conn_id) => {
                match backend.get_connection(conn_id)? {
                    Some(conn) => {
                        remember_secrets(conn.secrets());
                        Ok(conn)
                    }
                    None => Err(Error::new(
                        ErrorKind::Config,
                        "connection.get",
                        format!(
                            "connection {conn_id:?} is not defined: set {} or define it in the secrets backend",
                            super::conn_env_name(conn_id)
                        ),
                    )
                    .with("conn_id", conn_id)),
                }
            }
            other => other,
        }
    }
}

/// Whether the environment has a non-empty `AIRFLOW_CONN_<CONN_ID>`: a malformed
/// one is the environment's error, not a reason to ask the backend.
fn env_defines(conn_id: &str) -> bool {
    std::env::var_os(super::conn_env_name(conn_id)).is_some_and(|v| !v.is_empty())
}

/// A variable from the backend, its secrets remembered.
pub(crate) fn backend_variable(key: &str) -> Result<Option<String>> {
    let Some(backend) = backend() else {
        return Ok(None);
    };
    let value = backend.get_variable(key)?;
    if let Some(v) = &value {
        let mut secrets = Vec::new();
        super::redact::secrets_of_variable(key, v, &mut secrets);
        remember_secrets(secrets);
    }
    Ok(value)
}
