//! The `smartcore` flavor (features `mlflow` and `ml`): a smartcore estimator,
//! serialized with its own serde support as JSON.
//!
//! ```yaml
//! flavors:
//!   smartcore:
//!     data: model.json
//!     gust_version: 0.1.0
//!     model_type: smartcore::ensemble::random_forest_classifier::RandomForestClassifier
//!     rust_type: smartcore::ensemble::random_forest_classifier::RandomForestClassifier<f64, i64, …>
//!     serialization_format: json
//!     smartcore_version: '0.4'
//! ```
//!
//! JSON rather than a binary format: it needs no extra dependency (serde_json
//! already writes and reads every float exactly, with `float_roundtrip`), can be
//! inspected or read from another language, and is what smartcore documents for
//! persistence. A forest of 100 shallow trees is a few MB; a size-critical model
//! can implement [`MlflowFlavor`] itself with a compact encoding.
//!
//! `model_type` is checked on load (a `DecisionTreeClassifier` directory does not
//! load as a `RandomForestClassifier`); `rust_type`, with the type parameters, is
//! informative only, since `std::any::type_name` is not stable across compilers.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use smartcore::linalg::basic::arrays::{Array1, Array2};
use smartcore::linalg::traits::cholesky::CholeskyDecomposable;
use smartcore::linalg::traits::evd::EVDDecomposable;
use smartcore::linalg::traits::qr::QRDecomposable;
use smartcore::linalg::traits::svd::SVDDecomposable;
use smartcore::metrics::distance::Distance;
use smartcore::numbers::basenum::Number;
use smartcore::numbers::floatnum::FloatNumber;
use smartcore::numbers::realnum::RealNumber;

use super::flavor::{FlavorConfig, MlflowFlavor, flavor_data_path};
use crate::error::{Error, ErrorKind, Result};

/// The flavor name in `MLmodel`.
pub const SMARTCORE_FLAVOR: &str = "smartcore";

/// The smartcore release series gust is built against, recorded as
/// `smartcore_version`: smartcore's serialized form is expected to stay readable
/// within a series.
pub const SMARTCORE_VERSION: &str = "0.4";

const DATA_FILE: &str = "model.json";

/// A smartcore estimator that can be logged in the `smartcore` flavor: every type
/// implementing it is an [`MlflowFlavor`].
///
/// Implemented for `RandomForestClassifier`, `RandomForestRegressor`,
/// `ExtraTreesRegressor`, `DecisionTreeClassifier`, `DecisionTreeRegressor`,
/// `LinearRegression`, `LogisticRegression`, `RidgeRegression`, `Lasso`,
/// `ElasticNet`, `KNNClassifier`, `KNNRegressor`, `KMeans`, `PCA` and
/// `XGRegressor`, for any type parameters that are serde-serializable (e.g.
/// `f64`/`i64`/`u32` with `DenseMatrix<f64>` and `Vec<_>`).
///
/// ```no_run
/// use gust::hooks::mlflow::{ColType, MlflowHook, ModelSignature, Schema};
/// use smartcore::ensemble::random_forest_classifier::RandomForestClassifier;
/// use smartcore::linalg::basic::matrix::DenseMatrix;
///
/// type Forest = RandomForestClassifier<f64, i64, DenseMatrix<f64>, Vec<i64>>;
///
/// # async fn demo() -> gust::Result<()> {
/// let x = DenseMatrix::from_2d_vec(&vec![vec![5.1, 3.5], vec![6.7, 3.0]]).unwrap();
/// let y = vec![0, 1];
/// let forest = Forest::fit(&x, &y, Default::default()).unwrap();
///
/// let mlflow = MlflowHook::from_env()?;
/// let run = mlflow.create_run("0", Some("iris")).await?;
/// let signature = ModelSignature::from_columns(
///     &[("sepal_length", ColType::Double), ("sepal_width", ColType::Double)],
///     Some(Schema::unnamed(ColType::Long)),
/// );
/// let info = mlflow.log_model(run.run_id(), "model", &forest, Some(signature)).await?;
/// mlflow.create_registered_model("IrisForest").await?;
/// let v = mlflow.create_model_version("IrisForest", &info.model_uri, Some(run.run_id())).await?;
/// mlflow.set_registered_model_alias("IrisForest", "champion", &v.version).await?;
///
/// // A service loads whatever `champion` points at:
/// let served: Forest = mlflow.load_model("models:/IrisForest@champion").await?;
/// assert_eq!(served.predict(&x).unwrap(), forest.predict(&x).unwrap());
/// # Ok(()) }
/// ```
pub trait SmartcoreModel: Serialize + DeserializeOwned {
    /// The estimator's path without type parameters, recorded as `model_type`
    /// and checked on load.
    const MODEL_TYPE: &'static str;
}

