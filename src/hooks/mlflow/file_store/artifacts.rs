//! Artifacts of a file-store run: files under the directory its `file:`
//! `artifact_uri` names, copied in a streaming fashion — or, for an `s3://`
//! root (feature `s3`), objects on S3 through the store's S3 hook.

use std::path::{Path, PathBuf};

use super::{FileStore, Inner, err, io_err, new_uuid_hex, uri_path};
use crate::error::{ErrorKind, Result};
use crate::hooks::mlflow::artifacts::{FileInfo, join};
use crate::hooks::mlflow::s3_artifacts::is_s3;
#[cfg(feature = "s3")]
use crate::hooks::mlflow::s3_artifacts::{S3Artifacts, S3Root};

/// Where a run's artifacts live.
enum Location {
    /// A local directory.
    Local(PathBuf),
    /// Objects under an `s3://` root.
    #[cfg(feature = "s3")]
    S3(S3Root),
}

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
    /// Where run `run_id`'s artifacts live, from its `artifact_uri`.
    fn artifact_location(&self, op: &str, run_id: &str) -> Result<Location> {
        let (_, dir) = self.find_run(op, run_id)?;
        let meta = self
            .read_yaml(op, &dir.join(super::META))?
            .unwrap_or_default();
        let uri = super::get_str(&meta, "artifact_uri").unwrap_or_default();
        if is_s3(&uri) {
            #[cfg(feature = "s3")]
            return S3Root::parse(&uri)
                .map(Location::S3)
                .map_err(|e| e.with("run_id", run_id));
            #[cfg(not(feature = "s3"))]
            return Err(crate::hooks::mlflow::s3_artifacts::needs_s3_feature(
                super::fs::scope().operation(op),
            )
            .with("run_id", run_id)
            .with("artifact_uri", &uri));
        }
        uri_path(&uri).map(Location::Local).ok_or_else(|| {
            err(
                ErrorKind::Unsupported,
                op,
                "the run's artifact root is neither on the local file system (file:) nor \
                 on S3 (s3://)",
            )
            .with("run_id", run_id)
            .with("artifact_uri", &uri)
        })
    }

    /// `rel` checked (no `..`) and made a path under `base`, which it must not
    /// leave through a symbolic link in the run's artifacts (the last part
    /// resolved too when `follow_last`: reads and listings; a write replaces it).
    fn under(
        op: &str,
        run_id: &str,
        base: &Path,
        rel: &str,
        follow_last: bool,
    ) -> Result<(String, PathBuf)> {
        let rel = join("", rel).map_err(|e| {
            err(ErrorKind::InvalidInput, op, e.message().to_string()).with("run_id", run_id)
        })?;
        let path = rel
            .split('/')
            .filter(|s| !s.is_empty())
            .fold(base.to_path_buf(), |p, s| p.join(s));
        // A run without artifacts yet may have no directory: nothing to follow.
        let inside = !base.exists()
            || crate::paths::stays_under(base, &path, follow_last)
                .map_err(|e| io_err(op, "resolve", &path, e).with("run_id", run_id))?;
        if !inside {
            return Err(err(
                ErrorKind::InvalidInput,
                op,
                "the artifact path leads out of the run's artifacts through a symbolic link",
            )
            .with("run_id", run_id)
            .with("artifact", &rel));
        }
        Ok((rel, path))
    }

    fn upload_artifact(&self, run_id: &str, base: &Path, local: &Path, rel: &str) -> Result<()> {
        let op = "log_artifact";
        let (rel, dst) = Self::under(op, run_id, base, rel, false)?;
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

    fn list_artifacts(&self, run_id: &str, base: &Path, rel: &str) -> Result<Vec<FileInfo>> {
        let op = "list_artifacts";
        let (rel, dir) = Self::under(op, run_id, base, rel, true)?;
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

    fn download_artifact(&self, run_id: &str, base: &Path, rel: &str, local: &Path) -> Result<()> {
        let op = "download_artifacts";
        let (rel, src) = Self::under(op, run_id, base, rel, true)?;
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

impl FileStore {
    /// Reads and writes the artifacts of runs whose root is `s3://…` through
    /// `hook` instead of a hook built from `MLFLOW_S3_ENDPOINT_URL` and the
    /// default AWS chain. Runs with local roots are unaffected.
    #[cfg(feature = "s3")]
    #[cfg_attr(docsrs, doc(cfg(feature = "s3")))]
    pub fn with_artifact_s3(mut self, hook: crate::hooks::s3::S3Hook) -> Self {
        self.s3 = S3Artifacts::with_hook(hook);
        self
    }

    async fn location(&self, op: &'static str, run_id: &str) -> Result<Location> {
        let run_id = run_id.to_string();
        self.run(op, move |i| i.artifact_location(op, &run_id))
            .await
    }

    pub(super) async fn upload(&self, run_id: &str, local: &Path, rel: &str) -> Result<()> {
        let op = "log_artifact";
        match self.location(op, run_id).await? {
            Location::Local(base) => {
                let (run_id, local, rel) =
                    (run_id.to_string(), local.to_path_buf(), rel.to_string());
                self.run(op, move |i| i.upload_artifact(&run_id, &base, &local, &rel))
                    .await
            }
            #[cfg(feature = "s3")]
            Location::S3(root) => self.s3.upload(run_id, &root, local, rel).await,
        }
    }

    pub(super) async fn list(&self, run_id: &str, rel: &str) -> Result<Vec<FileInfo>> {
        let op = "list_artifacts";
        match self.location(op, run_id).await? {
            Location::Local(base) => {
                let (run_id, rel) = (run_id.to_string(), rel.to_string());
                self.run(op, move |i| i.list_artifacts(&run_id, &base, &rel))
                    .await
            }
            #[cfg(feature = "s3")]
            Location::S3(root) => self.s3.list(run_id, &root, rel).await,
        }
    }

    pub(super) async fn download(&self, run_id: &str, rel: &str, local: &Path) -> Result<()> {
        let op = "download_artifacts";
        match self.location(op, run_id).await? {
            Location::Local(base) => {
                let (run_id, rel, local) =
                    (run_id.to_string(), rel.to_string(), local.to_path_buf());
                self.run(op, move |i| {
                    i.download_artifact(&run_id, &base, &rel, &local)
                })
                .await
            }
            #[cfg(feature = "s3")]
            Location::S3(root) => self.s3.download(run_id, &root, rel, local).await,
        }
    }
}
