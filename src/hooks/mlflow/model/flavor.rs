//! Flavors: how a kind of model writes itself into a model directory and reads
//! itself back, and what it records under `flavors:` in `MLmodel`.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};

/// A flavor's entry under `flavors:` in `MLmodel` (e.g. `data`, `model_type`,
/// `smartcore_version`). Any JSON-compatible mapping; it is written as YAML.
pub type FlavorConfig = serde_json::Map<String, Value>;

/// A model type that can be saved as, and loaded from, an MLflow model directory.
///
/// The model directory holds `MLmodel` and whatever files the flavor writes;
/// [`save_model`](super::save_model) calls [`save_flavor`](Self::save_flavor) and
/// records the returned [`FlavorConfig`] under `flavors.<FLAVOR_NAME>`;
/// [`load_model_from_dir`](super::load_model_from_dir) finds that entry and calls
/// [`load_flavor`](Self::load_flavor). With the `ml` feature every supported
/// smartcore model implements it through `SmartcoreModel`.
///
/// ```
/// use std::path::Path;
/// use gust::hooks::mlflow::{FlavorConfig, MlflowFlavor};
///
/// /// A model that predicts a constant.
/// struct Constant(f64);
///
/// impl MlflowFlavor for Constant {
///     const FLAVOR_NAME: &'static str = "constant";
///
///     fn save_flavor(&self, dir: &Path) -> gust::Result<FlavorConfig> {
///         std::fs::write(dir.join("value.txt"), self.0.to_string())?;
///         let mut conf = FlavorConfig::new();
///         conf.insert("data".into(), "value.txt".into());
///         Ok(conf)
///     }
///
///     fn load_flavor(dir: &Path, conf: &FlavorConfig) -> gust::Result<Self> {
///         let file = gust::hooks::mlflow::flavor_data_path(dir, conf)?;
///         let text = std::fs::read_to_string(file)?;
///         text.trim().parse().map(Constant).map_err(|e| {
///             gust::Error::new(gust::ErrorKind::InvalidInput, "constant.load", format!("{e}"))
///         })
///     }
/// }
/// ```
pub trait MlflowFlavor: Sized {
    /// The flavor's key under `flavors:` (e.g. `"smartcore"`).
    const FLAVOR_NAME: &'static str;

    /// Writes the model's files into the model directory `dir` (which exists and
    /// will hold `MLmodel`; do not write a file of that name) and returns the
    /// flavor's entry. Paths in the entry should be relative to `dir`.
    fn save_flavor(&self, dir: &Path) -> Result<FlavorConfig>;

    /// Reads the model back from `dir`, given the entry [`save_flavor`](Self::save_flavor)
    /// returned (read back from `MLmodel`).
    fn load_flavor(dir: &Path, config: &FlavorConfig) -> Result<Self>;
}

/// The file named by the `data` key of a flavor entry, inside `dir`. The path
/// must be relative and stay inside the model directory (no `..`, no absolute
/// path), so an `MLmodel` cannot make a loader read elsewhere.
pub fn flavor_data_path(dir: &Path, config: &FlavorConfig) -> Result<PathBuf> {
    let data = config.get("data").and_then(Value::as_str).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            "mlflow.load_model",
            "the flavor entry has no `data` file",
        )
        .with("dir", dir.display())
    })?;
    let rel = Path::new(data);
    if data.is_empty()
        || !rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "mlflow.load_model",
            format!("flavor data path {data:?} must be relative and inside the model directory"),
        )
        .with("dir", dir.display()));
    }
    Ok(dir.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_paths_stay_inside() {
        let dir = Path::new("/m");
        let conf = |d: &str| {
            let mut c = FlavorConfig::new();
            c.insert("data".into(), d.into());
            c
        };
        assert_eq!(
            flavor_data_path(dir, &conf("model.json")).unwrap(),
            Path::new("/m/model.json")
        );
        assert_eq!(
            flavor_data_path(dir, &conf("data/model.json")).unwrap(),
            Path::new("/m/data/model.json")
        );
        for bad in ["", "../x", "/etc/passwd", "a/../../x"] {
            let e = flavor_data_path(dir, &conf(bad)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
        }
        let e = flavor_data_path(dir, &FlavorConfig::new()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
