//! [`Estimator`]s — smartcore's models with their hyperparameters as plain,
//! serializable data — and the fitted [`Model`]s they give.
//!
//! An estimator is a value: a grid search makes its candidates by setting
//! parameters by name ([`Estimator::set_param`]), logs them
//! ([`Estimator::params`]), and a fitted model serializes with serde, so a
//! pipeline logged in training is the one served.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use smartcore::ensemble::random_forest_classifier::{
    RandomForestClassifier, RandomForestClassifierParameters,
};
use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};
use smartcore::metrics::distance::euclidian::Euclidian;
use smartcore::neighbors::knn_classifier::{KNNClassifier, KNNClassifierParameters};
use smartcore::tree::decision_tree_classifier::{
    DecisionTreeClassifier, DecisionTreeClassifierParameters,
};

use super::{Matrix, Target};
use crate::error::{Error, ErrorKind, Result};

const OP: &str = "ml.estimator";

fn failed(e: smartcore::error::Failed) -> Error {
    Error::new(ErrorKind::InvalidInput, OP, e.to_string())
}

/// The parameters of a random forest (smartcore's defaults: 100 trees, no
/// depth limit, `sqrt(features)` per split).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ForestParams {
    /// Trees in the forest.
    pub n_trees: u16,
    /// The deepest a tree grows (`None`: no limit).
    pub max_depth: Option<u16>,
    /// The fewest samples in a leaf.
    pub min_samples_leaf: usize,
    /// The fewest samples a node needs to be split.
    pub min_samples_split: usize,
    /// Features tried per split (`None`: the square root of their number).
    pub max_features: Option<usize>,
    /// The seed of the bootstrap samples and feature draws.
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            n_trees: 100,
            max_depth: None,
            min_samples_leaf: 1,
            min_samples_split: 2,
            max_features: None,
            seed: 0,
        }
    }
}

/// The parameters of a decision tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TreeParams {
    /// The deepest the tree grows (`None`: no limit).
    pub max_depth: Option<u16>,
    /// The fewest samples in a leaf.
    pub min_samples_leaf: usize,
    /// The fewest samples a node needs to be split.
    pub min_samples_split: usize,
    /// The seed of the feature order.
    pub seed: u64,
}

impl Default for TreeParams {
    fn default() -> Self {
        TreeParams {
            max_depth: None,
            min_samples_leaf: 1,
            min_samples_split: 2,
            seed: 0,
        }
    }
}

/// An estimator and its hyperparameters; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "estimator", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Estimator {
    /// smartcore's `RandomForestClassifier`.
    RandomForestClassifier(ForestParams),
    /// smartcore's `RandomForestRegressor`.
    RandomForestRegressor(ForestParams),
    /// smartcore's `DecisionTreeClassifier` (gini).
    DecisionTreeClassifier(TreeParams),
    /// smartcore's `LogisticRegression` with L2 penalty `alpha`.
    LogisticRegression {
        /// The L2 penalty (0: none).
        alpha: f64,
    },
    /// smartcore's `KNNClassifier`, Euclidean, uniform weights.
    KnnClassifier {
        /// Neighbours that vote.
        k: usize,
    },
}

impl Estimator {
    /// A random forest classifier with smartcore's defaults.
    pub fn random_forest_classifier() -> Self {
        Estimator::RandomForestClassifier(ForestParams::default())
    }

    /// A random forest regressor with smartcore's defaults.
    pub fn random_forest_regressor() -> Self {
        Estimator::RandomForestRegressor(ForestParams::default())
    }

    /// A decision tree classifier without limits.
    pub fn decision_tree_classifier() -> Self {
        Estimator::DecisionTreeClassifier(TreeParams::default())
    }

    /// A logistic regression without penalty.
    pub fn logistic_regression() -> Self {
        Estimator::LogisticRegression { alpha: 0.0 }
    }

    /// A 3-nearest-neighbours classifier.
    pub fn knn_classifier() -> Self {
        Estimator::KnnClassifier { k: 3 }
    }

