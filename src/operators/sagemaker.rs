//! SageMaker operators with Airflow's names, configs and XCom (feature
//! `sagemaker`): [`SageMakerTraining`], [`SageMakerModel`],
//! [`SageMakerEndpointConfig`], [`SageMakerEndpoint`], [`SageMakerTransform`],
//! [`SageMakerProcessing`].
//!
//! Each takes Airflow's `config`: the request of the SageMaker API as JSON
//! (paste it from a DAG with [`from_json`](SageMakerTraining::from_json)). The
//! whole config is templated: every string in it is rendered with the run's
//! variables (`{{ ds }}`, `{{ logical_date.strftime(…) }}`, `{{ params.… }}`),
//! then the integer fields Airflow lists for the operator
//! (`ResourceConfig.InstanceCount`…) are cast back to integers, so
//! `"InstanceCount": "{{ params.instances }}"` works as it does in Airflow.
//!
//! What gust does where Airflow's operators are known to fail:
//!
//! * **Names are checked after rendering**, before any call: at most 63
//!   letters, digits and hyphens, starting and ending with a letter or digit
//!   (`{{ ts }}`, with its `:` and `+`, is refused; `ts_nodash` is fine).
//! * **No duplicate jobs.** A job started by a task is tagged
//!   `gust:task-instance = <dag_id>.<task_id>.<run_id>`. When that task
//!   instance finds its job still running, or completed on a retry (try 2
//!   and later: after a crash, a timeout of the worker…), it attaches to it
//!   instead of starting another. A name taken by anything else (a failed
//!   job, another run's, or this run's completed job on a first try, when a
//!   run is started again) gets a `-<unix time>` suffix
//!   (`action_if_job_exists = timestamp`, the default) or fails (`fail`).
//! * **Remote work is stopped**: `on_kill` (after `execution_timeout`) and
//!   `max_ingestion_time` stop the job this task started.
//! * **Terminal states are deliberate**: `Stopped` fails unless
//!   `allow_stopped(true)`; see [`SageMakerHook::wait_for_job`].
//! * **XCom** is Airflow's shape — `{"Training": describe}`, `{"Model": …}`,
//!   `{"EndpointConfig": …, "Endpoint": …}`, `{"Transform": …, "Model": …}`,
//!   `{"Processing": …}` — with datetimes as ISO-8601 strings (Airflow writes
//!   Python `repr`s). The final job name and
//!   `Training.ModelArtifacts.S3ModelArtifacts` are there, so a downstream
//!   model takes the artifact of the job that really ran, renamed or not.
//!
//! Where gust differs from Airflow's operators on purpose:
//!
//! * `S3Operations` and bare role names (`expand_role`) are refused with a
//!   way out: upload upstream, give the role's ARN.
//! * A transform's or endpoint's model that exists already is reused when
//!   identical (a retry) and an [`AlreadyExists`](ErrorKind::AlreadyExists)
//!   error otherwise; Airflow's transform renames it with a timestamp
//!   (`action_if_model_exists`), which gust does not do.
//! * The transform's input is not checked on S3 before the job (the
//!   training's is).
//! * XCom holds the describe without boto3's `ResponseMetadata`.
//!
//! ```no_run
//! # fn f() -> gust::Result<()> {
//! use gust::operators::sagemaker::SageMakerTraining;
//! use gust::Task;
//!
//! let train = SageMakerTraining::from_json(r#"{
//!     "TrainingJobName": "mnistclassifier-{{ logical_date.strftime('%Y-%m-%d-%H-%M-%S') }}",
//!     "AlgorithmSpecification": {"TrainingImage": "438346466558.dkr.ecr.eu-west-1.amazonaws.com/kmeans:1",
//!                                "TrainingInputMode": "File"},
//!     "HyperParameters": {"k": "10", "feature_dim": "784"},
//!     "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
//!         "S3DataType": "S3Prefix", "S3Uri": "s3://my-bucket/mnist_data",
//!         "S3DataDistributionType": "FullyReplicated"}}}],
//!     "OutputDataConfig": {"S3OutputPath": "s3://my-bucket/mnistclassifier-output"},
//!     "ResourceConfig": {"InstanceType": "ml.c4.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
//!     "RoleArn": "arn:aws:iam::123456789012:role/sagemaker",
//!     "StoppingCondition": {"MaxRuntimeInSeconds": 86400}
//! }"#)?
//! .print_log(true)
//! .check_interval(std::time::Duration::from_secs(10));
//! let task = Task::new("sagemaker_train_model", train);
//! # let _ = task; Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::object_store::{ObjectStore, parse_s3_url};
use crate::hooks::s3::S3Hook;
use crate::hooks::sagemaker::{Job, SageMakerHook, WaitOptions};
use crate::task::Operator;

/// The conn id the operators use unless `aws_conn_id` says otherwise, as in Airflow.
const DEFAULT_CONN_ID: &str = "aws_default";

/// The tag that marks a job as started by one task instance.
pub const TASK_INSTANCE_TAG: &str = "gust:task-instance";

/// Airflow's `action_if_job_exists`: what a job name taken by another job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActionIfJobExists {
    /// Appends `-<unix time>` to the name (truncated to fit 63 characters).
    #[default]
    Timestamp,
    /// Fails with [`AlreadyExists`](ErrorKind::AlreadyExists).
    Fail,
}

/// How a config came in: parsed, or text that was not JSON (reported when the
/// task runs, like any other bad input).
#[derive(Debug, Clone)]
struct Config(std::result::Result<Value, String>);

