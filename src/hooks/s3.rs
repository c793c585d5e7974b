//! [`S3Hook`]: AWS S3 and S3-compatible stores (MinIO, moto, s3s…) through
//! aws-sdk-s3 (feature `s3`).
//!
//! # The connection (conn type `aws`)
//!
//! | where | what |
//! |---|---|
//! | login / password | access key id / secret access key |
//! | extra `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token` | the same, when login/password are empty |
//! | extra `region_name` | the region (default: the AWS chain, else `us-east-1`) |
//! | extra `endpoint_url` | a custom endpoint for every service |
//! | extra `service_config.s3.endpoint_url` | S3's endpoint, overriding `endpoint_url` |
//! | extra `service_config.s3.bucket_name` | the default bucket of methods given none |
//! | extra `config_kwargs.retries.max_attempts` | attempts per request (default 3) |
//! | extra `conditional_put` | `if-none-match` (default) or `head`, see [`ConditionalPut`] |
//!
//! With no credentials in the connection, the default AWS chain applies
//! (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE`, SSO, instance
//! roles). A custom endpoint switches to path-style addressing
//! and computes request checksums only when an operation requires one: since
//! aws-sdk-s3 1.69 the default checksums break many S3-compatible stores.
//!
//! ```no_run
//! # async fn f() -> gust::Result<()> {
//! use gust::hooks::s3::{LoadOptions, S3Hook};
//! // AIRFLOW_CONN_AWS_DEFAULT='aws://KEY:SECRET@/?region_name=us-east-1&endpoint_url=http%3A%2F%2Flocalhost%3A9000'
//! let s3 = S3Hook::from_conn_id("aws_default").await?;
//! s3.load_string("a;b\n1;2\n", "raw/iris1.csv", Some("team06-mlflow-feature"), &LoadOptions::new().replace(true)).await?;
//! let text = s3.read_key("s3://team06-mlflow-feature/raw/iris1.csv", None).await?;
//! # let _ = text; Ok(()) }
//! ```
//!
//! # Large transfers
//!
//! Uploads of a stream go in parts of 8 MiB, 4 at once
//! ([`with_part_size`](S3Hook::with_part_size),
//! [`with_max_in_flight`](S3Hook::with_max_in_flight)); a failed or cancelled
//! upload is aborted. Downloads above 8 MiB
//! ([`with_download_threshold`](S3Hook::with_download_threshold)) fetch 8 MiB
//! ranges concurrently, all pinned to one ETag
//! ([`with_download_parts`](S3Hook::with_download_parts)), 10 at once: to a file,
//! each written at its offset; as a stream, in order, the bytes received ahead of
//! the consumer bounded by a 48 MiB buffer
//! ([`with_download_stream_buffer`](S3Hook::with_download_stream_buffer)).
//!
//! # Errors and retries
//!
//! Transient failures (5xx, throttling, timeouts, refused or reset connections)
//! are retried by the SDK's standard retry policy with exponential backoff and
//! jitter, then reported as retryable [`Unavailable`](ErrorKind::Unavailable) /
//! [`Timeout`](ErrorKind::Timeout) errors. A response body that breaks off
//! mid-download (a reset connection, a truncated response) is beyond the SDK's
//! reach: a ranged download asks for the rest of that part again, from where it
//! stopped and pinned to the same ETag, up to 3 times with a growing pause
//! (0.2, 0.4, 0.8 s), as boto3 retries a part. Client errors (`NoSuchBucket`,
//! `NoSuchKey`, `AccessDenied`, `SignatureDoesNotMatch`, `PreconditionFailed`…)
//! fail at once. Every error names the operation, conn id, bucket and key, and is
//! redacted with the connection's secrets.

mod airflow;
mod download;
mod error;
mod multipart;
mod params;
mod store;

use std::fmt;
use std::time::Duration;

use aws_sdk_s3::config::{
    Region, RequestChecksumCalculation, ResponseChecksumValidation, retry::RetryConfig,
};

use crate::connection::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::aws::{AwsConfig, extra_path};
use crate::hooks::scope::HookScope;
use crate::retry::Backoff;

pub use crate::hooks::object_store::ListKeys;
// For MLflow's direct S3 artifact uploads.
#[cfg(feature = "mlflow")]
pub(crate) use params::file_stream;
pub use params::{LoadOptions, PresignMethod};

/// Conn id used when none is given, as in Airflow.
pub const DEFAULT_CONN_ID: &str = "aws_default";

