//! Operators, tasks and the retry / timeout / callback policy around them.
//!
//! An [`Operator`] is one unit of work: it renders its templated fields from the
//! [`Context`], does its job and returns a JSON value, which becomes its XCom. A
//! [`Task`] is an operator with an id and [`TaskOptions`] — Airflow's `retries`,
//! `retry_delay`, `retry_exponential_backoff`, `max_retry_delay`,
//! `execution_timeout` and `on_*_callback`s.
//!
//! Only errors that say they are retryable ([`Error::is_retryable`]) are retried:
//! a malformed template or a missing table fails at once, a dropped connection or a
//! timeout is tried again. Task code chooses with [`Error::retryable`] and
//! [`Error::fail_now`].
//!
//! Task code that finds nothing to do returns [`Error::skip`] (Airflow's
//! `AirflowSkipException`): the task ends `skipped` after one try, calls no
//! callback, and the tasks downstream of it are skipped too.
//!
//! An error that a hook already retried and gave up on ([`Error::is_exhausted`],
//! e.g. an MLflow call that failed 4 times) is not retried by the task either, so
//! the attempts of the two layers do not multiply; [`TaskOptions::retry_exhausted`]
//! opts in. Delays come from the same [`Backoff`] the hooks use; see
//! [`gust::retry`](crate::retry) for who owns patience at each layer.
//!
//! **A panic is a failed try** like any other: the operator's panic is caught, and
//! the try fails with an [`ErrorKind::TaskFailed`] error whose message carries the
//! panic message and its location (`the task panicked at src/etl.rs:12:9: …`), which
//! reaches `on_failure`, the run report and the `task failed` log line. A panic is
//! **not retried**: it is a bug rather than a transient condition, and the operator
//! may have been left half-updated by the unwinding. To retry, return
//! [`Error::retryable`] instead of panicking. A panic inside a callback or inside
//! [`Operator::on_kill`] is logged and does not change the task's outcome.
//!
//! To know where a task panicked, the first task run installs a process-wide panic
//! hook (once) that records the panic's location for the runner and then calls the
//! hook that was installed before it, so the usual message on stderr and any hook
//! of the application keep working. An application that later replaces the hook
//! without calling the previous one loses only the location, not the message.
//!
//! ```
//! use std::time::Duration;
//! use gust::{Task, TaskOptions};
//!
//! let task = Task::from_fn("count", |ctx| async move {
//!     Ok(serde_json::json!({ "ds": ctx.ds() }))
//! })
//! .with_options(TaskOptions::default().retries(2).retry_delay(Duration::from_secs(10)));
//! # let _ = task;
//! ```

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use serde_json::Value;
use tracing::Instrument;

use crate::context::{Context, RETURN_VALUE};
use crate::error::{Error, ErrorKind, Result};
use crate::retry::Backoff;

/// One unit of work. Implement it for your own operators; use [`Task::from_fn`] for closures.
#[async_trait]
pub trait Operator: Send + Sync {
    /// Does the work. The returned value is stored as this task's XCom.
    async fn execute(&self, ctx: &Context) -> Result<Value>;

    /// Called after `execute` was cancelled because `execution_timeout` passed, so an
    /// operator can stop work it started elsewhere (a remote job, a query). Airflow's
    /// `on_kill`. The default does nothing.
    async fn on_kill(&self, ctx: &Context) {
        let _ = ctx;
    }

    /// The operator's templated fields rendered for `ctx`, `(name, value)` in the
    /// order Airflow's `template_fields` would list them: what `tasks render`
    /// prints and what the operator would send. The default declares none.
    fn rendered_fields(&self, ctx: &Context) -> Result<Vec<(String, String)>> {
        let _ = ctx;
        Ok(Vec::new())
    }
}

/// An operator made of an async closure: the Rust answer to `PythonOperator`.
pub struct FnOperator<F> {
    f: F,
}

impl<F> FnOperator<F> {
    /// Wraps `f`, which receives an owned [`Context`] (cheap to clone).
    pub fn new(f: F) -> Self {
        FnOperator { f }
    }
}

#[async_trait]
impl<F, Fut> Operator for FnOperator<F>
where
    F: Fn(Context) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Value>> + Send,
{
    async fn execute(&self, ctx: &Context) -> Result<Value> {
        (self.f)(ctx.clone()).await
    }
}

