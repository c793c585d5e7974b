//! Categorical columns into numbers, with scikit-learn's semantics:
//! [`OneHotEncoder`] (a 0/1 column per category) and [`OrdinalEncoder`] (a
//! category's index). Categories are learnt at fit time and sorted as
//! scikit-learn sorts them (text order, a missing value last), so the columns
//! and codes equal scikit-learn's on the same data.
//!
//! A [`Pipeline`](super::pipeline::Pipeline) applies its encoder to the
//! dataset's categorical columns and appends the result after the numeric
//! columns, which went through the transformer steps (scikit-learn's
//! `ColumnTransformer([("num", …, numeric), ("cat", encoder, categorical)])`):
//! scalers never see the 0/1 columns.

use serde::{Deserialize, Serialize};

use super::Matrix;
use super::dataset::Categorical;
use crate::error::{Error, ErrorKind, Result};

const OP: &str = "ml.encoder";

/// What an encoder does with a category it did not see at fit time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Unknown {
    /// An [`ErrorKind::InvalidInput`] error naming the column, row and value
    /// (scikit-learn's `handle_unknown="error"`, its default).
    #[default]
    Error,
    /// All zeros for one-hot (`handle_unknown="ignore"`); for ordinal, see
    /// [`OrdinalEncoder::unknown_value`].
    Ignore,
}

/// A 0/1 column per category of each categorical column, named
/// `<column>_<category>` as scikit-learn's `get_feature_names_out` names
/// them. A missing value is a category of its own (`<column>_None`, sorted
/// last), as in scikit-learn ≥ 1.2.
///
/// ```
/// use gust::ml::encoding::{OneHotEncoder, Unknown};
/// use gust::ml::Categorical;
///
/// let mix = Categorical::new("credit_mix", ["Good", "_", "Bad", "Good"]);
/// let fitted = OneHotEncoder::new().handle_unknown(Unknown::Ignore).fit(&[mix])?;
/// assert_eq!(fitted.feature_names(), ["credit_mix_Bad", "credit_mix_Good", "credit_mix__"]);
/// let new = Categorical::new("credit_mix", ["_", "Standard"]);
/// let x = fitted.transform(&[new])?;
/// assert_eq!(x.row(0), &[0.0, 0.0, 1.0]);
/// assert_eq!(x.row(1), &[0.0, 0.0, 0.0]); // unknown: ignored
/// # Ok::<(), gust::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OneHotEncoder {
    /// What an unseen category becomes (default: an error).
    #[serde(default)]
    pub handle_unknown: Unknown,
}

impl OneHotEncoder {
    /// An encoder that refuses unseen categories.
    pub fn new() -> Self {
        OneHotEncoder::default()
    }

    /// What an unseen category becomes.
    pub fn handle_unknown(mut self, unknown: Unknown) -> Self {
        self.handle_unknown = unknown;
        self
    }

    /// Learns each column's categories.
    pub fn fit(&self, columns: &[Categorical]) -> Result<FittedEncoder> {
        FittedEncoder::fit(Encoder::OneHot(self.clone()), columns)
    }
}

/// Each category's index among the column's sorted categories, as a number.
/// A missing value is a category of its own, sorted last, as scikit-learn
/// encodes `None` (a NULL read by pandas from SQL; pandas' `NaN` from
/// `read_csv` would instead stay `NaN` there).
///
/// ```
/// use gust::ml::encoding::OrdinalEncoder;
/// use gust::ml::Categorical;
///
/// let col = Categorical::from_options("occupation", [Some("Lawyer"), None, Some("Doctor")]);
/// let fitted = OrdinalEncoder::new().unknown_value(-1.0).fit(&[col])?;
/// let x = fitted.transform(&[Categorical::new("occupation", ["Lawyer", "Pilot"])])?;
/// assert_eq!(x.row(0), &[1.0]);
/// assert_eq!(x.row(1), &[-1.0]);
/// # Ok::<(), gust::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OrdinalEncoder {
    /// The code of an unseen category; `None` (default) makes it an error
    /// (scikit-learn's `handle_unknown="use_encoded_value"` with
    /// `unknown_value`, else `"error"`).
    #[serde(default)]
    pub unknown_value: Option<f64>,
}

impl OrdinalEncoder {
    /// An encoder that refuses unseen categories.
    pub fn new() -> Self {
        OrdinalEncoder::default()
    }

    /// Encodes an unseen category as `value` instead of failing.
    pub fn unknown_value(mut self, value: f64) -> Self {
        self.unknown_value = Some(value);
        self
    }

    /// Learns each column's categories.
    pub fn fit(&self, columns: &[Categorical]) -> Result<FittedEncoder> {
        FittedEncoder::fit(Encoder::Ordinal(self.clone()), columns)
    }
}

/// The encoder of a [`Pipeline`](super::pipeline::Pipeline)'s categorical
/// columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "encoder", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Encoder {
    /// A 0/1 column per category.
    OneHot(OneHotEncoder),
    /// A category's index.
    Ordinal(OrdinalEncoder),
}

impl From<OneHotEncoder> for Encoder {
    fn from(e: OneHotEncoder) -> Self {
        Encoder::OneHot(e)
    }
}

impl From<OrdinalEncoder> for Encoder {
    fn from(e: OrdinalEncoder) -> Self {
        Encoder::Ordinal(e)
    }
}

impl Encoder {
    /// Learns each column's categories.
    pub fn fit(&self, columns: &[Categorical]) -> Result<FittedEncoder> {
        FittedEncoder::fit(self.clone(), columns)
    }
}