/// S3's minimum size of every multipart part but the last.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// S3's limit on a single-request copy: larger objects need `UploadPartCopy`.
pub const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;

/// How `replace=false` writes are made exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConditionalPut {
    /// A conditional `PUT` / `CompleteMultipartUpload` with `If-None-Match: *`:
    /// atomic, supported by AWS (since 2024), MinIO, moto and s3s. The default.
    #[default]
    IfNoneMatch,
    /// The fallback for servers without `If-None-Match` (they answer
    /// `NotImplemented`, or worse, ignore it): `HEAD`, then `PUT` when absent.
    /// Racy — two writers can both see "absent" — which is why it is opt-in
    /// (extra `conditional_put: "head"`), as Airflow does it unconditionally.
    HeadThenPut,
}

/// A client of one S3 endpoint, built from an Airflow `aws` connection. Cheap to
/// clone. Implements [`ObjectStore`](crate::hooks::object_store::ObjectStore).
#[derive(Clone)]
pub struct S3Hook {
    /// Every error goes through it (conn id, the connection's secrets).
    scope: HookScope,
    client: aws_sdk_s3::Client,
    region: String,
    endpoint: Option<String>,
    default_bucket: Option<String>,
    part_size: usize,
    max_in_flight: usize,
    copy_threshold: u64,
    copy_part_size: u64,
    conditional_put: ConditionalPut,
    download: download::DownloadConfig,
    /// Server-side encryption (`AES256`) of every object this hook writes.
    sse: bool,
    /// The region `create_bucket` creates buckets in (default: the hook's region).
    bucket_region: Option<String>,
}

impl fmt::Debug for S3Hook {
    // Hand-written so neither the client's credentials nor the secrets list print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Hook")
            .field("conn_id", &self.conn_id())
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("default_bucket", &self.default_bucket)
            .field("part_size", &self.part_size)
            .field("max_in_flight", &self.max_in_flight)
            .field("copy_threshold", &self.copy_threshold)
            .field("conditional_put", &self.conditional_put)
            .field("download", &self.download)
            .field("server_side_encryption", &self.sse)
            .field("bucket_region", &self.bucket_region)
            .finish_non_exhaustive()
    }
}

/// The SDK's standard retry policy with `max_attempts` per request (clamped to
/// 1..=20), waiting as `backoff` says between them (`None`: the SDK's default
/// delays).
fn retry_config(max_attempts: u32, backoff: Option<&Backoff>) -> RetryConfig {
    let retry = RetryConfig::standard().with_max_attempts(max_attempts.clamp(1, 20));
    match backoff {
        Some(b) => retry
            .with_initial_backoff(b.base)
            .with_max_backoff(b.max_delay.unwrap_or(Duration::from_secs(20))),
        None => retry,
    }
}

impl S3Hook {
    /// The hook of connection `conn_id` (`AIRFLOW_CONN_<CONN_ID>`, else the secrets backend; see [`Connection::get`](crate::Connection::get)).
    pub async fn from_conn_id(conn_id: &str) -> Result<Self> {
        Self::from_connection(&Connection::get(conn_id)?).await
    }

