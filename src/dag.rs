//! DAGs: tasks, their dependencies, and a local runner for one logical date.
//!
//! ```
//! use chrono::TimeZone;
//! use gust::{Dag, Task};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> gust::Result<()> {
//! let mut dag = Dag::builder("example").timezone(chrono_tz::Asia::Seoul);
//! let extract = dag.add(Task::from_fn("extract", |ctx| async move { Ok(ctx.ds().into()) }));
//! let load = dag.add(Task::from_fn("load", |ctx| async move {
//!     Ok(ctx.xcom_pull("extract").unwrap_or_default())
//! }));
//! &extract >> &load;                       // or dag.chain(["extract", "load"])
//! let dag = dag.build()?;                  // rejects cycles, duplicate and unknown ids
//!
//! let report = dag.test(chrono_tz::Asia::Seoul.with_ymd_and_hms(2025, 1, 8, 0, 0, 0).unwrap()).await;
//! assert!(report.is_success());
//! assert_eq!(report.xcom("load"), Some(&serde_json::json!("2025-01-08")));
//! println!("{report}");                    // a table: task, state, tries, duration, error
//! # Ok(()) }
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Shr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Months};
use chrono_tz::Tz;
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::Value;
use tracing::Instrument;

#[cfg(feature = "cli")]
use crate::context::RemoteXCom;
use crate::context::{Context, RunShared, manual_run_id};
use crate::error::{Error, ErrorKind, Result};
use crate::task::Task;
use crate::template::TemplateEngine;

#[cfg(feature = "cli")]
mod describe;
mod report;
#[cfg(feature = "cli")]
pub(crate) use self::describe::{DagDescription, TaskDescription};
pub use self::report::{RunReport, TaskReport, TaskState};

/// How often a DAG runs; decides the data interval of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Schedule {
    /// Triggered only (`schedule=None`): the data interval is empty.
    None,
    /// `@hourly`.
    Hourly,
    /// `@daily`.
    Daily,
    /// `@weekly`.
    Weekly,
    /// `@monthly`.
    Monthly,
    /// A fixed interval (`timedelta(...)`).
    Every(Duration),
}

impl Schedule {
    /// The data interval of a run at `logical_date`: `[logical_date, next)`.
    pub fn data_interval(&self, logical_date: DateTime<Tz>) -> (DateTime<Tz>, DateTime<Tz>) {
        let end = match *self {
            Schedule::None => Some(logical_date),
            Schedule::Hourly => logical_date.checked_add_signed(chrono::Duration::hours(1)),
            Schedule::Daily => logical_date.checked_add_signed(chrono::Duration::days(1)),
            Schedule::Weekly => logical_date.checked_add_signed(chrono::Duration::weeks(1)),
            Schedule::Monthly => logical_date.checked_add_months(Months::new(1)),
            Schedule::Every(d) => chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| logical_date.checked_add_signed(d)),
        };
        (logical_date, end.unwrap_or(logical_date))
    }
}

type Edges = Arc<Mutex<Vec<(String, String)>>>;

/// A handle to a task added to a [`DagBuilder`]; `&a >> &b` makes `b` run after `a`.
#[derive(Clone)]
pub struct TaskRef {
    task_id: String,
    edges: Edges,
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TaskRef").field(&self.task_id).finish()
    }
}

impl TaskRef {
    /// The task's id.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// Makes `downstream` run after this task (Airflow's `set_downstream`).
    pub fn set_downstream(&self, downstream: &TaskRef) {
        self.edges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((self.task_id.clone(), downstream.task_id.clone()));
    }
}

impl<'a> Shr<&'a TaskRef> for &TaskRef {
    type Output = &'a TaskRef;

