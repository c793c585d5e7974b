//! A model server over HTTP (feature `serve`): the version an alias of a
//! registered model points at (`models:/<name>@champion`), loaded from MLflow
//! and served behind a small JSON API — seed 002's "small HTTP API" on seed
//! 001's model store.
//!
//! [`ModelServer`] loads the alias's version when it starts, answers
//!
//! | route | answer |
//! |---|---|
//! | `GET /health` | `200 {"status": "ok", "model", "alias", "version", "run_id", "loaded_at", "last_reload_error"}` |
//! | `POST /predict` | `200 {"predictions": {"labels", "classes", "probabilities"}, "model_version"}` (a regressor: `{"values"}`) |
//! | `POST /reload` (opt-in, [`ModelServerBuilder::reload_endpoint`]) | checks the alias now: `200 {"reloaded", "version", "previous_version"}` |
//!
//! and picks up a new version of the alias without a restart: it polls the
//! registry ([`ModelServerBuilder::poll_interval`], every 30 s by default) and,
//! when the alias has moved, loads the new version and swaps it in atomically —
//! a request is answered entirely by the model it started with, and its
//! response names that model's version. A reload that fails (the registry is
//! down, the new version's files are missing, it is not a gust pipeline) keeps
//! the old model serving, logs a `tracing` warning and shows in `/health` as
//! `last_reload_error` until a check succeeds.
//!
//! `/predict` takes the bodies of MLflow's scoring server, and a bare array:
//!
//! ```text
//! {"dataframe_records": [{"a": 1.0, "b": 2.0}, …]}
//! {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0], …]}}
//! [{"a": 1.0, "b": 2.0}, …]
//! ```
//!
//! and predicts with [`FittedPipeline::predict_rows`], so the answer is exactly
//! what the pipeline predicts in process. Errors are JSON in MLflow's shape,
//! `{"error_code", "message"}`: a body that is not JSON or not one of these
//! shapes is `400 MALFORMED_REQUEST`; rows lacking columns the model takes are
//! `400 BAD_REQUEST` with `missing_columns` and `expected_columns`; a value the
//! model cannot take (text in a numeric column) is `400 BAD_REQUEST`; a body
//! above [`ModelServerBuilder::body_limit`] is `413`. Bodies above
//! [`ModelServerBuilder::offload_above`] are parsed and predicted on a blocking
//! thread (`spawn_blocking`), so large batches do not stall the runtime's
//! workers.
//!
//! ```no_run
//! # async fn demo() -> gust::Result<()> {
//! use gust::hooks::mlflow::MlflowHook;
//! use gust::serve::ModelServer;
//!
//! let mlflow = MlflowHook::from_env_or("file:./mlruns")?;
//! let server = ModelServer::builder(mlflow, "IrisGust") // alias "champion"
//!     .poll_interval(std::time::Duration::from_secs(30))
//!     .start()
//!     .await?; // an error if the alias is unset or not a gust pipeline
//! println!("serving version {}", server.current().version());
//! server.serve("127.0.0.1:8080").await // or .router() into your own axum app
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::error::{Error, ErrorKind, Result};
use crate::hooks::mlflow::{MlflowHook, ModelUri, ModelVersion, validate_alias};
use crate::ml::pipeline::FittedPipeline;

/// The alias served when none is given.
pub const DEFAULT_ALIAS: &str = "champion";
/// How often the registry is asked where the alias points, by default.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);
/// The largest `/predict` body accepted, by default (16 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// `/predict` bodies larger than this (in bytes) are parsed and predicted on a
/// blocking thread, by default (32 KiB: a few hundred rows of a handful of
/// columns).
pub const DEFAULT_OFFLOAD_ABOVE: usize = 32 * 1024;

const OP_LOAD: &str = "serve.load";
const OP_RELOAD: &str = "serve.reload";

/// One loaded model version: what a request is answered with.
#[derive(Debug)]
pub struct ServedModel {
    name: String,
    version: String,
    run_id: String,
    loaded_at: DateTime<Utc>,
    pipeline: FittedPipeline,
}

