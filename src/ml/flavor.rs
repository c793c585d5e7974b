//! A [`FittedPipeline`] as an MLflow model (features `ml` and `mlflow`): the
//! flavor `gust_pipeline`, one JSON file with the fitted steps and model, so
//! `MlflowHook::load_model("models:/…@champion")` gives back the very pipeline
//! that was trained.

use std::path::Path;

use serde_json::Value;

use super::pipeline::FittedPipeline;
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::mlflow::{
    ColType, FlavorConfig, MlflowFlavor, ModelSignature, Schema, flavor_data_path,
};

/// The flavor's key in `MLmodel`.
pub const PIPELINE_FLAVOR: &str = "gust_pipeline";
/// The file the pipeline is saved in, inside the model directory.
const DATA: &str = "pipeline.json";

impl MlflowFlavor for FittedPipeline {
    const FLAVOR_NAME: &'static str = PIPELINE_FLAVOR;

    fn save_flavor(&self, dir: &Path) -> Result<FlavorConfig> {
        let json = serde_json::to_vec(self)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, "ml.save_pipeline", e.to_string()))?;
        std::fs::write(dir.join(DATA), json)?;
        let mut conf = FlavorConfig::new();
        conf.insert("data".into(), DATA.into());
        conf.insert("gust_version".into(), env!("CARGO_PKG_VERSION").into());
        conf.insert("estimator".into(), self.pipeline.estimator.name().into());
        conf.insert("steps".into(), Value::from(self.steps().len() as u64));
        Ok(conf)
    }

    fn load_flavor(dir: &Path, config: &FlavorConfig) -> Result<Self> {
        let file = flavor_data_path(dir, config)?;
        let bytes = std::fs::read(&file)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                "ml.load_pipeline",
                format!("{} is not a gust pipeline: {e}", file.display()),
            )
        })
    }
}

impl FittedPipeline {
    /// The model's MLflow signature: a `double` column per numeric feature, a
    /// `string` column per categorical one, and a `string` label
    /// (classifier) or a `double` value (regressor).
    pub fn signature(&self) -> ModelSignature {
        let inputs: Vec<(&str, ColType)> = self
            .features
            .iter()
            .map(|f| (f.as_str(), ColType::Double))
            .chain(
                self.categorical
                    .iter()
                    .map(|c| (c.as_str(), ColType::String)),
            )
            .collect();
        let output = if self.classes.is_some() {
            ColType::String
        } else {
            ColType::Double
        };
        ModelSignature::from_columns(&inputs, Some(Schema::unnamed(output)))
    }
}