    /// `&a >> &b`: `b` runs after `a`; returns `&b` so `&a >> &b >> &c` chains.
    fn shr(self, rhs: &'a TaskRef) -> &'a TaskRef {
        self.set_downstream(rhs);
        rhs
    }
}

impl<'a, const N: usize> Shr<[&'a TaskRef; N]> for &TaskRef {
    type Output = [&'a TaskRef; N];

    /// `&a >> [&b, &c]`: fan out.
    fn shr(self, rhs: [&'a TaskRef; N]) -> [&'a TaskRef; N] {
        for r in rhs {
            self.set_downstream(r);
        }
        rhs
    }
}

/// Collects tasks and dependencies; [`build`](DagBuilder::build) validates them.
///
/// Two kinds of methods, on purpose: the DAG's options (`schedule`, `timezone`,
/// `params`, `template_search_path`, `max_active_tasks`) take and return the
/// builder by value, so they chain from [`Dag::builder`]; [`add`](Self::add) and
/// [`chain`](Self::chain) take `&mut self` because `add` returns a [`TaskRef`]
/// for `>>`. Task handles do not borrow the builder, so options may also come
/// after the tasks:
///
/// ```
/// use gust::prelude::*;
///
/// let mut dag = Dag::builder("late_options");
/// let a = dag.add(Task::from_fn("a", |_| async { Ok(Value::Null) }));
/// let b = dag.add(Task::from_fn("b", |_| async { Ok(Value::Null) }));
/// let _ = &a >> &b;
/// let dag = dag.timezone(chrono_tz::Asia::Seoul).max_active_tasks(1);
/// assert_eq!(dag.build()?.task_ids(), ["a", "b"]);
/// # Ok::<(), gust::Error>(())
/// ```
pub struct DagBuilder {
    dag_id: String,
    tasks: Vec<Task>,
    edges: Edges,
    schedule: Schedule,
    timezone: Tz,
    params: Value,
    search_path: Vec<PathBuf>,
    max_active_tasks: usize,
}

impl fmt::Debug for DagBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DagBuilder")
            .field("dag_id", &self.dag_id)
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

impl DagBuilder {
    /// Adds a task and returns a handle for declaring its dependencies.
    pub fn add(&mut self, task: Task) -> TaskRef {
        let r = TaskRef {
            task_id: task.task_id.clone(),
            edges: self.edges.clone(),
        };
        self.tasks.push(task);
        r
    }

    /// Makes each task run after the one before it (Airflow's `chain`).
    pub fn chain<S: AsRef<str>>(&mut self, task_ids: impl IntoIterator<Item = S>) -> &mut Self {
        let ids: Vec<String> = task_ids
            .into_iter()
            .map(|s| s.as_ref().to_string())
            .collect();
        let mut edges = self.edges.lock().unwrap_or_else(|p| p.into_inner());
        for pair in ids.windows(2) {
            edges.push((pair[0].clone(), pair[1].clone()));
        }
        drop(edges);
        self
    }

    /// The schedule, which sets each run's data interval (default [`Schedule::None`]).
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// The DAG's timezone: logical dates are shown and `ds` is computed in it (default UTC).
    pub fn timezone(mut self, tz: Tz) -> Self {
        self.timezone = tz;
        self
    }

    /// Default params, seen by templates as `params` (a JSON object).
    pub fn params(mut self, params: Value) -> Self {
        self.params = params;
        self
    }

    /// Adds a directory where `.sql` template files are looked up (`template_searchpath`).
    pub fn template_search_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.search_path.push(dir.into());
        self
    }

    /// How many tasks may run at once (default 16, Airflow's `max_active_tasks`).
    pub fn max_active_tasks(mut self, n: usize) -> Self {
        self.max_active_tasks = n.max(1);
        self
    }

    /// Validates the DAG: no duplicate task ids, no edge to an unknown id, no cycle.
    pub fn build(self) -> Result<Dag> {
        let err = |msg: String| {
            Error::new(ErrorKind::InvalidInput, "dag.build", msg).with("dag_id", &self.dag_id)
        };
        let mut index: HashMap<String, usize> = HashMap::new();
        for (i, t) in self.tasks.iter().enumerate() {
            validate_id(&t.task_id).map_err(|m| err(format!("task id {:?} {m}", t.task_id)))?;
            if index.insert(t.task_id.clone(), i).is_some() {
                return Err(err(format!("task id {:?} is used twice", t.task_id)));
            }
        }
        let edges = self.edges.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut upstream: Vec<Vec<usize>> = vec![Vec::new(); self.tasks.len()];
        let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); self.tasks.len()];
        for (a, b) in &edges {
            let ia = *index
                .get(a)
                .ok_or_else(|| err(format!("dependency on unknown task id {a:?}")))?;
            let ib = *index
                .get(b)
                .ok_or_else(|| err(format!("dependency on unknown task id {b:?}")))?;
            if ia == ib {
                return Err(err(format!("task {a:?} depends on itself")));
            }
            if !downstream[ia].contains(&ib) {
                downstream[ia].push(ib);
                upstream[ib].push(ia);
            }
        }
        let order = topological_order(&upstream, &downstream).map_err(|cycle| {
            // Name the tasks of one cycle, so the edge to remove is easy to find.
            let names: Vec<&str> = cycle
                .iter()
                .chain(cycle.first())
                .map(|&i| self.tasks[i].task_id.as_str())
                .collect();
            err(format!(
                "the dependencies form a cycle: {}",
                names.join(" >> ")
            ))
        })?;
        if !self.params.is_object() {
            return Err(err("params must be a JSON object".to_string()));
        }
        Ok(Dag {
            inner: Arc::new(DagInner {
                dag_id: self.dag_id,
                tasks: self.tasks.into_iter().map(Arc::new).collect(),
                upstream,
                downstream,
                order,
                schedule: self.schedule,
                timezone: self.timezone,
                params: self.params,
                templates: TemplateEngine::new(self.search_path),
                max_active_tasks: self.max_active_tasks,
            }),
        })
    }
}

