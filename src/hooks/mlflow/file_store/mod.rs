//! [`FileStore`]: MLflow's local `file:` store; the layout is documented on the type.

mod artifacts;
mod filter;
mod registry;
mod tracking;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_yaml_ng::Value as Yaml;

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
/// must be local (`file:`) — a run MLflow created with an `s3://` root is
/// readable, its artifacts are [`Unsupported`](crate::ErrorKind::Unsupported).
/// Metrics keep NaN and ±infinity (`nan`, `inf` in the files, as Python writes
/// them); param values over 6000 and tag values over 8000 characters are
/// rejected rather than truncated.
///
/// Cheap to clone.
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("root", &self.inner.root)
            .finish()
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

fn op_name(op: &str) -> String {
    format!("mlflow.file.{op}")
}

/// An error of `kind` from file-store operation `op`.
pub(crate) fn err(kind: ErrorKind, op: &str, message: impl Into<String>) -> Error {
    Error::new(kind, op_name(op), message)
}

/// A local I/O failure while doing `what` on `path`.
pub(crate) fn io_err(op: &str, what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, op_name(op), format!("cannot {what}: {e}"))
        .with("path", path.display())
        .with_source(e)
}

/// 32 random hex digits (a UUID4's hex, as MLflow's run ids).
pub(crate) fn new_uuid_hex() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A YAML mapping with sorted keys, as MLflow's `yaml.safe_dump(sort_keys=True)`.
pub(crate) type Meta = BTreeMap<String, Yaml>;

pub(crate) fn ystr(s: impl Into<String>) -> Yaml {
    Yaml::String(s.into())
}

pub(crate) fn yint(i: i64) -> Yaml {
    Yaml::Number(i.into())
}

pub(crate) fn yopt_int(i: Option<i64>) -> Yaml {
    i.map(yint).unwrap_or(Yaml::Null)
}

