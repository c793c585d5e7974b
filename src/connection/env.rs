//! The environment: [`Connection::from_env`], [`Variable`] and opt-in `.env` loading.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Connection, OP_ENV, validate_conn_id};
use crate::{Error, ErrorKind, Result};

/// The environment variable that holds connection `conn_id`: `AIRFLOW_CONN_<CONN_ID>`.
pub(crate) fn conn_env_name(conn_id: &str) -> String {
    format!("AIRFLOW_CONN_{}", conn_id.to_uppercase())
}

impl Connection {
    /// Reads `AIRFLOW_CONN_<CONN_ID upper-cased>`: JSON if the (trimmed) value starts with
    /// `{`, else a URI, as Airflow's environment-variables secrets backend.
    ///
    /// An unset or empty variable is an [`ErrorKind::Config`] error naming the variable.
    pub fn from_env(conn_id: &str) -> Result<Self> {
        validate_conn_id(conn_id, OP_ENV)?;
        let var = conn_env_name(conn_id);
        let value = std::env::var(&var).unwrap_or_default();
        let value =
            value.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c));
        if value.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                OP_ENV,
                format!("connection {conn_id:?} is not defined: set {var} to its URI or JSON"),
            )
            .with("conn_id", conn_id));
        }
        let parsed = if value.starts_with('{') {
            Self::from_json(conn_id, value)
        } else {
            Self::from_uri(conn_id, value)
        };
        parsed.map_err(|e| e.with("env", var))
    }
}

/// Airflow variables, read from `AIRFLOW_VAR_<KEY upper-cased>` as Airflow's
/// environment-variables secrets backend does.
///
/// ```
/// # // SAFETY: doc tests run in their own process; nothing else touches the environment.
/// # unsafe { std::env::set_var("AIRFLOW_VAR_GUST_DOC_LIMITS", r#"{"rows": 10}"#) };
/// let limits = gust::Variable::get_json("gust_doc_limits")?;
/// assert_eq!(limits["rows"], 10);
/// # Ok::<(), gust::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Variable;

impl Variable {
    /// The environment variable that holds variable `key`: `AIRFLOW_VAR_<KEY>`.
    pub(crate) fn env_name(key: &str) -> String {
        format!("AIRFLOW_VAR_{}", key.to_uppercase())
    }

    /// The variable's value: `AIRFLOW_VAR_<KEY>` if set, else the installed
    /// [`SecretsBackend`](crate::connection::SecretsBackend)'s, else `None`. A value
    /// that is not UTF-8 is an [`ErrorKind::Config`] error.
    pub fn get_opt(key: &str) -> Result<Option<String>> {
        let var = Self::env_name(key);
        match std::env::var(&var) {
            Ok(v) => Ok(Some(v)),
            Err(std::env::VarError::NotPresent) => super::backend::backend_variable(key),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::new(
                ErrorKind::Config,
                "variable.get",
                format!("{var} is not valid UTF-8"),
            )
            .with("key", key)),
        }
    }

    /// The variable's value; an unset variable is an [`ErrorKind::Config`] error naming
    /// the environment variable to set.
    pub fn get(key: &str) -> Result<String> {
        Self::get_opt(key)?.ok_or_else(|| {
            let var = Self::env_name(key);
            Error::new(
                ErrorKind::Config,
                "variable.get",
                format!("variable {key:?} is not defined: set {var}"),
            )
            .with("key", key)
        })
    }

    /// The variable's value parsed as JSON (Airflow's `deserialize_json=True`). Invalid
    /// JSON is an [`ErrorKind::InvalidInput`] error that does not quote the value.
    pub fn get_json(key: &str) -> Result<Value> {
        let text = Self::get(key)?;
        serde_json::from_str(&text).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                "variable.get_json",
                format!(
                    "variable {key:?} is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
            .with("key", key)
        })
    }
}

fn dotenv_error(path: Option<&Path>, e: dotenvy::Error) -> Error {
    let at = path
        .map(|p| format!(" {}", p.display()))
        .unwrap_or_default();
    match e {
        // The line itself may hold a secret: report its position only.
        dotenvy::Error::LineParse(_, index) => Error::new(
            ErrorKind::Config,
            "dotenv.load",
            format!("cannot parse .env file{at} (at character {index})"),
        ),
        dotenvy::Error::Io(io) => {
            let kind = Error::from(std::io::Error::new(io.kind(), "")).kind();
            Error::new(
                kind,
                "dotenv.load",
                format!("cannot read .env file{at}: {io}"),
            )
            .with_source(io)
        }
        other => Error::new(
            ErrorKind::Config,
            "dotenv.load",
            format!("cannot load .env file{at}: {other}"),
        ),
    }
}

/// Loads `.env` from the current directory or its ancestors, if there is one, and
/// returns its path. Opt-in; never overrides variables that are already set.
pub fn load_dotenv() -> Result<Option<PathBuf>> {
    match dotenvy::dotenv() {
        Ok(path) => Ok(Some(path)),
        Err(e) if e.not_found() => Ok(None),
        Err(e) => Err(dotenv_error(None, e)),
    }
}

/// Loads the given `.env` file; never overrides variables that are already set.
pub fn load_dotenv_from(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    dotenvy::from_path(path).map_err(|e| dotenv_error(Some(path), e))
}
