//! Artifact roots on S3 (`s3://bucket/prefix`), read and written directly
//! through `S3Hook` — what MLflow's
//! `S3ArtifactRepository` does for a run whose `artifact_uri` is `s3://…`.
//!
//! Needs the `s3` feature; without it an `s3://` root is
//! [`Unsupported`](ErrorKind::Unsupported) with an error that names the feature.
//!
//! The S3 client is configured as the Python client's: the endpoint from
//! `MLFLOW_S3_ENDPOINT_URL` (path-style addressing, unless
//! `MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE=virtual`), credentials and region from the
//! default AWS chain (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
//! `AWS_SESSION_TOKEN`, `AWS_PROFILE`, SSO, instance roles; `AWS_REGION` /
//! `AWS_DEFAULT_REGION`, else `us-east-1`). It is built on the first `s3://` root
//! met and then shared; an explicit hook (`with_artifact_s3`) replaces it.

#[cfg(feature = "s3")]
use crate::error::Result;
use crate::error::{Error, ErrorKind};

/// Whether `uri` is an `s3://` artifact root.
pub(crate) fn is_s3(uri: &str) -> bool {
    uri.get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("s3://"))
}

/// The error of an `s3://` root in a build without the `s3` feature.
#[cfg(not(feature = "s3"))]
pub(crate) fn needs_s3_feature(operation: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        operation,
        "the run's artifact root is on S3 (s3://…), which needs gust's `s3` feature \
         (build with --features mlflow,s3)",
    )
}

/// An `s3://bucket/prefix` artifact root, split.
#[cfg(feature = "s3")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct S3Root {
    pub bucket: String,
    /// The key prefix, without leading or trailing `/` (`""` for the bucket root).
    pub prefix: String,
}

#[cfg(feature = "s3")]
impl S3Root {
    /// Parses `s3://bucket/prefix` (the prefix may be empty), as MLflow's
    /// `parse_s3_compliant_uri`; repeated and trailing slashes are dropped.
    pub(crate) fn parse(uri: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidInput,
                "mlflow.artifacts",
                format!("{why}; expected s3://bucket/prefix"),
            )
            .with("artifact_uri", uri)
        };
        if !is_s3(uri) {
            return Err(bad("not an s3:// URI"));
        }
        let rest = &uri[5..];
        let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("the URI names no bucket"));
        }
        let prefix = super::artifacts::join("", path).map_err(|_| bad("the prefix has '..'"))?;
        Ok(S3Root {
            bucket: bucket.to_string(),
            prefix,
        })
    }
}

/// The connection the environment describes, as the Python client reads it:
/// conn type `aws`, no keys (so the default AWS chain applies), `endpoint_url`
/// from `MLFLOW_S3_ENDPOINT_URL`, virtual-hosted addressing only when
/// `MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE=virtual`.
#[cfg(feature = "s3")]
pub(crate) fn env_connection(
    var: impl Fn(&str) -> Option<String>,
) -> Result<crate::connection::Connection> {
    let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let mut conn = crate::connection::Connection::new(S3_CONN_ID, "aws")?;
    if let Some(endpoint) = var("MLFLOW_S3_ENDPOINT_URL") {
        conn = conn.with_extra("endpoint_url", endpoint.trim().into());
    }
    if var("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE").as_deref() == Some("virtual") {
        conn = conn.with_extra(
            "service_config",
            serde_json::json!({ "s3": { "addressing_style": "virtual" } }),
        );
    }
    if var("MLFLOW_S3_IGNORE_TLS").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        tracing::warn!(
            "MLFLOW_S3_IGNORE_TLS is set but gust always verifies TLS; \
             pass a hook of your own with with_artifact_s3 to use another client"
        );
    }
    Ok(conn)
}

/// Conn id of the S3 hook built from the environment.
#[cfg(feature = "s3")]
pub(crate) const S3_CONN_ID: &str = "mlflow_s3";

#[cfg(feature = "s3")]
pub(crate) use self::imp::S3Artifacts;

#[cfg(feature = "s3")]
mod imp {
    use std::path::Path;
    use std::sync::Arc;

    use futures::TryStreamExt;
    use tokio::sync::OnceCell;

    use super::{S3Root, env_connection};
    use crate::error::{Error, ErrorKind, Result};
    use crate::hooks::mlflow::artifacts::{FileInfo, join};
    use crate::hooks::object_store::{ListEntry, ListOptions, ObjectStore, PutOptions};
    use crate::hooks::s3::S3Hook;

