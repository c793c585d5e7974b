//! A plain description of a built DAG — ids, edges, schedule and each task's
//! retry policy — for what shows or exports a DAG rather than runs it
//! (`dags show`, the Airflow stub DAG).

use std::time::Duration;

use chrono_tz::Tz;
use serde_json::Value;

use super::{Dag, Schedule};

/// What the runner knows about a DAG, without the operators.
#[derive(Debug, Clone)]
pub(crate) struct DagDescription {
    pub(crate) dag_id: String,
    pub(crate) schedule: Schedule,
    pub(crate) timezone: Tz,
    pub(crate) params: Value,
    pub(crate) max_active_tasks: usize,
    /// In topological order (ties in the order the tasks were added).
    pub(crate) tasks: Vec<TaskDescription>,
}

/// One task: its id, its direct upstream tasks and its retry policy.
#[derive(Debug, Clone)]
pub(crate) struct TaskDescription {
    pub(crate) task_id: String,
    /// Direct upstream task ids, in the order the edges were declared.
    pub(crate) upstream: Vec<String>,
    pub(crate) retries: u32,
    pub(crate) retry_delay: Duration,
    pub(crate) retry_exponential_backoff: bool,
    pub(crate) max_retry_delay: Option<Duration>,
    pub(crate) execution_timeout: Option<Duration>,
}

impl DagDescription {
    /// Every edge `(upstream, downstream)`, downstream tasks in topological order.
    pub(crate) fn edges(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tasks.iter().flat_map(|t| {
            t.upstream
                .iter()
                .map(move |u| (u.as_str(), t.task_id.as_str()))
        })
    }
}

impl Dag {
    pub(crate) fn describe(&self) -> DagDescription {
        let d = &self.inner;
        DagDescription {
            dag_id: d.dag_id.clone(),
            schedule: d.schedule,
            timezone: d.timezone,
            params: d.params.clone(),
            max_active_tasks: d.max_active_tasks,
            tasks: d
                .order
                .iter()
                .map(|&i| {
                    let t = &d.tasks[i];
                    let o = &t.options;
                    TaskDescription {
                        task_id: t.task_id.clone(),
                        upstream: d.upstream[i]
                            .iter()
                            .map(|&u| d.tasks[u].task_id.clone())
                            .collect(),
                        retries: o.retries,
                        retry_delay: o.retry_delay,
                        retry_exponential_backoff: o.retry_exponential_backoff,
                        max_retry_delay: o.max_retry_delay,
                        execution_timeout: o.execution_timeout,
                    }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Task, TaskOptions};

    #[test]
    fn a_description_has_the_edges_and_the_retry_policy() {
        let mut b = Dag::builder("d").schedule(Schedule::Daily);
        let a = b.add(Task::from_fn("a", |_| async { Ok(Value::Null) }));
        let c = b.add(
            Task::from_fn("c", |_| async { Ok(Value::Null) }).with_options(
                TaskOptions::default()
                    .retries(2)
                    .retry_delay(Duration::from_secs(30)),
            ),
        );
        let x = b.add(Task::from_fn("x", |_| async { Ok(Value::Null) }));
        let _ = &a >> [&c, &x];
        let _ = &x >> &c;
        let d = b.build().unwrap().describe();
        let ids: Vec<&str> = d.tasks.iter().map(|t| t.task_id.as_str()).collect();
        assert_eq!(ids, ["a", "x", "c"]);
        assert_eq!(
            d.edges().collect::<Vec<_>>(),
            [("a", "x"), ("a", "c"), ("x", "c")]
        );
        assert_eq!(d.tasks[2].retries, 2);
        assert_eq!(d.tasks[2].retry_delay, Duration::from_secs(30));
        assert_eq!(d.schedule, Schedule::Daily);
    }
}