/// Called with the context after a task succeeded, with its return value.
pub type SuccessCallback = Arc<dyn Fn(&Context, &Value) + Send + Sync>;
/// Called with the context and the error of a failed try.
pub type ErrorCallback = Arc<dyn Fn(&Context, &Error) + Send + Sync>;

/// Retry, timeout and callback policy of a task. Defaults follow Airflow's
/// `default_args`: no retries, a 5-minute `retry_delay`, no timeout.
#[derive(Clone)]
pub struct TaskOptions {
    pub(crate) retries: u32,
    pub(crate) retry_delay: Duration,
    pub(crate) retry_exponential_backoff: bool,
    pub(crate) max_retry_delay: Option<Duration>,
    pub(crate) jitter: bool,
    pub(crate) retry_exhausted: bool,
    pub(crate) execution_timeout: Option<Duration>,
    pub(crate) on_success: Option<SuccessCallback>,
    pub(crate) on_failure: Option<ErrorCallback>,
    pub(crate) on_retry: Option<ErrorCallback>,
}

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions {
            retries: 0,
            retry_delay: Duration::from_secs(300),
            retry_exponential_backoff: false,
            max_retry_delay: None,
            jitter: true,
            retry_exhausted: false,
            execution_timeout: None,
            on_success: None,
            on_failure: None,
            on_retry: None,
        }
    }
}

impl fmt::Debug for TaskOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskOptions")
            .field("retries", &self.retries)
            .field("retry_delay", &self.retry_delay)
            .field("retry_exponential_backoff", &self.retry_exponential_backoff)
            .field("max_retry_delay", &self.max_retry_delay)
            .field("jitter", &self.jitter)
            .field("retry_exhausted", &self.retry_exhausted)
            .field("execution_timeout", &self.execution_timeout)
            .field("on_success", &self.on_success.is_some())
            .field("on_failure", &self.on_failure.is_some())
            .field("on_retry", &self.on_retry.is_some())
            .finish()
    }
}

impl TaskOptions {
    /// How many times to retry after the first try fails with a retryable error.
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Delay before the first retry (default 5 minutes).
    pub fn retry_delay(mut self, d: Duration) -> Self {
        self.retry_delay = d;
        self
    }

    /// Doubles the delay after each try (Airflow's `retry_exponential_backoff`).
    pub fn retry_exponential_backoff(mut self, on: bool) -> Self {
        self.retry_exponential_backoff = on;
        self
    }

    /// Upper bound of any retry delay.
    pub fn max_retry_delay(mut self, d: Duration) -> Self {
        self.max_retry_delay = Some(d);
        self
    }

    /// With exponential backoff, adds a random part so tasks that failed together do
    /// not retry together: the delay of retry *n* lies in `[b·2ⁿ⁻¹, b·2ⁿ)` for base
    /// delay `b`, as in Airflow. On by default.
    pub fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    /// Whether to retry an error that a hook already retried and gave up on
    /// ([`Error::is_exhausted`]). Off by default: the hook's attempts times the
    /// task's tries would hammer a server that is already failing (with the
    /// MLflow client's 4 attempts and `retries(2)`, 12 requests instead of 4).
    /// Turn it on when the outage may outlast the hook's patience and the task's
    /// [`retry_delay`](Self::retry_delay) is long enough to wait it out.
    pub fn retry_exhausted(mut self, on: bool) -> Self {
        self.retry_exhausted = on;
        self
    }

    /// Cancels a try that runs longer, calls the operator's `on_kill`, and fails the
    /// try with a retryable [`ErrorKind::Timeout`].
    pub fn execution_timeout(mut self, d: Duration) -> Self {
        self.execution_timeout = Some(d);
        self
    }

    /// Called once when the task succeeds. A panic in the callback is logged and
    /// does not change the task's outcome (true of every callback).
    pub fn on_success(mut self, f: impl Fn(&Context, &Value) + Send + Sync + 'static) -> Self {
        self.on_success = Some(Arc::new(f));
        self
    }

    /// Called once when the task has failed for good, also when it panicked.
    pub fn on_failure(mut self, f: impl Fn(&Context, &Error) + Send + Sync + 'static) -> Self {
        self.on_failure = Some(Arc::new(f));
        self
    }

