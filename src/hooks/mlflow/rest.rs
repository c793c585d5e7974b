//! [`RestStore`]: an MLflow tracking server over its REST API.
//!
//! One request path: auth, retries of retryable failures (429, 502–504, connection
//! errors) with backoff, the mapping of MLflow's `error_code` to [`ErrorKind`], and
//! redaction of the token or password from every error. Artifacts go through the
//! server's artifact proxy (`mlflow-artifacts:/…`), streamed both ways.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::DEFAULT_CONN_ID;
use super::artifacts::{FileInfo, join};
use super::store::{MlflowStore, Page};
use super::types::{
    Experiment, Metric, ModelVersion, Param, RegisteredModel, Run, RunInfo, RunStatus, RunTag,
};
use crate::connection::Connection;
use crate::error::{Error, ErrorKind, Result};

#[derive(Clone)]
pub(crate) enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
}

/// Run ids → their artifact roots remembered (they never change) so a directory
/// upload asks the server once; cleared when it grows past this.
const ARTIFACT_ROOT_CACHE: usize = 1024;

/// A client of one MLflow tracking server. Cheap to clone.
#[derive(Clone)]
pub struct RestStore {
    conn_id: String,
    base_url: String,
    http: reqwest::Client,
    auth: Auth,
    max_retries: u32,
    artifact_roots: Arc<Mutex<HashMap<String, String>>>,
}

impl std::fmt::Debug for RestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestStore")
            .field("conn_id", &self.conn_id)
            .field("base_url", &self.base_url)
            .field(
                "auth",
                &match self.auth {
                    Auth::None => "none",
                    Auth::Bearer(_) => "bearer ***",
                    Auth::Basic(..) => "basic ***",
                },
            )
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

