//! The Python DAG file Airflow schedules a gust pipeline binary with.
//!
//! Airflow needs a Python DAG file to know a DAG's tasks, edges, schedule and
//! retry policy; the tasks themselves still run in the gust binary. The file
//! mirrors the gust DAG one to one: the same dag and task ids, one Airflow
//! task per gust task, the same edges, and each task's `retries`,
//! `retry_delay`, `retry_exponential_backoff`, `max_retry_delay` and
//! `execution_timeout`. It is generated, deterministic and not meant to be
//! edited: regenerate it whenever the gust DAG changes. Each DAG object is
//! bound to a module-level name (`etl_dag = etl()` for DAG `etl`), so Python
//! tasks can be added to a generated DAG by appending a block to the file
//! (`with etl_dag: …`, the gust tasks looked up with `etl_dag.get_task(id)`)
//! instead of editing it; Tier 3 of the tests does so
//! (`tests/data/airflow/e2e_python_tasks.py`).
//!
//! Two modes, for two generations of Airflow:
//!
//! * [`StubMode::Coordinator`] (Airflow ≥ 3.3): one `@task.stub(queue=…)` per
//!   task. Airflow's `ExecutableCoordinator`, mapped to that queue in
//!   `[sdk] queue_to_coordinator`, runs the task in the packed gust bundle,
//!   which reaches connections, variables and XComs through the supervisor.
//! * [`StubMode::Bash`] (Airflow < 3.3, also 3.3 without a coordinator): one
//!   `BashOperator` per task that runs
//!   `BINARY tasks run --run-id … --try-number … --xcom-dir DIR -c CONF --data-interval … -- DAG TASK LOGICAL_DATE`.
//!   Its limits:
//!   * one XCom per task, `return_value`, and a **string**: `do_xcom_push`
//!     pushes the last stdout line, the JSON the binary prints last; Python
//!     tasks downstream must `json.loads` it;
//!   * gust tasks read each other's XComs from `--xcom-dir`, not from Airflow,
//!     so **every worker must share that directory and have the binary at the
//!     same path**;
//!   * connections and variables come from the worker's environment
//!     (`AIRFLOW_CONN_*`, `AIRFLOW_VAR_*` or whatever gust is configured with),
//!     not from Airflow's metadata database;
//!   * exit code 99 marks the task skipped (`skip_on_exit_code=99`), any other
//!     non-zero code failed;
//!   * `run_id` goes into the command in single quotes, which relies on
//!     Airflow's default `[scheduler] allowed_run_id_pattern`
//!     (`^[A-Za-z0-9_.~:+-]+$`, no quote characters);
//!   * a dag or task id that starts with `-` reads as an option to the
//!     binary's command line;
//!   * the binary gets the logical date (a run without one, possible in
//!     Airflow 3, passes its `run_after`) and computes the data interval from
//!     its own [`Schedule`]: the same as Airflow's for scheduled runs, but a
//!     manual run's Airflow data interval (the last complete one before the
//!     logical date) can differ.
//!
//! Both modes give the DAG a data-interval timetable
//! (`CronDataIntervalTimetable("@daily", …)`, `timedelta(…)`), because that is
//! what gust's [`Schedule`] means: the run with logical date *D* covers
//! `[D, D + 1 day)`. Airflow 3's plain `schedule="@daily"` would instead make
//! the logical date the trigger time, one interval later. Each DAG gets a fixed
//! `start_date` of 2024-01-01 in its timezone and `catchup=False`, so Airflow
//! schedules only the latest interval.
//!
//! Not carried over: gust's `jitter(false)` (Airflow always jitters exponential
//! backoff) and task callbacks (they run in the binary, not in Airflow).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use crate::dag::{DagDescription, Schedule, TaskDescription};

/// How the generated Airflow tasks run the gust tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StubMode {
    /// Airflow ≥ 3.3: `@task.stub(queue=…)` tasks that Airflow's
    /// `ExecutableCoordinator` runs in the packed bundle.
    Coordinator {
        /// The queue mapped to the coordinator in `[sdk] queue_to_coordinator`.
        queue: String,
    },
    /// Airflow < 3.3: `BashOperator`s that call `BINARY tasks run …`.
    Bash {
        /// The pipeline binary's absolute path on the workers.
        binary: String,
        /// The XCom directory every worker shares (`--xcom-dir`).
        xcom_dir: String,
    },
}

/// The first logical date Airflow may schedule, in the DAG's timezone. Fixed,
/// so the file is the same every time it is generated; with `catchup=False`
/// Airflow schedules only the latest interval anyway.
const START_DATE: (i32, u32, u32) = (2024, 1, 1);

/// Names the generated file imports; no generated function or variable may
/// shadow them (a task called `task` would break every later `@task.stub`).
const IMPORTED: [&str; 7] = [
    "BashOperator",
    "CronDataIntervalTimetable",
    "DeltaDataIntervalTimetable",
    "dag",
    "pendulum",
    "task",
    "timedelta",
];

