//! Running a gust binary as an Apache Airflow 3.3 *executable bundle* (feature `airflow`).
//!
//! Airflow 3.3's `ExecutableCoordinator` finds a native binary whose file ends
//! with a 64-byte `AFBNDL01` trailer and a YAML manifest naming its DAGs
//! ([`bundle`]), and forks it once per task instance with
//! `--comm=127.0.0.1:P1 --logs=127.0.0.1:P2`. The binary dials both ports back:
//! `--comm` carries length-prefixed msgpack frames ([`codec`]) holding typed
//! messages ([`messages`]), `--logs` newline-delimited JSON log records.
//!
//! The exchange on `--comm`, driven by the runtime through [`comm::Comm`]:
//!
//! 1. the supervisor sends `StartupDetails` as a response frame with id 0;
//! 2. the runtime sends requests (`GetConnection`, `GetVariable`, `GetXCom`,
//!    `SetXCom`, `PutVariable`…), one at a time, each answered by exactly one
//!    response frame carrying the same id;
//! 3. the runtime ends with one terminal message — `SucceedTask`, `TaskState`
//!    (failed, skipped, removed) or `RetryTask` — and exits. A binary that exits 0
//!    without `SucceedTask` leaves the task instance `running` in Airflow 3.3.2.
//!
//! Field names, shapes and the schema version ([`messages::SUPERVISOR_SCHEMA_VERSION`])
//! are Airflow 3.3.2's (`airflow/sdk/execution_time/comms.py`); the golden tests
//! in `tests/airflow_codec.rs` decode frames written by Airflow's own encoder
//! (`tests/data/airflow/gen_frames.py`).
//!
//! With the `testing` feature, `gust::testing::FakeSupervisor` plays the
//! supervisor's side for tests that need no Python.

pub mod bundle;
pub mod codec;
pub mod comm;
pub mod messages;
