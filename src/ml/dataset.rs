//! [`Dataset`]: named numeric and categorical features and a target, from
//! rows (a query's, an object's, Redis'), as [`Columns`] says.

use serde_json::{Map, Value};

use super::Matrix;
use super::split::Split;
use crate::error::{Error, ErrorKind, Result};

const OP: &str = "ml.dataset";

/// What the target column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetKind {
    /// Class labels (text or numbers), for classifiers.
    Classes,
    /// Numbers, for regressors.
    Values,
}

/// The target of a [`Dataset`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Target {
    /// Class labels encoded as indices into `classes`, which is sorted (as
    /// scikit-learn's `LabelEncoder` sorts: numerically when every label is a
    /// number — or text that parses as one, as a CSV cell is — else as text).
    Classes {
        /// The distinct labels, sorted; `y[i]` indexes it.
        classes: Vec<String>,
        /// Each row's class.
        y: Vec<usize>,
    },
    /// Each row's value.
    Values(Vec<f64>),
}

/// A categorical feature column: its name and each row's category (`None`
/// for NULL).
#[derive(Debug, Clone, PartialEq)]
pub struct Categorical {
    /// The column's name.
    pub name: String,
    /// Each row's category.
    pub values: Vec<Option<String>>,
}

impl Categorical {
    /// A column with no missing value.
    pub fn new(
        name: impl Into<String>,
        values: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Categorical {
            name: name.into(),
            values: values.into_iter().map(|v| Some(v.into())).collect(),
        }
    }

    /// A column where `None` is a missing value.
    pub fn from_options<S: Into<String>>(
        name: impl Into<String>,
        values: impl IntoIterator<Item = Option<S>>,
    ) -> Self {
        Categorical {
            name: name.into(),
            values: values.into_iter().map(|v| v.map(Into::into)).collect(),
        }
    }

    fn select(&self, indices: &[usize]) -> Categorical {
        Categorical {
            name: self.name.clone(),
            values: indices.iter().map(|&i| self.values[i].clone()).collect(),
        }
    }
}

/// Which columns of the rows make a [`Dataset`]: numeric features,
/// categorical features, and the target.
///
/// ```
/// use gust::ml::Columns;
/// use serde_json::json;
///
/// let rows: Vec<_> = [
///     json!({"age": 23, "occupation": "Scientist", "credit_score": "Good"}),
///     json!({"age": "41", "occupation": null, "credit_score": "Poor"}),
/// ]
/// .iter()
/// .map(|v| v.as_object().unwrap().clone())
/// .collect();
/// let data = Columns::new("credit_score")
///     .numeric(["age"])
///     .categorical(["occupation"])
///     .read_rows(&rows)?;
/// assert_eq!(data.x.row(1), &[41.0]);
/// assert_eq!(data.categorical[0].values, [Some("Scientist".to_string()), None]);
/// # Ok::<(), gust::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    /// Numeric feature columns.
    pub numeric: Vec<String>,
    /// Categorical feature columns.
    pub categorical: Vec<String>,
    /// The target column.
    pub target: String,
    /// What the target holds.
    pub kind: TargetKind,
}

impl Columns {
    /// No feature yet, and `target` holding class labels.
    pub fn new(target: impl Into<String>) -> Self {
        Columns {
            numeric: Vec::new(),
            categorical: Vec::new(),
            target: target.into(),
            kind: TargetKind::Classes,
        }
    }

    /// Adds numeric feature columns (a JSON number, or text that parses as
    /// one; NULL is `NaN`).
    pub fn numeric(mut self, columns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.numeric.extend(columns.into_iter().map(Into::into));
        self
    }

    /// Adds categorical feature columns (any value, as text; NULL is
    /// missing), for a pipeline's [`encoder`](super::pipeline::Pipeline::encoder).
    pub fn categorical(mut self, columns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.categorical.extend(columns.into_iter().map(Into::into));
        self
    }

    /// What the target holds (default: class labels).
    pub fn target_kind(mut self, kind: TargetKind) -> Self {
        self.kind = kind;
        self
    }