/// Python's keywords (`keyword.kwlist` of 3.11): not usable as names.
const KEYWORDS: [&str; 35] = [
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// The Python source of a DAG file for `dags`.
pub(crate) fn python(dags: &[DagDescription], mode: &StubMode) -> String {
    let mut out = String::new();
    header(&mut out, mode);
    imports(&mut out, dags, mode);
    let mut module_names = Names::new();
    for desc in dags {
        let fn_name = module_names.take(&identifier(&desc.dag_id));
        let dag_var = module_names.take(&format!("{fn_name}_dag"));
        out.push_str("\n\n");
        dag_block(&mut out, desc, &fn_name, &dag_var, mode);
    }
    out
}

fn header(out: &mut String, mode: &StubMode) {
    let version = env!("CARGO_PKG_VERSION");
    let _ = writeln!(
        out,
        "# Generated by gust {version}: the Airflow side of a gust pipeline binary."
    );
    let regenerate = match mode {
        StubMode::Coordinator { .. } => "<pipeline binary>".to_string(),
        StubMode::Bash { binary, .. } => comment_text(binary),
    };
    let _ = writeln!(
        out,
        "# Do not edit: regenerate it with `{regenerate} airflow stub-dag`."
    );
    match mode {
        StubMode::Coordinator { queue } => {
            out.push_str("#\n# Airflow >= 3.3. Each task is a @task.stub on queue ");
            out.push_str(&comment_text(queue));
            out.push_str(
                ":\n# map that queue to an ExecutableCoordinator in [sdk] queue_to_coordinator,\n\
                 # whose executables_root holds the packed pipeline binary.\n",
            );
        }
        StubMode::Bash { xcom_dir, .. } => {
            out.push_str(
                "#\n# Each task is a BashOperator that runs `tasks run` in the pipeline binary and\n\
                 # pushes the last line it prints (the task's JSON result) as a string XCom.\n\
                 # Every worker needs the binary at the same path and a shared XCom directory:\n# ",
            );
            out.push_str(&comment_text(xcom_dir));
            out.push('\n');
        }
    }
}

fn imports(out: &mut String, dags: &[DagDescription], mode: &StubMode) {
    out.push_str("\nfrom datetime import timedelta\n\nimport pendulum\n");
    // Only the timetables the DAGs use, in a fixed order.
    let timetables: Vec<&str> = ["CronDataIntervalTimetable", "DeltaDataIntervalTimetable"]
        .into_iter()
        .filter(|&name| dags.iter().any(|d| timetable(&d.schedule) == Some(name)))
        .collect();
    match mode {
        StubMode::Coordinator { .. } => {
            let mut names = timetables.clone();
            names.extend(["dag", "task"]);
            let _ = writeln!(out, "from airflow.sdk import {}", names.join(", "));
        }
        StubMode::Bash { .. } => {
            // The fallback imports let the same file load on Airflow 2.
            out.push_str(
                "\ntry:  # Airflow 3\n    from airflow.sdk import dag\n\
                 except ImportError:  # Airflow 2\n    from airflow.decorators import dag\n",
            );
            if !timetables.is_empty() {
                let names = timetables.join(", ");
                let _ = write!(
                    out,
                    "try:\n    from airflow.sdk import {names}\n\
                     except ImportError:  # older Airflow\n    \
                     from airflow.timetables.interval import {names}\n",
                );
            }
            out.push_str(
                "try:  # the standard provider\n    \
                 from airflow.providers.standard.operators.bash import BashOperator\n\
                 except ImportError:  # Airflow 2 without it\n    \
                 from airflow.operators.bash import BashOperator\n",
            );
        }
    }
}

/// The Python names of one task: the `@task.stub` function (coordinator mode)
/// and the variable that holds the task for the edges.
struct TaskNames {
    function: Option<String>,
    var: String,
}

/// One `@dag` function and its call, the DAG object bound to `dag_var` at
/// module level: Airflow finds it there, and code appended to the file can add
/// tasks to it (`with etl_dag: …`) without editing the generated ones.
fn dag_block(
    out: &mut String,
    desc: &DagDescription,
    fn_name: &str,
    dag_var: &str,
    mode: &StubMode,
) {
    let tz = py_str(desc.timezone.name());
    let (y, m, d) = START_DATE;
    out.push_str("@dag(\n");
    let _ = writeln!(out, "    dag_id={},", py_str(&desc.dag_id));
    let _ = writeln!(out, "    schedule={},", schedule(&desc.schedule, &tz));
    let _ = writeln!(
        out,
        "    start_date=pendulum.datetime({y}, {m}, {d}, tz={tz}),"
    );
    out.push_str("    catchup=False,\n");
    let _ = writeln!(out, "    max_active_tasks={},", desc.max_active_tasks);
    let _ = writeln!(out, "    params={},", py_literal(&desc.params));
    out.push_str("    tags=[\"gust\"],\n)\n");
    let _ = writeln!(out, "def {fn_name}():");

    let mut names = Names::new();
    let task_names: Vec<TaskNames> = desc
        .tasks
        .iter()
        .map(|t| {
            let base = identifier(&t.task_id);
            match mode {
                StubMode::Coordinator { .. } => {
                    let function = names.take(&base);
                    let var = names.take(&format!("{function}_task"));
                    TaskNames {
                        function: Some(function),
                        var,
                    }
                }
                StubMode::Bash { .. } => TaskNames {
                    function: None,
                    var: names.take(&base),
                },
            }
        })
        .collect();
    let var_of = |task_id: &str| {
        desc.tasks
            .iter()
            .position(|t| t.task_id == task_id)
            .map(|i| task_names[i].var.as_str())
    };

    if desc.tasks.is_empty() {
        out.push_str("    pass\n");
    }
    for (t, n) in desc.tasks.iter().zip(&task_names) {
        match mode {
            StubMode::Coordinator { queue } => {
                let function = n.function.as_deref().unwrap_or(&n.var);
                out.push_str("    @task.stub(\n");
                let _ = writeln!(out, "        task_id={},", py_str(&t.task_id));
                let _ = writeln!(out, "        queue={},", py_str(queue));
                retry_kwargs(out, t, "2.0", "0");
                out.push_str("    )\n");
                let _ = writeln!(out, "    def {function}():\n        ...\n");
            }
            StubMode::Bash { binary, xcom_dir } => {
                let _ = writeln!(out, "    {} = BashOperator(", n.var);
                let _ = writeln!(out, "        task_id={},", py_str(&t.task_id));
                let command = bash_command(binary, xcom_dir, &desc.dag_id, &t.task_id);
                let _ = writeln!(out, "        bash_command={},", py_str(&command));
                let _ = writeln!(
                    out,
                    "        do_xcom_push=True,\n        skip_on_exit_code={},",
                    super::SKIPPED_EXIT_CODE
                );
                retry_kwargs(out, t, "True", "False");
                out.push_str("    )\n\n");
            }
        }
    }
    // Coordinator mode: call each stub once; the calls are the tasks.
    for n in &task_names {
        if let Some(function) = &n.function {
            let _ = writeln!(out, "    {} = {function}()", n.var);
        }
    }
    if matches!(mode, StubMode::Coordinator { .. }) && !desc.tasks.is_empty() {
        out.push('\n');
    }
    for (t, n) in desc.tasks.iter().zip(&task_names) {
        let upstream: Vec<&str> = t.upstream.iter().filter_map(|u| var_of(u)).collect();
        match upstream.as_slice() {
            [] => {}
            [one] => {
                let _ = writeln!(out, "    {one} >> {}", n.var);
            }
            many => {
                let _ = writeln!(out, "    [{}] >> {}", many.join(", "), n.var);
            }
        }
    }
    // `dag_block` ends with exactly one newline whatever the DAG has, so the
    // call below stays two blank lines away from the body.
    while out.ends_with("\n\n") {
        out.pop();
    }
    let _ = write!(out, "\n\n{dag_var} = {fn_name}()\n");
}

/// The retry keyword arguments of one task. `retry_exponential_backoff` is a
/// multiplier since Airflow 3.3 (`2.0` doubles, `0` is constant) and a bool
/// before, so each mode passes its own spelling.
fn retry_kwargs(out: &mut String, t: &TaskDescription, backoff_on: &str, backoff_off: &str) {
    let _ = writeln!(out, "        retries={},", t.retries);
    let _ = writeln!(out, "        retry_delay={},", py_timedelta(t.retry_delay));
    let backoff = if t.retry_exponential_backoff {
        backoff_on
    } else {
        backoff_off
    };
    let _ = writeln!(out, "        retry_exponential_backoff={backoff},");
    let _ = writeln!(
        out,
        "        max_retry_delay={},",
        t.max_retry_delay.map_or("None".to_string(), py_timedelta)
    );
    let _ = writeln!(
        out,
        "        execution_timeout={},",
        t.execution_timeout.map_or("None".to_string(), py_timedelta)
    );
}

/// The timetable class `schedule` needs, if any.
fn timetable(schedule: &Schedule) -> Option<&'static str> {
    match schedule {
        Schedule::None => None,
        Schedule::Every(_) => Some("DeltaDataIntervalTimetable"),
        _ => Some("CronDataIntervalTimetable"),
    }
}