impl Config {
    fn parse(text: &str) -> Self {
        Config(serde_json::from_str::<Value>(text).map_err(|e| e.to_string()))
    }
}

/// What every SageMaker operator has: the config, where the hook comes from,
/// and how it waits.
#[derive(Debug, Clone)]
struct Base {
    config: Config,
    aws_conn_id: String,
    hook: Option<SageMakerHook>,
    wait_for_completion: bool,
    check_interval: Duration,
    max_ingestion_time: Option<Duration>,
}

impl Base {
    fn new(config: Config) -> Self {
        Base {
            config,
            aws_conn_id: DEFAULT_CONN_ID.to_string(),
            hook: None,
            wait_for_completion: true,
            check_interval: Duration::from_secs(30),
            max_ingestion_time: None,
        }
    }

    async fn hook(&self, ctx: &Context) -> Result<SageMakerHook> {
        match &self.hook {
            Some(h) => Ok(h.clone()),
            None => SageMakerHook::from_connection(&ctx.connection(&self.aws_conn_id)?).await,
        }
    }

    /// The config rendered, its `integer_fields` cast back to integers.
    fn render(&self, ctx: &Context, op: &'static str, integer_fields: &[&[&str]]) -> Result<Value> {
        let config = self.config.0.clone().map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                op,
                format!("the config is not JSON: {e}"),
            )
            .with("task_id", ctx.task_id())
        })?;
        let mut rendered = render_value(ctx, config)?;
        for path in integer_fields {
            cast_integers(&mut rendered, path, &mut Vec::new()).map_err(|e| {
                Error::new(ErrorKind::InvalidInput, op, e).with("task_id", ctx.task_id())
            })?;
        }
        check_airflow_only(&rendered).map_err(|e| {
            Error::new(ErrorKind::InvalidInput, op, e).with("task_id", ctx.task_id())
        })?;
        Ok(rendered)
    }

    fn wait_options(&self) -> WaitOptions {
        WaitOptions::new()
            .check_interval(self.check_interval)
            .max_ingestion_time(self.max_ingestion_time)
    }
}

/// The builder methods every operator shares.
macro_rules! base_builders {
    ($ty:ident) => {
        impl $ty {
            /// The `aws` connection of the hook (default `aws_default`).
            pub fn aws_conn_id(mut self, conn_id: impl Into<String>) -> Self {
                self.base.aws_conn_id = conn_id.into();
                self
            }

            /// Uses `hook` instead of one built from `aws_conn_id` (a hook
            /// over a scripted [`SageMakerApi`](crate::hooks::sagemaker::SageMakerApi) in tests).
            pub fn with_hook(mut self, hook: SageMakerHook) -> Self {
                self.base.hook = Some(hook);
                self
            }

            /// Whether `execute` waits for the work to finish (default `true`).
            pub fn wait_for_completion(mut self, wait: bool) -> Self {
                self.base.wait_for_completion = wait;
                self
            }

            /// The pause between status polls (default 30 s).
            pub fn check_interval(mut self, every: Duration) -> Self {
                self.base.check_interval = every;
                self
            }

            /// The longest wait; past it a job is stopped and the task fails
            /// (default: none, except 10 h for an endpoint).
            pub fn max_ingestion_time(mut self, limit: Duration) -> Self {
                self.base.max_ingestion_time = Some(limit);
                self
            }

            /// The operator with an Airflow config pasted as JSON text. Text
            /// that is not JSON fails the task with
            /// [`InvalidInput`](ErrorKind::InvalidInput), saying where.
            pub fn from_json(config: &str) -> Result<Self> {
                let parsed = Config::parse(config);
                if let Err(e) = &parsed.0 {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        concat!("sagemaker.", stringify!($ty)),
                        format!("the config is not JSON: {e}"),
                    ));
                }
                Ok(Self::with_config(parsed))
            }

            /// The operator with `config`, the API request as JSON.
            pub fn new(config: Value) -> Self {
                Self::with_config(Config(Ok(config)))
            }
        }
    };
}

/// What the job operators (training, processing, transform) share: how a
/// taken name is handled, whether `Stopped` counts as done, and the job this
/// task started (for `on_kill`).
#[derive(Debug, Default)]
struct JobOptions {
    skip_name_check: bool,
    action_if_job_exists: ActionIfJobExists,
    allow_stopped: bool,
    /// Task instance (`dag.task.run`) → the job its try started: one operator
    /// may run in several DAG runs at once.
    started: Mutex<HashMap<String, String>>,
}

impl JobOptions {
    fn record(&self, ctx: &Context, job: &str) {
        if let Ok(mut m) = self.started.lock() {
            m.insert(task_instance(ctx), job.to_string());
        }
    }

    fn take(&self, ctx: &Context) -> Option<String> {
        self.started.lock().ok()?.remove(&task_instance(ctx))
    }
}

/// The builder methods of the job operators.
macro_rules! job_builders {
    ($ty:ident) => {
        impl $ty {
            /// Whether a taken name is looked for before creating (default `true`).
            pub fn check_if_job_exists(mut self, check: bool) -> Self {
                self.job.skip_name_check = !check;
                self
            }

            /// What a name taken by another job does (default: a timestamp suffix).
            pub fn action_if_job_exists(mut self, action: ActionIfJobExists) -> Self {
                self.job.action_if_job_exists = action;
                self
            }

            /// Counts a job that ended `Stopped` as done (default: it fails the task).
            pub fn allow_stopped(mut self, allow: bool) -> Self {
                self.job.allow_stopped = allow;
                self
            }
        }
    };
}

