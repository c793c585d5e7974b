//! The MLflow model format: a directory with an `MLmodel` YAML file and the
//! flavor's files, as MLflow's `mlflow.models.Model` writes and reads it.
//!
//! [`save_model`] / [`load_model_from_dir`] work on a local directory;
//! [`MlflowHook::log_model`](super::MlflowHook::log_model) uploads one into a run's artifacts and
//! [`MlflowHook::load_model`](super::MlflowHook::load_model) loads one from `models:/…` or `runs:/…` (see
//! [`ModelUri`]), so a Rust service can serve a registered model:
//!
//! ```no_run
//! use gust::hooks::mlflow::{ColType, MlflowFlavor, MlflowHook, ModelSignature, Schema};
//!
//! # async fn demo<M: MlflowFlavor>(model: M) -> gust::Result<()> {
//! let mlflow = MlflowHook::from_env()?;
//! let signature = ModelSignature::from_columns(
//!     &[("sepal_length", ColType::Double), ("sepal_width", ColType::Double)],
//!     Some(Schema::unnamed(ColType::Long)),
//! );
//! let run = mlflow.create_run("0", Some("iris")).await?;
//! let info = mlflow.log_model(run.run_id(), "model", &model, Some(signature)).await?;
//! mlflow.create_registered_model("IrisModel").await?;
//! mlflow.create_model_version("IrisModel", &info.model_uri, Some(run.run_id())).await?;
//!
//! // In the serving process:
//! let served: M = mlflow.load_model("models:/IrisModel/latest").await?;
//! # let _ = served; Ok(()) }
//! ```
//!
//! With the `ml` feature, smartcore's estimators are such models; see
//! `SmartcoreModel` (feature `ml`) for a complete example.
//!
//! The `MLmodel` file has MLflow 3's fields (`artifact_path`, `flavors`,
//! `mlflow_version`, `model_size_bytes`, `model_uuid`, `run_id`, `signature`,
//! `utc_time_created`, optionally `model_id` and `metadata`), keys sorted as
//! PyYAML writes them, and is read by `mlflow.models.Model.load`. The flavor is
//! gust's own (`smartcore` with the `ml` feature, or any [`MlflowFlavor`]); gust
//! writes no `python_function` flavor, so `mlflow.pyfunc.load_model` cannot load
//! these models.

mod flavor;
mod remote;
mod signature;
#[cfg(feature = "ml")]
mod smartcore_flavor;
mod uri;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub use self::flavor::{FlavorConfig, MlflowFlavor, flavor_data_path};
pub use self::remote::{LOG_MODEL_HISTORY_TAG, ModelInfo, ResolvedModel};
pub use self::signature::{ColSpec, ColType, ModelSignature, Schema, SchemaField};
#[cfg(feature = "ml")]
#[cfg_attr(docsrs, doc(cfg(feature = "ml")))]
pub use self::smartcore_flavor::{SMARTCORE_FLAVOR, SMARTCORE_VERSION, SmartcoreModel};
pub use self::uri::ModelUri;
use crate::error::{Error, ErrorKind, Result};

/// The name of the model description file in a model directory.
pub const MLMODEL_FILE: &str = "MLmodel";
/// The input example's file in a model directory (MLflow's name).
const INPUT_EXAMPLE_FILE: &str = "input_example.json";
/// The serving request built from the input example (MLflow's name).
const SERVING_INPUT_FILE: &str = "serving_input_example.json";

/// The `mlflow_version` gust writes into `MLmodel`: the MLflow release whose
/// model format gust follows and is tested against. MLflow's own files carry
/// the writing client's version; nothing in MLflow gates loading an `MLmodel` on
/// it (only pyfunc environment restoration reads it, which gust models lack).
pub const MLMODEL_MLFLOW_VERSION: &str = "3.17.2";

