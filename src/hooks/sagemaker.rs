//! [`SageMakerHook`]: Amazon SageMaker's training, model, endpoint, transform
//! and processing APIs, SageMaker Runtime's `InvokeEndpoint`, and training
//! logs from CloudWatch Logs (feature `sagemaker`).
//!
//! # The connection (conn type `aws`)
//!
//! The same `aws` connection as [`S3Hook`](crate::hooks::s3::S3Hook) (see
//! [`AwsConfig`]): credentials in login/password or the extras (else the
//! default AWS chain), `region_name`, and `endpoint_url` for every service
//! (moto in tests). `service_config.sagemaker.endpoint_url`,
//! `service_config.sagemaker-runtime.endpoint_url` and
//! `service_config.logs.endpoint_url` override it per API. Without an
//! endpoint, the region must be one SageMaker runs in (the regions of the
//! SageMaker Python SDK's built-in KMeans image, every region SageMaker had
//! in 2026).
//!
//! # Requests as Airflow writes them
//!
//! Requests and responses are JSON with the members of the SageMaker API
//! reference, which are boto3's parameters: the `config` of an Airflow
//! SageMaker operator is sent as it is, and a describe comes back as the
//! `dict` Airflow's operators put in XCom. (gust speaks SageMaker's JSON
//! protocol itself, signed by `aws-sigv4`, rather than through
//! `aws-sdk-sagemaker`, whose typed builders would have to be filled field
//! by field from that JSON and whose outputs cannot be serialized.)
//!
//! ```no_run
//! # async fn f() -> gust::Result<()> {
//! use std::time::Duration;
//! use gust::hooks::sagemaker::{Job, SageMakerHook, WaitOptions};
//!
//! let sm = SageMakerHook::from_conn_id("aws_default").await?;
//! let job = sm.describe_job(Job::Training, "mnistclassifier-2024-01-01-00-00-00").await?;
//! println!("{}", job["TrainingJobStatus"]);
//! let done = sm
//!     .wait_for_job(Job::Training, "mnistclassifier-2024-01-01-00-00-00",
//!         &WaitOptions::new().check_interval(Duration::from_secs(10)))
//!     .await?;
//! println!("{}", done["ModelArtifacts"]["S3ModelArtifacts"]);
//! # Ok(()) }
//! ```
//!
//! # Waiting
//!
//! [`wait_for_job`](SageMakerHook::wait_for_job) polls every
//! `check_interval`. `Completed` succeeds; `Failed` fails with SageMaker's
//! `FailureReason`; `Stopped` fails too unless [`WaitOptions::allow_stopped`]
//! (a job stopped in the console or by its `MaxRuntimeInSeconds` rarely left
//! a usable model, though Airflow's plain wait counts it a success). When
//! `max_ingestion_time` passes, the job is **stopped** before the wait fails:
//! Airflow leaves it running and billing. With
//! [`print_log`](WaitOptions::print_log), a training job's CloudWatch logs
//! (group `/aws/sagemaker/TrainingJobs`, streams `<job>/…`) are read
//! alongside each poll and emitted as `tracing` events of target
//! `gust::sagemaker::log`.
//!
//! # Errors and retries
//!
//! Throttling (`ThrottlingException`…), 5xx and unreachable endpoints are
//! retried by the hook with exponential backoff (500 ms doubling, at most
//! 20 s): 3 attempts in all by default, as the connection's
//! `config_kwargs.retries.max_attempts` says; then the error is returned
//! [exhausted](crate::Error::exhausted). Credentials from the default chain
//! are reused until 5 minutes before they expire. A missing resource is
//! [`NotFound`](ErrorKind::NotFound), a duplicate name
//! [`AlreadyExists`](ErrorKind::AlreadyExists), a rejected request
//! [`InvalidInput`](ErrorKind::InvalidInput) with SageMaker's message; the AWS
//! error code is in the error's context as `code`. Every error names the
//! operation (`sagemaker.CreateTrainingJob`), the conn id and the resource,
//! and is redacted of the connection's secrets.