/// Airflow's rule for dag and task ids: letters, digits, `_`, `-`, `.`, at most 250.
fn validate_id(id: &str) -> std::result::Result<(), &'static str> {
    if id.is_empty() || id.len() > 250 {
        return Err("must have 1 to 250 characters");
    }
    if !id
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err("may contain only letters, digits, '_', '-' and '.'");
    }
    Ok(())
}

/// Kahn's algorithm; ties keep insertion order. On a cycle, the error holds the
/// tasks of one cycle in dependency order (see [`find_cycle`]).
fn topological_order(
    upstream: &[Vec<usize>],
    downstream: &[Vec<usize>],
) -> std::result::Result<Vec<usize>, Vec<usize>> {
    let mut indegree: Vec<usize> = upstream.iter().map(Vec::len).collect();
    let mut ready: std::collections::VecDeque<usize> =
        (0..upstream.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(upstream.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &d in &downstream[i] {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.push_back(d);
            }
        }
    }
    if order.len() == upstream.len() {
        Ok(order)
    } else {
        Err(find_cycle(upstream, &indegree))
    }
}

/// One cycle among the tasks Kahn's algorithm could not order (`indegree > 0`), each
/// task before the one that depends on it, starting from the task added first.
///
/// Every such task has an upstream that is also left over (else its indegree would
/// have dropped to 0), so walking upstream from one of them must come back to a task
/// already seen; the walk from there on is a cycle, in reverse.
fn find_cycle(upstream: &[Vec<usize>], indegree: &[usize]) -> Vec<usize> {
    let left = |i: usize| indegree[i] > 0;
    let Some(start) = (0..upstream.len()).find(|&i| left(i)) else {
        return Vec::new();
    };
    let mut seen_at: HashMap<usize, usize> = HashMap::new();
    let mut walk = Vec::new();
    let mut at = start;
    while !seen_at.contains_key(&at) {
        seen_at.insert(at, walk.len());
        walk.push(at);
        match upstream[at].iter().copied().find(|&u| left(u)) {
            Some(u) => at = u,
            None => return Vec::new(), // unreachable, by the argument above
        }
    }
    let mut cycle = walk.split_off(seen_at[&at]);
    cycle.reverse(); // upstream walk -> dependency order
    // Start from the task added first, for a stable message.
    if let Some(first) = (0..cycle.len()).min_by_key(|&k| cycle[k]) {
        cycle.rotate_left(first);
    }
    cycle
}

struct DagInner {
    dag_id: String,
    tasks: Vec<Arc<Task>>,
    upstream: Vec<Vec<usize>>,
    downstream: Vec<Vec<usize>>,
    order: Vec<usize>,
    schedule: Schedule,
    timezone: Tz,
    params: Value,
    templates: TemplateEngine,
    max_active_tasks: usize,
}