// ---------------------------------------------------------------------------
// Rendering, integer fields, names, XCom
// ---------------------------------------------------------------------------

/// Every string of `v` rendered as an inline template (keys are not).
fn render_value(ctx: &Context, v: Value) -> Result<Value> {
    Ok(match v {
        Value::String(s) if s.contains("{{") || s.contains("{%") => {
            Value::String(ctx.render_inline(&s)?)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| render_value(ctx, i))
                .collect::<Result<_>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| Ok((k, render_value(ctx, v)?)))
                .collect::<Result<Map<_, _>>>()?,
        ),
        other => other,
    })
}

/// Airflow's `parse_integer`: the value at `path` (through every list on the
/// way) cast to an integer when it is a string; a missing key is skipped.
fn cast_integers(
    v: &mut Value,
    path: &[&str],
    at: &mut Vec<String>,
) -> std::result::Result<(), String> {
    if let Value::Array(items) = v {
        for (i, item) in items.iter_mut().enumerate() {
            at.push(i.to_string());
            cast_integers(item, path, at)?;
            at.pop();
        }
        return Ok(());
    }
    let Some((first, rest)) = path.split_first() else {
        if let Value::String(s) = v {
            let n: i64 = s
                .trim()
                .parse()
                .map_err(|_| format!("config field {} is `{s}`, not an integer", at.join(".")))?;
            *v = json!(n);
        }
        return Ok(());
    };
    if let Some(next) = v.get_mut(*first) {
        at.push((*first).to_string());
        cast_integers(next, rest, at)?;
        at.pop();
    }
    Ok(())
}

/// What Airflow's `preprocess_config` does beyond the API, refused with a
/// way out instead of sent to SageMaker as an unknown member: `S3Operations`
/// (bucket creation and uploads before the job) and bare role names
/// (`expand_role` looks them up in IAM).
fn check_airflow_only(config: &Value) -> std::result::Result<(), String> {
    if config.get("S3Operations").is_some() {
        return Err(
            "S3Operations is Airflow's, not SageMaker's: create buckets and upload \
                    with S3CreateBucket / S3CreateObject (or a task) upstream"
                .into(),
        );
    }
    let roles = [
        &config["RoleArn"],
        &config["ExecutionRoleArn"],
        &config["Model"]["ExecutionRoleArn"],
    ];
    for role in roles.into_iter().filter_map(Value::as_str) {
        if !role.starts_with("arn:") {
            return Err(format!(
                "role `{role}` is a name, not an ARN: gust does not look roles up in IAM \
                 (Airflow's expand_role); give arn:aws:iam::<account>:role/{role}"
            ));
        }
    }
    Ok(())
}

/// SageMaker's name rule (`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`): 1 to 63
/// letters, digits and hyphens, starting and ending with a letter or digit.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > 63 {
        return Err(format!(
            "is {} characters long; SageMaker allows 63",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(format!(
            "has `{c}`; SageMaker allows letters, digits and hyphens only"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("starts or ends with a hyphen".into());
    }
    Ok(())
}

/// The string member `key` of `config`, checked as a SageMaker name.
fn name_of(config: &Value, key: &str, op: &'static str, ctx: &Context) -> Result<String> {
    let name = config[key].as_str().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            op,
            format!("the config has no {key}"),
        )
        .with("task_id", ctx.task_id())
    })?;
    check_name(name).map_err(|why| {
        Error::new(ErrorKind::InvalidInput, op, format!("{key} `{name}` {why}"))
            .with("task_id", ctx.task_id())
    })?;
    Ok(name.to_string())
}

