//! [`MlflowStore`]: the primitive operations every MLflow backend provides.
//!
//! [`MlflowHook`](super::MlflowHook) is a facade over one store: get-or-create,
//! batch splitting, the run guard, waiting for a version to be ready and the
//! recursive artifact transfers are written once, in the hook, on top of these
//! calls. gust ships [`RestStore`](super::RestStore) (a tracking server over HTTP)
//! and [`FileStore`](super::FileStore) (MLflow's `file:` layout on local disk);
//! implement the trait to plug in another backend with
//! [`MlflowHook::with_store`](super::MlflowHook::with_store).
//!
//! Contract for implementors: errors use the [`ErrorKind`](crate::ErrorKind)s the
//! hook branches on — `NotFound` for a missing experiment, run, model, version or
//! alias; `AlreadyExists` when creating an experiment or registered model that
//! exists; `InvalidInput` for malformed names and for re-logging a param with
//! another value; `Unsupported` for what the backend cannot do — and name the
//! operation and the experiment, run or model they concern.

use std::fmt::Debug;
use std::path::Path;

use async_trait::async_trait;

use super::artifacts::FileInfo;
use super::types::{
    Experiment, Metric, ModelVersion, Param, RegisteredModel, Run, RunInfo, RunStatus, RunTag,
};
use crate::error::Result;

/// One page of results and the token of the next page (`None` on the last page).
pub type Page<T> = (Vec<T>, Option<String>);

/// The primitive operations of an MLflow tracking store and model registry.
///
/// All methods are one round trip (or one local operation): no retries of
/// application-level races, no batch splitting, no pagination loops — those live
/// in [`MlflowHook`](super::MlflowHook).
#[async_trait]
pub trait MlflowStore: Send + Sync + Debug {
    /// The tracking URI this store serves (`http://host:5000`, `file:///abs/mlruns`).
    fn tracking_uri(&self) -> &str;

    /// Checks that the backend answers (and, for a server, accepts the credentials).
    async fn test_connection(&self) -> Result<()>;

    /// The experiment named `name` (active or deleted); `NotFound` if there is none.
    async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment>;

    /// The experiment with id `experiment_id`; `NotFound` if there is none.
    async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment>;

    /// Creates experiment `name` and returns its id; `AlreadyExists` if the name is
    /// taken (also when a concurrent caller won the race). Its runs keep their
    /// artifacts under `artifact_location` (e.g. `s3://bucket/prefix`), or under the
    /// store's default root when `None`; a location the store cannot use is
    /// `Unsupported` or `InvalidInput`.
    async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
    ) -> Result<String>;

    /// Creates a `RUNNING` run in `experiment_id` that started at `start_time`
    /// (ms since the epoch), with `tags` set as part of the creation (MLflow's
    /// `runs/create` takes them); without `run_name` the store picks one.
    ///
    /// The tags are set atomically with the run: a caller that tags its runs
    /// with who made them (gust's `TrainModel` tags the task instance) can
    /// find them again after a failure at any later point, including a
    /// response lost on the way back.
    async fn create_run(
        &self,
        experiment_id: &str,
        run_name: Option<&str>,
        start_time: i64,
        tags: &[RunTag],
    ) -> Result<RunInfo>;

    /// The run `run_id` with its params, latest metrics and tags.
    async fn get_run(&self, run_id: &str) -> Result<Run>;

    /// Sets a run's status and, when given, its end time (ms since the epoch).
    async fn update_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time: Option<i64>,
    ) -> Result<RunInfo>;

    /// One page of at most `max_results` runs of `experiment_ids` matching `filter`
    /// (MLflow's search syntax; `""` matches every run), newest first.
    async fn search_runs(
        &self,
        experiment_ids: &[&str],
        filter: &str,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<Run>>;

    /// Logs one chunk of metrics, params and tags that already respects the
    /// backend's limits (the hook splits larger batches). A param logged again with
    /// another value is `InvalidInput`.
    async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[RunTag],
    ) -> Result<()>;

    /// Every logged point of metric `key` of run `run_id`.
    async fn get_metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>>;

    /// Creates registered model `name`; `AlreadyExists` if it exists.
    async fn create_registered_model(&self, name: &str) -> Result<RegisteredModel>;

    /// The registered model `name`, with its aliases.
    async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel>;

    /// Registers `source` (e.g. `runs:/<run_id>/model`) as the next version of `name`.
    async fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: Option<&str>,
    ) -> Result<ModelVersion>;

    /// Version `version` of model `name`.
    async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion>;

    /// Sets tag `key` of version `version` of model `name` to `value`.
    async fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()>;

    /// Sets the description of version `version` of model `name`.
    async fn update_model_version(
        &self,
        name: &str,
        version: &str,
        description: &str,
    ) -> Result<ModelVersion>;

    /// One page of model versions matching `filter` (`name='…'`, `run_id='…'`).
    async fn search_model_versions(
        &self,
        filter: &str,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<ModelVersion>>;

    /// Points `alias` of model `name` at `version`, moving it if it is set.
    async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> Result<()>;

    /// Removes `alias` from model `name`.
    async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()>;

    /// The version `alias` of model `name` points at; `NotFound` if unset.
    async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion>;

    /// Uploads the local file `local_path` to `artifact_path` (a file path relative
    /// to the run's artifact root, e.g. `model/MLmodel`), streaming it.
    async fn upload_artifact(
        &self,
        run_id: &str,
        local_path: &Path,
        artifact_path: &str,
    ) -> Result<()>;

    /// The entries of artifact directory `path` (`""` for the root), with paths
    /// relative to the run's artifact root. A missing directory or a file lists as
    /// empty (or as itself).
    async fn list_artifacts(&self, run_id: &str, path: &str) -> Result<Vec<FileInfo>>;

    /// Downloads the artifact file `path` to `local_path`, streaming it; the file
    /// appears complete or not at all.
    async fn download_artifact(&self, run_id: &str, path: &str, local_path: &Path) -> Result<()>;
}
