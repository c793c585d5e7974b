//! [`Pipeline`]: transformers, then an estimator — fitted as one, saved as
//! one, so serving applies exactly the preprocessing training learnt.

use serde::{Deserialize, Serialize};

use serde_json::{Map, Value};

use super::dataset::{Categorical, categorical_columns, numeric_matrix};
use super::encoding::{Encoder, FittedEncoder};
use super::estimator::{Estimator, Model, Prediction};
use super::metrics::{self, Average, Metric};
use super::preprocessing::{
    FittedMinMaxScaler, FittedRobustScaler, FittedSimpleImputer, FittedStandardScaler,
    MinMaxScaler, RobustScaler, SimpleImputer, StandardScaler, Transform,
};
use super::{Dataset, Matrix, Target};
use crate::error::{Error, ErrorKind, Result};

const OP: &str = "ml.pipeline";

/// A transformer step of a [`Pipeline`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// Fills missing values.
    Imputer(SimpleImputer),
    /// Median and interquantile range.
    RobustScaler(RobustScaler),
    /// Mean and standard deviation.
    StandardScaler(StandardScaler),
    /// Into a range.
    MinMaxScaler(MinMaxScaler),
}

macro_rules! step_from {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for Step {
            fn from(s: $ty) -> Self {
                Step::$variant(s)
            }
        }
    )*};
}
step_from!(
    Imputer(SimpleImputer),
    RobustScaler(RobustScaler),
    StandardScaler(StandardScaler),
    MinMaxScaler(MinMaxScaler)
);

/// A fitted [`Step`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FittedStep {
    /// A fitted imputer.
    Imputer(FittedSimpleImputer),
    /// A fitted robust scaler.
    RobustScaler(FittedRobustScaler),
    /// A fitted standard scaler.
    StandardScaler(FittedStandardScaler),
    /// A fitted min-max scaler.
    MinMaxScaler(FittedMinMaxScaler),
}

impl Step {
    fn fit(&self, x: &Matrix) -> Result<FittedStep> {
        Ok(match self {
            Step::Imputer(s) => FittedStep::Imputer(s.fit(x)?),
            Step::RobustScaler(s) => FittedStep::RobustScaler(s.fit(x)?),
            Step::StandardScaler(s) => FittedStep::StandardScaler(s.fit(x)?),
            Step::MinMaxScaler(s) => FittedStep::MinMaxScaler(s.fit(x)?),
        })
    }
}

impl FittedStep {
    fn transform(&self, x: &Matrix) -> Result<Matrix> {
        match self {
            FittedStep::Imputer(s) => s.transform(x),
            FittedStep::RobustScaler(s) => Transform::transform(s, x),
            FittedStep::StandardScaler(s) => Transform::transform(s, x),
            FittedStep::MinMaxScaler(s) => Transform::transform(s, x),
        }
    }
}

/// Transformer steps, then an estimator (scikit-learn's `Pipeline`).
///
/// ```
/// use gust::ml::{Dataset, TargetKind};
/// use gust::ml::estimator::Estimator;
/// use gust::ml::metrics::Metric;
/// use gust::ml::pipeline::Pipeline;
/// use gust::ml::preprocessing::{ImputeStrategy, RobustScaler, SimpleImputer};
/// use serde_json::json;
///
/// let rows: Vec<_> = (0..40)
///     .map(|i| json!({"x": if i == 3 { None } else { Some(i) }, "y": if i < 25 { "a" } else { "b" }}))
///     .map(|v| v.as_object().unwrap().clone())
///     .collect();
/// let data = Dataset::from_rows(&rows, &["x"], "y", TargetKind::Classes)?;
/// let fitted = Pipeline::new(Estimator::decision_tree_classifier())
///     .step(SimpleImputer::new(ImputeStrategy::Median))
///     .step(RobustScaler::new())
///     .fit(&data)?;
/// assert_eq!(fitted.predict_labels(&data.x)?[39], "b");
/// assert_eq!(fitted.score(&data, Metric::Accuracy)?, 1.0);
/// // What is logged and served: the steps and the model, as JSON.
/// let json = serde_json::to_string(&fitted)?;
/// let served: gust::ml::pipeline::FittedPipeline = serde_json::from_str(&json)?;
/// assert_eq!(served.predict(&data.x)?, fitted.predict(&data.x)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// The transformers of the numeric columns, in order.
    pub steps: Vec<Step>,
    /// The encoder of the categorical columns, whose output goes beside the
    /// transformed numeric columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<Encoder>,
    /// The estimator at the end.
    pub estimator: Estimator,
}

