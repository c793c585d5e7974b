//! How a DAG run ended: per-task states and the printable run report.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::DateTime;
use chrono_tz::Tz;
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};

/// The final state of a task in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskState {
    /// Finished without error.
    Success,
    /// Failed after its last try.
    Failed,
    /// Not run because a task upstream failed.
    UpstreamFailed,
    /// Skipped itself ([`Error::skip`]), or not run because a task upstream
    /// was skipped (Airflow's `all_success` trigger rule).
    Skipped,
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskState::Success => "success",
            TaskState::Failed => "failed",
            TaskState::UpstreamFailed => "upstream_failed",
            TaskState::Skipped => "skipped",
        })
    }
}

/// How one task of a run ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskReport {
    /// The task's id.
    pub task_id: String,
    /// Its final state.
    pub state: TaskState,
    /// How many tries ran (0 when it never started).
    pub tries: u32,
    /// Wall time from the first try's start to the end, retry waits included.
    pub duration: Duration,
    /// The last error, one line, secrets scrubbed (for a task that skipped
    /// itself, why).
    pub error: Option<String>,
}

/// The outcome of a DAG run; `Display` prints a table.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunReport {
    /// The DAG's id.
    pub dag_id: String,
    /// The run's id.
    pub run_id: String,
    /// The logical date, in the DAG's timezone.
    pub logical_date: DateTime<Tz>,
    /// Wall time of the whole run.
    pub duration: Duration,
    /// One entry per task, in topological order.
    pub tasks: Vec<TaskReport>,
    pub(super) xcom: BTreeMap<String, Value>,
    /// `(task_id, key, value)` of every XCom the successful tasks pushed.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))]
    pub(crate) all_xcoms: Vec<(String, String, Value)>,
}

impl RunReport {
    /// Whether every task succeeded or was skipped (as Airflow marks such a
    /// run `success`).
    pub fn is_success(&self) -> bool {
        self.tasks
            .iter()
            .all(|t| matches!(t.state, TaskState::Success | TaskState::Skipped))
    }

    /// The report of task `task_id`.
    pub fn task(&self, task_id: &str) -> Option<&TaskReport> {
        self.tasks.iter().find(|t| t.task_id == task_id)
    }

    /// The return value (XCom) of a task that succeeded.
    pub fn xcom(&self, task_id: &str) -> Option<&Value> {
        self.xcom.get(task_id)
    }

    /// Ids of the tasks that failed (not those that were skipped for it).
    pub fn failed_task_ids(&self) -> Vec<&str> {
        self.tasks
            .iter()
            .filter(|t| t.state == TaskState::Failed)
            .map(|t| t.task_id.as_str())
            .collect()
    }

    /// `Ok(self)` if the run succeeded, else an error naming the failed tasks.
    pub fn into_result(self) -> Result<Self> {
        if self.is_success() {
            return Ok(self);
        }
        let failed: Vec<String> = self
            .tasks
            .iter()
            .filter(|t| t.state == TaskState::Failed)
            .map(|t| format!("{}: {}", t.task_id, t.error.as_deref().unwrap_or("failed")))
            .collect();
        Err(Error::new(
            ErrorKind::TaskFailed,
            "dag.run",
            format!("{} task(s) failed: {}", failed.len(), failed.join("; ")),
        )
        .with("dag_id", &self.dag_id)
        .with("run_id", &self.run_id))
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "DAG {} run {} ({}): {} in {:.2?}",
            self.dag_id,
            self.run_id,
            self.logical_date.to_rfc3339(),
            if self.is_success() {
                "success"
            } else {
                "failed"
            },
            self.duration
        )?;
        let w = self
            .tasks
            .iter()
            .map(|t| t.task_id.chars().count())
            .max()
            .unwrap_or(0)
            .max("task".len());
        writeln!(
            f,
            "{:<w$}  {:<15}  {:>5}  {:>10}  error",
            "task", "state", "tries", "duration"
        )?;
        for t in &self.tasks {
            writeln!(
                f,
                "{:<w$}  {:<15}  {:>5}  {:>10}  {}",
                t.task_id,
                t.state.to_string(),
                t.tries,
                format!("{:.2?}", t.duration),
                t.error.as_deref().unwrap_or("")
            )?;
        }
        Ok(())
    }
}