    /// The estimator's name (`random_forest_classifier`…).
    pub fn name(&self) -> &'static str {
        match self {
            Estimator::RandomForestClassifier(_) => "random_forest_classifier",
            Estimator::RandomForestRegressor(_) => "random_forest_regressor",
            Estimator::DecisionTreeClassifier(_) => "decision_tree_classifier",
            Estimator::LogisticRegression { .. } => "logistic_regression",
            Estimator::KnnClassifier { .. } => "knn_classifier",
        }
    }

    /// Whether it predicts classes (else values).
    pub fn is_classifier(&self) -> bool {
        !matches!(self, Estimator::RandomForestRegressor(_))
    }

    /// The hyperparameters by name, as logged (`max_depth` is `null` for no
    /// limit).
    pub fn params(&self) -> Map<String, Value> {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        let mut map = v.as_object_mut().map(std::mem::take).unwrap_or_default();
        map.remove("estimator");
        map
    }

    /// Sets one hyperparameter by name (a grid search's candidates). A name the
    /// estimator does not have, or a value of the wrong type, is an
    /// [`ErrorKind::InvalidInput`] error naming the known parameters.
    pub fn set_param(&mut self, name: &str, value: &Value) -> Result<()> {
        let mut all = serde_json::to_value(&*self).unwrap_or_default();
        let known: Vec<String> = self.params().keys().cloned().collect();
        if !known.iter().any(|k| k == name) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                format!(
                    "{} has no parameter {name:?} (it has {known:?})",
                    self.name()
                ),
            ));
        }
        all[name] = value.clone();
        *self = serde_json::from_value(all).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                OP,
                format!("{}: {name} = {value} does not fit: {e}", self.name()),
            )
        })?;
        Ok(())
    }

    /// Fits the estimator. A class target for a regressor (or the reverse),
    /// a `NaN` in the features (impute first), or smartcore refusing the data
    /// is an [`ErrorKind::InvalidInput`] error.
    pub fn fit(&self, x: &Matrix, target: &Target) -> Result<Model> {
        if x.as_slice().iter().any(|v| v.is_nan()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                "the features hold missing values (NaN): put an imputer before the estimator",
            ));
        }
        let xm = dense(x)?;
        match (self, target) {
            (Estimator::RandomForestRegressor(p), Target::Values(y)) => {
                let mut params = RandomForestRegressorParameters::default()
                    .with_n_trees(usize::from(p.n_trees))
                    .with_min_samples_leaf(p.min_samples_leaf)
                    .with_min_samples_split(p.min_samples_split)
                    .with_seed(p.seed);
                if let Some(d) = p.max_depth {
                    params = params.with_max_depth(d);
                }
                if let Some(m) = p.max_features {
                    params = params.with_m(m);
                }
                Ok(Model::RandomForestRegressor(
                    RandomForestRegressor::fit(&xm, y, params).map_err(failed)?,
                ))
            }
            (Estimator::RandomForestRegressor(_), Target::Classes { .. }) => Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                "a regressor needs a value target, not classes",
            )),
            (_, Target::Values(_)) => Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                format!("{} needs a class target, not values", self.name()),
            )),
            (_, Target::Classes { y, .. }) => {
                let y: Vec<i64> = y.iter().map(|&c| c as i64).collect();
                self.fit_classifier(&xm, &y)
            }
        }
    }

    fn fit_classifier(&self, x: &DenseMatrix<f64>, y: &Vec<i64>) -> Result<Model> {
        Ok(match self {
            Estimator::RandomForestClassifier(p) => {
                let mut params = RandomForestClassifierParameters::default()
                    .with_n_trees(p.n_trees)
                    .with_min_samples_leaf(p.min_samples_leaf)
                    .with_min_samples_split(p.min_samples_split)
                    .with_seed(p.seed);
                if let Some(d) = p.max_depth {
                    params = params.with_max_depth(d);
                }
                if let Some(m) = p.max_features {
                    params = params.with_m(m);
                }
                Model::RandomForestClassifier(
                    RandomForestClassifier::fit(x, y, params).map_err(failed)?,
                )
            }
            Estimator::DecisionTreeClassifier(p) => {
                let mut params = DecisionTreeClassifierParameters::default()
                    .with_min_samples_leaf(p.min_samples_leaf)
                    .with_min_samples_split(p.min_samples_split);
                params.seed = Some(p.seed);
                if let Some(d) = p.max_depth {
                    params = params.with_max_depth(d);
                }
                Model::DecisionTreeClassifier(
                    DecisionTreeClassifier::fit(x, y, params).map_err(failed)?,
                )
            }
            Estimator::LogisticRegression { alpha } => {
                let params = LogisticRegressionParameters::default().with_alpha(*alpha);
                Model::LogisticRegression(LogisticRegression::fit(x, y, params).map_err(failed)?)
            }
            Estimator::KnnClassifier { k } => {
                let params = KNNClassifierParameters::default().with_k(*k);
                Model::KnnClassifier(KNNClassifier::fit(x, y, params).map_err(failed)?)
            }
            Estimator::RandomForestRegressor(_) => unreachable!("fit() routes regressors"),
        })
    }
}

/// The features as smartcore's matrix.
fn dense(x: &Matrix) -> Result<DenseMatrix<f64>> {
    DenseMatrix::new(x.rows(), x.cols(), x.as_slice().to_vec(), false).map_err(failed)
}

type Forest = RandomForestClassifier<f64, i64, DenseMatrix<f64>, Vec<i64>>;
type ForestRegressor = RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;
type Tree = DecisionTreeClassifier<f64, i64, DenseMatrix<f64>, Vec<i64>>;
type Logistic = LogisticRegression<f64, i64, DenseMatrix<f64>, Vec<i64>>;
type Knn = KNNClassifier<f64, i64, DenseMatrix<f64>, Vec<i64>, Euclidian<f64>>;