mod api;
mod error;
mod logs;
mod regions;
mod wait;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use serde_json::{Value, json};

use crate::connection::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::aws::AwsConfig;
use crate::hooks::scope::HookScope;
use crate::retry::Backoff;

pub use api::{HttpApi, InvokeRequest, InvokeResponse, SageMakerApi, Service};
pub use error::api_error as error_from_response;
pub use regions::{builtin_algorithm_image, is_known_region};
pub use wait::WaitOptions;

/// Conn id used when none is given, as in Airflow.
pub const DEFAULT_CONN_ID: &str = "aws_default";

/// The kinds of SageMaker jobs the hook starts, stops and waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Job {
    /// A training job (`CreateTrainingJob`).
    Training,
    /// A batch transform job (`CreateTransformJob`).
    Transform,
    /// A processing job (`CreateProcessingJob`).
    Processing,
}

impl Job {
    /// The API's word for it: `Training`, `Transform`, `Processing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Job::Training => "Training",
            Job::Transform => "Transform",
            Job::Processing => "Processing",
        }
    }

    /// The request member naming the job: `TrainingJobName`…
    pub fn name_key(self) -> &'static str {
        match self {
            Job::Training => "TrainingJobName",
            Job::Transform => "TransformJobName",
            Job::Processing => "ProcessingJobName",
        }
    }

    /// The describe member holding its status: `TrainingJobStatus`…
    pub fn status_key(self) -> &'static str {
        match self {
            Job::Training => "TrainingJobStatus",
            Job::Transform => "TransformJobStatus",
            Job::Processing => "ProcessingJobStatus",
        }
    }

    fn arn_key(self) -> &'static str {
        match self {
            Job::Training => "TrainingJobArn",
            Job::Transform => "TransformJobArn",
            Job::Processing => "ProcessingJobArn",
        }
    }
}

/// Retries of a retryable failure by default: 3 attempts in all, as the
/// connection's default `max_attempts`.
const MAX_RETRIES: u32 = 2;

/// 500 ms doubling, jittered, at most 20 s (botocore's cap).
fn default_backoff() -> Backoff {
    Backoff::exponential(Duration::from_millis(500)).max_delay(Duration::from_secs(20))
}

/// A client of SageMaker built from an Airflow `aws` connection: see the
/// [module docs](self). Cheap to clone.
#[derive(Clone)]
pub struct SageMakerHook {
    scope: HookScope,
    api: Arc<dyn SageMakerApi>,
    region: String,
    max_retries: u32,
    backoff: Backoff,
}

