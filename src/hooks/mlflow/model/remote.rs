//! Logging a model into a run's artifacts and loading it back, by `runs:/…` or
//! through the registry (`models:/…`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::super::{MlflowHook, ModelVersion, ModelVersionStatus, WithOrigin};
use super::signature::python_json;
use super::{
    MLMODEL_FILE, MlModel, MlflowFlavor, ModelMeta, ModelSignature, ModelUri, check_flavor,
    load_with, save_model,
};
use crate::error::{Error, ErrorKind, Result};

/// The run tag where MLflow lists the models logged to a run (a JSON list of
/// [`MlModel::tags_dict`] entries), which its UI and `search_runs` read.
pub const LOG_MODEL_HISTORY_TAG: &str = "mlflow.log-model.history";

/// MLflow's limit on a tag value (`MAX_TAG_VAL_LENGTH`).
const MAX_TAG_VALUE: usize = 8000;

/// How many `models:/…` sources a version may chain through before we give up.
const MAX_SOURCE_HOPS: usize = 8;

/// What [`MlflowHook::log_model`] logged (Python's `ModelInfo`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ModelInfo {
    /// The run it was logged to.
    pub run_id: String,
    /// Its directory under the run's artifact root.
    pub artifact_path: String,
    /// `runs:/<run_id>/<artifact_path>`: what to register or load.
    pub model_uri: String,
    /// The `MLmodel` written (uuid, creation time, flavors, signature).
    pub mlmodel: MlModel,
}

/// Where a model URI points: a directory of a run's artifacts, and the registered
/// version it came from, if any.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ResolvedModel {
    /// The run holding the model's files.
    pub run_id: String,
    /// The model directory under the run's artifact root (`""` for the root).
    pub artifact_path: String,
    /// The registered version the URI named (for `models:/…` URIs).
    pub model_version: Option<ModelVersion>,
}

impl ResolvedModel {
    /// `runs:/<run_id>/<artifact_path>`.
    pub fn run_uri(&self) -> String {
        ModelUri::run(&self.run_id, &self.artifact_path).to_string()
    }
}

/// Where a version's `source` leads: a run directory, or another registry URI.
enum Located {
    Run { run_id: String, path: String },
    Registry(ModelUri),
}

/// Checks an artifact path for [`MlflowHook::log_model`]: relative, non-empty,
/// no `.`/`..` segment, no empty segment, no backslash or control character.
fn check_artifact_path(path: &str) -> Result<String> {
    let trimmed = path.trim_end_matches('/');
    let bad = |why: &str| {
        Err(Error::new(
            ErrorKind::InvalidInput,
            "mlflow.log_model",
            format!("artifact path {path:?} {why}"),
        ))
    };
    if trimmed.is_empty() {
        return bad("is empty");
    }
    if trimmed.starts_with('/') {
        return bad("must be relative (no leading '/')");
    }
    if trimmed.contains('\\') || trimmed.chars().any(char::is_control) {
        return bad("may not contain '\\' or control characters");
    }
    if trimmed
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("may not contain empty, '.' or '..' segments");
    }
    Ok(trimmed.to_string())
}

/// `scheme` and the path of an artifact URI, for comparing locations: the
/// authority of `mlflow-artifacts://host:port/…` is dropped (it names the
/// tracking server, not the store), a bucket (`s3://bucket/…`) is kept.
fn split_location(uri: &str) -> (&str, &str) {
    let (scheme, rest) = match uri.split_once(':') {
        // A scheme is letters, digits, `+`, `-`, `.`; anything else is a plain path.
        Some((s, rest))
            if !s.is_empty()
                && s.len() > 1
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            (s, rest)
        }
        _ => ("file", uri),
    };
    let rest = match (scheme, rest.strip_prefix("//")) {
        ("mlflow-artifacts", Some(after)) => after.find('/').map(|i| &after[i..]).unwrap_or(""),
        _ => rest,
    };
    (scheme, rest.trim_matches('/'))
}

/// The path of `source` under the run's artifact root `root`, when it is there.
fn under_root(source: &str, root: &str) -> Option<String> {
    let (s_scheme, s_path) = split_location(source);
    let (r_scheme, r_path) = split_location(root);
    if s_scheme != r_scheme || r_path.is_empty() {
        return None;
    }
    if s_path == r_path {
        return Some(String::new());
    }
    s_path
        .strip_prefix(r_path)
        .and_then(|rest| rest.strip_prefix('/'))
        .map(|rest| rest.trim_matches('/').to_string())
}