/// A validated DAG. Cheap to clone. Run it for one logical date with [`Dag::test`].
#[derive(Clone)]
pub struct Dag {
    inner: Arc<DagInner>,
}

impl fmt::Debug for Dag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dag")
            .field("dag_id", &self.inner.dag_id)
            .field("tasks", &self.task_ids())
            .field("schedule", &self.inner.schedule)
            .field("timezone", &self.inner.timezone)
            .finish()
    }
}

/// How one try of one task ended; see `Dag::run_one_try`.
#[cfg(feature = "cli")]
#[derive(Debug)]
pub(crate) struct OneTry {
    /// The try's value or error, secrets scrubbed.
    pub(crate) result: Result<Value>,
    /// Whether the task's policy would retry this error (its kind, not the count of
    /// tries left, which the caller owns).
    #[cfg_attr(not(feature = "airflow"), allow(dead_code))]
    pub(crate) retryable: bool,
    /// `(key, value)` of every XCom the task pushed, `return_value` included.
    pub(crate) xcoms: Vec<(String, Value)>,
}

/// Options of one run; see [`Dag::run`].
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The logical date; converted to the DAG's timezone.
    pub logical_date: DateTime<Tz>,
    /// The run id (default `manual__<logical date>`).
    pub run_id: Option<String>,
    /// Params merged over the DAG's defaults (Airflow's `dag_run.conf`-style override).
    pub params: Option<Value>,
    /// The data interval (default: the schedule's interval starting at the logical
    /// date). Airflow sends its own when it runs a task.
    pub data_interval: Option<(DateTime<Tz>, DateTime<Tz>)>,
}

impl RunConfig {
    /// A run at `logical_date` with default id and params.
    pub fn new(logical_date: DateTime<Tz>) -> Self {
        RunConfig {
            logical_date,
            run_id: None,
            params: None,
            data_interval: None,
        }
    }

    /// A run for the date a person types, as `airflow dags test DAG 2025-01-08`
    /// reads it: `YYYY-MM-DD` is midnight of that day in `tz` (the first instant of
    /// the day where a DST change skips midnight), an RFC 3339 timestamp
    /// (`2025-01-08T09:00:00+09:00`) is that instant.
    ///
    /// ```
    /// let run = gust::RunConfig::from_ds("2025-01-08", chrono_tz::Asia::Seoul)?;
    /// assert_eq!(run.logical_date.to_rfc3339(), "2025-01-08T00:00:00+09:00");
    /// # Ok::<(), gust::Error>(())
    /// ```
    pub fn from_ds(ds: &str, tz: Tz) -> Result<Self> {
        Ok(RunConfig::new(parse_logical_date(ds, tz)?))
    }
}

/// See [`RunConfig::from_ds`].
fn parse_logical_date(ds: &str, tz: Tz) -> Result<DateTime<Tz>> {
    use chrono::{NaiveDate, TimeZone};
    let text = ds.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&tz));
    }
    let invalid = |why: &str| {
        Error::new(
            ErrorKind::InvalidInput,
            "dag.logical_date",
            format!("{ds:?} {why} (expected YYYY-MM-DD or an RFC 3339 timestamp)"),
        )
    };
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| invalid(&format!("is not a date: {e}")))?;
    // A day always has a first instant; walk forward past a DST gap at midnight.
    (0..=24 * 60)
        .step_by(15)
        .find_map(|minutes| {
            let local = date.and_hms_opt(0, 0, 0)? + chrono::Duration::minutes(minutes);
            tz.from_local_datetime(&local).earliest()
        })
        .ok_or_else(|| invalid(&format!("has no local midnight in {tz}")))
}

impl Dag {
    /// Starts a DAG with id `dag_id`.
    pub fn builder(dag_id: impl Into<String>) -> DagBuilder {
        DagBuilder {
            dag_id: dag_id.into(),
            tasks: Vec::new(),
            edges: Arc::new(Mutex::new(Vec::new())),
            schedule: Schedule::None,
            timezone: chrono_tz::UTC,
            params: Value::Object(Default::default()),
            search_path: Vec::new(),
            max_active_tasks: 16,
        }
    }

