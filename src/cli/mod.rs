//! A command line for every pipeline binary, with Airflow's verbs (feature `cli`).
//!
//! A pipeline's `main` builds its DAGs and hands them to [`main`]; the binary then
//! answers Airflow's commands, with `airflow` replaced by the binary's name:
//!
//! ```text
//! mypipeline dags list
//! mypipeline dags show quickstart [--format text|dot|mermaid]
//! mypipeline dags test quickstart [2025-01-08] [-c '{"keep_days": 3}']
//! mypipeline tasks list quickstart
//! mypipeline tasks test quickstart report 2025-01-08      # one task, upstream XComs from the store
//! mypipeline tasks render quickstart report 2025-01-08    # its templated fields, rendered
//! mypipeline tasks run quickstart report 2025-01-08       # one try, for a process-per-task runner
//! mypipeline airflow stub-dag > dags/quickstart.py        # the DAG file Airflow schedules
//! ```
//!
//! | command | what it does | exit code |
//! |---|---|---|
//! | `dags test DAG [DATE]` | runs every task for one logical date in this process (Airflow's `dags test`), prints the report, and stores every XCom | 0 if every task succeeded, else 1 |
//! | `tasks test DAG TASK [DATE]` | runs one task alone, with its retries, upstream XComs read from the store; records nothing | 0 or 1 |
//! | `tasks run DAG TASK [DATE]` | runs **one try** of one task (the caller owns retries), stores its XComs and prints its return value as JSON on the last line of stdout, as Airflow's `BashOperator` expects with `do_xcom_push=True` | 0 on success, 1 on failure |
//! | `tasks render DAG TASK [DATE]` | prints the task's templated fields rendered for that date, secrets masked | 0 or 1 |
//!
//! `DATE` is `YYYY-MM-DD` (midnight in the DAG's timezone), an RFC 3339 timestamp,
//! or the id of a run the store recorded (`manual__…`); it defaults to today.
//!
//! **XComs between processes** go through a directory of JSON files (see
//! `--xcom-dir`, `$GUST_XCOM_DIR`, default `.gust/xcom`): `dags test` and
//! `tasks run` write every XCom of the tasks they run, `tasks test` and
//! `tasks run` read the upstream tasks' values from it. Running a DAG's tasks one by
//! one with `tasks run` in dependency order gives the XComs `dags test` gives.
//!
//! Output is one readable line per event on stderr (time, level, task, message,
//! fields); results go to stdout.
//!
//! ```no_run
//! use gust::prelude::*;
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     let mut dag = Dag::builder("hello");
//!     dag.add(Task::from_fn("greet", |ctx| async move { Ok(json!(format!("hello {}", ctx.ds()))) }));
//!     match dag.build() {
//!         Ok(dag) => gust::cli::main([dag]).await,
//!         Err(e) => {
//!             eprintln!("{e}");
//!             std::process::ExitCode::FAILURE
//!         }
//!     }
//! }
//! ```

#[cfg(feature = "airflow")]
mod airflow;
#[cfg(feature = "airflow")]
mod airflow_logs;
mod log;
mod show;
mod stub_dag;
mod xcom_dir;

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;

pub use self::show::ShowFormat;
pub use self::stub_dag::StubMode;
use self::xcom_dir::{StoredRun, XComDir};
use crate::{Dag, Error, ErrorKind, Result, RunConfig};

/// Runs the command line with the process's arguments; see the module docs.
///
/// Installs a readable log format on stderr unless the program installed a
/// `tracing` subscriber already. Returns the exit code for `main` to return.
pub async fn main(dags: impl IntoIterator<Item = Dag>) -> ExitCode {
    run(dags, std::env::args_os()).await
}

/// [`main`] with explicit arguments (the first is the program name).
pub async fn run<I, T>(dags: impl IntoIterator<Item = Dag>, args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let dags: Vec<Dag> = dags.into_iter().collect();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are not errors; clap picks the stream and the code.
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    if cli.comm.is_some() || cli.logs.is_some() {
        return airflow_mode(&dags, cli.comm, cli.logs).await;
    }
    if cli.airflow_metadata {
        return report(airflow_metadata(&dags));
    }
    let Some(command) = cli.command else {
        eprintln!("a command is needed; see --help");
        return ExitCode::from(2);
    };
    log::init();
    match command {
        Command::Dags(c) => dags_command(&dags, c).await,
        Command::Tasks(c) => tasks_command(&dags, c).await,
        Command::Airflow(c) => report(airflow_command(&dags, c)),
    }
}

