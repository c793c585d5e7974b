//! The model registry in MLflow's file layout: `models/<name>/meta.yaml`,
//! `models/<name>/version-<n>/meta.yaml`, `models/<name>/aliases/<alias>`.

use std::path::{Path, PathBuf};

use serde_yaml_ng::Value as Yaml;

use super::filter::VersionFilter;
use super::tracking::paginate;
use super::{
    Inner, META, Meta, err, get_int, get_str, io_err, parse_version, validate_model_name, yint,
    ystr,
};
use crate::error::{ErrorKind, Result};
use crate::hooks::mlflow::registry::validate_alias;
use crate::hooks::mlflow::store::Page;
use crate::hooks::mlflow::tracking::now_ms;
use crate::hooks::mlflow::types::{
    ModelAlias, ModelVersion, ModelVersionStatus, ModelVersionTag, RegisteredModel,
};

/// How many version numbers a registration tries before giving up.
const VERSION_ATTEMPTS: u32 = 64;

impl Inner {
    fn model_dir(&self, op: &str, name: &str) -> Result<PathBuf> {
        validate_model_name(op, name)?;
        Ok(self.models().join(name))
    }

    /// The directory of an existing registered model, or `NotFound`.
    fn existing_model_dir(&self, op: &str, name: &str) -> Result<PathBuf> {
        let dir = self.model_dir(op, name)?;
        if dir.join(META).is_file() {
            Ok(dir)
        } else {
            Err(err(
                ErrorKind::NotFound,
                op,
                format!("registered model {name:?} not found"),
            )
            .with("model", name))
        }
    }

    /// alias → version, from the `aliases/` files (MLflow's source of truth).
    fn aliases(&self, op: &str, dir: &Path) -> Result<Vec<ModelAlias>> {
        let mut out = Vec::new();
        for (alias, path) in self.files_under(op, &dir.join("aliases"))? {
            if alias.starts_with(".gust-") {
                continue;
            }
            let version = std::fs::read_to_string(&path)
                .map_err(|e| io_err(op, "read", &path, e))?
                .trim()
                .to_string();
            out.push(ModelAlias { alias, version });
        }
        Ok(out)
    }

    /// Rewrites the model's meta.yaml with the current aliases and a new
    /// `last_updated_timestamp`, as MLflow does after each change.
    fn touch_model(&self, op: &str, name: &str, dir: &Path) -> Result<()> {
        let mut meta = self
            .read_yaml(op, &dir.join(META))?
            .ok_or_else(|| err(ErrorKind::NotFound, op, "registered model not found"))?;
        let aliases: serde_yaml_ng::Mapping = self
            .aliases(op, dir)?
            .into_iter()
            .map(|a| (ystr(a.alias), ystr(a.version)))
            .collect();
        meta.insert("aliases".into(), Yaml::Mapping(aliases));
        meta.insert("last_updated_timestamp".into(), yint(now_ms()));
        meta.entry("name".into()).or_insert_with(|| ystr(name));
        self.write_yaml(op, dir, &dir.join(META), &meta)
    }