/// An `MLmodel` file: MLflow's `mlflow.models.Model`.
///
/// Unknown top-level keys (`saved_input_example_info`, `prompts`,
/// `databricks_runtime`, …) are kept in [`extra`](Self::extra), so a file
/// written by another client round-trips.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MlModel {
    /// Where the model sits under its run's artifact root (`model`).
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_path: Option<String>,
    /// Flavor name → its entry (a mapping in every MLflow flavor).
    #[serde(default)]
    pub flavors: BTreeMap<String, Value>,
    /// Free-form user metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// The MLflow version the file follows (see [`MLMODEL_MLFLOW_VERSION`]).
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub mlflow_version: Option<String>,
    /// MLflow 3's logged model id (`m-…`), when the model is one.
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub model_id: Option<String>,
    /// Total size of the model directory's files, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_size_bytes: Option<u64>,
    /// A unique id of this saved model (32 hex digits, as `uuid4().hex`).
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub model_uuid: Option<String>,
    /// The run it was logged to.
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub run_id: Option<String>,
    /// Inputs, outputs and params.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<ModelSignature>,
    /// Creation time in UTC, Python's `str(datetime)`: `2025-01-31 12:34:56.789012`.
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub utc_time_created: Option<String>,
    /// Every other top-level key, as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A scalar read as text, whatever YAML made of it (`mlflow_version: 2.9` is a float).
fn lenient_string<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "expected a string, found {other}"
            )));
        }
    })
}

impl MlModel {
    /// A new description with a fresh `model_uuid`, `utc_time_created` now and
    /// `mlflow_version` [`MLMODEL_MLFLOW_VERSION`], no flavor yet.
    pub fn new() -> Self {
        MlModel {
            mlflow_version: Some(MLMODEL_MLFLOW_VERSION.to_string()),
            model_uuid: Some(new_uuid_hex()),
            utc_time_created: Some(
                chrono::Utc::now()
                    .format("%Y-%m-%d %H:%M:%S%.6f")
                    .to_string(),
            ),
            ..MlModel::default()
        }
    }

    /// Parses `MLmodel` YAML.
    pub fn from_yaml(yaml: &str) -> Result<Self> {
        serde_yaml_ng::from_str(yaml).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                "mlflow.mlmodel",
                format!("not a valid MLmodel file: {e}"),
            )
            .with_source(e)
        })
    }

    /// The YAML text of the file.
    pub fn to_yaml(&self) -> Result<String> {
        let mut yaml = serde_yaml_ng::to_string(self).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                "mlflow.mlmodel",
                format!("cannot write MLmodel: {e}"),
            )
            .with_source(e)
        })?;
        // serde_yaml_ng leaves a timestamp-like string plain, which PyYAML then
        // reads as a datetime; quote it as PyYAML itself writes it.
        if let Some(t) = &self.utc_time_created
            && !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b':' | b'.' | b' '))
        {
            let plain = format!("\nutc_time_created: {t}\n");
            if let Some(i) = yaml.find(&plain) {
                yaml.replace_range(i..i + plain.len(), &format!("\nutc_time_created: '{t}'\n"));
            }
        }
        Ok(yaml)
    }

    /// Reads `MLmodel` from `path`, a model directory or the file itself.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = if path.is_dir() {
            path.join(MLMODEL_FILE)
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file).map_err(|e| {
            let kind = e.kind();
            let err = Error::from(e).with("path", file.display());
            if kind == std::io::ErrorKind::NotFound {
                Error::new(
                    ErrorKind::NotFound,
                    "mlflow.mlmodel",
                    "no MLmodel file: not an MLflow model directory",
                )
                .with("path", file.display())
            } else {
                err
            }
        })?;
        Self::from_yaml(&text).map_err(|e| e.with("path", file.display()))
    }

    /// The entry of flavor `name`, if the model has it (and it is a mapping).
    pub fn flavor(&self, name: &str) -> Option<&FlavorConfig> {
        self.flavors.get(name).and_then(Value::as_object)
    }

    /// The flavor names, sorted.
    pub fn flavor_names(&self) -> Vec<&str> {
        self.flavors.keys().map(String::as_str).collect()
    }

    /// What MLflow records about the model in the run tag
    /// [`LOG_MODEL_HISTORY_TAG`] (Python's `Model.get_tags_dict`): `run_id`,
    /// `artifact_path`, `utc_time_created`, `model_uuid` and the flavors without
    /// their `config` key.
    pub fn tags_dict(&self) -> Value {
        let mut out = serde_json::Map::new();
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                out.insert(k.to_string(), Value::String(v.clone()));
            }
        };
        put("run_id", &self.run_id);
        put("artifact_path", &self.artifact_path);
        put("utc_time_created", &self.utc_time_created);
        put("model_uuid", &self.model_uuid);
        let flavors = self
            .flavors
            .iter()
            .map(|(name, conf)| {
                let conf = match conf {
                    Value::Object(m) => Value::Object(
                        m.iter()
                            .filter(|(k, _)| k.as_str() != "config")
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    ),
                    other => other.clone(),
                };
                (name.clone(), conf)
            })
            .collect();
        out.insert("flavors".into(), Value::Object(flavors));
        Value::Object(out)
    }
}