#[derive(Parser, Debug)]
#[command(
    about = "A gust pipeline: Airflow's `dags` and `tasks` commands, run by this binary",
    disable_help_subcommand = true
)]
struct Cli {
    /// Print the Airflow executable-bundle manifest (YAML) and exit.
    #[arg(long)]
    airflow_metadata: bool,
    /// Airflow's supervisor address; set by Airflow's `ExecutableCoordinator`.
    #[arg(long, hide = true)]
    comm: Option<String>,
    /// Airflow's log address; set by Airflow's `ExecutableCoordinator`.
    #[arg(long, hide = true)]
    logs: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List, show and test-run DAGs.
    #[command(subcommand)]
    Dags(DagsCommand),
    /// List, test, render and run single tasks.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// Run this pipeline on Apache Airflow.
    #[command(subcommand)]
    Airflow(AirflowCommand),
}

#[derive(Subcommand, Debug)]
enum DagsCommand {
    /// The DAG ids of this binary.
    List,
    /// A DAG's tasks and dependencies.
    Show {
        dag_id: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run every task of a DAG for one logical date, in this process.
    Test {
        dag_id: String,
        /// YYYY-MM-DD, an RFC 3339 timestamp or a stored run id (default: today).
        logical_date: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Subcommand, Debug)]
enum TasksCommand {
    /// The task ids of a DAG, in dependency order.
    List { dag_id: String },
    /// Run one task alone (with its retries), upstream XComs from the store.
    Test {
        dag_id: String,
        task_id: String,
        logical_date: Option<String>,
        /// JSON params merged over the DAG's and the run's (`-t`).
        #[arg(short = 't', long)]
        task_params: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Print a task's rendered templated fields.
    Render {
        dag_id: String,
        task_id: String,
        logical_date: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run one try of one task and store its XComs; the return value is the last
    /// line of stdout.
    Run {
        dag_id: String,
        task_id: String,
        logical_date: Option<String>,
        /// The try number (default: $AIRFLOW_CTX_TRY_NUMBER, else 1).
        #[arg(long)]
        try_number: Option<u32>,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The run's conf, JSON: params over the DAG's (`-c`).
    #[arg(short = 'c', long)]
    conf: Option<String>,
    /// The run id (default: manual__<logical date>).
    #[arg(long)]
    run_id: Option<String>,
    /// The XCom directory (default: $GUST_XCOM_DIR, else .gust/xcom).
    #[arg(long)]
    xcom_dir: Option<PathBuf>,
    /// The run's data interval, start and end as RFC 3339 timestamps, as
    /// Airflow passes them to a BashOperator (default: the schedule's interval
    /// starting at the logical date).
    #[arg(long, num_args = 2, value_names = ["START", "END"])]
    data_interval: Option<Vec<String>>,
}

#[derive(Subcommand, Debug)]
enum AirflowCommand {
    /// Print the executable-bundle manifest (as --airflow-metadata does).
    Metadata,
    /// Write this binary as an Airflow executable bundle: the binary, the
    /// manifest and the AFBNDL01 trailer, into a directory of
    /// `[sdk] coordinators`' `executables_root`.
    Pack {
        /// The bundle file to write, or a directory to write it into (named
        /// after this binary).
        #[arg(short, long)]
        output: PathBuf,
        /// A source file to embed (optional; Airflow shows it as the DAG's code).
        #[arg(long)]
        source: Option<PathBuf>,
    },
    /// Write the Python DAG file that schedules this binary's DAGs on Airflow.
    StubDag {
        /// Airflow ≥ 3.3: the queue mapped to the ExecutableCoordinator.
        #[arg(long, default_value = "gust")]
        queue: String,
        /// Airflow < 3.3: BashOperators that call `tasks run` instead.
        #[arg(long)]
        bash: bool,
        /// With --bash: the binary's path on the workers (default: this binary's).
        #[arg(long)]
        binary: Option<String>,
        /// With --bash: the XCom directory every worker shares.
        #[arg(long)]
        xcom_dir: Option<String>,
        /// Write to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Format {
    Text,
    Dot,
    Mermaid,
}

/// Prints a command's output or its error; the exit code.
fn report(result: Result<String>) -> ExitCode {
    match result {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn find<'a>(dags: &'a [Dag], dag_id: &str) -> Result<&'a Dag> {
    dags.iter().find(|d| d.dag_id() == dag_id).ok_or_else(|| {
        let known: Vec<&str> = dags.iter().map(Dag::dag_id).collect();
        Error::new(
            ErrorKind::NotFound,
            "cli.dag",
            format!(
                "no DAG {dag_id:?} in this binary (it has: {})",
                known.join(", ")
            ),
        )
        .with("dag_id", dag_id)
    })
}

fn has_task(dag: &Dag, task_id: &str) -> Result<()> {
    if dag.task_ids().contains(&task_id) {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::NotFound,
        "cli.task",
        format!("no task {task_id:?} in DAG {:?}", dag.dag_id()),
    )
    .with("dag_id", dag.dag_id())
    .with("task_id", task_id))
}

/// `d` in seconds, exact to the nanosecond and no longer: `30`, `1.5`, `0.000000001`.
fn exact_seconds(d: std::time::Duration) -> String {
    match d.subsec_nanos() {
        0 => d.as_secs().to_string(),
        nanos => {
            let frac = format!("{nanos:09}");
            format!("{}.{}", d.as_secs(), frac.trim_end_matches('0'))
        }
    }
}

/// What `tasks render`, `tasks test` and `tasks run` start from: the task's DAG,
/// the XCom directory, the run the arguments name and its id.
struct TaskRun<'a> {
    dag: &'a Dag,
    task_id: String,
    store: XComDir,
    config: RunConfig,
    run_id: String,
}

impl<'a> TaskRun<'a> {
    fn open(
        dags: &'a [Dag],
        dag_id: &str,
        task_id: String,
        logical_date: Option<&str>,
        run: &RunArgs,
    ) -> Result<Self> {
        let dag = find(dags, dag_id)?;
        has_task(dag, &task_id)?;
        let store = XComDir::new(run.xcom_dir.clone());
        let config = run_config(dag, logical_date, run, &store)?;
        let run_id = run_id_of(dag, &config)?;
        Ok(TaskRun {
            dag,
            task_id,
            store,
            config,
            run_id,
        })
    }

    /// The XComs the store holds for this run, but those of the task itself (a
    /// try starts without them).
    fn upstream_xcoms(&self) -> Result<Vec<(String, String, Value)>> {
        Ok(self
            .store
            .read_all(self.dag.dag_id(), &self.run_id)?
            .into_iter()
            .filter(|(t, _, _)| *t != self.task_id)
            .collect())
    }
}

fn parse_json(what: &str, text: &str) -> Result<Value> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            "cli.args",
            format!("{what} is not valid JSON: {e}"),
        )
    })?;
    if !value.is_object() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "cli.args",
            format!("{what} must be a JSON object"),
        ));
    }
    Ok(value)
}