impl ServedModel {
    /// The registered model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version number, as MLflow writes it (`"3"`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The run that produced the version.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// When this server loaded it.
    pub fn loaded_at(&self) -> DateTime<Utc> {
        self.loaded_at
    }

    /// The pipeline itself.
    pub fn pipeline(&self) -> &FittedPipeline {
        &self.pipeline
    }

    /// `models:/<name>/<version>`: the exact version, whatever the alias does
    /// later.
    pub fn model_uri(&self) -> String {
        format!("models:/{}/{}", self.name, self.version)
    }
}

/// What [`ModelServer::check_now`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reload {
    /// The alias still points at the served version.
    Unchanged {
        /// The served version.
        version: String,
    },
    /// The alias had moved: its version was loaded and now serves.
    Swapped {
        /// The version served before.
        from: String,
        /// The version served now.
        to: String,
    },
}

impl Reload {
    /// The version served after the check.
    pub fn version(&self) -> &str {
        match self {
            Reload::Unchanged { version } => version,
            Reload::Swapped { to, .. } => to,
        }
    }
}

/// Configures and starts a [`ModelServer`]; from [`ModelServer::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .start().await"]
pub struct ModelServerBuilder {
    hook: MlflowHook,
    name: String,
    alias: String,
    poll_interval: Option<Duration>,
    body_limit: usize,
    offload_above: usize,
    reload_endpoint: bool,
}

impl ModelServerBuilder {
    /// Serves the version this alias points at (default [`DEFAULT_ALIAS`],
    /// `champion`).
    pub fn alias(mut self, alias: impl Into<String>) -> Self {
        self.alias = alias.into();
        self
    }

    /// How often the registry is asked where the alias points (default
    /// [`DEFAULT_POLL_INTERVAL`], 30 s). Zero is refused by
    /// [`start`](Self::start).
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = Some(every);
        self
    }

    /// No background polling: the alias is checked only by
    /// [`ModelServer::check_now`] (or `POST /reload`).
    pub fn no_polling(mut self) -> Self {
        self.poll_interval = None;
        self
    }

    /// The largest `/predict` body accepted, in bytes (default
    /// [`DEFAULT_BODY_LIMIT`], 16 MiB); a larger one is answered `413`.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// `/predict` bodies larger than this many bytes are parsed and predicted
    /// on a blocking thread (default [`DEFAULT_OFFLOAD_ABOVE`], 32 KiB);
    /// smaller ones on the request's task, which is cheaper for a few rows.
    pub fn offload_above(mut self, bytes: usize) -> Self {
        self.offload_above = bytes;
        self
    }

    /// Adds `POST /reload`, which checks the alias at once (as
    /// [`ModelServer::check_now`]). Off by default: anyone who reaches the
    /// server could make it query the registry.
    pub fn reload_endpoint(mut self, enabled: bool) -> Self {
        self.reload_endpoint = enabled;
        self
    }

    /// Loads the version the alias points at and starts the background poll
    /// (if any). Errors: an invalid alias or a zero poll interval
    /// ([`ErrorKind::InvalidInput`]), an unset alias or an unknown model (as
    /// the registry reports it, [`ErrorKind::NotFound`]), a version whose
    /// model is not a gust pipeline ([`ErrorKind::InvalidInput`], naming its
    /// flavors) or whose files cannot be read. Each names the model and alias.
    pub async fn start(self) -> Result<ModelServer> {
        let context = |e: Error| {
            e.with_operation(OP_LOAD)
                .with("model", &self.name)
                .with("alias", &self.alias)
        };
        validate_alias(&self.alias).map_err(context)?;
        if self.poll_interval == Some(Duration::ZERO) {
            return Err(context(Error::new(
                ErrorKind::InvalidInput,
                OP_LOAD,
                "the poll interval must be above zero (or no_polling())",
            )));
        }
        let version = self
            .hook
            .get_model_version_by_alias(&self.name, &self.alias)
            .await
            .map_err(context)?;
        let model = load_version(&self.hook, &self.name, &version)
            .await
            .map_err(context)?;
        tracing::info!(
            model = %self.name,
            alias = %self.alias,
            version = %model.version,
            run_id = %model.run_id,
            "model server loaded its model"
        );
        let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
        let shared = Arc::new(Shared {
            hook: self.hook,
            name: self.name,
            alias: self.alias,
            current: ArcSwap::from_pointee(model),
            reload: tokio::sync::Mutex::new(()),
            last_error: ArcSwapOption::empty(),
            body_limit: self.body_limit,
            offload_above: self.offload_above,
            reload_endpoint: self.reload_endpoint,
            _closed: closed_tx,
        });
        if let Some(every) = self.poll_interval {
            spawn_poller(&shared, every, closed_rx);
        }
        Ok(ModelServer { shared })
    }
}

