//! [`RestStore`]: an MLflow tracking server over its REST API.
//!
//! One request path: auth, retries of retryable failures (429, 502–504, connection
//! errors) with a [`Backoff`] (an error still failing after the last attempt is
//! returned [exhausted](Error::exhausted), so the task does not retry it again), the
//! mapping of MLflow's `error_code` to [`ErrorKind`], and
//! redaction of the token or password from every error. Artifacts go through the
//! server's artifact proxy (`mlflow-artifacts:/…`), or, for a run whose root is
//! `s3://…` (and with the `s3` feature), directly to S3; streamed both ways. The
//! [`MlflowStore`] endpoints are in `api.rs`.
//!
//! The calls that create a run or a model version are not idempotent: the server
//! creates another one each time it is asked. They are sent again only when the
//! server provably did not act on the request; after a failure that leaves it
//! unknown, the object is looked up first (`RestStore::call_create`), so a lost
//! answer never turns into a duplicate.

mod api;
mod error;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::s3_artifacts::is_s3;
#[cfg(feature = "s3")]
use super::s3_artifacts::{S3Artifacts, S3Root};
use super::store::MlflowStore;
use crate::connection::{Connection, strip_userinfo};
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::scope::HookScope;
use crate::retry::Backoff;

/// Retries of a retryable failure by default: 4 attempts in all.
const MAX_RETRIES: u32 = 3;

/// The client's default backoff: 200 ms, 400 ms, 800 ms, each plus up to as much
/// again of jitter (at most 2.8 s in all), so a blip passes within one call
/// while a task's own `retry_delay` waits out longer outages.
fn default_backoff() -> Backoff {
    Backoff::exponential(Duration::from_millis(200))
}

#[derive(Clone)]
pub(crate) enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
}

/// Whether the server may have acted on a request that failed (see
/// [`RestStore::call_create`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// It did not: no connection was made, or it refused (429, 503).
    NotActedOn,
    /// It may have: the answer was lost (a reset or timeout after sending, a
    /// gateway's 502 or 504, a body cut short).
    Unknown,
    /// It answered, and the answer stands.
    Answered,
}

/// Run ids → their artifact roots remembered (they never change) so a directory
/// upload asks the server once; cleared when it grows past this.
const ARTIFACT_ROOT_CACHE: usize = 1024;

/// Where a run's artifacts live, as its `artifact_uri` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArtifactRoot {
    /// Behind the server's proxy: the path under `mlflow-artifacts/artifacts/`.
    Proxy(String),
    /// Directly on S3.
    #[cfg(feature = "s3")]
    S3(S3Root),
}

/// A client of one MLflow tracking server. Cheap to clone.
///
/// A run's artifacts go through the server's artifact proxy when its root is
/// `mlflow-artifacts:/…` (`mlflow server --serve-artifacts`, the default). When
/// the root is `s3://bucket/prefix` (an experiment created with an S3
/// `artifact_location`, or a server without the proxy), they are read and
/// written directly on S3 through an `S3Hook`, as the Python client does: with
/// the `s3` feature, the hook is built on first use from
/// `MLFLOW_S3_ENDPOINT_URL` (path-style addressing) and the default AWS chain
/// (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`,
/// profiles, roles), or given with `with_artifact_s3`. Without the feature such
/// a run's artifacts are [`ErrorKind::Unsupported`].
#[derive(Clone)]
pub struct RestStore {
    /// Every error goes through it: the connection (or `MLFLOW_TRACKING_URI`)
    /// this store was built from, else the bare URL (`tracking_uri`), and the
    /// credentials. Rebuilt by [`rescoped`](Self::rescoped) when either changes.
    scope: HookScope,
    base_url: String,
    http: reqwest::Client,
    auth: Auth,
    max_retries: u32,
    backoff: Backoff,
    artifact_roots: Arc<Mutex<HashMap<String, ArtifactRoot>>>,
    #[cfg(feature = "s3")]
    pub(super) s3: S3Artifacts,
}

impl std::fmt::Debug for RestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("RestStore");
        d.field("conn_id", &self.conn_id())
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
            .field("backoff", &self.backoff);
        #[cfg(feature = "s3")]
        d.field("artifact_s3", &self.s3);
        d.finish()
    }
}

