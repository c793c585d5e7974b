//! Artifacts through the tracking server's artifact proxy (`mlflow-artifacts:/…`
//! URIs, a server started with `--serve-artifacts`). Files are streamed in both
//! directions, so their size does not matter to memory.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use reqwest::Method;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::MlflowHook;
use crate::error::{Error, ErrorKind, Result};

/// An entry of an artifact directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    files: Vec<FileInfo>,
}

/// The proxy path of a run's artifact root, from its `artifact_uri`.
fn proxy_root(artifact_uri: &str) -> Result<String> {
    let rest = artifact_uri
        .strip_prefix("mlflow-artifacts:")
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                "mlflow.artifacts",
                format!(
                    "artifact root {artifact_uri:?} is not served by the tracking server's proxy \
                 (mlflow-artifacts:/…); start the server with --serve-artifacts"
                ),
            )
        })?;
    // `mlflow-artifacts://host:port/path` names the server too; we talk to ours.
    let path = match rest.strip_prefix("//") {
        Some(with_host) => with_host.split_once('/').map(|(_, p)| p).unwrap_or(""),
        None => rest,
    };
    Ok(path.trim_matches('/').to_string())
}

/// Joins artifact path segments, refusing `..` so nothing escapes the run's root.
fn join(root: &str, rel: &str) -> Result<String> {
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

fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|s| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl MlflowHook {
    async fn artifact_root(&self, run_id: &str) -> Result<String> {
        let run = self.get_run(run_id).await?;
        proxy_root(&run.info.artifact_uri).map_err(|e| e.with("run_id", run_id))
    }

    fn artifact_url(&self, proxy_path: &str) -> String {
        format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}",
            self.base_url,
            encode_path(proxy_path)
        )
    }

    /// Uploads the file `local_path` into the run's artifacts, under directory
    /// `artifact_path` (or at the root), keeping its file name.
    pub async fn log_artifact(
        &self,
        run_id: &str,
        local_path: &Path,
        artifact_path: Option<&str>,
    ) -> Result<()> {
        let root = self.artifact_root(run_id).await?;
        self.upload_file(&root, run_id, local_path, artifact_path.unwrap_or(""))
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
        let root = self.artifact_root(run_id).await?;
        let mut stack = vec![(
            local_dir.to_path_buf(),
            artifact_path.unwrap_or("").to_string(),
        )];
        while let Some((dir, rel)) = stack.pop() {
            let mut entries = tokio::fs::read_dir(&dir)
                .await
                .map_err(|e| Error::from(e).with("path", dir.display()))?;
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(|e| Error::from(e).with("path", dir.display()))?
            {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().to_string();
                if entry.file_type().await.map_err(Error::from)?.is_dir() {
                    stack.push((path, join(&rel, &name)?));
                } else {
                    self.upload_file(&root, run_id, &path, &rel).await?;
                }
            }
        }
        Ok(())
    }

    async fn upload_file(
        &self,
        root: &str,
        run_id: &str,
        local_path: &Path,
        dir: &str,
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
                .with("path", local_path.display())
            })?;
        let target = join(&join(root, dir)?, &name)?;
        let file = tokio::fs::File::open(local_path)
            .await
            .map_err(|e| Error::from(e).with("path", local_path.display()))?;
        let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let op = "mlflow.log_artifact";
        let resp = self
            .authed(self.http.request(Method::PUT, self.artifact_url(&target)))
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(op, e))?;
        self.check(op, resp)
            .await
            .map_err(|e| e.with("run_id", run_id).with("artifact", &target))?;
        tracing::debug!(run_id, artifact = %target, bytes = len, "artifact uploaded");
        Ok(())
    }

    /// The entries of artifact directory `path` ("" for the root) of a run.
    pub async fn list_artifacts(&self, run_id: &str, path: &str) -> Result<Vec<FileInfo>> {
        let root = self.artifact_root(run_id).await?;
        let dir = join(&root, path)?;
        let url = format!("{}/api/2.0/mlflow-artifacts/artifacts", self.base_url);
        let op = "mlflow.list_artifacts";
        let resp = self
            .authed(self.http.get(url).query(&[("path", &dir)]))
            .send()
            .await
            .map_err(|e| self.transport_error(op, e))?;
        let text = self
            .check(op, resp)
            .await
            .map_err(|e| e.with("run_id", run_id))?;
        let list: ListResponse =
            serde_json::from_str(if text.trim().is_empty() { "{}" } else { &text })?;
        // The proxy lists names relative to the directory; report them relative to
        // the run's artifact root, as MLflow's client does.
        let base = path.trim_matches('/');
        Ok(list
            .files
            .into_iter()
            .map(|mut f| {
                if !base.is_empty() {
                    f.path = format!("{base}/{}", f.path);
                }
                f
            })
            .collect())
    }

    /// Downloads artifact `path` (a file, or a directory recursively) of a run into
    /// `dst_dir`, streaming each file to disk; returns the local path.
    pub async fn download_artifacts(
        &self,
        run_id: &str,
        path: &str,
        dst_dir: &Path,
    ) -> Result<PathBuf> {
        let root = self.artifact_root(run_id).await?;
        let entries = self.list_artifacts(run_id, path).await?;
        let path = path.trim_matches('/');
        // A directory lists its entries; a file lists as nothing (or as itself),
        // and so does a missing path, which the parent's listing tells apart.
        let is_dir = path.is_empty() || entries.iter().any(|e| e.path != path);
        if !is_dir {
            let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            let exists = self
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
                .with("conn_id", self.conn_id())
                .with("run_id", run_id)
                .with("artifact", path));
            }
            let local = dst_dir.join(path);
            self.download_file(&root, run_id, path, &local).await?;
            return Ok(local);
        }
        let mut stack = entries;
        while let Some(entry) = stack.pop() {
            if entry.is_dir {
                stack.extend(self.list_artifacts(run_id, &entry.path).await?);
            } else {
                self.download_file(&root, run_id, &entry.path, &dst_dir.join(&entry.path))
                    .await?;
            }
        }
        Ok(dst_dir.join(path))
    }

    async fn download_file(&self, root: &str, run_id: &str, rel: &str, local: &Path) -> Result<()> {
        let op = "mlflow.download_artifacts";
        let target = join(root, rel)?;
        let resp = self
            .authed(self.http.get(self.artifact_url(&target)))
            .send()
            .await
            .map_err(|e| self.transport_error(op, e))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            return Err(self
                .api_error(op, status, &text)
                .with("run_id", run_id)
                .with("artifact", rel)
                .redact(&self.secrets()));
        }
        if let Some(parent) = local.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(Error::from)?;
        }
        // Write beside the target and rename, so a broken download leaves no
        // truncated file behind.
        let partial = local.with_extension("gust-partial");
        let write = async {
            let mut file = tokio::fs::File::create(&partial).await?;
            let mut body = resp.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(std::io::Error::other)?;
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
            tokio::fs::rename(&partial, local).await
        };
        if let Err(e) = write.await {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(Error::from(e).with("run_id", run_id).with("artifact", rel));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_paths() {
        assert_eq!(
            proxy_root("mlflow-artifacts:/1/abc/artifacts").unwrap(),
            "1/abc/artifacts"
        );
        assert_eq!(
            proxy_root("mlflow-artifacts://h:5000/1/abc/artifacts").unwrap(),
            "1/abc/artifacts"
        );
        assert_eq!(
            proxy_root("s3://b/1").unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(join("1/a", "model/MLmodel").unwrap(), "1/a/model/MLmodel");
        assert_eq!(join("1/a", "/x//y/").unwrap(), "1/a/x/y");
        assert!(join("1/a", "../b").is_err());
        assert_eq!(encode_path("1/a b/c%"), "1/a%20b/c%25");
    }
}