/// Serves a registered model's aliased version over HTTP and follows the
/// alias. See the [module docs](self). Cheap to clone; the background poll
/// stops when the last clone (and every router made from it) is dropped.
#[derive(Clone)]
pub struct ModelServer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ModelServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelServer")
            .field("model", &self.shared.name)
            .field("alias", &self.shared.alias)
            .field("version", &self.shared.current.load().version)
            .finish()
    }
}

struct Shared {
    hook: MlflowHook,
    name: String,
    alias: String,
    current: ArcSwap<ServedModel>,
    /// One reload at a time, so two checks never load the same version twice.
    reload: tokio::sync::Mutex<()>,
    /// The last failed check's error, until a check succeeds.
    last_error: ArcSwapOption<String>,
    body_limit: usize,
    offload_above: usize,
    reload_endpoint: bool,
    /// Dropped with the last reference, which tells the poller to stop.
    _closed: tokio::sync::oneshot::Sender<()>,
}

impl ModelServer {
    /// A builder for the server of model `name`, alias `champion`, polling
    /// every 30 s.
    pub fn builder(hook: MlflowHook, name: impl Into<String>) -> ModelServerBuilder {
        ModelServerBuilder {
            hook,
            name: name.into(),
            alias: DEFAULT_ALIAS.to_string(),
            poll_interval: Some(DEFAULT_POLL_INTERVAL),
            body_limit: DEFAULT_BODY_LIMIT,
            offload_above: DEFAULT_OFFLOAD_ABOVE,
            reload_endpoint: false,
        }
    }

    /// The registered model's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The alias it follows.
    pub fn alias(&self) -> &str {
        &self.shared.alias
    }

    /// The model serving now.
    pub fn current(&self) -> Arc<ServedModel> {
        self.shared.current.load_full()
    }

    /// The last failed reload's error message, until a check succeeds.
    pub fn last_reload_error(&self) -> Option<Arc<String>> {
        self.shared.last_error.load_full()
    }

    /// Asks the registry where the alias points now and, if it moved, loads
    /// that version and swaps it in (what the background poll does). On an
    /// error the served model stays as it was; the error names the model, the
    /// alias and the version still served.
    pub async fn check_now(&self) -> Result<Reload> {
        self.shared.check().await
    }

    /// The routes (`/health`, `/predict`, and `/reload` if enabled), to serve
    /// or to nest in a larger axum app.
    pub fn router(&self) -> Router {
        let mut router = Router::new()
            .route("/health", get(health))
            .route("/predict", post(predict));
        if self.shared.reload_endpoint {
            router = router.route("/reload", post(reload));
        }
        router
            .layer(DefaultBodyLimit::max(self.shared.body_limit))
            .with_state(self.shared.clone())
    }

    /// [`router`](Self::router), consuming the server.
    pub fn into_router(self) -> Router {
        self.router()
    }

    /// Binds `addr` (`127.0.0.1:8080`) and serves until the process ends.
    pub async fn serve(self, addr: &str) -> Result<()> {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            Error::from(e)
                .with_operation("serve.bind")
                .with("addr", addr)
        })?;
        self.serve_with_shutdown(listener, std::future::pending())
            .await
    }

    /// Serves on `listener` until `shutdown` completes, then stops accepting
    /// connections and returns once the requests in flight are answered
    /// (axum's graceful shutdown).
    pub async fn serve_with_shutdown(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(
            addr = %addr,
            model = %self.shared.name,
            alias = %self.shared.alias,
            version = %self.shared.current.load().version,
            "model server listening"
        );
        let router = self.into_router();
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| {
                Error::from(e)
                    .with_operation("serve.http")
                    .with("addr", &addr)
            })?;
        tracing::info!(addr = %addr, "model server stopped");
        Ok(())
    }
}