/// `v` with every timestamp member (`…Time`, `Timestamp`: epoch seconds in
/// SageMaker's JSON protocol) as an ISO-8601 UTC string.
pub fn iso_datetimes(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let v = match (&v, k.ends_with("Time") || k == "Timestamp") {
                        (Value::Number(n), true) => n
                            .as_f64()
                            .and_then(|secs| {
                                chrono::DateTime::from_timestamp_millis(
                                    (secs * 1000.0).round() as i64
                                )
                            })
                            .map(|d| json!(d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
                            .unwrap_or(v),
                        _ => iso_datetimes(v),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(iso_datetimes).collect()),
        other => other,
    }
}

/// The tag value naming the task instance `ctx` runs (SageMaker allows 256
/// characters of `[\p{L}\p{Z}\p{N}_.:/=+\-@]`).
fn task_instance(ctx: &Context) -> String {
    let raw = format!("{}.{}.{}", ctx.dag_id(), ctx.task_id(), ctx.run_id());
    raw.chars()
        .map(|c| {
            if c.is_alphanumeric() || " _.:/=+-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect()
}

/// `name` shortened to leave room for `-<secs>`, as Airflow's `_get_unique_name`.
fn timestamped(name: &str, secs: u64) -> String {
    let suffix = format!("-{secs}");
    let keep = 63usize.saturating_sub(suffix.len());
    let base: String = name.chars().take(keep).collect();
    format!("{}{suffix}", base.trim_end_matches('-'))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What to do about a job's name: start it under `name`, or attach to the
/// job of that name this task instance started before.
enum Launch {
    Start(String),
    Attach(String),
}

/// Whether this task instance may attach to its own job of `status`: a
/// running one always (never two at once); a completed one on a retry (try 2
/// and later), as the result that try was after. A first try of the same run
/// id (the run started again) means "train again"; a stopping or stopped job
/// (stopped by `on_kill` or `max_ingestion_time`) is not waited for again.
fn reusable(status: &str, ctx: &Context) -> bool {
    status == "InProgress" || (status == "Completed" && ctx.try_number() > 1)
}

/// Whether the job `desc` of `kind` carries this task instance's tag.
async fn is_ours(hook: &SageMakerHook, kind: Job, desc: &Value, ctx: &Context) -> Result<bool> {
    let Some(arn) = SageMakerHook::job_arn(kind, desc) else {
        return Ok(false);
    };
    let me = task_instance(ctx);
    Ok(hook
        .list_tags(arn)
        .await?
        .iter()
        .any(|(k, v)| k == TASK_INSTANCE_TAG && *v == me))
}

/// This task instance's newest job among those named `proposed` or
/// `proposed` with a timestamp suffix, if one may be attached to.
async fn own_job(
    hook: &SageMakerHook,
    kind: Job,
    proposed: &str,
    ctx: &Context,
) -> Result<Option<String>> {
    // A timestamped name keeps the first 52 characters of the proposed one.
    let stem: String = proposed.chars().take(52).collect();
    for summary in hook.list_jobs(kind, Some(&stem)).await? {
        let (Some(name), Some(status)) = (
            summary[kind.name_key()].as_str(),
            summary[kind.status_key()].as_str(),
        ) else {
            continue;
        };
        let renamed = name
            .strip_prefix(stem.trim_end_matches('-'))
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|secs| !secs.is_empty() && secs.chars().all(|c| c.is_ascii_digit()));
        if name != proposed && !renamed {
            continue;
        }
        if reusable(status, ctx) && is_ours(hook, kind, &summary, ctx).await? {
            return Ok(Some(name.to_string()));
        }
    }
    Ok(None)
}

/// Finds the name to start a `kind` job under, or the job to attach to.
async fn resolve_job(
    hook: &SageMakerHook,
    kind: Job,
    proposed: &str,
    action: ActionIfJobExists,
    ctx: &Context,
) -> Result<Launch> {
    let Some(existing) = hook.find_job(kind, proposed).await? else {
        return Ok(Launch::Start(proposed.to_string()));
    };
    // The name is taken: by this task instance's job (a retry, perhaps of a
    // try that had renamed its job), or by another's.
    if let Some(mine) = own_job(hook, kind, proposed, ctx).await? {
        tracing::info!(job = %mine, "attaching to the job this task instance started before");
        return Ok(Launch::Attach(mine));
    }
    let status = existing[kind.status_key()].as_str().unwrap_or("");
    if action == ActionIfJobExists::Fail {
        return Err(hook
            .error(
                ErrorKind::AlreadyExists,
                &format!("Create{}Job", kind.as_str()),
                format!(
                    "a {} job named `{proposed}` exists already ({status})",
                    kind.as_str()
                ),
            )
            .with("job", proposed));
    }
    let mut secs = unix_now();
    loop {
        let name = timestamped(proposed, secs);
        if hook.find_job(kind, &name).await?.is_none() {
            tracing::info!(proposed, job = %name, "job name taken; using a timestamped name");
            return Ok(Launch::Start(name));
        }
        secs += 1;
    }
}

/// `config` with `TASK_INSTANCE_TAG` added to its `Tags` (which must be a list).
fn tagged(mut config: Value, ctx: &Context, op: &'static str) -> Result<Value> {
    let tag = json!({"Key": TASK_INSTANCE_TAG, "Value": task_instance(ctx)});
    match config.get_mut("Tags") {
        None | Some(Value::Null) => config["Tags"] = json!([tag]),
        Some(Value::Array(tags)) => {
            tags.retain(|t| t["Key"] != TASK_INSTANCE_TAG);
            tags.push(tag);
        }
        Some(other) => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                op,
                format!("the config's Tags is {other}, not a list of {{\"Key\", \"Value\"}}"),
            )
            .with("task_id", ctx.task_id()));
        }
    }
    Ok(config)
}

/// Starts (or attaches to) the `kind` job of `config`, then waits if asked;
/// its description. The job is recorded in `job.started` for `on_kill`
/// before it is created, so a task cancelled mid-create still stops it.
async fn run_job(
    hook: &SageMakerHook,
    kind: Job,
    mut config: Value,
    job: &JobOptions,
    wait: Option<WaitOptions>,
    ctx: &Context,
    op: &'static str,
) -> Result<Value> {
    let proposed = name_of(&config, kind.name_key(), op, ctx)?;
    let launch = if !job.skip_name_check {
        resolve_job(hook, kind, &proposed, job.action_if_job_exists, ctx).await?
    } else {
        Launch::Start(proposed)
    };
    let name = match launch {
        Launch::Attach(name) => {
            job.record(ctx, &name);
            name
        }
        Launch::Start(name) => {
            config[kind.name_key()] = json!(name);
            let request = tagged(config, ctx, op)?;
            job.record(ctx, &name);
            match hook.create_job(kind, &request).await {
                Ok(_) => tracing::info!(job = %name, kind = kind.as_str(), "sagemaker job started"),
                // A create retried after a lost response finds its own job.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let desc = hook.describe_job(kind, &name).await?;
                    if !is_ours(hook, kind, &desc, ctx).await? {
                        return Err(e);
                    }
                    tracing::info!(job = %name, "the job was created by an earlier attempt; attaching");
                }
                Err(e) => return Err(e),
            }
            name
        }
    };
    match wait {
        Some(opts) => {
            hook.wait_for_job(kind, &name, &opts.allow_stopped(job.allow_stopped))
                .await
        }
        None => hook.describe_job(kind, &name).await,
    }
}

