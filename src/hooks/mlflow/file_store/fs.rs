//! File-system primitives of the store: whole-file writes, exclusive creation,
//! staged directories, YAML, listings; and the error and meta.yaml helpers.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value as Yaml;

use super::{Inner, META, STAGING_PREFIX, STAGING_SUFFIX};
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::scope::HookScope;

/// The file store's error scope: operations `mlflow.file.*`; no conn id and no
/// secrets (a local directory has none), but the same one path as every hook.
pub(crate) fn scope() -> &'static HookScope {
    static SCOPE: std::sync::OnceLock<HookScope> = std::sync::OnceLock::new();
    SCOPE.get_or_init(|| HookScope::unnamed("mlflow.file", None, Vec::new()))
}

/// An error of `kind` from file-store operation `op`.
pub(crate) fn err(kind: ErrorKind, op: &str, message: impl Into<String>) -> Error {
    scope().error(kind, op, message)
}

/// A local I/O failure while doing `what` on `path`.
pub(crate) fn io_err(op: &str, what: &str, path: &Path, e: std::io::Error) -> Error {
    let e = Error::new(ErrorKind::Io, "", format!("cannot {what}: {e}"))
        .with("path", path.display())
        .with_source(e);
    scope().wrap(op, e)
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
    /// A new, empty staging directory in the root.
    pub(super) fn staging_dir(&self, op: &str) -> Result<PathBuf> {
        let dir = self.root.join(format!(
            "{STAGING_PREFIX}{}{STAGING_SUFFIX}",
            new_uuid_hex()
        ));
        std::fs::create_dir(&dir).map_err(|e| io_err(op, "create a staging directory", &dir, e))?;
        Ok(dir)
    }

    /// Moves the staged directory to `target` unless `target` exists (with
    /// content). `Ok(false)` when it was taken; the staging is removed either way.
    pub(super) fn publish_dir(&self, op: &str, staged: &Path, target: &Path) -> Result<bool> {
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
    pub(super) fn write_atomic(
        &self,
        op: &str,
        tmp_dir: &Path,
        path: &Path,
        bytes: &[u8],
    ) -> Result<()> {
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
    pub(super) fn create_exclusive(
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

    pub(super) fn write_yaml(
        &self,
        op: &str,
        tmp_dir: &Path,
        path: &Path,
        meta: &Meta,
    ) -> Result<()> {
        let text = serde_yaml_ng::to_string(meta).map_err(|e| {
            err(ErrorKind::Io, op, format!("cannot write YAML: {e}")).with("path", path.display())
        })?;
        self.write_atomic(op, tmp_dir, path, text.as_bytes())
    }

    /// A meta.yaml as a mapping; `Ok(None)` when the file does not exist.
    pub(super) fn read_yaml(&self, op: &str, path: &Path) -> Result<Option<Meta>> {
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
    pub(super) fn subdirs(&self, op: &str, dir: &Path) -> Result<Vec<String>> {
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
    pub(super) fn files_under(&self, op: &str, dir: &Path) -> Result<Vec<(String, PathBuf)>> {
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