impl RestStore {
    /// A store for the server at `base_url` (e.g. `http://127.0.0.1:5000`). Credentials
    /// in the URL (`http://user:password@host`) are sent as basic auth, as the Python
    /// client does, and are never printed: the base URL is kept without them.
    pub fn new(base_url: &str) -> Result<Self> {
        let url = url::Url::parse(base_url).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                "mlflow.connect",
                format!("tracking URI is not a URL: {e}"),
            )
            .with("tracking_uri", strip_userinfo(base_url))
        })?;
        let auth = match (url.username(), url.password()) {
            ("", None) => Auth::None,
            (user, pass) => {
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8_lossy()
                        .into_owned()
                };
                Auth::Basic(decode(user), pass.map(decode).unwrap_or_default())
            }
        };

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
        let base_url = strip_userinfo(base_url).trim_end_matches('/').to_string();
        Ok(RestStore {
            scope: HookScope::unnamed("mlflow", None, Vec::new()),
            // As given (a default port kept), without the credentials.
            base_url,
            http,
            auth,
            max_retries: MAX_RETRIES,
            backoff: default_backoff(),
            artifact_roots: Arc::default(),
            #[cfg(feature = "s3")]
            s3: S3Artifacts::default(),
        }
        .rescoped(None))
    }

    /// The secrets of the store's current credentials.
    fn auth_secrets(&self) -> Vec<String> {
        match &self.auth {
            Auth::None => vec![],
            Auth::Bearer(t) => vec![t.clone()],
            // A user without a password is a token (`https://TOKEN@host`).
            Auth::Basic(u, p) if p.is_empty() => vec![u.clone()],
            Auth::Basic(_, p) => vec![p.clone()],
        }
    }

    /// The store with its scope rebuilt for `conn_id` and its current credentials.
    fn rescoped(mut self, conn_id: Option<&str>) -> Self {
        let secrets = self.auth_secrets();
        self.scope = match conn_id {
            Some(id) => HookScope::named("mlflow", id, secrets),
            None => HookScope::unnamed(
                "mlflow",
                Some(("tracking_uri", self.base_url.clone())),
                secrets,
            ),
        };
        self
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
        if let Ok(token) = std::env::var("MLFLOW_TRACKING_TOKEN") {
            store.auth = Auth::Bearer(token);
        } else if let (Ok(u), Ok(p)) = (
            std::env::var("MLFLOW_TRACKING_USERNAME"),
            std::env::var("MLFLOW_TRACKING_PASSWORD"),
        ) {
            store.auth = Auth::Basic(u, p);
        }
        Ok(store.rescoped(Some("MLFLOW_TRACKING_URI")))
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
        store.auth = match (
            conn.login().filter(|l| !l.is_empty()),
            conn.password().filter(|p| !p.is_empty()),
        ) {
            (Some(l), Some(p)) => Auth::Basic(l.to_string(), p.to_string()),
            (None, Some(token)) => Auth::Bearer(token.to_string()),
            // Credentials in a host given with its protocol (`http://u:p@h`).
            _ => store.auth,
        };
        // The connection's secrets (their encoded forms, credentials in a URL
        // it holds) and the credentials taken from it.
        store.scope = HookScope::new("mlflow", conn).with_secrets(store.auth_secrets());
        Ok(store)
    }

    /// How many times a retryable failure (429, 5xx gateway errors, connection
    /// errors) is retried with exponential backoff (default 3). After the last
    /// one the error is [exhausted](Error::exhausted), so a task does not retry
    /// it unless [`TaskOptions::retry_exhausted`](crate::TaskOptions::retry_exhausted).
    /// With 0, the client never retries and leaves the patience to the task.
    ///
    /// The calls that create a run or a model version are retried only when the
    /// server provably did not act on the request (no connection was made, 429,
    /// 503); when the answer was lost instead, the run or version is looked up
    /// first and returned if the server made it, so a retry never duplicates it.
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The delays between retries (default
    /// `Backoff::exponential(200 ms)`: 200 ms, 400 ms, 800 ms, jittered).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Reads and writes the artifacts of runs whose root is `s3://…` through
    /// `hook` instead of a hook built from `MLFLOW_S3_ENDPOINT_URL` and the
    /// default AWS chain. Runs behind the server's proxy are unaffected.
    #[cfg(feature = "s3")]
    #[cfg_attr(docsrs, doc(cfg(feature = "s3")))]
    pub fn with_artifact_s3(mut self, hook: crate::hooks::s3::S3Hook) -> Self {
        self.s3 = S3Artifacts::with_hook(hook);
        self
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The conn id (or `MLFLOW_TRACKING_URI`) this store was built from; `None` for a
    /// store built from a URL.
    pub fn conn_id(&self) -> Option<&str> {
        self.scope.conn_id()
    }

    /// One API call with retries. GET sends `body` as query parameters.
    ///
    /// Patience is owned here for a retryable failure: at most `1 + max_retries`
    /// requests, then the error is returned exhausted with `attempts=n`.
    pub(crate) async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        endpoint: &str,
        body: &B,
    ) -> Result<T> {
        let op = format!("mlflow.{endpoint}");
        crate::retry::with_retries(self.max_retries, &self.backoff, &op, || {
            self.call_once(&op, method.clone(), endpoint, body)
        })
        .await
    }

    /// One call that creates something (`runs/create`, `model-versions/create`),
    /// which the server does again if asked again: a retry after the server
    /// acted on a request whose answer was lost would create a duplicate.
    ///
    /// So the request is sent again only when it provably was not acted on: no
    /// connection was made (reqwest's `is_connect`), or the server answered
    /// 429 or 503 (it refused before doing anything). When the outcome is
    /// unknown — the connection was lost after the request went out, a
    /// timeout, a gateway's 502 or 504, a success whose body was lost —
    /// `lookup` is asked, after the backoff delay, whether the object exists:
    /// `Some` is returned as the call's result, `None` means the server did not
    /// create it and the request is sent again. A lookup that fails (or cannot
    /// tell, e.g. two candidates) ends the call with the original error, marked
    /// exhausted and with `outcome=unknown`, rather than risk a duplicate.
    /// With `max_retries` 0 nothing is retried or looked up.
    pub(crate) async fn call_create<T, B, L, LF>(
        &self,
        endpoint: &str,
        body: &B,
        mut lookup: L,
    ) -> Result<T>
    where
        T: DeserializeOwned,
        B: Serialize + ?Sized,
        L: FnMut() -> LF,
        LF: std::future::Future<Output = Result<Option<T>>>,
    {
        let op = format!("mlflow.{endpoint}");
        let mut retry = 0;
        loop {
            let (e, delivery) = match self.send_once(&op, Method::POST, endpoint, body).await {
                Ok(v) => return Ok(v),
                Err(failed) => failed,
            };
            if !e.is_retryable() || delivery == Delivery::Answered {
                return Err(e);
            }
            if retry >= self.max_retries {
                return Err(if retry > 0 {
                    e.exhausted().with("attempts", retry + 1)
                } else {
                    e
                });
            }
            retry += 1;
            let delay = self.backoff.delay(retry);
            tracing::warn!(operation = %op, error = %e, retry, retry_in = ?delay, ?delivery, "mlflow create failed; retrying");
            tokio::time::sleep(delay).await;
            if delivery == Delivery::Unknown {
                match lookup().await {
                    Ok(Some(found)) => {
                        tracing::warn!(operation = %op, "the server had acted on the request whose answer was lost: using what it created, not creating another");
                        return Ok(found);
                    }
                    Ok(None) => {
                        tracing::info!(operation = %op, "the server had not acted on the request: sending it again");
                    }
                    Err(lookup_err) => {
                        return Err(e
                            .exhausted()
                            .with("attempts", retry)
                            .with("outcome", "unknown")
                            .with("lookup_error", lookup_err.to_string()));
                    }
                }
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
        self.send_once(op, method, endpoint, body)
            .await
            .map_err(|(e, _)| e)
    }

    /// One request; a failure says whether the server may have acted on it.
    async fn send_once<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        op: &str,
        method: Method,
        endpoint: &str,
        body: &B,
    ) -> std::result::Result<T, (Error, Delivery)> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base_url);
        let mut req = self.http.request(method.clone(), &url);
        req = if method == Method::GET {
            req.query(body)
        } else {
            req.json(body)
        };
        let resp = self.authed(req).send().await.map_err(|e| {
            // A connect error is raised before a byte of the request is
            // written; anything later may have reached the server.
            let delivery = if e.is_connect() {
                Delivery::NotActedOn
            } else {
                Delivery::Unknown
            };
            (self.transport_error(op, e), delivery)
        })?;
        let status = resp.status();
        let text = self.check(op, resp).await.map_err(|e| {
            let delivery = match status.as_u16() {
                // Throttled or unavailable: refused before acting.
                429 | 503 => Delivery::NotActedOn,
                // A gateway's: the server behind it may have acted; and a
                // success whose body was lost did act.
                502 | 504 => Delivery::Unknown,
                _ if status.is_success() => Delivery::Unknown,
                _ => Delivery::Answered,
            };
            (e, delivery)
        })?;
        let text = if text.trim().is_empty() { "{}" } else { &text };
        serde_json::from_str(text).map_err(|e| {
            (
                self.scope.error(
                    ErrorKind::Remote,
                    op,
                    format!("unexpected response from the MLflow server: {e}"),
                ),
                Delivery::Answered,
            )
        })
    }

    pub(super) fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
        }
    }

    /// A request of `op` that got no answer, through the scope.
    pub(super) fn transport_error(&self, op: &str, e: reqwest::Error) -> Error {
        self.scope.wrap(op, error::transport_error(&e))
    }

    /// The body of a successful response, or the typed error of a failed one.
    pub(super) async fn check(&self, op: &str, resp: reqwest::Response) -> Result<String> {
        let status = resp.status();
        let text = resp.text().await.map_err(|e| {
            self.scope
                .error(ErrorKind::Unavailable, op, error::error_text(&e))
        })?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(self.api_error(op, status, &text))
        }
    }

    /// A failed response of `op`, classified (rest/error.rs), through the scope.
    pub(super) fn api_error(&self, op: &str, status: StatusCode, body: &str) -> Error {
        self.scope.wrap(op, error::api_error(status, body))
    }

    /// Where run `run_id`'s artifacts live, asked once per run. A root gust
    /// cannot reach is an error of `op` naming the run.
    pub(super) async fn artifact_root(
        &self,
        op: &'static str,
        run_id: &str,
    ) -> Result<ArtifactRoot> {
        if let Some(root) = self
            .artifact_roots
            .lock()
            .ok()
            .and_then(|m| m.get(run_id).cloned())
        {
            return Ok(root);
        }
        let run = self.get_run(run_id).await?;
        let root = parse_root(op, &run.info.artifact_uri).map_err(|e| {
            e.with("run_id", run_id)
                .with("artifact_uri", &run.info.artifact_uri)
        })?;
        if let Ok(mut m) = self.artifact_roots.lock() {
            if m.len() >= ARTIFACT_ROOT_CACHE {
                m.clear();
            }
            m.insert(run_id.to_string(), root.clone());
        }
        Ok(root)
    }

    pub(super) fn artifact_url(&self, proxy_path: &str) -> String {
        format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}",
            self.base_url,
            encode_path(proxy_path)
        )
    }
}

