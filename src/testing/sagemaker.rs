//! [`ScriptedSageMaker`]: a SageMaker that answers a script (features
//! `testing` and `sagemaker`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::hooks::sagemaker::{
    InvokeRequest, InvokeResponse, SageMakerApi, SageMakerHook, Service, error_from_response,
};
use crate::retry::Backoff;

type Reply = Box<dyn Fn() -> Result<Value> + Send + Sync>;
type Check = Box<dyn Fn(&Value) + Send + Sync>;
type LogsReply = Box<dyn Fn(&str, &Value) -> Result<Value> + Send + Sync>;
type InvokeReply = Box<dyn Fn(&InvokeRequest) -> Result<InvokeResponse> + Send + Sync>;

/// One expected request: its action, a check of its body, and the answer.
struct Step {
    action: String,
    check: Check,
    reply: Reply,
}

/// A [`SageMakerApi`] that answers a script of SageMaker requests in order,
/// as aws-smithy-mocks' sequential mode does: a request that is not the next
/// one scripted **panics**, naming what was asked and what came before, so a
/// test fails on the first call out of place. CloudWatch Logs and
/// `InvokeEndpoint` are answered apart (their calls interleave with polls).
///
/// Give [`hook`](Self::hook) to the operators' `with_hook` and run them under
/// `#[tokio::test(start_paused = true)]`: the polls' pauses pass at once and
/// [`times_of`](Self::times_of) shows when each request came.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use gust::hooks::sagemaker::Job;
/// use gust::testing::{ScriptedSageMaker, aws_error};
/// use serde_json::json;
///
/// let api = ScriptedSageMaker::new();
/// api.then("DescribeTrainingJob", || Err(aws_error("ValidationException", "Could not find training job")))
///     .then("DescribeTrainingJob", || Ok(json!({"TrainingJobStatus": "Completed"})));
/// let sm = api.hook();
/// assert!(sm.find_job(Job::Training, "j").await.unwrap().is_none());
/// assert_eq!(sm.describe_job(Job::Training, "j").await.unwrap()["TrainingJobStatus"], "Completed");
/// api.assert_done();
/// # }
/// ```
#[derive(Default)]
pub struct ScriptedSageMaker {
    steps: Mutex<VecDeque<Step>>,
    calls: Mutex<Vec<(String, Value, tokio::time::Instant)>>,
    logs: Mutex<Option<(Arc<LogsReply>, Duration)>>,
    logs_calls: Mutex<Vec<String>>,
    invoke: Mutex<Option<Arc<InvokeReply>>>,
}

impl std::fmt::Debug for ScriptedSageMaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedSageMaker")
            .field("requested", &self.actions())
            .finish_non_exhaustive()
    }
}

/// The error SageMaker answers with `code` and `message`, classified as gust
/// classifies a real response ([`error_from_response`]): `ThrottlingException`
/// and `ServiceUnavailable` (an HTTP 503) are retryable, `ValidationException`
/// "Could not find …" is `NotFound`, `ResourceInUse` is `AlreadyExists`…
pub fn aws_error(code: &str, message: &str) -> Error {
    let status = if code == "ServiceUnavailable" {
        503
    } else {
        400
    };
    let body = json!({"__type": format!("com.amazonaws.sagemaker#{code}"), "message": message});
    error_from_response(status, None, body.to_string().as_bytes())
}

