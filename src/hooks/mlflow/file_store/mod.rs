//! [`FileStore`]: MLflow's local `file:` store; the layout is documented on the type.

mod artifacts;
mod experiments;
mod filter;
mod fs;
mod registry;
mod tracking;
mod validate;

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

pub(crate) use self::fs::{
    Meta, err, get_int, get_str, io_err, new_uuid_hex, yint, yopt_int, ystr,
};
pub(crate) use self::validate::{
    parse_version, validate_experiment_id, validate_key, validate_model_name, validate_run_id,
};
use super::artifacts::FileInfo;
use super::store::{MlflowStore, Page};
use super::types::{
    Experiment, Metric, ModelVersion, Param, RegisteredModel, Run, RunInfo, RunStatus, RunTag,
};
use crate::error::{Error, ErrorKind, Result};

const META: &str = "meta.yaml";
const TRASH: &str = ".trash";
const MODELS: &str = "models";
const DEFAULT_EXPERIMENT_ID: &str = "0";
/// Folders inside an experiment directory that are not runs.
const RESERVED_EXPERIMENT_FOLDERS: [&str; 4] = ["tags", "datasets", "traces", "models"];
/// Staging directories live in the root under names MLflow's listing skips
/// (it ignores entries ending in `.trash`) and `migrate-filestore` skips (not a
/// number).
const STAGING_PREFIX: &str = ".gust-";
const STAGING_SUFFIX: &str = ".trash";
/// Staging left behind by a crashed process is removed after this long.
const STALE_STAGING: std::time::Duration = std::time::Duration::from_secs(3600);

/// MLflow's local `file:` store (`./mlruns`), written in the exact
/// layout of MLflow's own `FileStore`, so `MLFLOW_ALLOW_FILE_STORE=true mlflow ui`
/// shows it and `mlflow migrate-filestore` converts it to a database.
///
/// ```text
/// <root>/.trash/                         deleted experiments (MLflow moves them here)
/// <root>/0/meta.yaml                     the Default experiment, made on first use
/// <root>/<exp_id>/meta.yaml              name, artifact_location, lifecycle_stage …
/// <root>/<exp_id>/<run_id>/meta.yaml     status (MLflow's int enum), times, artifact_uri
///                         /params/<key>  the value, no newline
///                         /metrics/<key> one `timestamp value step` line per point
///                         /tags/<key>    the value (incl. mlflow.runName)
///                         /artifacts/…   the files
/// <root>/models/<name>/meta.yaml         a registered model
///                     /aliases/<alias>   the version number
///                     /version-<n>/meta.yaml
/// ```
///
/// Keys with `/` are nested files, as in MLflow. Every file is written whole
/// (temporary file, then rename), so readers never see half a meta.yaml.
/// Creation races between tasks or processes are settled by the file system:
/// an experiment's id is derived from its name and its directory appears by one
/// atomic rename (a second creator finds it taken and reads the winner's), a
/// param is created by an atomic link (a different second value is an error),
/// and a model version claims `version-<n>` by rename, moving on to `n + 1` if it
/// lost. Staging directories sit in the root as `.gust-*.trash`, a name MLflow's
/// readers skip.
///
/// All file work runs on tokio's blocking pool; artifacts are copied in a
/// streaming fashion, never read whole.
///
/// Limits: experiment creation is race-free among gust processes (they derive
/// the same id from the name), not against a Python process creating the same
/// name at the same instant (MLflow picks a random id). Run searches understand
/// conjunctions of simple comparisons (see
/// [`MlflowHook::search_runs`](super::MlflowHook::search_runs)); artifact roots
/// are local (`file:`) or, with the `s3` feature, on S3 (`s3://`, an experiment
/// created with such an `artifact_location`; read and written through an
/// `S3Hook` configured like [`RestStore`](super::RestStore)'s); other schemes
/// are [`Unsupported`](crate::ErrorKind::Unsupported).
/// Metrics keep NaN and ±infinity (`nan`, `inf` in the files, as Python writes
/// them); param values over 6000 and tag values over 8000 characters are
/// rejected rather than truncated.
///
/// Cheap to clone.
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
    /// The S3 hook of runs whose artifact root is `s3://…`.
    #[cfg(feature = "s3")]
    s3: crate::hooks::mlflow::s3_artifacts::S3Artifacts,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("FileStore");
        d.field("root", &self.inner.root);
        #[cfg(feature = "s3")]
        d.field("artifact_s3", &self.s3);
        d.finish()
    }
}