    /// Called after each failed try that will be retried.
    pub fn on_retry(mut self, f: impl Fn(&Context, &Error) + Send + Sync + 'static) -> Self {
        self.on_retry = Some(Arc::new(f));
        self
    }

    /// The task's delays as a [`Backoff`]: `retry_delay` doubling with
    /// `retry_exponential_backoff` (jittered unless `jitter(false)`), else
    /// constant (Airflow jitters only the exponential form), capped by
    /// `max_retry_delay`.
    pub fn backoff(&self) -> Backoff {
        let backoff = if self.retry_exponential_backoff {
            Backoff::exponential(self.retry_delay).jitter(self.jitter)
        } else {
            Backoff::constant(self.retry_delay)
        };
        match self.max_retry_delay {
            Some(max) => backoff.max_delay(max),
            None => backoff,
        }
    }

    /// The delay before try `next_try` (2 for the first retry).
    pub fn delay_before_try(&self, next_try: u32) -> Duration {
        self.backoff().delay(next_try.saturating_sub(1))
    }

    /// Why the task loop will not retry `err`, or `None` if it will (tries left
    /// permitting): for the `task failed` log line.
    pub(crate) fn no_retry_reason(&self, err: &Error) -> Option<&'static str> {
        if err.is_retryable() {
            None
        } else if err.is_exhausted() {
            (!self.retry_exhausted).then_some(
                "a hook already retried this error and gave up (TaskOptions::retry_exhausted)",
            )
        } else {
            Some("the error is not retryable")
        }
    }
}

/// An operator with an id and its [`TaskOptions`]; add it to a [`Dag`](crate::Dag).
///
/// A panic of the operator fails the task without retries, with the panic message
/// and location in its error; see the [module docs](self).
#[derive(Clone)]
pub struct Task {
    pub(crate) task_id: String,
    pub(crate) operator: Arc<dyn Operator>,
    pub(crate) options: TaskOptions,
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("task_id", &self.task_id)
            .field("options", &self.options)
            .finish()
    }
}

impl Task {
    /// A task running `operator`.
    pub fn new(task_id: impl Into<String>, operator: impl Operator + 'static) -> Self {
        Task {
            task_id: task_id.into(),
            operator: Arc::new(operator),
            options: TaskOptions::default(),
        }
    }

    /// A task running an async closure (see [`FnOperator`]).
    pub fn from_fn<F, Fut>(task_id: impl Into<String>, f: F) -> Self
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value>> + Send + 'static,
    {
        Task::new(task_id, FnOperator::new(f))
    }

    /// Sets the retry / timeout / callback policy.
    pub fn with_options(mut self, options: TaskOptions) -> Self {
        self.options = options;
        self
    }

    /// The task's id.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// Runs the task to its final outcome: tries, waits between retryable failures,
    /// calls the callbacks, and stores the return value as XCom. `ctx_for_try` makes
    /// the context of try *n*.
    pub(crate) async fn run(&self, ctx_for_try: impl Fn(u32) -> Context) -> TaskOutcome {
        panics::install_hook();
        let max_tries = self.options.retries.saturating_add(1);
        let mut try_number = 1;
        loop {
            let ctx = ctx_for_try(try_number);
            let span = tracing::info_span!(
                "task_try",
                dag_id = %ctx.dag_id(),
                task_id = %self.task_id,
                try_number,
                logical_date = %ctx.logical_date().to_rfc3339(),
            );
            let result = self.try_once(&ctx).instrument(span.clone()).await;
            // The run's secrets (of every connection a task looked up) leave
            // it neither in an error nor in an XCom: a downstream task that
            // needs one reads it from the connection.
            let secrets = ctx.shared().secrets();
            let result = result
                .map(|v| crate::error::redact_value(v, &secrets))
                .map_err(|e| e.redact(&secrets));
            let _entered = span.enter();
            match result {
                Ok(value) => {
                    tracing::info!("task succeeded");
                    ctx.shared()
                        .xcom_set(&self.task_id, RETURN_VALUE, value.clone());
                    if let Some(cb) = &self.options.on_success {
                        guard_callback("on_success", || cb(&ctx, &value));
                    }
                    return TaskOutcome {
                        tries: try_number,
                        result: Ok(value),
                    };
                }
                // Skipping is not failing: no retry, no failure callback.
                Err(err) if err.is_skip() => {
                    tracing::info!(reason = %err, "task skipped");
                    return TaskOutcome {
                        tries: try_number,
                        result: Err(err),
                    };
                }
                Err(err)
                    if self.options.no_retry_reason(&err).is_none() && try_number < max_tries =>
                {
                    let delay = self.options.delay_before_try(try_number + 1);
                    tracing::warn!(error = %err, retry_in = ?delay, "try failed; will retry");
                    if let Some(cb) = &self.options.on_retry {
                        guard_callback("on_retry", || cb(&ctx, &err));
                    }
                    drop(_entered);
                    tokio::time::sleep(delay).await;
                    try_number += 1;
                }
                Err(err) => {
                    let why = self
                        .options
                        .no_retry_reason(&err)
                        .unwrap_or("no retries left");
                    tracing::error!(
                        error = %err,
                        retryable = err.is_retryable(),
                        exhausted = err.is_exhausted(),
                        why_not_retried = why,
                        "task failed"
                    );
                    if let Some(cb) = &self.options.on_failure {
                        guard_callback("on_failure", || cb(&ctx, &err));
                    }
                    return TaskOutcome {
                        tries: try_number,
                        result: Err(err),
                    };
                }
            }
        }
    }

