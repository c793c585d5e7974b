//! Artifacts of a file-store run: files under the directory its `file:`
//! `artifact_uri` names, copied in a streaming fashion.

use std::path::{Path, PathBuf};

use super::{Inner, err, io_err, new_uuid_hex, uri_path};
use crate::error::{ErrorKind, Result};
use crate::hooks::mlflow::artifacts::{FileInfo, join};

/// Suffix of a file being copied in; listings skip it.
const PARTIAL: &str = ".gust-partial";

/// Copies `src` to `dst` through a temporary name beside `dst`, so `dst` is whole
/// or absent. `std::io::copy` streams (or uses the kernel's copy).
fn copy_whole(src: &Path, dst: &Path) -> std::io::Result<u64> {
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dst.with_file_name(format!(".{name}.{}{PARTIAL}", &new_uuid_hex()[..8]));
    let res = (|| {
        let mut from = std::fs::File::open(src)?;
        let mut to = std::fs::File::create(&tmp)?;
        let n = std::io::copy(&mut from, &mut to)?;
        to.sync_data()?;
        std::fs::rename(&tmp, dst)?;
        Ok(n)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

impl Inner {
    /// The local directory of run `run_id`'s artifacts.
    fn artifact_dir(&self, op: &str, run_id: &str) -> Result<PathBuf> {
        let (_, dir) = self.find_run(op, run_id)?;
        let meta = self
            .read_yaml(op, &dir.join(super::META))?
            .unwrap_or_default();
        let uri = super::get_str(&meta, "artifact_uri").unwrap_or_default();
        uri_path(&uri).ok_or_else(|| {
            err(
                ErrorKind::Unsupported,
                op,
                format!(
                    "the run's artifact root {uri:?} is not on the local file system; \
                     the file store only reads and writes file: artifact roots"
                ),
            )
            .with("run_id", run_id)
        })
    }

    /// `rel` checked (no `..`) and made a path under `base`.
    fn under(op: &str, run_id: &str, base: &Path, rel: &str) -> Result<(String, PathBuf)> {
        let rel = join("", rel).map_err(|e| {
            err(ErrorKind::InvalidInput, op, e.message().to_string()).with("run_id", run_id)
        })?;
        let path = rel
            .split('/')
            .filter(|s| !s.is_empty())
            .fold(base.to_path_buf(), |p, s| p.join(s));
        Ok((rel, path))
    }

    pub(super) fn upload_artifact(&self, run_id: &str, local: &Path, rel: &str) -> Result<()> {
        let op = "log_artifact";
        let base = self.artifact_dir(op, run_id)?;
        let (rel, dst) = Self::under(op, run_id, &base, rel)?;
        if rel.is_empty() {
            return Err(err(
                ErrorKind::InvalidInput,
                op,
                "the artifact path names no file",
            )
            .with("run_id", run_id));
        }
        if !local.is_file() {
            return Err(err(
                ErrorKind::NotFound,
                op,
                "the local path to upload is not an existing file",
            )
            .with("run_id", run_id)
            .with("path", local.display()));
        }
        let bytes = copy_whole(local, &dst).map_err(|e| {
            io_err(op, "copy the artifact", &dst, e)
                .with("run_id", run_id)
                .with("artifact", &rel)
        })?;
        tracing::debug!(run_id, artifact = %rel, bytes, "artifact stored");
        Ok(())
    }

    pub(super) fn list_artifacts(&self, run_id: &str, rel: &str) -> Result<Vec<FileInfo>> {
        let op = "list_artifacts";
        let base = self.artifact_dir(op, run_id)?;
        let (rel, dir) = Self::under(op, run_id, &base, rel)?;
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            // A missing directory or a file lists as nothing, as in MLflow.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.kind() == std::io::ErrorKind::NotADirectory =>
            {
                return Ok(vec![]);
            }
            Err(e) => return Err(io_err(op, "list", &dir, e).with("run_id", run_id)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err(op, "list", &dir, e).with("run_id", run_id))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if name.ends_with(PARTIAL) {
                continue;
            }
            let meta = entry
                .metadata()
                .map_err(|e| io_err(op, "stat", &entry.path(), e).with("run_id", run_id))?;
            out.push(FileInfo {
                path: if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                },
                is_dir: meta.is_dir(),
                file_size: (!meta.is_dir()).then_some(meta.len()),
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    pub(super) fn download_artifact(&self, run_id: &str, rel: &str, local: &Path) -> Result<()> {
        let op = "download_artifacts";
        let base = self.artifact_dir(op, run_id)?;
        let (rel, src) = Self::under(op, run_id, &base, rel)?;
        if !src.is_file() {
            return Err(
                err(ErrorKind::NotFound, op, "no such artifact file in the run")
                    .with("run_id", run_id)
                    .with("artifact", &rel),
            );
        }
        copy_whole(&src, local).map_err(|e| {
            io_err(op, "copy the artifact", local, e)
                .with("run_id", run_id)
                .with("artifact", &rel)
        })?;
        Ok(())
    }
}
