//! Experiments in MLflow's file layout: `<root>/<id>/meta.yaml`, deleted ones
//! under `.trash/`.

use std::path::{Path, PathBuf};

use super::{
    Inner, META, MODELS, Meta, STAGING_SUFFIX, TRASH, err, file_uri, get_str, normalize, uri_path,
    validate_experiment_id, yint, ystr,
};
use crate::error::{ErrorKind, Result};
use crate::hooks::mlflow::s3_artifacts::is_s3;
use crate::hooks::mlflow::tracking::now_ms;
use crate::hooks::mlflow::types::Experiment;

/// MLflow's limit on experiment names.
const MAX_EXPERIMENT_NAME: usize = 500;

/// The stable 18-digit id gust gives experiment `name` (probe `salt` after a
/// collision): concurrent creators of one name race for one directory.
fn experiment_id_for(name: &str, salt: u32) -> String {
    // FNV-1a, 64 bit: stable across builds and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain([0]).chain(salt.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (100_000_000_000_000_000 + h % 900_000_000_000_000_000).to_string()
}

/// An experiment's `artifact_location` as the file store records it: `s3://`
/// URIs as given (without a trailing `/`), local paths and `file:` URIs as an
/// absolute `file:///…` URI (a relative path is resolved against the current
/// directory, as MLflow's `resolve_uri_if_local`). Other schemes are
/// `Unsupported`: gust could not read or write their artifacts.
fn artifact_location(op: &str, location: &str) -> Result<String> {
    let location = location.trim();
    let bad = |kind, why: &str| err(kind, op, why).with("artifact_location", location);
    if location.is_empty() {
        return Err(bad(
            ErrorKind::InvalidInput,
            "the artifact location is empty",
        ));
    }
    if is_s3(location) {
        let bucket = location[5..].split('/').next().unwrap_or("");
        if bucket.is_empty() {
            return Err(bad(
                ErrorKind::InvalidInput,
                "the artifact location names no bucket (s3://bucket/prefix)",
            ));
        }
        return Ok(location.trim_end_matches('/').to_string());
    }
    let path = uri_path(location).ok_or_else(|| {
        bad(
            ErrorKind::Unsupported,
            "the file store keeps artifacts in local directories (file:, paths) or on S3 \
             (s3://) only",
        )
    })?;
    let abs = if path.is_absolute() {
        path
    } else {
        std::env::current_dir()
            .map_err(|e| {
                bad(
                    ErrorKind::Config,
                    &format!("cannot resolve a relative path: {e}"),
                )
            })?
            .join(path)
    };
    file_uri(&normalize(&abs))
}

impl Inner {
    /// The directory of experiment `id`, active or deleted.
    pub(super) fn experiment_dir(&self, id: &str) -> Option<PathBuf> {
        [self.root.join(id), self.trash().join(id)]
            .into_iter()
            .find(|d| d.is_dir())
    }

    /// Every experiment directory, active first, as MLflow lists them.
    pub(super) fn experiment_dirs(&self, op: &str) -> Result<Vec<(String, PathBuf)>> {
        let mut out = Vec::new();
        for (parent, deleted) in [(self.root.clone(), false), (self.trash(), true)] {
            for name in self.subdirs(op, &parent)? {
                let skip =
                    !deleted && (name == TRASH || name == MODELS || name.ends_with(STAGING_SUFFIX));
                if skip || validate_experiment_id(op, &name).is_err() {
                    continue;
                }
                out.push((name.clone(), parent.join(&name)));
            }
        }
        Ok(out)
    }

    fn read_experiment(&self, op: &str, id: &str, dir: &Path) -> Result<Option<Experiment>> {
        let Some(meta) = self.read_yaml(op, &dir.join(META))? else {
            return Ok(None);
        };
        // MLflow ignores an experiment whose meta.yaml names another id.
        if get_str(&meta, "experiment_id").as_deref() != Some(id) {
            return Ok(None);
        }
        Ok(Some(Experiment {
            experiment_id: id.to_string(),
            name: get_str(&meta, "name").unwrap_or_default(),
            artifact_location: get_str(&meta, "artifact_location").unwrap_or_default(),
            lifecycle_stage: get_str(&meta, "lifecycle_stage").unwrap_or_else(|| "active".into()),
        }))
    }

    pub(super) fn get_experiment(&self, id: &str) -> Result<Experiment> {
        let op = "get_experiment";
        validate_experiment_id(op, id)?;
        let not_found = || {
            err(
                ErrorKind::NotFound,
                op,
                format!("no experiment with id {id}"),
            )
            .with("experiment_id", id)
        };
        let dir = self.experiment_dir(id).ok_or_else(not_found)?;
        self.read_experiment(op, id, &dir)
            .map_err(|e| e.with("experiment_id", id))?
            .ok_or_else(not_found)
    }