/// Today's midnight in `tz`, as `airflow dags test` without a date runs "now".
fn today(tz: Tz) -> Result<DateTime<Tz>> {
    let ds = Utc::now().with_timezone(&tz).format("%Y-%m-%d").to_string();
    Ok(RunConfig::from_ds(&ds, tz)?.logical_date)
}

/// The run a command names: its date (or a stored run id), `--run-id`, `--conf`.
fn run_config(dag: &Dag, date: Option<&str>, args: &RunArgs, store: &XComDir) -> Result<RunConfig> {
    let tz = dag.timezone();
    let mut stored_conf = None;
    let mut config = match date {
        None => RunConfig::new(today(tz)?),
        Some(text) => match RunConfig::from_ds(text, tz) {
            Ok(c) => c,
            Err(date_error) => match store.read_run(dag.dag_id(), text)? {
                Some(run) => {
                    stored_conf = run.conf;
                    let mut c = RunConfig::new(run.logical_date.with_timezone(&tz));
                    c.run_id = Some(text.to_string());
                    c
                }
                None => {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        "cli.args",
                        format!(
                            "{text:?} is neither a date nor a run the XCom directory {} recorded ({date_error})",
                            store.root().display()
                        ),
                    ));
                }
            },
        },
    };
    if let Some(run_id) = &args.run_id {
        config.run_id = Some(run_id.clone());
    }
    config.params = match &args.conf {
        Some(c) => Some(parse_json("--conf", c)?),
        None => stored_conf,
    };
    if let Some([start, end]) = args.data_interval.as_deref() {
        let at = |what: &str, text: &str| {
            DateTime::parse_from_rfc3339(text)
                .map(|d| d.with_timezone(&tz))
                .map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        "cli.args",
                        format!(
                            "--data-interval {what} {text:?} is not an RFC 3339 timestamp ({e})"
                        ),
                    )
                })
        };
        let (start, end) = (at("start", start)?, at("end", end)?);
        if end < start {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "cli.args",
                format!("--data-interval ends ({end}) before it starts ({start})"),
            ));
        }
        config.data_interval = Some((start, end));
    }
    Ok(config)
}

