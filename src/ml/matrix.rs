//! A dense, row-major matrix of `f64`: the features of a [`Dataset`](super::Dataset).

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// A dense matrix of `f64`, row-major; `NaN` is a missing value.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// A matrix of `rows` × `cols` from its values, row after row. A length
    /// other than `rows * cols` is an [`ErrorKind::InvalidInput`] error.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "ml.matrix",
                format!(
                    "{} values cannot fill {rows} rows of {cols} columns",
                    data.len()
                ),
            ));
        }
        Ok(Matrix { rows, cols, data })
    }

    /// A matrix from rows of equal length (an error otherwise).
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self> {
        let cols = rows.first().map_or(0, Vec::len);
        if let Some(i) = rows.iter().position(|r| r.len() != cols) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "ml.matrix",
                format!(
                    "row {i} has {} values where row 0 has {cols}",
                    rows[i].len()
                ),
            ));
        }
        Ok(Matrix {
            rows: rows.len(),
            cols,
            data: rows.concat(),
        })
    }

    /// `self`'s columns, then `other`'s, row by row (an error when the row
    /// counts differ).
    pub fn hstack(&self, other: &Matrix) -> Result<Matrix> {
        if self.rows != other.rows {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "ml.matrix",
                format!(
                    "{} rows cannot be put beside {} rows",
                    other.rows, self.rows
                ),
            ));
        }
        let cols = self.cols + other.cols;
        let mut data = Vec::with_capacity(self.rows * cols);
        for i in 0..self.rows {
            data.extend_from_slice(self.row(i));
            data.extend_from_slice(other.row(i));
        }
        Ok(Matrix {
            rows: self.rows,
            cols,
            data,
        })
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The value at row `i`, column `j` (panics out of bounds, like indexing).
    pub fn get(&self, i: usize, j: usize) -> f64 {
        assert!(j < self.cols, "column {j} of {}", self.cols);
        self.data[i * self.cols + j]
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Column `j`'s values, top to bottom.
    pub fn column(&self, j: usize) -> impl Iterator<Item = f64> + '_ {
        assert!(j < self.cols, "column {j} of {}", self.cols);
        self.data.iter().skip(j).step_by(self.cols.max(1)).copied()
    }

    /// All values, row after row.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// The rows at `indices`, in that order.
    pub fn select_rows(&self, indices: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(indices.len() * self.cols);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Matrix {
            rows: indices.len(),
            cols: self.cols,
            data,
        }
    }

    /// Applies `f(column, value)` to every value.
    pub(crate) fn map_columns(&self, f: impl Fn(usize, f64) -> f64) -> Matrix {
        let cols = self.cols.max(1);
        let data = self
            .data
            .iter()
            .enumerate()
            .map(|(k, &v)| f(k % cols, v))
            .collect();
        Matrix {
            rows: self.rows,
            cols: self.cols,
            data,
        }
    }
}
