//! Metrics with scikit-learn's definitions. Classes are indices (a
//! [`Dataset`](super::Dataset)'s codes); probabilities are one row per sample,
//! one column per class.
//!
//! Names say which average they take, because MLflow's autologging logs other
//! ones under similar names (`training_f1_score` is *weighted*, and its
//! `roc_auc` of a multiclass model is one-vs-one): gust logs these as
//! `accuracy`, `precision_macro`, `recall_macro`, `f1_macro`,
//! `precision_weighted`, `recall_weighted`, `f1_weighted`, `roc_auc` (binary),
//! `roc_auc_ovr_macro`, `log_loss`, `rmse`, `mae`, `r2` — see [`Metric`].
//!
//! Where scikit-learn divides by zero it returns 0 (its `zero_division` default)
//! and so does gust. A ROC AUC over one class is not defined: scikit-learn
//! warns and returns NaN, gust returns an [`ErrorKind::InvalidInput`] error.

use crate::error::{Error, ErrorKind, Result};

const OP: &str = "ml.metrics";

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, OP, message)
}

fn same_length(a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(invalid(format!("{a} true values against {b} predictions")));
    }
    if a == 0 {
        return Err(invalid("no samples"));
    }
    Ok(())
}

/// A metric by name, and which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Metric {
    /// [`accuracy`].
    Accuracy,
    /// [`precision_recall_f1`] with [`Average::Macro`], the precision.
    PrecisionMacro,
    /// The same, the recall.
    RecallMacro,
    /// The same, F1.
    F1Macro,
    /// [`precision_recall_f1`] with [`Average::Weighted`], the precision.
    PrecisionWeighted,
    /// The same, the recall.
    RecallWeighted,
    /// The same, F1.
    F1Weighted,
    /// [`roc_auc`] of a binary classifier.
    RocAuc,
    /// [`roc_auc_ovr`]: one-vs-rest, macro average.
    RocAucOvrMacro,
    /// [`log_loss`] (lower is better).
    LogLoss,
    /// [`rmse`] (lower is better).
    Rmse,
    /// [`mae`] (lower is better).
    Mae,
    /// [`r2`].
    R2,
}

impl Metric {
    /// The name it is logged under.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::PrecisionMacro => "precision_macro",
            Metric::RecallMacro => "recall_macro",
            Metric::F1Macro => "f1_macro",
            Metric::PrecisionWeighted => "precision_weighted",
            Metric::RecallWeighted => "recall_weighted",
            Metric::F1Weighted => "f1_weighted",
            Metric::RocAuc => "roc_auc",
            Metric::RocAucOvrMacro => "roc_auc_ovr_macro",
            Metric::LogLoss => "log_loss",
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
            Metric::R2 => "r2",
        }
    }

    /// Whether a higher value is better.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::LogLoss | Metric::Rmse | Metric::Mae)
    }

    /// Whether `a` is a better value of this metric than `b` (strictly:
    /// equal is not better).
    pub fn better(self, a: f64, b: f64) -> bool {
        if self.higher_is_better() {
            a > b
        } else {
            a < b
        }
    }
}

/// The share of samples whose class is predicted right.
pub fn accuracy(y_true: &[usize], y_pred: &[usize]) -> Result<f64> {
    same_length(y_true.len(), y_pred.len())?;
    let right = y_true.iter().zip(y_pred).filter(|(a, b)| a == b).count();
    Ok(right as f64 / y_true.len() as f64)
}

/// Counts of (true class, predicted class), over the classes that occur in
/// either, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    /// The classes, sorted: row and column `k` are `labels[k]`.
    pub labels: Vec<usize>,
    /// `counts[t][p]`: samples of class `labels[t]` predicted `labels[p]`.
    pub counts: Vec<Vec<u64>>,
}

/// The confusion matrix (scikit-learn's `confusion_matrix`).
pub fn confusion_matrix(y_true: &[usize], y_pred: &[usize]) -> Result<ConfusionMatrix> {
    same_length(y_true.len(), y_pred.len())?;
    let mut labels: Vec<usize> = y_true.iter().chain(y_pred).copied().collect();
    labels.sort_unstable();
    labels.dedup();
    let at = |c: usize| labels.binary_search(&c).unwrap_or(0);
    let mut counts = vec![vec![0u64; labels.len()]; labels.len()];
    for (&t, &p) in y_true.iter().zip(y_pred) {
        counts[at(t)][at(p)] += 1;
    }
    Ok(ConfusionMatrix { labels, counts })
}