fn run_id_of(dag: &Dag, config: &RunConfig) -> Result<String> {
    Ok(dag
        .context_for(dag.task_ids()[0], config)?
        .run_id()
        .to_string())
}

async fn dags_command(dags: &[Dag], command: DagsCommand) -> ExitCode {
    match command {
        DagsCommand::List => report(Ok(dags
            .iter()
            .map(|d| format!("{}\n", d.dag_id()))
            .collect())),
        DagsCommand::Show { dag_id, format } => report(find(dags, &dag_id).map(|dag| {
            let format = match format {
                Format::Text => ShowFormat::Text,
                Format::Dot => ShowFormat::Dot,
                Format::Mermaid => ShowFormat::Mermaid,
            };
            show::render(&dag.describe(), format)
        })),
        DagsCommand::Test {
            dag_id,
            logical_date,
            run,
        } => {
            let result = async {
                let dag = find(dags, &dag_id)?;
                let store = XComDir::new(run.xcom_dir.clone());
                let config = run_config(dag, logical_date.as_deref(), &run, &store)?;
                let run_id = run_id_of(dag, &config)?;
                let report = dag.run(config.clone()).await;
                store.write_run(dag.dag_id(), &run_id, &StoredRun::of(&config))?;
                for task in dag.task_ids() {
                    store.clear_task(dag.dag_id(), &run_id, task)?;
                }
                for (task, key, value) in &report.all_xcoms {
                    store.write(dag.dag_id(), &run_id, task, key, value)?;
                }
                Ok::<_, Error>(report)
            }
            .await;
            match result {
                Ok(report) => {
                    println!("{report}");
                    if report.is_success() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => report_error(e),
            }
        }
    }
}

/// The exit code of `tasks run` for a task that skipped itself
/// ([`Error::skip`]): the stub DAG's BashOperators have `skip_on_exit_code=99`.
pub(crate) const SKIPPED_EXIT_CODE: u8 = 99;

fn report_error(e: Error) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

async fn tasks_command(dags: &[Dag], command: TasksCommand) -> ExitCode {
    match command {
        TasksCommand::List { dag_id } => report(
            find(dags, &dag_id).map(|d| d.task_ids().iter().map(|t| format!("{t}\n")).collect()),
        ),
        TasksCommand::Render {
            dag_id,
            task_id,
            logical_date,
            run,
        } => report(
            async {
                let t = TaskRun::open(dags, &dag_id, task_id, logical_date.as_deref(), &run)?;
                render_fields(t.dag, &t.task_id, &t.config, t.upstream_xcoms()?)
            }
            .await,
        ),
        TasksCommand::Test {
            dag_id,
            task_id,
            logical_date,
            task_params,
            run,
        } => {
            let result = async {
                let mut t = TaskRun::open(dags, &dag_id, task_id, logical_date.as_deref(), &run)?;
                if let Some(tp) = &task_params {
                    let mut params = t
                        .config
                        .params
                        .take()
                        .unwrap_or_else(|| Value::Object(Default::default()));
                    if let (Value::Object(base), Value::Object(over)) =
                        (&mut params, parse_json("--task-params", tp)?)
                    {
                        base.extend(over);
                    }
                    t.config.params = Some(params);
                }
                let upstream = t.upstream_xcoms()?;
                t.dag
                    .run_task_with_retries(&t.task_id, &t.config, upstream)
                    .await
            }
            .await;
            match result {
                Ok(value) => report(Ok(format!("{}\n", value))),
                Err(e) if e.is_skip() => report(Ok(format!("{e}\n"))),
                Err(e) => report_error(e),
            }
        }
        TasksCommand::Run {
            dag_id,
            task_id,
            logical_date,
            try_number,
            run,
        } => {
            let result = async {
                let t = TaskRun::open(dags, &dag_id, task_id, logical_date.as_deref(), &run)?;
                let (dag, store, run_id) = (t.dag.dag_id(), &t.store, &t.run_id);
                let try_number = try_number
                    .or_else(|| std::env::var("AIRFLOW_CTX_TRY_NUMBER").ok()?.parse().ok())
                    .unwrap_or(1);
                let upstream = t.upstream_xcoms()?;
                if store.read_run(dag, run_id)?.is_none() {
                    store.write_run(dag, run_id, &StoredRun::of(&t.config))?;
                }
                store.clear_task(dag, run_id, &t.task_id)?;
                let one = t
                    .dag
                    .run_one_try(&t.task_id, &t.config, try_number, upstream, None, false)
                    .await?;
                for (key, value) in &one.xcoms {
                    store.write(dag, run_id, &t.task_id, key, value)?;
                }
                one.result
            }
            .await;
            match result {
                // One line: BashOperator pushes the last line of stdout.
                Ok(value) => report(Ok(format!("{}\n", value))),
                // BashOperator's skip_on_exit_code (the stub DAG sets 99).
                Err(e) if e.is_skip() => {
                    eprintln!("{e}");
                    ExitCode::from(SKIPPED_EXIT_CODE)
                }
                Err(e) => report_error(e),
            }
        }
    }
}

/// `tasks render`: each templated field the task's operator declares, rendered,
/// in Airflow's layout.
fn render_fields(
    dag: &Dag,
    task_id: &str,
    config: &RunConfig,
    upstream: Vec<(String, String, Value)>,
) -> Result<String> {
    let (ctx, fields) = dag.render_task(task_id, config, upstream)?;
    let secrets = ctx.shared().secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    if fields.is_empty() {
        return Ok(format!(
            "# task {task_id:?} declares no templated fields (Operator::template_fields)\n"
        ));
    }
    let rule = "# ----------------------------------------------------------";
    let mut out = String::new();
    for (name, value) in fields {
        out.push_str(&format!(
            "{rule}\n# property: {name}\n{rule}\n{}\n\n",
            crate::error::mask(&value, &secrets)
        ));
    }
    Ok(out)
}

fn airflow_command(dags: &[Dag], command: AirflowCommand) -> Result<String> {
    match command {
        AirflowCommand::Metadata => airflow_metadata(dags),
        AirflowCommand::Pack { output, source } => airflow_pack(dags, &output, source.as_deref()),
        AirflowCommand::StubDag {
            queue,
            bash,
            binary,
            xcom_dir,
            output,
        } => {
            let mode = if bash {
                let binary = match binary {
                    Some(b) => b,
                    None => std::env::current_exe()
                        .map_err(|e| {
                            Error::new(
                                ErrorKind::Io,
                                "cli.stub_dag",
                                format!("cannot find this binary's path: {e}"),
                            )
                        })?
                        .display()
                        .to_string(),
                };
                let xcom_dir = xcom_dir.ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        "cli.stub_dag",
                        "--bash needs --xcom-dir: the XCom directory every worker shares",
                    )
                })?;
                StubMode::Bash { binary, xcom_dir }
            } else {
                StubMode::Coordinator { queue }
            };
            let descriptions: Vec<_> = dags.iter().map(Dag::describe).collect();
            let text = stub_dag::python(&descriptions, &mode);
            match output {
                Some(path) => {
                    std::fs::write(&path, text).map_err(|e| {
                        Error::new(
                            ErrorKind::Io,
                            "cli.stub_dag",
                            format!("{}: {e}", path.display()),
                        )
                    })?;
                    Ok(String::new())
                }
                None => Ok(text),
            }
        }
    }
}