    /// One try and nothing more, for a runner that owns retries (Airflow, or a
    /// process per try): the value is stored as XCom and `on_success` called; a
    /// failure calls `on_retry` when the runner has `retries_left` and the error
    /// is retryable by this task's policy (the runner will try again), else
    /// `on_failure`.
    #[cfg(feature = "cli")]
    pub(crate) async fn run_one(&self, ctx: &Context, retries_left: bool) -> Result<Value> {
        panics::install_hook();
        let span = tracing::info_span!(
            "task_try",
            dag_id = %ctx.dag_id(),
            task_id = %self.task_id,
            try_number = ctx.try_number(),
            logical_date = %ctx.logical_date().to_rfc3339(),
        );
        let result = self.try_once(ctx).instrument(span.clone()).await;
        let secrets = ctx.shared().secrets();
        let result = result
            .map(|v| crate::error::redact_value(v, &secrets))
            .map_err(|e| e.redact(&secrets));
        let _entered = span.enter();
        match &result {
            Ok(value) => {
                tracing::info!("task succeeded");
                ctx.shared()
                    .xcom_set(&self.task_id, RETURN_VALUE, value.clone());
                if let Some(cb) = &self.options.on_success {
                    guard_callback("on_success", || cb(ctx, value));
                }
            }
            Err(err) if err.is_skip() => tracing::info!(reason = %err, "task skipped"),
            Err(err) => {
                // `will_retry`, not the error's own `exhausted` mark (a hook's
                // retries): on the runner's last try that read as "retries left".
                let will_retry = retries_left && self.options.no_retry_reason(err).is_none();
                let why = self
                    .options
                    .no_retry_reason(err)
                    .unwrap_or(if retries_left { "" } else { "no retries left" });
                tracing::error!(
                    error = %err,
                    retryable = err.is_retryable(),
                    will_retry,
                    why_not_retried = why,
                    "task try failed"
                );
                let (name, cb) = if will_retry {
                    ("on_retry", &self.options.on_retry)
                } else {
                    ("on_failure", &self.options.on_failure)
                };
                if let Some(cb) = cb {
                    guard_callback(name, || cb(ctx, err));
                }
            }
        }
        result
    }

    async fn try_once(&self, ctx: &Context) -> Result<Value> {
        tracing::info!("task try started");
        // The panic is caught here, around the operator's future and inside the try,
        // so that it becomes this try's error and goes through the same retry policy,
        // callbacks and log line as any other failure (caught further out, by the
        // runner's join, it would bypass all of them). AssertUnwindSafe: the future
        // is never polled again after a panic, and the operator it borrows is not
        // run again in this task, since a panic is not retried.
        let execute = AssertUnwindSafe(self.operator.execute(ctx))
            .catch_unwind()
            .map(|caught| caught.unwrap_or_else(|payload| Err(self.panic_error(&*payload))));
        let Some(limit) = self.options.execution_timeout else {
            return execute.await;
        };
        match tokio::time::timeout(limit, execute).await {
            Ok(result) => result,
            Err(_) => {
                // The execute future is dropped (cancelled) here; let the operator
                // clean up what lives outside this process.
                tracing::warn!(timeout = ?limit, "execution_timeout passed; calling on_kill");
                if let Err(payload) = AssertUnwindSafe(self.operator.on_kill(ctx))
                    .catch_unwind()
                    .await
                {
                    // The timeout stays the try's error: it is what happened to the task.
                    let panic = panics::describe(&*payload);
                    tracing::error!(panic = %panic, "on_kill panicked");
                }
                Err(Error::new(
                    ErrorKind::Timeout,
                    "task.execute",
                    format!("execution_timeout of {limit:?} passed"),
                )
                .with("task_id", &self.task_id))
            }
        }
    }
}

