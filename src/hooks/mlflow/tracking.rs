//! Experiments, runs, params, metrics, tags, batches and the run guard.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use super::MlflowHook;
use super::types::{Experiment, Metric, Param, Run, RunInfo, RunStatus, RunTag};
use crate::error::{ErrorKind, Result};

/// Limits a `log_batch` request is split by. The defaults are MLflow's; lower them
/// for stricter backends or proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Metrics per request (MLflow: 1000).
    pub max_metrics: usize,
    /// Params per request (MLflow: 100).
    pub max_params: usize,
    /// Tags per request (MLflow: 100).
    pub max_tags: usize,
    /// Metrics + params + tags per request (MLflow: 1000).
    pub max_entities: usize,
    /// Request body size in bytes (MLflow: 1 MB).
    pub max_request_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_metrics: 1000,
            max_params: 100,
            max_tags: 100,
            max_entities: 1000,
            max_request_bytes: 1_000_000,
        }
    }
}

/// One `log-batch` request body.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Batch {
    pub(crate) metrics: Vec<Metric>,
    pub(crate) params: Vec<Param>,
    pub(crate) tags: Vec<RunTag>,
}

/// Splits params, tags and metrics into requests that respect `limits`, keeping
/// their order (params first, so a run's configuration lands before its results).
pub(crate) fn split_batch(
    metrics: &[Metric],
    params: &[Param],
    tags: &[RunTag],
    limits: &BatchLimits,
) -> Vec<Batch> {
    // Room for `{"run_id":"<32 hex>","metrics":[],"params":[],"tags":[]}`.
    const ENVELOPE: usize = 128;
    let mut out = Vec::new();
    let mut cur = Batch::default();
    let mut bytes = ENVELOPE;
    let entities = |b: &Batch| b.metrics.len() + b.params.len() + b.tags.len();
    enum Item<'a> {
        P(&'a Param),
        T(&'a RunTag),
        M(&'a Metric),
    }
    let items = params
        .iter()
        .map(Item::P)
        .chain(tags.iter().map(Item::T))
        .chain(metrics.iter().map(Item::M));
    for item in items {
        let size = match &item {
            Item::P(p) => serde_json::to_string(p).map(|s| s.len()).unwrap_or(0),
            Item::T(t) => serde_json::to_string(t).map(|s| s.len()).unwrap_or(0),
            Item::M(m) => serde_json::to_string(m).map(|s| s.len()).unwrap_or(0),
        } + 1;
        let kind_full = match &item {
            Item::P(_) => cur.params.len() >= limits.max_params,
            Item::T(_) => cur.tags.len() >= limits.max_tags,
            Item::M(_) => cur.metrics.len() >= limits.max_metrics,
        };
        if entities(&cur) > 0
            && (kind_full
                || entities(&cur) >= limits.max_entities
                || bytes + size > limits.max_request_bytes)
        {
            out.push(std::mem::take(&mut cur));
            bytes = ENVELOPE;
        }
        bytes += size;
        match item {
            Item::P(p) => cur.params.push(p.clone()),
            Item::T(t) => cur.tags.push(t.clone()),
            Item::M(m) => cur.metrics.push(m.clone()),
        }
    }
    if entities(&cur) > 0 {
        out.push(cur);
    }
    out
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl MlflowHook {
    /// The experiment named `name`.
    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        self.store.get_experiment_by_name(name).await
    }

    /// The experiment with id `experiment_id`.
    pub async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment> {
        self.store.get_experiment(experiment_id).await
    }

    /// Creates experiment `name` and returns its id; its runs' artifacts go under
    /// the store's default artifact root.
    pub async fn create_experiment(&self, name: &str) -> Result<String> {
        self.store.create_experiment(name, None).await
    }

    /// Creates experiment `name` whose runs keep their artifacts under
    /// `artifact_location` (MLflow's `create_experiment(name, artifact_location)`),
    /// e.g. `s3://bucket/prefix` — each run's root is then
    /// `<artifact_location>/<run_id>/artifacts`. A tracking server accepts any
    /// URI; gust reads and writes `mlflow-artifacts:/`, `s3://` (feature `s3`)
    /// and, on a file store, `file:` roots and local paths.
    pub async fn create_experiment_with_location(
        &self,
        name: &str,
        artifact_location: &str,
    ) -> Result<String> {
        self.store
            .create_experiment(name, Some(artifact_location))
            .await
    }

    /// The id of experiment `name`, created if missing. Safe when several processes
    /// race: whoever loses the create reads the winner's experiment.
    pub async fn get_or_create_experiment(&self, name: &str) -> Result<String> {
        match self.get_experiment_by_name(name).await {
            Ok(e) => return Ok(e.experiment_id),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match self.create_experiment(name).await {
            Ok(id) => {
                tracing::info!(experiment = name, experiment_id = %id, "mlflow experiment created");
                Ok(id)
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                Ok(self.get_experiment_by_name(name).await?.experiment_id)
            }
            Err(e) => Err(e),
        }
    }

    /// Starts a run in `experiment_id`; end it with [`ActiveRun::end`], or use
    /// [`with_run`](Self::with_run), which always ends it.
    pub async fn create_run(
        &self,
        experiment_id: &str,
        run_name: Option<&str>,
    ) -> Result<ActiveRun> {
        self.create_run_with_tags(experiment_id, run_name, &[])
            .await
    }

    /// Starts a run in `experiment_id` with `tags` set as part of its creation
    /// (MLflow's `runs/create` takes them), not by a later call: a run is
    /// never seen without them, so a caller that tags its runs with who made
    /// them can find every one of them again — after a try that died before
    /// its next call, or a response lost on the way back. `TrainModel` tags
    /// its runs with the task instance this way and, on a retry, ends the
    /// earlier tries' runs that were left `RUNNING`.
    pub async fn create_run_with_tags(
        &self,
        experiment_id: &str,
        run_name: Option<&str>,
        tags: &[RunTag],
    ) -> Result<ActiveRun> {
        let info = self
            .store
            .create_run(experiment_id, run_name, now_ms(), tags)
            .await?;
        tracing::info!(run_id = %info.run_id, experiment_id, "mlflow run started");
        Ok(ActiveRun {
            hook: self.clone(),
            info,
        })
    }

    /// Runs `f` inside a new run and ends the run whatever happens: `FINISHED` when
    /// `f` returns `Ok`, `FAILED` when it returns an error or panics.
    pub async fn with_run<T, F, Fut>(
        &self,
        experiment_id: &str,
        run_name: Option<&str>,
        f: F,
    ) -> Result<T>
    where
        F: FnOnce(ActiveRun) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let run = self.create_run(experiment_id, run_name).await?;
        run.guard(f).await
    }

    /// The run `run_id` with its params, latest metrics and tags.
    pub async fn get_run(&self, run_id: &str) -> Result<Run> {
        self.store.get_run(run_id).await
    }

    /// Sets a run's status (and end time, unless it is running).
    pub async fn update_run(&self, run_id: &str, status: RunStatus) -> Result<RunInfo> {
        let end_time =
            (status != RunStatus::Running && status != RunStatus::Scheduled).then(now_ms);
        self.store.update_run(run_id, status, end_time).await
    }

    /// One page of runs of `experiment_ids` matching `filter` (MLflow's search
    /// syntax, e.g. `metrics.accuracy > 0.9`), and the token of the next page.
    ///
    /// A [`FileStore`](super::FileStore) understands conjunctions (`and`) of
    /// comparisons on `params.*`, `metrics.*`, `tags.*` and the attributes
    /// `status`, `run_name`, `run_id`, `start_time`, `end_time`; anything else is
    /// an [`ErrorKind::Unsupported`] error there.
    pub async fn search_runs(
        &self,
        experiment_ids: &[&str],
        filter: &str,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<(Vec<Run>, Option<String>)> {
        self.store
            .search_runs(experiment_ids, filter, max_results, page_token)
            .await
    }

    /// Every run matching `filter`, following pages of `page_size`.
    pub async fn search_all_runs(
        &self,
        experiment_ids: &[&str],
        filter: &str,
        page_size: u32,
    ) -> Result<Vec<Run>> {
        let mut all = Vec::new();
        let mut token = None;
        loop {
            let (runs, next) = self
                .search_runs(experiment_ids, filter, page_size, token.as_deref())
                .await?;
            all.extend(runs);
            match next {
                Some(t) => token = Some(t),
                None => return Ok(all),
            }
        }
    }

    /// Logs a param. Re-logging the same value is fine; another value is an
    /// [`ErrorKind::InvalidInput`] error, as in MLflow.
    pub async fn log_param(&self, run_id: &str, key: &str, value: &str) -> Result<()> {
        let param = Param {
            key: key.to_string(),
            value: value.to_string(),
        };
        self.store
            .log_batch(run_id, &[], &[param], &[])
            .await
            .map_err(|e| e.with("param", key))
    }

    /// Logs one metric point at `step`, timestamped now. Non-finite values are
    /// accepted as the Python client accepts them: NaN is stored as NaN, while an
    /// MLflow server on a SQL backend stores ±infinity as ±`f64::MAX` (a
    /// [`FileStore`](super::FileStore) keeps them).
    pub async fn log_metric(&self, run_id: &str, key: &str, value: f64, step: i64) -> Result<()> {
        let metric = Metric {
            key: key.to_string(),
            value,
            timestamp: now_ms(),
            step,
        };
        self.store
            .log_batch(run_id, &[metric], &[], &[])
            .await
            .map_err(|e| e.with("metric", key))
    }

    /// Sets a tag (overwriting any previous value).
    pub async fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<()> {
        let tag = RunTag {
            key: key.to_string(),
            value: value.to_string(),
        };
        self.store
            .log_batch(run_id, &[], &[], &[tag])
            .await
            .map_err(|e| e.with("tag", key))
    }

    /// Logs any number of metrics, params and tags, split into as many `log-batch`
    /// requests as the [`BatchLimits`] require (never rejected for size).
    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[RunTag],
    ) -> Result<()> {
        let batches = split_batch(metrics, params, tags, &self.batch_limits);
        let n = batches.len();
        for (i, b) in batches.into_iter().enumerate() {
            self.store
                .log_batch(run_id, &b.metrics, &b.params, &b.tags)
                .await
                .map_err(|e| e.with("batch", format!("{}/{n}", i + 1)))?;
        }
        tracing::debug!(
            run_id,
            requests = n,
            metrics = metrics.len(),
            params = params.len(),
            tags = tags.len(),
            "mlflow batch logged"
        );
        Ok(())
    }

    /// Every logged point of metric `key`.
    pub async fn get_metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>> {
        self.store.get_metric_history(run_id, key).await
    }
}

/// A started run. Cheap to clone; logging calls go to the run it names.
#[derive(Debug, Clone)]
pub struct ActiveRun {
    hook: MlflowHook,
    info: RunInfo,
}

impl ActiveRun {
    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.info.run_id
    }

    /// The run's metadata as it was created.
    pub fn info(&self) -> &RunInfo {
        &self.info
    }

    /// The hook the run talks through.
    pub fn hook(&self) -> &MlflowHook {
        &self.hook
    }

    /// See [`MlflowHook::log_param`].
    pub async fn log_param(&self, key: &str, value: &str) -> Result<()> {
        self.hook.log_param(self.run_id(), key, value).await
    }

    /// See [`MlflowHook::log_metric`].
    pub async fn log_metric(&self, key: &str, value: f64, step: i64) -> Result<()> {
        self.hook.log_metric(self.run_id(), key, value, step).await
    }

    /// See [`MlflowHook::set_tag`].
    pub async fn set_tag(&self, key: &str, value: &str) -> Result<()> {
        self.hook.set_tag(self.run_id(), key, value).await
    }

    /// See [`MlflowHook::log_batch`].
    pub async fn log_batch(
        &self,
        metrics: &[Metric],
        params: &[Param],
        tags: &[RunTag],
    ) -> Result<()> {
        self.hook
            .log_batch(self.run_id(), metrics, params, tags)
            .await
    }

    /// Runs `f` inside this run and ends the run whatever happens: `FINISHED`
    /// when `f` returns `Ok`, `FAILED` when it returns an error or panics
    /// (the second half of [`MlflowHook::with_run`], for a run started with
    /// [`MlflowHook::create_run_with_tags`]).
    pub async fn guard<T, F, Fut>(self, f: F) -> Result<T>
    where
        F: FnOnce(ActiveRun) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let run = self;
        let outcome = AssertUnwindSafe(f(run.clone())).catch_unwind().await;
        match outcome {
            Ok(Ok(value)) => {
                run.end(RunStatus::Finished).await?;
                Ok(value)
            }
            Ok(Err(err)) => {
                if let Err(end_err) = run.end(RunStatus::Failed).await {
                    tracing::error!(run_id = %run.run_id(), error = %end_err, "could not mark the run FAILED");
                }
                Err(err.with("run_id", run.run_id()))
            }
            Err(panic) => {
                let _ = run.end(RunStatus::Failed).await;
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// Ends the run with `status`.
    pub async fn end(&self, status: RunStatus) -> Result<()> {
        self.hook.update_run(self.run_id(), status).await?;
        tracing::info!(run_id = %self.run_id(), ?status, "mlflow run ended");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metric(i: usize) -> Metric {
        Metric {
            key: format!("m{}", i % 7),
            value: i as f64,
            timestamp: 1,
            step: i as i64,
        }
    }

    #[test]
    fn batches_respect_every_limit_and_keep_everything() {
        let metrics: Vec<Metric> = (0..2500).map(metric).collect();
        let params: Vec<Param> = (0..250)
            .map(|i| Param {
                key: format!("p{i}"),
                value: "v".into(),
            })
            .collect();
        let tags: Vec<RunTag> = (0..120)
            .map(|i| RunTag {
                key: format!("t{i}"),
                value: "v".into(),
            })
            .collect();
        let limits = BatchLimits::default();
        let batches = split_batch(&metrics, &params, &tags, &limits);
        for b in &batches {
            assert!(b.metrics.len() <= 1000 && b.params.len() <= 100 && b.tags.len() <= 100);
            assert!(b.metrics.len() + b.params.len() + b.tags.len() <= 1000);
        }
        let flat_m: Vec<Metric> = batches.iter().flat_map(|b| b.metrics.clone()).collect();
        let flat_p: Vec<Param> = batches.iter().flat_map(|b| b.params.clone()).collect();
        assert_eq!(flat_m, metrics);
        assert_eq!(flat_p, params);
        assert_eq!(batches.iter().map(|b| b.tags.len()).sum::<usize>(), 120);
    }

    #[test]
    fn batches_respect_the_byte_limit() {
        let big = "x".repeat(5000);
        let params: Vec<Param> = (0..50)
            .map(|i| Param {
                key: format!("p{i}"),
                value: big.clone(),
            })
            .collect();
        let limits = BatchLimits {
            max_request_bytes: 20_000,
            ..BatchLimits::default()
        };
        let batches = split_batch(&[], &params, &[], &limits);
        assert!(batches.len() >= 13, "{}", batches.len());
        for b in &batches {
            let body =
                serde_json::to_string(&json!({"run_id": "0".repeat(32), "params": b.params}))
                    .unwrap();
            assert!(body.len() <= 20_000, "{}", body.len());
        }
    }

    #[test]
    fn non_finite_metrics_use_protobuf_spelling() {
        let m = Metric {
            key: "k".into(),
            value: f64::NAN,
            timestamp: 0,
            step: 0,
        };
        assert!(serde_json::to_string(&m).unwrap().contains("\"NaN\""));
        let back: Metric =
            serde_json::from_str(r#"{"key":"k","value":"-Infinity","timestamp":"5","step":2}"#)
                .unwrap();
        assert_eq!(
            (back.value, back.timestamp, back.step),
            (f64::NEG_INFINITY, 5, 2)
        );
    }
}