    /// The DAG's id.
    pub fn dag_id(&self) -> &str {
        &self.inner.dag_id
    }

    /// Task ids in a topological order.
    pub fn task_ids(&self) -> Vec<&str> {
        self.inner
            .order
            .iter()
            .map(|&i| self.inner.tasks[i].task_id.as_str())
            .collect()
    }

    /// The DAG's timezone.
    pub fn timezone(&self) -> Tz {
        self.inner.timezone
    }

    /// A [`Context`] for task `task_id` at `logical_date`, without running anything:
    /// `dag.context_for(..)?.render(field)` previews what a task would send
    /// (Airflow's `airflow tasks render`).
    pub fn context_for(&self, task_id: &str, config: &RunConfig) -> Result<Context> {
        if !self.inner.tasks.iter().any(|t| t.task_id == task_id) {
            return Err(Error::new(
                ErrorKind::NotFound,
                "dag.context_for",
                format!("no task {task_id:?} in this DAG"),
            )
            .with("dag_id", &self.inner.dag_id));
        }
        Ok(Context::new(
            Arc::new(self.run_shared(config)),
            task_id.to_string(),
            1,
        ))
    }

    fn run_shared(&self, config: &RunConfig) -> RunShared {
        let logical_date = config.logical_date.with_timezone(&self.inner.timezone);
        let mut params = self.inner.params.clone();
        if let (Some(Value::Object(over)), Value::Object(base)) = (&config.params, &mut params) {
            for (k, v) in over {
                base.insert(k.clone(), v.clone());
            }
        }
        RunShared::new(
            self.inner.dag_id.clone(),
            config
                .run_id
                .clone()
                .unwrap_or_else(|| manual_run_id(&logical_date)),
            logical_date,
            config
                .data_interval
                .map(|(a, b)| {
                    (
                        a.with_timezone(&self.inner.timezone),
                        b.with_timezone(&self.inner.timezone),
                    )
                })
                .unwrap_or_else(|| self.inner.schedule.data_interval(logical_date)),
            params,
            self.inner.templates.clone(),
        )
    }

    #[cfg(feature = "cli")]
    /// Runs one try of task `task_id` alone, as `airflow tasks run` does: no
    /// upstream task runs, their XComs come from `upstream`
    /// (`(task_id, key, value)`) or, for the ones not given, `remote_xcom`; the
    /// caller owns retries and says whether it has `retries_left` (which
    /// callback a failure calls). Returns the try's
    /// result (secrets scrubbed) and every XCom the task pushed, its return value
    /// included.
    pub(crate) async fn run_one_try(
        &self,
        task_id: &str,
        config: &RunConfig,
        try_number: u32,
        upstream: impl IntoIterator<Item = (String, String, Value)>,
        remote_xcom: Option<RemoteXCom>,
        retries_left: bool,
    ) -> Result<OneTry> {
        let task = self.task(task_id)?;
        let shared = self.shared_with(config, upstream, remote_xcom);
        let ctx = Context::new(shared.clone(), task_id.to_string(), try_number.max(1));
        let span = dag_run_span(&shared);
        let result = task.run_one(&ctx, retries_left).instrument(span).await;
        let retryable = match &result {
            Ok(_) => false,
            Err(e) => task.options.no_retry_reason(e).is_none(),
        };
        Ok(OneTry {
            result,
            retryable,
            xcoms: shared.xcoms_of(task_id),
        })
    }

    #[cfg(feature = "cli")]
    /// Runs task `task_id` alone with its retries (`tasks test`), upstream XComs
    /// from `upstream`; its return value.
    pub(crate) async fn run_task_with_retries(
        &self,
        task_id: &str,
        config: &RunConfig,
        upstream: impl IntoIterator<Item = (String, String, Value)>,
    ) -> Result<Value> {
        let task = self.task(task_id)?;
        let shared = self.shared_with(config, upstream, None);
        let span = dag_run_span(&shared);
        let id = task_id.to_string();
        task.run(|try_number| Context::new(shared.clone(), id.clone(), try_number))
            .instrument(span)
            .await
            .result
    }

