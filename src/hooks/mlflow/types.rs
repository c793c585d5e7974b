//! MLflow's entities as they travel over REST (protobuf JSON mapping).
//!
//! The structs are `#[non_exhaustive]`; a custom [`MlflowStore`](super::MlflowStore)
//! builds them from `Default::default()` and sets the public fields.

use serde::{Deserialize, Serialize};

/// An experiment.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Experiment {
    /// Its id (a string, as in MLflow).
    pub experiment_id: String,
    /// Its unique name.
    pub name: String,
    /// Where its runs' artifacts go (`mlflow-artifacts:/…`, `s3://…`, a path).
    #[serde(default)]
    pub artifact_location: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
}

/// A run's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Running.
    #[default]
    Running,
    /// Scheduled, not started.
    Scheduled,
    /// Ended without error.
    Finished,
    /// Ended with an error.
    Failed,
    /// Killed.
    Killed,
}

/// A run: its info and its data.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Run {
    /// Metadata.
    pub info: RunInfo,
    /// Params, metrics (latest values) and tags.
    #[serde(default)]
    pub data: RunData,
}

/// A run's metadata.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct RunInfo {
    /// The run id.
    pub run_id: String,
    /// The experiment it belongs to.
    pub experiment_id: String,
    /// Its name.
    #[serde(default)]
    pub run_name: String,
    /// Its state.
    pub status: RunStatus,
    /// Start, ms since the epoch.
    #[serde(default, deserialize_with = "int_or_string")]
    pub start_time: i64,
    /// End, ms since the epoch, once ended.
    #[serde(default, deserialize_with = "opt_int_or_string")]
    pub end_time: Option<i64>,
    /// Root of its artifacts.
    #[serde(default)]
    pub artifact_uri: String,
}

/// A run's params, metrics and tags.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct RunData {
    /// Latest value of each metric.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// Params.
    #[serde(default)]
    pub params: Vec<Param>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<RunTag>,
}

impl RunData {
    /// The value of param `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    }

    /// The latest value of metric `key`.
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.metrics.iter().find(|m| m.key == key).map(|m| m.value)
    }

    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    }
}

/// One metric point. Non-finite values travel as the strings `"NaN"`,
/// `"Infinity"`, `"-Infinity"` (protobuf's JSON mapping), which MLflow stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Name.
    pub key: String,
    /// Value.
    #[serde(with = "float_json")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[serde(default, deserialize_with = "int_or_string")]
    pub timestamp: i64,
    /// Training step.
    #[serde(default, deserialize_with = "int_or_string")]
    pub step: i64,
}

/// A param: logged once per run; re-logging another value is an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// Name.
    pub key: String,
    /// Value (MLflow stores params as text).
    pub value: String,
}

/// A tag: a key/value that may be overwritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunTag {
    /// Name.
    pub key: String,
    /// Value.
    pub value: String,
}

/// A registered model.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct RegisteredModel {
    /// Its unique name.
    pub name: String,
    /// Aliases pointing at its versions.
    #[serde(default)]
    pub aliases: Vec<ModelAlias>,
}

/// An alias of a registered model (`champion` → version 3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ModelAlias {
    /// The alias.
    pub alias: String,
    /// The version it points at.
    pub version: String,
}

/// Registration state of a model version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ModelVersionStatus {
    /// Still copying artifacts.
    #[default]
    PendingRegistration,
    /// Registration failed.
    FailedRegistration,
    /// Ready to serve.
    Ready,
}

/// A version of a registered model.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ModelVersion {
    /// The registered model's name.
    pub name: String,
    /// The version number (a string, as in MLflow).
    pub version: String,
    /// Where the model's files are (`runs:/…`, `mlflow-artifacts:/…`, `s3://…`).
    #[serde(default)]
    pub source: String,
    /// The run that produced it.
    #[serde(default)]
    pub run_id: String,
    /// Registration state.
    #[serde(default = "pending")]
    pub status: ModelVersionStatus,
    /// Aliases pointing at this version.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Its description (`None` when unset).
    #[serde(default)]
    pub description: Option<String>,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<ModelVersionTag>,
}

/// A tag of a model version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelVersionTag {
    /// The tag's key.
    pub key: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

impl ModelVersion {
    /// The value of tag `key`, if set.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    }

    /// The version as a number.
    pub fn version_number(&self) -> Option<u64> {
        self.version.parse().ok()
    }
}

fn pending() -> ModelVersionStatus {
    ModelVersionStatus::PendingRegistration
}

/// int64 fields arrive as numbers or (protobuf JSON) strings.
fn int_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(opt_int_or_string(d)?.unwrap_or(0))
}

fn opt_int_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrString {
        I(i64),
        S(String),
    }
    match Option::<IntOrString>::deserialize(d)? {
        None => Ok(None),
        Some(IntOrString::I(i)) => Ok(Some(i)),
        Some(IntOrString::S(s)) => s.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// Doubles with protobuf's JSON spelling of non-finite values.
pub(crate) mod float_json {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if v.is_infinite() {
            s.serialize_str(if *v > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            s.serialize_f64(*v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum F {
            N(f64),
            S(String),
        }
        match F::deserialize(d)? {
            F::N(n) => Ok(n),
            F::S(s) => match s.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                other => other.parse().map_err(serde::de::Error::custom),
            },
        }
    }
}
