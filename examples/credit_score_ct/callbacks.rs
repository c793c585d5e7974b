//! The seed's `utils/callbacks`: `failure_callback` and `success_callback`,
//! set for every task through [`default_args`] (the seed's `default_args`).
//! They log; a team would page or post to a channel here.

use std::time::Duration;

use gust::prelude::*;

/// Called once when a task has failed for good (after its retry).
pub fn failure_callback(ctx: &Context, error: &Error) {
    tracing::error!(
        dag_id = ctx.dag_id(),
        task_id = ctx.task_id(),
        run_id = ctx.run_id(),
        ds = %ctx.ds(),
        try_number = ctx.try_number(),
        kind = %error.kind(),
        "failure_callback: task {}.{} failed: {error}",
        ctx.dag_id(),
        ctx.task_id(),
    );
}

/// Called once when a task succeeded, with what it returned.
pub fn success_callback(ctx: &Context, _result: &Value) {
    tracing::info!(
        dag_id = ctx.dag_id(),
        task_id = ctx.task_id(),
        run_id = ctx.run_id(),
        ds = %ctx.ds(),
        try_number = ctx.try_number(),
        "success_callback: task {}.{} succeeded",
        ctx.dag_id(),
        ctx.task_id(),
    );
}

/// The seed's `default_args` and its BashOperators' `retries=1`: one retry
/// (of a retryable error: a lost connection, not an empty extract) after 10
/// seconds, and both callbacks.
pub fn default_args() -> TaskOptions {
    TaskOptions::default()
        .retries(1)
        .retry_delay(Duration::from_secs(10))
        .on_failure(failure_callback)
        .on_success(success_callback)
}