/// The path after MLflow's default layout `…/<run_id>/artifacts/`, for a source
/// the server rewrote into another scheme than the run's artifact root.
fn under_run_layout(source: &str, run_id: &str) -> Option<String> {
    let (_, path) = split_location(source);
    let marker = format!("{run_id}/artifacts");
    let mut from = 0;
    while let Some(i) = path[from..].find(&marker) {
        let start = from + i;
        let end = start + marker.len();
        let at_segment_start = start == 0 || path.as_bytes()[start - 1] == b'/';
        let rest = &path[end..];
        if at_segment_start && (rest.is_empty() || rest.starts_with('/')) {
            return Some(rest.trim_matches('/').to_string());
        }
        from = end;
    }
    None
}

/// The `search_model_versions` filter selecting model `name`.
fn name_filter(name: &str) -> Result<String> {
    if !name.contains('\'') {
        Ok(format!("name='{name}'"))
    } else if !name.contains('"') {
        Ok(format!("name=\"{name}\""))
    } else {
        Err(Error::new(
            ErrorKind::InvalidInput,
            "mlflow.load_model",
            "a model name with both ' and \" cannot be searched; use models:/<name>/<version>",
        )
        .with("model", name))
    }
}

fn unsupported(uri: &str, why: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unsupported, "mlflow.load_model", why).with("uri", uri)
}

impl MlflowHook {
    /// Saves `model` as an MLflow model (its flavor's files and `MLmodel`, with
    /// `run_id`, `artifact_path`, a fresh `model_uuid`, `utc_time_created` and the
    /// `signature`) and uploads the directory to the run's artifacts under
    /// `artifact_path`, like Python's `mlflow.<flavor>.log_model` in MLflow 2's
    /// layout (MLflow 3 keeps accepting it: `runs:/…` sources register as before).
    ///
    /// Then appends the model to the run tag [`LOG_MODEL_HISTORY_TAG`], as the
    /// Python client does; like the Python client, a failure there (an old server,
    /// a history longer than MLflow's 8000-character tag limit) is logged as a
    /// warning and does not fail the call. The read-modify-write of that tag is not
    /// atomic: two `log_model` calls on one run at the same moment may keep only one
    /// entry (the models themselves are both uploaded).
    ///
    /// Returns the [`ModelInfo`] with `model_uri` `runs:/<run_id>/<artifact_path>`,
    /// ready for [`create_model_version`](Self::create_model_version). An existing
    /// model at the same path is overwritten file by file, as in MLflow.
    /// Serialization runs on the calling task.
    pub async fn log_model<M: MlflowFlavor>(
        &self,
        run_id: &str,
        artifact_path: &str,
        model: &M,
        signature: Option<ModelSignature>,
    ) -> Result<ModelInfo> {
        let mut meta = ModelMeta::new();
        meta.signature = signature;
        self.log_model_with(run_id, artifact_path, model, meta)
            .await
    }

    /// [`log_model`](Self::log_model) with more of what `MLmodel` records
    /// (a signature, an input example, metadata); `meta`'s run and path are
    /// set from `run_id` and `artifact_path`.
    pub async fn log_model_with<M: MlflowFlavor>(
        &self,
        run_id: &str,
        artifact_path: &str,
        model: &M,
        meta: ModelMeta,
    ) -> Result<ModelInfo> {
        let artifact_path =
            check_artifact_path(artifact_path).map_err(|e| e.with("run_id", run_id))?;
        let tmp = tempfile::tempdir().map_err(|e| {
            Error::from(e)
                .with("run_id", run_id)
                .with("op", "mlflow.log_model")
        })?;
        let local = tmp.path().join("model");
        let meta = meta.with_run(run_id, &artifact_path);
        let mlmodel = save_model(&local, model, &meta).map_err(|e| e.with("run_id", run_id))?;
        self.log_artifacts(run_id, &local, Some(&artifact_path))
            .await
            .map_err(|e| e.with("artifact_path", &artifact_path))?;
        if let Err(e) = self.record_logged_model(run_id, &mlmodel).await {
            tracing::warn!(
                run_id,
                artifact_path = %artifact_path,
                error = %e,
                "model logged, but it could not be added to the run's {LOG_MODEL_HISTORY_TAG} tag"
            );
        }
        let model_uri = ModelUri::run(run_id, &artifact_path).to_string();
        tracing::info!(
            run_id,
            model_uri = %model_uri,
            flavor = M::FLAVOR_NAME,
            bytes = mlmodel.model_size_bytes.unwrap_or(0),
            "model logged"
        );
        Ok(ModelInfo {
            run_id: run_id.to_string(),
            artifact_path,
            model_uri,
            mlmodel,
        })
    }