    #[cfg(feature = "cli")]
    /// The context task `task_id` would run with and its operator's templated
    /// fields rendered in it (`tasks render`).
    pub(crate) fn render_task(
        &self,
        task_id: &str,
        config: &RunConfig,
        upstream: impl IntoIterator<Item = (String, String, Value)>,
    ) -> Result<(Context, Vec<(String, String)>)> {
        let task = self.task(task_id)?;
        let shared = self.shared_with(config, upstream, None);
        let ctx = Context::new(shared, task_id.to_string(), 1);
        let fields = task.operator.rendered_fields(&ctx)?;
        Ok((ctx, fields))
    }

    #[cfg(feature = "cli")]
    /// The state of a run for one task run alone: the run's, with the XComs
    /// of other tasks from `upstream` (`(task_id, key, value)`), else fetched
    /// through `remote_xcom`.
    fn shared_with(
        &self,
        config: &RunConfig,
        upstream: impl IntoIterator<Item = (String, String, Value)>,
        remote_xcom: Option<RemoteXCom>,
    ) -> Arc<RunShared> {
        let mut shared = self.run_shared(config);
        if let Some(remote) = remote_xcom {
            shared = shared.with_remote_xcom(remote);
        }
        let shared = Arc::new(shared);
        for (t, key, value) in upstream {
            shared.xcom_set(&t, &key, value);
        }
        shared
    }