/// A string field of a meta.yaml (numbers, as legacy ids were, become strings).
pub(crate) fn get_str(meta: &Meta, key: &str) -> Option<String> {
    match meta.get(key)? {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An integer field of a meta.yaml.
pub(crate) fn get_int(meta: &Meta, key: &str) -> Option<i64> {
    match meta.get(key)? {
        Yaml::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Yaml::String(s) => s.parse().ok(),
        _ => None,
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
            match self.create_experiment_dir(DEFAULT_EXPERIMENT_ID, "Default") {
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

    /// A new, empty staging directory in the root.
    fn staging_dir(&self, op: &str) -> Result<PathBuf> {
        let dir = self.root.join(format!(
            "{STAGING_PREFIX}{}{STAGING_SUFFIX}",
            new_uuid_hex()
        ));
        std::fs::create_dir(&dir).map_err(|e| io_err(op, "create a staging directory", &dir, e))?;
        Ok(dir)
    }

    /// Moves the staged directory to `target` unless `target` exists (with
    /// content). `Ok(false)` when it was taken; the staging is removed either way.
    fn publish_dir(&self, op: &str, staged: &Path, target: &Path) -> Result<bool> {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_err(op, "create a directory", parent, e))?;
        }
        // rename(2) replaces only an *empty* directory; one with a meta.yaml makes
        // it fail, which is how the loser of a creation race finds out.
        let res = if target.join(META).exists() {
            Ok(false)
        } else {
            match std::fs::rename(staged, target) {
                Ok(()) => Ok(true),
                Err(_) if target.exists() => Ok(false),
                Err(e) => Err(io_err(op, "publish a new directory", target, e)),
            }
        };
        if !matches!(res, Ok(true)) {
            let _ = std::fs::remove_dir_all(staged);
        }
        res
    }

    /// Writes `bytes` to `path` whole: a temporary file in `tmp_dir` (same file
    /// system, a place MLflow does not read), then a rename over `path`.
    fn write_atomic(&self, op: &str, tmp_dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_err(op, "create a directory", parent, e))?;
        }
        let tmp = tmp_dir.join(format!(".gust-tmp-{}", new_uuid_hex()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_data()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_err(op, "write", path, e)
        })
    }

    /// Creates `path` with `bytes` only if it does not exist: `Ok(false)` if it
    /// does. The content appears whole (hard link of a finished temporary file).
    fn create_exclusive(
        &self,
        op: &str,
        tmp_dir: &Path,
        path: &Path,
        bytes: &[u8],
    ) -> Result<bool> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_err(op, "create a directory", parent, e))?;
        }
        let tmp = tmp_dir.join(format!(".gust-tmp-{}", new_uuid_hex()));
        let res = (|| -> std::io::Result<bool> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_data()?;
            match std::fs::hard_link(&tmp, path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            }
        })();
        let _ = std::fs::remove_file(&tmp);
        res.map_err(|e| io_err(op, "write", path, e))
    }

    fn write_yaml(&self, op: &str, tmp_dir: &Path, path: &Path, meta: &Meta) -> Result<()> {
        let text = serde_yaml_ng::to_string(meta).map_err(|e| {
            err(ErrorKind::Io, op, format!("cannot write YAML: {e}")).with("path", path.display())
        })?;
        self.write_atomic(op, tmp_dir, path, text.as_bytes())
    }

    /// A meta.yaml as a mapping; `Ok(None)` when the file does not exist.
    fn read_yaml(&self, op: &str, path: &Path) -> Result<Option<Meta>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(op, "read", path, e)),
        };
        serde_yaml_ng::from_str::<Option<Meta>>(&text)
            .map_err(|e| {
                err(ErrorKind::Io, op, format!("malformed meta.yaml: {e}"))
                    .with("path", path.display())
            })
            .map(|m| m.or_else(|| Some(Meta::new())))
    }

    /// The entries of `dir` that are directories (none if it does not exist).
    fn subdirs(&self, op: &str, dir: &Path) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io_err(op, "list", dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err(op, "list", dir, e))?;
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.push(entry.file_name().to_string_lossy().to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every file under `dir`, recursively, as (`a/b` relative key, path).
    fn files_under(&self, op: &str, dir: &Path) -> Result<Vec<(String, PathBuf)>> {
        let mut out = Vec::new();
        let mut stack = vec![(dir.to_path_buf(), String::new())];
        while let Some((d, prefix)) = stack.pop() {
            let entries = match std::fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(op, "list", &d, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io_err(op, "list", &d, e))?;
                let name = entry.file_name().to_string_lossy().to_string();
                let key = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                };
                if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push((entry.path(), key));
                } else {
                    out.push((key, entry.path()));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

// --- validation, with MLflow's rules -------------------------------------------

/// MLflow's `_validate_run_id`: `[a-zA-Z0-9][\w-]{0,255}`.
pub(crate) fn validate_run_id(op: &str, run_id: &str) -> Result<()> {
    validate_id(op, "run_id", run_id, 256)
}

/// MLflow's `_validate_experiment_id`: `[a-zA-Z0-9][\w-]{0,63}`.
pub(crate) fn validate_experiment_id(op: &str, id: &str) -> Result<()> {
    validate_id(op, "experiment_id", id, 64)
}

fn validate_id(op: &str, what: &'static str, id: &str, max: usize) -> Result<()> {
    let ok = id.len() <= max
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(err(
            ErrorKind::InvalidInput,
            op,
            format!("{what} {id:?} is not a valid MLflow id"),
        )
        .with(what, id))
    }
}

/// MLflow's rule for param, metric and tag keys: at most 250 characters of
/// letters, digits, `_ - . : /` and spaces, and, since a key is a file path, no
/// empty, `.` or `..` segment and no leading or trailing `/`.
pub(crate) fn validate_key(op: &str, what: &'static str, key: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(err(
            ErrorKind::InvalidInput,
            op,
            format!("{what} name {key:?} {why}"),
        )
        .with(what, key))
    };
    if key.is_empty() || key.chars().count() > 250 {
        return bad("must have 1 to 250 characters");
    }
    if !key
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | ':' | '/'))
    {
        return bad(
            "may only contain letters, digits, underscores, dashes, periods, colons, spaces \
             and slashes",
        );
    }
    if key.starts_with("..")
        || key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("would not name a unique file (empty, '.' or '..' path segment)");
    }
    Ok(())
}

