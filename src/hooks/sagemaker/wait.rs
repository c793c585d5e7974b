//! Waiting for a job or an endpoint: the poll loop and its terminal states.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::logs::Tail;
use super::{Job, SageMakerHook};
use crate::error::{ErrorKind, Result};

/// How [`SageMakerHook::wait_for_job`] and
/// [`wait_for_endpoint`](SageMakerHook::wait_for_endpoint) wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitOptions {
    check_interval: Duration,
    max_ingestion_time: Option<Duration>,
    allow_stopped: bool,
    print_log: bool,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            check_interval: Duration::from_secs(30),
            max_ingestion_time: None,
            allow_stopped: false,
            print_log: false,
        }
    }
}

impl WaitOptions {
    /// Airflow's defaults: a poll every 30 s, no time limit, `Stopped` fails,
    /// no logs.
    pub fn new() -> Self {
        Self::default()
    }

    /// The pause between two status polls (Airflow's `check_interval`).
    pub fn check_interval(mut self, every: Duration) -> Self {
        self.check_interval = every;
        self
    }

    /// Fails the wait once this long has passed since it began, after
    /// stopping the job (Airflow's `max_ingestion_time`, which leaves it
    /// running). `None`: no limit.
    pub fn max_ingestion_time(mut self, limit: Option<Duration>) -> Self {
        self.max_ingestion_time = limit;
        self
    }

    /// Counts a job that ended `Stopped` as done instead of failed.
    pub fn allow_stopped(mut self, allow: bool) -> Self {
        self.allow_stopped = allow;
        self
    }

    /// Reads a training job's CloudWatch logs while waiting (Airflow's
    /// `print_log`), as `tracing` events of target `gust::sagemaker::log`.
    pub fn print_log(mut self, on: bool) -> Self {
        self.print_log = on;
        self
    }

    /// The poll interval.
    pub fn interval(&self) -> Duration {
        self.check_interval
    }
}

/// Failed polls in a row before the wait gives up.
const MAX_FAILED_POLLS: u32 = 5;

/// The longest pause before the last read of a finished job's logs.
const LATE_LOGS: Duration = Duration::from_secs(5);

