//! Tailing a training job's CloudWatch logs into `tracing` events.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{SageMakerHook, Service};
use crate::error::ErrorKind;

/// Where SageMaker writes training logs.
pub(crate) const LOG_GROUP: &str = "/aws/sagemaker/TrainingJobs";

/// Pages of one stream read per pass, at most: a chatty job cannot hold a
/// pass (and the next poll) for long.
const MAX_PAGES: usize = 20;

/// The read position in each stream `<job>/algo-N-…` of one job.
#[derive(Debug)]
pub(crate) struct Tail {
    job: String,
    /// Stream name → the token to continue from (`None`: from the start).
    streams: BTreeMap<String, Option<String>>,
    warned: bool,
}

impl Tail {
    pub(crate) fn new(job: &str) -> Self {
        Tail {
            job: job.to_string(),
            streams: BTreeMap::new(),
            warned: false,
        }
    }

    /// Emits every event written since the last pass, stream by stream. Logs
    /// are best effort: a failure is one warning, never the wait's error (the
    /// log group does not exist until the job's first container logs).
    pub(crate) async fn read(&mut self, hook: &SageMakerHook) {
        if let Err(e) = self.pass(hook).await
            && e.kind() != ErrorKind::NotFound
            && !self.warned
        {
            self.warned = true;
            tracing::warn!(job = %self.job, error = %e, "cannot read the training job's logs");
        }
    }

    async fn pass(&mut self, hook: &SageMakerHook) -> crate::Result<()> {
        let found = hook
            .call_service(
                Service::Logs,
                "DescribeLogStreams",
                json!({
                    "logGroupName": LOG_GROUP,
                    "logStreamNamePrefix": format!("{}/", self.job),
                    "orderBy": "LogStreamName",
                }),
            )
            .await?;
        for s in found["logStreams"].as_array().into_iter().flatten() {
            if let Some(name) = s["logStreamName"].as_str() {
                self.streams.entry(name.to_string()).or_insert(None);
            }
        }
        let names: Vec<String> = self.streams.keys().cloned().collect();
        for stream in names {
            for _ in 0..MAX_PAGES {
                let token = self.streams.get(&stream).cloned().flatten();
                let mut req = json!({
                    "logGroupName": LOG_GROUP,
                    "logStreamName": stream,
                    "startFromHead": true,
                });
                if let Some(t) = &token {
                    req["nextToken"] = json!(t);
                }
                let page = hook
                    .call_service(Service::Logs, "GetLogEvents", req)
                    .await?;
                let events = page["events"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                for e in events {
                    emit(&self.job, &stream, e);
                }
                let next = page["nextForwardToken"].as_str().map(str::to_string);
                // The same token back means the end of the stream for now.
                let at_end = next.is_none() || next == token || events.is_empty();
                if next.is_some() {
                    self.streams.insert(stream.clone(), next);
                }
                if at_end {
                    break;
                }
            }
        }
        Ok(())
    }
}

fn emit(job: &str, stream: &str, event: &Value) {
    let message = event["message"].as_str().unwrap_or("").trim_end();
    tracing::info!(target: "gust::sagemaker::log", job, stream, timestamp = event["timestamp"].as_i64().unwrap_or(0), "{message}");
}
