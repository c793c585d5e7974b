//! [`GridSearch`]: every combination of a parameter grid, scored by
//! cross-validation in parallel, the best refitted on all the data
//! (scikit-learn's `GridSearchCV`).
//!
//! The folds are scikit-learn's for `cv=k`: [`StratifiedKFold`] for a
//! classifier, [`KFold`] for a regressor, not shuffled. Every fit is
//! deterministic (the estimators' seeds are parameters), so the result does
//! not depend on the number of threads. Scores are the metric's own values —
//! a lower-is-better metric such as `log_loss` is ranked ascending rather than
//! negated as scikit-learn's `neg_log_loss` is.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{Map, Value};

use super::estimator::Estimator;
use super::metrics::Metric;
use super::pipeline::{FittedPipeline, Pipeline};
use super::split::{Fold, KFold, StratifiedKFold};
use super::{Dataset, Target};
use crate::error::{Error, ErrorKind, Result};

const OP: &str = "ml.grid_search";

/// A fold's score and the seconds its fit and scoring took.
type FoldScore = Result<(f64, f64)>;

/// A grid search; see the [module docs](self).
///
/// ```
/// use gust::ml::{Dataset, TargetKind};
/// use gust::ml::estimator::Estimator;
/// use gust::ml::grid_search::GridSearch;
/// use gust::ml::metrics::Metric;
/// use gust::ml::pipeline::Pipeline;
/// use serde_json::json;
///
/// let rows: Vec<_> = (0..60)
///     .map(|i| json!({"x": i % 30, "y": if i % 30 < 15 { "a" } else { "b" }}))
///     .map(|v| v.as_object().unwrap().clone())
///     .collect();
/// let data = Dataset::from_rows(&rows, &["x"], "y", TargetKind::Classes)?;
/// let search = GridSearch::new(Pipeline::new(Estimator::decision_tree_classifier()), Metric::Accuracy)
///     .param("max_depth", [json!(1), json!(3)])
///     .param("min_samples_leaf", [json!(1), json!(5)])
///     .folds(3)
///     .fit(&data)?;
/// assert_eq!(search.candidates.len(), 4);
/// assert_eq!(search.best_score, 1.0);
/// assert!(search.cv_results_csv().starts_with("params,param_max_depth,param_min_samples_leaf,"));
/// # Ok::<(), gust::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct GridSearch {
    pipeline: Pipeline,
    grid: Vec<(String, Vec<Value>)>,
    scoring: Metric,
    folds: usize,
    threads: Option<usize>,
}

/// One candidate's cross-validation (a row of scikit-learn's `cv_results_`).
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The grid's parameters of this candidate.
    pub params: Map<String, Value>,
    /// The estimator with them set.
    pub estimator: Estimator,
    /// The score on each fold's test rows.
    pub fold_scores: Vec<f64>,
    /// Their mean.
    pub mean_test_score: f64,
    /// Their population standard deviation.
    pub std_test_score: f64,
    /// 1 for the best; ties share the lowest rank.
    pub rank_test_score: usize,
    /// The mean seconds a fold's fit and score took.
    pub mean_fit_time: f64,
}

/// What a [`GridSearch`] found.
#[derive(Debug)]
pub struct GridSearchResult {
    /// Every candidate, in grid order (the last parameter varies fastest).
    pub candidates: Vec<Candidate>,
    /// The best candidate's index (the first of rank 1).
    pub best_index: usize,
    /// The best candidate's mean score.
    pub best_score: f64,
    /// The best pipeline refitted on all the data.
    pub best: FittedPipeline,
    /// The metric.
    pub scoring: Metric,
}

impl GridSearch {
    /// Searches over `pipeline`'s estimator parameters, scored by `scoring`,
    /// with 5 folds (scikit-learn's default).
    pub fn new(pipeline: Pipeline, scoring: Metric) -> Self {
        GridSearch {
            pipeline,
            grid: Vec::new(),
            scoring,
            folds: 5,
            threads: None,
        }
    }

    /// Adds a parameter of the estimator and the values to try.
    pub fn param(
        mut self,
        name: impl Into<String>,
        values: impl IntoIterator<Item = impl Into<Value>>,
    ) -> Self {
        self.grid
            .push((name.into(), values.into_iter().map(Into::into).collect()));
        self
    }

    /// The number of folds (at least 2; default 5).
    pub fn folds(mut self, k: usize) -> Self {
        self.folds = k;
        self
    }

