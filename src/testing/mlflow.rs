//! [`FaultyMlflow`]: any [`MlflowStore`] with scripted faults; on a private
//! `file:` store by default.

use std::path::Path;

use async_trait::async_trait;

use super::{Calls, Fault, Script};
use crate::error::{Error, Result};
use crate::hooks::mlflow::{
    Experiment, FileInfo, FileStore, Metric, MlflowStore, ModelVersion, Page, Param,
    RegisteredModel, Run, RunInfo, RunStatus, RunTag,
};

/// The calls of an [`MlflowStore`] a [`FaultyMlflow`] can fail: one per
/// round trip to a tracking server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MlflowOp {
    /// `test_connection`.
    TestConnection,
    /// `get_experiment` and `get_experiment_by_name`.
    GetExperiment,
    /// `create_experiment`.
    CreateExperiment,
    /// `create_run`.
    CreateRun,
    /// `get_run`.
    GetRun,
    /// `update_run` (a run's end).
    UpdateRun,
    /// `search_runs` (each page).
    SearchRuns,
    /// `log_batch` (each chunk the hook splits a batch into).
    LogBatch,
    /// `get_metric_history`.
    GetMetricHistory,
    /// `create_registered_model`.
    CreateRegisteredModel,
    /// `get_registered_model`.
    GetRegisteredModel,
    /// `create_model_version`.
    CreateModelVersion,
    /// `get_model_version`.
    GetModelVersion,
    /// `set_model_version_tag`.
    SetModelVersionTag,
    /// `update_model_version`.
    UpdateModelVersion,
    /// `search_model_versions` (each page).
    SearchModelVersions,
    /// `set_registered_model_alias`.
    SetAlias,
    /// `delete_registered_model_alias`.
    DeleteAlias,
    /// `get_model_version_by_alias`.
    GetModelVersionByAlias,
    /// `upload_artifact` (each file).
    UploadArtifact,
    /// `list_artifacts`.
    ListArtifacts,
    /// `download_artifact` (each file).
    DownloadArtifact,
}

/// An [`MlflowStore`] that forwards to `inner` except where a rule says a
/// call fails or waits, counting every call per operation: to test that a
/// training or registering task fails typed, retries, and leaves no second
/// run or version behind.
///
/// [`FaultyMlflow::temporary`] is the MLflow of unit tests: gust's
/// [`FileStore`] (MLflow's `file:` layout, which MLflow's own client reads)
/// in a private temporary directory removed when the store is dropped — no
/// server, no network, and the same behaviour as a `file:` tracking URI
/// (`tests/mlflow_file.rs` runs the scenario suite of the real server on
/// it). It lives on disk rather than in memory so that there is one
/// implementation of MLflow's rules, not two that could drift.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> gust::Result<()> {
/// use std::sync::Arc;
/// use gust::ErrorKind;
/// use gust::hooks::mlflow::{MlflowHook, Metric};
/// use gust::testing::{Fault, FaultyMlflow, MlflowOp};
///
/// let store = Arc::new(
///     FaultyMlflow::temporary()?.fail_nth(MlflowOp::LogBatch, 1, Fault::error(ErrorKind::Unavailable)),
/// );
/// let mlflow = MlflowHook::with_store(store.clone());
/// let exp = mlflow.get_or_create_experiment("iris").await?;
/// let run = mlflow.create_run(&exp, Some("train")).await?;
/// let e = mlflow.log_metric(run.run_id(), "accuracy", 0.9, 0).await.unwrap_err();
/// assert!(e.is_retryable());
/// mlflow.log_metric(run.run_id(), "accuracy", 0.9, 0).await?;
/// assert_eq!(mlflow.get_metric_history(run.run_id(), "accuracy").await?.len(), 1);
/// assert_eq!(store.calls(MlflowOp::LogBatch), 2);
/// # Ok(()) }
/// ```
pub struct FaultyMlflow<S = FileStore> {
    inner: S,
    script: Script<MlflowOp>,
    /// The directory of [`temporary`](FaultyMlflow::temporary), removed on drop.
    _dir: Option<tempfile::TempDir>,
}

impl<S: MlflowStore> std::fmt::Debug for FaultyMlflow<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyMlflow")
            .field("inner", &self.inner)
            .field("rules", &self.script.rules)
            .finish_non_exhaustive()
    }
}

impl FaultyMlflow<FileStore> {
    /// A `file:` store in a new temporary directory, with no faults yet.
    pub fn temporary() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("gust-mlflow-")
            .tempdir()
            .map_err(|e| {
                Error::new(
                    crate::ErrorKind::Io,
                    "testing.mlflow",
                    format!("cannot create a temporary directory: {e}"),
                )
                .with_source(e)
            })?;
        let store = FileStore::new(dir.path())?;
        Ok(FaultyMlflow {
            inner: store,
            script: Script::new(),
            _dir: Some(dir),
        })
    }
}

impl<S: MlflowStore> FaultyMlflow<S> {
    /// `inner` with no faults yet.
    pub fn new(inner: S) -> Self {
        FaultyMlflow {
            inner,
            script: Script::new(),
            _dir: None,
        }
    }

    /// The `n`-th call of `op` (1 for the first) gets `fault`.
    pub fn fail_nth(mut self, op: MlflowOp, n: usize, fault: Fault) -> Self {
        self.script.rules.push((op, Calls::Nth(n.max(1)), fault));
        self
    }

