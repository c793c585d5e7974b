//! Scalers with scikit-learn's semantics, column by column: [`RobustScaler`],
//! [`StandardScaler`], [`MinMaxScaler`]. Fitting ignores `NaN`s (missing
//! values) and a transform keeps them; a constant column gets the scale 1, so
//! nothing is divided by zero. The fitted scalers carry scikit-learn's
//! attribute names (`center_`, `scale_`, `mean_`, `var_`…) and serialize with
//! serde (as JSON, for a model's artifacts), so a pipeline applies at serving
//! time exactly what it learnt in training.

use serde::{Deserialize, Serialize};

use super::Matrix;
use crate::error::{Error, ErrorKind, Result};

const OP: &str = "ml.preprocessing";

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, OP, message)
}

/// A fitted transformer: the same transformation for the training data and
/// every later input.
pub trait Transform {
    /// The columns the transformer was fitted on.
    fn n_features(&self) -> usize;

    /// Transforms `x` column by column (a `NaN` stays `NaN`). Another column
    /// count than the fit's is an [`ErrorKind::InvalidInput`] error.
    fn transform(&self, x: &Matrix) -> Result<Matrix>;
}

fn check_columns(x: &Matrix, n: usize) -> Result<()> {
    if x.cols() != n {
        return Err(invalid(format!(
            "the input has {} columns where the scaler was fitted on {n}",
            x.cols()
        )));
    }
    Ok(())
}

fn check_fit_input(x: &Matrix) -> Result<()> {
    if x.rows() == 0 {
        return Err(invalid("cannot fit a scaler on no rows"));
    }
    if x.as_slice().iter().any(|v| v.is_infinite()) {
        return Err(invalid("the input holds an infinite value"));
    }
    Ok(())
}

/// scikit-learn's `_handle_zeros_in_scale`: a scale below 10 ε is 1.
fn handle_zeros(scale: f64) -> f64 {
    if scale < 10.0 * f64::EPSILON {
        1.0
    } else {
        scale
    }
}

