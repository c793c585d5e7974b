//! [`MlflowHook`]: MLflow tracking and model registry, on a tracking server over
//! REST or on MLflow's local `file:` store (feature `mlflow`).
//!
//! The hook is a facade over one [`MlflowStore`]: a [`RestStore`] for
//! `http(s)://` tracking URIs, a [`FileStore`] for `file:./mlruns`-style URIs and
//! plain paths, or any store of your own ([`MlflowHook::with_store`]). Pipeline
//! code is the same on all of them.
//!
//! Build it from a tracking URI ([`MlflowHook::from_uri`]), from the variables the
//! Python client reads (`MLFLOW_TRACKING_URI`, `MLFLOW_TRACKING_TOKEN`,
//! `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`), with a local default
//! when the variable is unset ([`MlflowHook::from_env_or`]), or from an Airflow
//! connection (`http`/`https`/`mlflow` type, host and port; a token in the
//! password with an empty login, or basic auth from login and password).
//!
//! ```no_run
//! # async fn demo() -> gust::Result<()> {
//! use gust::hooks::mlflow::{MlflowHook, RunStatus};
//!
//! // MLFLOW_TRACKING_URI if set, else MLflow's file store under ./mlruns.
//! let mlflow = MlflowHook::from_env_or("file:./mlruns")?;
//! let experiment_id = mlflow.get_or_create_experiment("testjun").await?;
//! let accuracy = mlflow
//!     .with_run(&experiment_id, Some("iris"), |run| async move {
//!         run.log_param("n_estimators", "100").await?;
//!         run.log_metric("accuracy", 0.97, 0).await?;
//!         Ok(0.97)
//!     })
//!     .await?; // the run ends FINISHED, or FAILED if the closure returned an error
//! # let _ = (accuracy, RunStatus::Finished); Ok(()) }
//! ```
//!
//! Artifacts are streamed both ways and whole directories are transferred
//! recursively. A run's artifact root decides where they go: the tracking
//! server's proxy (`mlflow-artifacts:/…`), a local directory (`file:`, on a
//! file store) or, with the `s3` feature, S3 itself (`s3://bucket/prefix`, e.g.
//! an experiment made with [`MlflowHook::create_experiment_with_location`]),
//! through an `S3Hook` configured like the Python client's S3 client
//! (`MLFLOW_S3_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`,
//! `AWS_DEFAULT_REGION`) or given with `MlflowHook::with_artifact_s3`.
//!
//! Over REST, MLflow's `error_code` maps to [`ErrorKind`]: `RESOURCE_DOES_NOT_EXIST`
//! → not found, `RESOURCE_ALREADY_EXISTS` (sent with HTTP 400) → already exists,
//! `INVALID_PARAMETER_VALUE` → invalid input, 401/403 → auth; 429, 502, 503 and 504
//! and connection failures are retryable and retried here with backoff; an error
//! still failing after the last retry is [exhausted](crate::Error::exhausted), so
//! a task does not multiply the attempts (see [`crate::retry`]). Error
//! messages keep MLflow's first line only (the rest is the server's SQL) and never
//! contain the token or password. The file store raises the same kinds.

mod artifacts;
mod file_store;
mod registry;
mod rest;
mod s3_artifacts;
mod store;
mod tracking;
mod types;

// The MLflow model format: `MLmodel`, flavors, `log_model` / `load_model`.
pub mod model;
pub use self::model::{
    ColSpec, ColType, FlavorConfig, InputExample, LOG_MODEL_HISTORY_TAG, MLMODEL_FILE,
    MLMODEL_MLFLOW_VERSION, MlModel, MlflowFlavor, ModelInfo, ModelMeta, ModelSignature, ModelUri,
    ResolvedModel, Schema, SchemaField, flavor_data_path, load_model_from_dir, save_model,
};
#[cfg(feature = "ml")]
pub use self::model::{SMARTCORE_FLAVOR, SMARTCORE_VERSION, SmartcoreModel};

use std::sync::Arc;

pub use self::artifacts::FileInfo;
pub use self::file_store::FileStore;
pub use self::registry::validate_alias;
pub use self::rest::RestStore;
pub use self::store::{MlflowStore, Page};
pub use self::tracking::{ActiveRun, BatchLimits};
pub use self::types::{
    Experiment, Metric, ModelAlias, ModelVersion, ModelVersionStatus, ModelVersionTag, Param,
    RegisteredModel, Run, RunData, RunInfo, RunStatus, RunTag,
};
use crate::connection::Connection;
use crate::error::{Error, ErrorKind, Result};