impl RestStore {
    /// A store for the server at `base_url` (e.g. `http://127.0.0.1:5000`), no auth.
    pub fn new(base_url: &str) -> Result<Self> {
        let url = url::Url::parse(base_url).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                "mlflow.connect",
                format!("tracking URI is not a URL: {e}"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "mlflow.connect",
                format!(
                    "tracking URI scheme {:?} is not served over REST; use http(s)://, or \
                     MlflowHook::from_uri for a file: store",
                    url.scheme()
                ),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Config, "mlflow.connect", e.to_string()).with_source(e)
            })?;
        Ok(RestStore {
            conn_id: DEFAULT_CONN_ID.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            http,
            auth: Auth::None,
            max_retries: 3,
            artifact_roots: Arc::default(),
        })
    }

    /// From `MLFLOW_TRACKING_URI` (an `http(s)://` URL) plus `MLFLOW_TRACKING_TOKEN`,
    /// or `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`, as the Python client.
    pub fn from_env() -> Result<Self> {
        let uri = std::env::var("MLFLOW_TRACKING_URI").map_err(|_| {
            Error::new(
                ErrorKind::Config,
                "mlflow.from_env",
                "MLFLOW_TRACKING_URI is not set",
            )
        })?;
        let mut store = RestStore::new(&uri)?;
        store.conn_id = "MLFLOW_TRACKING_URI".to_string();
        if let Ok(token) = std::env::var("MLFLOW_TRACKING_TOKEN") {
            store.auth = Auth::Bearer(token);
        } else if let (Ok(u), Ok(p)) = (
            std::env::var("MLFLOW_TRACKING_USERNAME"),
            std::env::var("MLFLOW_TRACKING_PASSWORD"),
        ) {
            store.auth = Auth::Basic(u, p);
        }
        Ok(store)
    }

    /// From a connection: scheme from the type (`https` for `https`, else `http`, or
    /// a protocol kept in the host as `http://https://host`), host, port, and an
    /// optional path prefix in `schema`; a password without login is a bearer token.
    pub fn from_connection(conn: &Connection) -> Result<Self> {
        let host = conn.host().filter(|h| !h.is_empty()).ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                "mlflow.connect",
                "the connection has no host",
            )
            .with("conn_id", conn.conn_id())
        })?;
        let mut base = if host.contains("://") {
            host.to_string()
        } else {
            let scheme = if conn.conn_type() == "https" {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{host}")
        };
        if let Some(port) = conn.port() {
            base.push_str(&format!(":{port}"));
        }
        if let Some(prefix) = conn.schema().filter(|s| !s.is_empty()) {
            base.push('/');
            base.push_str(prefix.trim_matches('/'));
        }
        let mut store = RestStore::new(&base).map_err(|e| e.with("conn_id", conn.conn_id()))?;
        store.conn_id = conn.conn_id().to_string();
        store.auth = match (
            conn.login().filter(|l| !l.is_empty()),
            conn.password().filter(|p| !p.is_empty()),
        ) {
            (Some(l), Some(p)) => Auth::Basic(l.to_string(), p.to_string()),
            (None, Some(token)) => Auth::Bearer(token.to_string()),
            _ => Auth::None,
        };
        Ok(store)
    }

    /// How many times a retryable failure (429, 5xx gateway errors, connection
    /// errors) is retried with exponential backoff (default 3).
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The conn id (or `MLFLOW_TRACKING_URI`) this store was built from.
    pub fn conn_id(&self) -> &str {
        &self.conn_id
    }

    fn secrets(&self) -> Vec<String> {
        match &self.auth {
            Auth::None => vec![],
            Auth::Bearer(t) => vec![t.clone()],
            Auth::Basic(_, p) => vec![p.clone()],
        }
    }

    /// One API call with retries. GET sends `body` as query parameters.
    pub(crate) async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        endpoint: &str,
        body: &B,
    ) -> Result<T> {
        let op = format!("mlflow.{endpoint}");
        let mut attempt = 0;
        loop {
            match self.call_once(&op, method.clone(), endpoint, body).await {
                Err(e) if e.is_retryable() && attempt < self.max_retries => {
                    let delay = Duration::from_millis(200 * 2u64.pow(attempt));
                    tracing::warn!(operation = %op, error = %e, retry_in = ?delay, "mlflow call failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other.map_err(|e| e.redact(&self.secrets())),
            }
        }
    }

    async fn call_once<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        op: &str,
        method: Method,
        endpoint: &str,
        body: &B,
    ) -> Result<T> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base_url);
        let mut req = self.http.request(method.clone(), &url);
        req = if method == Method::GET {
            req.query(body)
        } else {
            req.json(body)
        };
        let resp = self
            .authed(req)
            .send()
            .await
            .map_err(|e| self.transport_error(op, e))?;
        let text = self.check(op, resp).await?;
        let text = if text.trim().is_empty() { "{}" } else { &text };
        serde_json::from_str(text).map_err(|e| {
            Error::new(
                ErrorKind::Remote,
                op.to_string(),
                format!("unexpected response from the MLflow server: {e}"),
            )
            .with("conn_id", &self.conn_id)
        })
    }

    fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
        }
    }

    fn transport_error(&self, op: &str, e: reqwest::Error) -> Error {
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Unavailable
        };
        Error::new(
            kind,
            op.to_string(),
            format!("cannot reach the MLflow server: {e}"),
        )
        .with("conn_id", &self.conn_id)
        .with("url", &self.base_url)
        .redact(&self.secrets())
    }

    /// The body of a successful response, or the typed error of a failed one.
    async fn check(&self, op: &str, resp: reqwest::Response) -> Result<String> {
        let status = resp.status();
        let text = resp.text().await.map_err(|e| {
            Error::new(ErrorKind::Unavailable, op.to_string(), e.to_string())
                .with("conn_id", &self.conn_id)
        })?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(self.api_error(op, status, &text).redact(&self.secrets()))
        }
    }

    fn api_error(&self, op: &str, status: StatusCode, body: &str) -> Error {
        let parsed: Option<Value> = serde_json::from_str(body).ok();
        let code = parsed
            .as_ref()
            .and_then(|v| v["error_code"].as_str())
            .unwrap_or("")
            .to_string();
        let message = parsed
            .as_ref()
            .and_then(|v| v["message"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| body.chars().take(200).collect());
        // MLflow appends the failing SQL and driver details after the first line.
        let message = message.lines().next().unwrap_or("").trim().to_string();
        let kind = match (code.as_str(), status.as_u16()) {
            ("RESOURCE_DOES_NOT_EXIST" | "NOT_FOUND", _) | (_, 404) => ErrorKind::NotFound,
            // MLflow reports an unknown alias as INVALID_PARAMETER_VALUE "… not found".
            ("INVALID_PARAMETER_VALUE", _) if message.ends_with("not found.") => {
                ErrorKind::NotFound
            }
            ("RESOURCE_ALREADY_EXISTS", _) => ErrorKind::AlreadyExists,
            ("INVALID_PARAMETER_VALUE" | "BAD_REQUEST" | "INVALID_STATE", _) => {
                ErrorKind::InvalidInput
            }
            ("UNAUTHENTICATED" | "PERMISSION_DENIED", _) | (_, 401 | 403) => ErrorKind::Auth,
            ("REQUEST_LIMIT_EXCEEDED" | "TEMPORARILY_UNAVAILABLE", _)
            | (_, 429 | 502 | 503 | 504) => ErrorKind::Unavailable,
            (_, 400..=499) => ErrorKind::InvalidInput,
            _ => ErrorKind::Remote,
        };
        let text = if code.is_empty() {
            format!("HTTP {}: {message}", status.as_u16())
        } else {
            format!("{code}: {message}")
        };
        Error::new(kind, op.to_string(), text)
            .with("conn_id", &self.conn_id)
            .with("status", status.as_u16())
    }

    /// The proxy path of a run's artifact root, asked once per run.
    async fn artifact_root(&self, run_id: &str) -> Result<String> {
        if let Some(root) = self
            .artifact_roots
            .lock()
            .ok()
            .and_then(|m| m.get(run_id).cloned())
        {
            return Ok(root);
        }
        let run = self.get_run(run_id).await?;
        let root = proxy_root(&run.info.artifact_uri).map_err(|e| e.with("run_id", run_id))?;
        if let Ok(mut m) = self.artifact_roots.lock() {
            if m.len() >= ARTIFACT_ROOT_CACHE {
                m.clear();
            }
            m.insert(run_id.to_string(), root.clone());
        }
        Ok(root)
    }

    fn artifact_url(&self, proxy_path: &str) -> String {
        format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}",
            self.base_url,
            encode_path(proxy_path)
        )
    }
}