/// The column's values without `NaN`s, sorted.
fn sorted_values(x: &Matrix, j: usize) -> Vec<f64> {
    let mut v: Vec<f64> = x.column(j).filter(|v| !v.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// numpy's `percentile` with the default `linear` method, on sorted values
/// (`NaN` when there are none), computed as numpy computes it.
#[cfg(test)]
fn percentile(sorted: &[f64], q: f64) -> f64 {
    match percentile_ranks(sorted.len(), q) {
        Some((lo, hi, gamma)) => lerp(sorted[lo], sorted[hi], gamma),
        None => f64::NAN,
    }
}

/// The two order statistics (0-based ranks) numpy's linear `percentile` of
/// `n` values interpolates between, and the weight of the upper one; `None`
/// for no value.
fn percentile_ranks(n: usize, q: f64) -> Option<(usize, usize, f64)> {
    if n == 0 {
        return None;
    }
    let q = q / 100.0;
    // numpy's _compute_virtual_index for the linear method (alpha = beta = 1),
    // term by term, so the rounding is numpy's.
    let (alpha, beta) = (1.0, 1.0);
    let virtual_index = n as f64 * q + (alpha + q * (1.0 - alpha - beta)) - 1.0;
    let below = virtual_index.floor();
    let gamma = virtual_index - below;
    let lo = (below.max(0.0) as usize).min(n - 1);
    let hi = ((below + 1.0).max(0.0) as usize).min(n - 1);
    Some((lo, hi, gamma))
}

/// numpy's `_lerp`: from the nearer end, for monotonicity.
fn lerp(a: f64, b: f64, gamma: f64) -> f64 {
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// The values of `v` at `ranks` (0-based positions in sorted order), found
/// by selection instead of a full sort: each rank partitions only what is
/// above the previous one. `v` is reordered.
fn order_statistics(v: &mut [f64], ranks: &[usize]) -> Vec<f64> {
    let mut wanted: Vec<usize> = ranks.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found = Vec::with_capacity(wanted.len());
    let mut start = 0;
    for k in wanted {
        let (_, nth, _) = v[start..].select_nth_unstable_by(k - start, f64::total_cmp);
        found.push((k, *nth));
        start = k + 1;
    }
    ranks
        .iter()
        .map(|r| {
            found
                .iter()
                .find(|(k, _)| k == r)
                .map_or(f64::NAN, |(_, v)| *v)
        })
        .collect()
}

/// A column's median and its `q_min` and `q_max` percentiles (numpy's
/// `nanmedian` and `nanpercentile`, linear), `NaN` for an all-`NaN` column.
fn robust_statistics(mut v: Vec<f64>, q_min: f64, q_max: f64) -> (f64, f64, f64) {
    let n = v.len();
    let (Some(low), Some(high)) = (percentile_ranks(n, q_min), percentile_ranks(n, q_max)) else {
        return (f64::NAN, f64::NAN, f64::NAN);
    };
    let median_ranks = if n % 2 == 1 {
        (n / 2, n / 2)
    } else {
        (n / 2 - 1, n / 2)
    };
    let ranks = [median_ranks.0, median_ranks.1, low.0, low.1, high.0, high.1];
    let at = order_statistics(&mut v, &ranks);
    let median = if n % 2 == 1 {
        at[0]
    } else {
        (at[0] + at[1]) / 2.0
    };
    (
        median,
        lerp(at[2], at[3], low.2),
        lerp(at[4], at[5], high.2),
    )
}

/// Each column's values without `NaN`s, in one pass over the rows.
fn columns_without_nan(x: &Matrix) -> Vec<Vec<f64>> {
    let mut columns: Vec<Vec<f64>> = (0..x.cols())
        .map(|_| Vec::with_capacity(x.rows()))
        .collect();
    for i in 0..x.rows() {
        for (column, &v) in columns.iter_mut().zip(x.row(i)) {
            if !v.is_nan() {
                column.push(v);
            }
        }
    }
    columns
}

/// numpy's `nanmedian` on sorted values.
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The inverse of the standard normal CDF (scipy's `norm.ppf`): Acklam's
/// approximation refined by two Halley steps on `erfc`, good to ~1e-15.
fn norm_ppf(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.383_577_518_672_69e2,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-03,
        3.224671290700398e-01,
        2.445134137142996e+00,
        3.754408661907416e+00,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let mut x = if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    for _ in 0..2 {
        let e = 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2) - p;
        let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
        x -= u / (1.0 + x * u / 2.0);
    }
    x
}

/// Scales by the median and an interquantile range, robust to outliers
/// (scikit-learn's `RobustScaler`): `(x - median) / (q_max - q_min)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustScaler {
    /// The percentiles of the range (default `(25, 75)`, the IQR).
    pub quantile_range: (f64, f64),
    /// Whether to subtract the median (default `true`).
    pub with_centering: bool,
    /// Whether to divide by the range (default `true`).
    pub with_scaling: bool,
    /// Whether to divide the range further so that normal data gets unit
    /// variance (default `false`).
    pub unit_variance: bool,
}

impl Default for RobustScaler {
    fn default() -> Self {
        RobustScaler {
            quantile_range: (25.0, 75.0),
            with_centering: true,
            with_scaling: true,
            unit_variance: false,
        }
    }
}

impl RobustScaler {
    /// scikit-learn's defaults: centering, scaling by the IQR.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the percentiles of the range (`0 <= min <= max <= 100`).
    pub fn quantile_range(mut self, min: f64, max: f64) -> Self {
        self.quantile_range = (min, max);
        self
    }

    /// Sets whether to subtract the median.
    pub fn with_centering(mut self, on: bool) -> Self {
        self.with_centering = on;
        self
    }

    /// Sets whether to divide by the range.
    pub fn with_scaling(mut self, on: bool) -> Self {
        self.with_scaling = on;
        self
    }

    /// Sets whether to make normal data unit variance.
    pub fn unit_variance(mut self, on: bool) -> Self {
        self.unit_variance = on;
        self
    }

    /// Learns each column's median and range, ignoring `NaN`s. An invalid
    /// range, no rows or an infinite value is an error.
    pub fn fit(&self, x: &Matrix) -> Result<FittedRobustScaler> {
        let (q_min, q_max) = self.quantile_range;
        if !(0.0 <= q_min && q_min <= q_max && q_max <= 100.0) {
            return Err(invalid(format!(
                "invalid quantile range: ({q_min}, {q_max})"
            )));
        }
        check_fit_input(x)?;
        // Columns on all cores: each is one selection pass, independent.
        let columns = columns_without_nan(x);
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, columns.len().max(1));
        let per_thread = columns.len().div_ceil(threads).max(1);
        let mut stats: Vec<(f64, f64, f64)> = Vec::with_capacity(columns.len());
        let mut chunks: Vec<Vec<Vec<f64>>> = Vec::new();
        let mut rest = columns.into_iter().peekable();
        while rest.peek().is_some() {
            chunks.push(rest.by_ref().take(per_thread).collect());
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .into_iter()
                            .map(|c| robust_statistics(c, q_min, q_max))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                // A selection does not panic on finite input (checked above).
                stats.extend(h.join().unwrap_or_default());
            }
        });
        if stats.len() != x.cols() {
            return Err(invalid(
                "a column's statistics could not be computed".to_string(),
            ));
        }
        let center = self
            .with_centering
            .then(|| stats.iter().map(|s| s.0).collect());
        let scale = self.with_scaling.then(|| {
            let adjust = if self.unit_variance {
                norm_ppf(q_max / 100.0) - norm_ppf(q_min / 100.0)
            } else {
                1.0
            };
            stats
                .iter()
                .map(|&(_, low, high)| {
                    let range = handle_zeros(high - low);
                    if self.unit_variance {
                        range / adjust
                    } else {
                        range
                    }
                })
                .collect()
        });
        Ok(FittedRobustScaler {
            n_features: x.cols(),
            center_: center,
            scale_: scale,
        })
    }
}