fn cron_preset(schedule: &Schedule) -> Option<&'static str> {
    match schedule {
        Schedule::Hourly => Some("@hourly"),
        Schedule::Daily => Some("@daily"),
        Schedule::Weekly => Some("@weekly"),
        Schedule::Monthly => Some("@monthly"),
        Schedule::None | Schedule::Every(_) => None,
    }
}

/// The `schedule=` argument; `tz` is the timezone as a Python string literal.
fn schedule(schedule: &Schedule, tz: &str) -> String {
    match (schedule, cron_preset(schedule)) {
        (_, Some(preset)) => format!(
            "CronDataIntervalTimetable({}, timezone={tz})",
            py_str(preset)
        ),
        (Schedule::Every(d), None) => format!("DeltaDataIntervalTimetable({})", py_timedelta(*d)),
        _ => "None".to_string(),
    }
}

/// `BINARY tasks run --run-id 'RUN_ID' --try-number N --xcom-dir 'DIR' -c 'CONF'
/// [--data-interval 'START' 'END'] -- DAG TASK 'LOGICAL_DATE'` as a Jinja
/// template for the shell.
///
/// - The logical date falls back to the run's `run_after`: an Airflow 3 run
///   triggered without a logical date has none, and `logical_date` is then
///   missing from the context (and so is the data interval).
/// - The data interval and `dag_run.conf` are Airflow's, so templates render as
///   they would in coordinator mode. Jinja's `tojson` escapes `'`, so the conf
///   stays one single-quoted shell word.
/// - The ids come after `--`: an id starting with `-` is not an option.
fn bash_command(binary: &str, xcom_dir: &str, dag_id: &str, task_id: &str) -> String {
    format!(
        "{} tasks run --run-id '{{{{ run_id }}}}' --try-number {{{{ ti.try_number }}}} \
         --xcom-dir {} -c '{{{{ (dag_run.conf or {{}}) | tojson }}}}' \
         {{% if data_interval_start %}}--data-interval '{{{{ data_interval_start | ts }}}}' \
         '{{{{ data_interval_end | ts }}}}' {{% endif %}}\
         -- {} {} '{{{{ (dag_run.logical_date or dag_run.run_after) | ts }}}}'",
        jinja_text(&sh_quote(binary)),
        jinja_text(&sh_quote(xcom_dir)),
        jinja_text(&sh_word(dag_id)),
        jinja_text(&sh_word(task_id)),
    )
}

