//! `gust::ml` against scikit-learn: every scaler, fold, stratified split
//! count and metric on fixed inputs — constant columns, NaNs, outliers, a class
//! missing from a fold or from the predictions, one class only — equals what
//! the scikit-learn of the services' Python computes
//! (`tests/data/sklearn_reference.py`), to 1e-12.

mod common;

use gust::ml::Matrix;
use gust::ml::metrics::{self, Average};
use gust::ml::preprocessing::{
    ImputeStrategy, MinMaxScaler, RobustScaler, SimpleImputer, StandardScaler, Transform,
};
use gust::ml::split::{KFold, Split, StratifiedKFold};
use serde_json::{Value, json};

/// A deterministic stream of numbers in [0, 1) (xorshift64*).
struct Numbers(u64);

impl Numbers {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The matrices the scalers are fitted on: skewed columns with outliers, a
/// constant column, a near-constant one, NaNs, negative values, one row.
fn matrices() -> Vec<Matrix> {
    let mut n = Numbers(0x9E3779B97F4A7C15);
    let mut big = Vec::new();
    for i in 0..257 {
        let u = n.next();
        big.push(vec![
            u * 100.0 - 20.0,
            (u * 6.0).exp(),
            3.25,
            1.0 + 1e-14 * (i % 3) as f64,
            if i % 7 == 0 { f64::NAN } else { n.next() * 1e6 },
            if i == 5 { 1e9 } else { n.next() - 0.5 },
        ]);
    }
    vec![
        Matrix::from_rows(&big).unwrap(),
        Matrix::from_rows(&[
            vec![1.0, f64::NAN],
            vec![2.0, 4.0],
            vec![10.0, f64::NAN],
            vec![-3.0, 4.0],
        ])
        .unwrap(),
        Matrix::from_rows(&[vec![7.0, -2.0]]).unwrap(),
    ]
}

fn to_json(m: &Matrix) -> Value {
    (0..m.rows())
        .map(|i| {
            m.row(i)
                .iter()
                .map(|&v| if v.is_nan() { Value::Null } else { json!(v) })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `a` and `b` (JSON numbers or nulls for NaN, possibly nested) agree to 1e-12,
/// relative for large values.
fn close(a: &Value, b: &Value, what: &str) {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{what}: lengths");
            for (k, (x, y)) in x.iter().zip(y).enumerate() {
                close(x, y, &format!("{what}[{k}]"));
            }
        }
        (Value::Null, Value::Null) => {}
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            let tolerance = 1e-12 * x.abs().max(y.abs()).max(1.0);
            assert!(
                (x - y).abs() <= tolerance,
                "{what}: gust {x} vs scikit-learn {y}"
            );
        }
        _ => panic!("{what}: gust {a} vs scikit-learn {b}"),
    }
}

fn vec_json(v: &[f64]) -> Value {
    v.iter()
        .map(|&x| if x.is_nan() { Value::Null } else { json!(x) })
        .collect()
}

#[test]
fn gust_ml_equals_scikit_learn() {
    let Some(python) = common::python() else {
        return;
    };

    // Scalers: each matrix under several settings.
    let mut scaler_cases = Vec::new();
    let mut ours = Vec::new();
    for x in matrices() {
        let robust = [
            RobustScaler::new(),
            RobustScaler::new()
                .quantile_range(10.0, 90.0)
                .unit_variance(true),
            RobustScaler::new().with_centering(false),
            RobustScaler::new()
                .with_scaling(false)
                .quantile_range(0.0, 100.0),
        ];
        for s in robust {
            let f = s.fit(&x).unwrap();
            scaler_cases.push(json!({"kind": "robust", "x": to_json(&x), "params": {
                "quantile_range": [s.quantile_range.0, s.quantile_range.1],
                "with_centering": s.with_centering, "with_scaling": s.with_scaling,
                "unit_variance": s.unit_variance}}));
            ours.push(json!({
                "center_": f.center_.as_deref().map(vec_json),
                "scale_": f.scale_.as_deref().map(vec_json),
                "out": to_json(&f.transform(&x).unwrap()),
            }));
        }
        for s in [
            StandardScaler::new(),
            StandardScaler::new().with_mean(false),
        ] {
            let f = s.fit(&x).unwrap();
            scaler_cases.push(json!({"kind": "standard", "x": to_json(&x), "params": {
                "with_mean": s.with_mean, "with_std": s.with_std}}));
            ours.push(json!({
                "mean_": vec_json(&f.mean_), "var_": vec_json(&f.var_),
                "scale_": f.scale_.as_deref().map(vec_json),
                "out": to_json(&f.transform(&x).unwrap()),
            }));
        }
        for (name, strategy) in [
            ("mean", ImputeStrategy::Mean),
            ("median", ImputeStrategy::Median),
            ("most_frequent", ImputeStrategy::MostFrequent),
        ] {
            let f = SimpleImputer::new(strategy).fit(&x).unwrap();
            scaler_cases
                .push(json!({"kind": "imputer", "x": to_json(&x), "params": {"strategy": name}}));
            ours.push(json!({
                "statistics_": vec_json(&f.statistics_),
                "out": to_json(&Transform::transform(&f, &x).unwrap()),
            }));
        }
        for s in [
            MinMaxScaler::new(),
            MinMaxScaler::new().feature_range(-1.0, 2.0).clip(true),
        ] {
            let f = s.fit(&x).unwrap();
            scaler_cases.push(json!({"kind": "minmax", "x": to_json(&x), "params": {
                "feature_range": [s.feature_range.0, s.feature_range.1], "clip": s.clip}}));
            ours.push(json!({
                "data_min_": vec_json(&f.data_min_), "data_max_": vec_json(&f.data_max_),
                "scale_": vec_json(&f.scale_), "min_": vec_json(&f.min_),
                "out": to_json(&Transform::transform(&f, &x).unwrap()),
            }));
        }
    }

    // Folds: balanced, unbalanced, a class with fewer rows than folds (some
    // fold lacks it), labels first seen out of order.
    let label_sets: Vec<Vec<usize>> = vec![
        (0..150).map(|i| i / 50).collect(),
        (0..23).map(|i| usize::from(i % 5 == 0)).collect(),
        vec![2, 2, 0, 1, 1, 1, 0, 2, 2, 2, 0, 1, 3, 3],
        vec![1, 0, 1, 0, 1, 1, 1, 1, 0, 1, 1, 2],
    ];
    let mut skf_cases = Vec::new();
    let mut skf_ours = Vec::new();
    for y in &label_sets {
        for k in [2, 3, 5] {
            skf_cases.push(json!({"y": y, "k": k}));
            skf_ours.push(json!(StratifiedKFold::new(k).test_folds(y).unwrap()));
        }
    }
    let mut kfold_cases = Vec::new();
    let mut kfold_ours = Vec::new();
    for (n, k) in [(10, 3), (7, 7), (150, 5)] {
        kfold_cases.push(json!({"n": n, "k": k}));
        let tests: Vec<Vec<usize>> = KFold::new(k)
            .folds(n)
            .unwrap()
            .into_iter()
            .map(|f| f.1)
            .collect();
        kfold_ours.push(json!(tests));
    }
    // Stratified split counts, on shares that need no random tie-break.
    let mut split_cases = Vec::new();
    let mut split_ours = Vec::new();
    for (counts, test_size) in [
        (vec![50, 50, 50], 0.2),
        (vec![7, 5, 3], 0.25),
        (vec![30, 10], 0.3),
    ] {
        let y: Vec<usize> = counts
            .iter()
            .enumerate()
            .flat_map(|(c, &n)| std::iter::repeat_n(c, n))
            .collect();
        let (train, test) = Split::new(test_size)
            .seed(3)
            .stratified(true)
            .indices(y.len(), Some(&y))
            .unwrap();
        let per_class = |rows: &[usize]| -> Vec<usize> {
            (0..counts.len())
                .map(|c| rows.iter().filter(|&&i| y[i] == c).count())
                .collect()
        };
        split_cases.push(json!({"y": y, "test_size": test_size}));
        split_ours.push(json!({"train": per_class(&train), "test": per_class(&test)}));
    }

    // Classification metrics: a class never predicted, a class only predicted,
    // probabilities with a zero (clipped), ties in the scores.
    let mut n = Numbers(42);
    let t3: Vec<usize> = (0..60).map(|i| i % 3).collect();
    let p3: Vec<usize> = (0..60)
        .map(|i| if i % 7 == 0 { (i + 1) % 3 } else { i % 3 })
        .collect();
    let proba3: Vec<Vec<f64>> = (0..60)
        .map(|_| {
            let r = [n.next(), n.next(), n.next()];
            let s: f64 = r.iter().sum();
            r.iter()
                .map(|v| (v / s * 20.0).round() / 20.0)
                .collect::<Vec<f64>>()
        })
        .map(|r| {
            let s: f64 = r.iter().sum();
            r.iter().map(|v| v / s).collect()
        })
        .collect();
    let t2 = vec![0, 0, 1, 1, 0, 1, 1, 0, 1, 1];
    let p2 = vec![0, 1, 1, 1, 0, 0, 1, 0, 1, 1];
    let proba2: Vec<Vec<f64>> = [0.1, 0.6, 0.6, 0.9, 0.0, 0.4, 0.6, 0.2, 1.0, 0.75]
        .iter()
        .map(|&p| vec![1.0 - p, p])
        .collect();
    let classification = vec![
        (t3.clone(), p3.clone(), Some(proba3.clone())),
        (t2.clone(), p2.clone(), Some(proba2.clone())),
        (vec![0, 1, 2, 2], vec![0, 0, 3, 2], None),
        (vec![1, 1, 1], vec![1, 1, 0], None),
    ];
    let mut class_cases = Vec::new();
    let mut class_ours = Vec::new();
    for (t, p, proba) in &classification {
        let mut case = json!({"y_true": t, "y_pred": p, "proba": proba});
        let cm = metrics::confusion_matrix(t, p).unwrap();
        let prf = |avg| {
            let m = metrics::precision_recall_f1(t, p, avg).unwrap();
            json!([m.precision, m.recall, m.f1])
        };
        let mut out = json!({
            "accuracy": metrics::accuracy(t, p).unwrap(),
            "confusion": cm.counts,
            "macro": prf(Average::Macro),
            "weighted": prf(Average::Weighted),
        });
        if let Some(proba) = proba {
            out["log_loss"] = json!(metrics::log_loss(t, proba).unwrap());
            out["roc_auc"] = if proba[0].len() == 2 {
                let positive: Vec<bool> = t.iter().map(|&c| c == 1).collect();
                let score: Vec<f64> = proba.iter().map(|r| r[1]).collect();
                json!(metrics::roc_auc(&positive, &score).unwrap())
            } else {
                json!(metrics::roc_auc_ovr(t, proba).unwrap())
            };
        }
        if t.iter().all(|&c| c == t[0]) {
            // One class only: scikit-learn warns and says NaN, gust refuses.
            let positive: Vec<bool> = t.iter().map(|&c| c == 1).collect();
            let e = metrics::roc_auc(&positive, &[0.2, 0.4, 0.9]).unwrap_err();
            assert!(e.message().contains("only one class"), "{e}");
            case["positive"] = json!(positive);
            case["score"] = json!([0.2, 0.4, 0.9]);
            out["roc_auc_score"] = Value::Null;
        }
        class_cases.push(case);
        class_ours.push(out);
    }
    let regression = vec![
        (vec![3.0, -0.5, 2.0, 7.0], vec![2.5, 0.0, 2.0, 8.0]),
        (vec![1.0, 1.0, 1.0], vec![1.0, 1.0, 1.0]),
        (vec![1.0, 1.0, 1.0], vec![1.0, 2.0, 1.0]),
        (
            (0..100).map(|_| n.next() * 1e3).collect(),
            (0..100).map(|_| n.next() * 1e3).collect(),
        ),
    ];
    let mut reg_cases = Vec::new();
    let mut reg_ours = Vec::new();
    for (t, p) in &regression {
        reg_cases.push(json!({"y_true": t, "y_pred": p}));
        reg_ours.push(json!({
            "rmse": metrics::rmse(t, p).unwrap(),
            "mae": metrics::mae(t, p).unwrap(),
            "r2": metrics::r2(t, p).unwrap(),
        }));
    }

    // Encoders: seed 001's odd categories, text that looks like numbers (text
    // order: "10" < "2"), non-ASCII, missing values, and unseen categories.
    use gust::ml::Categorical;
    use gust::ml::encoding::{OneHotEncoder, OrdinalEncoder, Unknown};
    let train_columns = vec![
        Categorical::from_options(
            "credit_mix",
            [
                Some("Good"),
                Some("_"),
                None,
                Some("Bad"),
                Some("Good"),
                Some("Standard"),
                Some("_"),
            ],
        ),
        Categorical::from_options(
            "payment_behaviour",
            [
                Some("!@9#%8"),
                Some("Low_spent"),
                Some("10"),
                Some("2"),
                Some("Ä"),
                Some("!@9#%8"),
                Some("2"),
            ],
        ),
    ];
    let new_columns = vec![
        Categorical::from_options("credit_mix", [Some("Good"), Some("Unseen"), None]),
        Categorical::from_options("payment_behaviour", [Some("10"), Some("Ä"), Some("High")]),
    ];
    let as_lists = |cols: &[Categorical]| -> Value {
        cols.iter().map(|c| json!([c.name, c.values])).collect()
    };
    let one_hot = OneHotEncoder::new()
        .handle_unknown(Unknown::Ignore)
        .fit(&train_columns)
        .unwrap();
    let ordinal = OrdinalEncoder::new()
        .unknown_value(-1.0)
        .fit(&train_columns)
        .unwrap();
    let encoder_ours = json!([
        {
            "names": one_hot.feature_names(),
            "out": to_json(&one_hot.transform(&train_columns).unwrap()),
            "new": to_json(&one_hot.transform(&new_columns).unwrap()),
        },
        {
            "names": ordinal.feature_names(),
            "out": to_json(&ordinal.transform(&train_columns).unwrap()),
            "new": to_json(&ordinal.transform(&new_columns).unwrap()),
        },
    ]);
    let encoder_cases = json!([
        {"kind": "one_hot", "train": as_lists(&train_columns), "new": as_lists(&new_columns)},
        {"kind": "ordinal", "train": as_lists(&train_columns), "new": as_lists(&new_columns)},
    ]);

    let cases = json!({
        "encoders": encoder_cases,
        "scalers": scaler_cases,
        "stratified_kfold": skf_cases,
        "kfold": kfold_cases,
        "split_counts": split_cases,
        "classification": class_cases,
        "regression": reg_cases,
    });
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/sklearn_reference.py"
    );
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(cases.to_string().as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        let at = e.column().saturating_sub(80);
        let text = String::from_utf8_lossy(&out.stdout);
        panic!(
            "scikit-learn's answer is not JSON ({e}): …{}",
            text.chars().skip(at).take(160).collect::<String>()
        )
    });
    eprintln!("scikit-learn {}", theirs["sklearn"]);

    for (k, (o, t)) in ours
        .iter()
        .zip(theirs["scalers"].as_array().unwrap())
        .enumerate()
    {
        for (key, value) in o.as_object().unwrap() {
            close(
                value,
                &t[key],
                &format!("scaler case {k} ({}) {key}", scaler_cases[k]["kind"]),
            );
        }
    }
    for (k, (o, t)) in encoder_ours
        .as_array()
        .unwrap()
        .iter()
        .zip(theirs["encoders"].as_array().unwrap())
        .enumerate()
    {
        assert_eq!(o["names"], t["names"], "encoder case {k} feature names");
        close(&o["out"], &t["out"], &format!("encoder case {k} out"));
        close(&o["new"], &t["new"], &format!("encoder case {k} new"));
    }
    // Folds and counts are integers: equal, not close.
    assert_eq!(
        Value::Array(skf_ours),
        theirs["stratified_kfold"],
        "StratifiedKFold test folds"
    );
    assert_eq!(
        Value::Array(kfold_ours),
        theirs["kfold"],
        "KFold test folds"
    );
    assert_eq!(
        Value::Array(split_ours),
        theirs["split_counts"],
        "stratified split per-class counts"
    );
    for (k, (o, t)) in class_ours
        .iter()
        .zip(theirs["classification"].as_array().unwrap())
        .enumerate()
    {
        for (key, value) in o.as_object().unwrap() {
            close(value, &t[key], &format!("classification case {k} {key}"));
        }
    }
    for (k, (o, t)) in reg_ours
        .iter()
        .zip(theirs["regression"].as_array().unwrap())
        .enumerate()
    {
        for (key, value) in o.as_object().unwrap() {
            close(value, &t[key], &format!("regression case {k} {key}"));
        }
    }
}
