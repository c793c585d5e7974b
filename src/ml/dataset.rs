//! [`Dataset`]: named numeric features and a target, from query rows.

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
    /// number, else as text).
    Classes {
        /// The distinct labels, sorted; `y[i]` indexes it.
        classes: Vec<String>,
        /// Each row's class.
        y: Vec<usize>,
    },
    /// Each row's value.
    Values(Vec<f64>),
}

/// Named numeric feature columns and a target, one row per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The feature columns' names, in the order of `x`'s columns.
    pub features: Vec<String>,
    /// The features; a NULL is `NaN`.
    pub x: Matrix,
    /// The target column's name.
    pub target_name: String,
    /// The target.
    pub target: Target,
}

impl Dataset {
    /// Builds a dataset from rows (as `SqlHook::get_records` returns them):
    /// `features` are read as numbers (a JSON number, or text that parses as
    /// one; NULL is `NaN`), `target` as `kind` says. A missing column, a value
    /// that is not a number, a NULL target or no row at all is an
    /// [`ErrorKind::InvalidInput`] error naming the column and the row.
    pub fn from_rows(
        rows: &[Map<String, Value>],
        features: &[&str],
        target: &str,
        kind: TargetKind,
    ) -> Result<Self> {
        let Some(first) = rows.first() else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                "no rows: the extract is empty",
            ));
        };
        for column in features.iter().chain([&target]) {
            if !first.contains_key(*column) {
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
        let mut data = Vec::with_capacity(rows.len() * features.len());
        for (i, row) in rows.iter().enumerate() {
            for &column in features {
                data.push(number(row.get(column), column, i)?);
            }
        }
        let x = Matrix::new(rows.len(), features.len(), data)?;
        let target_values = match kind {
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
                        Some(Value::String(s)) => Ok((s.clone(), None)),
                        Some(Value::Number(n)) => Ok((n.to_string(), n.as_f64())),
                        Some(other) => Ok((other.to_string(), None)),
                    })
                    .collect::<Result<Vec<_>>>()?;
                encode_classes(labels)
            }
        };
        Ok(Dataset {
            features: features.iter().map(|s| s.to_string()).collect(),
            x,
            target_name: target.to_string(),
            target: target_values,
        })
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
/// `NaN` for NULL.
fn number(value: Option<&Value>, column: &str, row: usize) -> Result<f64> {
    let bad = |v: &Value| {
        let mut text = v.to_string();
        if text.len() > 40 {
            let cut = (0..=40)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            text.truncate(cut);
            text.push('…');
        }
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