impl Pipeline {
    /// A pipeline of just `estimator`.
    pub fn new(estimator: Estimator) -> Self {
        Pipeline {
            steps: Vec::new(),
            encoder: None,
            estimator,
        }
    }

    /// Adds a transformer step of the numeric columns after the others.
    pub fn step(mut self, step: impl Into<Step>) -> Self {
        self.steps.push(step.into());
        self
    }

    /// Encodes the dataset's categorical columns with `encoder`; their
    /// columns go after the numeric ones, which the steps transformed
    /// (scikit-learn's `ColumnTransformer`). A dataset with categorical
    /// columns needs one.
    pub fn encoder(mut self, encoder: impl Into<Encoder>) -> Self {
        self.encoder = Some(encoder.into());
        self
    }

    /// The same pipeline with another estimator (a grid search's candidate).
    pub(crate) fn with_estimator(&self, estimator: Estimator) -> Pipeline {
        Pipeline {
            steps: self.steps.clone(),
            encoder: self.encoder.clone(),
            estimator,
        }
    }

    /// Fits every step on the dataset's numeric columns (each on the previous
    /// one's output), the encoder on its categorical columns, then the
    /// estimator on both.
    pub fn fit(&self, data: &Dataset) -> Result<FittedPipeline> {
        let classes = match &data.target {
            Target::Classes { classes, .. } => Some(classes.clone()),
            Target::Values(_) => None,
        };
        let mut x = data.x.clone();
        let mut steps = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            let fitted = step.fit(&x)?;
            x = fitted.transform(&x)?;
            steps.push(fitted);
        }
        let encoder = match (&self.encoder, data.categorical.is_empty()) {
            (_, true) => None,
            (Some(e), false) => {
                let fitted = e.fit(&data.categorical)?;
                x = x.hstack(&fitted.transform(&data.categorical)?)?;
                Some(fitted)
            }
            (None, false) => {
                let names: Vec<&str> = data.categorical.iter().map(|c| c.name.as_str()).collect();
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    OP,
                    format!(
                        "the categorical columns {names:?} need an encoder: \
                         Pipeline::encoder(OneHotEncoder::new()) or OrdinalEncoder"
                    ),
                ));
            }
        };
        let model = self.estimator.fit(&x, &data.target)?;
        Ok(FittedPipeline {
            features: data.features.clone(),
            categorical: data.categorical.iter().map(|c| c.name.clone()).collect(),
            classes,
            pipeline: self.clone(),
            steps,
            encoder,
            model,
        })
    }
}

/// A [`FittedPipeline`]'s predictions for rows (see
/// [`FittedPipeline::predict_rows`]), shaped for a JSON response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Predictions {
    /// A classifier's.
    Classes {
        /// Each row's class label.
        labels: Vec<String>,
        /// The class labels, in the order of each row's probabilities.
        classes: Vec<String>,
        /// Each row's class probabilities, where the estimator gives them.
        #[serde(skip_serializing_if = "Option::is_none")]
        probabilities: Option<Vec<Vec<f64>>>,
    },
    /// A regressor's.
    Values {
        /// Each row's predicted value.
        values: Vec<f64>,
    },
}