/// Stops the job this task instance started, for `on_kill`.
async fn stop_started(hook: Result<SageMakerHook>, kind: Job, job: &JobOptions, ctx: &Context) {
    let Some(name) = job.take(ctx) else { return };
    match hook {
        Ok(h) => {
            if let Err(e) = h.stop_job(kind, &name).await {
                tracing::error!(job = %name, error = %e, "on_kill could not stop the sagemaker job");
            }
        }
        Err(e) => tracing::error!(job = %name, error = %e, "on_kill has no sagemaker hook"),
    }
}

/// Airflow's `check_training_config`: every S3 input of `channels` exists, as
/// an object or a prefix, before the job is created.
async fn check_s3_inputs(store: &dyn ObjectStore, uris: &[String], op: &'static str) -> Result<()> {
    use futures::StreamExt;
    for uri in uris {
        let (bucket, key) = parse_s3_url(uri)?;
        let object = store
            .exists(&bucket, &key)
            .await
            .map_err(|e| e.with_operation(op))?;
        if object {
            continue;
        }
        // Airflow's check_for_prefix(delimiter="/"): `mnist_data` is a
        // "folder" only when `mnist_data/…` exists, not `mnist_data_old/…`.
        let folder = if key.ends_with('/') {
            key.clone()
        } else {
            format!("{key}/")
        };
        let opts = crate::hooks::object_store::ListOptions::new()
            .prefix(folder)
            .page_size(1);
        let first = store.list(&bucket, opts).next().await;
        match first {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.with_operation(op)),
            None => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    op,
                    format!("the input {uri} does not exist (no object, no prefix)"),
                )
                .with("bucket", bucket)
                .with("key", key));
            }
        }
    }
    Ok(())
}

/// The `S3Uri`s of a training config's input channels.
fn training_inputs(config: &Value) -> Vec<String> {
    config["InputDataConfig"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            c["DataSource"]["S3DataSource"]["S3Uri"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// SageMakerTraining
// ---------------------------------------------------------------------------

/// Airflow's `SageMakerTrainingOperator`: starts a training job from a
/// `CreateTrainingJob` config and waits for it. XCom: `{"Training": describe}`.
///
/// Defaults are Airflow's: wait, `print_log`, a poll every 30 s, no
/// `max_ingestion_time`, `check_if_job_exists`, `action_if_job_exists =
/// timestamp`; and gust's: the S3 inputs are checked first (through an
/// `S3Hook` of the same connection, or [`with_store`](Self::with_store)),
/// `Stopped` fails. Integer fields: `ResourceConfig.InstanceCount`,
/// `ResourceConfig.VolumeSizeInGB`, `StoppingCondition.MaxRuntimeInSeconds`.
#[derive(Debug)]
pub struct SageMakerTraining {
    base: Base,
    job: JobOptions,
    print_log: bool,
    check_inputs: bool,
    store: Option<Arc<dyn ObjectStore>>,
}

const TRAINING_INTEGERS: &[&[&str]] = &[
    &["ResourceConfig", "InstanceCount"],
    &["ResourceConfig", "VolumeSizeInGB"],
    &["StoppingCondition", "MaxRuntimeInSeconds"],
];

base_builders!(SageMakerTraining);
job_builders!(SageMakerTraining);

impl SageMakerTraining {
    fn with_config(config: Config) -> Self {
        SageMakerTraining {
            base: Base::new(config),
            job: JobOptions::default(),
            print_log: true,
            check_inputs: true,
            store: None,
        }
    }

    /// Reads the job's CloudWatch logs while waiting (default `true`).
    pub fn print_log(mut self, on: bool) -> Self {
        self.print_log = on;
        self
    }

    /// Whether the S3 inputs are checked before the job is created (default `true`).
    pub fn check_inputs(mut self, check: bool) -> Self {
        self.check_inputs = check;
        self
    }

    /// Checks the S3 inputs on `store` instead of an `S3Hook` of `aws_conn_id`.
    pub fn with_store(mut self, store: Arc<dyn ObjectStore>) -> Self {
        self.store = Some(store);
        self
    }
}

#[async_trait]
impl Operator for SageMakerTraining {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        const OP: &str = "sagemaker.SageMakerTraining";
        let config = self.base.render(ctx, OP, TRAINING_INTEGERS)?;
        name_of(&config, "TrainingJobName", OP, ctx)?;
        let hook = self.base.hook(ctx).await?;
        if self.check_inputs {
            let inputs = training_inputs(&config);
            if !inputs.is_empty() {
                let store: Arc<dyn ObjectStore> = match &self.store {
                    Some(s) => s.clone(),
                    None => Arc::new(
                        S3Hook::from_connection(&ctx.connection(&self.base.aws_conn_id)?).await?,
                    ),
                };
                check_s3_inputs(store.as_ref(), &inputs, OP).await?;
            }
        }
        let wait = self
            .base
            .wait_for_completion
            .then(|| self.base.wait_options().print_log(self.print_log));
        let desc = run_job(&hook, Job::Training, config, &self.job, wait, ctx, OP).await?;
        Ok(json!({ "Training": iso_datetimes(desc) }))
    }

    async fn on_kill(&self, ctx: &Context) {
        stop_started(self.base.hook(ctx).await, Job::Training, &self.job, ctx).await;
    }
}

// ---------------------------------------------------------------------------
// SageMakerProcessing
// ---------------------------------------------------------------------------

/// Airflow's `SageMakerProcessingOperator`: a processing job from a
/// `CreateProcessingJob` config. XCom: `{"Processing": describe}`. Names
/// are checked (`action_if_job_exists`, default `timestamp`), as in Airflow. Integer fields: `ProcessingResources.ClusterConfig.InstanceCount`,
/// `ProcessingResources.ClusterConfig.VolumeSizeInGB`,
/// `StoppingCondition.MaxRuntimeInSeconds`.
#[derive(Debug)]
pub struct SageMakerProcessing {
    base: Base,
    job: JobOptions,
}

const PROCESSING_INTEGERS: &[&[&str]] = &[
    &["ProcessingResources", "ClusterConfig", "InstanceCount"],
    &["ProcessingResources", "ClusterConfig", "VolumeSizeInGB"],
    &["StoppingCondition", "MaxRuntimeInSeconds"],
];

base_builders!(SageMakerProcessing);
job_builders!(SageMakerProcessing);

impl SageMakerProcessing {
    fn with_config(config: Config) -> Self {
        SageMakerProcessing {
            base: Base::new(config),
            job: JobOptions::default(),
        }
    }
}

#[async_trait]
impl Operator for SageMakerProcessing {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        const OP: &str = "sagemaker.SageMakerProcessing";
        let config = self.base.render(ctx, OP, PROCESSING_INTEGERS)?;
        name_of(&config, "ProcessingJobName", OP, ctx)?;
        let hook = self.base.hook(ctx).await?;
        let wait = self
            .base
            .wait_for_completion
            .then(|| self.base.wait_options());
        let desc = run_job(&hook, Job::Processing, config, &self.job, wait, ctx, OP).await?;
        Ok(json!({ "Processing": iso_datetimes(desc) }))
    }

    async fn on_kill(&self, ctx: &Context) {
        stop_started(self.base.hook(ctx).await, Job::Processing, &self.job, ctx).await;
    }
}

// ---------------------------------------------------------------------------
// Models and endpoint configs: created once, a retry finds them
// ---------------------------------------------------------------------------

/// Creates the model of `config` (`CreateModel`). A model of that name that
/// exists already is reused when it has the same containers and role (a
/// retry), and is an [`AlreadyExists`](ErrorKind::AlreadyExists) error
/// otherwise; its description.
async fn ensure_model(
    hook: &SageMakerHook,
    config: &Value,
    ctx: &Context,
    op: &'static str,
) -> Result<Value> {
    let name = name_of(config, "ModelName", op, ctx)?;
    match hook.create_model(config).await {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let existing = hook.describe_model(&name).await?;
            let same = ["PrimaryContainer", "Containers", "ExecutionRoleArn"]
                .iter()
                .all(|k| config.get(*k).is_none() || same_json(&config[*k], &existing[*k]));
            if !same {
                return Err(e.map_message(|m| {
                    format!("{m} (with other containers or role; give the model a new name)")
                }));
            }
            tracing::info!(model = %name, "model exists already with this config; reused");
        }
        Err(e) => return Err(e),
    }
    hook.describe_model(&name).await
}

