//! Train/test splits and cross-validation folds, as scikit-learn makes them.
//!
//! Without shuffling, [`KFold`] and [`StratifiedKFold`] give exactly
//! scikit-learn's folds, and a stratified [`Split`] exactly its per-class
//! counts (`_approximate_mode`) unless a class's share has to be rounded by a
//! tie, which scikit-learn breaks at random. Shuffles use ChaCha8 seeded with
//! the given seed: the same seed gives the same split in every gust version and
//! on every platform, but not numpy's permutation.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::error::{Error, ErrorKind, Result};

const OP: &str = "ml.split";

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, OP, message)
}

/// Fisher–Yates with ChaCha8 (a 128-bit multiply maps each draw to its range;
/// the bias is below 2⁻⁴⁰ for any slice that fits in memory).
fn shuffle<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = ((u128::from(rng.next_u64()) * (i as u128 + 1)) >> 64) as usize;
        items.swap(i, j);
    }
}

/// Class codes re-numbered by order of first appearance, and their counts (as
/// scikit-learn's `StratifiedKFold` encodes `y`).
fn by_appearance(y: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = Vec::new();
    let encoded = y
        .iter()
        .map(|c| match order.iter().position(|o| o == c) {
            Some(k) => k,
            None => {
                order.push(*c);
                order.len() - 1
            }
        })
        .collect::<Vec<_>>();
    let mut counts = vec![0; order.len()];
    for &k in &encoded {
        counts[k] += 1;
    }
    (encoded, counts)
}

/// A train/test split (scikit-learn's `train_test_split`): `test_size` of the
/// rows (rounded up) go to the test set. Shuffled by default, optionally
/// stratified on the classes.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    test_size: f64,
    seed: u64,
    shuffle: bool,
    stratified: bool,
}

impl Split {
    /// A shuffled split with `test_size` (a fraction in (0, 1)) of the rows for
    /// testing, seed 0, not stratified.
    pub fn new(test_size: f64) -> Self {
        Split {
            test_size,
            seed: 0,
            shuffle: true,
            stratified: false,
        }
    }

    /// The seed of the shuffle (scikit-learn's `random_state`).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Whether rows are shuffled first (default `true`); without it the last
    /// rows are the test set. A stratified split is always shuffled.
    pub fn shuffle(mut self, on: bool) -> Self {
        self.shuffle = on;
        self
    }

    /// Whether each class keeps its share in both sets (scikit-learn's
    /// `stratify=y`).
    pub fn stratified(mut self, on: bool) -> Self {
        self.stratified = on;
        self
    }