/// A fitted estimator; serializes with serde.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Model {
    /// A fitted random forest classifier.
    RandomForestClassifier(Forest),
    /// A fitted random forest regressor.
    RandomForestRegressor(ForestRegressor),
    /// A fitted decision tree.
    DecisionTreeClassifier(Tree),
    /// A fitted logistic regression.
    LogisticRegression(Logistic),
    /// A fitted k-NN classifier.
    KnnClassifier(Knn),
}

/// What a model predicts for each row.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    /// Class indices (into the dataset's `classes`).
    Classes(Vec<usize>),
    /// Values.
    Values(Vec<f64>),
}

impl Model {
    /// Predicts each row of `x` (which must have the training columns and no
    /// `NaN`).
    pub fn predict(&self, x: &Matrix) -> Result<Prediction> {
        if x.as_slice().iter().any(|v| v.is_nan()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                "the input holds missing values (NaN)",
            ));
        }
        let xm = dense(x)?;
        let classes =
            |y: Vec<i64>| Prediction::Classes(y.into_iter().map(|c| c.max(0) as usize).collect());
        Ok(match self {
            Model::RandomForestClassifier(m) => classes(m.predict(&xm).map_err(failed)?),
            Model::DecisionTreeClassifier(m) => classes(m.predict(&xm).map_err(failed)?),
            Model::LogisticRegression(m) => classes(m.predict(&xm).map_err(failed)?),
            Model::KnnClassifier(m) => classes(m.predict(&xm).map_err(failed)?),
            Model::RandomForestRegressor(m) => Prediction::Values(m.predict(&xm).map_err(failed)?),
        })
    }

    /// Class probabilities per row (one column per class seen in training),
    /// where the model gives them: the decision tree and k-NN. `None` for the
    /// others (smartcore's random forest and logistic regression give none).
    pub fn predict_proba(&self, x: &Matrix) -> Result<Option<Vec<Vec<f64>>>> {
        let xm = dense(x)?;
        Ok(match self {
            Model::DecisionTreeClassifier(m) => {
                let p = m.predict_proba(&xm).map_err(failed)?;
                let (rows, cols) = p.shape();
                Some(
                    (0..rows)
                        .map(|i| (0..cols).map(|j| *p.get((i, j))).collect())
                        .collect(),
                )
            }
            Model::KnnClassifier(m) => Some(m.predict_proba(&xm).map_err(failed)?),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_by_name() {
        let mut e = Estimator::random_forest_classifier();
        e.set_param("max_depth", &json!(4)).unwrap();
        e.set_param("n_trees", &json!(10)).unwrap();
        assert_eq!(e.params()["max_depth"], 4);
        assert_eq!(e.params()["n_trees"], 10);
        let err = e.set_param("learning_rate", &json!(0.1)).unwrap_err();
        assert!(
            err.message().contains("no parameter \"learning_rate\""),
            "{err}"
        );
        let err = e.set_param("n_trees", &json!("many")).unwrap_err();
        assert!(err.message().contains("does not fit"), "{err}");
    }

    #[test]
    fn fits_predicts_and_serializes() {
        let rows: Vec<Vec<f64>> = (0..40).map(|i| vec![i as f64, (i % 3) as f64]).collect();
        let x = Matrix::from_rows(&rows).unwrap();
        let target = Target::Classes {
            classes: vec!["lo".into(), "hi".into()],
            y: (0..40).map(|i| usize::from(i >= 20)).collect(),
        };
        for e in [
            Estimator::random_forest_classifier(),
            Estimator::decision_tree_classifier(),
            Estimator::logistic_regression(),
            Estimator::knn_classifier(),
        ] {
            let m = e.fit(&x, &target).unwrap();
            let Prediction::Classes(p) = m.predict(&x).unwrap() else {
                panic!("classes")
            };
            let right = p
                .iter()
                .enumerate()
                .filter(|(i, c)| usize::from(*i >= 20) == **c)
                .count();
            assert!(right >= 36, "{}: {right}/40", e.name());
            let json = serde_json::to_string(&m).unwrap();
            let back: Model = serde_json::from_str(&json).unwrap();
            assert_eq!(
                back.predict(&x).unwrap(),
                Prediction::Classes(p),
                "{}",
                e.name()
            );
        }
        let e = Estimator::random_forest_regressor()
            .fit(&x, &target)
            .unwrap_err();
        assert!(e.message().contains("value target"), "{e}");
        let nan = Matrix::from_rows(&[vec![f64::NAN, 1.0]]).unwrap();
        let e = Estimator::knn_classifier().fit(&nan, &target).unwrap_err();
        assert!(e.message().contains("imputer"), "{e}");
    }
}