pub(crate) struct Inner {
    root: PathBuf,
    uri: String,
    initialized: AtomicBool,
    /// run id → run directory, filled by lookups (verified before use).
    run_dirs: Mutex<HashMap<String, PathBuf>>,
}

impl FileStore {
    /// A store rooted at directory `root` (created on first use, with MLflow's
    /// Default experiment). A relative path is resolved against the current
    /// directory now, as MLflow does.
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        if root.as_os_str().is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "mlflow.file.open",
                "the store's root path is empty",
            ));
        }
        let abs = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Config,
                        "mlflow.file.open",
                        format!("cannot resolve a relative store path: {e}"),
                    )
                    .with("path", root.display())
                })?
                .join(root)
        };
        let root = normalize(&abs);
        let uri = file_uri(&root).map_err(|e| e.with("path", root.display()))?;
        Ok(FileStore {
            inner: Arc::new(Inner {
                root,
                uri,
                initialized: AtomicBool::new(false),
                run_dirs: Mutex::default(),
            }),
            #[cfg(feature = "s3")]
            s3: Default::default(),
        })
    }

    /// A store from a tracking URI: `file:./mlruns`, `file:///abs/mlruns`,
    /// `file://localhost/abs`, or a plain path.
    pub fn from_uri(uri: &str) -> Result<Self> {
        let bad = |why: String| {
            Error::new(ErrorKind::InvalidInput, "mlflow.file.open", why).with("uri", uri)
        };
        let path = match uri.strip_prefix("file:") {
            Some(rest) if rest.starts_with("//") => url::Url::parse(uri)
                .map_err(|e| bad(format!("not a file URI: {e}")))?
                .to_file_path()
                .map_err(|_| bad("a file URI must name a local path (file:///abs/path)".into()))?,
            Some(rest) => PathBuf::from(
                percent_encoding::percent_decode_str(rest)
                    .decode_utf8()
                    .map_err(|e| bad(format!("not UTF-8 once decoded: {e}")))?
                    .into_owned(),
            ),
            None => PathBuf::from(uri),
        };
        FileStore::new(path)
    }

    /// The store's root directory (absolute).
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Runs `f` on the blocking pool after making sure the root is laid out.
    async fn run<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        let uri = self.inner.uri.clone();
        tokio::task::spawn_blocking(move || {
            inner.ensure_init()?;
            f(&inner)
        })
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("mlflow.file.{op}"),
                format!("the file store task failed: {e}"),
            )
        })?
        .map_err(|e| e.with("store", uri))
    }
}

/// `a/./b/../c` → `a/c`, lexically (the root need not exist yet).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `file:///abs/path`, percent-encoded like Python's `Path.as_uri()`.
fn file_uri(path: &Path) -> Result<String> {
    url::Url::from_file_path(path)
        .map(|u| {
            let mut s = u.to_string();
            if s.len() > "file:///".len() && s.ends_with('/') {
                s.pop();
            }
            s
        })
        .map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                "mlflow.file.open",
                "the store's root cannot be written as a file: URI",
            )
        })
}

/// The local path of a `file:` artifact URI.
fn uri_path(uri: &str) -> Option<PathBuf> {
    if uri.starts_with("file://") {
        url::Url::parse(uri).ok()?.to_file_path().ok()
    } else if let Some(rest) = uri.strip_prefix("file:") {
        Some(PathBuf::from(
            percent_encoding::percent_decode_str(rest)
                .decode_utf8()
                .ok()?
                .into_owned(),
        ))
    } else if !uri.contains(':') {
        Some(PathBuf::from(uri))
    } else {
        None
    }
}

