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

use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix as ForustMatrix};

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

/// The parameters of gradient-boosted trees (forust's booster; defaults as
/// scikit-learn's `GradientBoosting*`: 100 iterations, learning rate 0.1,
/// depth 3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BoostingParams {
    /// Boosting rounds (trees per class).
    pub iterations: usize,
    /// The shrinkage of each tree.
    pub learning_rate: f32,
    /// The deepest a tree grows.
    pub max_depth: usize,
    /// L2 regularization of the leaf weights.
    pub l2: f32,
    /// The least loss reduction a split must bring.
    pub gamma: f32,
    /// The least hessian weight in a leaf.
    pub min_leaf_weight: f32,
    /// The share of rows each tree sees (1: all).
    pub subsample: f32,
    /// The seed of the row sampling.
    pub seed: u64,
}

impl Default for BoostingParams {
    fn default() -> Self {
        BoostingParams {
            iterations: 100,
            learning_rate: 0.1,
            max_depth: 3,
            l2: 1.0,
            gamma: 0.0,
            min_leaf_weight: 1.0,
            subsample: 1.0,
            seed: 0,
        }
    }
}

impl BoostingParams {
    fn booster(&self, objective: ObjectiveType) -> GradientBooster {
        // Single-threaded: a grid search already fits candidates in parallel,
        // and one thread keeps each fit's result independent of the machine.
        GradientBooster::default()
            .set_objective_type(objective)
            .set_iterations(self.iterations)
            .set_learning_rate(self.learning_rate)
            .set_max_depth(self.max_depth)
            .set_l2(self.l2)
            .set_gamma(self.gamma)
            .set_min_leaf_weight(self.min_leaf_weight)
            .set_subsample(self.subsample)
            .set_seed(self.seed)
            .set_parallel(false)
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
    /// Gradient-boosted trees with log loss (forust): one booster for two
    /// classes, one per class (one-vs-rest, probabilities normalized) for
    /// more — where scikit-learn fits one softmax model.
    GradientBoostingClassifier(BoostingParams),
    /// Gradient-boosted trees with squared loss (forust).
    GradientBoostingRegressor(BoostingParams),
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

    /// A gradient-boosted classifier with scikit-learn's defaults.
    pub fn gradient_boosting_classifier() -> Self {
        Estimator::GradientBoostingClassifier(BoostingParams::default())
    }

    /// A gradient-boosted regressor with scikit-learn's defaults.
    pub fn gradient_boosting_regressor() -> Self {
        Estimator::GradientBoostingRegressor(BoostingParams::default())
    }

    /// The estimator's name (`random_forest_classifier`…).
    pub fn name(&self) -> &'static str {
        match self {
            Estimator::RandomForestClassifier(_) => "random_forest_classifier",
            Estimator::RandomForestRegressor(_) => "random_forest_regressor",
            Estimator::DecisionTreeClassifier(_) => "decision_tree_classifier",
            Estimator::LogisticRegression { .. } => "logistic_regression",
            Estimator::KnnClassifier { .. } => "knn_classifier",
            Estimator::GradientBoostingClassifier(_) => "gradient_boosting_classifier",
            Estimator::GradientBoostingRegressor(_) => "gradient_boosting_regressor",
        }
    }

    /// Whether it predicts classes (else values).
    pub fn is_classifier(&self) -> bool {
        !matches!(
            self,
            Estimator::RandomForestRegressor(_) | Estimator::GradientBoostingRegressor(_)
        )
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
            (Estimator::GradientBoostingRegressor(p), Target::Values(y)) => {
                let columns = column_major(x);
                let data = ForustMatrix::new(&columns, x.rows(), x.cols());
                let mut booster = p.booster(ObjectiveType::SquaredLoss);
                booster
                    .fit_unweighted(&data, y, None)
                    .map_err(forust_failed)?;
                Ok(Model::GradientBoostingRegressor(Box::new(Booster(booster))))
            }
            (Estimator::GradientBoostingClassifier(p), Target::Classes { y, classes }) => {
                let columns = column_major(x);
                let data = ForustMatrix::new(&columns, x.rows(), x.cols());
                let n = classes.len().max(2);
                // Two classes: one booster for class 1; more: one per class.
                let targets: Vec<usize> = if n == 2 { vec![1] } else { (0..n).collect() };
                let mut boosters = Vec::with_capacity(targets.len());
                for k in targets {
                    let yk: Vec<f64> = y.iter().map(|&c| f64::from(u8::from(c == k))).collect();
                    let mut booster = p.booster(ObjectiveType::LogLoss);
                    booster
                        .fit_unweighted(&data, &yk, None)
                        .map_err(forust_failed)?;
                    boosters.push(Booster(booster));
                }
                Ok(Model::GradientBoostingClassifier {
                    boosters,
                    classes: n,
                })
            }
            (
                Estimator::RandomForestRegressor(_) | Estimator::GradientBoostingRegressor(_),
                Target::Classes { .. },
            ) => Err(Error::new(
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
            Estimator::RandomForestRegressor(_)
            | Estimator::GradientBoostingRegressor(_)
            | Estimator::GradientBoostingClassifier(_) => {
                unreachable!("fit() routes regressors and boosters")
            }
        })
    }
}