/// What [`save_model`] records besides the flavor: the run and path it is
/// logged under, the signature and free-form metadata.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ModelMeta {
    /// `run_id` in `MLmodel`.
    pub run_id: Option<String>,
    /// `artifact_path` in `MLmodel`.
    pub artifact_path: Option<String>,
    /// The signature.
    pub signature: Option<ModelSignature>,
    /// `metadata` in `MLmodel` (any JSON).
    pub metadata: Option<Value>,
    /// An input example, saved as MLflow saves a pandas DataFrame's.
    pub input_example: Option<InputExample>,
}

/// A few input rows saved with a model, as MLflow saves a DataFrame example:
/// `input_example.json` (`{"columns": …, "data": …}`, pandas' `split` orient),
/// `serving_input_example.json` (the same under `dataframe_split`, the body
/// `mlflow models serve` takes), and `saved_input_example_info` in `MLmodel`,
/// so `mlflow.models.Model.load_input_example` reads it back as a DataFrame.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputExample {
    /// The column names.
    pub columns: Vec<String>,
    /// The rows, each a value per column (`null` for a missing one).
    pub data: Vec<Vec<Value>>,
}

impl ModelMeta {
    /// Nothing recorded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the run and the artifact path the model is logged under.
    pub fn with_run(mut self, run_id: &str, artifact_path: &str) -> Self {
        self.run_id = Some(run_id.to_string());
        self.artifact_path = Some(artifact_path.to_string());
        self
    }

    /// Records a signature.
    pub fn with_signature(mut self, signature: ModelSignature) -> Self {
        self.signature = Some(signature);
        self
    }

    /// Records free-form metadata.
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Records an input example.
    pub fn with_input_example(mut self, example: InputExample) -> Self {
        self.input_example = Some(example);
        self
    }
}

/// Saves `model` as an MLflow model directory `dir`: the flavor's files, then
/// `MLmodel`. `dir` must not exist or be empty (as in MLflow); on failure what
/// was written is removed. Returns the `MLmodel` written.
pub fn save_model<M: MlflowFlavor>(
    dir: impl AsRef<Path>,
    model: &M,
    meta: &ModelMeta,
) -> Result<MlModel> {
    let dir = dir.as_ref();
    let existed = dir.exists();
    if existed {
        let mut entries = std::fs::read_dir(dir).map_err(|e| {
            Error::from(e)
                .with("path", dir.display())
                .with("op", "mlflow.save_model")
        })?;
        if entries.next().is_some() {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                "mlflow.save_model",
                "the model directory exists and is not empty",
            )
            .with("path", dir.display()));
        }
    } else {
        std::fs::create_dir_all(dir).map_err(|e| Error::from(e).with("path", dir.display()))?;
    }
    match write_model_dir(dir, model, meta) {
        Ok(m) => {
            tracing::debug!(
                path = %dir.display(),
                flavor = M::FLAVOR_NAME,
                bytes = m.model_size_bytes.unwrap_or(0),
                "model saved"
            );
            Ok(m)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(dir);
            if existed {
                let _ = std::fs::create_dir(dir);
            }
            Err(e)
        }
    }
}