impl SageMakerHook {
    /// Polls job `name` of `kind` until it ends, every
    /// [`check_interval`](WaitOptions::check_interval): its last description
    /// when it `Completed` (or ended `Stopped` with
    /// [`allow_stopped`](WaitOptions::allow_stopped)).
    ///
    /// * `Failed` → a [`Remote`](ErrorKind::Remote) error with SageMaker's
    ///   `FailureReason`, retryable (a retry starts a new job);
    /// * `Stopped` → a [`Cancelled`](ErrorKind::Cancelled) error;
    /// * `max_ingestion_time` passed → the job is stopped, then a
    ///   [`Timeout`](ErrorKind::Timeout) error (naming the stop's own error,
    ///   `stop_error`, if stopping failed);
    /// * a poll that fails after the hook's retries is tried again at the
    ///   next interval; 5 in a row fail the wait;
    /// * any other status but `InProgress` / `Stopping` → a `Remote` error
    ///   naming it.
    ///
    /// Each new secondary status (`Starting`, `Downloading`, `Training`…) is
    /// an `info` event.
    pub async fn wait_for_job(&self, kind: Job, name: &str, opts: &WaitOptions) -> Result<Value> {
        let began = Instant::now();
        let mut tail = (opts.print_log && kind == Job::Training).then(|| Tail::new(name));
        let mut transitions_seen = 0;
        let op = format!("wait_for_{}_job", kind.as_str().to_ascii_lowercase());
        let mut failed_polls = 0;
        loop {
            // A poll that failed after the hook's retries is tried again at the
            // next interval, a few times: giving up leaves the job unwatched.
            let desc = match self.describe_job(kind, name).await {
                Ok(d) => {
                    failed_polls = 0;
                    d
                }
                Err(e) if e.is_retryable() || e.is_exhausted() => {
                    failed_polls += 1;
                    if failed_polls >= MAX_FAILED_POLLS {
                        return Err(e.with("failed_polls", failed_polls));
                    }
                    tracing::warn!(job = name, error = %e, failed_polls, "cannot poll the sagemaker job; trying again at the next interval");
                    tokio::time::sleep(opts.check_interval).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            transitions_seen = log_transitions(name, &desc, transitions_seen);
            let status = desc[kind.status_key()].as_str().unwrap_or("").to_string();
            let failure = |what: &str, kind_: ErrorKind| {
                let reason = desc["FailureReason"]
                    .as_str()
                    .unwrap_or("(no reason given)");
                self.error(
                    kind_,
                    &op,
                    format!("{} job {what}: {reason}", kind.as_str()),
                )
                .with("job", name)
                .with("status", &status)
            };
            let terminal = matches!(status.as_str(), "Completed" | "Failed" | "Stopped");
            if terminal && let Some(t) = &mut tail {
                // Airflow's JOB_COMPLETE state: read, pause, read again for the
                // events CloudWatch shows late, whatever the outcome (the last
                // lines of a failed job say why).
                t.read(self).await;
                tokio::time::sleep(opts.check_interval.min(LATE_LOGS)).await;
                t.read(self).await;
            }
            match status.as_str() {
                "Completed" => {
                    log_billable(name, &desc);
                    tracing::info!(job = name, kind = kind.as_str(), elapsed = ?began.elapsed(), "sagemaker job completed");
                    return Ok(desc);
                }
                "Stopped" if opts.allow_stopped => {
                    tracing::warn!(
                        job = name,
                        "sagemaker job stopped; accepted (allow_stopped)"
                    );
                    return Ok(desc);
                }
                "Failed" => return Err(failure("failed", ErrorKind::Remote).with_retryable(true)),
                "Stopped" => {
                    return Err(failure(
                        "was stopped (a job stopped in the console or by its MaxRuntimeInSeconds; \
                         allow_stopped accepts it)",
                        ErrorKind::Cancelled,
                    )
                    .with_retryable(false));
                }
                "InProgress" | "Stopping" => {}
                other => {
                    return Err(self
                        .error(
                            ErrorKind::Remote,
                            &op,
                            format!(
                                "{} job has status `{other}`, which gust does not wait through",
                                kind.as_str()
                            ),
                        )
                        .with("job", name));
                }
            }
            let mut pause = opts.check_interval;
            if let Some(limit) = opts.max_ingestion_time {
                let elapsed = began.elapsed();
                if elapsed >= limit {
                    tracing::warn!(
                        job = name,
                        ?limit,
                        "sagemaker job ran past max_ingestion_time; stopping it"
                    );
                    let stopped = self.stop_job(kind, name).await;
                    let outcome = if stopped.is_ok() {
                        "stopped"
                    } else {
                        "NOT stopped"
                    };
                    let e = self
                        .error(
                            ErrorKind::Timeout,
                            &op,
                            format!(
                                "{} job still {status} after max_ingestion_time {}s: {outcome}",
                                kind.as_str(),
                                limit.as_secs()
                            ),
                        )
                        .with("job", name);
                    return Err(match stopped {
                        Ok(()) => e,
                        Err(stop) => e.with("stop_error", stop),
                    });
                }
                pause = pause.min(limit - elapsed);
            }
            match &mut tail {
                // Logs are read during the pause, so they never delay a poll.
                Some(t) => {
                    let sleep = tokio::time::sleep(pause);
                    tokio::pin!(sleep);
                    tokio::select! {
                        _ = &mut sleep => {}
                        _ = t.read(self) => sleep.await,
                    }
                }
                None => tokio::time::sleep(pause).await,
            }
        }
    }

    /// Polls endpoint `name` until it is `InService`; its description.
    /// `Failed` is a [`Remote`](ErrorKind::Remote) error with the
    /// `FailureReason`; `OutOfService`, `UpdateRollbackFailed` and `Deleting`
    /// are `Remote` errors naming the status; `max_ingestion_time` passed is a
    /// [`Timeout`](ErrorKind::Timeout) (the endpoint is left as it is).
    pub async fn wait_for_endpoint(&self, name: &str, opts: &WaitOptions) -> Result<Value> {
        let began = Instant::now();
        loop {
            let desc = self.describe_endpoint(name).await?;
            let status = desc["EndpointStatus"].as_str().unwrap_or("").to_string();
            match status.as_str() {
                "InService" => {
                    tracing::info!(endpoint = name, elapsed = ?began.elapsed(), "sagemaker endpoint in service");
                    return Ok(desc);
                }
                "Creating" | "Updating" | "SystemUpdating" | "RollingBack" => {}
                other => {
                    let reason = desc["FailureReason"]
                        .as_str()
                        .unwrap_or("(no reason given)");
                    return Err(self
                        .error(
                            ErrorKind::Remote,
                            "wait_for_endpoint",
                            format!("endpoint is {other}: {reason}"),
                        )
                        .with("endpoint", name)
                        .with("status", other));
                }
            }
            let mut pause = opts.check_interval;
            if let Some(limit) = opts.max_ingestion_time {
                let elapsed = began.elapsed();
                if elapsed >= limit {
                    return Err(self
                        .error(
                            ErrorKind::Timeout,
                            "wait_for_endpoint",
                            format!("endpoint still {status} after {}s", limit.as_secs()),
                        )
                        .with("endpoint", name));
                }
                pause = pause.min(limit - elapsed);
            }
            tracing::debug!(endpoint = name, %status, "waiting for the sagemaker endpoint");
            tokio::time::sleep(pause).await;
        }
    }
}

/// Emits the secondary status transitions after the first `seen`; how many there are now.
fn log_transitions(job: &str, desc: &Value, seen: usize) -> usize {
    let Some(all) = desc["SecondaryStatusTransitions"].as_array() else {
        return seen;
    };
    for t in all.iter().skip(seen) {
        tracing::info!(
            job,
            status = t["Status"].as_str().unwrap_or(""),
            message = t["StatusMessage"].as_str().unwrap_or(""),
            "sagemaker job status"
        );
    }
    all.len().max(seen)
}

/// Airflow's billable-seconds line: `(end − start) × instances`, rounded up.
fn log_billable(job: &str, desc: &Value) {
    let (Some(start), Some(end)) = (
        desc["TrainingStartTime"].as_f64(),
        desc["TrainingEndTime"].as_f64(),
    ) else {
        return;
    };
    let instances = desc["ResourceConfig"]["InstanceCount"]
        .as_f64()
        .unwrap_or(1.0);
    let billable = ((end - start).max(0.0) * instances).floor() as u64 + 1;
    tracing::info!(
        job,
        billable_seconds = billable,
        "sagemaker training billable time"
    );
}