/// `s` in single quotes for a POSIX shell, a quote inside written `'"'"'`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r#"'"'"'"#))
}

/// `s` as one shell word: bare when it holds only characters no shell treats
/// specially (Python's `shlex.quote` rule), else single-quoted.
fn sh_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c));
    if plain { s.to_string() } else { sh_quote(s) }
}

/// Literal text inside a Jinja template: every `{` written as the expression
/// `{{ '{' }}`, so no `{{`, `{%` or `{#` in a path opens a Jinja block.
fn jinja_text(s: &str) -> String {
    s.replace('{', "{{ '{' }}")
}

/// `timedelta(seconds=N)`, exact to the nanosecond (`seconds=1.5`).
fn py_timedelta(d: Duration) -> String {
    format!("timedelta(seconds={})", super::exact_seconds(d))
}

/// A Python identifier for `id`: ASCII letters, digits and `_` kept, anything
/// else `_`; a leading digit gets a `_` before it and a keyword one after it.
/// Non-ASCII letters are replaced too: Python would NFKC-normalize them, and
/// two different ids could then name the same function.
fn identifier(id: &str) -> String {
    let mut out: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if KEYWORDS.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

/// The names of one Python scope, so two ids that mangle alike (`a.b`, `a-b`)
/// or an id named like an import get distinct names (`a_b`, `a_b_2`).
struct Names(HashSet<String>);

impl Names {
    fn new() -> Self {
        Names(IMPORTED.iter().map(|s| s.to_string()).collect())
    }

    fn take(&mut self, base: &str) -> String {
        if self.0.insert(base.to_string()) {
            return base.to_string();
        }
        let mut n = 2u64;
        loop {
            let name = format!("{base}_{n}");
            if self.0.insert(name.clone()) {
                return name;
            }
            n += 1;
        }
    }
}

/// A Python string literal for `s`, pure ASCII: quotes, backslashes, control
/// and non-ASCII characters escaped, so no value can end the literal or the
/// line early and the file's encoding never matters.
fn py_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// A JSON value as a Python literal: `true`/`false`/`null` as
/// `True`/`False`/`None`, strings through [`py_str`], keys in their order.
fn py_literal(v: &Value) -> String {
    match v {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        // serde_json writes integers bare and floats with `.` or `e`
        // (`1.0`, `1e+300`): the same values in Python's syntax.
        Value::Number(n) => n.to_string(),
        Value::String(s) => py_str(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(py_literal).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", py_str(k), py_literal(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// `s` for a `#` comment: control characters escaped, so a path with a newline
/// cannot end the comment and start code.
fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;
    use crate::{Dag, Task, TaskOptions};
    use serde_json::json;

    fn noop(id: &str) -> Task {
        Task::from_fn(id, |_| async { Ok(Value::Null) })
    }

    fn coordinator() -> StubMode {
        StubMode::Coordinator {
            queue: "gust".to_string(),
        }
    }

    /// A path with a space, a quote, `$`, backquotes and every Jinja opener.
    const BINARY: &str = "/opt/gust bin/it's {{ x }}{% y %}{# z #}/pipe";
    const XCOM_DIR: &str = "/shared/x com/$HOME/`id`";

    fn bash() -> StubMode {
        StubMode::Bash {
            binary: BINARY.to_string(),
            xcom_dir: XCOM_DIR.to_string(),
        }
    }

    fn params() -> Value {
        json!({
            "flag": true,
            "none": null,
            "ratio": 1.5,
            "big": 12345678901234567u64,
            "text": "it's \"quoted\"\n\t\\ {{ not jinja }} 데이터 🚀",
            "nested": {"list": [1, false, {"k": "v"}]},
        })
    }

    /// Three DAGs in one file: ids that are not Python identifiers (`2nd`,
    /// `load.v2-final`, `load-v2.final` that mangles alike, the keyword
    /// `class`, the imported name `task`, the Korean `데이터` that Airflow
    /// accepts too), every retry option, each kind of
    /// schedule, and a DAG without tasks.
    fn sample() -> Vec<DagDescription> {
        let mut b = Dag::builder("gust.sample-etl")
            .schedule(Schedule::Daily)
            .timezone(chrono_tz::Asia::Seoul)
            .params(params());
        let extract = b.add(noop("extract"));
        let second = b.add(
            noop("2nd").with_options(
                TaskOptions::default()
                    .retries(2)
                    .retry_delay(Duration::from_millis(1500))
                    .retry_exponential_backoff(true)
                    .max_retry_delay(Duration::from_secs(600)),
            ),
        );
        let class = b.add(
            noop("class")
                .with_options(TaskOptions::default().execution_timeout(Duration::from_secs(3600))),
        );
        let task = b.add(noop("task"));
        let load = b.add(noop("load.v2-final").with_options(TaskOptions::default().retries(5)));
        let load2 = b.add(noop("load-v2.final"));
        let korean = b.add(noop("데이터"));
        let _ = &extract >> [&second, &class];
        let _ = &second >> &task;
        let _ = &class >> &task;
        let _ = &task >> [&load, &load2];
        let _ = &load >> &korean;
        let etl = b.build().unwrap().describe();

        let mut b = Dag::builder("gust.every")
            .schedule(Schedule::Every(Duration::from_secs(5400)))
            .max_active_tasks(2);
        b.add(noop("only"));
        let every = b.build().unwrap().describe();

        let empty = Dag::builder("empty").build().unwrap().describe();
        vec![etl, every, empty]
    }

    #[test]
    fn identifiers_are_mangled_and_kept_apart() {
        assert_eq!(identifier("extract"), "extract");
        assert_eq!(identifier("load.v2-final"), "load_v2_final");
        assert_eq!(identifier("2nd"), "_2nd");
        assert_eq!(identifier("class"), "class_");
        assert_eq!(identifier("None"), "None_");
        assert_eq!(identifier("데이터"), "___");
        assert_eq!(identifier(""), "_");
        let mut names = Names::new();
        assert_eq!(names.take("a_b"), "a_b");
        assert_eq!(names.take("a_b"), "a_b_2");
        assert_eq!(names.take("a_b"), "a_b_3");
        assert_eq!(names.take("task"), "task_2");
        assert_eq!(names.take("timedelta"), "timedelta_2");
    }

    #[test]
    fn python_strings_escape_everything_that_could_end_them() {
        assert_eq!(py_str("plain id.v2-x"), r#""plain id.v2-x""#);
        assert_eq!(py_str("a\"b\\c\nd\re\tf"), r#""a\"b\\c\nd\re\tf""#);
        assert_eq!(
            py_str("\u{0}\u{7f}é데🚀"),
            r#""\x00\x7f\xe9\ub370\U0001f680""#
        );
        assert!(py_str("\u{2028}").is_ascii());
    }

    #[test]
    fn params_become_a_python_literal() {
        assert_eq!(
            py_literal(
                &json!({"t": true, "f": false, "n": null, "x": [1, 2.5, -0.0, 1e300], "s": "q\""})
            ),
            r#"{"t": True, "f": False, "n": None, "x": [1, 2.5, -0.0, 1e+300], "s": "q\""}"#
        );
        assert_eq!(py_literal(&json!({})), "{}");
    }

    #[test]
    fn shell_words_and_jinja_text_are_escaped() {
        assert_eq!(sh_quote("/a b/it's"), r#"'/a b/it'"'"'s'"#);
        assert_eq!(sh_word("gust.sample-etl"), "gust.sample-etl");
        assert_eq!(sh_word("데이터"), "'데이터'");
        assert_eq!(sh_word(""), "''");
        assert_eq!(
            jinja_text("a{{b}}{%c{#"),
            "a{{ '{' }}{{ '{' }}b}}{{ '{' }}%c{{ '{' }}#"
        );
        assert_eq!(jinja_text("/plain/path"), "/plain/path");
    }

    #[test]
    fn durations_and_schedules_map_to_python() {
        assert_eq!(
            py_timedelta(Duration::from_secs(300)),
            "timedelta(seconds=300)"
        );
        assert_eq!(
            py_timedelta(Duration::from_millis(1500)),
            "timedelta(seconds=1.5)"
        );
        assert_eq!(
            py_timedelta(Duration::from_nanos(1)),
            "timedelta(seconds=0.000000001)"
        );
        let tz = "\"Asia/Seoul\"";
        assert_eq!(schedule(&Schedule::None, tz), "None");
        assert_eq!(
            schedule(&Schedule::Hourly, tz),
            "CronDataIntervalTimetable(\"@hourly\", timezone=\"Asia/Seoul\")"
        );
        for (s, preset) in [
            (Schedule::Daily, "@daily"),
            (Schedule::Weekly, "@weekly"),
            (Schedule::Monthly, "@monthly"),
        ] {
            assert!(schedule(&s, tz).contains(&format!("(\"{preset}\", ")));
        }
        assert_eq!(
            schedule(&Schedule::Every(Duration::from_secs(5400)), tz),
            "DeltaDataIntervalTimetable(timedelta(seconds=5400))"
        );
    }

    /// The whole file for a two-task DAG, so a change of layout shows in review.
    #[test]
    fn a_coordinator_file_is_exactly_this() {
        let mut b = Dag::builder("etl")
            .schedule(Schedule::Hourly)
            .timezone(chrono_tz::Asia::Seoul)
            .params(json!({"limit": 10}));
        let a = b.add(noop("extract"));
        let c = b.add(
            noop("load.v2").with_options(
                TaskOptions::default()
                    .retries(3)
                    .retry_delay(Duration::from_secs(30))
                    .retry_exponential_backoff(true)
                    .max_retry_delay(Duration::from_secs(600))
                    .execution_timeout(Duration::from_secs(90)),
            ),
        );
        let _ = &a >> &c;
        let file = python(&[b.build().unwrap().describe()], &coordinator());
        let want = format!(
            r#"# Generated by gust {}: the Airflow side of a gust pipeline binary.
# Do not edit: regenerate it with `<pipeline binary> airflow stub-dag`.
#
# Airflow >= 3.3. Each task is a @task.stub on queue gust:
# map that queue to an ExecutableCoordinator in [sdk] queue_to_coordinator,
# whose executables_root holds the packed pipeline binary.

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, task


@dag(
    dag_id="etl",
    schedule=CronDataIntervalTimetable("@hourly", timezone="Asia/Seoul"),
    start_date=pendulum.datetime(2024, 1, 1, tz="Asia/Seoul"),
    catchup=False,
    max_active_tasks=16,
    params={{"limit": 10}},
    tags=["gust"],
)
def etl():
    @task.stub(
        task_id="extract",
        queue="gust",
        retries=0,
        retry_delay=timedelta(seconds=300),
        retry_exponential_backoff=0,
        max_retry_delay=None,
        execution_timeout=None,
    )
    def extract():
        ...

    @task.stub(
        task_id="load.v2",
        queue="gust",
        retries=3,
        retry_delay=timedelta(seconds=30),
        retry_exponential_backoff=2.0,
        max_retry_delay=timedelta(seconds=600),
        execution_timeout=timedelta(seconds=90),
    )
    def load_v2():
        ...

    extract_task = extract()
    load_v2_task = load_v2()

    extract_task >> load_v2_task


etl_dag = etl()
"#,
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(file, want);
    }

    #[test]
    fn every_task_is_declared_once_with_its_real_id_and_wired_by_its_edges() {
        let dags = sample();
        for mode in [coordinator(), bash()] {
            let file = python(&dags, &mode);
            assert_eq!(file, python(&dags, &mode), "deterministic");
            assert!(file.is_ascii());
            let per_task = match mode {
                StubMode::Coordinator { .. } => "    @task.stub(\n",
                StubMode::Bash { .. } => " = BashOperator(\n",
            };
            assert_eq!(file.matches(per_task).count(), 8, "{file}");
            for id in [
                "extract",
                "2nd",
                "class",
                "task",
                "load.v2-final",
                "load-v2.final",
                "only",
                "데이터",
            ] {
                assert_eq!(
                    file.matches(&format!("        task_id={},\n", py_str(id)))
                        .count(),
                    1,
                    "{id}"
                );
            }
            assert_eq!(file.matches("@dag(\n").count(), 3);
            for call in [
                "\ngust_sample_etl_dag = gust_sample_etl()\n",
                "\ngust_every_dag = gust_every()\n",
                "\nempty_dag = empty()\n",
            ] {
                assert!(file.contains(call), "{call}");
            }
            let (second, class, task, load, load2, korean) = match mode {
                StubMode::Coordinator { .. } => (
                    "_2nd_task",
                    "class__task",
                    "task_2_task",
                    "load_v2_final_task",
                    "load_v2_final_2_task",
                    "____task",
                ),
                StubMode::Bash { .. } => (
                    "_2nd",
                    "class_",
                    "task_2",
                    "load_v2_final",
                    "load_v2_final_2",
                    "___",
                ),
            };
            let extract = if matches!(mode, StubMode::Bash { .. }) {
                "extract"
            } else {
                "extract_task"
            };
            let edges: Vec<&str> = file.lines().filter(|l| l.contains(" >> ")).collect();
            assert_eq!(
                edges,
                [
                    format!("    {extract} >> {second}"),
                    format!("    {extract} >> {class}"),
                    format!("    [{second}, {class}] >> {task}"),
                    format!("    {task} >> {load}"),
                    format!("    {task} >> {load2}"),
                    format!("    {load} >> {korean}"),
                ]
            );
        }
    }

    #[test]
    fn a_bash_task_runs_the_binary_with_quoted_paths() {
        let cmd = bash_command("/opt/pipe", "/x com", "gust.etl", "load.v2-final");
        assert_eq!(
            cmd,
            "'/opt/pipe' tasks run --run-id '{{ run_id }}' --try-number {{ ti.try_number }} \
             --xcom-dir '/x com' -c '{{ (dag_run.conf or {}) | tojson }}' \
             {% if data_interval_start %}--data-interval '{{ data_interval_start | ts }}' \
             '{{ data_interval_end | ts }}' {% endif %}\
             -- gust.etl load.v2-final '{{ (dag_run.logical_date or dag_run.run_after) | ts }}'"
        );
        let file = python(&sample(), &bash());
        assert_eq!(file.matches("        do_xcom_push=True,\n").count(), 8);
        assert_eq!(file.matches("        skip_on_exit_code=99,\n").count(), 8);
        assert_eq!(file.matches("retry_exponential_backoff=True,\n").count(), 1);
        assert!(!file.contains("@task.stub"));
    }

    #[test]
    fn a_path_with_a_newline_stays_in_its_comment() {
        let mode = StubMode::Bash {
            binary: "/x\nimport os".to_string(),
            xcom_dir: "/y\rz".to_string(),
        };
        let file = python(&[], &mode);
        assert!(file.lines().all(|l| !l.starts_with("import os")), "{file}");
        assert!(file.contains("`/x\\nimport os airflow stub-dag`"));
    }

    // ---- the generated file as Airflow's own DagBag sees it ----

    /// The venv Python with Airflow, from `GUST_AIRFLOW_PYTHON`. Unset: the
    /// test fails under `CI=true` (CI must run it) and is skipped otherwise.
    fn airflow_python() -> Option<PathBuf> {
        match std::env::var_os("GUST_AIRFLOW_PYTHON") {
            Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
            _ => {
                let ci = std::env::var("CI").unwrap_or_default();
                assert!(
                    !(ci == "true" || ci == "1"),
                    "CI is set but GUST_AIRFLOW_PYTHON is not: point it at a Python with \
                     apache-airflow 3.3 installed"
                );
                eprintln!(
                    "skipped: set GUST_AIRFLOW_PYTHON to a Python with apache-airflow 3.3 \
                     (e.g. /work/airflow-venv/bin/python) to load the stub DAG in Airflow's DagBag"
                );
                None
            }
        }
    }

    /// Writes the stub for `sample()` and returns what `check_stub_dag.py` reports.
    fn airflow_report(python_bin: &Path, mode: &StubMode, file_name: &str) -> Value {
        let tmp = tempfile::tempdir().unwrap();
        let dag_file = tmp.path().join(file_name);
        std::fs::write(&dag_file, python(&sample(), mode)).unwrap();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/airflow_stub/check_stub_dag.py"
        );
        let out = Command::new(python_bin)
            .arg(script)
            .arg(&dag_file)
            .env("AIRFLOW_HOME", tmp.path().join("airflow-home"))
            .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
            .env("AIRFLOW__CORE__DAGS_FOLDER", tmp.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "check_stub_dag.py failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let last = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let report: Value = serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {last}\n{stdout}"));
        assert_eq!(report["import_errors"], json!({}), "{report:#}");
        let ids: Vec<&str> = report["dags"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(ids, ["empty", "gust.every", "gust.sample-etl"]);
        report
    }

    /// What both modes share: ids, edges, retry policy, schedule, timezone, params.
    fn assert_common(report: &Value, backoff_on: Value, backoff_off: Value) {
        let etl = &report["dags"]["gust.sample-etl"];
        assert_eq!(
            etl["schedule"],
            json!({"timetable": "CronDataIntervalTimetable", "expression": "0 0 * * *", "timezone": "Asia/Seoul"})
        );
        assert_eq!(etl["timezone"], "Asia/Seoul");
        assert_eq!(etl["start_date"], "2023-12-31T15:00:00+00:00");
        assert_eq!(etl["catchup"], false);
        assert_eq!(etl["params"], params());
        assert_eq!(etl["tags"], json!(["gust"]));
        let tasks = etl["tasks"].as_object().unwrap();
        let upstream: Vec<(&str, Value)> = tasks
            .iter()
            .map(|(id, t)| (id.as_str(), t["upstream"].clone()))
            .collect();
        assert_eq!(
            upstream,
            [
                ("extract", json!([])),
                ("2nd", json!(["extract"])),
                ("class", json!(["extract"])),
                ("task", json!(["2nd", "class"])),
                ("load.v2-final", json!(["task"])),
                ("load-v2.final", json!(["task"])),
                ("데이터", json!(["load.v2-final"])),
            ]
        );
        let t = &tasks["2nd"];
        assert_eq!(t["retries"], 2);
        assert_eq!(t["retry_delay"], 1.5);
        assert_eq!(t["retry_exponential_backoff"], backoff_on);
        assert_eq!(t["max_retry_delay"], 600.0);
        assert_eq!(t["execution_timeout"], Value::Null);
        let t = &tasks["class"];
        assert_eq!(t["retries"], 0);
        assert_eq!(t["retry_delay"], 300.0);
        assert_eq!(t["retry_exponential_backoff"], backoff_off);
        assert_eq!(t["execution_timeout"], 3600.0);
        assert_eq!(tasks["load.v2-final"]["retries"], 5);

        let every = &report["dags"]["gust.every"];
        assert_eq!(every["schedule"]["timetable"], "DeltaDataIntervalTimetable");
        assert_eq!(every["schedule"]["delta"], 5400.0);
        assert_eq!(every["timezone"], "UTC");
        assert_eq!(every["max_active_tasks"], 2);
        assert_eq!(every["tasks"]["only"]["upstream"], json!([]));

        let empty = &report["dags"]["empty"];
        assert_eq!(empty["schedule"]["timetable"], "NullTimetable");
        assert_eq!(empty["tasks"], json!({}));
    }

    #[test]
    fn airflow_loads_the_coordinator_stub() {
        let Some(py) = airflow_python() else { return };
        let report = airflow_report(&py, &coordinator(), "gust_stub_coordinator.py");
        assert_common(&report, json!(2.0), json!(0));
        for dag in report["dags"].as_object().unwrap().values() {
            for (id, t) in dag["tasks"].as_object().unwrap() {
                assert_eq!(t["operator"], "_StubOperator", "{id}");
                assert_eq!(t["queue"], "gust", "{id}");
            }
        }
    }

    #[test]
    fn airflow_loads_the_bash_stub_and_renders_the_exact_argv() {
        let Some(py) = airflow_python() else { return };
        let report = airflow_report(&py, &bash(), "gust_stub_bash.py");
        assert_common(&report, json!(true), json!(false));
        let argv = |dag: &str, task: &str, date: &str, interval: Option<(&str, &str)>| {
            let mut argv = json!([
                BINARY,
                "tasks",
                "run",
                "--run-id",
                "scheduled__2024-01-02T15:00:00+00:00",
                "--try-number",
                "3",
                "--xcom-dir",
                XCOM_DIR,
                "-c",
                // Jinja's tojson: sorted keys, `'` escaped.
                r#"{"k": "it\u0027s", "n": 1}"#,
            ]);
            let a = argv.as_array_mut().unwrap();
            if let Some((start, end)) = interval {
                a.extend([json!("--data-interval"), json!(start), json!(end)]);
            }
            a.extend([json!("--"), json!(dag), json!(task), json!(date)]);
            argv
        };
        for (dag_id, dag) in report["dags"].as_object().unwrap() {
            for (id, t) in dag["tasks"].as_object().unwrap() {
                assert_eq!(t["operator"], "BashOperator", "{id}");
                assert_eq!(t["do_xcom_push"], true, "{id}");
                assert_eq!(t["skip_on_exit_code"], json!([99]), "{id}");
                assert_eq!(
                    t["argv"],
                    argv(
                        dag_id,
                        id,
                        "2024-01-02T15:00:00+00:00",
                        Some(("2024-01-02T15:00:00+00:00", "2024-01-03T15:00:00+00:00"))
                    ),
                    "{id}"
                );
                // A run without a logical date (Airflow 3) passes its run_after
                // and no data interval.
                assert_eq!(
                    t["argv_without_logical_date"],
                    argv(dag_id, id, "2024-01-03T15:00:07+00:00", None),
                    "{id}"
                );
            }
        }
    }
}