/// A poisoned lock only means a test thread panicked; the script is intact.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ScriptedSageMaker {
    /// An empty script.
    pub fn new() -> Arc<Self> {
        Arc::new(ScriptedSageMaker::default())
    }

    /// The next request is `action`; `reply` answers it.
    pub fn then(
        self: &Arc<Self>,
        action: &str,
        reply: impl Fn() -> Result<Value> + Send + Sync + 'static,
    ) -> &Arc<Self> {
        self.then_check(action, |_| {}, reply)
    }

    /// The next request is `action`, whose body `check` asserts on.
    pub fn then_check(
        self: &Arc<Self>,
        action: &str,
        check: impl Fn(&Value) + Send + Sync + 'static,
        reply: impl Fn() -> Result<Value> + Send + Sync + 'static,
    ) -> &Arc<Self> {
        lock(&self.steps).push_back(Step {
            action: action.to_string(),
            check: Box::new(check),
            reply: Box::new(reply),
        });
        self
    }

    /// The next `n` requests are `action`, each answered by `reply`.
    pub fn times(
        self: &Arc<Self>,
        n: usize,
        action: &str,
        reply: impl Fn() -> Result<Value> + Send + Sync + Clone + 'static,
    ) -> &Arc<Self> {
        for _ in 0..n {
            self.then(action, reply.clone());
        }
        self
    }

    /// Answers every CloudWatch Logs request (`DescribeLogStreams`,
    /// `GetLogEvents`…) with `reply(action, request)`, each `GetLogEvents`
    /// taking `delay`. Without it a Logs request panics.
    pub fn with_logs(
        self: &Arc<Self>,
        delay: Duration,
        reply: impl Fn(&str, &Value) -> Result<Value> + Send + Sync + 'static,
    ) -> &Arc<Self> {
        *lock(&self.logs) = Some((Arc::new(Box::new(reply)), delay));
        self
    }

    /// Answers every `InvokeEndpoint` with `reply`. Without it one panics.
    pub fn with_invoke(
        self: &Arc<Self>,
        reply: impl Fn(&InvokeRequest) -> Result<InvokeResponse> + Send + Sync + 'static,
    ) -> &Arc<Self> {
        *lock(&self.invoke) = Some(Arc::new(Box::new(reply)));
        self
    }

    /// A hook over this script, its errors naming conn id `aws_default`,
    /// retrying 3 times from 1 s (a round number for paused-time tests).
    pub fn hook(self: &Arc<Self>) -> SageMakerHook {
        SageMakerHook::with_api("aws_default", "us-east-1", self.clone())
            .with_retries(3, Backoff::exponential(Duration::from_secs(1)))
    }

    /// The SageMaker actions requested so far, in order.
    pub fn actions(&self) -> Vec<String> {
        lock(&self.calls)
            .iter()
            .map(|(a, _, _)| a.clone())
            .collect()
    }

    /// The bodies of the `action` requests so far.
    pub fn requests(&self, action: &str) -> Vec<Value> {
        lock(&self.calls)
            .iter()
            .filter(|(a, _, _)| a == action)
            .map(|(_, v, _)| v.clone())
            .collect()
    }

    /// How many `action` requests came.
    pub fn count(&self, action: &str) -> usize {
        self.actions().iter().filter(|a| *a == action).count()
    }

    /// The CloudWatch Logs actions requested so far.
    pub fn logs_actions(&self) -> Vec<String> {
        lock(&self.logs_calls).clone()
    }

    /// When each `action` request came, counted from the first request (in
    /// tokio's clock: paused time counts).
    pub fn times_of(&self, action: &str) -> Vec<Duration> {
        let calls = lock(&self.calls);
        let Some(start) = calls.first().map(|c| c.2) else {
            return Vec::new();
        };
        calls
            .iter()
            .filter(|(a, _, _)| a == action)
            .map(|(_, _, t)| *t - start)
            .collect()
    }

    /// Panics unless every scripted request came.
    pub fn assert_done(&self) {
        let left: Vec<String> = lock(&self.steps).iter().map(|s| s.action.clone()).collect();
        assert!(
            left.is_empty(),
            "steps never requested: {left:?}; requested: {:?}",
            self.actions()
        );
    }
}

#[async_trait]
impl SageMakerApi for ScriptedSageMaker {
    async fn call(&self, service: Service, action: &str, request: Value) -> Result<Value> {
        if service == Service::Logs {
            lock(&self.logs_calls).push(action.to_string());
            let Some((reply, delay)) = lock(&self.logs).clone() else {
                panic!("unscripted CloudWatch Logs request {action} {request}: use with_logs");
            };
            if action == "GetLogEvents" {
                tokio::time::sleep(delay).await;
            }
            return reply(action, &request);
        }
        lock(&self.calls).push((
            action.to_string(),
            request.clone(),
            tokio::time::Instant::now(),
        ));
        let step = lock(&self.steps).pop_front().unwrap_or_else(|| {
            panic!(
                "unexpected request {action} {request} after {:?}",
                self.actions()
            )
        });
        assert_eq!(
            step.action,
            action,
            "request {request}; requested so far {:?}",
            self.actions()
        );
        (step.check)(&request);
        (step.reply)()
    }

    async fn invoke_endpoint(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        let reply = lock(&self.invoke).clone();
        match reply {
            Some(reply) => reply(&request),
            None => panic!(
                "unscripted InvokeEndpoint of {}: use with_invoke",
                request.endpoint_name
            ),
        }
    }
}