    /// Reads `rows` (as `SqlHook::get_records`, an object's or Redis' rows
    /// give them). A missing column, a value that is not a number in a
    /// numeric column, a NULL target or no row at all is an
    /// [`ErrorKind::InvalidInput`] error naming the column and the row.
    pub fn read_rows(&self, rows: &[Map<String, Value>]) -> Result<Dataset> {
        let Some(first) = rows.first() else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                "no rows: the extract is empty",
            ));
        };
        let target = self.target.as_str();
        for column in self
            .numeric
            .iter()
            .chain(&self.categorical)
            .chain([&self.target])
        {
            if !first.contains_key(column) {
                let mut have: Vec<&str> = first.keys().map(String::as_str).collect();
                have.truncate(20);
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    OP,
                    format!("the rows have no column {column:?} (they have {have:?})"),
                )
                .with("column", column));
            }
        }
        let x = numeric_matrix(rows, &self.numeric)?;
        let categorical = categorical_columns(rows, &self.categorical);
        let target_values = match self.kind {
            TargetKind::Values => Target::Values(
                rows.iter()
                    .enumerate()
                    .map(|(i, r)| match number(r.get(target), target, i)? {
                        v if v.is_nan() => Err(null_target(target, i)),
                        v => Ok(v),
                    })
                    .collect::<Result<_>>()?,
            ),
            TargetKind::Classes => {
                let labels = rows
                    .iter()
                    .enumerate()
                    .map(|(i, r)| match r.get(target) {
                        None | Some(Value::Null) => Err(null_target(target, i)),
                        Some(Value::String(s)) => Ok((s.clone(), s.trim().parse::<f64>().ok())),
                        Some(Value::Number(n)) => Ok((n.to_string(), n.as_f64())),
                        Some(other) => Ok((other.to_string(), None)),
                    })
                    .collect::<Result<Vec<_>>>()?;
                encode_classes(labels)
            }
        };
        Ok(Dataset {
            features: self.numeric.clone(),
            x,
            categorical,
            target_name: self.target.clone(),
            target: target_values,
        })
    }
}

/// The numeric `columns` of `rows` as a matrix; a missing column in a row
/// or a NULL is `NaN`.
pub(crate) fn numeric_matrix(rows: &[Map<String, Value>], columns: &[String]) -> Result<Matrix> {
    let mut data = Vec::with_capacity(rows.len() * columns.len());
    for (i, row) in rows.iter().enumerate() {
        for column in columns {
            data.push(number(row.get(column), column, i)?);
        }
    }
    Matrix::new(rows.len(), columns.len(), data)
}

/// The categorical `columns` of `rows`; a missing column in a row or a NULL
/// is a missing category.
pub(crate) fn categorical_columns(
    rows: &[Map<String, Value>],
    columns: &[String],
) -> Vec<Categorical> {
    columns
        .iter()
        .map(|c| Categorical {
            name: c.clone(),
            values: rows.iter().map(|r| category(r.get(c))).collect(),
        })
        .collect()
}

/// A categorical value as text: a string as it is, a number or boolean as
/// JSON writes it, NULL (or no value) as missing.
fn category(value: Option<&Value>) -> Option<String> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// Named numeric and categorical feature columns and a target, one row per
/// sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The numeric feature columns' names, in the order of `x`'s columns.
    pub features: Vec<String>,
    /// The numeric features; a NULL is `NaN`.
    pub x: Matrix,
    /// The categorical feature columns (empty when there are none).
    pub categorical: Vec<Categorical>,
    /// The target column's name.
    pub target_name: String,
    /// The target.
    pub target: Target,
}

impl Dataset {
    /// Builds a dataset of numeric features from rows (as
    /// `SqlHook::get_records` returns them): `features` are read as numbers
    /// (a JSON number, or text that parses as one; NULL is `NaN`), `target` as
    /// `kind` says. The same as [`Columns::read_rows`], which also takes
    /// categorical columns.
    pub fn from_rows(
        rows: &[Map<String, Value>],
        features: &[&str],
        target: &str,
        kind: TargetKind,
    ) -> Result<Self> {
        Columns::new(target)
            .numeric(features.iter().copied())
            .target_kind(kind)
            .read_rows(rows)
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.x.rows()
    }

    /// Whether the dataset has no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The class of each row; an error for a numeric target.
    pub fn classes(&self) -> Result<&[usize]> {
        match &self.target {
            Target::Classes { y, .. } => Ok(y),
            Target::Values(_) => Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                format!(
                    "the target {:?} holds values, not classes",
                    self.target_name
                ),
            )),
        }
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let target = match &self.target {
            Target::Classes { classes, y } => Target::Classes {
                classes: classes.clone(),
                y: indices.iter().map(|&i| y[i]).collect(),
            },
            Target::Values(v) => Target::Values(indices.iter().map(|&i| v[i]).collect()),
        };
        Dataset {
            features: self.features.clone(),
            x: self.x.select_rows(indices),
            categorical: self.categorical.iter().map(|c| c.select(indices)).collect(),
            target_name: self.target_name.clone(),
            target,
        }
    }

    /// The training and test sets of `split` (stratified on the classes when
    /// it says so).
    pub fn split(&self, split: &Split) -> Result<(Dataset, Dataset)> {
        let classes = match &self.target {
            Target::Classes { y, .. } => Some(y.as_slice()),
            Target::Values(_) => None,
        };
        let (train, test) = split.indices(self.len(), classes)?;
        Ok((self.select(&train), self.select(&test)))
    }
}

