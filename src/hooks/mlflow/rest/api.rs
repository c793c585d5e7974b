//! The [`MlflowStore`] endpoints of [`RestStore`].

use std::path::Path;

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ArtifactRoot, RestStore};
use crate::error::{Error, Result};
use crate::hooks::mlflow::artifacts::{FileInfo, join, write_stream};
use crate::hooks::mlflow::store::{MlflowStore, Page};
use crate::hooks::mlflow::types::{
    Experiment, Metric, ModelVersion, Param, RegisteredModel, Run, RunInfo, RunStatus, RunTag,
};

#[derive(Deserialize)]
struct ExperimentResponse {
    experiment: Experiment,
}

#[derive(Deserialize)]
struct RunResponse {
    run: Run,
}

#[derive(Deserialize)]
struct SearchRunsResponse {
    #[serde(default)]
    runs: Vec<Run>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct MetricHistoryResponse {
    #[serde(default)]
    metrics: Vec<Metric>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct RegisteredModelResponse {
    registered_model: RegisteredModel,
}

#[derive(Deserialize)]
struct ModelVersionResponse {
    model_version: ModelVersion,
}

#[derive(Deserialize)]
struct SearchVersionsResponse {
    #[serde(default)]
    model_versions: Vec<ModelVersion>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    files: Vec<FileInfo>,
}

impl RestStore {
    /// The run a `runs/create` of these arguments made, if the server made it:
    /// the runs of the experiment that started at `start_time` (set by the
    /// client, to the millisecond), filtered here — not in the search filter,
    /// which would have to quote arbitrary names — on the name and every tag.
    /// Two candidates cannot be told apart: an error.
    async fn find_created_run(
        &self,
        experiment_id: &str,
        run_name: Option<&str>,
        start_time: i64,
        tags: &[RunTag],
    ) -> Result<Option<RunResponse>> {
        let filter = format!("attributes.start_time = {start_time}");
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (runs, next) = self
                .search_runs(&[experiment_id], &filter, 1000, token.as_deref())
                .await?;
            found.extend(runs.into_iter().filter(|r| {
                r.info.start_time == start_time
                    && run_name.is_none_or(|n| r.info.run_name == n)
                    && tags.iter().all(|t| r.data.tag(&t.key) == Some(&t.value))
            }));
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop().map(|run| RunResponse { run })),
            n => Err(Error::new(
                crate::ErrorKind::Remote,
                "mlflow.runs/create",
                format!(
                    "{n} runs started at {start_time} with this name and these tags: cannot \
                     tell which one this request made"
                ),
            )
            .with("experiment_id", experiment_id)),
        }
    }

    /// Every version of model `name` registered from run `run_id`.
    async fn versions_of_run(&self, name: &str, run_id: &str) -> Result<Vec<ModelVersion>> {
        let quote = |s: &str| s.replace('\'', "''");
        let filter = format!("name='{}' and run_id='{}'", quote(name), quote(run_id));
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (versions, next) = self
                .search_model_versions(&filter, 1000, token.as_deref())
                .await?;
            all.extend(
                versions
                    .into_iter()
                    .filter(|v| v.name == name && v.run_id == run_id),
            );
            match next {
                Some(t) => token = Some(t),
                None => return Ok(all),
            }
        }
    }
}

// Without `s3`, `ArtifactRoot` has one variant; the matches stay for the build with it.
#[cfg_attr(not(feature = "s3"), allow(clippy::infallible_destructuring_match))]
#[async_trait]
impl MlflowStore for RestStore {
    fn tracking_uri(&self) -> &str {
        &self.base_url
    }

    async fn test_connection(&self) -> Result<()> {
        self.call::<Value, _>(
            Method::POST,
            "experiments/search",
            &json!({"max_results": 1}),
        )
        .await
        .map(|_| ())
    }