impl Inner {
    fn trash(&self) -> PathBuf {
        self.root.join(TRASH)
    }

    fn models(&self) -> PathBuf {
        self.root.join(MODELS)
    }

    /// Creates the root, `.trash` and the Default experiment once per store (each
    /// step tolerates a concurrent process doing the same).
    fn ensure_init(&self) -> Result<()> {
        if self.initialized.load(Ordering::Acquire) {
            return Ok(());
        }
        let op = "open";
        if self.root.exists() && !self.root.is_dir() {
            return Err(err(
                ErrorKind::Config,
                op,
                "the store's root exists and is not a directory",
            )
            .with("path", self.root.display()));
        }
        std::fs::create_dir_all(self.trash())
            .map_err(|e| io_err(op, "create the store's root", &self.root, e))?;
        if !self.root.join(DEFAULT_EXPERIMENT_ID).join(META).exists() {
            match self.create_experiment_dir(DEFAULT_EXPERIMENT_ID, "Default", None) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        self.remove_stale_staging();
        self.initialized.store(true, Ordering::Release);
        Ok(())
    }

    /// Removes staging directories a crashed process left (best effort).
    fn remove_stale_staging(&self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if !(name.starts_with(STAGING_PREFIX) && name.ends_with(STAGING_SUFFIX)) {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_STAGING);
            if old {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

#[async_trait]
impl MlflowStore for FileStore {
    fn tracking_uri(&self) -> &str {
        &self.inner.uri
    }

    async fn test_connection(&self) -> Result<()> {
        self.run("test_connection", |inner| {
            let probe = inner.root.join(format!(".gust-tmp-{}", new_uuid_hex()));
            std::fs::write(&probe, b"")
                .map_err(|e| io_err("test_connection", "write to the store", &probe, e))?;
            let _ = std::fs::remove_file(&probe);
            Ok(())
        })
        .await
    }

    async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        let name = name.to_string();
        self.run("get_experiment_by_name", move |i| {
            i.find_experiment_by_name(&name)?.ok_or_else(|| {
                err(
                    ErrorKind::NotFound,
                    "get_experiment_by_name",
                    format!("no experiment named {name:?}"),
                )
                .with("experiment", &name)
            })
        })
        .await
    }

    async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment> {
        let id = experiment_id.to_string();
        self.run("get_experiment", move |i| i.get_experiment(&id))
            .await
    }

    async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
    ) -> Result<String> {
        let name = name.to_string();
        let location = artifact_location.map(str::to_string);
        self.run("create_experiment", move |i| {
            i.create_experiment(&name, location.as_deref())
        })
        .await
    }

    async fn create_run(
        &self,
        experiment_id: &str,
        run_name: Option<&str>,
        start_time: i64,
        tags: &[RunTag],
    ) -> Result<RunInfo> {
        let id = experiment_id.to_string();
        let run_name = run_name.map(str::to_string);
        let tags = tags.to_vec();
        self.run("create_run", move |i| {
            i.create_run(&id, run_name.as_deref(), start_time, &tags)
        })
        .await
    }

    async fn get_run(&self, run_id: &str) -> Result<Run> {
        let run_id = run_id.to_string();
        self.run("get_run", move |i| i.get_run(&run_id)).await
    }

    async fn update_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time: Option<i64>,
    ) -> Result<RunInfo> {
        let run_id = run_id.to_string();
        self.run("update_run", move |i| {
            i.update_run(&run_id, status, end_time)
        })
        .await
    }

    async fn search_runs(
        &self,
        experiment_ids: &[&str],
        filter: &str,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<Run>> {
        let ids: Vec<String> = experiment_ids.iter().map(|s| s.to_string()).collect();
        let filter = filter.to_string();
        let token = page_token.map(str::to_string);
        self.run("search_runs", move |i| {
            i.search_runs(&ids, &filter, max_results, token.as_deref())
        })
        .await
    }

    async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[RunTag],
    ) -> Result<()> {
        let run_id = run_id.to_string();
        let (metrics, params, tags) = (metrics.to_vec(), params.to_vec(), tags.to_vec());
        self.run("log_batch", move |i| {
            i.log_batch(&run_id, &metrics, &params, &tags)
        })
        .await
    }

    async fn get_metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>> {
        let run_id = run_id.to_string();
        let key = key.to_string();
        self.run("get_metric_history", move |i| {
            i.get_metric_history(&run_id, &key)
        })
        .await
    }

    async fn create_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        let name = name.to_string();
        self.run("create_registered_model", move |i| {
            i.create_registered_model(&name)
        })
        .await
    }