/// The proxy path of a run's artifact root, from its `artifact_uri`.
fn proxy_root(artifact_uri: &str) -> Result<String> {
    let rest = artifact_uri
        .strip_prefix("mlflow-artifacts:")
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                "mlflow.artifacts",
                format!(
                    "artifact root {artifact_uri:?} is not served by the tracking server's proxy \
                 (mlflow-artifacts:/…); start the server with --serve-artifacts"
                ),
            )
        })?;
    // `mlflow-artifacts://host:port/path` names the server too; we talk to ours.
    let path = match rest.strip_prefix("//") {
        Some(with_host) => with_host.split_once('/').map(|(_, p)| p).unwrap_or(""),
        None => rest,
    };
    Ok(path.trim_matches('/').to_string())
}

fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|s| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[derive(Deserialize)]
struct ExperimentResponse {
    experiment: Experiment,
}

#[derive(Deserialize)]
struct RunResponse {
    run: Run,
}

#[derive(Deserialize)]
struct SearchRunsResponse {
    #[serde(default)]
    runs: Vec<Run>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct MetricHistoryResponse {
    #[serde(default)]
    metrics: Vec<Metric>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct RegisteredModelResponse {
    registered_model: RegisteredModel,
}

#[derive(Deserialize)]
struct ModelVersionResponse {
    model_version: ModelVersion,
}

#[derive(Deserialize)]
struct SearchVersionsResponse {
    #[serde(default)]
    model_versions: Vec<ModelVersion>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    files: Vec<FileInfo>,
}

#[async_trait]
impl MlflowStore for RestStore {
    fn tracking_uri(&self) -> &str {
        &self.base_url
    }

    async fn test_connection(&self) -> Result<()> {
        self.call::<Value, _>(
            Method::POST,
            "experiments/search",
            &json!({"max_results": 1}),
        )
        .await
        .map(|_| ())
    }

    async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        let r: ExperimentResponse = self
            .call(
                Method::GET,
                "experiments/get-by-name",
                &json!({ "experiment_name": name }),
            )
            .await
            .map_err(|e| e.with("experiment", name))?;
        Ok(r.experiment)
    }

    async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment> {
        let r: ExperimentResponse = self
            .call(
                Method::GET,
                "experiments/get",
                &json!({ "experiment_id": experiment_id }),
            )
            .await
            .map_err(|e| e.with("experiment_id", experiment_id))?;
        Ok(r.experiment)
    }

    async fn create_experiment(&self, name: &str) -> Result<String> {
        let r: Value = self
            .call(Method::POST, "experiments/create", &json!({ "name": name }))
            .await
            .map_err(|e| e.with("experiment", name))?;
        Ok(r["experiment_id"].as_str().unwrap_or_default().to_string())
    }

    async fn create_run(
        &self,
        experiment_id: &str,
        run_name: Option<&str>,
        start_time: i64,
    ) -> Result<RunInfo> {
        let mut body = json!({ "experiment_id": experiment_id, "start_time": start_time });
        if let Some(name) = run_name {
            body["run_name"] = json!(name);
        }
        let r: RunResponse = self
            .call(Method::POST, "runs/create", &body)
            .await
            .map_err(|e| e.with("experiment_id", experiment_id))?;
        Ok(r.run.info)
    }

    async fn get_run(&self, run_id: &str) -> Result<Run> {
        let r: RunResponse = self
            .call(Method::GET, "runs/get", &json!({ "run_id": run_id }))
            .await
            .map_err(|e| e.with("run_id", run_id))?;
        Ok(r.run)
    }

    async fn update_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time: Option<i64>,
    ) -> Result<RunInfo> {
        let mut body = json!({ "run_id": run_id, "status": status });
        if let Some(t) = end_time {
            body["end_time"] = json!(t);
        }
        #[derive(Deserialize)]
        struct R {
            run_info: RunInfo,
        }
        let r: R = self
            .call(Method::POST, "runs/update", &body)
            .await
            .map_err(|e| e.with("run_id", run_id))?;
        Ok(r.run_info)
    }