/// How per-class scores are averaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Average {
    /// The plain mean over the classes.
    Macro,
    /// The mean weighted by each class's true count (MLflow autolog's).
    Weighted,
}

/// Precision, recall and F1 of a classifier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrecisionRecallF1 {
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
}

/// Precision, recall and F1 per class, averaged (scikit-learn's
/// `precision_recall_fscore_support` over the classes in either vector; a
/// division by zero gives 0).
pub fn precision_recall_f1(
    y_true: &[usize],
    y_pred: &[usize],
    average: Average,
) -> Result<PrecisionRecallF1> {
    let cm = confusion_matrix(y_true, y_pred)?;
    let k = cm.labels.len();
    let divide = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
    let (mut p, mut r, mut f, mut w) = (vec![], vec![], vec![], vec![]);
    for c in 0..k {
        let tp = cm.counts[c][c] as f64;
        let true_sum: f64 = cm.counts[c].iter().sum::<u64>() as f64;
        let pred_sum: f64 = cm.counts.iter().map(|row| row[c]).sum::<u64>() as f64;
        p.push(divide(tp, pred_sum));
        r.push(divide(tp, true_sum));
        f.push(divide(2.0 * tp, true_sum + pred_sum));
        w.push(true_sum);
    }
    let mean = |v: &[f64]| match average {
        Average::Macro => v.iter().sum::<f64>() / k as f64,
        Average::Weighted => {
            let total: f64 = w.iter().sum();
            divide(v.iter().zip(&w).map(|(x, w)| x * w).sum(), total)
        }
    };
    Ok(PrecisionRecallF1 {
        precision: mean(&p),
        recall: mean(&r),
        f1: mean(&f),
    })
}

/// The area under the ROC curve of a binary classifier: `positive[i]` whether
/// sample `i` is of the positive class, `score[i]` its score (e.g. the
/// positive class's probability). Ties in the score count half, as in
/// scikit-learn's trapezoids.
pub fn roc_auc(positive: &[bool], score: &[f64]) -> Result<f64> {
    same_length(positive.len(), score.len())?;
    if score.iter().any(|s| s.is_nan()) {
        return Err(invalid("a score is NaN"));
    }
    let n_pos = positive.iter().filter(|&&p| p).count();
    if n_pos == 0 || n_pos == positive.len() {
        return Err(invalid(
            "only one class is present in y_true: ROC AUC is not defined",
        ));
    }
    // Descending scores; the curve steps at each distinct score.
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let (mut tps, mut fps) = (0.0f64, 0.0f64);
    let mut points = vec![(0.0f64, 0.0f64)];
    for (k, &i) in order.iter().enumerate() {
        if positive[i] {
            tps += 1.0;
        } else {
            fps += 1.0;
        }
        let last_of_score = order.get(k + 1).is_none_or(|&next| score[next] != score[i]);
        if last_of_score {
            points.push((fps, tps));
        }
    }
    let (fp_total, tp_total) = (fps, tps);
    let area = points
        .windows(2)
        .map(|w| {
            let (x0, y0) = (w[0].0 / fp_total, w[0].1 / tp_total);
            let (x1, y1) = (w[1].0 / fp_total, w[1].1 / tp_total);
            (x1 - x0) * (y1 + y0) / 2.0
        })
        .sum();
    Ok(area)
}

/// One-vs-rest ROC AUC of a multiclass classifier, the macro average over the
/// classes (scikit-learn's `roc_auc_score(multi_class="ovr")`): `proba[i][c]`
/// the probability of class `c` for sample `i`. Every class must occur in
/// `y_true`.
pub fn roc_auc_ovr(y_true: &[usize], proba: &[Vec<f64>]) -> Result<f64> {
    same_length(y_true.len(), proba.len())?;
    let k = proba[0].len();
    if proba.iter().any(|r| r.len() != k) || y_true.iter().any(|&c| c >= k) {
        return Err(invalid(format!(
            "every row of probabilities must have one column per class ({k})"
        )));
    }
    let mut total = 0.0;
    for c in 0..k {
        let positive: Vec<bool> = y_true.iter().map(|&t| t == c).collect();
        let score: Vec<f64> = proba.iter().map(|r| r[c]).collect();
        total +=
            roc_auc(&positive, &score).map_err(|e| e.map_message(|m| format!("class {c}: {m}")))?;
    }
    Ok(total / k as f64)
}