/// Conn id used when none is given.
pub const DEFAULT_CONN_ID: &str = "mlflow_default";

/// MLflow tracking and registry through one [`MlflowStore`]. Cheap to clone.
#[derive(Clone)]
pub struct MlflowHook {
    /// The connection this hook was built from; `None` when it was built from a
    /// tracking URI, which its errors name instead.
    conn_id: Option<String>,
    store: Arc<dyn MlflowStore>,
    /// The built-in store behind `store`, if it is one, so the builders can
    /// rebuild it.
    builtin: Builtin,
    batch_limits: BatchLimits,
}

/// Which of gust's stores a hook talks through.
#[derive(Clone)]
enum Builtin {
    Rest(RestStore),
    File(FileStore),
    /// A store given with [`MlflowHook::with_store`].
    Other,
}

impl std::fmt::Debug for MlflowHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlflowHook")
            .field("conn_id", &self.conn_id)
            .field("store", &self.store)
            .finish()
    }
}

/// Names where a hook's errors come from: its conn id, or the tracking URI it was
/// built from (never a conn id it did not use).
pub(crate) trait WithOrigin {
    fn with_origin(self, hook: &MlflowHook) -> Self;
}

impl WithOrigin for Error {
    fn with_origin(self, hook: &MlflowHook) -> Self {
        match hook.conn_id() {
            Some(id) => self.with("conn_id", id),
            None => self.with("tracking_uri", hook.tracking_uri()),
        }
    }
}