    /// Threads to fit on (default: every core).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n.max(1));
        self
    }

    /// The candidates: the estimator with each combination set, in grid order.
    /// A parameter the estimator does not have, a value that does not fit it,
    /// or a parameter with no values is an [`ErrorKind::InvalidInput`] error.
    pub fn candidates(&self) -> Result<Vec<(Map<String, Value>, Estimator)>> {
        let mut out = vec![(Map::new(), self.pipeline.estimator.clone())];
        for (name, values) in &self.grid {
            if values.is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    OP,
                    format!("the grid gives {name:?} no value"),
                ));
            }
            let mut next = Vec::with_capacity(out.len() * values.len());
            for (params, estimator) in &out {
                for value in values {
                    let mut e = estimator.clone();
                    e.set_param(name, value)?;
                    let mut p = params.clone();
                    p.insert(name.clone(), value.clone());
                    next.push((p, e));
                }
            }
            out = next;
        }
        Ok(out)
    }

    /// Cross-validates every candidate, in parallel, and refits the best on
    /// all of `data`.
    pub fn fit(&self, data: &Dataset) -> Result<GridSearchResult> {
        let candidates = self.candidates()?;
        let folds: Vec<Fold> = match &data.target {
            Target::Classes { y, .. } => StratifiedKFold::new(self.folds).folds(y)?,
            Target::Values(_) => KFold::new(self.folds).folds(data.len())?,
        };
        let jobs: Vec<(usize, usize)> = (0..candidates.len())
            .flat_map(|c| (0..folds.len()).map(move |f| (c, f)))
            .collect();
        let threads = self
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .min(jobs.len().max(1));
        let scores: Mutex<Vec<Option<FoldScore>>> =
            Mutex::new((0..jobs.len()).map(|_| None).collect());
        let next = AtomicUsize::new(0);
        tracing::info!(
            candidates = candidates.len(),
            folds = folds.len(),
            threads,
            scoring = self.scoring.name(),
            "grid search started"
        );
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(c, f)) = jobs.get(k) else { break };
                        let started = Instant::now();
                        let (train, test) = &folds[f];
                        let pipeline = self.pipeline.with_estimator(candidates[c].1.clone());
                        let train_set = data.select(train);
                        let test_set = data.select(test);
                        let result = pipeline
                            .fit(&train_set)
                            .and_then(|m| m.score(&test_set, self.scoring))
                            .map(|s| (s, started.elapsed().as_secs_f64()));
                        if let Ok(mut scores) = scores.lock() {
                            scores[k] = Some(result);
                        }
                    }
                });
            }
        });
        // Job k is candidate k / folds, fold k % folds: in order.
        let mut scores = scores.into_inner().unwrap_or_default().into_iter();
        let mut results = Vec::with_capacity(candidates.len());
        for (params, estimator) in candidates {
            let mut fold_scores = Vec::with_capacity(folds.len());
            let mut secs = 0.0;
            for f in 0..folds.len() {
                match scores.next().flatten() {
                    Some(Ok((s, t))) => {
                        fold_scores.push(s);
                        secs += t;
                    }
                    Some(Err(e)) => {
                        return Err(e.map_message(|m| {
                            format!("candidate {} fold {f}: {m}", Value::Object(params.clone()))
                        }));
                    }
                    None => {
                        return Err(Error::new(
                            ErrorKind::Cancelled,
                            OP,
                            "a fold was not scored (a worker thread panicked)",
                        ));
                    }
                }
            }
            let n = fold_scores.len() as f64;
            let mean = fold_scores.iter().sum::<f64>() / n;
            let std = (fold_scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n).sqrt();
            results.push(Candidate {
                params,
                estimator,
                fold_scores,
                mean_test_score: mean,
                std_test_score: std,
                rank_test_score: 0,
                mean_fit_time: secs / n,
            });
        }
        let means: Vec<f64> = results.iter().map(|r| r.mean_test_score).collect();
        for r in &mut results {
            r.rank_test_score = 1 + means
                .iter()
                .filter(|&&m| self.scoring.better(m, r.mean_test_score))
                .count();
        }
        let best_index = results
            .iter()
            .position(|r| r.rank_test_score == 1)
            .unwrap_or(0);
        let best_pipeline = self
            .pipeline
            .with_estimator(results[best_index].estimator.clone());
        let best = best_pipeline.fit(data)?;
        let best_score = results[best_index].mean_test_score;
        let best_params = Value::Object(results[best_index].params.clone());
        tracing::info!(%best_params, best_score, "grid search done");
        Ok(GridSearchResult {
            candidates: results,
            best_index,
            best_score,
            best,
            scoring: self.scoring,
        })
    }
}