impl Task {
    /// The error of a try whose operator panicked: not retryable (see the module docs).
    pub(crate) fn panic_error(&self, payload: &(dyn std::any::Any + Send)) -> Error {
        Error::new(
            ErrorKind::TaskFailed,
            "task.execute",
            format!("the task {}", panics::describe(payload)),
        )
        .with("task_id", &self.task_id)
        .with_retryable(false)
    }
}

/// Runs a user callback so that its panic is logged instead of unwinding through the
/// runner: a bug in a notification must not change the outcome of the task it
/// reports on (Airflow logs a failing callback the same way).
fn guard_callback(which: &'static str, f: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(f)) {
        let panic = panics::describe(&*payload);
        tracing::error!(callback = which, panic = %panic, "callback panicked; the task's state is unchanged");
    }
}

/// Where a caught panic happened.
///
/// A panic's payload carries only its message; the location is known only to the
/// panic hook. So a hook installed once per process records `(location, message)` in
/// a thread-local just before unwinding starts, and the catch site — on the same
/// thread, since unwinding does not cross threads — takes it. The alternatives were
/// worse: a backtrace costs much more and is empty unless `RUST_BACKTRACE` is set,
/// and a hook that replaced the previous one would silence the stderr message and
/// any hook of the application, so ours calls the previous hook after recording.
pub(crate) mod panics {
    use std::any::Any;
    use std::cell::RefCell;
    use std::fmt;
    use std::sync::Once;

    thread_local! {
        /// The location and message of the last panic on this thread, until taken.
        static LAST: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
    }

    static INSTALL: Once = Once::new();

    /// Installs the recording hook, chained to the current one; later calls do nothing.
    pub(crate) fn install_hook() {
        INSTALL.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if let Some(loc) = info.location() {
                    let location = format!("{}:{}:{}", loc.file(), loc.line(), loc.column());
                    let message = message(info.payload());
                    // try_with / try_borrow_mut: a hook must not panic itself, not even
                    // during thread teardown or a panic inside a panic.
                    let _ = LAST.try_with(|last| {
                        if let Ok(mut last) = last.try_borrow_mut() {
                            *last = Some((location, message));
                        }
                    });
                }
                previous(info);
            }));
        });
    }

    /// The text of a panic payload, as the standard hook prints it.
    fn message(payload: &(dyn Any + Send)) -> String {
        if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "Box<dyn Any>".to_string()
        }
    }

    /// A caught panic: its message and, when the hook recorded it, its location.
    pub(crate) struct Described {
        message: String,
        location: Option<String>,
    }

    impl fmt::Display for Described {
        /// `panicked at file:line:col: message`, or `panicked: message`.
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match &self.location {
                Some(location) => write!(f, "panicked at {location}: {}", self.message),
                None => write!(f, "panicked: {}", self.message),
            }
        }
    }

    /// Describes a panic just caught on this thread. The recorded location is used
    /// only if it belongs to this payload (same message): a panic re-raised with
    /// `resume_unwind`, which skips the hook, must not get a stale location.
    pub(crate) fn describe(payload: &(dyn Any + Send)) -> Described {
        let message = message(payload);
        let recorded = LAST
            .try_with(|last| last.try_borrow_mut().ok().and_then(|mut l| l.take()))
            .ok()
            .flatten();
        let location = recorded
            .filter(|(_, m)| *m == message)
            .map(|(location, _)| location);
        Described { message, location }
    }
}

/// The result of running a task to completion.
#[derive(Debug)]
pub(crate) struct TaskOutcome {
    pub(crate) tries: u32,
    pub(crate) result: Result<Value>,
}