#[cfg(feature = "airflow")]
fn manifest(dags: &[Dag]) -> crate::airflow::bundle::Manifest {
    dags.iter().fold(
        crate::airflow::bundle::Manifest::new(env!("CARGO_PKG_VERSION")),
        |m, d| m.dag(d.dag_id(), d.task_ids()),
    )
}

#[cfg(feature = "airflow")]
fn airflow_metadata(dags: &[Dag]) -> Result<String> {
    Ok(manifest(dags).to_yaml())
}

/// Packs this binary. A binary that is a bundle already is packed from its
/// executable part, so packing twice gives the same file.
#[cfg(feature = "airflow")]
fn airflow_pack(
    dags: &[Dag],
    output: &std::path::Path,
    source: Option<&std::path::Path>,
) -> Result<String> {
    use crate::airflow::bundle;
    const OP: &str = "cli.airflow_pack";
    let io = |what: &str, path: &std::path::Path, e: std::io::Error| {
        Error::new(ErrorKind::Io, OP, format!("{what} {}: {e}", path.display()))
    };
    let exe = std::env::current_exe()
        .map_err(|e| io("cannot find this binary", std::path::Path::new("?"), e))?;
    let target = if output.is_dir() {
        output.join(
            exe.file_name()
                .unwrap_or_else(|| std::ffi::OsStr::new("gust-bundle")),
        )
    } else {
        output.to_path_buf()
    };
    let scratch = tempfile::tempdir().map_err(|e| {
        io(
            "cannot create a temporary directory in",
            &std::env::temp_dir(),
            e,
        )
    })?;
    let mut executable = exe.clone();
    if let Ok((_, info)) = bundle::inspect(&exe) {
        let bytes = std::fs::read(&exe).map_err(|e| io("cannot read", &exe, e))?;
        let len = usize::try_from(info.binary_len)
            .unwrap_or(bytes.len())
            .min(bytes.len());
        executable = scratch.path().join("binary");
        std::fs::write(&executable, &bytes[..len])
            .map_err(|e| io("cannot write", &executable, e))?;
    }
    let source = match source {
        Some(path) => {
            let text = std::fs::read(path).map_err(|e| io("cannot read", path, e))?;
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("source")
                .to_string();
            Some((name, text))
        }
        None => None,
    };
    let mut manifest = manifest(dags);
    manifest.source = source.as_ref().map(|(n, _)| n.clone());
    bundle::pack(
        &executable,
        source.as_ref().map(|(n, t)| (n.as_str(), t.as_slice())),
        &manifest,
        &target,
    )?;
    tracing::info!(bundle = %target.display(), dags = dags.len(), "bundle written");
    Ok(format!("{}\n", target.display()))
}

#[cfg(not(feature = "airflow"))]
fn without_airflow(op: &'static str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        op,
        "this binary was built without gust's `airflow` feature",
    )
}

#[cfg(not(feature = "airflow"))]
fn airflow_metadata(_dags: &[Dag]) -> Result<String> {
    Err(without_airflow("cli.airflow_metadata"))
}

#[cfg(not(feature = "airflow"))]
fn airflow_pack(_: &[Dag], _: &std::path::Path, _: Option<&std::path::Path>) -> Result<String> {
    Err(without_airflow("cli.airflow_pack"))
}

#[cfg(feature = "airflow")]
async fn airflow_mode(dags: &[Dag], comm: Option<String>, logs: Option<String>) -> ExitCode {
    airflow::serve(dags, comm, logs).await
}

#[cfg(not(feature = "airflow"))]
async fn airflow_mode(_dags: &[Dag], _comm: Option<String>, _logs: Option<String>) -> ExitCode {
    eprintln!(
        "error: launched by Airflow (--comm/--logs), but this binary was built without gust's `airflow` feature"
    );
    ExitCode::FAILURE
}