    async fn search_runs(
        &self,
        experiment_ids: &[&str],
        filter: &str,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<Run>> {
        let mut body = json!({
            "experiment_ids": experiment_ids,
            "filter": filter,
            "max_results": max_results,
        });
        if let Some(t) = page_token {
            body["page_token"] = json!(t);
        }
        let r: SearchRunsResponse = self
            .call(Method::POST, "runs/search", &body)
            .await
            .map_err(|e| e.with("experiment_ids", experiment_ids.join(",")))?;
        Ok((r.runs, r.next_page_token.filter(|t| !t.is_empty())))
    }

    async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[RunTag],
    ) -> Result<()> {
        self.call::<Value, _>(
            Method::POST,
            "runs/log-batch",
            &json!({ "run_id": run_id, "metrics": metrics, "params": params, "tags": tags }),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.with("run_id", run_id))
    }

    async fn get_metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = json!({ "run_id": run_id, "metric_key": key, "max_results": 25000 });
            if let Some(t) = &token {
                q["page_token"] = json!(t);
            }
            let r: MetricHistoryResponse = self
                .call(Method::GET, "metrics/get-history", &q)
                .await
                .map_err(|e| e.with("run_id", run_id).with("metric", key))?;
            all.extend(r.metrics);
            match r.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(all),
            }
        }
    }

    async fn create_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        let r: RegisteredModelResponse = self
            .call(
                Method::POST,
                "registered-models/create",
                &json!({ "name": name }),
            )
            .await
            .map_err(|e| e.with("model", name))?;
        Ok(r.registered_model)
    }

    async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        let r: RegisteredModelResponse = self
            .call(
                Method::GET,
                "registered-models/get",
                &json!({ "name": name }),
            )
            .await
            .map_err(|e| e.with("model", name))?;
        Ok(r.registered_model)
    }

    async fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: Option<&str>,
    ) -> Result<ModelVersion> {
        let mut body = json!({ "name": name, "source": source });
        if let Some(r) = run_id {
            body["run_id"] = json!(r);
        }
        let r: ModelVersionResponse = self
            .call(Method::POST, "model-versions/create", &body)
            .await
            .map_err(|e| e.with("model", name))?;
        Ok(r.model_version)
    }

    async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        let r: ModelVersionResponse = self
            .call(
                Method::GET,
                "model-versions/get",
                &json!({ "name": name, "version": version }),
            )
            .await
            .map_err(|e| e.with("model", name).with("version", version))?;
        Ok(r.model_version)
    }

    async fn search_model_versions(
        &self,
        filter: &str,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<ModelVersion>> {
        let mut q = json!({ "filter": filter, "max_results": max_results });
        if let Some(t) = page_token {
            q["page_token"] = json!(t);
        }
        let r: SearchVersionsResponse = self
            .call(Method::GET, "model-versions/search", &q)
            .await
            .map_err(|e| e.with("filter", filter))?;
        Ok((
            r.model_versions,
            r.next_page_token.filter(|t| !t.is_empty()),
        ))
    }

    async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> Result<()> {
        self.call::<Value, _>(
            Method::POST,
            "registered-models/alias",
            &json!({ "name": name, "alias": alias, "version": version }),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.with("model", name).with("alias", alias))
    }

    async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        self.call::<Value, _>(
            Method::DELETE,
            "registered-models/alias",
            &json!({ "name": name, "alias": alias }),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.with("model", name).with("alias", alias))
    }

    async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        let r: ModelVersionResponse = self
            .call(
                Method::GET,
                "registered-models/alias",
                &json!({ "name": name, "alias": alias }),
            )
            .await
            .map_err(|e| e.with("model", name).with("alias", alias))?;
        Ok(r.model_version)
    }

    async fn upload_artifact(
        &self,
        run_id: &str,
        local_path: &Path,
        artifact_path: &str,
    ) -> Result<()> {
        let root = self.artifact_root(run_id).await?;
        let target = join(&root, artifact_path)?;
        let file = tokio::fs::File::open(local_path)
            .await
            .map_err(|e| Error::from(e).with("path", local_path.display()))?;
        let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let op = "mlflow.log_artifact";
        let resp = self
            .authed(self.http.request(Method::PUT, self.artifact_url(&target)))
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(op, e))?;
        self.check(op, resp)
            .await
            .map_err(|e| e.with("run_id", run_id).with("artifact", &target))?;
        tracing::debug!(run_id, artifact = %target, bytes = len, "artifact uploaded");
        Ok(())
    }

    async fn list_artifacts(&self, run_id: &str, path: &str) -> Result<Vec<FileInfo>> {
        let root = self.artifact_root(run_id).await?;
        let dir = join(&root, path)?;
        let url = format!("{}/api/2.0/mlflow-artifacts/artifacts", self.base_url);
        let op = "mlflow.list_artifacts";
        let resp = self
            .authed(self.http.get(url).query(&[("path", &dir)]))
            .send()
            .await
            .map_err(|e| self.transport_error(op, e))?;
        let text = self
            .check(op, resp)
            .await
            .map_err(|e| e.with("run_id", run_id))?;
        let list: ListResponse =
            serde_json::from_str(if text.trim().is_empty() { "{}" } else { &text })?;
        // The proxy lists names relative to the directory; report them relative to
        // the run's artifact root, as MLflow's client does.
        let base = path.trim_matches('/');
        Ok(list
            .files
            .into_iter()
            .map(|mut f| {
                if !base.is_empty() {
                    f.path = format!("{base}/{}", f.path);
                }
                f
            })
            .collect())
    }

    async fn download_artifact(&self, run_id: &str, path: &str, local: &Path) -> Result<()> {
        let root = self.artifact_root(run_id).await?;
        let op = "mlflow.download_artifacts";
        let target = join(&root, path)?;
        let resp = self
            .authed(self.http.get(self.artifact_url(&target)))
            .send()
            .await
            .map_err(|e| self.transport_error(op, e))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            return Err(self
                .api_error(op, status, &text)
                .with("run_id", run_id)
                .with("artifact", path)
                .redact(&self.secrets()));
        }
        if let Some(parent) = local.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(Error::from)?;
        }
        // Write beside the target and rename, so a broken download leaves no
        // truncated file behind.
        let partial = local.with_extension("gust-partial");
        let write = async {
            let mut file = tokio::fs::File::create(&partial).await?;
            let mut body = resp.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(std::io::Error::other)?;
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
            tokio::fs::rename(&partial, local).await
        };
        if let Err(e) = write.await {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(Error::from(e).with("run_id", run_id).with("artifact", path));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_forms() {
        let c = Connection::from_uri("m", "http://127.0.0.1:5000").unwrap();
        assert_eq!(
            RestStore::from_connection(&c).unwrap().base_url(),
            "http://127.0.0.1:5000"
        );
        let c = Connection::from_uri("m", "http://https%3A%2F%2Fmlflow.example.com:443/prefix")
            .unwrap();
        let h = RestStore::from_connection(&c).unwrap();
        assert_eq!(h.base_url(), "https://mlflow.example.com:443/prefix");
        let c = Connection::from_uri("m", "https://:tok-123@mlflow.example.com").unwrap();
        let h = RestStore::from_connection(&c).unwrap();
        assert_eq!(h.base_url(), "https://mlflow.example.com");
        assert!(matches!(h.auth, Auth::Bearer(ref t) if t == "tok-123"));
        assert!(!format!("{h:?}").contains("tok-123"));
        assert!(RestStore::new("file:./mlruns").is_err());
    }

    #[test]
    fn error_codes_map_to_kinds() {
        let h = RestStore::new("http://x").unwrap();
        let e = h.api_error(
            "mlflow.x",
            StatusCode::BAD_REQUEST,
            r#"{"error_code":"RESOURCE_ALREADY_EXISTS","message":"exists\n[SQL: INSERT ...]"}"#,
        );
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert!(!e.to_string().contains("SQL"));
        let e = h.api_error("mlflow.x", StatusCode::SERVICE_UNAVAILABLE, "busy");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_retryable());
        let e = h.api_error("mlflow.x", StatusCode::TOO_MANY_REQUESTS, "{}");
        assert!(e.is_retryable());
        let e = h.api_error("mlflow.x", StatusCode::UNAUTHORIZED, "");
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(!e.is_retryable());
    }

    #[test]
    fn proxy_paths() {
        assert_eq!(
            proxy_root("mlflow-artifacts:/1/abc/artifacts").unwrap(),
            "1/abc/artifacts"
        );
        assert_eq!(
            proxy_root("mlflow-artifacts://h:5000/1/abc/artifacts").unwrap(),
            "1/abc/artifacts"
        );
        assert_eq!(
            proxy_root("s3://b/1").unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(encode_path("1/a b/c%"), "1/a%20b/c%25");
    }
}