/// The mean negative log-likelihood of the true classes (scikit-learn's
/// `log_loss`): probabilities clipped to `[ε, 1 − ε]`. Rows that do not sum
/// to 1 are used as given, with a warning, as scikit-learn does.
pub fn log_loss(y_true: &[usize], proba: &[Vec<f64>]) -> Result<f64> {
    same_length(y_true.len(), proba.len())?;
    let eps = f64::EPSILON;
    let mut total = 0.0;
    let mut unnormalized = false;
    for (&t, row) in y_true.iter().zip(proba) {
        let Some(&p) = row.get(t) else {
            return Err(invalid(format!(
                "class {t} has no probability column (the rows have {})",
                row.len()
            )));
        };
        unnormalized |= (row.iter().sum::<f64>() - 1.0).abs() > eps.sqrt();
        total -= p.clamp(eps, 1.0 - eps).ln();
    }
    if unnormalized {
        tracing::warn!("the probabilities do not sum to one");
    }
    Ok(total / y_true.len() as f64)
}

/// Root mean squared error.
pub fn rmse(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    same_length(y_true.len(), y_pred.len())?;
    let sse: f64 = y_true
        .iter()
        .zip(y_pred)
        .map(|(t, p)| (t - p) * (t - p))
        .sum();
    Ok((sse / y_true.len() as f64).sqrt())
}

/// Mean absolute error.
pub fn mae(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    same_length(y_true.len(), y_pred.len())?;
    let sae: f64 = y_true.iter().zip(y_pred).map(|(t, p)| (t - p).abs()).sum();
    Ok(sae / y_true.len() as f64)
}

/// The coefficient of determination, `1 − SS_res / SS_tot`. A constant
/// `y_true` gives 1 for a perfect prediction and 0 otherwise, as scikit-learn's
/// `force_finite`.
pub fn r2(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    same_length(y_true.len(), y_pred.len())?;
    let mean = y_true.iter().sum::<f64>() / y_true.len() as f64;
    let ss_res: f64 = y_true
        .iter()
        .zip(y_pred)
        .map(|(t, p)| (t - p) * (t - p))
        .sum();
    let ss_tot: f64 = y_true.iter().map(|t| (t - mean) * (t - mean)).sum();
    Ok(match (ss_res == 0.0, ss_tot == 0.0) {
        (true, _) => 1.0,
        (false, true) => 0.0,
        _ => 1.0 - ss_res / ss_tot,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_metrics() {
        let t = [0, 0, 1, 1, 2, 2];
        let p = [0, 1, 1, 1, 2, 0];
        assert_eq!(accuracy(&t, &p).unwrap(), 4.0 / 6.0);
        let cm = confusion_matrix(&t, &p).unwrap();
        assert_eq!(cm.counts, vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 1]]);
        let m = precision_recall_f1(&t, &p, Average::Macro).unwrap();
        assert!((m.precision - (0.5 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-15);
        assert!((m.recall - (0.5 + 1.0 + 0.5) / 3.0).abs() < 1e-15);
        // A class never predicted has precision 0, not NaN.
        let z = precision_recall_f1(&[0, 1], &[0, 0], Average::Macro).unwrap();
        assert_eq!(z.precision, 0.25);
        assert!(accuracy(&[0], &[]).is_err());
    }

    #[test]
    fn roc_auc_counts_ties_half() {
        assert_eq!(roc_auc(&[false, true], &[0.1, 0.9]).unwrap(), 1.0);
        assert_eq!(roc_auc(&[false, true], &[0.5, 0.5]).unwrap(), 0.5);
        // scikit-learn: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
        let auc = roc_auc(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]).unwrap();
        assert_eq!(auc, 0.75);
        assert!(roc_auc(&[true, true], &[0.1, 0.2]).is_err());
    }

    #[test]
    fn regression_metrics_and_names() {
        assert_eq!(rmse(&[1.0, 2.0], &[1.0, 4.0]).unwrap(), 2.0f64.sqrt());
        assert_eq!(mae(&[1.0, 2.0], &[1.0, 4.0]).unwrap(), 1.0);
        assert_eq!(r2(&[1.0, 1.0], &[1.0, 1.0]).unwrap(), 1.0);
        assert_eq!(r2(&[1.0, 1.0], &[1.0, 2.0]).unwrap(), 0.0);
        assert_eq!(Metric::F1Weighted.name(), "f1_weighted");
        assert!(!Metric::LogLoss.higher_is_better());
    }
}
