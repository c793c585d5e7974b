"""scikit-learn's answers to the cases of tests/ml_sklearn.rs.

Reads the cases as JSON on standard input and writes scikit-learn's results as
JSON on standard output, in the same order. A missing value travels as null
both ways (JSON has no NaN). Run by the test with $GUST_SERVICES_PYTHON, the
services' venv, which has scikit-learn.
"""

import json
import math
import sys
import warnings

import numpy as np
import sklearn
from sklearn import metrics
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)


def clean(v):
    """NaN → None, numpy → Python, in lists and dicts."""
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return None if math.isnan(v) else v
    if isinstance(v, np.integer):
        return int(v)
    return v


def matrix(rows):
    return np.array([[np.nan if x is None else x for x in r] for r in rows], dtype=float)


def scaler(case):
    x = matrix(case["x"])
    p = case["params"]
    kind = case["kind"]
    if kind == "robust":
        s = RobustScaler(
            quantile_range=tuple(p["quantile_range"]),
            with_centering=p["with_centering"],
            with_scaling=p["with_scaling"],
            unit_variance=p["unit_variance"],
        ).fit(x)
        fitted = {"center_": s.center_, "scale_": s.scale_}
    elif kind == "imputer":
        s = SimpleImputer(strategy=p["strategy"]).fit(x)
        fitted = {"statistics_": s.statistics_}
    elif kind == "standard":
        s = StandardScaler(with_mean=p["with_mean"], with_std=p["with_std"]).fit(x)
        fitted = {"mean_": s.mean_, "var_": s.var_, "scale_": s.scale_}
    else:
        s = MinMaxScaler(feature_range=tuple(p["feature_range"]), clip=p["clip"]).fit(x)
        fitted = {"data_min_": s.data_min_, "data_max_": s.data_max_, "scale_": s.scale_, "min_": s.min_}
    fitted = {k: (None if v is None else clean(v)) for k, v in fitted.items()}
    fitted["out"] = clean(s.transform(x))
    return fitted


def encoder(case):
    import pandas as pd

    def frame(columns):
        return pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in columns})

    train, new = frame(case["train"]), frame(case["new"])
    if case["kind"] == "one_hot":
        e = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(train)
        names = [str(n) for n in e.get_feature_names_out()]
    else:
        e = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1).fit(train)
        names = [str(n) for n in e.get_feature_names_out()]
    return {"names": names, "out": clean(e.transform(train)), "new": clean(e.transform(new))}


def stratified_kfold(case):
    y = np.array(case["y"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return clean(StratifiedKFold(case["k"])._make_test_folds(np.zeros(len(y)), y))


def kfold(case):
    return [clean(test) for _, test in KFold(case["k"]).split(np.zeros(case["n"]))]


def split_counts(case):
    y = np.array(case["y"])
    train, test = train_test_split(y, test_size=case["test_size"], stratify=y, random_state=0)
    classes = sorted(set(case["y"]))
    return {
        "train": [int((train == c).sum()) for c in classes],
        "test": [int((test == c).sum()) for c in classes],
    }


def classification(case):
    t, p = case["y_true"], case["y_pred"]
    out = {
        "accuracy": metrics.accuracy_score(t, p),
        "confusion": clean(metrics.confusion_matrix(t, p)),
    }
    for avg in ("macro", "weighted"):
        pr, rc, f1, _ = metrics.precision_recall_fscore_support(t, p, average=avg, zero_division=0)
        out[avg] = [pr, rc, f1]
    if case.get("proba") is not None:
        proba = np.array(case["proba"], dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["log_loss"] = metrics.log_loss(t, proba, labels=list(range(proba.shape[1])))
        if proba.shape[1] == 2:
            out["roc_auc"] = metrics.roc_auc_score(t, proba[:, 1])
        else:
            out["roc_auc"] = metrics.roc_auc_score(t, proba, multi_class="ovr", average="macro")
    if case.get("score") is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["roc_auc_score"] = metrics.roc_auc_score(case["positive"], case["score"])
    return clean(out)


def regression(case):
    t, p = case["y_true"], case["y_pred"]
    return clean({
        "rmse": metrics.root_mean_squared_error(t, p),
        "mae": metrics.mean_absolute_error(t, p),
        "r2": metrics.r2_score(t, p),
    })


def main():
    cases = json.load(sys.stdin)
    out = {
        "sklearn": sklearn.__version__,
        "encoders": [encoder(c) for c in cases["encoders"]],
        "scalers": [scaler(c) for c in cases["scalers"]],
        "stratified_kfold": [stratified_kfold(c) for c in cases["stratified_kfold"]],
        "kfold": [kfold(c) for c in cases["kfold"]],
        "split_counts": [split_counts(c) for c in cases["split_counts"]],
        "classification": [classification(c) for c in cases["classification"]],
        "regression": [regression(c) for c in cases["regression"]],
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