/// A fitted [`RobustScaler`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedRobustScaler {
    n_features: usize,
    /// Each column's median (`None` without centering).
    pub center_: Option<Vec<f64>>,
    /// Each column's range (`None` without scaling).
    pub scale_: Option<Vec<f64>>,
}

impl Transform for FittedRobustScaler {
    fn n_features(&self) -> usize {
        self.n_features
    }

    fn transform(&self, x: &Matrix) -> Result<Matrix> {
        check_columns(x, self.n_features)?;
        Ok(x.map_columns(|j, v| {
            let v = match &self.center_ {
                Some(c) => v - c[j],
                None => v,
            };
            match &self.scale_ {
                Some(s) => v / s[j],
                None => v,
            }
        }))
    }
}

impl FittedRobustScaler {
    /// See [`Transform::transform`].
    pub fn transform(&self, x: &Matrix) -> Result<Matrix> {
        Transform::transform(self, x)
    }
}

/// Scales to zero mean and unit variance (scikit-learn's `StandardScaler`):
/// `(x - mean) / std`, with the population standard deviation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardScaler {
    /// Whether to subtract the mean (default `true`).
    pub with_mean: bool,
    /// Whether to divide by the standard deviation (default `true`).
    pub with_std: bool,
}

impl Default for StandardScaler {
    fn default() -> Self {
        StandardScaler {
            with_mean: true,
            with_std: true,
        }
    }
}

/// A sum with Neumaier's compensation: as exact as numpy's pairwise sum or
/// better, so the two agree to the last bits on ordinary data.
fn sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for v in values {
        let t = s + v;
        c += if s.abs() >= v.abs() {
            (s - t) + v
        } else {
            (v - t) + s
        };
        s = t;
    }
    s + c
}

impl StandardScaler {
    /// Centering and scaling.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets whether to subtract the mean.
    pub fn with_mean(mut self, on: bool) -> Self {
        self.with_mean = on;
        self
    }

    /// Sets whether to divide by the standard deviation.
    pub fn with_std(mut self, on: bool) -> Self {
        self.with_std = on;
        self
    }