macro_rules! smartcore_models {
    ($( [$($generics:tt)*] $ty:ty => $name:literal; )*) => {$(
        impl<$($generics)*> SmartcoreModel for $ty
        where
            $ty: Serialize + DeserializeOwned,
        {
            const MODEL_TYPE: &'static str = $name;
        }
    )*};
}

use smartcore::cluster::kmeans::KMeans;
use smartcore::decomposition::pca::PCA;
use smartcore::ensemble::extra_trees_regressor::ExtraTreesRegressor;
use smartcore::ensemble::random_forest_classifier::RandomForestClassifier;
use smartcore::ensemble::random_forest_regressor::RandomForestRegressor;
use smartcore::linear::elastic_net::ElasticNet;
use smartcore::linear::lasso::Lasso;
use smartcore::linear::linear_regression::LinearRegression;
use smartcore::linear::logistic_regression::LogisticRegression;
use smartcore::linear::ridge_regression::RidgeRegression;
use smartcore::neighbors::knn_classifier::KNNClassifier;
use smartcore::neighbors::knn_regressor::KNNRegressor;
use smartcore::tree::decision_tree_classifier::DecisionTreeClassifier;
use smartcore::tree::decision_tree_regressor::DecisionTreeRegressor;
use smartcore::xgboost::xgb_regressor::XGRegressor;