/// An [`Encoder`] with the categories it learnt; serializes with the
/// pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedEncoder {
    /// The encoder.
    pub encoder: Encoder,
    /// The columns it encodes, in order.
    pub columns: Vec<String>,
    /// Each column's categories, sorted (`None`, a missing value, last).
    pub categories: Vec<Vec<Option<String>>>,
}

impl FittedEncoder {
    fn fit(encoder: Encoder, columns: &[Categorical]) -> Result<Self> {
        let categories = columns
            .iter()
            .map(|c| {
                let mut seen: Vec<&str> = c.values.iter().flatten().map(String::as_str).collect();
                seen.sort_unstable();
                seen.dedup();
                let mut cats: Vec<Option<String>> =
                    seen.into_iter().map(|s| Some(s.to_string())).collect();
                if c.values.iter().any(Option::is_none) {
                    cats.push(None);
                }
                cats
            })
            .collect();
        Ok(FittedEncoder {
            encoder,
            columns: columns.iter().map(|c| c.name.clone()).collect(),
            categories,
        })
    }

    /// The names of the columns [`transform`](Self::transform) gives:
    /// `<column>_<category>` for one-hot, the column's own name for ordinal.
    pub fn feature_names(&self) -> Vec<String> {
        match self.encoder {
            Encoder::OneHot(_) => self
                .columns
                .iter()
                .zip(&self.categories)
                .flat_map(|(col, cats)| {
                    cats.iter()
                        .map(move |c| format!("{col}_{}", c.as_deref().unwrap_or("None")))
                })
                .collect(),
            Encoder::Ordinal(_) => self.columns.clone(),
        }
    }

    /// Encodes `columns`, which must be the fitted ones, in order.
    pub fn transform(&self, columns: &[Categorical]) -> Result<Matrix> {
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        if names != self.columns {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                format!(
                    "the categorical columns are {names:?} where the encoder was fitted on {:?}",
                    self.columns
                ),
            ));
        }
        let rows = columns.first().map_or(0, |c| c.values.len());
        if let Some(c) = columns.iter().find(|c| c.values.len() != rows) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                format!(
                    "column {:?} has {} values where {:?} has {rows}",
                    c.name,
                    c.values.len(),
                    columns[0].name
                ),
            ));
        }
        let width = self.feature_names().len();
        let mut data = Vec::with_capacity(rows * width);
        for i in 0..rows {
            for (column, cats) in columns.iter().zip(&self.categories) {
                let value = &column.values[i];
                let index = cats.iter().position(|c| c == value);
                match &self.encoder {
                    Encoder::OneHot(e) => {
                        if index.is_none() && e.handle_unknown == Unknown::Error {
                            return Err(unknown(&column.name, i, value));
                        }
                        data.extend(
                            cats.iter().enumerate().map(
                                |(k, _)| {
                                    if Some(k) == index { 1.0 } else { 0.0 }
                                },
                            ),
                        );
                    }
                    Encoder::Ordinal(e) => data.push(match index {
                        Some(k) => k as f64,
                        None => match e.unknown_value {
                            Some(v) => v,
                            None => return Err(unknown(&column.name, i, value)),
                        },
                    }),
                }
            }
        }
        Matrix::new(rows, width, data)
    }
}

fn unknown(column: &str, row: usize, value: &Option<String>) -> Error {
    let shown = match value {
        Some(v) => format!("{v:?}"),
        None => "a missing value".to_string(),
    };
    Error::new(
        ErrorKind::InvalidInput,
        OP,
        format!("row {row}: column {column:?} holds {shown}, a category not seen in training"),
    )
    .with("column", column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_sorts_keeps_missing_last_and_refuses_unknown_by_default() {
        let col = Categorical::from_options("c", [Some("b"), None, Some("a"), Some("b")]);
        let fitted = OneHotEncoder::new()
            .fit(std::slice::from_ref(&col))
            .unwrap();
        assert_eq!(fitted.feature_names(), ["c_a", "c_b", "c_None"]);
        let x = fitted.transform(&[col]).unwrap();
        assert_eq!(x.row(0), &[0.0, 1.0, 0.0]);
        assert_eq!(x.row(1), &[0.0, 0.0, 1.0]);
        assert_eq!(x.row(2), &[1.0, 0.0, 0.0]);
        let e = fitted
            .transform(&[Categorical::new("c", ["z"])])
            .unwrap_err();
        assert!(
            e.message().contains("\"z\"") && e.message().contains("row 0"),
            "{e}"
        );
        let e = fitted
            .transform(&[Categorical::new("d", ["a"])])
            .unwrap_err();
        assert!(e.message().contains("fitted on"), "{e}");
    }

    #[test]
    fn ordinal_codes_missing_last_and_unknown_when_told() {
        let cols = [
            Categorical::from_options("c", [Some("y"), None, Some("x")]),
            Categorical::new("d", ["2", "10", "2"]),
        ];
        let fitted = OrdinalEncoder::new().fit(&cols).unwrap();
        assert_eq!(fitted.feature_names(), ["c", "d"]);
        let x = fitted.transform(&cols).unwrap();
        assert_eq!(x.row(0), &[1.0, 1.0]);
        assert_eq!(x.get(1, 0), 2.0);
        // Text order, as scikit-learn sorts object columns: "10" < "2".
        assert_eq!(x.get(1, 1), 0.0);
        let new = [Categorical::new("c", ["w"]), Categorical::new("d", ["2"])];
        assert!(fitted.transform(&new).is_err());
        let lenient = OrdinalEncoder::new()
            .unknown_value(-1.0)
            .fit(&cols)
            .unwrap();
        assert_eq!(lenient.transform(&new).unwrap().row(0), &[-1.0, 1.0]);
    }
}