    /// Learns each column's mean and variance, ignoring `NaN`s (scikit-learn's
    /// corrected two-pass algorithm); a near-constant column (variance within
    /// rounding of 0) gets the scale 1.
    pub fn fit(&self, x: &Matrix) -> Result<FittedStandardScaler> {
        check_fit_input(x)?;
        let (mut means, mut vars, mut scales) = (Vec::new(), Vec::new(), Vec::new());
        for j in 0..x.cols() {
            let values = || x.column(j).filter(|v| !v.is_nan());
            let n = values().count() as f64;
            let mean = sum(values()) / n;
            let correction = sum(values().map(|v| v - mean));
            let squares = sum(values().map(|v| (v - mean) * (v - mean)));
            let var = (squares - correction * correction / n) / n;
            let eps = f64::EPSILON;
            let upper_bound = n * eps * var + (n * mean * eps).powi(2);
            let scale = if var <= upper_bound { 1.0 } else { var.sqrt() };
            means.push(mean);
            vars.push(var);
            scales.push(scale);
        }
        Ok(FittedStandardScaler {
            n_features: x.cols(),
            with_mean: self.with_mean,
            mean_: means,
            var_: vars,
            scale_: self.with_std.then_some(scales),
        })
    }
}

/// A fitted [`StandardScaler`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedStandardScaler {
    n_features: usize,
    with_mean: bool,
    /// Each column's mean.
    pub mean_: Vec<f64>,
    /// Each column's (population) variance.
    pub var_: Vec<f64>,
    /// Each column's standard deviation (1 for a constant column; `None`
    /// without scaling).
    pub scale_: Option<Vec<f64>>,
}

impl Transform for FittedStandardScaler {
    fn n_features(&self) -> usize {
        self.n_features
    }

    fn transform(&self, x: &Matrix) -> Result<Matrix> {
        check_columns(x, self.n_features)?;
        Ok(x.map_columns(|j, v| {
            let v = if self.with_mean { v - self.mean_[j] } else { v };
            match &self.scale_ {
                Some(s) => v / s[j],
                None => v,
            }
        }))
    }
}

impl FittedStandardScaler {
    /// See [`Transform::transform`].
    pub fn transform(&self, x: &Matrix) -> Result<Matrix> {
        Transform::transform(self, x)
    }
}

/// Scales each column into a range (scikit-learn's `MinMaxScaler`):
/// `x * scale + min` with `scale = (hi - lo) / (max - min)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinMaxScaler {
    /// The target range (default `(0, 1)`).
    pub feature_range: (f64, f64),
    /// Whether transformed values outside the range are clipped to it
    /// (default `false`).
    pub clip: bool,
}

impl Default for MinMaxScaler {
    fn default() -> Self {
        MinMaxScaler {
            feature_range: (0.0, 1.0),
            clip: false,
        }
    }
}

impl MinMaxScaler {
    /// Into `[0, 1]`, not clipped.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the target range (`lo < hi`).
    pub fn feature_range(mut self, lo: f64, hi: f64) -> Self {
        self.feature_range = (lo, hi);
        self
    }

    /// Sets whether to clip to the range.
    pub fn clip(mut self, on: bool) -> Self {
        self.clip = on;
        self
    }

    /// Learns each column's minimum and maximum, ignoring `NaN`s.
    pub fn fit(&self, x: &Matrix) -> Result<FittedMinMaxScaler> {
        let (lo, hi) = self.feature_range;
        if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
            return Err(invalid(format!(
                "the feature range ({lo}, {hi}) is not increasing"
            )));
        }
        check_fit_input(x)?;
        let (mut data_min, mut data_max, mut scale, mut min) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for j in 0..x.cols() {
            let values = || x.column(j).filter(|v| !v.is_nan());
            let (dmin, dmax) = if values().next().is_none() {
                (f64::NAN, f64::NAN)
            } else {
                (
                    values().fold(f64::INFINITY, f64::min),
                    values().fold(f64::NEG_INFINITY, f64::max),
                )
            };
            let s = (hi - lo) / handle_zeros(dmax - dmin);
            data_min.push(dmin);
            data_max.push(dmax);
            scale.push(s);
            min.push(lo - dmin * s);
        }
        Ok(FittedMinMaxScaler {
            n_features: x.cols(),
            feature_range: self.feature_range,
            clip: self.clip,
            data_min_: data_min,
            data_max_: data_max,
            scale_: scale,
            min_: min,
        })
    }
}