    pub(super) fn create_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        let op = "create_registered_model";
        let dir = self.model_dir(op, name)?;
        let now = now_ms();
        let mut meta = Meta::new();
        meta.insert("aliases".into(), Yaml::Mapping(Default::default()));
        meta.insert("creation_timestamp".into(), yint(now));
        meta.insert("deployment_job_id".into(), Yaml::Null);
        meta.insert("deployment_job_state".into(), Yaml::Null);
        meta.insert("description".into(), Yaml::Null);
        meta.insert("last_updated_timestamp".into(), yint(now));
        meta.insert("name".into(), ystr(name));
        meta.insert("workspace".into(), ystr("default"));
        let staged = self.staging_dir(op)?;
        self.write_yaml(op, &staged, &staged.join(META), &meta)?;
        if !self
            .publish_dir(op, &staged, &dir)
            .map_err(|e| e.with("model", name))?
        {
            return Err(err(
                ErrorKind::AlreadyExists,
                op,
                format!("registered model {name:?} already exists"),
            )
            .with("model", name));
        }
        Ok(RegisteredModel {
            name: name.to_string(),
            aliases: vec![],
        })
    }

    pub(super) fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        let op = "get_registered_model";
        let dir = self.existing_model_dir(op, name)?;
        Ok(RegisteredModel {
            name: name.to_string(),
            aliases: self.aliases(op, &dir).map_err(|e| e.with("model", name))?,
        })
    }

    /// Version numbers present under a model directory.
    fn version_numbers(&self, op: &str, dir: &Path) -> Result<Vec<u64>> {
        Ok(self
            .subdirs(op, dir)?
            .iter()
            .filter_map(|d| d.strip_prefix("version-")?.parse().ok())
            .collect())
    }

    fn read_version(
        &self,
        op: &str,
        name: &str,
        dir: &Path,
        version: u64,
        aliases: &[ModelAlias],
    ) -> Result<Option<(ModelVersion, i64)>> {
        let Some(meta) = self.read_yaml(op, &dir.join(format!("version-{version}")).join(META))?
        else {
            return Ok(None);
        };
        let version_dir = dir.join(format!("version-{version}"));
        let mut tags = Vec::new();
        for (key, path) in self.files_under(op, &version_dir.join("tags"))? {
            if key.rsplit('/').next().unwrap_or("").starts_with(".gust-") {
                continue;
            }
            let value = std::fs::read_to_string(&path).map_err(|e| io_err(op, "read", &path, e))?;
            tags.push(ModelVersionTag { key, value });
        }
        let version = version.to_string();
        let v = ModelVersion {
            description: get_str(&meta, "description"),
            tags,
            name: get_str(&meta, "name").unwrap_or_else(|| name.to_string()),
            source: get_str(&meta, "source").unwrap_or_default(),
            run_id: get_str(&meta, "run_id").unwrap_or_default(),
            status: match get_str(&meta, "status").as_deref() {
                Some("PENDING_REGISTRATION") => ModelVersionStatus::PendingRegistration,
                Some("FAILED_REGISTRATION") => ModelVersionStatus::FailedRegistration,
                _ => ModelVersionStatus::Ready,
            },
            aliases: aliases
                .iter()
                .filter(|a| a.version == version)
                .map(|a| a.alias.clone())
                .collect(),
            version,
        };
        let updated = get_int(&meta, "last_updated_timestamp").unwrap_or(0);
        Ok(Some((v, updated)))
    }

    pub(super) fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: Option<&str>,
    ) -> Result<ModelVersion> {
        let op = "create_model_version";
        let dir = self.existing_model_dir(op, name)?;
        let ctx = |e: crate::Error| e.with("model", name);
        for _ in 0..VERSION_ATTEMPTS {
            // The next number; a concurrent registration may take it first, in
            // which case the rename below fails and the loop moves on.
            let version = self
                .version_numbers(op, &dir)
                .map_err(ctx)?
                .into_iter()
                .max()
                .unwrap_or(0)
                + 1;
            let now = now_ms();
            let mut meta = Meta::new();
            meta.insert("creation_timestamp".into(), yint(now));
            meta.insert("current_stage".into(), ystr("None"));
            meta.insert("deployment_job_state".into(), Yaml::Null);
            meta.insert("description".into(), Yaml::Null);
            meta.insert("last_updated_timestamp".into(), yint(now));
            meta.insert("model_id".into(), Yaml::Null);
            meta.insert("name".into(), ystr(name));
            meta.insert("run_id".into(), run_id.map(ystr).unwrap_or(Yaml::Null));
            meta.insert("run_link".into(), Yaml::Null);
            meta.insert("source".into(), ystr(source));
            meta.insert("status".into(), ystr("READY"));
            meta.insert("status_message".into(), Yaml::Null);
            meta.insert("storage_location".into(), ystr(source));
            meta.insert("user_id".into(), Yaml::Null);
            meta.insert("version".into(), yint(version as i64));
            meta.insert("workspace".into(), ystr("default"));
            let staged = self.staging_dir(op).map_err(ctx)?;
            self.write_yaml(op, &staged, &staged.join(META), &meta)
                .map_err(ctx)?;
            if self
                .publish_dir(op, &staged, &dir.join(format!("version-{version}")))
                .map_err(ctx)?
            {
                self.touch_model(op, name, &dir).map_err(ctx)?;
                let aliases = self.aliases(op, &dir).map_err(ctx)?;
                return self
                    .read_version(op, name, &dir, version, &aliases)
                    .map_err(ctx)?
                    .map(|(v, _)| v)
                    .ok_or_else(|| ctx(err(ErrorKind::Io, op, "the new version vanished")));
            }
        }
        Err(ctx(err(
            ErrorKind::Unavailable,
            op,
            format!("no free version number after {VERSION_ATTEMPTS} attempts"),
        )))
    }

    pub(super) fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        let op = "get_model_version";
        let ctx = |e: crate::Error| e.with("model", name).with("version", version);
        let n = parse_version(op, name, version)?;
        let dir = self.existing_model_dir(op, name).map_err(ctx)?;
        let aliases = self.aliases(op, &dir).map_err(ctx)?;
        self.read_version(op, name, &dir, n, &aliases)
            .map_err(ctx)?
            .map(|(v, _)| v)
            .ok_or_else(|| {
                ctx(err(
                    ErrorKind::NotFound,
                    op,
                    format!("model {name:?} has no version {version}"),
                ))
            })
    }

    pub(super) fn search_model_versions(
        &self,
        filter: &str,
        max_results: u32,
        token: Option<&str>,
    ) -> Result<Page<ModelVersion>> {
        let op = "search_model_versions";
        let ctx = |e: crate::Error| e.with("filter", filter);
        let filter = VersionFilter::parse(op, filter).map_err(ctx)?;
        let mut found = Vec::new();
        for name in self.subdirs(op, &self.models()).map_err(ctx)? {
            if !filter.may_match_model(&name) {
                continue;
            }
            let dir = self.models().join(&name);
            if !dir.join(META).is_file() {
                continue;
            }
            let aliases = self.aliases(op, &dir).map_err(ctx)?;
            for n in self.version_numbers(op, &dir).map_err(ctx)? {
                if let Some((v, updated)) = self
                    .read_version(op, &name, &dir, n, &aliases)
                    .map_err(ctx)?
                    && filter.matches(&v)
                {
                    found.push((v, updated, n));
                }
            }
        }
        // MLflow's order: last_updated_timestamp DESC, name ASC, version DESC.
        found.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| a.0.name.cmp(&b.0.name))
                .then_with(|| b.2.cmp(&a.2))
        });
        paginate(
            op,
            found.into_iter().map(|(v, _, _)| v).collect(),
            max_results,
            token,
        )
        .map_err(ctx)
    }

    /// The directory of an existing version, or `NotFound`.
    fn existing_version_dir(
        &self,
        op: &str,
        name: &str,
        version: &str,
    ) -> Result<(PathBuf, PathBuf)> {
        let n = parse_version(op, name, version)?;
        let dir = self.existing_model_dir(op, name)?;
        let version_dir = dir.join(format!("version-{n}"));
        if !version_dir.join(META).is_file() {
            return Err(err(
                ErrorKind::NotFound,
                op,
                format!("model {name:?} has no version {version}"),
            ));
        }
        Ok((dir, version_dir))
    }

    pub(super) fn set_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        let op = "set_model_version_tag";
        let ctx = |e: crate::Error| {
            e.with("model", name)
                .with("version", version)
                .with("tag", key)
        };
        super::validate::validate_key(op, "tag", key).map_err(ctx)?;
        let (dir, version_dir) = self.existing_version_dir(op, name, version).map_err(ctx)?;
        let tags = version_dir.join("tags");
        std::fs::create_dir_all(&tags).map_err(|e| ctx(io_err(op, "create", &tags, e)))?;
        self.write_atomic(op, &tags, &tags.join(key), value.as_bytes())
            .map_err(ctx)?;
        self.touch_version(op, &version_dir).map_err(ctx)?;
        self.touch_model(op, name, &dir).map_err(ctx)
    }

    pub(super) fn update_version(
        &self,
        name: &str,
        version: &str,
        description: &str,
    ) -> Result<ModelVersion> {
        let op = "update_model_version";
        let ctx = |e: crate::Error| e.with("model", name).with("version", version);
        let (_, version_dir) = self.existing_version_dir(op, name, version).map_err(ctx)?;
        let path = version_dir.join(META);
        let mut meta = self
            .read_yaml(op, &path)
            .map_err(ctx)?
            .ok_or_else(|| ctx(err(ErrorKind::NotFound, op, "the version vanished")))?;
        meta.insert("description".into(), ystr(description));
        meta.insert("last_updated_timestamp".into(), yint(now_ms()));
        self.write_yaml(op, &version_dir, &path, &meta)
            .map_err(ctx)?;
        self.get_model_version(name, version)
    }

    /// A new `last_updated_timestamp` in a version's meta.yaml.
    fn touch_version(&self, op: &str, version_dir: &Path) -> Result<()> {
        let path = version_dir.join(META);
        if let Some(mut meta) = self.read_yaml(op, &path)? {
            meta.insert("last_updated_timestamp".into(), yint(now_ms()));
            self.write_yaml(op, version_dir, &path, &meta)?;
        }
        Ok(())
    }

    fn alias_path(&self, op: &str, name: &str, alias: &str) -> Result<(PathBuf, PathBuf)> {
        validate_alias(alias).map_err(|e| e.with("model", name))?;
        let dir = self.existing_model_dir(op, name)?;
        let path = dir.join("aliases").join(alias);
        Ok((dir, path))
    }

    pub(super) fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        let op = "set_registered_model_alias";
        let ctx = |e: crate::Error| e.with("model", name).with("alias", alias);
        let (dir, path) = self.alias_path(op, name, alias).map_err(ctx)?;
        let n = parse_version(op, name, version).map_err(ctx)?;
        if !dir.join(format!("version-{n}")).join(META).is_file() {
            return Err(ctx(err(
                ErrorKind::NotFound,
                op,
                format!("model {name:?} has no version {version}"),
            )
            .with("version", version)));
        }
        self.write_atomic(op, &dir, &path, n.to_string().as_bytes())
            .map_err(ctx)?;
        self.touch_model(op, name, &dir).map_err(ctx)
    }

    pub(super) fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        let op = "delete_registered_model_alias";
        let ctx = |e: crate::Error| e.with("model", name).with("alias", alias);
        let (dir, path) = self.alias_path(op, name, alias).map_err(ctx)?;
        match std::fs::remove_file(&path) {
            Ok(()) => self.touch_model(op, name, &dir).map_err(ctx),
            // Deleting an unset alias is a no-op, as in MLflow.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ctx(io_err(op, "remove", &path, e))),
        }
    }

    pub(super) fn get_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        let op = "get_model_version_by_alias";
        let ctx = |e: crate::Error| e.with("model", name).with("alias", alias);
        let (_, path) = self.alias_path(op, name, alias).map_err(ctx)?;
        let version = match std::fs::read_to_string(&path) {
            Ok(v) => v.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ctx(err(
                    ErrorKind::NotFound,
                    op,
                    format!("registered model alias {alias} not found"),
                )));
            }
            Err(e) => return Err(ctx(io_err(op, "read", &path, e))),
        };
        self.get_model_version(name, &version).map_err(ctx)
    }
}
