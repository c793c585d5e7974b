//! The Python DAG file Airflow schedules a gust pipeline binary with.

use crate::dag::DagDescription;

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

/// The Python source of a DAG file for `dags`. (Placeholder.)
pub(crate) fn python(dags: &[DagDescription], mode: &StubMode) -> String {
    let _ = (dags, mode);
    String::new()
}