fn write_model_dir<M: MlflowFlavor>(dir: &Path, model: &M, meta: &ModelMeta) -> Result<MlModel> {
    let conf = model.save_flavor(dir)?;
    let mut mlmodel = MlModel::new();
    mlmodel
        .flavors
        .insert(M::FLAVOR_NAME.to_string(), Value::Object(conf));
    mlmodel.run_id.clone_from(&meta.run_id);
    mlmodel.artifact_path.clone_from(&meta.artifact_path);
    mlmodel.signature.clone_from(&meta.signature);
    mlmodel.metadata.clone_from(&meta.metadata);
    if let Some(example) = &meta.input_example {
        let write = |name: &str, json: String| {
            let path = dir.join(name);
            std::fs::write(&path, json).map_err(|e| Error::from(e).with("path", path.display()))
        };
        let split = serde_json::json!({"columns": example.columns, "data": example.data});
        write(INPUT_EXAMPLE_FILE, split.to_string())?;
        let serving = serde_json::json!({ "dataframe_split": split });
        write(
            SERVING_INPUT_FILE,
            serde_json::to_string_pretty(&serving).unwrap_or_default(),
        )?;
        mlmodel.extra.insert(
            "saved_input_example_info".to_string(),
            serde_json::json!({
                "artifact_path": INPUT_EXAMPLE_FILE,
                "type": "dataframe",
                "pandas_orient": "split",
                "serving_input_path": SERVING_INPUT_FILE,
            }),
        );
    }
    mlmodel.model_size_bytes = Some(dir_size(dir)?);
    let yaml = mlmodel.to_yaml()?;
    let path = dir.join(MLMODEL_FILE);
    std::fs::write(&path, yaml).map_err(|e| Error::from(e).with("path", path.display()))?;
    Ok(mlmodel)
}

fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| Error::from(e).with("path", d.display()))? {
            let entry = entry.map_err(Error::from)?;
            let meta = entry.metadata().map_err(Error::from)?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

/// Loads the model in directory `dir` as an `M`, through `M`'s flavor. A model
/// without that flavor is an [`ErrorKind::InvalidInput`] error naming the
/// flavors it has; a directory without `MLmodel` is [`ErrorKind::NotFound`].
pub fn load_model_from_dir<M: MlflowFlavor>(dir: impl AsRef<Path>) -> Result<M> {
    let dir = dir.as_ref();
    let mlmodel = MlModel::read(dir)?;
    load_with(dir, &mlmodel)
}

pub(crate) fn load_with<M: MlflowFlavor>(dir: &Path, mlmodel: &MlModel) -> Result<M> {
    let conf = check_flavor::<M>(mlmodel).map_err(|e| e.with("path", dir.display()))?;
    let model = M::load_flavor(dir, conf)?;
    tracing::debug!(path = %dir.display(), flavor = M::FLAVOR_NAME, "model loaded");
    Ok(model)
}

pub(crate) fn check_flavor<M: MlflowFlavor>(mlmodel: &MlModel) -> Result<&FlavorConfig> {
    mlmodel.flavor(M::FLAVOR_NAME).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            "mlflow.load_model",
            format!(
                "the model has no {:?} flavor (it has: {})",
                M::FLAVOR_NAME,
                if mlmodel.flavors.is_empty() {
                    "none".to_string()
                } else {
                    mlmodel.flavor_names().join(", ")
                }
            ),
        )
    })
}

