//! [`SageMakerApi`]: one round trip to SageMaker, SageMaker Runtime or
//! CloudWatch Logs, and [`HttpApi`], its implementation over HTTPS with
//! Signature Version 4.
//!
//! Both JSON APIs (SageMaker's `awsJson1_1`, CloudWatch Logs') take and return
//! the members the API reference and boto3 name, so an Airflow `config` is
//! sent as it is written and a describe comes back as Airflow's XCom holds it.
//! Waiting, retries and names live in the hook, not here.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use serde_json::Value;

use super::error;
use crate::error::{Error, ErrorKind, Result};

/// The APIs a [`SageMakerApi`] reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Service {
    /// SageMaker's control plane (`SageMaker.<Action>`).
    SageMaker,
    /// CloudWatch Logs (`Logs_20140328.<Action>`), for training logs.
    Logs,
}

/// An `InvokeEndpoint` request of SageMaker Runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvokeRequest {
    /// The endpoint's name.
    pub endpoint_name: String,
    /// The body's MIME type (`text/csv`, `application/json`,
    /// `application/x-recordio-protobuf`…).
    pub content_type: String,
    /// The MIME type wanted back; `None` lets the model choose.
    pub accept: Option<String>,
    /// The request body.
    pub body: Bytes,
}

impl InvokeRequest {
    /// `body` of type `content_type` to endpoint `endpoint_name`.
    pub fn new(
        endpoint_name: impl Into<String>,
        content_type: impl Into<String>,
        body: impl Into<Bytes>,
    ) -> Self {
        InvokeRequest {
            endpoint_name: endpoint_name.into(),
            content_type: content_type.into(),
            accept: None,
            body: body.into(),
        }
    }

    /// Asks for a response of MIME type `accept`.
    pub fn accept(mut self, accept: impl Into<String>) -> Self {
        self.accept = Some(accept.into());
        self
    }
}

/// What an endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvokeResponse {
    /// The response body.
    pub body: Bytes,
    /// Its MIME type, when the endpoint said.
    pub content_type: Option<String>,
    /// The production variant that answered, when the endpoint said.
    pub invoked_variant: Option<String>,
}

impl InvokeResponse {
    /// An answer of `body` (a scripted endpoint's, in tests).
    pub fn new(body: impl Into<Bytes>, content_type: Option<&str>) -> Self {
        InvokeResponse {
            body: body.into(),
            content_type: content_type.map(str::to_string),
            invoked_variant: None,
        }
    }
}

/// One round trip to AWS: the primitive under [`SageMakerHook`](super::SageMakerHook).
///
/// Each method makes one request and classifies its failure (an error whose
/// context has the AWS error `code`); it neither retries nor waits. Implement
/// it to script responses in tests (see `tests/sagemaker_jobs.rs`), or to
/// reach SageMaker another way.
#[async_trait]
pub trait SageMakerApi: Send + Sync + fmt::Debug {
    /// Calls `action` (`CreateTrainingJob`, `GetLogEvents`…) of `service` with
    /// the JSON `request`; the JSON response.
    async fn call(&self, service: Service, action: &str, request: Value) -> Result<Value>;

    /// SageMaker Runtime's `InvokeEndpoint`.
    async fn invoke_endpoint(&self, request: InvokeRequest) -> Result<InvokeResponse>;
}

/// Where each API is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoints {
    pub sagemaker: String,
    pub runtime: String,
    pub logs: String,
}

impl Endpoints {
    /// AWS's endpoints in `region` (`.amazonaws.com.cn` in China).
    pub(crate) fn trimmed(self) -> Self {
        let trim = |s: String| s.trim_end_matches('/').to_string();
        Endpoints {
            sagemaker: trim(self.sagemaker),
            runtime: trim(self.runtime),
            logs: trim(self.logs),
        }
    }

    pub(crate) fn aws(region: &str) -> Self {
        let domain = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        Endpoints {
            sagemaker: format!("https://api.sagemaker.{region}.{domain}"),
            runtime: format!("https://runtime.sagemaker.{region}.{domain}"),
            logs: format!("https://logs.{region}.{domain}"),
        }
    }
}

/// [`SageMakerApi`] over HTTPS: JSON bodies signed with SigV4 by `aws-sigv4`,
/// credentials from the connection or the default AWS chain (refreshed by
/// their provider), sent by reqwest.
#[derive(Clone)]
pub struct HttpApi {
    http: reqwest::Client,
    credentials: SharedCredentialsProvider,
    /// The credentials last provided, reused until 5 minutes before they
    /// expire: the default chain does not cache, and asking IMDS or STS at
    /// every poll and log page would get throttled.
    cached: std::sync::Arc<tokio::sync::Mutex<Option<Credentials>>>,
    region: String,
    endpoints: Endpoints,
}