/// A fitted [`Pipeline`]: what is logged as the model and served.
#[derive(Debug, Serialize, Deserialize)]
pub struct FittedPipeline {
    /// The numeric feature columns it takes, in order.
    pub features: Vec<String>,
    /// The categorical feature columns it takes, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categorical: Vec<String>,
    /// The class labels its class indices stand for (`None` for a regressor).
    pub classes: Option<Vec<String>>,
    /// The unfitted pipeline (its steps' and estimator's parameters).
    pub pipeline: Pipeline,
    steps: Vec<FittedStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    encoder: Option<FittedEncoder>,
    model: Model,
}

impl FittedPipeline {
    /// The fitted steps.
    pub fn steps(&self) -> &[FittedStep] {
        &self.steps
    }

    /// The fitted estimator.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The fitted encoder of the categorical columns, if any.
    pub fn encoder(&self) -> Option<&FittedEncoder> {
        self.encoder.as_ref()
    }

    /// Every column it takes: the numeric ones, then the categorical ones.
    pub fn input_columns(&self) -> Vec<&str> {
        self.features
            .iter()
            .chain(&self.categorical)
            .map(String::as_str)
            .collect()
    }

    /// The columns it takes that some of `rows` lack, in input order.
    pub fn missing_columns(&self, rows: &[Map<String, Value>]) -> Vec<&str> {
        self.input_columns()
            .into_iter()
            .filter(|c| rows.iter().any(|r| !r.contains_key(*c)))
            .collect()
    }

    /// The numeric `x` through every step (for a pipeline without
    /// categorical columns; see [`transform_columns`](Self::transform_columns)).
    pub fn transform(&self, x: &Matrix) -> Result<Matrix> {
        self.transform_columns(x, &[])
    }

    /// The numeric `x` through every step, beside the encoded categorical
    /// `columns`: what the estimator takes.
    pub fn transform_columns(&self, x: &Matrix, columns: &[Categorical]) -> Result<Matrix> {
        if x.cols() != self.features.len() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                format!(
                    "the input has {} numeric columns where the model takes {}: {:?}",
                    x.cols(),
                    self.features.len(),
                    self.features
                ),
            ));
        }
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        if names != self.categorical {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                format!(
                    "the input's categorical columns are {names:?} where the model takes {:?}",
                    self.categorical
                ),
            ));
        }
        let mut x = x.clone();
        for step in &self.steps {
            x = step.transform(&x)?;
        }
        match &self.encoder {
            Some(e) if !columns.is_empty() => x.hstack(&e.transform(columns)?),
            _ => Ok(x),
        }
    }

    /// Predicts each of `rows` (JSON objects, as a request body or
    /// `get_records` gives them): class labels and probabilities, or values.
    /// Rows lacking a column the model takes are an
    /// [`ErrorKind::InvalidInput`] error naming every missing column (with
    /// `columns` in its context); extra columns are ignored, as MLflow's
    /// schema enforcement ignores them.
    pub fn predict_rows(&self, rows: &[Map<String, Value>]) -> Result<Predictions> {
        let missing = self.missing_columns(rows);
        if !missing.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                format!(
                    "the rows lack the columns {missing:?}; the model takes {:?}",
                    self.input_columns()
                ),
            )
            .with("columns", missing.join(",")));
        }
        let x = numeric_matrix(rows, &self.features)?;
        let columns = categorical_columns(rows, &self.categorical);
        let x = self.transform_columns(&x, &columns)?;
        let predicted = self.model.predict(&x)?;
        match (predicted, &self.classes) {
            (Prediction::Classes(c), Some(classes)) => Ok(Predictions::Classes {
                labels: c
                    .into_iter()
                    .map(|k| classes.get(k).cloned().unwrap_or_default())
                    .collect(),
                classes: classes.clone(),
                probabilities: self.model.predict_proba(&x)?,
            }),
            (Prediction::Values(values), _) => Ok(Predictions::Values { values }),
            (Prediction::Classes(_), None) => Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                "the model predicts classes but knows no class labels",
            )),
        }
    }

    /// Predicts each row (class indices, or values).
    pub fn predict(&self, x: &Matrix) -> Result<Prediction> {
        self.model.predict(&self.transform(x)?)
    }

    /// Predicts each row's class label (an error for a regressor).
    pub fn predict_labels(&self, x: &Matrix) -> Result<Vec<String>> {
        match (self.predict(x)?, &self.classes) {
            (Prediction::Classes(c), Some(classes)) => Ok(c
                .into_iter()
                .map(|k| classes.get(k).cloned().unwrap_or_default())
                .collect()),
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                "the model predicts values, not class labels",
            )),
        }
    }

    /// Class probabilities per row, where the estimator gives them.
    pub fn predict_proba(&self, x: &Matrix) -> Result<Option<Vec<Vec<f64>>>> {
        self.model.predict_proba(&self.transform(x)?)
    }

    /// The metric of the model's predictions on `data`.
    pub fn score(&self, data: &Dataset, metric: Metric) -> Result<f64> {
        let x = self.transform_columns(&data.x, &data.categorical)?;
        let target = &data.target;
        let needs_proba = matches!(
            metric,
            Metric::RocAuc | Metric::RocAucOvrMacro | Metric::LogLoss
        );
        let proba = if needs_proba {
            match self.model.predict_proba(&x)? {
                Some(p) => Some(p),
                None => {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        OP,
                        format!(
                            "{} gives no probabilities, which {} needs",
                            self.pipeline.estimator.name(),
                            metric.name()
                        ),
                    ));
                }
            }
        } else {
            None
        };
        let predicted = self.model.predict(&x)?;
        score(metric, target, &predicted, proba.as_deref())
    }
}