/// 32 lowercase hex digits of a random (version 4) UUID, as Python's `uuid4().hex`.
fn new_uuid_hex() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model MLflow's Python client wrote (mlflow 3.17.2, `Model.save`).
    const PYTHON_MLMODEL: &str = r#"artifact_path: model
flavors:
  smartcore:
    data: model.json
is_signature_from_type_hint: false
mlflow_version: 3.17.2
model_id: null
model_uuid: 3b662696650b4439aade6301bbf29316
prompts: null
run_id: abc
signature:
  inputs: '[{"type": "double", "name": "sepal_length", "required": true}, {"type":
    "long", "name": "n", "required": false}]'
  outputs: '[{"type": "long", "required": true}]'
  params: null
type_hint_from_example: false
utc_time_created: '2026-11-30 07:54:51.415053'
"#;

    #[test]
    fn reads_what_mlflow_writes() {
        let m = MlModel::from_yaml(PYTHON_MLMODEL).unwrap();
        assert_eq!(m.artifact_path.as_deref(), Some("model"));
        assert_eq!(m.run_id.as_deref(), Some("abc"));
        assert_eq!(m.mlflow_version.as_deref(), Some("3.17.2"));
        assert_eq!(m.model_id, None);
        assert_eq!(
            m.utc_time_created.as_deref(),
            Some("2026-11-30 07:54:51.415053")
        );
        assert_eq!(m.flavor("smartcore").unwrap()["data"], "model.json");
        let sig = m.signature.as_ref().unwrap();
        assert_eq!(sig.input_names(), ["sepal_length", "n"]);
        assert!(
            !sig.inputs
                .as_ref()
                .unwrap()
                .columns()
                .nth(1)
                .unwrap()
                .required
        );
        assert_eq!(sig.outputs, Some(Schema::unnamed(ColType::Long)));
        assert_eq!(m.extra["is_signature_from_type_hint"], false);
        assert!(m.extra["prompts"].is_null());
        // Round trip keeps everything, the unknown keys included.
        let again = MlModel::from_yaml(&m.to_yaml().unwrap()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn writes_mlflow_fields_sorted_and_quoted() {
        let mut m = MlModel::new();
        m.run_id = Some("0123456789abcdef0123456789abcdef".into());
        m.artifact_path = Some("model".into());
        m.model_size_bytes = Some(1234);
        m.signature = Some(ModelSignature::from_columns(
            &[("sepal_length", ColType::Double)],
            Some(Schema::unnamed(ColType::Long)),
        ));
        m.flavors.insert(
            "smartcore".into(),
            serde_json::json!({"data": "model.json", "smartcore_version": "0.4"}),
        );
        let yaml = m.to_yaml().unwrap();
        let keys: Vec<&str> = yaml
            .lines()
            .filter(|l| !l.starts_with(' ') && l.contains(':'))
            .map(|l| l.split(':').next().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "artifact_path",
                "flavors",
                "mlflow_version",
                "model_size_bytes",
                "model_uuid",
                "run_id",
                "signature",
                "utc_time_created"
            ],
            "{yaml}"
        );
        // Strings YAML would read as something else stay strings.
        assert!(yaml.contains("smartcore_version: '0.4'"), "{yaml}");
        let t = m.utc_time_created.as_deref().unwrap();
        assert!(
            yaml.ends_with(&format!("\nutc_time_created: '{t}'\n")),
            "{yaml}"
        );
        let uuid = m.model_uuid.as_deref().unwrap();
        assert_eq!(uuid.len(), 32);
        assert!(
            uuid.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(MlModel::from_yaml(&yaml).unwrap(), m);
        let t = m.utc_time_created.as_deref().unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.6f").is_ok(),
            "{t}"
        );
    }

    #[test]
    fn tags_dict_is_mlflows_subset() {
        let mut m = MlModel::from_yaml(PYTHON_MLMODEL).unwrap();
        m.flavors.insert(
            "other".into(),
            serde_json::json!({"config": {"x": 1}, "data": "d"}),
        );
        assert_eq!(
            m.tags_dict(),
            serde_json::json!({
                "run_id": "abc",
                "artifact_path": "model",
                "utc_time_created": "2026-11-30 07:54:51.415053",
                "model_uuid": "3b662696650b4439aade6301bbf29316",
                "flavors": {"smartcore": {"data": "model.json"}, "other": {"data": "d"}}
            })
        );
    }

    #[test]
    fn lenient_scalars_and_bad_files() {
        let m = MlModel::from_yaml("mlflow_version: 2.9\nflavors: {}\n").unwrap();
        assert_eq!(m.mlflow_version.as_deref(), Some("2.9"));
        for bad in [
            "flavors: [1, 2]",
            "- a\n- b",
            "signature:\n  inputs: 'not json'",
        ] {
            let e = MlModel::from_yaml(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[derive(Debug)]
    struct Constant(f64);

    impl MlflowFlavor for Constant {
        const FLAVOR_NAME: &'static str = "constant";
        fn save_flavor(&self, dir: &Path) -> Result<FlavorConfig> {
            if self.0.is_nan() {
                std::fs::write(dir.join("half.txt"), "x")?;
                return Err(Error::new(ErrorKind::InvalidInput, "constant", "NaN"));
            }
            std::fs::write(dir.join("value.txt"), self.0.to_string())?;
            let mut c = FlavorConfig::new();
            c.insert("data".into(), "value.txt".into());
            Ok(c)
        }
        fn load_flavor(dir: &Path, config: &FlavorConfig) -> Result<Self> {
            let text = std::fs::read_to_string(flavor_data_path(dir, config)?)?;
            Ok(Constant(text.parse().unwrap()))
        }
    }

    #[derive(Debug)]
    struct Other;

    impl MlflowFlavor for Other {
        const FLAVOR_NAME: &'static str = "other";
        fn save_flavor(&self, _: &Path) -> Result<FlavorConfig> {
            Ok(FlavorConfig::new())
        }
        fn load_flavor(_: &Path, _: &FlavorConfig) -> Result<Self> {
            Ok(Other)
        }
    }

    #[test]
    fn save_and_load_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        let meta = ModelMeta::new()
            .with_run("r1", "model")
            .with_signature(ModelSignature::new(Schema::from_columns(&[(
                "x",
                ColType::Float,
            )])))
            .with_metadata(serde_json::json!({"team": "ml"}));
        let written = save_model(&dir, &Constant(2.5), &meta).unwrap();
        assert_eq!(written.model_size_bytes, Some(3));
        assert_eq!(MlModel::read(&dir).unwrap(), written);
        assert_eq!(MlModel::read(dir.join(MLMODEL_FILE)).unwrap(), written);
        assert_eq!(written.metadata.as_ref().unwrap()["team"], "ml");
        assert_eq!(load_model_from_dir::<Constant>(&dir).unwrap().0, 2.5);

        let e = load_model_from_dir::<Other>(&dir).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("it has: constant"), "{e}");

        // Not over an existing model.
        let e = save_model(&dir, &Constant(1.0), &meta).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert_eq!(load_model_from_dir::<Constant>(&dir).unwrap().0, 2.5);

        // A failing flavor leaves nothing behind; an empty existing dir stays.
        let failed = tmp.path().join("failed");
        assert!(save_model(&failed, &Constant(f64::NAN), &meta).is_err());
        assert!(!failed.exists());
        std::fs::create_dir(&failed).unwrap();
        assert!(save_model(&failed, &Constant(f64::NAN), &meta).is_err());
        assert_eq!(std::fs::read_dir(&failed).unwrap().count(), 0);

        let e = load_model_from_dir::<Constant>(tmp.path()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