/// Whether `uri` starts with a URI scheme (`file:`, `http:`, `sqlite:` …) rather
/// than being a path. One-letter schemes are Windows drive letters.
fn scheme(uri: &str) -> Option<&str> {
    let (scheme, _) = uri.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (scheme.len() > 1
        && first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

impl MlflowHook {
    fn from_rest(rest: RestStore) -> Self {
        MlflowHook {
            conn_id: rest.conn_id().map(str::to_string),
            store: Arc::new(rest.clone()),
            builtin: Builtin::Rest(rest),
            batch_limits: BatchLimits::default(),
        }
    }

    fn from_file(file: FileStore) -> Self {
        MlflowHook {
            conn_id: None,
            store: Arc::new(file.clone()),
            builtin: Builtin::File(file),
            batch_limits: BatchLimits::default(),
        }
    }

    /// Replaces the built-in store (after a builder changed it).
    fn set_builtin(&mut self, builtin: Builtin) {
        match &builtin {
            Builtin::Rest(r) => self.store = Arc::new(r.clone()),
            Builtin::File(f) => self.store = Arc::new(f.clone()),
            Builtin::Other => {}
        }
        self.builtin = builtin;
    }

    /// A hook for the tracking server at `base_url` (e.g. `http://127.0.0.1:5000`),
    /// no auth. For a `file:` store use [`from_uri`](Self::from_uri).
    pub fn new(base_url: &str) -> Result<Self> {
        RestStore::new(base_url).map(Self::from_rest)
    }

    /// A hook for a tracking URI, as `mlflow.set_tracking_uri` takes it:
    /// `http(s)://…` is a [`RestStore`] (no auth); `file:./mlruns`,
    /// `file:///abs/mlruns` and plain paths (`mlruns`, `/data/mlruns`) are a
    /// [`FileStore`] rooted there (a relative path is resolved against the current
    /// directory now). Other schemes (`sqlite:`, `databricks` …) are
    /// [`ErrorKind::Unsupported`].
    pub fn from_uri(uri: &str) -> Result<Self> {
        let scheme = match scheme(uri).map(str::to_ascii_lowercase) {
            // MLflow reads the bare word as Databricks, not as a directory.
            None if uri == "databricks" => Some("databricks".to_string()),
            s => s,
        };
        match scheme.as_deref() {
            Some("http" | "https") => Self::new(uri),
            Some("file") | None => Ok(Self::from_file(FileStore::from_uri(uri)?)),
            Some(other) => Err(Error::new(
                ErrorKind::Unsupported,
                "mlflow.from_uri",
                format!(
                    "tracking URI scheme {other:?} is not supported; use http(s):// for a \
                     tracking server or file: for a local store"
                ),
            )
            .with("uri", uri)),
        }
    }

    /// From `MLFLOW_TRACKING_URI`, as the Python client: an `http(s)://` server
    /// (with `MLFLOW_TRACKING_TOKEN`, or `MLFLOW_TRACKING_USERNAME` /
    /// `MLFLOW_TRACKING_PASSWORD`) or a `file:` store / path. Unset is a
    /// [`ErrorKind::Config`] error; see [`from_env_or`](Self::from_env_or).
    pub fn from_env() -> Result<Self> {
        let uri = std::env::var("MLFLOW_TRACKING_URI").map_err(|_| {
            Error::new(
                ErrorKind::Config,
                "mlflow.from_env",
                "MLFLOW_TRACKING_URI is not set",
            )
        })?;
        let mut hook = match scheme(&uri).map(str::to_ascii_lowercase).as_deref() {
            Some("http" | "https") => Self::from_rest(RestStore::from_env()?),
            _ => Self::from_uri(&uri)?,
        };
        hook.conn_id = Some("MLFLOW_TRACKING_URI".to_string());
        Ok(hook)
    }

    /// [`from_env`](Self::from_env) when `MLFLOW_TRACKING_URI` is set (and not
    /// empty), else [`from_uri`](Self::from_uri)`(default_uri)` — e.g.
    /// `from_env_or("file:./mlruns")`, Python MLflow's own default.
    pub fn from_env_or(default_uri: &str) -> Result<Self> {
        match std::env::var("MLFLOW_TRACKING_URI") {
            Ok(uri) if !uri.trim().is_empty() => Self::from_env(),
            _ => Self::from_uri(default_uri),
        }
    }

    /// From the connection `conn_id` of a tracking server (`AIRFLOW_CONN_<CONN_ID>`, else the secrets backend; see [`Connection::get`](crate::Connection::get)).
    pub fn from_conn_id(conn_id: &str) -> Result<Self> {
        Self::from_connection(&Connection::get(conn_id)?)
    }

    /// From a connection to a tracking server: scheme from the type (`https` for
    /// `https`, else `http`, or a protocol kept in the host as
    /// `http://https://host`), host, port, and an optional path prefix in
    /// `schema`; a password without login is a bearer token.
    pub fn from_connection(conn: &Connection) -> Result<Self> {
        RestStore::from_connection(conn).map(Self::from_rest)
    }

    /// A hook over any store, e.g. your own implementation of [`MlflowStore`].
    pub fn with_store(store: Arc<dyn MlflowStore>) -> Self {
        MlflowHook {
            conn_id: None,
            store,
            builtin: Builtin::Other,
            batch_limits: BatchLimits::default(),
        }
    }

    /// How many times a retryable failure (429, 5xx gateway errors, connection
    /// errors) is retried with exponential backoff (default 3); after the last
    /// one the error is [exhausted](crate::Error::exhausted) and a task does not
    /// retry it again (see [`RestStore::with_max_retries`]). Applies to a
    /// [`RestStore`] built by this hook; other stores are unchanged.
    /// A local file store has nothing to retry; on a store given with
    /// [`with_store`](Self::with_store) this logs a warning, since that store
    /// owns its own retry policy.
    pub fn with_max_retries(mut self, n: u32) -> Self {
        match &self.builtin {
            Builtin::Rest(rest) => {
                let rest = rest.clone().with_max_retries(n);
                self.set_builtin(Builtin::Rest(rest));
            }
            Builtin::File(_) => {}
            Builtin::Other => tracing::warn!(
                max_retries = n,
                "MlflowHook::with_max_retries has no effect on a store given with with_store; \
                 configure retries on that store"
            ),
        }
        self
    }

    /// The delays between those retries (default 200 ms, 400 ms, 800 ms,
    /// jittered; see [`RestStore::with_backoff`]). Applies to a [`RestStore`]
    /// built by this hook; other stores are unchanged.
    /// Like [`with_max_retries`](Self::with_max_retries), it warns on a store
    /// given with `with_store`.
    pub fn with_backoff(mut self, backoff: crate::retry::Backoff) -> Self {
        match &self.builtin {
            Builtin::Rest(rest) => {
                let rest = rest.clone().with_backoff(backoff);
                self.set_builtin(Builtin::Rest(rest));
            }
            Builtin::File(_) => {}
            Builtin::Other => tracing::warn!(
                ?backoff,
                "MlflowHook::with_backoff has no effect on a store given with with_store; \
                 configure retries on that store"
            ),
        }
        self
    }

    /// Reads and writes the artifacts of runs whose root is `s3://bucket/prefix`
    /// through `hook` (e.g. `S3Hook::from_conn_id("aws_default")`), instead of
    /// a hook built on first use from `MLFLOW_S3_ENDPOINT_URL` and the default
    /// AWS chain (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_DEFAULT_REGION`, profiles, roles), as the Python client reads them.
    /// Applies to the [`RestStore`] or [`FileStore`] built by this hook; a store
    /// given with [`with_store`](Self::with_store) is unchanged.
    #[cfg(feature = "s3")]
    #[cfg_attr(docsrs, doc(cfg(feature = "s3")))]
    pub fn with_artifact_s3(mut self, hook: crate::hooks::s3::S3Hook) -> Self {
        let builtin = match &self.builtin {
            Builtin::Rest(r) => Builtin::Rest(r.clone().with_artifact_s3(hook)),
            Builtin::File(f) => Builtin::File(f.clone().with_artifact_s3(hook)),
            Builtin::Other => Builtin::Other,
        };
        self.set_builtin(builtin);
        self
    }

    /// Limits `log_batch` splits by (default: MLflow's own).
    pub fn with_batch_limits(mut self, limits: BatchLimits) -> Self {
        self.batch_limits = limits;
        self
    }

    /// The tracking URI: the server's base URL, or `file:///…` for a file store.
    pub fn tracking_uri(&self) -> &str {
        self.store.tracking_uri()
    }

    /// The server's base URL (for a file store, its `file:` URI); same as
    /// [`tracking_uri`](Self::tracking_uri).
    pub fn base_url(&self) -> &str {
        self.store.tracking_uri()
    }

    /// The conn id (or `MLFLOW_TRACKING_URI`) this hook was built from; `None` for a
    /// hook built from a tracking URI or a store.
    pub fn conn_id(&self) -> Option<&str> {
        self.conn_id.as_deref()
    }

    /// The store the hook talks through.
    pub fn store(&self) -> &Arc<dyn MlflowStore> {
        &self.store
    }

    /// Checks that the backend answers an authenticated API call (for a file
    /// store: that its root is a writable directory).
    pub async fn test_connection(&self) -> Result<()> {
        self.store.test_connection().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_choose_the_store() {
        assert_eq!(scheme("file:./mlruns"), Some("file"));
        assert_eq!(scheme("https://x"), Some("https"));
        assert_eq!(scheme("C:\\mlruns"), None);
        assert_eq!(scheme("./mlruns"), None);
        assert_eq!(scheme("/tmp/a:b"), None);
        let h = MlflowHook::new("http://127.0.0.1:5000/").unwrap();
        assert_eq!(h.tracking_uri(), "http://127.0.0.1:5000");
        assert!(MlflowHook::new("file:./mlruns").is_err());
        let e = MlflowHook::from_uri("sqlite:///mlflow.db").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let dir = std::env::temp_dir().join("gust-mlflow-uri-test");
        let h = MlflowHook::from_uri(&format!("file://{}", dir.display())).unwrap();
        assert!(
            h.tracking_uri().starts_with("file:///"),
            "{}",
            h.tracking_uri()
        );
        assert!(matches!(h.builtin, Builtin::File(_)));
        let c = Connection::from_uri("m", "https://:tok-123@mlflow.example.com").unwrap();
        let h = MlflowHook::from_connection(&c).unwrap().with_max_retries(0);
        assert_eq!(h.conn_id(), Some("m"));
        assert!(!format!("{h:?}").contains("tok-123"));
        // Built from a URI: no conn id is claimed; the (credential-free) URI is named.
        let h = MlflowHook::from_uri("http://user:s3cret@127.0.0.1:1").unwrap();
        assert_eq!(h.conn_id(), None);
        assert_eq!(h.tracking_uri(), "http://127.0.0.1:1");
        let e = Error::new(ErrorKind::NotFound, "mlflow.x", "y").with_origin(&h);
        assert_eq!(e.context("conn_id"), None);
        assert_eq!(e.context("tracking_uri"), Some("http://127.0.0.1:1"));
    }
}