/// `metric` of `predicted` against `truth` (`proba` for the probability
/// metrics).
pub(crate) fn score(
    metric: Metric,
    truth: &Target,
    predicted: &Prediction,
    proba: Option<&[Vec<f64>]>,
) -> Result<f64> {
    let mismatch = || {
        Error::new(
            ErrorKind::InvalidInput,
            OP,
            format!(
                "{} does not apply to this target and prediction",
                metric.name()
            ),
        )
    };
    match (truth, predicted) {
        (Target::Classes { y, .. }, Prediction::Classes(p)) => {
            let prf = |average| metrics::precision_recall_f1(y, p, average);
            match metric {
                Metric::Accuracy => metrics::accuracy(y, p),
                Metric::PrecisionMacro => Ok(prf(Average::Macro)?.precision),
                Metric::RecallMacro => Ok(prf(Average::Macro)?.recall),
                Metric::F1Macro => Ok(prf(Average::Macro)?.f1),
                Metric::PrecisionWeighted => Ok(prf(Average::Weighted)?.precision),
                Metric::RecallWeighted => Ok(prf(Average::Weighted)?.recall),
                Metric::F1Weighted => Ok(prf(Average::Weighted)?.f1),
                Metric::RocAuc => {
                    let proba = proba.ok_or_else(mismatch)?;
                    let positive: Vec<bool> = y.iter().map(|&c| c == 1).collect();
                    let score: Vec<f64> = proba
                        .iter()
                        .map(|r| r.get(1).copied().unwrap_or(0.0))
                        .collect();
                    metrics::roc_auc(&positive, &score)
                }
                Metric::RocAucOvrMacro => metrics::roc_auc_ovr(y, proba.ok_or_else(mismatch)?),
                Metric::LogLoss => metrics::log_loss(y, proba.ok_or_else(mismatch)?),
                _ => Err(mismatch()),
            }
        }
        (Target::Values(y), Prediction::Values(p)) => match metric {
            Metric::Rmse => metrics::rmse(y, p),
            Metric::Mae => metrics::mae(y, p),
            Metric::R2 => metrics::r2(y, p),
            _ => Err(mismatch()),
        },
        _ => Err(mismatch()),
    }
}