/// A fitted [`MinMaxScaler`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedMinMaxScaler {
    n_features: usize,
    feature_range: (f64, f64),
    clip: bool,
    /// Each column's minimum.
    pub data_min_: Vec<f64>,
    /// Each column's maximum.
    pub data_max_: Vec<f64>,
    /// Each column's factor.
    pub scale_: Vec<f64>,
    /// Each column's offset after the factor.
    pub min_: Vec<f64>,
}

impl Transform for FittedMinMaxScaler {
    fn n_features(&self) -> usize {
        self.n_features
    }

    fn transform(&self, x: &Matrix) -> Result<Matrix> {
        check_columns(x, self.n_features)?;
        let (lo, hi) = self.feature_range;
        Ok(x.map_columns(|j, v| {
            let v = v * self.scale_[j] + self.min_[j];
            if self.clip && !v.is_nan() {
                v.clamp(lo, hi)
            } else {
                v
            }
        }))
    }
}

impl FittedMinMaxScaler {
    /// See [`Transform::transform`].
    pub fn transform(&self, x: &Matrix) -> Result<Matrix> {
        Transform::transform(self, x)
    }
}

/// How [`SimpleImputer`] fills a missing value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ImputeStrategy {
    /// The column's mean.
    Mean,
    /// The column's median.
    Median,
    /// The column's most frequent value (the smallest among ties, as
    /// scikit-learn).
    MostFrequent,
}

/// Fills missing values (`NaN`) column by column (scikit-learn's
/// `SimpleImputer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimpleImputer {
    /// The statistic that fills a column's gaps.
    pub strategy: ImputeStrategy,
}

impl SimpleImputer {
    /// An imputer with `strategy`.
    pub fn new(strategy: ImputeStrategy) -> Self {
        SimpleImputer { strategy }
    }

    /// Learns each column's statistic from its values. A column with no value
    /// at all is an error (scikit-learn would drop it).
    pub fn fit(&self, x: &Matrix) -> Result<FittedSimpleImputer> {
        check_fit_input(x)?;
        let mut statistics = Vec::with_capacity(x.cols());
        for j in 0..x.cols() {
            let v = sorted_values(x, j);
            if v.is_empty() {
                return Err(invalid(format!("column {j} has no value to impute from")));
            }
            statistics.push(match self.strategy {
                ImputeStrategy::Mean => sum(v.iter().copied()) / v.len() as f64,
                ImputeStrategy::Median => median(&v),
                ImputeStrategy::MostFrequent => {
                    // Runs of equal values in sorted order: the first longest
                    // run is the smallest most frequent value.
                    let (mut best, mut best_len, mut start) = (v[0], 0, 0);
                    for i in 1..=v.len() {
                        if i == v.len() || v[i] != v[start] {
                            if i - start > best_len {
                                best = v[start];
                                best_len = i - start;
                            }
                            start = i;
                        }
                    }
                    best
                }
            });
        }
        Ok(FittedSimpleImputer {
            statistics_: statistics,
        })
    }
}

/// A fitted [`SimpleImputer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedSimpleImputer {
    /// The value that fills each column's gaps.
    pub statistics_: Vec<f64>,
}

impl Transform for FittedSimpleImputer {
    fn n_features(&self) -> usize {
        self.statistics_.len()
    }

