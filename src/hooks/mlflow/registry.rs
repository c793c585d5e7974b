//! The model registry: registered models, versions, aliases.

use std::time::{Duration, Instant};

use super::types::{ModelVersion, ModelVersionStatus, RegisteredModel};
use super::{MlflowHook, WithOrigin};
use crate::error::{Error, ErrorKind, Result};
use crate::retry::Backoff;

/// Checks an alias the way MLflow does, so a bad one fails before any request:
/// letters, digits, `_` and `-`, at most 255 characters, not `latest`, and not of
/// the form `v<number>` (which would shadow version references).
pub fn validate_alias(alias: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::new(
            ErrorKind::InvalidInput,
            "mlflow.validate_alias",
            format!("alias {alias:?} {why}"),
        ))
    };
    if alias.is_empty() || alias.len() > 255 {
        return bad("must have 1 to 255 characters");
    }
    if !alias
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return bad("may contain only letters, digits, '_' and '-'");
    }
    if alias.eq_ignore_ascii_case("latest") {
        return bad("is reserved");
    }
    let lower = alias.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix('v')
        && !rest.is_empty()
        && rest.chars().all(|c| c.is_ascii_digit())
    {
        return bad("looks like a version reference (v<number>)");
    }
    Ok(())
}

impl MlflowHook {
    /// Creates registered model `name`, or returns it if it exists (idempotent).
    pub async fn create_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        match self.store.create_registered_model(name).await {
            Ok(m) => Ok(m),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => self.get_registered_model(name).await,
            Err(e) => Err(e),
        }
    }

    /// The registered model `name`, with its aliases.
    pub async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        self.store.get_registered_model(name).await
    }

    /// Registers the model at `source` (e.g. `runs:/<run_id>/model`) as the next
    /// version of `name` (the Python client's `register_model`). The version may still be
    /// `PENDING_REGISTRATION`; see [`wait_model_version_ready`](Self::wait_model_version_ready).
    pub async fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: Option<&str>,
    ) -> Result<ModelVersion> {
        let v = self
            .store
            .create_model_version(name, source, run_id)
            .await?;
        tracing::info!(model = name, version = %v.version, "model version registered");
        Ok(v)
    }

    /// Version `version` of model `name`.
    pub async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        self.store.get_model_version(name, version).await
    }

    /// Sets tag `key` of version `version` of model `name` (the Python
    /// client's `set_model_version_tag`).
    pub async fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        self.store
            .set_model_version_tag(name, version, key, value)
            .await
    }

    /// Sets the description of version `version` of model `name` (the
    /// Python client's `update_model_version`).
    pub async fn update_model_version(
        &self,
        name: &str,
        version: &str,
        description: &str,
    ) -> Result<ModelVersion> {
        self.store
            .update_model_version(name, version, description)
            .await
    }

    /// Polls until the version is `READY` (error if registration failed or
    /// `timeout` passes).
    pub async fn wait_model_version_ready(
        &self,
        name: &str,
        version: &str,
        timeout: Duration,
    ) -> Result<ModelVersion> {
        let deadline = Instant::now() + timeout;
        // Polling, not retrying (errors are the store's to retry): 100 ms doubling
        // to 5 s between looks, exact so the deadline check stays predictable.
        let backoff = Backoff::exponential(Duration::from_millis(100))
            .jitter(false)
            .max_delay(Duration::from_secs(5));
        let mut poll = 0;
        loop {
            let v = self.get_model_version(name, version).await?;
            match v.status {
                ModelVersionStatus::Ready => return Ok(v),
                ModelVersionStatus::FailedRegistration => {
                    return Err(Error::new(
                        ErrorKind::Remote,
                        "mlflow.wait_model_version_ready",
                        "registration failed",
                    )
                    .with_origin(self)
                    .with("model", name)
                    .with("version", version));
                }
                ModelVersionStatus::PendingRegistration if Instant::now() >= deadline => {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        "mlflow.wait_model_version_ready",
                        format!("still pending after {timeout:?}"),
                    )
                    .with("model", name)
                    .with("version", version));
                }
                ModelVersionStatus::PendingRegistration => {
                    poll += 1;
                    tokio::time::sleep(backoff.delay(poll)).await;
                }
            }
        }
    }

    /// Every version matching `filter` (e.g. `name='IrisModel'`), following pages.
    /// A [`FileStore`](super::FileStore) understands `name = '…'` and
    /// `run_id = '…'` (joined by `and`).
    pub async fn search_model_versions(&self, filter: &str) -> Result<Vec<ModelVersion>> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (page, next) = self
                .store
                .search_model_versions(filter, 1000, token.as_deref())
                .await?;
            all.extend(page);
            match next {
                Some(t) => token = Some(t),
                None => return Ok(all),
            }
        }
    }

    /// Points `alias` of model `name` at `version` (moving it if set).
    pub async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> Result<()> {
        validate_alias(alias).map_err(|e| e.with("model", name))?;
        self.store
            .set_registered_model_alias(name, alias, version)
            .await?;
        tracing::info!(model = name, alias, version, "model alias set");
        Ok(())
    }

    /// Removes `alias` from model `name`.
    pub async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        validate_alias(alias).map_err(|e| e.with("model", name))?;
        self.store.delete_registered_model_alias(name, alias).await
    }

    /// The version `alias` of model `name` points at.
    pub async fn get_model_version_by_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<ModelVersion> {
        validate_alias(alias).map_err(|e| e.with("model", name))?;
        self.store.get_model_version_by_alias(name, alias).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_validated_like_mlflow() {
        for ok in ["champion", "challenger-2", "prod_eu", "v1a", "version"] {
            assert!(validate_alias(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "latest",
            "LATEST",
            "v1",
            "V22",
            "has space",
            "slash/es",
            &"a".repeat(256),
        ] {
            let e = validate_alias(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
        }
    }
}