impl fmt::Debug for SageMakerHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SageMakerHook")
            .field("conn_id", &self.scope.conn_id())
            .field("region", &self.region)
            .field("api", &self.api)
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl SageMakerHook {
    /// The hook of connection `conn_id` (`AIRFLOW_CONN_<CONN_ID>`, else the secrets backend; see [`Connection::get`](crate::Connection::get)).
    pub async fn from_conn_id(conn_id: &str) -> Result<Self> {
        Self::from_connection(&Connection::get(conn_id)?).await
    }

    /// The hook of `conn`; see the [module docs](self) for the fields read. A
    /// region SageMaker does not run in, without an `endpoint_url`, is a
    /// [`Config`](ErrorKind::Config) error.
    pub async fn from_connection(conn: &Connection) -> Result<Self> {
        let scope = HookScope::new("sagemaker", conn);
        let aws = AwsConfig::from_connection(conn, "sagemaker")?;
        let (sdk, region) = aws.load().await;
        // Each API's endpoint: its own `service_config.<api>.endpoint_url`, else
        // `endpoint_url`, each checked like S3's; an API with neither goes to AWS.
        let runtime = AwsConfig::from_connection(conn, "sagemaker-runtime")?.endpoint;
        let logs = AwsConfig::from_connection(conn, "logs")?.endpoint;
        if aws.endpoint.is_none() && !is_known_region(&region) {
            return Err(scope.error(
                ErrorKind::Config,
                "connect",
                format!(
                    "region `{region}` is not one SageMaker runs in (a typo?); set extra \
                     region_name to e.g. us-east-1, or endpoint_url for another endpoint"
                ),
            ));
        }
        let aws_endpoints = api::Endpoints::aws(&region);
        let endpoints = api::Endpoints {
            sagemaker: aws.endpoint.clone().unwrap_or(aws_endpoints.sagemaker),
            runtime: runtime.unwrap_or(aws_endpoints.runtime),
            logs: logs.unwrap_or(aws_endpoints.logs),
        }
        .trimmed();
        let credentials = sdk.credentials_provider().unwrap_or_else(|| {
            SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
                "", "", None, None, "none",
            ))
        });
        let http = HttpApi::new(credentials, region.clone(), endpoints)
            .map_err(|e| scope.wrap("connect", e))?;
        tracing::debug!(conn_id = conn.conn_id(), %region, "sagemaker hook built");
        Ok(SageMakerHook {
            scope,
            api: Arc::new(http),
            region,
            max_retries: aws.max_attempts.saturating_sub(1),
            backoff: default_backoff(),
        })
    }

    /// A hook over any [`SageMakerApi`] (a scripted fake in tests), its errors
    /// naming `conn_id`; region `region`.
    pub fn with_api(
        conn_id: impl Into<String>,
        region: impl Into<String>,
        api: Arc<dyn SageMakerApi>,
    ) -> Self {
        SageMakerHook {
            scope: HookScope::named("sagemaker", conn_id, Vec::new()),
            api,
            region: region.into(),
            max_retries: MAX_RETRIES,
            backoff: default_backoff(),
        }
    }

    /// Retries a throttled or failed request `max_retries` times, waiting as
    /// `backoff` says (default: the connection's `max_attempts` − 1, i.e. 2;
    /// from 500 ms doubling, jittered, at most 20 s). With 0 the error stays
    /// retryable and the task owns the patience.
    pub fn with_retries(mut self, max_retries: u32, backoff: Backoff) -> Self {
        self.max_retries = max_retries;
        self.backoff = backoff;
        self
    }

    /// The conn id errors name.
    pub fn conn_id(&self) -> Option<&str> {
        self.scope.conn_id()
    }

    /// The region requests go to.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Calls SageMaker's `action` with `request` (both as the API reference
    /// writes them), retrying what is retryable: the primitive every other
    /// method uses, for the actions they do not cover.
    pub async fn call(&self, action: &str, request: Value) -> Result<Value> {
        self.call_service(Service::SageMaker, action, request).await
    }

    /// Calls CloudWatch Logs' `action` (`GetLogEvents`…) with `request`,
    /// retrying like [`call`](Self::call).
    pub async fn call_logs(&self, action: &str, request: Value) -> Result<Value> {
        self.call_service(Service::Logs, action, request).await
    }

    pub(crate) async fn call_service(
        &self,
        service: Service,
        action: &str,
        request: Value,
    ) -> Result<Value> {
        let op = format!("{}.{action}", service_prefix(service));
        self.retrying(&op, || self.api.call(service, action, request.clone()))
            .await
    }

    /// Runs `attempt` until it succeeds, fails for good, or has been retried
    /// `max_retries` times (then its error is marked exhausted); the error
    /// named `op` through the hook's scope.
    async fn retrying<T, F, Fut>(&self, op: &str, attempt: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        crate::retry::with_retries(self.max_retries, &self.backoff, op, attempt)
            .await
            .map_err(|e| self.scope.wrap(op, e))
    }

    /// `call`, with the error naming `key=name`.
    async fn call_on(
        &self,
        action: &str,
        request: Value,
        key: &'static str,
        name: &str,
    ) -> Result<Value> {
        self.call(action, request).await.map_err(|e| {
            if e.context(key).is_none() {
                e.with(key, name)
            } else {
                e
            }
        })
    }

    // ----- jobs -----

    /// Starts a job of `kind` from its create request (`CreateTrainingJob`…);
    /// the response (its ARN).
    pub async fn create_job(&self, kind: Job, request: &Value) -> Result<Value> {
        let name = request[kind.name_key()].as_str().unwrap_or("").to_string();
        self.call_on(
            &format!("Create{}Job", kind.as_str()),
            request.clone(),
            "job",
            &name,
        )
        .await
    }

    /// The description of job `name` of `kind` (`DescribeTrainingJob`…);
    /// [`NotFound`](ErrorKind::NotFound) when there is none.
    pub async fn describe_job(&self, kind: Job, name: &str) -> Result<Value> {
        self.call_on(
            &format!("Describe{}Job", kind.as_str()),
            json!({ kind.name_key(): name }),
            "job",
            name,
        )
        .await
    }

    /// [`describe_job`](Self::describe_job), `None` when the job does not exist.
    pub async fn find_job(&self, kind: Job, name: &str) -> Result<Option<Value>> {
        not_found_as_none(self.describe_job(kind, name).await)
    }

    /// Asks SageMaker to stop job `name` (`StopTrainingJob`…). Stopping a
    /// job that already finished is not an error: there is nothing to stop.
    pub async fn stop_job(&self, kind: Job, name: &str) -> Result<()> {
        let r = self
            .call_on(
                &format!("Stop{}Job", kind.as_str()),
                json!({ kind.name_key(): name }),
                "job",
                name,
            )
            .await;
        match r {
            Ok(_) => {
                tracing::info!(
                    job = name,
                    kind = kind.as_str(),
                    "sagemaker job stop requested"
                );
                Ok(())
            }
            // "The job is not in a stoppable state": it finished meanwhile.
            Err(e)
                if e.context("code") == Some("ValidationException")
                    && e.kind() == ErrorKind::InvalidInput =>
            {
                tracing::info!(job = name, error = %e, "sagemaker job not stopped: it is not running");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The ARN of job `name` from its description.
    pub fn job_arn(kind: Job, description: &Value) -> Option<&str> {
        description[kind.arn_key()].as_str()
    }

    /// Jobs of `kind` (their summaries: name, ARN, status, creation time),
    /// newest first, whose name contains `name_contains` (all with `None`),
    /// fetched 100 per page.
    pub async fn list_jobs(&self, kind: Job, name_contains: Option<&str>) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let summaries = format!("{}JobSummaries", kind.as_str());
        loop {
            let mut req =
                json!({"MaxResults": 100, "SortBy": "CreationTime", "SortOrder": "Descending"});
            if let Some(n) = name_contains {
                req["NameContains"] = json!(n);
            }
            if let Some(t) = &token {
                req["NextToken"] = json!(t);
            }
            let page = self
                .call(&format!("List{}Jobs", kind.as_str()), req)
                .await?;
            if let Some(items) = page[&summaries].as_array() {
                out.extend(items.iter().cloned());
            }
            match page["NextToken"].as_str() {
                Some(t) if !t.is_empty() && token.as_deref() != Some(t) => {
                    token = Some(t.to_string())
                }
                _ => return Ok(out),
            }
        }
    }

    /// Training jobs whose name contains `name_contains`: [`list_jobs`](Self::list_jobs).
    pub async fn list_training_jobs(&self, name_contains: Option<&str>) -> Result<Vec<Value>> {
        self.list_jobs(Job::Training, name_contains).await
    }

    /// The tags of resource `arn` as `key → value`.
    pub async fn list_tags(&self, arn: &str) -> Result<Vec<(String, String)>> {
        let resp = self
            .call_on("ListTags", json!({"ResourceArn": arn}), "arn", arn)
            .await?;
        Ok(resp["Tags"]
            .as_array()
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| {
                        Some((
                            t["Key"].as_str()?.to_string(),
                            t["Value"].as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    // ----- models, endpoint configs, endpoints -----

    /// `CreateModel`; the response.
    pub async fn create_model(&self, request: &Value) -> Result<Value> {
        let name = request["ModelName"].as_str().unwrap_or("").to_string();
        self.call_on("CreateModel", request.clone(), "model", &name)
            .await
    }

    /// `DescribeModel`; [`NotFound`](ErrorKind::NotFound) when there is none.
    pub async fn describe_model(&self, name: &str) -> Result<Value> {
        self.call_on("DescribeModel", json!({"ModelName": name}), "model", name)
            .await
    }

    /// `DeleteModel`.
    pub async fn delete_model(&self, name: &str) -> Result<()> {
        self.call_on("DeleteModel", json!({"ModelName": name}), "model", name)
            .await?;
        Ok(())
    }

    /// `CreateEndpointConfig`; the response.
    pub async fn create_endpoint_config(&self, request: &Value) -> Result<Value> {
        let name = request["EndpointConfigName"]
            .as_str()
            .unwrap_or("")
            .to_string();
        self.call_on(
            "CreateEndpointConfig",
            request.clone(),
            "endpoint_config",
            &name,
        )
        .await
    }

    /// `DescribeEndpointConfig`.
    pub async fn describe_endpoint_config(&self, name: &str) -> Result<Value> {
        self.call_on(
            "DescribeEndpointConfig",
            json!({"EndpointConfigName": name}),
            "endpoint_config",
            name,
        )
        .await
    }

    /// `DeleteEndpointConfig`.
    pub async fn delete_endpoint_config(&self, name: &str) -> Result<()> {
        self.call_on(
            "DeleteEndpointConfig",
            json!({"EndpointConfigName": name}),
            "endpoint_config",
            name,
        )
        .await?;
        Ok(())
    }

    /// `CreateEndpoint`; the response. An existing endpoint is
    /// [`AlreadyExists`](ErrorKind::AlreadyExists).
    pub async fn create_endpoint(&self, request: &Value) -> Result<Value> {
        let name = request["EndpointName"].as_str().unwrap_or("").to_string();
        self.call_on("CreateEndpoint", request.clone(), "endpoint", &name)
            .await
    }

    /// `UpdateEndpoint`: the endpoint moves to another endpoint config.
    pub async fn update_endpoint(&self, request: &Value) -> Result<Value> {
        let name = request["EndpointName"].as_str().unwrap_or("").to_string();
        self.call_on("UpdateEndpoint", request.clone(), "endpoint", &name)
            .await
    }

    /// `DescribeEndpoint`.
    pub async fn describe_endpoint(&self, name: &str) -> Result<Value> {
        self.call_on(
            "DescribeEndpoint",
            json!({"EndpointName": name}),
            "endpoint",
            name,
        )
        .await
    }

    /// [`describe_endpoint`](Self::describe_endpoint), `None` when there is none.
    pub async fn find_endpoint(&self, name: &str) -> Result<Option<Value>> {
        not_found_as_none(self.describe_endpoint(name).await)
    }

    /// `DeleteEndpoint`.
    pub async fn delete_endpoint(&self, name: &str) -> Result<()> {
        self.call_on(
            "DeleteEndpoint",
            json!({"EndpointName": name}),
            "endpoint",
            name,
        )
        .await?;
        Ok(())
    }

    /// SageMaker Runtime's `InvokeEndpoint`: the model's answer. Retried like
    /// every call (an inference is read-only).
    pub async fn invoke_endpoint(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        self.retrying("sagemaker-runtime.InvokeEndpoint", || {
            self.api.invoke_endpoint(request.clone())
        })
        .await
        .map_err(|e| e.with("endpoint", &request.endpoint_name))
    }

    /// Errors the operators raise, named and redacted like the hook's own.
    pub(crate) fn error(&self, kind: ErrorKind, op: &str, message: impl Into<String>) -> Error {
        self.scope.error(kind, op, message)
    }
}

fn service_prefix(service: Service) -> &'static str {
    match service {
        Service::SageMaker => "sagemaker",
        Service::Logs => "logs",
    }
}

/// `Ok(None)` for a [`NotFound`](ErrorKind::NotFound) error.
fn not_found_as_none(r: Result<Value>) -> Result<Option<Value>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