impl fmt::Debug for HttpApi {
    // The credentials provider never prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpApi")
            .field("region", &self.region)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// The time a request may take before it is a [`Timeout`](ErrorKind::Timeout).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl HttpApi {
    pub(crate) fn new(
        credentials: SharedCredentialsProvider,
        region: String,
        endpoints: Endpoints,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Config, "", "cannot build the HTTP client").with_source(e)
            })?;
        Ok(HttpApi {
            http,
            credentials,
            cached: Default::default(),
            region,
            endpoints,
        })
    }

    /// The cached credentials, or fresh ones when none are cached or they
    /// expire within 5 minutes.
    async fn credentials(&self) -> Result<Credentials> {
        let mut cached = self.cached.lock().await;
        let fresh_enough = |c: &Credentials| {
            c.expiry().is_none_or(|at| {
                at.duration_since(SystemTime::now())
                    .is_ok_and(|left| left > Duration::from_secs(300))
            })
        };
        if let Some(c) = cached.as_ref().filter(|c| fresh_enough(c)) {
            return Ok(c.clone());
        }
        let creds = self.credentials.provide_credentials().await.map_err(|e| {
            Error::new(
                ErrorKind::Auth,
                "",
                format!("no AWS credentials: {}", crate::hooks::scope::innermost(&e)),
            )
            .with_retryable(false)
        })?;
        *cached = Some(creds.clone());
        Ok(creds)
    }

    /// POSTs `body` to `url` with `headers`, signed for `signing_name`; the
    /// response, or the classified error of a failed one.
    async fn send(
        &self,
        url: &str,
        signing_name: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<reqwest::Response> {
        let identity = self.credentials().await?.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(signing_name)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Config, "", "cannot sign the request").with_source(e)
            })?
            .into();
        let signable = SignableRequest::new(
            "POST",
            url,
            headers.iter().map(|(k, v)| (*k, v.as_str())),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| {
            Error::new(ErrorKind::InvalidInput, "", "cannot sign the request").with_source(e)
        })?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| {
                Error::new(ErrorKind::Config, "", "cannot sign the request").with_source(e)
            })?
            .into_parts();
        let mut req = self.http.post(url);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        for (k, v) in instructions.headers() {
            req = req.header(k, v);
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| error::transport_error(&e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let error_type = resp
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.bytes().await.unwrap_or_default();
        Err(error::api_error(
            status.as_u16(),
            error_type.as_deref(),
            &body,
        ))
    }
}

#[async_trait]
impl SageMakerApi for HttpApi {
    async fn call(&self, service: Service, action: &str, request: Value) -> Result<Value> {
        let (url, target, signing_name) = match service {
            Service::SageMaker => (
                &self.endpoints.sagemaker,
                format!("SageMaker.{action}"),
                "sagemaker",
            ),
            Service::Logs => (
                &self.endpoints.logs,
                format!("Logs_20140328.{action}"),
                "logs",
            ),
        };
        let body = serde_json::to_vec(&request).map_err(|e| {
            Error::new(ErrorKind::InvalidInput, "", "the request is not JSON").with_source(e)
        })?;
        let headers = [
            ("content-type", "application/x-amz-json-1.1".to_string()),
            ("x-amz-target", target),
        ];
        let resp = self.send(url, signing_name, &headers, body.into()).await?;
        let bytes = resp.bytes().await.map_err(|e| error::transport_error(&e))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::Remote,
                "",
                format!("the response of {action} is not JSON: {e}"),
            )
        })
    }

    async fn invoke_endpoint(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        let name: String =
            url::form_urlencoded::byte_serialize(request.endpoint_name.as_bytes()).collect();
        let url = format!("{}/endpoints/{name}/invocations", self.endpoints.runtime);
        let mut headers = vec![("content-type", request.content_type.clone())];
        if let Some(a) = &request.accept {
            headers.push(("accept", a.clone()));
        }
        let resp = self.send(&url, "sagemaker", &headers, request.body).await?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type");
        let invoked_variant = header("x-amzn-invoked-production-variant");
        let body = resp.bytes().await.map_err(|e| error::transport_error(&e))?;
        Ok(InvokeResponse {
            body,
            content_type,
            invoked_variant,
        })
    }
}