/// Polls every `every` until `closed` says the server is gone.
fn spawn_poller(
    shared: &Arc<Shared>,
    every: Duration,
    mut closed: tokio::sync::oneshot::Receiver<()>,
) {
    let weak = Arc::downgrade(shared);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = &mut closed => return,
            }
            let Some(shared) = weak.upgrade() else {
                return;
            };
            // A failure is logged and kept for /health by check().
            let _ = shared.check().await;
        }
    });
}

impl Shared {
    async fn check(&self) -> Result<Reload> {
        let _one_at_a_time = self.reload.lock().await;
        let serving = self.current.load_full();
        let result = self.check_locked(&serving).await.map_err(|e| {
            e.with_operation(OP_RELOAD)
                .with("model", &self.name)
                .with("alias", &self.alias)
                .with("serving_version", &serving.version)
        });
        match &result {
            Ok(_) => self.last_error.store(None),
            Err(e) => {
                tracing::warn!(
                    model = %self.name,
                    alias = %self.alias,
                    serving_version = %serving.version,
                    error = %e,
                    "model reload failed; the served model stays"
                );
                self.last_error.store(Some(Arc::new(e.to_string())));
            }
        }
        result
    }

    async fn check_locked(&self, serving: &ServedModel) -> Result<Reload> {
        let version = self
            .hook
            .get_model_version_by_alias(&self.name, &self.alias)
            .await?;
        if version.version == serving.version && version.run_id == serving.run_id {
            tracing::debug!(
                model = %self.name,
                alias = %self.alias,
                version = %serving.version,
                "model alias unchanged"
            );
            return Ok(Reload::Unchanged {
                version: serving.version.clone(),
            });
        }
        let model = load_version(&self.hook, &self.name, &version).await?;
        let to = model.version.clone();
        self.current.store(Arc::new(model));
        tracing::info!(
            model = %self.name,
            alias = %self.alias,
            from = %serving.version,
            to = %to,
            run_id = %version.run_id,
            "model swapped"
        );
        Ok(Reload::Swapped {
            from: serving.version.clone(),
            to,
        })
    }
}

/// Loads exactly `version` (not the alias, which may move meanwhile).
async fn load_version(
    hook: &MlflowHook,
    name: &str,
    version: &ModelVersion,
) -> Result<ServedModel> {
    let number = version.version_number().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            OP_LOAD,
            "the registry returned a version that is not a number",
        )
        .with("version", &version.version)
    })?;
    let uri = ModelUri::Version {
        name: name.to_string(),
        version: number,
    }
    .to_string();
    let pipeline = hook
        .load_model::<FittedPipeline>(&uri)
        .await
        .map_err(|e| e.with("version", &version.version))?;
    Ok(ServedModel {
        name: name.to_string(),
        version: version.version.clone(),
        run_id: version.run_id.clone(),
        loaded_at: Utc::now(),
        pipeline,
    })
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let model = shared.current.load_full();
    let last_error = shared.last_error.load_full();
    json_response(
        StatusCode::OK,
        &json!({
            "status": "ok",
            "model": shared.name,
            "alias": shared.alias,
            "version": model.version,
            "run_id": model.run_id,
            "loaded_at": model.loaded_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "last_reload_error": last_error.as_deref(),
        }),
    )
}

async fn reload(State(shared): State<Arc<Shared>>) -> Response {
    let before = shared.current.load().version.clone();
    match shared.check().await {
        Ok(r) => json_response(
            StatusCode::OK,
            &json!({
                "reloaded": matches!(r, Reload::Swapped { .. }),
                "version": r.version(),
                "previous_version": before,
            }),
        ),
        Err(e) => {
            let serving = shared.current.load().version.clone();
            ApiError {
                status: StatusCode::BAD_GATEWAY,
                code: "RELOAD_FAILED",
                message: e.to_string(),
                extra: Map::new(),
            }
            .respond(&shared.name, &serving)
        }
    }
}