    async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        let r: ExperimentResponse = self
            .call(
                Method::GET,
                "experiments/get-by-name",
                &json!({ "experiment_name": name }),
            )
            .await
            .map_err(|e| e.with("experiment", name))?;
        Ok(r.experiment)
    }

    async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment> {
        let r: ExperimentResponse = self
            .call(
                Method::GET,
                "experiments/get",
                &json!({ "experiment_id": experiment_id }),
            )
            .await
            .map_err(|e| e.with("experiment_id", experiment_id))?;
        Ok(r.experiment)
    }

    async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
    ) -> Result<String> {
        let mut body = json!({ "name": name });
        if let Some(location) = artifact_location {
            body["artifact_location"] = json!(location);
        }
        let r: Value = self
            .call(Method::POST, "experiments/create", &body)
            .await
            .map_err(|e| e.with("experiment", name))?;
        Ok(r["experiment_id"].as_str().unwrap_or_default().to_string())
    }

    async fn create_run(
        &self,
        experiment_id: &str,
        run_name: Option<&str>,
        start_time: i64,
        tags: &[RunTag],
    ) -> Result<RunInfo> {
        let mut body = json!({ "experiment_id": experiment_id, "start_time": start_time });
        if let Some(name) = run_name {
            body["run_name"] = json!(name);
        }
        if !tags.is_empty() {
            body["tags"] = json!(tags);
        }
        // After an answer lost on the way back: the run this request made, if
        // the server made it (see `call_create`).
        let lookup = || self.find_created_run(experiment_id, run_name, start_time, tags);
        let r: RunResponse = self
            .call_create("runs/create", &body, lookup)
            .await
            .map_err(|e| e.with("experiment_id", experiment_id))?;
        Ok(r.run.info)
    }

    async fn get_run(&self, run_id: &str) -> Result<Run> {
        let r: RunResponse = self
            .call(Method::GET, "runs/get", &json!({ "run_id": run_id }))
            .await
            .map_err(|e| e.with("run_id", run_id))?;
        Ok(r.run)
    }

    async fn update_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time: Option<i64>,
    ) -> Result<RunInfo> {
        let mut body = json!({ "run_id": run_id, "status": status });
        if let Some(t) = end_time {
            body["end_time"] = json!(t);
        }
        #[derive(Deserialize)]
        struct R {
            run_info: RunInfo,
        }
        let r: R = self
            .call(Method::POST, "runs/update", &body)
            .await
            .map_err(|e| e.with("run_id", run_id))?;
        Ok(r.run_info)
    }

    async fn search_runs(
        &self,
        experiment_ids: &[&str],
        filter: &str,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<Run>> {
        let mut body = json!({
            "experiment_ids": experiment_ids,
            "filter": filter,
            "max_results": max_results,
        });
        if let Some(t) = page_token {
            body["page_token"] = json!(t);
        }
        let r: SearchRunsResponse = self
            .call(Method::POST, "runs/search", &body)
            .await
            .map_err(|e| e.with("experiment_ids", experiment_ids.join(",")))?;
        Ok((r.runs, r.next_page_token.filter(|t| !t.is_empty())))
    }

    async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[RunTag],
    ) -> Result<()> {
        self.call::<Value, _>(
            Method::POST,
            "runs/log-batch",
            &json!({ "run_id": run_id, "metrics": metrics, "params": params, "tags": tags }),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.with("run_id", run_id))
    }

    async fn get_metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = json!({ "run_id": run_id, "metric_key": key, "max_results": 25000 });
            if let Some(t) = &token {
                q["page_token"] = json!(t);
            }
            let r: MetricHistoryResponse = self
                .call(Method::GET, "metrics/get-history", &q)
                .await
                .map_err(|e| e.with("run_id", run_id).with("metric", key))?;
            all.extend(r.metrics);
            match r.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(all),
            }
        }
    }

    async fn create_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        let r: RegisteredModelResponse = self
            .call(
                Method::POST,
                "registered-models/create",
                &json!({ "name": name }),
            )
            .await
            .map_err(|e| e.with("model", name))?;
        Ok(r.registered_model)
    }

    async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        let r: RegisteredModelResponse = self
            .call(
                Method::GET,
                "registered-models/get",
                &json!({ "name": name }),
            )
            .await
            .map_err(|e| e.with("model", name))?;
        Ok(r.registered_model)
    }

    async fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: Option<&str>,
    ) -> Result<ModelVersion> {
        let mut body = json!({ "name": name, "source": source });
        if let Some(r) = run_id {
            body["run_id"] = json!(r);
        }
        // The versions of this run's model there are before the request, so
        // that after an answer lost on the way back the one it made (if the
        // server made it) can be told from earlier ones (see `call_create`).
        // Without a run id, or when they cannot be listed, nothing is looked
        // up: an unknown outcome is then an error, never a second request.
        let before = match run_id {
            Some(r) => self.versions_of_run(name, r).await.ok().map(|vs| {
                vs.into_iter()
                    .map(|v| v.version)
                    .collect::<std::collections::HashSet<String>>()
            }),
            None => None,
        };
        let lookup = || async {
            let (Some(run), Some(before)) = (run_id, &before) else {
                return Err(Error::new(
                    crate::ErrorKind::Unsupported,
                    "mlflow.model-versions/create",
                    "cannot look the version up: no run id, or the run's versions could \
                     not be listed before the request",
                ));
            };
            let mut new: Vec<ModelVersion> = self
                .versions_of_run(name, run)
                .await?
                .into_iter()
                .filter(|v| v.source == source && !before.contains(&v.version))
                .collect();
            match new.len() {
                0 => Ok(None),
                1 => Ok(new
                    .pop()
                    .map(|model_version| ModelVersionResponse { model_version })),
                n => Err(Error::new(
                    crate::ErrorKind::Remote,
                    "mlflow.model-versions/create",
                    format!(
                        "{n} new versions of the run's model appeared: cannot tell which \
                             one this request made"
                    ),
                )),
            }
        };
        let r: ModelVersionResponse = self
            .call_create("model-versions/create", &body, lookup)
            .await
            .map_err(|e| e.with("model", name))?;
        Ok(r.model_version)
    }

    async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        let r: ModelVersionResponse = self
            .call(
                Method::GET,
                "model-versions/get",
                &json!({ "name": name, "version": version }),
            )
            .await
            .map_err(|e| e.with("model", name).with("version", version))?;
        Ok(r.model_version)
    }

    async fn search_model_versions(
        &self,
        filter: &str,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<ModelVersion>> {
        let mut q = json!({ "filter": filter, "max_results": max_results });
        if let Some(t) = page_token {
            q["page_token"] = json!(t);
        }
        let r: SearchVersionsResponse = self
            .call(Method::GET, "model-versions/search", &q)
            .await
            .map_err(|e| e.with("filter", filter))?;
        Ok((
            r.model_versions,
            r.next_page_token.filter(|t| !t.is_empty()),
        ))
    }

    async fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        self.call::<Value, _>(
            Method::POST,
            "model-versions/set-tag",
            &json!({ "name": name, "version": version, "key": key, "value": value }),
        )
        .await
        .map(|_| ())
        .map_err(|e| {
            e.with("model", name)
                .with("version", version)
                .with("tag", key)
        })
    }

    async fn update_model_version(
        &self,
        name: &str,
        version: &str,
        description: &str,
    ) -> Result<ModelVersion> {
        let r: ModelVersionResponse = self
            .call(
                Method::PATCH,
                "model-versions/update",
                &json!({ "name": name, "version": version, "description": description }),
            )
            .await
            .map_err(|e| e.with("model", name).with("version", version))?;
        Ok(r.model_version)
    }

    async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> Result<()> {
        self.call::<Value, _>(
            Method::POST,
            "registered-models/alias",
            &json!({ "name": name, "alias": alias, "version": version }),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.with("model", name).with("alias", alias))
    }

    async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        self.call::<Value, _>(
            Method::DELETE,
            "registered-models/alias",
            &json!({ "name": name, "alias": alias }),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.with("model", name).with("alias", alias))
    }

    async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        let r: ModelVersionResponse = self
            .call(
                Method::GET,
                "registered-models/alias",
                &json!({ "name": name, "alias": alias }),
            )
            .await
            .map_err(|e| e.with("model", name).with("alias", alias))?;
        Ok(r.model_version)
    }

    async fn upload_artifact(
        &self,
        run_id: &str,
        local_path: &Path,
        artifact_path: &str,
    ) -> Result<()> {
        let op = "mlflow.log_artifact";
        let root = match self.artifact_root(op, run_id).await? {
            ArtifactRoot::Proxy(root) => root,
            #[cfg(feature = "s3")]
            ArtifactRoot::S3(root) => {
                return self
                    .s3
                    .upload(run_id, &root, local_path, artifact_path)
                    .await;
            }
        };
        let target = join(&root, artifact_path)?;
        let file = tokio::fs::File::open(local_path).await.map_err(|e| {
            self.scope
                .wrap(op, Error::from(e).with("path", local_path.display()))
        })?;
        let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let resp = self
            .authed(self.http.request(Method::PUT, self.artifact_url(&target)))
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(op, e))?;
        self.check(op, resp)
            .await
            .map_err(|e| e.with("run_id", run_id).with("artifact", &target))?;
        tracing::debug!(run_id, artifact = %target, bytes = len, "artifact uploaded");
        Ok(())
    }

    async fn list_artifacts(&self, run_id: &str, path: &str) -> Result<Vec<FileInfo>> {
        let op = "mlflow.list_artifacts";
        let root = match self.artifact_root(op, run_id).await? {
            ArtifactRoot::Proxy(root) => root,
            #[cfg(feature = "s3")]
            ArtifactRoot::S3(root) => return self.s3.list(run_id, &root, path).await,
        };
        let dir = join(&root, path)?;
        let url = format!("{}/api/2.0/mlflow-artifacts/artifacts", self.base_url);
        let resp = self
            .authed(self.http.get(url).query(&[("path", &dir)]))
            .send()
            .await
            .map_err(|e| self.transport_error(op, e))?;
        let text = self
            .check(op, resp)
            .await
            .map_err(|e| e.with("run_id", run_id))?;
        let list: ListResponse =
            serde_json::from_str(if text.trim().is_empty() { "{}" } else { &text })?;
        // The proxy lists names relative to the directory; report them relative to
        // the run's artifact root, as MLflow's client does.
        let base = path.trim_matches('/');
        Ok(list
            .files
            .into_iter()
            .map(|mut f| {
                if !base.is_empty() {
                    f.path = format!("{base}/{}", f.path);
                }
                f
            })
            .collect())
    }

    async fn download_artifact(&self, run_id: &str, path: &str, local: &Path) -> Result<()> {
        let op = "mlflow.download_artifacts";
        let root = match self.artifact_root(op, run_id).await? {
            ArtifactRoot::Proxy(root) => root,
            #[cfg(feature = "s3")]
            ArtifactRoot::S3(root) => return self.s3.download(run_id, &root, path, local).await,
        };
        let target = join(&root, path)?;
        let resp = self
            .authed(self.http.get(self.artifact_url(&target)))
            .send()
            .await
            .map_err(|e| self.transport_error(op, e))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            return Err(self
                .api_error(op, status, &text)
                .with("run_id", run_id)
                .with("artifact", path));
        }
        let body = resp
            .bytes_stream()
            .map(|c| c.map_err(std::io::Error::other));
        write_stream(local, body).await.map_err(|e| {
            self.scope.wrap(
                op,
                Error::from(e).with("run_id", run_id).with("artifact", path),
            )
        })?;
        Ok(())
    }
}