    /// Every call of `op` from the `n`-th on gets `fault` (1: every call).
    pub fn fail_from(mut self, op: MlflowOp, n: usize, fault: Fault) -> Self {
        self.script.rules.push((op, Calls::From(n.max(1)), fault));
        self
    }

    /// How many calls of `op` were made (failed ones included).
    pub fn calls(&self, op: MlflowOp) -> usize {
        self.script.calls(op)
    }

    /// The store behind the faults.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    async fn before(&self, op: MlflowOp) -> Result<()> {
        let uri = self.inner.tracking_uri().to_string();
        self.script
            .apply(op, |kind, _| {
                Error::new(kind, format!("faulty.{op:?}"), "injected fault")
                    .with("tracking_uri", uri)
            })
            .await
    }
}

#[async_trait]
impl<S: MlflowStore> MlflowStore for FaultyMlflow<S> {
    fn tracking_uri(&self) -> &str {
        self.inner.tracking_uri()
    }

    async fn test_connection(&self) -> Result<()> {
        self.before(MlflowOp::TestConnection).await?;
        self.inner.test_connection().await
    }

    async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        self.before(MlflowOp::GetExperiment).await?;
        self.inner.get_experiment_by_name(name).await
    }

    async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment> {
        self.before(MlflowOp::GetExperiment).await?;
        self.inner.get_experiment(experiment_id).await
    }

    async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
    ) -> Result<String> {
        self.before(MlflowOp::CreateExperiment).await?;
        self.inner.create_experiment(name, artifact_location).await
    }

    async fn create_run(
        &self,
        experiment_id: &str,
        run_name: Option<&str>,
        start_time: i64,
        tags: &[RunTag],
    ) -> Result<RunInfo> {
        self.before(MlflowOp::CreateRun).await?;
        self.inner
            .create_run(experiment_id, run_name, start_time, tags)
            .await
    }

    async fn get_run(&self, run_id: &str) -> Result<Run> {
        self.before(MlflowOp::GetRun).await?;
        self.inner.get_run(run_id).await
    }

    async fn update_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time: Option<i64>,
    ) -> Result<RunInfo> {
        self.before(MlflowOp::UpdateRun).await?;
        self.inner.update_run(run_id, status, end_time).await
    }

    async fn search_runs(
        &self,
        experiment_ids: &[&str],
        filter: &str,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<Run>> {
        self.before(MlflowOp::SearchRuns).await?;
        self.inner
            .search_runs(experiment_ids, filter, max_results, page_token)
            .await
    }

    async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[RunTag],
    ) -> Result<()> {
        self.before(MlflowOp::LogBatch).await?;
        self.inner.log_batch(run_id, metrics, params, tags).await
    }

    async fn get_metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>> {
        self.before(MlflowOp::GetMetricHistory).await?;
        self.inner.get_metric_history(run_id, key).await
    }

    async fn create_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        self.before(MlflowOp::CreateRegisteredModel).await?;
        self.inner.create_registered_model(name).await
    }

    async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        self.before(MlflowOp::GetRegisteredModel).await?;
        self.inner.get_registered_model(name).await
    }

    async fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: Option<&str>,
    ) -> Result<ModelVersion> {
        self.before(MlflowOp::CreateModelVersion).await?;
        self.inner.create_model_version(name, source, run_id).await
    }

    async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        self.before(MlflowOp::GetModelVersion).await?;
        self.inner.get_model_version(name, version).await
    }

    async fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        self.before(MlflowOp::SetModelVersionTag).await?;
        self.inner
            .set_model_version_tag(name, version, key, value)
            .await
    }

    async fn update_model_version(
        &self,
        name: &str,
        version: &str,
        description: &str,
    ) -> Result<ModelVersion> {
        self.before(MlflowOp::UpdateModelVersion).await?;
        self.inner
            .update_model_version(name, version, description)
            .await
    }

    async fn search_model_versions(
        &self,
        filter: &str,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<ModelVersion>> {
        self.before(MlflowOp::SearchModelVersions).await?;
        self.inner
            .search_model_versions(filter, max_results, page_token)
            .await
    }

    async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> Result<()> {
        self.before(MlflowOp::SetAlias).await?;
        self.inner
            .set_registered_model_alias(name, alias, version)
            .await
    }

    async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        self.before(MlflowOp::DeleteAlias).await?;
        self.inner.delete_registered_model_alias(name, alias).await
    }

    async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        self.before(MlflowOp::GetModelVersionByAlias).await?;
        self.inner.get_model_version_by_alias(name, alias).await
    }

    async fn upload_artifact(
        &self,
        run_id: &str,
        local_path: &Path,
        artifact_path: &str,
    ) -> Result<()> {
        self.before(MlflowOp::UploadArtifact).await?;
        self.inner
            .upload_artifact(run_id, local_path, artifact_path)
            .await
    }

    async fn list_artifacts(&self, run_id: &str, path: &str) -> Result<Vec<FileInfo>> {
        self.before(MlflowOp::ListArtifacts).await?;
        self.inner.list_artifacts(run_id, path).await
    }

    async fn download_artifact(&self, run_id: &str, path: &str, local_path: &Path) -> Result<()> {
        self.before(MlflowOp::DownloadArtifact).await?;
        self.inner.download_artifact(run_id, path, local_path).await
    }
}