    /// Appends `mlmodel` to the run's [`LOG_MODEL_HISTORY_TAG`].
    async fn record_logged_model(&self, run_id: &str, mlmodel: &MlModel) -> Result<()> {
        let run = self.get_run(run_id).await?;
        let mut history: Vec<Value> = match run.data.tag(LOG_MODEL_HISTORY_TAG) {
            Some(v) => serde_json::from_str(v).unwrap_or_else(|e| {
                tracing::warn!(run_id, error = %e, "unreadable {LOG_MODEL_HISTORY_TAG} tag replaced");
                Vec::new()
            }),
            None => Vec::new(),
        };
        history.push(mlmodel.tags_dict());
        let value = python_json(&history);
        if value.chars().count() > MAX_TAG_VALUE {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "mlflow.log_model",
                format!(
                    "the model history would exceed MLflow's {MAX_TAG_VALUE}-character tag limit"
                ),
            )
            .with("run_id", run_id));
        }
        self.set_tag(run_id, LOG_MODEL_HISTORY_TAG, &value).await
    }

    /// Resolves a model URI (see [`ModelUri`]) to the run directory that holds
    /// the model:
    ///
    /// - `runs:/<run_id>/<path>` is itself.
    /// - `models:/<name>/<version>`, `models:/<name>@<alias>` and
    ///   `models:/<name>/latest` (the highest version number, whatever its
    ///   state) find the version, then follow its `source`: a `runs:/…` URI is
    ///   used as is; an artifact URI (`mlflow-artifacts:/…`, `s3://…`, a path),
    ///   which a server or another client may store instead, is matched against the
    ///   artifact root of the version's `run_id` (or, failing that, MLflow's
    ///   `…/<run_id>/artifacts/<path>` layout); a `models:/<name>/<version>` source
    ///   (a copied version) is followed in turn.
    ///
    /// A malformed URI is [`ErrorKind::InvalidInput`]. Stage URIs
    /// (`models:/<name>/Production`, deprecated by MLflow) and MLflow 3 logged
    /// models (`models:/m-…`, stored outside any run's artifacts), as well as
    /// sources that cannot be mapped to a run, are [`ErrorKind::Unsupported`].
    pub async fn resolve_model_uri(&self, uri: &str) -> Result<ResolvedModel> {
        let parsed = ModelUri::parse(uri)?;
        if let ModelUri::Run { run_id, path } = parsed {
            return Ok(ResolvedModel {
                run_id,
                artifact_path: path,
                model_version: None,
            });
        }
        let requested = self.registry_version(uri, &parsed).await?;
        let mut current = requested.clone();
        for _ in 0..MAX_SOURCE_HOPS {
            match self.locate_source(uri, &current).await? {
                Located::Run { run_id, path } => {
                    tracing::debug!(
                        uri,
                        model = %requested.name,
                        version = %requested.version,
                        run_id = %run_id,
                        path = %path,
                        "model URI resolved"
                    );
                    return Ok(ResolvedModel {
                        run_id,
                        artifact_path: path,
                        model_version: Some(requested),
                    });
                }
                Located::Registry(next) => {
                    current = self.registry_version(uri, &next).await?;
                }
            }
        }
        Err(Error::new(
            ErrorKind::InvalidInput,
            "mlflow.load_model",
            format!("model version sources chain through more than {MAX_SOURCE_HOPS} versions"),
        )
        .with("uri", uri))
    }

    /// The registered version a `models:/…` URI names.
    async fn registry_version(&self, uri: &str, parsed: &ModelUri) -> Result<ModelVersion> {
        let v = match parsed {
            ModelUri::Version { name, version } => {
                self.get_model_version(name, &version.to_string()).await?
            }
            ModelUri::Alias { name, alias } => self.get_model_version_by_alias(name, alias).await?,
            ModelUri::Latest { name } => {
                let versions = self.search_model_versions(&name_filter(name)?).await?;
                versions
                    .into_iter()
                    .filter(|v| &v.name == name)
                    .filter_map(|v| v.version_number().map(|n| (n, v)))
                    .max_by_key(|(n, _)| *n)
                    .map(|(_, v)| v)
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::NotFound,
                            "mlflow.load_model",
                            "the registered model has no versions",
                        )
                        .with_origin(self)
                        .with("model", name)
                    })?
            }
            ModelUri::Stage { stage, .. } => {
                return Err(unsupported(
                    uri,
                    format!(
                        "model stages ({stage}) are deprecated in MLflow and not supported; \
                         point an alias at the version and load models:/<name>@<alias>"
                    ),
                ));
            }
            ModelUri::LoggedModel { .. } => {
                return Err(unsupported(
                    uri,
                    "MLflow 3 logged models (models:/<model_id>) are stored outside run \
                     artifacts and not supported; register the run's model (runs:/<run_id>/<path>)",
                ));
            }
            ModelUri::Run { .. } => unreachable!("runs:/ URIs are not registry versions"),
        };
        if v.status != ModelVersionStatus::Ready {
            tracing::warn!(
                model = %v.name,
                version = %v.version,
                status = ?v.status,
                "loading a model version that is not READY"
            );
        }
        Ok(v)
    }

    /// Where a version's `source` points.
    async fn locate_source(&self, uri: &str, v: &ModelVersion) -> Result<Located> {
        let source = v.source.trim();
        let context = |e: Error| {
            e.with("model", &v.name)
                .with("version", &v.version)
                .with("source", source)
        };
        if source.starts_with("runs:") {
            return match ModelUri::parse(source).map_err(context)? {
                ModelUri::Run { run_id, path } => Ok(Located::Run { run_id, path }),
                _ => unreachable!("a runs: URI parses as a run"),
            };
        }
        if source.starts_with("models:") {
            return match ModelUri::parse(source).map_err(context)? {
                ModelUri::LoggedModel { .. } => Err(context(unsupported(
                    uri,
                    "the version's source is an MLflow 3 logged model (models:/<model_id>), \
                     stored outside run artifacts; not supported",
                ))),
                other => Ok(Located::Registry(other)),
            };
        }
        if v.run_id.is_empty() {
            return Err(context(unsupported(
                uri,
                "the version has no run_id and its source is not a runs:/ URI, so its files \
                 cannot be reached through a run",
            )));
        }
        let run = self.get_run(&v.run_id).await.map_err(context)?;
        let path = under_root(source, &run.info.artifact_uri)
            .or_else(|| under_run_layout(source, &v.run_id))
            .ok_or_else(|| {
                context(unsupported(
                    uri,
                    format!(
                        "the version's source is not under its run's artifact root {}",
                        run.info.artifact_uri
                    ),
                ))
                .with("run_id", &v.run_id)
            })?;
        Ok(Located::Run {
            run_id: v.run_id.clone(),
            path,
        })
    }

    /// Downloads the model `uri` points at (see
    /// [`resolve_model_uri`](Self::resolve_model_uri)) into `dst_dir`, and returns
    /// the local model directory (the one holding `MLmodel`) and where it came
    /// from. A location without an `MLmodel` file is [`ErrorKind::NotFound`].
    pub async fn download_model(
        &self,
        uri: &str,
        dst_dir: &Path,
    ) -> Result<(PathBuf, ResolvedModel)> {
        let resolved = self.resolve_model_uri(uri).await?;
        let (local, _) = self
            .fetch_model(uri, &resolved, dst_dir, |_| Ok(()))
            .await?;
        Ok((local, resolved))
    }

    /// Downloads `MLmodel`, lets `check` refuse the model before the rest is
    /// fetched, then downloads the whole directory.
    async fn fetch_model(
        &self,
        uri: &str,
        resolved: &ResolvedModel,
        dst_dir: &Path,
        check: impl Fn(&MlModel) -> Result<()>,
    ) -> Result<(PathBuf, MlModel)> {
        let path = resolved.artifact_path.as_str();
        let mlmodel_path = if path.is_empty() {
            MLMODEL_FILE.to_string()
        } else {
            format!("{path}/{MLMODEL_FILE}")
        };
        let file = self
            .download_artifacts(&resolved.run_id, &mlmodel_path, dst_dir)
            .await
            .map_err(|e| {
                if e.kind() == ErrorKind::NotFound {
                    Error::new(
                        ErrorKind::NotFound,
                        "mlflow.load_model",
                        "no MLflow model there: the directory has no MLmodel file",
                    )
                    .with_origin(self)
                    .with("uri", uri)
                    .with("run_id", &resolved.run_id)
                    .with("artifact_path", path)
                    .with_source(e)
                } else {
                    e.with("uri", uri)
                }
            })?;
        let mlmodel = MlModel::read(&file).map_err(|e| e.with("uri", uri))?;
        check(&mlmodel).map_err(|e| e.with("uri", uri))?;
        let local = self
            .download_artifacts(&resolved.run_id, path, dst_dir)
            .await
            .map_err(|e| e.with("uri", uri))?;
        Ok((local, mlmodel))
    }

    /// Loads the model `uri` points at as an `M`: `models:/<name>/<version>`,
    /// `models:/<name>@<alias>`, `models:/<name>/latest` or
    /// `runs:/<run_id>/<path>` (resolved as
    /// [`resolve_model_uri`](Self::resolve_model_uri) explains). `MLmodel` is
    /// fetched first, so a model without `M`'s flavor fails
    /// ([`ErrorKind::InvalidInput`], naming the flavors it has) before its files
    /// are downloaded; the files go to a temporary directory removed afterwards.
    /// Deserialization runs on the calling task.
    pub async fn load_model<M: MlflowFlavor>(&self, uri: &str) -> Result<M> {
        let resolved = self.resolve_model_uri(uri).await?;
        let tmp = tempfile::tempdir().map_err(|e| {
            Error::from(e)
                .with("uri", uri)
                .with("op", "mlflow.load_model")
        })?;
        let (local, mlmodel) = self
            .fetch_model(uri, &resolved, tmp.path(), |m| {
                check_flavor::<M>(m).map(|_| ())
            })
            .await?;
        let model = load_with::<M>(&local, &mlmodel).map_err(|e| e.with("uri", uri))?;
        tracing::info!(
            uri,
            run_id = %resolved.run_id,
            artifact_path = %resolved.artifact_path,
            version = resolved.model_version.as_ref().map(|v| v.version.as_str()).unwrap_or(""),
            flavor = M::FLAVOR_NAME,
            "model loaded"
        );
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_paths() {
        assert_eq!(check_artifact_path("model").unwrap(), "model");
        assert_eq!(check_artifact_path("models/rf/").unwrap(), "models/rf");
        for bad in ["", "/", "/model", "a//b", "a/../b", "./a", "a\\b", "a\nb"] {
            assert_eq!(
                check_artifact_path(bad).unwrap_err().kind(),
                ErrorKind::InvalidInput,
                "{bad}"
            );
        }
    }

    #[test]
    fn sources_map_to_run_paths() {
        let root = "mlflow-artifacts:/1/abc/artifacts";
        assert_eq!(
            under_root("mlflow-artifacts:/1/abc/artifacts/model", root).as_deref(),
            Some("model")
        );
        assert_eq!(
            under_root("mlflow-artifacts://h:5000/1/abc/artifacts/a/b/", root).as_deref(),
            Some("a/b")
        );
        assert_eq!(under_root(root, root).as_deref(), Some(""));
        assert_eq!(
            under_root("mlflow-artifacts:/1/abc/artifactsX/m", root),
            None
        );
        assert_eq!(under_root("s3://b/1/abc/artifacts/m", root), None);
        assert_eq!(
            under_root("s3://b/1/abc/artifacts/m", "s3://b/1/abc/artifacts").as_deref(),
            Some("m")
        );
        assert_eq!(
            under_root("s3://other/1/abc/artifacts/m", "s3://b/1/abc/artifacts"),
            None
        );
        assert_eq!(
            under_root(
                "/mlruns/1/abc/artifacts/m",
                "file:///mlruns/1/abc/artifacts"
            )
            .as_deref(),
            Some("m")
        );
        assert_eq!(
            under_run_layout("s3://bucket/mlflow/1/abc/artifacts/model", "abc").as_deref(),
            Some("model")
        );
        assert_eq!(
            under_run_layout("s3://bucket/xabc/artifacts/m/abc/artifacts/n", "abc").as_deref(),
            Some("n")
        );
        assert_eq!(
            under_run_layout("s3://bucket/1/other/artifacts/m", "abc"),
            None
        );
    }

    #[test]
    fn name_filters_quote() {
        assert_eq!(name_filter("Iris").unwrap(), "name='Iris'");
        assert_eq!(name_filter("it's").unwrap(), "name=\"it's\"");
        assert_eq!(
            name_filter("a'b\"c").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