/// Creates the endpoint config of `config`, reusing an identical one (a retry).
async fn ensure_endpoint_config(
    hook: &SageMakerHook,
    config: &Value,
    ctx: &Context,
    op: &'static str,
) -> Result<Value> {
    let name = name_of(config, "EndpointConfigName", op, ctx)?;
    match hook.create_endpoint_config(config).await {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let existing = hook.describe_endpoint_config(&name).await?;
            if !same_json(
                &config["ProductionVariants"],
                &existing["ProductionVariants"],
            ) {
                return Err(e.map_message(|m| {
                    format!("{m} (with other production variants; give the config a new name)")
                }));
            }
            tracing::info!(endpoint_config = %name, "endpoint config exists already with this config; reused");
        }
        Err(e) => return Err(e),
    }
    hook.describe_endpoint_config(&name).await
}

/// Whether every member `want` sets is the same in `have` (which SageMaker
/// fills with defaults of its own).
fn same_json(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| same_json(v, hv))),
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| same_json(a, b))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

/// Airflow's `SageMakerModelOperator`: a model from a `CreateModel` config.
/// XCom: `{"Model": describe}`. A retry finds the model it created (same
/// containers and role) instead of failing on the name.
#[derive(Debug)]
pub struct SageMakerModel {
    base: Base,
}

base_builders!(SageMakerModel);

impl SageMakerModel {
    fn with_config(config: Config) -> Self {
        SageMakerModel {
            base: Base::new(config),
        }
    }
}

#[async_trait]
impl Operator for SageMakerModel {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        const OP: &str = "sagemaker.SageMakerModel";
        let config = self.base.render(ctx, OP, &[])?;
        name_of(&config, "ModelName", OP, ctx)?;
        let hook = self.base.hook(ctx).await?;
        let desc = ensure_model(&hook, &config, ctx, OP).await?;
        Ok(json!({ "Model": iso_datetimes(desc) }))
    }
}

/// Airflow's `SageMakerEndpointConfigOperator`: an endpoint config from a
/// `CreateEndpointConfig` config. XCom: `{"EndpointConfig": describe}`.
/// Integer fields: `ProductionVariants.InitialInstanceCount`.
#[derive(Debug)]
pub struct SageMakerEndpointConfig {
    base: Base,
}