async fn predict(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    // One model for the whole request, whatever a reload does meanwhile.
    let model = shared.current.load_full();
    let result = if body.len() > shared.offload_above {
        let m = model.clone();
        match tokio::task::spawn_blocking(move || answer(&m, &body)).await {
            Ok(r) => r,
            Err(e) => Err(ApiError::internal(format!(
                "the prediction task failed: {e}"
            ))),
        }
    } else {
        answer(&model, &body)
    };
    match result {
        Ok(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response(),
        Err(e) => e.respond(&shared.name, &model.version),
    }
}

/// The response body for a `/predict` request body.
fn answer(model: &ServedModel, body: &[u8]) -> std::result::Result<Vec<u8>, ApiError> {
    let parsed: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("the body is not valid JSON: {e}")))?;
    let rows = rows_of(parsed)?;
    if rows.is_empty() {
        return Err(ApiError::malformed("the body has no rows".to_string()));
    }
    let predictions = model
        .pipeline
        .predict_rows(&rows)
        .map_err(|e| ApiError::from_predict(e, &model.pipeline, &rows))?;
    serde_json::to_vec(&json!({
        "predictions": predictions,
        "model_version": model.version,
    }))
    .map_err(|e| ApiError::internal(format!("the predictions did not serialize: {e}")))
}

const SHAPES: &str = "expected {\"dataframe_records\": [{...}, ...]}, \
     {\"dataframe_split\": {\"columns\": [...], \"data\": [[...], ...]}} \
     or an array of row objects";

/// The rows of a `/predict` body, in any of the accepted shapes.
fn rows_of(body: Value) -> std::result::Result<Vec<Map<String, Value>>, ApiError> {
    match body {
        Value::Array(items) => records(items, "the body"),
        Value::Object(mut o) => {
            let keys: Vec<&str> = ["dataframe_records", "dataframe_split"]
                .into_iter()
                .filter(|k| o.contains_key(*k))
                .collect();
            if keys.len() > 1 {
                return Err(ApiError::malformed(format!(
                    "the body has both {keys:?}; give one"
                )));
            }
            if let Some(r) = o.remove("dataframe_records") {
                match r {
                    Value::Array(items) => records(items, "dataframe_records"),
                    _ => Err(ApiError::malformed(
                        "dataframe_records must be an array of row objects".to_string(),
                    )),
                }
            } else if let Some(split) = o.remove("dataframe_split") {
                split_rows(split)
            } else {
                let keys: Vec<&String> = o.keys().collect();
                Err(ApiError::malformed(format!(
                    "{SHAPES}; got an object with the keys {keys:?}"
                )))
            }
        }
        other => Err(ApiError::malformed(format!(
            "{SHAPES}; got {}",
            json_type(&other)
        ))),
    }
}

fn records(
    items: Vec<Value>,
    what: &str,
) -> std::result::Result<Vec<Map<String, Value>>, ApiError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(row) => Ok(row),
            other => Err(ApiError::malformed(format!(
                "row {i} of {what} is {}, not an object of column values",
                json_type(&other)
            ))),
        })
        .collect()
}

fn split_rows(split: Value) -> std::result::Result<Vec<Map<String, Value>>, ApiError> {
    let Value::Object(mut split) = split else {
        return Err(ApiError::malformed(
            "dataframe_split must be an object with columns and data".to_string(),
        ));
    };
    let columns: Vec<String> = match split.remove("columns") {
        Some(Value::Array(cols)) => cols
            .into_iter()
            .enumerate()
            .map(|(i, c)| match c {
                Value::String(s) => Ok(s),
                other => Err(ApiError::malformed(format!(
                    "dataframe_split.columns[{i}] is {}, not a column name",
                    json_type(&other)
                ))),
            })
            .collect::<std::result::Result<_, _>>()?,
        _ => {
            return Err(ApiError::malformed(
                "dataframe_split.columns must be an array of column names".to_string(),
            ));
        }
    };
    let Some(Value::Array(data)) = split.remove("data") else {
        return Err(ApiError::malformed(
            "dataframe_split.data must be an array of rows (arrays of values)".to_string(),
        ));
    };
    data.into_iter()
        .enumerate()
        .map(|(i, row)| match row {
            Value::Array(values) if values.len() == columns.len() => {
                Ok(columns.iter().cloned().zip(values).collect())
            }
            Value::Array(values) => Err(ApiError::malformed(format!(
                "dataframe_split.data[{i}] has {} values for {} columns",
                values.len(),
                columns.len()
            ))),
            other => Err(ApiError::malformed(format!(
                "dataframe_split.data[{i}] is {}, not an array of values",
                json_type(&other)
            ))),
        })
        .collect()
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An error answer, in the shape of MLflow's scoring server.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    extra: Map<String, Value>,
}