    #[cfg(feature = "cli")]
    fn task(&self, task_id: &str) -> Result<Arc<Task>> {
        self.inner
            .tasks
            .iter()
            .find(|t| t.task_id == task_id)
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    "dag.task",
                    format!("no task {task_id:?} in this DAG"),
                )
                .with("dag_id", &self.inner.dag_id)
                .with("task_id", task_id)
            })
    }

    /// Runs every task once for `logical_date`, locally (Airflow's `dag.test()`).
    pub async fn test(&self, logical_date: DateTime<Tz>) -> RunReport {
        self.run(RunConfig::new(logical_date)).await
    }

    /// Runs every task for one logical date: in dependency order, independent tasks
    /// concurrently up to `max_active_tasks`; tasks downstream of a failure become
    /// `upstream_failed`. Never panics on a panicking task: that task fails, without
    /// retries, with the panic message and location in its error (see [`Task`]).
    pub async fn run(&self, config: RunConfig) -> RunReport {
        let shared = Arc::new(self.run_shared(&config));
        let span = dag_run_span(&shared);
        self.run_inner(shared).instrument(span).await
    }

    async fn run_inner(&self, shared: Arc<RunShared>) -> RunReport {
        let dag = &self.inner;
        let n = dag.tasks.len();
        let started = Instant::now();
        tracing::info!(tasks = n, "dag run started");
        let mut states: Vec<Option<TaskReport>> = vec![None; n];
        let mut waiting: Vec<usize> = dag.upstream.iter().map(Vec::len).collect();
        let mut ready: Vec<usize> = dag
            .order
            .iter()
            .copied()
            .filter(|&i| waiting[i] == 0)
            .collect();
        ready.reverse(); // pop() takes them in topological order
        let mut running = FuturesUnordered::new();

        loop {
            while running.len() < dag.max_active_tasks {
                let Some(i) = ready.pop() else { break };
                let task = dag.tasks[i].clone();
                let shared = shared.clone();
                let handle = tokio::spawn(
                    async move {
                        let t0 = Instant::now();
                        let id = task.task_id.clone();
                        let out = task
                            .run(|try_number| Context::new(shared.clone(), id.clone(), try_number))
                            .await;
                        (out, t0.elapsed())
                    }
                    .in_current_span(),
                );
                running.push(async move { (i, handle.await) });
            }
            let Some((i, joined)) = running.next().await else {
                break;
            };
            let task_id = dag.tasks[i].task_id.clone();
            let report = match joined {
                Ok((outcome, duration)) => TaskReport {
                    task_id,
                    state: match &outcome.result {
                        Ok(_) => TaskState::Success,
                        Err(e) if e.is_skip() => TaskState::Skipped,
                        Err(_) => TaskState::Failed,
                    },
                    tries: outcome.tries,
                    duration,
                    error: outcome.result.err().map(|e| e.to_string()),
                },
                // The operator's and the callbacks' panics are caught inside
                // `Task::run`, where they go through the retry policy and callbacks;
                // this is only the safety net for anything else in the spawned future.
                Err(join_error) => {
                    let e = if join_error.is_panic() {
                        let payload = join_error.into_panic();
                        dag.tasks[i].panic_error(&*payload)
                    } else {
                        Error::new(
                            ErrorKind::TaskFailed,
                            "task.execute",
                            "the task was cancelled",
                        )
                        .with("task_id", &task_id)
                    }
                    .redact(&shared.secrets());
                    tracing::error!(task_id = %task_id, error = %e, "task failed");
                    TaskReport {
                        task_id,
                        state: TaskState::Failed,
                        tries: 1,
                        duration: Duration::ZERO,
                        error: Some(e.to_string()),
                    }
                }
            };
            let state = report.state;
            states[i] = Some(report);
            match state {
                TaskState::Success => {
                    for &d in &dag.downstream[i] {
                        waiting[d] -= 1;
                        if waiting[d] == 0 && states[d].is_none() {
                            ready.insert(0, d);
                        }
                    }
                }
                TaskState::Skipped => mark_downstream(
                    i,
                    TaskState::Skipped,
                    &dag.downstream,
                    &mut states,
                    &dag.tasks,
                ),
                _ => mark_downstream(
                    i,
                    TaskState::UpstreamFailed,
                    &dag.downstream,
                    &mut states,
                    &dag.tasks,
                ),
            }
        }

        let tasks: Vec<TaskReport> = dag
            .order
            .iter()
            .map(|&i| {
                states[i].clone().unwrap_or_else(|| TaskReport {
                    task_id: dag.tasks[i].task_id.clone(),
                    state: TaskState::UpstreamFailed,
                    tries: 0,
                    duration: Duration::ZERO,
                    error: None,
                })
            })
            .collect();
        let xcom = tasks
            .iter()
            .filter(|t| t.state == TaskState::Success)
            .filter_map(|t| {
                shared
                    .xcom_get(&t.task_id, crate::context::RETURN_VALUE)
                    .map(|v| (t.task_id.clone(), v))
            })
            .collect();
        let all_xcoms = tasks
            .iter()
            .filter(|t| t.state == TaskState::Success)
            .flat_map(|t| {
                shared
                    .xcoms_of(&t.task_id)
                    .into_iter()
                    .map(|(k, v)| (t.task_id.clone(), k, v))
            })
            .collect();
        let report = RunReport {
            all_xcoms,
            dag_id: shared.dag_id.clone(),
            run_id: shared.run_id.clone(),
            logical_date: shared.logical_date,
            duration: started.elapsed(),
            tasks,
            xcom,
        };
        if report.is_success() {
            tracing::info!(duration = ?report.duration, "dag run succeeded");
        } else {
            tracing::error!(duration = ?report.duration, failed = ?report.failed_task_ids(), "dag run failed");
        }
        report
    }
}

/// Marks every task downstream of `from` that has not run `state`
/// (`upstream_failed` or `skipped`), as Airflow's `all_success` trigger rule
/// does. A failure wins over a skip: a task skipped because one upstream
/// skipped becomes `upstream_failed` when another upstream fails.
fn mark_downstream(
    from: usize,
    state: TaskState,
    downstream: &[Vec<usize>],
    states: &mut [Option<TaskReport>],
    tasks: &[Arc<Task>],
) {
    let mut stack = downstream[from].clone();
    let mut seen = HashSet::new();
    while let Some(d) = stack.pop() {
        let overridable = match &states[d] {
            None => true,
            // Skipped for an upstream's skip (it never ran).
            Some(r) => {
                state == TaskState::UpstreamFailed && r.state == TaskState::Skipped && r.tries == 0
            }
        };
        if !seen.insert(d) || !overridable {
            continue;
        }
        if state == TaskState::UpstreamFailed {
            tracing::warn!(task_id = %tasks[d].task_id, "upstream failed");
        } else {
            tracing::info!(task_id = %tasks[d].task_id, "skipped: a task upstream was skipped");
        }
        states[d] = Some(TaskReport {
            task_id: tasks[d].task_id.clone(),
            state,
            tries: 0,
            duration: Duration::ZERO,
            error: None,
        });
        stack.extend(downstream[d].iter().copied());
    }
}

