//! Artifacts: single files and whole directories, up and down, on top of the
//! store's one-file primitives. Files are streamed in both directions, so their
//! size does not matter to memory.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{MlflowHook, WithOrigin};
use crate::error::{Error, ErrorKind, Result};

/// An entry of an artifact directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct FileInfo {
    /// Path relative to the run's artifact root.
    pub path: String,
    /// Whether it is a directory.
    #[serde(default)]
    pub is_dir: bool,
    /// Size in bytes (files only).
    #[serde(default, deserialize_with = "size")]
    pub file_size: Option<u64>,
}

fn size<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        I(u64),
        S(String),
    }
    Ok(match Option::<N>::deserialize(d)? {
        None => None,
        Some(N::I(i)) => Some(i),
        Some(N::S(s)) => s.parse().ok(),
    })
}

/// Joins artifact path segments, refusing `..` so nothing escapes the run's root.
pub(crate) fn join(root: &str, rel: &str) -> Result<String> {
    let mut out = root.to_string();
    for seg in rel.split('/').filter(|s| !s.is_empty() && *s != ".") {
        if seg == ".." {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "mlflow.artifacts",
                format!("artifact path {rel:?} leaves the run's artifact root"),
            ));
        }
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(seg);
    }
    Ok(out)
}

/// Writes `body` to `local` through a temporary name beside it, so a broken
/// download leaves no truncated file behind: the file appears whole or not at all.
pub(crate) async fn write_stream<S, B>(local: &Path, body: S) -> std::io::Result<()>
where
    S: futures::Stream<Item = std::io::Result<B>>,
    B: AsRef<[u8]>,
{
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;

    if let Some(parent) = local.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let partial = local.with_extension("gust-partial");
    let mut body = std::pin::pin!(body);
    let write = async {
        let mut file = tokio::fs::File::create(&partial).await?;
        while let Some(chunk) = body.next().await {
            file.write_all(chunk?.as_ref()).await?;
        }
        file.flush().await?;
        tokio::fs::rename(&partial, local).await
    };
    let res = write.await;
    if res.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    res
}

impl MlflowHook {
    /// Uploads the file `local_path` into the run's artifacts, under directory
    /// `artifact_path` (or at the root), keeping its file name.
    pub async fn log_artifact(
        &self,
        run_id: &str,
        local_path: &Path,
        artifact_path: Option<&str>,
    ) -> Result<()> {
        let name = local_path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "mlflow.log_artifact",
                    "the local path names no file",
                )
                .with("run_id", run_id)
                .with("path", local_path.display())
            })?;
        let target = join(&join("", artifact_path.unwrap_or(""))?, &name)?;
        self.store
            .upload_artifact(run_id, local_path, &target)
            .await
    }

    /// Uploads every file under directory `local_dir`, recursively, under
    /// `artifact_path` (or at the root), keeping the relative layout.
    pub async fn log_artifacts(
        &self,
        run_id: &str,
        local_dir: &Path,
        artifact_path: Option<&str>,
    ) -> Result<()> {
        let mut stack = vec![(
            local_dir.to_path_buf(),
            join("", artifact_path.unwrap_or(""))?,
        )];
        while let Some((dir, rel)) = stack.pop() {
            let io_err = |e: std::io::Error| {
                Error::from(e)
                    .with("run_id", run_id)
                    .with("path", dir.display())
            };
            let mut entries = tokio::fs::read_dir(&dir).await.map_err(io_err)?;
            while let Some(entry) = entries.next_entry().await.map_err(io_err)? {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().to_string();
                let target = join(&rel, &name)?;
                if entry.file_type().await.map_err(io_err)?.is_dir() {
                    stack.push((path, target));
                } else {
                    self.store.upload_artifact(run_id, &path, &target).await?;
                }
            }
        }
        Ok(())
    }

    /// The entries of artifact directory `path` ("" for the root) of a run, with
    /// paths relative to the run's artifact root.
    pub async fn list_artifacts(&self, run_id: &str, path: &str) -> Result<Vec<FileInfo>> {
        let path = join("", path)?;
        self.store.list_artifacts(run_id, &path).await
    }

    /// Downloads artifact `path` (a file, or a directory recursively) of a run into
    /// `dst_dir`, streaming each file to disk; returns the local path.
    pub async fn download_artifacts(
        &self,
        run_id: &str,
        path: &str,
        dst_dir: &Path,
    ) -> Result<PathBuf> {
        let path = join("", path)?;
        let entries = self.store.list_artifacts(run_id, &path).await?;
        // A directory lists its entries; a file lists as nothing (or as itself),
        // and so does a missing path, which the parent's listing tells apart.
        let is_dir = path.is_empty() || entries.iter().any(|e| e.path != path);
        if !is_dir {
            let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            let exists = self
                .store
                .list_artifacts(run_id, parent)
                .await?
                .iter()
                .any(|e| e.path == path && !e.is_dir);
            if !exists {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    "mlflow.download_artifacts",
                    "no such artifact in the run",
                )
                .with_origin(self)
                .with("run_id", run_id)
                .with("artifact", &path));
            }
            let local = dst_dir.join(&path);
            self.store.download_artifact(run_id, &path, &local).await?;
            return Ok(local);
        }
        let mut stack = vec![(path.clone(), entries)];
        while let Some((dir, entries)) = stack.pop() {
            for entry in entries {
                // Entries come from the store (a server): check them before they
                // name a local path, and before they are listed in turn.
                let rel = self.listed_under(run_id, &dir, &entry.path)?;
                if entry.is_dir {
                    let inner = self.store.list_artifacts(run_id, &rel).await?;
                    stack.push((rel, inner));
                } else {
                    self.store
                        .download_artifact(run_id, &rel, &dst_dir.join(&rel))
                        .await?;
                }
            }
        }
        Ok(dst_dir.join(path))
    }

    /// `listed` (an entry of directory `dir`'s listing) normalized; it must lie
    /// strictly inside `dir`. A listing that names `..`, the directory itself
    /// or one outside it would write outside the destination or list forever.
    fn listed_under(&self, run_id: &str, dir: &str, listed: &str) -> Result<String> {
        let rel = join("", listed).unwrap_or_else(|_| dir.to_string());
        let inside = if dir.is_empty() {
            !rel.is_empty()
        } else {
            rel.strip_prefix(dir)
                .is_some_and(|rest| rest.len() > 1 && rest.starts_with('/'))
        };
        if !inside {
            return Err(Error::new(
                ErrorKind::Remote,
                "mlflow.download_artifacts",
                format!(
                    "the store listed {listed:?} in artifact directory {dir:?}, which is not \
                     inside it"
                ),
            )
            .with_origin(self)
            .with("run_id", run_id));
        }
        Ok(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_paths_are_joined_safely() {
        assert_eq!(join("1/a", "model/MLmodel").unwrap(), "1/a/model/MLmodel");
        assert_eq!(join("1/a", "/x//y/").unwrap(), "1/a/x/y");
        assert_eq!(join("", "./x/").unwrap(), "x");
        assert!(join("1/a", "../b").is_err());
    }
}