/// A run's artifact root, from its `artifact_uri`.
fn parse_root(op: &'static str, artifact_uri: &str) -> Result<ArtifactRoot> {
    if is_s3(artifact_uri) {
        #[cfg(not(feature = "s3"))]
        return Err(super::s3_artifacts::needs_s3_feature(op));
        #[cfg(feature = "s3")]
        return S3Root::parse(artifact_uri).map(ArtifactRoot::S3);
    }
    let rest = artifact_uri
        .strip_prefix("mlflow-artifacts:")
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                op,
                "the run's artifact root is neither served by the tracking server's proxy \
                 (mlflow-artifacts:/…; start the server with --serve-artifacts) nor on S3 (s3://…)",
            )
        })?;
    // `mlflow-artifacts://host:port/path` names the server too; we talk to ours.
    let path = match rest.strip_prefix("//") {
        Some(with_host) => with_host.split_once('/').map(|(_, p)| p).unwrap_or(""),
        None => rest,
    };
    Ok(ArtifactRoot::Proxy(path.trim_matches('/').to_string()))
}

fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|s| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        })
        .collect::<Vec<_>>()
        .join("/")
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
        // The connection's secrets in every form, not only the credentials.
        let c = Connection::from_uri("m", "http://u:p%40ss%2Fw0rd@h:5000").unwrap();
        let h = RestStore::from_connection(&c).unwrap();
        let e = h
            .scope
            .error(ErrorKind::Auth, "x", "p@ss/w0rd p%40ss%2Fw0rd");
        assert_eq!(e.message(), "*** ***");
        assert_eq!(e.context("conn_id"), Some("m"));
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
    fn artifact_roots() {
        let proxy = |p: &str| ArtifactRoot::Proxy(p.to_string());
        let op = "mlflow.x";
        assert_eq!(
            parse_root(op, "mlflow-artifacts:/1/abc/artifacts").unwrap(),
            proxy("1/abc/artifacts")
        );
        assert_eq!(
            parse_root(op, "mlflow-artifacts://h:5000/1/abc/artifacts").unwrap(),
            proxy("1/abc/artifacts")
        );
        let e = parse_root(op, "gs://b/1").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(e.operation(), op);
        #[cfg(feature = "s3")]
        assert_eq!(
            parse_root(op, "s3://b/1/abc/artifacts").unwrap(),
            ArtifactRoot::S3(S3Root {
                bucket: "b".into(),
                prefix: "1/abc/artifacts".into()
            })
        );
        #[cfg(not(feature = "s3"))]
        {
            let e = parse_root(op, "s3://b/1").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported);
            assert!(e.to_string().contains("`s3` feature"), "{e}");
        }
        assert_eq!(encode_path("1/a b/c%"), "1/a%20b/c%25");
    }
}