    fn transform(&self, x: &Matrix) -> Result<Matrix> {
        check_columns(x, self.statistics_.len())?;
        Ok(x.map_columns(|j, v| if v.is_nan() { self.statistics_[j] } else { v }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imputer_fills_gaps() {
        let x = m(&[
            &[1.0, 2.0],
            &[f64::NAN, 2.0],
            &[3.0, 5.0],
            &[3.0, f64::NAN],
            &[1.0, 5.0],
        ]);
        for (strategy, stats) in [
            (ImputeStrategy::Mean, vec![2.0, 3.5]),
            (ImputeStrategy::Median, vec![2.0, 3.5]),
            (ImputeStrategy::MostFrequent, vec![1.0, 2.0]),
        ] {
            let f = SimpleImputer::new(strategy).fit(&x).unwrap();
            assert_eq!(f.statistics_, stats, "{strategy:?}");
            let t = Transform::transform(&f, &x).unwrap();
            assert_eq!(t.get(1, 0), stats[0]);
        }
        let empty = m(&[&[f64::NAN], &[f64::NAN]]);
        assert!(
            SimpleImputer::new(ImputeStrategy::Mean)
                .fit(&empty)
                .is_err()
        );
    }

    fn m(rows: &[&[f64]]) -> Matrix {
        Matrix::from_rows(&rows.iter().map(|r| r.to_vec()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn selected_statistics_equal_sorted_ones() {
        // Duplicates, negatives, every length from 1 to 40, several ranges.
        let mut state = 0x9e37_79b9_u64;
        for n in 1..=40usize {
            let v: Vec<f64> = (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 33) % 7) as f64 - 3.0 + if n % 3 == 0 { 0.5 } else { 0.0 }
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            for (lo, hi) in [(25.0, 75.0), (0.0, 100.0), (10.0, 90.0), (33.3, 66.7)] {
                let (m, a, b) = robust_statistics(v.clone(), lo, hi);
                assert_eq!(m.to_bits(), median(&sorted).to_bits(), "n={n} median");
                assert_eq!(
                    a.to_bits(),
                    percentile(&sorted, lo).to_bits(),
                    "n={n} q={lo}"
                );
                assert_eq!(
                    b.to_bits(),
                    percentile(&sorted, hi).to_bits(),
                    "n={n} q={hi}"
                );
            }
        }
        assert!(robust_statistics(Vec::new(), 25.0, 75.0).0.is_nan());
    }

    #[test]
    fn robust_scaler_ignores_nans_and_keeps_constant_columns() {
        let x = m(&[
            &[1.0, 5.0],
            &[2.0, 5.0],
            &[f64::NAN, 5.0],
            &[4.0, 5.0],
            &[100.0, 5.0],
        ]);
        let f = RobustScaler::new().fit(&x).unwrap();
        // Column 0 without the NaN: [1, 2, 4, 100] → median 3, q25 1.75, q75 28.
        assert_eq!(f.center_, Some(vec![3.0, 5.0]));
        assert_eq!(f.scale_, Some(vec![28.0 - 1.75, 1.0]));
        let t = f.transform(&x).unwrap();
        assert!(t.get(2, 0).is_nan());
        assert_eq!(t.get(0, 1), 0.0);
        assert!(f.transform(&m(&[&[1.0]])).is_err());
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(
            serde_json::from_str::<FittedRobustScaler>(&json).unwrap(),
            f
        );
    }

    #[test]
    fn norm_ppf_matches_scipy() {
        // scipy.stats.norm.ppf
        assert!((norm_ppf(0.75) - 0.6744897501960817).abs() < 1e-15);
        assert!((norm_ppf(0.01) - -2.3263478740408408).abs() < 1e-14);
        assert!((norm_ppf(0.975) - 1.959963984540054).abs() < 1e-14);
        assert_eq!(norm_ppf(0.5), 0.0);
    }

    #[test]
    fn standard_and_min_max() {
        let x = m(&[&[1.0, 3.0], &[2.0, 3.0], &[3.0, 3.0]]);
        let f = StandardScaler::new().fit(&x).unwrap();
        assert_eq!(f.mean_, vec![2.0, 3.0]);
        assert_eq!(f.scale_, Some(vec![(2.0f64 / 3.0).sqrt(), 1.0]));
        let g = MinMaxScaler::new()
            .feature_range(-1.0, 1.0)
            .fit(&x)
            .unwrap();
        let t = g.transform(&x).unwrap();
        assert_eq!(t.column(0).collect::<Vec<_>>(), vec![-1.0, 0.0, 1.0]);
        assert!(MinMaxScaler::new().feature_range(1.0, 1.0).fit(&x).is_err());
    }
}