fn forust_failed(e: forust_ml::errors::ForustError) -> Error {
    Error::new(ErrorKind::InvalidInput, OP, e.to_string())
}

/// The features column after column, as forust reads them.
fn column_major(x: &Matrix) -> Vec<f64> {
    (0..x.cols()).flat_map(|j| x.column(j)).collect()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
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
    /// Fitted boosters: one (class 1 of two) or one per class.
    GradientBoostingClassifier {
        /// The boosters, giving log-odds.
        boosters: Vec<Booster>,
        /// The number of classes.
        classes: usize,
    },
    /// A fitted booster with squared loss.
    GradientBoostingRegressor(Box<Booster>),
}

/// A fitted forest of boosted trees (forust's `GradientBooster`).
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub struct Booster(GradientBooster);

impl std::fmt::Debug for Booster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Booster")
            .field("trees", &self.0.trees.len())
            .finish()
    }
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
        let classes =
            |y: Vec<i64>| Prediction::Classes(y.into_iter().map(|c| c.max(0) as usize).collect());
        Ok(match self {
            Model::RandomForestClassifier(m) => classes(m.predict(&dense(x)?).map_err(failed)?),
            Model::DecisionTreeClassifier(m) => classes(m.predict(&dense(x)?).map_err(failed)?),
            Model::LogisticRegression(m) => classes(m.predict(&dense(x)?).map_err(failed)?),
            Model::KnnClassifier(m) => classes(m.predict(&dense(x)?).map_err(failed)?),
            Model::RandomForestRegressor(m) => {
                Prediction::Values(m.predict(&dense(x)?).map_err(failed)?)
            }
            Model::GradientBoostingClassifier { .. } => {
                let proba = self.predict_proba(x)?.unwrap_or_default();
                // The first of the most probable class, as numpy's argmax.
                Prediction::Classes(
                    proba
                        .iter()
                        .map(|row| {
                            row.iter()
                                .enumerate()
                                .fold((0, f64::NEG_INFINITY), |best, (k, &p)| {
                                    if p > best.1 { (k, p) } else { best }
                                })
                                .0
                        })
                        .collect(),
                )
            }
            Model::GradientBoostingRegressor(b) => {
                let columns = column_major(x);
                let data = ForustMatrix::new(&columns, x.rows(), x.cols());
                Prediction::Values(b.0.predict(&data, false))
            }
        })
    }

    /// Class probabilities per row (one column per class seen in training),
    /// where the model gives them: the decision tree, k-NN and gradient
    /// boosting. `None` for the others (smartcore's random forest and logistic
    /// regression give none).
    pub fn predict_proba(&self, x: &Matrix) -> Result<Option<Vec<Vec<f64>>>> {
        if let Model::GradientBoostingClassifier { boosters, classes } = self {
            let columns = column_major(x);
            let data = ForustMatrix::new(&columns, x.rows(), x.cols());
            let scores: Vec<Vec<f64>> = boosters
                .iter()
                .map(|b| b.0.predict(&data, false).into_iter().map(sigmoid).collect())
                .collect();
            let rows = (0..x.rows())
                .map(|i| {
                    if *classes == 2 {
                        vec![1.0 - scores[0][i], scores[0][i]]
                    } else {
                        let total: f64 = scores.iter().map(|s| s[i]).sum();
                        scores.iter().map(|s| s[i] / total).collect()
                    }
                })
                .collect();
            return Ok(Some(rows));
        }
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
            Estimator::gradient_boosting_classifier(),
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