/// MLflow's rule for registered model names in a file store: not blank, no `/`,
/// `\`, `:` or `%`, not `.`/`..`-like, no control characters.
pub(crate) fn validate_model_name(op: &str, name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(err(
            ErrorKind::InvalidInput,
            op,
            format!("registered model name {name:?} {why}"),
        )
        .with("model", name))
    };
    if name.trim().is_empty() || name.len() > 256 {
        return bad("must have 1 to 256 characters, not only spaces");
    }
    if name
        .chars()
        .any(|c| matches!(c, '/' | '\\' | ':' | '%') || c.is_control())
    {
        return bad("cannot contain '/', '\\', ':', '%' or control characters");
    }
    if name == "." || name.starts_with("..") {
        return bad("would not name a unique directory");
    }
    Ok(())
}

/// A model version: a positive integer.
pub(crate) fn parse_version(op: &str, name: &str, version: &str) -> Result<u64> {
    version
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| {
            err(
                ErrorKind::InvalidInput,
                op,
                format!("model version {version:?} is not a positive integer"),
            )
            .with("model", name)
            .with("version", version)
        })
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

    async fn create_experiment(&self, name: &str) -> Result<String> {
        let name = name.to_string();
        self.run("create_experiment", move |i| i.create_experiment(&name))
            .await
    }

    async fn create_run(
        &self,
        experiment_id: &str,
        run_name: Option<&str>,
        start_time: i64,
    ) -> Result<RunInfo> {
        let id = experiment_id.to_string();
        let run_name = run_name.map(str::to_string);
        self.run("create_run", move |i| {
            i.create_run(&id, run_name.as_deref(), start_time)
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
        let run_id = run_id.to_string();
        let local = local_path.to_path_buf();
        let rel = artifact_path.to_string();
        self.run("log_artifact", move |i| {
            i.upload_artifact(&run_id, &local, &rel)
        })
        .await
    }

    async fn list_artifacts(&self, run_id: &str, path: &str) -> Result<Vec<FileInfo>> {
        let run_id = run_id.to_string();
        let rel = path.to_string();
        self.run("list_artifacts", move |i| i.list_artifacts(&run_id, &rel))
            .await
    }

    async fn download_artifact(&self, run_id: &str, path: &str, local: &Path) -> Result<()> {
        let run_id = run_id.to_string();
        let rel = path.to_string();
        let local = local.to_path_buf();
        self.run("download_artifacts", move |i| {
            i.download_artifact(&run_id, &rel, &local)
        })
        .await
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

    #[test]
    fn names_are_checked_like_mlflow() {
        for ok in ["acc", "a/b", "loss 1", "x:y", "é", "a.b", "mlflow.runName"] {
            assert!(validate_key("t", "metric", ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "./a", "a/../b", "..", "..a", "a\nb", "a*b",
        ] {
            let e = validate_key("t", "metric", bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
        }
        for bad in ["a/b", "..", ".", " ", "a:b", "50%", "a\\b", ""] {
            assert!(validate_model_name("t", bad).is_err(), "{bad}");
        }
        assert!(validate_model_name("t", "IrisModel v2").is_ok());
        assert!(validate_run_id("t", &new_uuid_hex()).is_ok());
        assert!(validate_run_id("t", "../x").is_err());
        assert!(validate_experiment_id("t", "0").is_ok());
        assert!(validate_experiment_id("t", ".trash").is_err());
        assert_eq!(parse_version("t", "m", "3").unwrap(), 3);
        assert!(parse_version("t", "m", "0").is_err());
        assert!(parse_version("t", "m", "x").is_err());
    }
}