smartcore_models! {
    [TX: Number + FloatNumber + PartialOrd, TY: Number + Ord, X: Array2<TX>, Y: Array1<TY>]
        RandomForestClassifier<TX, TY, X, Y>
        => "smartcore::ensemble::random_forest_classifier::RandomForestClassifier";
    [TX: Number + FloatNumber + PartialOrd, TY: Number, X: Array2<TX>, Y: Array1<TY>]
        RandomForestRegressor<TX, TY, X, Y>
        => "smartcore::ensemble::random_forest_regressor::RandomForestRegressor";
    [TX: Number + FloatNumber + PartialOrd, TY: Number, X: Array2<TX>, Y: Array1<TY>]
        ExtraTreesRegressor<TX, TY, X, Y>
        => "smartcore::ensemble::extra_trees_regressor::ExtraTreesRegressor";
    [TX: Number + PartialOrd, TY: Number + Ord, X: Array2<TX>, Y: Array1<TY>]
        DecisionTreeClassifier<TX, TY, X, Y>
        => "smartcore::tree::decision_tree_classifier::DecisionTreeClassifier";
    [TX: Number + PartialOrd, TY: Number, X: Array2<TX>, Y: Array1<TY>]
        DecisionTreeRegressor<TX, TY, X, Y>
        => "smartcore::tree::decision_tree_regressor::DecisionTreeRegressor";
    [TX: Number + RealNumber, TY: Number, X: Array2<TX> + QRDecomposable<TX> + SVDDecomposable<TX>, Y: Array1<TY>]
        LinearRegression<TX, TY, X, Y>
        => "smartcore::linear::linear_regression::LinearRegression";
    [TX: Number + FloatNumber + RealNumber, TY: Number + Ord, X: Array2<TX>, Y: Array1<TY>]
        LogisticRegression<TX, TY, X, Y>
        => "smartcore::linear::logistic_regression::LogisticRegression";
    [TX: Number + RealNumber, TY: Number, X: Array2<TX> + CholeskyDecomposable<TX> + SVDDecomposable<TX>, Y: Array1<TY>]
        RidgeRegression<TX, TY, X, Y>
        => "smartcore::linear::ridge_regression::RidgeRegression";
    [TX: FloatNumber + RealNumber, TY: Number, X: Array2<TX>, Y: Array1<TY>]
        Lasso<TX, TY, X, Y>
        => "smartcore::linear::lasso::Lasso";
    [TX: FloatNumber + RealNumber, TY: Number, X: Array2<TX>, Y: Array1<TY>]
        ElasticNet<TX, TY, X, Y>
        => "smartcore::linear::elastic_net::ElasticNet";
    [TX: Number, TY: Number + Ord, X: Array2<TX>, Y: Array1<TY>, D: Distance<Vec<TX>>]
        KNNClassifier<TX, TY, X, Y, D>
        => "smartcore::neighbors::knn_classifier::KNNClassifier";
    [TX: Number, TY: Number, X: Array2<TX>, Y: Array1<TY>, D: Distance<Vec<TX>>]
        KNNRegressor<TX, TY, X, Y, D>
        => "smartcore::neighbors::knn_regressor::KNNRegressor";
    [TX: Number, TY: Number, X: Array2<TX>, Y: Array1<TY>]
        KMeans<TX, TY, X, Y>
        => "smartcore::cluster::kmeans::KMeans";
    [T: Number + RealNumber, X: Array2<T> + SVDDecomposable<T> + EVDDecomposable<T>]
        PCA<T, X>
        => "smartcore::decomposition::pca::PCA";
    [TX: Number + PartialOrd, TY: Number, X: Array2<TX>, Y: Array1<TY>]
        XGRegressor<TX, TY, X, Y>
        => "smartcore::xgboost::xgb_regressor::XGRegressor";
}

fn load_error(kind: ErrorKind, dir: &Path, message: impl Into<String>) -> Error {
    Error::new(kind, "mlflow.load_model", message)
        .with("flavor", SMARTCORE_FLAVOR)
        .with("dir", dir.display())
}

impl<M: SmartcoreModel> MlflowFlavor for M {
    const FLAVOR_NAME: &'static str = SMARTCORE_FLAVOR;