base_builders!(SageMakerEndpointConfig);

impl SageMakerEndpointConfig {
    fn with_config(config: Config) -> Self {
        SageMakerEndpointConfig {
            base: Base::new(config),
        }
    }
}

#[async_trait]
impl Operator for SageMakerEndpointConfig {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        const OP: &str = "sagemaker.SageMakerEndpointConfig";
        let config =
            self.base
                .render(ctx, OP, &[&["ProductionVariants", "InitialInstanceCount"]])?;
        name_of(&config, "EndpointConfigName", OP, ctx)?;
        let hook = self.base.hook(ctx).await?;
        let desc = ensure_endpoint_config(&hook, &config, ctx, OP).await?;
        Ok(json!({ "EndpointConfig": iso_datetimes(desc) }))
    }
}

// ---------------------------------------------------------------------------
// SageMakerEndpoint
// ---------------------------------------------------------------------------

/// Airflow's `operation`: whether [`SageMakerEndpoint`] creates or updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointOperation {
    /// `CreateEndpoint`, or `UpdateEndpoint` when the endpoint exists (the default).
    #[default]
    Create,
    /// `UpdateEndpoint`: the endpoint must exist.
    Update,
}

/// Airflow's `SageMakerEndpointOperator`: deploys an endpoint. The config is
/// a `CreateEndpoint` request, or `{"Model": …, "EndpointConfig": …,
/// "Endpoint": …}` whose model and endpoint config are created first (reused
/// on a retry). An endpoint that exists is updated to the new config, its
/// `Tags` dropped with a warning (an update cannot change them). Waits for
/// `InService` (10 h at most by default). XCom: `{"EndpointConfig":
/// describe, "Endpoint": describe}`. Integer fields:
/// `EndpointConfig.ProductionVariants.InitialInstanceCount`.
#[derive(Debug)]
pub struct SageMakerEndpoint {
    base: Base,
    operation: EndpointOperation,
}

base_builders!(SageMakerEndpoint);

impl SageMakerEndpoint {
    fn with_config(config: Config) -> Self {
        let mut base = Base::new(config);
        base.max_ingestion_time = Some(Duration::from_secs(36_000));
        SageMakerEndpoint {
            base,
            operation: EndpointOperation::Create,
        }
    }

    /// Create (falling back to update) or update (default: create).
    pub fn operation(mut self, operation: EndpointOperation) -> Self {
        self.operation = operation;
        self
    }
}

#[async_trait]
impl Operator for SageMakerEndpoint {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        const OP: &str = "sagemaker.SageMakerEndpoint";
        let config = self.base.render(
            ctx,
            OP,
            &[&[
                "EndpointConfig",
                "ProductionVariants",
                "InitialInstanceCount",
            ]],
        )?;
        let endpoint = config
            .get("Endpoint")
            .cloned()
            .unwrap_or_else(|| config.clone());
        let name = name_of(&endpoint, "EndpointName", OP, ctx)?;
        name_of(&endpoint, "EndpointConfigName", OP, ctx)?;
        let hook = self.base.hook(ctx).await?;
        if let Some(model) = config.get("Model") {
            ensure_model(&hook, model, ctx, OP).await?;
        }
        if let Some(epc) = config.get("EndpointConfig") {
            ensure_endpoint_config(&hook, epc, ctx, OP).await?;
        }
        let update = |mut endpoint: Value| {
            let hook = hook.clone();
            async move {
                if let Some(m) = endpoint.as_object_mut()
                    && m.remove("Tags").is_some()
                {
                    tracing::warn!(
                        "the endpoint exists: updating it, without its Tags (an update cannot change them)"
                    );
                }
                hook.update_endpoint(&endpoint).await
            }
        };
        match self.operation {
            EndpointOperation::Update => {
                update(endpoint.clone()).await?;
            }
            EndpointOperation::Create => match hook.create_endpoint(&endpoint).await {
                Ok(_) => tracing::info!(endpoint = %name, "sagemaker endpoint creation started"),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    tracing::info!(endpoint = %name, "endpoint exists; updating it");
                    update(endpoint.clone()).await?;
                }
                Err(e) => return Err(e),
            },
        }
        let desc = if self.base.wait_for_completion {
            hook.wait_for_endpoint(&name, &self.base.wait_options())
                .await?
        } else {
            hook.describe_endpoint(&name).await?
        };
        let config_name = desc["EndpointConfigName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let epc = hook.describe_endpoint_config(&config_name).await?;
        Ok(json!({
            "EndpointConfig": iso_datetimes(epc),
            "Endpoint": iso_datetimes(desc),
        }))
    }
}

// ---------------------------------------------------------------------------
// SageMakerTransform
// ---------------------------------------------------------------------------

/// Airflow's `SageMakerTransformOperator`: a batch transform job. The config
/// is a `CreateTransformJob` request, or `{"Model": …, "Transform": …}` whose
/// model is created first (reused on a retry). XCom: `{"Model": describe,
/// "Transform": describe}`. Integer fields:
/// `Transform.TransformResources.InstanceCount`,
/// `Transform.MaxConcurrentTransforms`, `Transform.MaxPayloadInMB`.
#[derive(Debug)]
pub struct SageMakerTransform {
    base: Base,
    job: JobOptions,
}

base_builders!(SageMakerTransform);
job_builders!(SageMakerTransform);

impl SageMakerTransform {
    fn with_config(config: Config) -> Self {
        SageMakerTransform {
            base: Base::new(config),
            job: JobOptions::default(),
        }
    }
}