fn null_target(target: &str, row: usize) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        OP,
        format!("row {row}: the target {target:?} is NULL"),
    )
    .with("column", target)
}

/// A feature value as a number: a JSON number, text that parses as one, or
/// `NaN` for NULL and empty text.
fn number(value: Option<&Value>, column: &str, row: usize) -> Result<f64> {
    let bad = |v: &Value| {
        let text = crate::error::shorten(&v.to_string());
        Error::new(
            ErrorKind::InvalidInput,
            OP,
            format!("row {row}: column {column:?} holds {text}, which is not a number"),
        )
        .with("column", column)
    };
    match value {
        None | Some(Value::Null) => Ok(f64::NAN),
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| bad(&Value::Number(n.clone()))),
        Some(Value::Bool(b)) => Ok(f64::from(u8::from(*b))),
        // An empty cell is missing, as pandas reads an empty CSV field.
        Some(Value::String(s)) if s.trim().is_empty() => Ok(f64::NAN),
        Some(v @ Value::String(s)) => s.trim().parse::<f64>().map_err(|_| bad(v)),
        Some(other) => Err(bad(other)),
    }
}

/// Sorted distinct labels and each row's index into them.
fn encode_classes(labels: Vec<(String, Option<f64>)>) -> Target {
    let numeric = labels.iter().all(|(_, n)| n.is_some());
    let mut classes: Vec<(String, Option<f64>)> = labels.clone();
    if numeric {
        classes.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal));
    } else {
        classes.sort_by(|a, b| a.0.cmp(&b.0));
    }
    classes.dedup_by(|a, b| a.0 == b.0);
    let names: Vec<String> = classes.into_iter().map(|(s, _)| s).collect();
    let y = labels
        .iter()
        .map(|(s, _)| names.iter().position(|c| c == s).unwrap_or(0))
        .collect();
    Target::Classes { classes: names, y }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(v: Value) -> Vec<Map<String, Value>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_object().unwrap().clone())
            .collect()
    }

    #[test]
    fn rows_become_features_and_sorted_classes() {
        let r = rows(json!([
            {"a": 1, "b": "2.5", "y": 10},
            {"a": null, "b": 3, "y": 2},
            {"a": 4.5, "b": "-1", "y": 10},
        ]));
        let d = Dataset::from_rows(&r, &["a", "b"], "y", TargetKind::Classes).unwrap();
        assert_eq!(d.x.row(0), &[1.0, 2.5]);
        assert!(d.x.get(1, 0).is_nan());
        // 2 sorts before 10 as numbers.
        assert_eq!(
            d.target,
            Target::Classes {
                classes: vec!["2".into(), "10".into()],
                y: vec![1, 0, 1]
            }
        );
        let v = Dataset::from_rows(&r, &["a"], "b", TargetKind::Values).unwrap();
        assert_eq!(v.target, Target::Values(vec![2.5, 3.0, -1.0]));
        assert_eq!(v.select(&[2, 0]).target, Target::Values(vec![-1.0, 2.5]));
    }

    #[test]
    fn bad_rows_are_named() {
        let r = rows(json!([{"a": 1, "y": "x"}, {"a": "seven", "y": "z"}]));
        let e = Dataset::from_rows(&r, &["a"], "y", TargetKind::Classes).unwrap_err();
        assert!(
            e.message().contains("row 1") && e.message().contains("\"seven\""),
            "{e}"
        );
        let e = Dataset::from_rows(&r, &["a"], "label", TargetKind::Classes).unwrap_err();
        assert!(e.message().contains("no column \"label\""), "{e}");
        let e = Dataset::from_rows(&[], &["a"], "y", TargetKind::Classes).unwrap_err();
        assert!(e.message().contains("empty"), "{e}");
        let r = rows(json!([{"a": 1, "y": null}]));
        let e = Dataset::from_rows(&r, &["a"], "y", TargetKind::Values).unwrap_err();
        assert!(e.message().contains("NULL"), "{e}");
    }
}