/// The span every task of a run logs under.
fn dag_run_span(shared: &RunShared) -> tracing::Span {
    tracing::info_span!(
        "dag_run",
        dag_id = %shared.dag_id,
        run_id = %shared.run_id,
        logical_date = %shared.logical_date.to_rfc3339(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop(id: &str) -> Task {
        Task::from_fn(id, |_ctx| async { Ok(Value::Null) })
    }

    #[test]
    fn build_rejects_duplicates_unknown_ids_and_cycles() {
        let mut b = Dag::builder("d");
        b.add(noop("a"));
        b.add(noop("a"));
        let e = b.build().unwrap_err();
        assert!(e.to_string().contains("used twice"), "{e}");

        let mut b = Dag::builder("d");
        b.add(noop("a"));
        b.chain(["a", "ghost"]);
        let e = b.build().unwrap_err();
        assert!(e.to_string().contains("unknown task id \"ghost\""), "{e}");

        let mut b = Dag::builder("d");
        let a = b.add(noop("a"));
        let c = b.add(noop("b"));
        let _ = &a >> &c >> &a;
        let e = b.build().unwrap_err();
        assert!(e.to_string().contains("cycle"), "{e}");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);

        let mut b = Dag::builder("d");
        b.add(noop("bad id!"));
        assert!(b.build().is_err());
    }

    // Issue #11: the error names the tasks of one cycle, in dependency order.
    #[test]
    fn a_cycle_is_named_in_order() {
        let mut b = Dag::builder("d");
        let extract = b.add(noop("extract"));
        let a = b.add(noop("a"));
        let c = b.add(noop("c"));
        let bb = b.add(noop("b"));
        let report = b.add(noop("report"));
        let _ = &extract >> &a >> &bb >> &c >> &a;
        let _ = &c >> &report;
        let e = b.build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let text = e.to_string();
        assert!(
            text.contains("the dependencies form a cycle: a >> b >> c >> a"),
            "{text}"
        );
        // Tasks outside the cycle are not named in it.
        assert!(
            !text.contains("extract") && !text.contains("report"),
            "{text}"
        );

        // Named from the task added first, whichever way the chain was written.
        let mut b = Dag::builder("d");
        b.add(noop("x"));
        b.add(noop("y"));
        b.chain(["y", "x", "y"]);
        let e = b.build().unwrap_err();
        assert!(e.to_string().contains("cycle: x >> y >> x"), "{e}");
    }

    #[test]
    fn topological_order_respects_edges() {
        let mut b = Dag::builder("d");
        let x = b.add(noop("x"));
        let y = b.add(noop("y"));
        let z = b.add(noop("z"));
        let _ = &z >> [&y, &x];
        let _ = &y >> &x;
        let dag = b.build().unwrap();
        assert_eq!(dag.task_ids(), vec!["z", "y", "x"]);
    }

    #[test]
    fn run_config_from_a_typed_date() {
        let seoul = chrono_tz::Asia::Seoul;
        let r = RunConfig::from_ds("2025-01-08", seoul).unwrap();
        assert_eq!(r.logical_date.to_rfc3339(), "2025-01-08T00:00:00+09:00");
        let r = RunConfig::from_ds("2025-01-08T00:00:00Z", seoul).unwrap();
        assert_eq!(r.logical_date.to_rfc3339(), "2025-01-08T09:00:00+09:00");
        // Midnight does not exist in Santiago on the day DST starts.
        let r = RunConfig::from_ds("2024-09-08", chrono_tz::America::Santiago).unwrap();
        assert_eq!(r.logical_date.to_rfc3339(), "2024-09-08T01:00:00-03:00");
        for bad in ["2025-13-01", "08/01/2025", ""] {
            let e = RunConfig::from_ds(bad, seoul).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
            assert!(e.to_string().contains("YYYY-MM-DD"), "{e}");
        }
    }
}