    /// The training and test row indices of `n` rows; `classes` (each row's
    /// class) is needed when stratified. Sets that would be empty, a class of
    /// one row when stratified, or fewer test or training rows than classes
    /// are [`ErrorKind::InvalidInput`] errors.
    pub fn indices(&self, n: usize, classes: Option<&[usize]>) -> Result<(Vec<usize>, Vec<usize>)> {
        if !(self.test_size > 0.0 && self.test_size < 1.0) {
            return Err(invalid(format!(
                "test_size must be in (0, 1), not {}",
                self.test_size
            )));
        }
        let n_test = (self.test_size * n as f64).ceil() as usize;
        let n_train = n.saturating_sub(n_test);
        if n_train == 0 || n_test == 0 {
            return Err(invalid(format!(
                "with {n} rows and test_size {} one of the sets would be empty",
                self.test_size
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        if !self.stratified {
            let mut rows: Vec<usize> = (0..n).collect();
            if !self.shuffle {
                let test = rows.split_off(n_train);
                return Ok((rows, test));
            }
            shuffle(&mut rows, &mut rng);
            let train = rows.split_off(n_test);
            return Ok((train, rows));
        }
        let Some(y) = classes else {
            return Err(invalid("a stratified split needs classes"));
        };
        if y.len() != n {
            return Err(invalid(format!("{} classes for {n} rows", y.len())));
        }
        // Classes in sorted order, as np.unique gives them.
        let n_classes = y.iter().max().map_or(0, |m| m + 1);
        let mut class_rows: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
        for (i, &c) in y.iter().enumerate() {
            class_rows[c].push(i);
        }
        class_rows.retain(|r| !r.is_empty());
        let counts: Vec<usize> = class_rows.iter().map(Vec::len).collect();
        if counts.iter().any(|&c| c < 2) {
            return Err(invalid(
                "the least populated class has only 1 row, too few to stratify",
            ));
        }
        if n_train < counts.len() || n_test < counts.len() {
            return Err(invalid(format!(
                "{n_train} training and {n_test} test rows cannot hold each of {} classes",
                counts.len()
            )));
        }
        let train_counts = approximate_mode(&counts, n_train, &mut rng);
        let left: Vec<usize> = counts
            .iter()
            .zip(&train_counts)
            .map(|(c, t)| c - t)
            .collect();
        let test_counts = approximate_mode(&left, n_test, &mut rng);
        let (mut train, mut test) = (Vec::with_capacity(n_train), Vec::with_capacity(n_test));
        for ((rows, &n_i), &t_i) in class_rows.iter_mut().zip(&train_counts).zip(&test_counts) {
            shuffle(rows, &mut rng);
            train.extend_from_slice(&rows[..n_i]);
            test.extend_from_slice(&rows[n_i..n_i + t_i]);
        }
        shuffle(&mut train, &mut rng);
        shuffle(&mut test, &mut rng);
        Ok((train, test))
    }
}

/// scikit-learn's `_approximate_mode`: `draws` spread over the classes in
/// proportion to `counts`, floored, the rest added by largest remainder (ties
/// broken by `rng`).
fn approximate_mode(counts: &[usize], draws: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let total: usize = counts.iter().sum();
    let continuous: Vec<f64> = counts
        .iter()
        .map(|&c| c as f64 / total as f64 * draws as f64)
        .collect();
    let mut floored: Vec<usize> = continuous.iter().map(|c| c.floor() as usize).collect();
    let mut need = draws.saturating_sub(floored.iter().sum());
    if need > 0 {
        let remainder: Vec<f64> = continuous
            .iter()
            .zip(&floored)
            .map(|(c, &f)| c - f as f64)
            .collect();
        let mut values = remainder.clone();
        values.sort_by(|a, b| b.total_cmp(a));
        values.dedup();
        for value in values {
            let mut ties: Vec<usize> = (0..remainder.len())
                .filter(|&k| remainder[k] == value)
                .collect();
            shuffle(&mut ties, rng);
            let now = ties.len().min(need);
            for &k in &ties[..now] {
                floored[k] += 1;
            }
            need -= now;
            if need == 0 {
                break;
            }
        }
    }
    floored
}

/// A fold: the training rows and the test rows.
pub type Fold = (Vec<usize>, Vec<usize>);

/// K consecutive folds (scikit-learn's `KFold`): the first `n % k` folds have
/// one row more.
#[derive(Debug, Clone, PartialEq)]
pub struct KFold {
    n_splits: usize,
    shuffle: Option<u64>,
}

impl KFold {
    /// `n_splits` folds (at least 2), in row order.
    pub fn new(n_splits: usize) -> Self {
        KFold {
            n_splits,
            shuffle: None,
        }
    }

    /// Shuffles the rows with `seed` before cutting them into folds.
    pub fn shuffled(mut self, seed: u64) -> Self {
        self.shuffle = Some(seed);
        self
    }

    /// The folds of `n` rows. Fewer than 2 folds, or more folds than rows, is
    /// an [`ErrorKind::InvalidInput`] error.
    pub fn folds(&self, n: usize) -> Result<Vec<Fold>> {
        if self.n_splits < 2 || self.n_splits > n {
            return Err(invalid(format!(
                "cannot cut {n} rows into {} folds (2 to {n})",
                self.n_splits
            )));
        }
        let mut rows: Vec<usize> = (0..n).collect();
        if let Some(seed) = self.shuffle {
            shuffle(&mut rows, &mut ChaCha8Rng::seed_from_u64(seed));
        }
        let k = self.n_splits;
        let mut folds = Vec::with_capacity(k);
        let mut start = 0;
        for f in 0..k {
            let size = n / k + usize::from(f < n % k);
            let test = rows[start..start + size].to_vec();
            let mut train = rows[..start].to_vec();
            train.extend_from_slice(&rows[start + size..]);
            // scikit-learn lists each set in row order.
            if self.shuffle.is_some() {
                train.sort_unstable();
            }
            folds.push((train, test));
            start += size;
        }
        Ok(folds)
    }
}

/// Folds that keep each class's share (scikit-learn's `StratifiedKFold`): the
/// rows of each class are dealt to the folds in blocks, round robin over the
/// sorted classes, so without shuffling the folds are exactly scikit-learn's.
#[derive(Debug, Clone, PartialEq)]
pub struct StratifiedKFold {
    n_splits: usize,
    shuffle: Option<u64>,
}

impl StratifiedKFold {
    /// `n_splits` folds (at least 2), not shuffled.
    pub fn new(n_splits: usize) -> Self {
        StratifiedKFold {
            n_splits,
            shuffle: None,
        }
    }

    /// Shuffles each class's fold assignment with `seed`.
    pub fn shuffled(mut self, seed: u64) -> Self {
        self.shuffle = Some(seed);
        self
    }

    /// Each row's test fold, from its class (`y[i]`). Every class having fewer
    /// rows than folds is an error; some having fewer is allowed (a fold then
    /// lacks them) and logged as a warning, as scikit-learn warns.
    pub fn test_folds(&self, y: &[usize]) -> Result<Vec<usize>> {
        let k = self.n_splits;
        if k < 2 || k > y.len() {
            return Err(invalid(format!(
                "cannot cut {} rows into {k} folds (2 to {0})",
                y.len()
            )));
        }
        let (encoded, counts) = by_appearance(y);
        if counts.iter().all(|&c| c < k) {
            return Err(invalid(format!(
                "n_splits={k} cannot be greater than the number of members in each class"
            )));
        }
        if let Some(min) = counts.iter().min().filter(|&&m| m < k) {
            tracing::warn!(
                least_populated = min,
                n_splits = k,
                "the least populated class has fewer members than n_splits: some folds lack it"
            );
        }
        // allocation[f][c]: rows of class c in fold f, dealt round robin over
        // the rows sorted by class.
        let mut sorted = encoded.clone();
        sorted.sort_unstable();
        let mut allocation = vec![vec![0usize; counts.len()]; k];
        for (i, &c) in sorted.iter().enumerate() {
            allocation[i % k][c] += 1;
        }
        let mut rng = self.shuffle.map(ChaCha8Rng::seed_from_u64);
        let mut test_folds = vec![0; y.len()];
        for (c, _) in counts.iter().enumerate() {
            let mut folds_for_class: Vec<usize> = (0..k)
                .flat_map(|f| std::iter::repeat_n(f, allocation[f][c]))
                .collect();
            if let Some(rng) = rng.as_mut() {
                shuffle(&mut folds_for_class, rng);
            }
            let mut next = folds_for_class.into_iter();
            for (i, &e) in encoded.iter().enumerate() {
                if e == c {
                    test_folds[i] = next.next().unwrap_or(0);
                }
            }
        }
        Ok(test_folds)
    }

    /// The folds, each rows in row order.
    pub fn folds(&self, y: &[usize]) -> Result<Vec<Fold>> {
        let test_folds = self.test_folds(y)?;
        Ok((0..self.n_splits)
            .map(|f| {
                let (test, train): (Vec<usize>, Vec<usize>) =
                    (0..y.len()).partition(|&i| test_folds[i] == f);
                (train, test)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kfold_sizes_and_order() {
        let folds = KFold::new(3).folds(7).unwrap();
        assert_eq!(folds[0].1, vec![0, 1, 2]);
        assert_eq!(folds[1].1, vec![3, 4]);
        assert_eq!(folds[2], (vec![0, 1, 2, 3, 4], vec![5, 6]));
        assert!(KFold::new(8).folds(7).is_err());
        let a = KFold::new(3).shuffled(1).folds(7).unwrap();
        assert_eq!(a, KFold::new(3).shuffled(1).folds(7).unwrap());
        assert_ne!(a, folds);
    }

    #[test]
    fn stratified_folds_deal_classes_in_blocks() {
        // scikit-learn 1.9: StratifiedKFold(3)._make_test_folds(X, y).
        let y = [0, 0, 0, 1, 1, 1, 1, 0, 1];
        assert_eq!(
            StratifiedKFold::new(3).test_folds(&y).unwrap(),
            vec![0, 0, 1, 0, 1, 1, 2, 2, 2]
        );
        assert!(StratifiedKFold::new(3).test_folds(&[0, 0, 1, 1]).is_err());
    }

    #[test]
    fn splits_are_stable_per_seed_and_keep_class_shares() {
        let y: Vec<usize> = (0..150).map(|i| i / 50).collect();
        let s = Split::new(0.2).seed(42).stratified(true);
        let (train, test) = s.indices(150, Some(&y)).unwrap();
        assert_eq!((train.len(), test.len()), (120, 30));
        for c in 0..3 {
            assert_eq!(test.iter().filter(|&&i| y[i] == c).count(), 10);
        }
        assert_eq!(s.indices(150, Some(&y)).unwrap(), (train, test));
        let (train, test) = Split::new(0.25).shuffle(false).indices(10, None).unwrap();
        assert_eq!((train, test), ((0..7).collect(), vec![7, 8, 9]));
        assert!(
            Split::new(0.2)
                .stratified(true)
                .indices(3, Some(&[0, 1, 1]))
                .is_err()
        );
        assert!(Split::new(1.0).indices(10, None).is_err());
    }
}