    fn save_flavor(&self, dir: &Path) -> Result<FlavorConfig> {
        let path = dir.join(DATA_FILE);
        let file = std::fs::File::create(&path)
            .map_err(|e| Error::from(e).with("path", path.display()))?;
        let mut w = std::io::BufWriter::new(file);
        serde_json::to_writer(&mut w, self).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                "mlflow.save_model",
                format!("cannot serialize the {} model: {e}", M::MODEL_TYPE),
            )
            .with_source(e)
        })?;
        std::io::Write::flush(&mut w).map_err(|e| Error::from(e).with("path", path.display()))?;
        let mut conf = FlavorConfig::new();
        conf.insert("data".into(), DATA_FILE.into());
        conf.insert("gust_version".into(), env!("CARGO_PKG_VERSION").into());
        conf.insert("model_type".into(), M::MODEL_TYPE.into());
        conf.insert("rust_type".into(), std::any::type_name::<M>().into());
        conf.insert("serialization_format".into(), "json".into());
        conf.insert("smartcore_version".into(), SMARTCORE_VERSION.into());
        Ok(conf)
    }

    fn load_flavor(dir: &Path, config: &FlavorConfig) -> Result<Self> {
        let format = config
            .get("serialization_format")
            .and_then(Value::as_str)
            .unwrap_or("json");
        if format != "json" {
            return Err(load_error(
                ErrorKind::Unsupported,
                dir,
                format!(
                    "serialization_format {format:?} is not supported; gust writes and reads json"
                ),
            ));
        }
        match config.get("model_type").and_then(Value::as_str) {
            Some(t) if t == M::MODEL_TYPE => {}
            Some(t) => {
                return Err(load_error(
                    ErrorKind::InvalidInput,
                    dir,
                    format!("the model is a {t}, not a {}", M::MODEL_TYPE),
                ));
            }
            None => {
                return Err(load_error(
                    ErrorKind::InvalidInput,
                    dir,
                    "the smartcore flavor entry has no model_type",
                ));
            }
        }
        if let Some(v) = config.get("smartcore_version").and_then(Value::as_str)
            && v != SMARTCORE_VERSION
        {
            tracing::warn!(
                saved = v,
                running = SMARTCORE_VERSION,
                "smartcore model saved by another smartcore series; loading may fail"
            );
        }
        let path = flavor_data_path(dir, config)?;
        let bytes =
            std::fs::read(&path).map_err(|e| Error::from(e).with("path", path.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            load_error(
                ErrorKind::InvalidInput,
                dir,
                format!(
                    "{} does not deserialize as a {}: {e}",
                    DATA_FILE,
                    M::MODEL_TYPE
                ),
            )
            .with_source(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use smartcore::linalg::basic::matrix::DenseMatrix;
    use smartcore::linear::linear_regression::LinearRegressionParameters;
    use smartcore::tree::decision_tree_classifier::DecisionTreeClassifierParameters;

    use super::super::{ModelMeta, load_model_from_dir, save_model};
    use super::*;

    type Tree = DecisionTreeClassifier<f64, i64, DenseMatrix<f64>, Vec<i64>>;
    type Linear = LinearRegression<f64, f64, DenseMatrix<f64>, Vec<f64>>;

    fn data() -> (DenseMatrix<f64>, Vec<i64>) {
        let rows: Vec<Vec<f64>> = (0..20)
            .map(|i| vec![i as f64, (i % 3) as f64 * 0.5])
            .collect();
        let y = (0..20).map(|i| i64::from(i >= 10)).collect();
        (DenseMatrix::from_2d_vec(&rows).unwrap(), y)
    }

    #[test]
    fn models_round_trip_through_a_directory() {
        let (x, y) = data();
        let tree = Tree::fit(&x, &y, DecisionTreeClassifierParameters::default()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tree");
        let mlmodel = save_model(&dir, &tree, &ModelMeta::default()).unwrap();
        let conf = &mlmodel.flavors[SMARTCORE_FLAVOR];
        assert_eq!(conf["model_type"], Tree::MODEL_TYPE);
        assert_eq!(conf["data"], "model.json");
        let back: Tree = load_model_from_dir(&dir).unwrap();
        assert_eq!(back.predict(&x).unwrap(), tree.predict(&x).unwrap());

        // The wrong estimator type is refused by name, before deserializing.
        let e = load_model_from_dir::<Linear>(&dir).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("DecisionTreeClassifier"), "{e}");

        let yf: Vec<f64> = y.iter().map(|v| *v as f64).collect();
        let lin = Linear::fit(&x, &yf, LinearRegressionParameters::default()).unwrap();
        let dir = tmp.path().join("lin");
        save_model(&dir, &lin, &ModelMeta::default()).unwrap();
        let back: Linear = load_model_from_dir(&dir).unwrap();
        // Floats survive JSON exactly.
        assert_eq!(back.predict(&x).unwrap(), lin.predict(&x).unwrap());

        // A corrupt data file is an InvalidInput naming the model type.
        std::fs::write(dir.join("model.json"), b"{not json").unwrap();
        let e = load_model_from_dir::<Linear>(&dir).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("LinearRegression"), "{e}");
    }
}
