//! A command line for every pipeline binary, with Airflow's verbs.

mod show;
mod stub_dag;

pub use self::show::ShowFormat;
pub use self::stub_dag::StubMode;