impl GridSearchResult {
    /// The best candidate's grid parameters.
    pub fn best_params(&self) -> &Map<String, Value> {
        &self.candidates[self.best_index].params
    }

    /// The candidates as a CSV table shaped like scikit-learn's
    /// `pd.DataFrame(cv_results_)`: `params`, `param_<name>`…,
    /// `split<k>_test_score`…, `mean_test_score`, `std_test_score`,
    /// `rank_test_score`, `mean_fit_time`.
    pub fn cv_results_csv(&self) -> String {
        use crate::formats::csv::{CsvFormat, write_record};
        let mut out = Vec::new();
        let names: Vec<String> = self
            .candidates
            .first()
            .map(|c| c.params.keys().cloned().collect())
            .unwrap_or_default();
        let folds = self.candidates.first().map_or(0, |c| c.fold_scores.len());
        let mut header = vec!["params".to_string()];
        header.extend(names.iter().map(|n| format!("param_{n}")));
        header.extend((0..folds).map(|k| format!("split{k}_test_score")));
        header.extend(
            [
                "mean_test_score",
                "std_test_score",
                "rank_test_score",
                "mean_fit_time",
            ]
            .map(String::from),
        );
        let format = CsvFormat::default();
        write_record(&mut out, header.iter().map(|h| Some(h.as_str())), &format);
        for c in &self.candidates {
            let mut row = vec![Value::Object(c.params.clone()).to_string()];
            row.extend(names.iter().map(|n| match &c.params[n] {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            }));
            row.extend(c.fold_scores.iter().map(f64::to_string));
            row.push(c.mean_test_score.to_string());
            row.push(c.std_test_score.to_string());
            row.push(c.rank_test_score.to_string());
            row.push(c.mean_fit_time.to_string());
            write_record(&mut out, row.iter().map(|v| Some(v.as_str())), &format);
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::TargetKind;
    use serde_json::json;

    fn data() -> Dataset {
        let rows: Vec<_> = (0..90)
            .map(|i| {
                let x = (i * 37 % 90) as f64;
                let noise = (i * 13 % 7) as f64;
                json!({"x": x, "noise": noise, "y": if x + 9.0 * noise < 60.0 { "lo" } else { "hi" }})
            })
            .map(|v| v.as_object().unwrap().clone())
            .collect();
        Dataset::from_rows(&rows, &["x", "noise"], "y", TargetKind::Classes).unwrap()
    }

    #[test]
    fn grid_is_deterministic_whatever_the_threads() {
        let search = |threads| {
            GridSearch::new(
                Pipeline::new(Estimator::random_forest_classifier()),
                Metric::F1Macro,
            )
            .param("n_trees", [json!(5), json!(20)])
            .param("max_depth", [json!(1), json!(null)])
            .folds(3)
            .threads(threads)
            .fit(&data())
            .unwrap()
        };
        let (a, b) = (search(1), search(2));
        // Everything but the timings.
        let scores = |r: &GridSearchResult| -> Vec<_> {
            r.candidates
                .iter()
                .map(|c| (c.params.clone(), c.fold_scores.clone(), c.rank_test_score))
                .collect()
        };
        assert_eq!(scores(&a), scores(&b));
        assert_eq!(a.candidates.len(), 4);
        assert_eq!(
            a.candidates[1].params,
            *json!({"n_trees": 5, "max_depth": null})
                .as_object()
                .unwrap()
        );
        let best = &a.candidates[a.best_index];
        assert_eq!(best.rank_test_score, 1);
        assert!(
            a.candidates
                .iter()
                .all(|c| c.mean_test_score <= best.mean_test_score)
        );
        let csv = a.cv_results_csv();
        assert_eq!(csv.lines().count(), 5);
        assert!(
            csv.lines().next().unwrap().contains("split2_test_score"),
            "{csv}"
        );
    }

    #[test]
    fn bad_grids_are_refused() {
        let p = Pipeline::new(Estimator::knn_classifier());
        let e = GridSearch::new(p.clone(), Metric::Accuracy)
            .param("depth", [json!(1)])
            .fit(&data())
            .unwrap_err();
        assert!(e.message().contains("no parameter \"depth\""), "{e}");
        let e = GridSearch::new(p.clone(), Metric::Rmse)
            .fit(&data())
            .unwrap_err();
        assert!(e.message().contains("rmse does not apply"), "{e}");
        let e = GridSearch::new(p, Metric::Accuracy)
            .param("k", Vec::<Value>::new())
            .fit(&data())
            .unwrap_err();
        assert!(e.message().contains("no value"), "{e}");
    }
}