    /// The experiment named `name`: an active one, else a deleted one.
    pub(super) fn find_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>> {
        let op = "get_experiment_by_name";
        let mut deleted = None;
        for (id, dir) in self.experiment_dirs(op)? {
            // A malformed experiment is skipped, as MLflow skips it.
            if let Ok(Some(e)) = self.read_experiment(op, &id, &dir)
                && e.name == name
            {
                if e.lifecycle_stage == "active" {
                    return Ok(Some(e));
                }
                deleted.get_or_insert(e);
            }
        }
        Ok(deleted)
    }

    /// Stages meta.yaml of experiment `id` and publishes it as `<root>/<id>`;
    /// `AlreadyExists` if that directory is taken. `location` is the artifact
    /// location as stored (see `artifact_location`), else the experiment's directory.
    pub(super) fn create_experiment_dir(
        &self,
        id: &str,
        name: &str,
        location: Option<&str>,
    ) -> Result<()> {
        let op = "create_experiment";
        let now = now_ms();
        let location = match location {
            Some(l) => l.to_string(),
            None => file_uri(&self.root.join(id))?,
        };
        let mut meta = Meta::new();
        meta.insert("artifact_location".into(), ystr(location));
        meta.insert("creation_time".into(), yint(now));
        meta.insert(
            "effective_trace_archival_retention".into(),
            serde_yaml_ng::Value::Null,
        );
        meta.insert("experiment_id".into(), ystr(id));
        meta.insert("last_update_time".into(), yint(now));
        meta.insert("lifecycle_stage".into(), ystr("active"));
        meta.insert("name".into(), ystr(name));
        meta.insert("trace_location".into(), serde_yaml_ng::Value::Null);
        meta.insert("workspace".into(), ystr("default"));
        let staged = self.staging_dir(op)?;
        self.write_yaml(op, &staged, &staged.join(META), &meta)?;
        if self.publish_dir(op, &staged, &self.root.join(id))? {
            Ok(())
        } else {
            Err(err(
                ErrorKind::AlreadyExists,
                op,
                format!("experiment id {id} is taken"),
            ))
        }
    }

    pub(super) fn create_experiment(&self, name: &str, location: Option<&str>) -> Result<String> {
        let op = "create_experiment";
        let ctx = |e: crate::Error| e.with("experiment", name);
        // Worked out once, before the name checks and the id attempts below.
        let location = location
            .map(|l| artifact_location(op, l))
            .transpose()
            .map_err(ctx)?;
        if name.trim().is_empty() || name.chars().count() > MAX_EXPERIMENT_NAME {
            return Err(ctx(err(
                ErrorKind::InvalidInput,
                op,
                format!("experiment names have 1 to {MAX_EXPERIMENT_NAME} characters"),
            )));
        }
        let exists = |e: &Experiment| {
            let state = if e.lifecycle_stage == "active" {
                ""
            } else {
                " in deleted state (restore it, or remove it from .trash)"
            };
            ctx(err(
                ErrorKind::AlreadyExists,
                op,
                format!("experiment {name:?} already exists{state}"),
            )
            .with("experiment_id", &e.experiment_id))
        };
        if let Some(e) = self.find_experiment_by_name(name).map_err(ctx)? {
            return Err(exists(&e));
        }
        for salt in 0..16 {
            let id = experiment_id_for(name, salt);
            if self.experiment_dir(&id).is_none() {
                match self.create_experiment_dir(&id, name, location.as_deref()) {
                    Ok(()) => return Ok(id),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(ctx(e)),
                }
            }
            // Taken: by a concurrent creator of the same name (who won), or by a
            // different experiment whose id collides (try the next candidate).
            if let Some(dir) = self.experiment_dir(&id)
                && let Ok(Some(e)) = self.read_experiment(op, &id, &dir)
                && e.name == name
            {
                return Err(exists(&e));
            }
        }
        Err(ctx(err(
            ErrorKind::Io,
            op,
            "no free experiment id after 16 candidates",
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_locations_are_normalized() {
        let op = "create_experiment";
        assert_eq!(artifact_location(op, "s3://b/p/").unwrap(), "s3://b/p");
        assert_eq!(
            artifact_location(op, "/tmp/a b/../art").unwrap(),
            "file:///tmp/art"
        );
        assert_eq!(
            artifact_location(op, "file:///tmp/x").unwrap(),
            "file:///tmp/x"
        );
        let rel = artifact_location(op, "art").unwrap();
        assert!(
            rel.starts_with("file:///") && rel.ends_with("/art"),
            "{rel}"
        );
        assert_eq!(
            artifact_location(op, "gs://b/p").unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(
            artifact_location(op, "s3:///p").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            artifact_location(op, " ").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn experiment_ids_are_stable_eighteen_digit_numbers() {
        let a = experiment_id_for("iris", 0);
        assert_eq!(a, experiment_id_for("iris", 0));
        assert_ne!(a, experiment_id_for("iris", 1));
        assert_ne!(a, experiment_id_for("iris2", 0));
        assert_eq!(a.len(), 18);
        assert!(a.parse::<i64>().is_ok());
    }
}