    /// The hook of `conn`; see the [module docs](self) for the fields read.
    pub async fn from_connection(conn: &Connection) -> Result<Self> {
        let scope = HookScope::new("s3", conn);
        let config_err = |msg: &str| scope.error(ErrorKind::Config, "connect", msg);
        let aws = AwsConfig::from_connection(conn, "s3")?;
        let endpoint = aws.endpoint.clone();
        let (sdk, region) = aws.load().await;
        let max_attempts = aws.max_attempts;
        let mut builder = aws_sdk_s3::config::Builder::from(&sdk)
            .region(Region::new(region.clone()))
            .retry_config(retry_config(max_attempts, None));
        if let Some(e) = &endpoint {
            let virtual_hosted =
                extra_path(conn, &["service_config", "s3", "addressing_style"]) == Some("virtual");
            builder = builder
                .endpoint_url(e)
                .force_path_style(!virtual_hosted)
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        let conditional_put = match conn.extra_str("conditional_put") {
            None | Some("if-none-match") => ConditionalPut::IfNoneMatch,
            Some("head") => ConditionalPut::HeadThenPut,
            Some(_) => {
                return Err(config_err(
                    "extra conditional_put must be `if-none-match` or `head`",
                ));
            }
        };
        tracing::debug!(conn_id = conn.conn_id(), %region, endpoint = ?endpoint, "s3 hook built");
        Ok(S3Hook {
            scope,
            client: aws_sdk_s3::Client::from_conf(builder.build()),
            region,
            endpoint,
            default_bucket: extra_path(conn, &["service_config", "s3", "bucket_name"])
                .map(str::to_string),
            part_size: 8 * 1024 * 1024,
            max_in_flight: 4,
            copy_threshold: MAX_SINGLE_COPY,
            copy_part_size: 512 * 1024 * 1024,
            conditional_put,
            download: download::DownloadConfig::default(),
            sse: false,
            bucket_region: None,
        })
    }

    /// Encrypts every object this hook writes (`put`, `put_stream`, `copy`, the
    /// `load_*` methods) with S3-managed keys (`AES256`), Airflow's `encrypt`. A
    /// setting of the hook rather than of each call, so code written against
    /// [`ObjectStore`](crate::hooks::object_store::ObjectStore) gets it too.
    pub fn with_server_side_encryption(mut self, on: bool) -> Self {
        self.sse = on;
        self
    }

    /// The region [`create_bucket`](crate::hooks::object_store::ObjectStore::create_bucket)
    /// creates buckets in (default: the connection's `region_name`), Airflow's
    /// `create_bucket(region_name=…)`.
    pub fn with_bucket_region(mut self, region: impl Into<String>) -> Self {
        self.bucket_region = Some(region.into());
        self
    }

    /// The SDK's retries: `max_attempts` per request (default 3, or the
    /// connection's `config_kwargs.retries.max_attempts`), waiting as `backoff`
    /// says between them (the SDK's standard policy, whose delays are full-jitter
    /// exponential: up to `base · 2ⁿ⁻¹`, at most `max_delay` or 20 s). A request
    /// that fails transiently after its last attempt is returned
    /// [exhausted](crate::Error::exhausted), so a task's retries do not multiply
    /// the attempts (see [`crate::retry`]).
    pub fn with_retries(mut self, max_attempts: u32, backoff: Backoff) -> Self {
        let config = self
            .client
            .config()
            .to_builder()
            .retry_config(retry_config(max_attempts, Some(&backoff)))
            .build();
        self.client = aws_sdk_s3::Client::from_conf(config);
        self
    }

    /// Attempts the SDK makes per request, as its client is configured (the
    /// connection's `max_attempts` or [`with_retries`](Self::with_retries)): an
    /// error it retried is returned exhausted, so a task's retries do not
    /// multiply them.
    fn max_attempts(&self) -> u32 {
        self.client
            .config()
            .retry_config()
            .map_or(1, RetryConfig::max_attempts)
    }

    /// The server-side encryption of a write: `AES256` when the hook encrypts
    /// every write (see
    /// [`with_server_side_encryption`](Self::with_server_side_encryption)) or
    /// the call asks for it (`per_call`, [`LoadOptions::encrypt`]), else none.
    pub(crate) fn sse(&self, per_call: bool) -> Option<aws_sdk_s3::types::ServerSideEncryption> {
        (self.sse || per_call).then_some(aws_sdk_s3::types::ServerSideEncryption::Aes256)
    }

    /// Part size of multipart uploads (default 8 MiB; at least [`MIN_PART_SIZE`]).
    /// Memory of a streamed upload stays under `part_size × (max_in_flight + 1)`.
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(MIN_PART_SIZE);
        self
    }

    /// Parts uploaded concurrently (default 4, at least 1).
    pub fn with_max_in_flight(mut self, parts: usize) -> Self {
        self.max_in_flight = parts.max(1);
        self
    }

    /// Objects larger than this are copied with multipart `UploadPartCopy`
    /// (default and maximum 5 GiB, S3's single-copy limit), in parts of `part_size`
    /// (at least [`MIN_PART_SIZE`]). Small values let tests exercise the path.
    pub fn with_copy_multipart(mut self, threshold: u64, part_size: u64) -> Self {
        self.copy_threshold = threshold.min(MAX_SINGLE_COPY);
        self.copy_part_size = part_size.clamp(MIN_PART_SIZE as u64, MAX_SINGLE_COPY);
        self
    }