impl ApiError {
    fn malformed(message: String) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "MALFORMED_REQUEST",
            message,
            extra: Map::new(),
        }
    }

    fn internal(message: String) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "INTERNAL_ERROR",
            message,
            extra: Map::new(),
        }
    }

    /// A `predict_rows` error: the rows' fault (400, with the missing columns
    /// when that is what it was) or the server's (500).
    fn from_predict(e: Error, pipeline: &FittedPipeline, rows: &[Map<String, Value>]) -> Self {
        if e.kind() != ErrorKind::InvalidInput {
            return ApiError::internal(e.to_string());
        }
        let mut extra = Map::new();
        if e.context("columns").is_some() {
            // As a list rather than split from the comma-joined context, so a
            // column name with a comma stays whole.
            extra.insert(
                "missing_columns".into(),
                json!(pipeline.missing_columns(rows)),
            );
            extra.insert("expected_columns".into(), json!(pipeline.input_columns()));
        }
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "BAD_REQUEST",
            message: e.message().to_string(),
            extra,
        }
    }

    fn respond(self, model: &str, version: &str) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(
                model,
                version,
                status = self.status.as_u16(),
                error_code = self.code,
                error = %self.message,
                "model server request failed"
            );
        } else {
            tracing::info!(
                model,
                version,
                status = self.status.as_u16(),
                error_code = self.code,
                error = %self.message,
                "model server request rejected"
            );
        }
        let mut body = Map::new();
        body.insert("error_code".into(), self.code.into());
        body.insert("message".into(), self.message.into());
        body.extend(self.extra);
        body.insert("model_version".into(), version.into());
        json_response(self.status, &Value::Object(body))
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(body: &str) -> std::result::Result<Vec<Map<String, Value>>, ApiError> {
        rows_of(serde_json::from_str(body).unwrap())
    }

    #[test]
    fn the_three_body_shapes_give_the_same_rows() {
        let want = rows(r#"[{"a": 1, "b": "x"}, {"a": 2, "b": null}]"#).unwrap();
        assert_eq!(
            rows(r#"{"dataframe_records": [{"a": 1, "b": "x"}, {"a": 2, "b": null}]}"#).unwrap(),
            want
        );
        assert_eq!(
            rows(r#"{"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"], [2, null]], "index": [0, 1]}}"#)
                .unwrap(),
            want
        );
    }

    #[test]
    fn malformed_shapes_say_what_is_wrong() {
        for (body, says) in [
            (r#"{"rows": []}"#, "got an object with the keys [\"rows\"]"),
            (r#"42"#, "got a number"),
            (r#"[1]"#, "row 0 of the body is a number"),
            (r#"{"dataframe_records": {"a": 1}}"#, "must be an array"),
            (
                r#"{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}"#,
                "data[0] has 2 values for 1 columns",
            ),
            (
                r#"{"dataframe_split": {"columns": [1], "data": []}}"#,
                "columns[0] is a number",
            ),
            (r#"{"dataframe_split": {"columns": ["a"]}}"#, "data must be"),
            (
                r#"{"dataframe_records": [], "dataframe_split": {}}"#,
                "has both",
            ),
        ] {
            let e = rows(body).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(e.code, "MALFORMED_REQUEST", "{body}");
            assert!(e.message.contains(says), "{body}: {}", e.message);
        }
    }
}