    async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        let name = name.to_string();
        self.run("get_registered_model", move |i| {
            i.get_registered_model(&name)
        })
        .await
    }

    async fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: Option<&str>,
    ) -> Result<ModelVersion> {
        let (name, source) = (name.to_string(), source.to_string());
        let run_id = run_id.map(str::to_string);
        self.run("create_model_version", move |i| {
            i.create_model_version(&name, &source, run_id.as_deref())
        })
        .await
    }

    async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        let (name, version) = (name.to_string(), version.to_string());
        self.run("get_model_version", move |i| {
            i.get_model_version(&name, &version)
        })
        .await
    }

    async fn search_model_versions(
        &self,
        filter: &str,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<ModelVersion>> {
        let filter = filter.to_string();
        let token = page_token.map(str::to_string);
        self.run("search_model_versions", move |i| {
            i.search_model_versions(&filter, max_results, token.as_deref())
        })
        .await
    }

    async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> Result<()> {
        let (name, alias, version) = (name.to_string(), alias.to_string(), version.to_string());
        self.run("set_registered_model_alias", move |i| {
            i.set_alias(&name, &alias, &version)
        })
        .await
    }

    async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        let (name, alias) = (name.to_string(), alias.to_string());
        self.run("delete_registered_model_alias", move |i| {
            i.delete_alias(&name, &alias)
        })
        .await
    }

    async fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        let (name, version) = (name.to_string(), version.to_string());
        let (key, value) = (key.to_string(), value.to_string());
        self.run("set_model_version_tag", move |i| {
            i.set_version_tag(&name, &version, &key, &value)
        })
        .await
    }

    async fn update_model_version(
        &self,
        name: &str,
        version: &str,
        description: &str,
    ) -> Result<ModelVersion> {
        let (name, version) = (name.to_string(), version.to_string());
        let description = description.to_string();
        self.run("update_model_version", move |i| {
            i.update_version(&name, &version, &description)
        })
        .await
    }

    async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        let (name, alias) = (name.to_string(), alias.to_string());
        self.run("get_model_version_by_alias", move |i| {
            i.get_version_by_alias(&name, &alias)
        })
        .await
    }

    async fn upload_artifact(
        &self,
        run_id: &str,
        local_path: &Path,
        artifact_path: &str,
    ) -> Result<()> {
        self.upload(run_id, local_path, artifact_path).await
    }

    async fn list_artifacts(&self, run_id: &str, path: &str) -> Result<Vec<FileInfo>> {
        self.list(run_id, path).await
    }

    async fn download_artifact(&self, run_id: &str, path: &str, local: &Path) -> Result<()> {
        self.download(run_id, path, local).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_and_paths() {
        let s = FileStore::from_uri("file:///tmp/a%20b/mlruns").unwrap();
        assert_eq!(s.root(), Path::new("/tmp/a b/mlruns"));
        assert_eq!(s.tracking_uri(), "file:///tmp/a%20b/mlruns");
        let s = FileStore::from_uri("file:./x/../mlruns").unwrap();
        assert_eq!(s.root(), std::env::current_dir().unwrap().join("mlruns"));
        let s = FileStore::from_uri("/tmp/plain").unwrap();
        assert_eq!(s.root(), Path::new("/tmp/plain"));
        assert!(FileStore::from_uri("").is_err());
        assert_eq!(
            uri_path("file:///tmp/a%20b/0"),
            Some(PathBuf::from("/tmp/a b/0"))
        );
        assert_eq!(uri_path("s3://bucket/x"), None);
    }
}