    /// Objects larger than `bytes` (default 8 MiB, at least 1) are downloaded with
    /// ranged `GET`s, several at once. Every download starts with one plain `GET`;
    /// an object up to `bytes` is that `GET` alone. For a larger one, its first
    /// `bytes` are read from that response and the rest follows in parts of the
    /// download part size. `u64::MAX` makes every download one `GET`. See
    /// [`with_download_parts`](Self::with_download_parts).
    pub fn with_download_threshold(mut self, bytes: u64) -> Self {
        self.download.threshold = bytes.max(1);
        self
    }

    /// Part size (default 8 MiB, at least 1 byte) and parts in flight — the
    /// connections a download uses — (default 10, as boto3's `max_concurrency`;
    /// at least 1) of ranged downloads
    /// (`get_stream`, `get`, `download_file`). Every part after the first is
    /// pinned to the first response's ETag (`If-Match`), so an object replaced
    /// mid-download is an error. To a file, parts are written at their offsets as
    /// they arrive (memory about `parts × 2 MiB`). A stream yields them in order,
    /// which takes a buffer: see
    /// [`with_download_stream_buffer`](Self::with_download_stream_buffer).
    pub fn with_download_parts(mut self, part_size: u64, parts: usize) -> Self {
        self.download.part_size = part_size.max(1);
        self.download.concurrency = parts.max(1);
        self
    }

    /// Bytes a streamed download (`get_stream`, `get`) may receive ahead of its
    /// consumer, default 48 MiB. A stream yields the object in order, so while
    /// the part being read arrives at one connection's speed, the parts after it
    /// (all [`with_download_parts`](Self::with_download_parts) of them in flight)
    /// are buffered; once they hold `bytes`, they pause until the consumer
    /// catches up. The part being read never pauses, so a stream holds at most
    /// `bytes` plus one part (and a 1 MiB batch per part in flight). A smaller
    /// buffer trades throughput for memory; files do not need one.
    pub fn with_download_stream_buffer(mut self, bytes: u64) -> Self {
        self.download.stream_buffer = bytes;
        self
    }

    /// Sets how `replace=false` is enforced (the extra `conditional_put` sets it too).
    pub fn with_conditional_put(mut self, mode: ConditionalPut) -> Self {
        self.conditional_put = mode;
        self
    }

    /// The connection id this hook was built from.
    pub fn conn_id(&self) -> &str {
        self.scope.conn_id().unwrap_or_default()
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The underlying aws-sdk-s3 client, for calls gust does not wrap.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Checks the credentials and the endpoint with `ListBuckets`. Unlike
    /// Airflow's, it does not call STS, which S3-compatible stores lack.
    pub async fn test_connection(&self) -> Result<()> {
        self.client
            .list_buckets()
            .send()
            .await
            .map_err(|e| self.sdk_error("s3.test_connection", None, None, e))?;
        Ok(())
    }

    /// `e` as an error of operation `op` on `bucket`/`key` (each unless `e`
    /// names its own), through the hook's scope: conn id, redaction.
    pub(crate) fn wrap(
        &self,
        op: &str,
        e: Error,
        bucket: Option<&str>,
        key: Option<&str>,
    ) -> Error {
        self.scope.wrap(op, error::at(e, bucket, key))
    }

    /// An error the hook raises itself, of operation `op` on `bucket`/`key`.
    pub(crate) fn fail(
        &self,
        kind: ErrorKind,
        op: &str,
        message: impl Into<String>,
        bucket: Option<&str>,
        key: Option<&str>,
    ) -> Error {
        self.wrap(op, Error::new(kind, "", message), bucket, key)
    }

    /// An SDK error of operation `op`: classified (s3/error.rs), marked
    /// exhausted when the SDK retried it, then [`wrap`](Self::wrap)ped.
    pub(crate) fn sdk_error<E>(
        &self,
        operation: &'static str,
        bucket: Option<&str>,
        key: Option<&str>,
        e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Error
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let endpoint = self.endpoint.as_deref().and_then(error::host_port);
        // What the SDK's standard policy retries: service errors (5xx,
        // throttling) and failures to reach the endpoint. Gave up on those, it
        // says so, so a task's retries do not multiply its attempts.
        let max_attempts = self.max_attempts();
        let sdk_retried = max_attempts > 1
            && matches!(
                e,
                aws_sdk_s3::error::SdkError::ServiceError(_)
                    | aws_sdk_s3::error::SdkError::DispatchFailure(_)
            );
        let mut err = error::into_error(e, endpoint.as_deref());
        if sdk_retried && err.is_retryable() {
            err = err.exhausted().with("max_attempts", max_attempts);
        }
        self.wrap(operation, err, bucket, key)
    }
}
