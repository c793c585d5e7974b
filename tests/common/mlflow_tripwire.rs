//! [`Tripwire`]: an [`MlflowStore`] that runs a fault (kills the server) just
//! before its first `log_batch`, so a process fault lands at a known point of
//! an operator: after its run was created, before anything was logged to it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use futures::future::BoxFuture;
use gust::Result;
use gust::hooks::mlflow::{
    Experiment, FileInfo, Metric, MlflowStore, ModelVersion, Page, Param, RegisteredModel, Run,
    RunInfo, RunStatus, RunTag,
};

/// The fault: run once, awaited before the call goes on to the store.
pub type Fault = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// `inner`, with `fault` run before the first `log_batch`.
pub struct Tripwire<S> {
    pub inner: S,
    fault: Mutex<Option<Fault>>,
}

impl<S> Tripwire<S> {
    pub fn new(inner: S, fault: Fault) -> Self {
        Tripwire {
            inner,
            fault: Mutex::new(Some(fault)),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Tripwire<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tripwire")
            .field("inner", &self.inner)
            .finish()
    }
}

#[async_trait]
impl<S: MlflowStore> MlflowStore for Tripwire<S> {
    fn tracking_uri(&self) -> &str {
        self.inner.tracking_uri()
    }
    async fn test_connection(&self) -> Result<()> {
        self.inner.test_connection().await
    }
    async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        self.inner.get_experiment_by_name(name).await
    }
    async fn get_experiment(&self, id: &str) -> Result<Experiment> {
        self.inner.get_experiment(id).await
    }
    async fn create_experiment(&self, name: &str, location: Option<&str>) -> Result<String> {
        self.inner.create_experiment(name, location).await
    }
    async fn create_run(
        &self,
        exp: &str,
        name: Option<&str>,
        start: i64,
        tags: &[RunTag],
    ) -> Result<RunInfo> {
        self.inner.create_run(exp, name, start, tags).await
    }
    async fn get_run(&self, run_id: &str) -> Result<Run> {
        self.inner.get_run(run_id).await
    }
    async fn update_run(&self, id: &str, status: RunStatus, end: Option<i64>) -> Result<RunInfo> {
        self.inner.update_run(id, status, end).await
    }
    async fn search_runs(
        &self,
        experiment_ids: &[&str],
        filter: &str,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<Run>> {
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
        let fault = self.fault.lock().unwrap().take();
        if let Some(fault) = fault {
            fault().await;
        }
        self.inner.log_batch(run_id, metrics, params, tags).await
    }
    async fn get_metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>> {
        self.inner.get_metric_history(run_id, key).await
    }
    async fn create_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        self.inner.create_registered_model(name).await
    }
    async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        self.inner.get_registered_model(name).await
    }
    async fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: Option<&str>,
    ) -> Result<ModelVersion> {
        self.inner.create_model_version(name, source, run_id).await
    }
    async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        self.inner.get_model_version(name, version).await
    }
    async fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
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
        self.inner
            .search_model_versions(filter, max_results, page_token)
            .await
    }
    async fn set_registered_model_alias(&self, name: &str, alias: &str, v: &str) -> Result<()> {
        self.inner.set_registered_model_alias(name, alias, v).await
    }
    async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        self.inner.delete_registered_model_alias(name, alias).await
    }
    async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        self.inner.get_model_version_by_alias(name, alias).await
    }
    async fn upload_artifact(&self, run_id: &str, local: &Path, path: &str) -> Result<()> {
        self.inner.upload_artifact(run_id, local, path).await
    }
    async fn list_artifacts(&self, run_id: &str, path: &str) -> Result<Vec<FileInfo>> {
        self.inner.list_artifacts(run_id, path).await
    }
    async fn download_artifact(&self, run_id: &str, path: &str, local: &Path) -> Result<()> {
        self.inner.download_artifact(run_id, path, local).await
    }
}