#[async_trait]
impl Operator for SageMakerTransform {
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        const OP: &str = "sagemaker.SageMakerTransform";
        let nested = matches!(&self.base.config.0, Ok(c) if c.get("Transform").is_some());
        let integers: &[&[&str]] = if nested {
            &[
                &["Transform", "TransformResources", "InstanceCount"],
                &["Transform", "MaxConcurrentTransforms"],
                &["Transform", "MaxPayloadInMB"],
            ]
        } else {
            &[
                &["TransformResources", "InstanceCount"],
                &["MaxConcurrentTransforms"],
                &["MaxPayloadInMB"],
            ]
        };
        let config = self.base.render(ctx, OP, integers)?;
        let transform = config
            .get("Transform")
            .cloned()
            .unwrap_or_else(|| config.clone());
        name_of(&transform, "TransformJobName", OP, ctx)?;
        let model_name = name_of(&transform, "ModelName", OP, ctx)?;
        let hook = self.base.hook(ctx).await?;
        if let Some(model) = config.get("Model") {
            ensure_model(&hook, model, ctx, OP).await?;
        }
        let wait = self
            .base
            .wait_for_completion
            .then(|| self.base.wait_options());
        let desc = run_job(&hook, Job::Transform, transform, &self.job, wait, ctx, OP).await?;
        let model = hook.describe_model(&model_name).await?;
        Ok(json!({ "Model": iso_datetimes(model), "Transform": iso_datetimes(desc) }))
    }

    async fn on_kill(&self, ctx: &Context) {
        stop_started(self.base.hook(ctx).await, Job::Transform, &self.job, ctx).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_sagemakers_rule() {
        assert!(check_name("mnistclassifier-2024-01-01-00-00-00").is_ok());
        assert!(check_name("a").is_ok());
        assert!(check_name(&"a".repeat(63)).is_ok());
        assert!(
            check_name(&"a".repeat(64))
                .unwrap_err()
                .contains("64 characters")
        );
        assert!(
            check_name("mnist-2024-01-01T00:00:00+00:00")
                .unwrap_err()
                .contains("`:`")
        );
        assert!(check_name("mnist_1").unwrap_err().contains("`_`"));
        assert!(check_name("-a").is_err());
        assert!(check_name("a-").is_err());
        assert!(check_name("").is_err());
    }

    #[test]
    fn integers_are_cast_through_lists() {
        let mut v = json!({
            "ProductionVariants": [{"InitialInstanceCount": "2"}, {"InitialInstanceCount": 3}, {}],
            "ResourceConfig": {"InstanceCount": " 1 "}
        });
        cast_integers(
            &mut v,
            &["ProductionVariants", "InitialInstanceCount"],
            &mut Vec::new(),
        )
        .unwrap();
        cast_integers(
            &mut v,
            &["ResourceConfig", "InstanceCount"],
            &mut Vec::new(),
        )
        .unwrap();
        cast_integers(&mut v, &["Missing", "Field"], &mut Vec::new()).unwrap();
        assert_eq!(v["ProductionVariants"][0]["InitialInstanceCount"], 2);
        assert_eq!(v["ProductionVariants"][1]["InitialInstanceCount"], 3);
        assert_eq!(v["ResourceConfig"]["InstanceCount"], 1);
        let mut bad = json!({"ProductionVariants": [{"InitialInstanceCount": "1.0"}]});
        let e = cast_integers(
            &mut bad,
            &["ProductionVariants", "InitialInstanceCount"],
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "config field ProductionVariants.0.InitialInstanceCount is `1.0`, not an integer"
        );
    }

    #[test]
    fn timestamps_become_iso_8601() {
        let v = iso_datetimes(json!({
            "CreationTime": 1_704_067_200.5,
            "SecondaryStatusTransitions": [{"StartTime": 1_704_067_200, "Status": "Starting"}],
            "MaxRuntimeInSeconds": 86400,
            "TrainingTimeInSeconds": 12,
            "FinalMetricDataList": [{"Timestamp": 1_704_067_201, "Value": 0.5}]
        }));
        assert_eq!(v["CreationTime"], "2024-01-01T00:00:00.500Z");
        assert_eq!(
            v["SecondaryStatusTransitions"][0]["StartTime"],
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(v["MaxRuntimeInSeconds"], 86400);
        assert_eq!(v["TrainingTimeInSeconds"], 12);
        assert_eq!(
            v["FinalMetricDataList"][0]["Timestamp"],
            "2024-01-01T00:00:01Z"
        );
    }

    #[test]
    fn timestamped_names_fit() {
        let long = "a".repeat(63);
        let t = timestamped(&long, 1_700_000_000);
        assert_eq!(t.len(), 63);
        assert!(t.ends_with("-1700000000"));
        assert!(check_name(&t).is_ok());
        assert_eq!(timestamped("train-iris", 5), "train-iris-5");
    }

    #[test]
    fn same_json_ignores_what_sagemaker_adds() {
        assert!(same_json(
            &json!({"Image": "i", "ModelDataUrl": "s3://b/k"}),
            &json!({"Image": "i", "ModelDataUrl": "s3://b/k", "Mode": "SingleModel"})
        ));
        assert!(!same_json(&json!({"Image": "i"}), &json!({"Image": "j"})));
        assert!(same_json(
            &json!([{"InitialInstanceCount": 1}]),
            &json!([{"InitialInstanceCount": 1.0}])
        ));
    }
}