    /// The S3 side of a store: one hook, made on first use (or given), shared by
    /// clones.
    #[derive(Clone, Default)]
    pub(crate) struct S3Artifacts {
        hook: Arc<OnceCell<Built>>,
    }

    struct Built {
        hook: S3Hook,
        /// Credentials read from the environment, scrubbed from every error.
        secrets: Vec<String>,
    }

    impl std::fmt::Debug for S3Artifacts {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self.hook.get() {
                Some(b) => f.debug_tuple("S3Artifacts").field(&b.hook).finish(),
                None => f.write_str("S3Artifacts(from the environment, not built yet)"),
            }
        }
    }

    impl S3Artifacts {
        /// Artifacts through `hook` rather than one built from the environment.
        pub(crate) fn with_hook(hook: S3Hook) -> Self {
            S3Artifacts {
                hook: Arc::new(OnceCell::new_with(Some(Built {
                    hook,
                    secrets: Vec::new(),
                }))),
            }
        }

        /// The hook (built from the environment on first use).
        async fn built(&self, op: &'static str, run_id: &str) -> Result<&Built> {
            self.hook
                .get_or_try_init(|| async {
                    let conn = env_connection(|k| std::env::var(k).ok())?;
                    let hook = S3Hook::from_connection(&conn).await?;
                    let secrets = ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]
                        .iter()
                        .filter_map(|k| std::env::var(k).ok())
                        .filter(|v| !v.is_empty())
                        .collect();
                    tracing::debug!(?hook, "mlflow: S3 client for s3:// artifact roots built");
                    Ok::<_, Error>(Built { hook, secrets })
                })
                .await
                .map_err(|e| {
                    Error::new(
                        e.kind(),
                        op,
                        format!(
                            "cannot build the S3 client for s3:// artifacts: {}",
                            e.message()
                        ),
                    )
                    .with("run_id", run_id)
                    .with_source(e)
                })
        }

        /// Uploads `local` to `rel` under the root, streamed (multipart above the
        /// hook's part size).
        pub(crate) async fn upload(
            &self,
            run_id: &str,
            root: &S3Root,
            local: &Path,
            rel: &str,
        ) -> Result<()> {
            let op = "mlflow.log_artifact";
            let rel = join("", rel)?;
            if rel.is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    op,
                    "the artifact path names no file",
                )
                .with("run_id", run_id));
            }
            let key = join(&root.prefix, &rel)?;
            let b = self.built(op, run_id).await?;
            let file = tokio::fs::File::open(local).await.map_err(|e| {
                Error::from(e)
                    .with("run_id", run_id)
                    .with("path", local.display())
            })?;
            let body = crate::hooks::s3::file_stream(file);
            let put = b
                .hook
                .put_stream(&root.bucket, &key, body, &PutOptions::new())
                .await
                .map_err(|e| b.wrap(op, run_id, &rel, &root.bucket, Some(&key), e))?;
            tracing::debug!(run_id, bucket = %root.bucket, key, bytes = put.size, "artifact uploaded to s3");
            Ok(())
        }

        /// The files and directories directly under `rel`, paged through with
        /// delimiter `/`, paths relative to the root, sorted — as MLflow's
        /// `S3ArtifactRepository.list_artifacts` (directory markers are skipped).
        pub(crate) async fn list(
            &self,
            run_id: &str,
            root: &S3Root,
            rel: &str,
        ) -> Result<Vec<FileInfo>> {
            let op = "mlflow.list_artifacts";
            let dir = join(&root.prefix, rel)?;
            let prefix = if dir.is_empty() {
                String::new()
            } else {
                format!("{dir}/")
            };
            let base = if root.prefix.is_empty() {
                String::new()
            } else {
                format!("{}/", root.prefix)
            };
            let b = self.built(op, run_id).await?;
            let wrap = |e| {
                b.wrap(op, run_id, rel, &root.bucket, None, e)
                    .with("prefix", &prefix)
            };
            let opts = ListOptions::new().prefix(prefix.clone()).delimiter("/");
            let mut entries = b.hook.list(&root.bucket, opts);
            let mut out = Vec::new();
            while let Some(entry) = entries.try_next().await.map_err(wrap)? {
                let (key, is_dir, size) = match &entry {
                    ListEntry::Prefix(p) => (p.as_str(), true, None),
                    // A zero-byte `dir/` object is a folder marker, not a file.
                    ListEntry::Object(m) if m.key.ends_with('/') => continue,
                    ListEntry::Object(m) => (m.key.as_str(), false, Some(m.size)),
                };
                let path = key
                    .strip_prefix(&base)
                    .map(|p| p.trim_end_matches('/'))
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| {
                        wrap(Error::new(
                            ErrorKind::Remote,
                            op,
                            "the listing returned a key outside the artifact root",
                        ))
                        .with("listed", key)
                    })?;
                out.push(FileInfo {
                    path: path.to_string(),
                    is_dir,
                    file_size: size,
                });
            }
            out.sort_by(|a, b| a.path.cmp(&b.path));
            Ok(out)
        }

        /// Downloads the object at `rel` to `local` (ranged parts written at
        /// their offsets); the file appears whole or not at all.
        pub(crate) async fn download(
            &self,
            run_id: &str,
            root: &S3Root,
            rel: &str,
            local: &Path,
        ) -> Result<()> {
            let op = "mlflow.download_artifacts";
            let key = join(&root.prefix, rel)?;
            let b = self.built(op, run_id).await?;
            let wrap = |e| b.wrap(op, run_id, rel, &root.bucket, Some(&key), e);
            if let Some(parent) = local.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| wrap(e.into()).with("path", local.display()))?;
            }
            b.hook
                .download_to(op, &root.bucket, &key, local)
                .await
                .map_err(|e| wrap(e).with("path", local.display()))?;
            Ok(())
        }
    }

    impl Built {
        /// `e` as an error of MLflow operation `op` that names the run, the
        /// artifact, the bucket and the key (the hook's error is the source).
        fn wrap(
            &self,
            op: &'static str,
            run_id: &str,
            rel: &str,
            bucket: &str,
            key: Option<&str>,
            e: Error,
        ) -> Error {
            // The retry state too: once the S3 hook's retries gave up
            // (exhausted), the task must not multiply them (see `gust::retry`).
            let mut out = Error::new(e.kind(), op, e.message().to_string())
                .with_retry_state_of(&e)
                .with("run_id", run_id)
                .with("artifact", rel)
                .with("bucket", bucket);
            if let Some(k) = key {
                out = out.with("key", k);
            }
            out.with("s3_conn_id", self.hook.conn_id())
                .with_source(e)
                .redact(&self.secrets)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "s3")]
    #[test]
    fn s3_roots_parse_like_mlflow() {
        let r = S3Root::parse("s3://bkt/exp/1/abc/artifacts").unwrap();
        assert_eq!(r.bucket, "bkt");
        assert_eq!(r.prefix, "exp/1/abc/artifacts");
        assert_eq!(S3Root::parse("s3://bkt").unwrap().prefix, "");
        assert_eq!(S3Root::parse("S3://bkt//a/").unwrap().prefix, "a");
        assert!(S3Root::parse("s3:///x").is_err());
        assert!(S3Root::parse("s3://b/../x").is_err());
        assert!(S3Root::parse("gs://b/x").is_err());
        assert!(is_s3("s3://b") && !is_s3("s3a://b") && !is_s3("mlflow-artifacts:/x"));
    }

    #[cfg(feature = "s3")]
    #[test]
    fn environment_configures_the_client_like_python() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let c = env_connection(env(&[
            ("MLFLOW_S3_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_ACCESS_KEY_ID", "AKIA"),
        ]))
        .unwrap();
        assert_eq!(c.conn_id(), S3_CONN_ID);
        assert_eq!(c.conn_type(), "aws");
        assert_eq!(c.extra_str("endpoint_url"), Some("http://127.0.0.1:9000"));
        // No keys in the connection: the default AWS chain reads AWS_* itself.
        assert_eq!(c.login(), None);
        assert_eq!(c.password(), None);
        assert!(c.extra_dejson().get("service_config").is_none());
        let c = env_connection(env(&[
            ("MLFLOW_S3_ENDPOINT_URL", " "),
            ("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE", "virtual"),
        ]))
        .unwrap();
        assert_eq!(c.extra_str("endpoint_url"), None);
        assert_eq!(
            c.extra_dejson()["service_config"]["s3"]["addressing_style"],
            "virtual"
        );
    }

    #[cfg(not(feature = "s3"))]
    #[test]
    fn without_the_feature_s3_roots_are_unsupported() {
        let e = needs_s3_feature("mlflow.log_artifact");
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.to_string().contains("`s3` feature"), "{e}");
    }
}
