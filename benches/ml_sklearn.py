"""The scikit-learn side of benches/ml.rs, run with $GUST_SERVICES_PYTHON.

Modes (each prints one JSON object as its last stdout line):

  versions
  grid CSV GRID_JSON FOLDS SCORING
      pandas read_csv of the bench's credit CSV (exact float parsing; timed
      apart as load_secs),
      then GridSearchCV(Pipeline([RobustScaler(), HistGradientBoostingClassifier()]),
      the grid mapped from gust's names, cv=FOLDS, n_jobs=-1).fit: secs.
  scaler BIN ROWS COLS SAMPLES_JSON
      np.fromfile of the bench's raw little-endian f64 matrix (row-major;
      load_secs), then RobustScaler().fit_transform: secs. Prints center_,
      scale_ and the transformed values at the sampled [row, col]s, which the
      bench compares with gust's.

Peak RSS is each process's own VmHWM from the end of the data's loading
(reset then through /proc/self/clear_refs, so it includes the data held but
not the imports' and the parser's peaks; the grid search also reports the
peak before the reset); for the grid search the loky workers' are read before
this process exits (they idle after the fit) and reported apart. CPU seconds likewise: this process's, and the workers' from /proc.
"""
import json
import os
import sys
import time

t_start = time.perf_counter()

# gust's BoostingParams name -> HistGradientBoostingClassifier's.
GUST_TO_SKLEARN = {
    "iterations": "max_iter",
    "max_depth": "max_depth",
    "learning_rate": "learning_rate",
    "l2": "l2_regularization",
}


def vm_hwm_kib(pid="self"):
    """A process's own peak RSS (getrusage's ru_maxrss also counts the address
    space the process had before its exec: its spawning parent's, after vfork)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_hwm():
    """Resets this process's VmHWM to its current RSS (Linux's clear_refs,
    value 5), so the peak reported covers what follows the data's loading."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def cpu_secs(pid="self"):
    """user + system CPU seconds of a process (from /proc/<pid>/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def descendants(root):
    """The pids of every live descendant of `root`."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def versions():
    import numpy
    import pandas
    import sklearn
    import joblib

    print(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "sklearn": sklearn.__version__,
                "numpy": numpy.__version__,
                "pandas": pandas.__version__,
                "joblib": joblib.__version__,
            }
        )
    )


def grid(csv_path, grid_json, folds, scoring):
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import RobustScaler

    imports = time.perf_counter() - t_start
    t0 = time.perf_counter()
    # pandas 3 parses floats exactly by default (and deprecates the option).
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    df = pd.read_csv(csv_path, **exact)
    target = df.columns[-1]
    X = df.drop(columns=[target]).to_numpy(dtype=np.float64)
    y = df[target].to_numpy()
    load = time.perf_counter() - t0
    load_hwm = vm_hwm_kib()
    reset_hwm()

    gust_grid = json.loads(grid_json)
    param_grid = {
        "model__" + GUST_TO_SKLEARN[name]: values for name, values in gust_grid
    }
    # gust's gradient boosting is forust's depth-wise histogram GBM: trees
    # limited by depth only, 256 bins, L2 1 on the leaf weights, every
    # iteration kept. HGB's matching knobs: no leaf-count limit, 255 bins
    # (+1 for missing values), l2_regularization=1, no early stopping (HGB's
    # 'auto' turns it on above 10,000 rows).
    model = HistGradientBoostingClassifier(
        max_leaf_nodes=None,
        max_bins=255,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=0,
    )
    pipeline = Pipeline([("scaler", RobustScaler()), ("model", model)])
    search = GridSearchCV(
        pipeline, param_grid, scoring=scoring, cv=int(folds), n_jobs=-1, refit=True
    )
    t0 = time.perf_counter()
    search.fit(X, y)
    secs = time.perf_counter() - t0

    workers = descendants(os.getpid())
    worker_rss = [vm_hwm_kib(p) or 0 for p in workers]
    worker_cpu = sum(cpu_secs(p) for p in workers)
    res = search.cv_results_
    candidates = []
    for i, params in enumerate(res["params"]):
        candidates.append(
            {
                "params": {
                    name: params["model__" + GUST_TO_SKLEARN[name]]
                    for name, _ in gust_grid
                },
                "mean_test_score": float(res["mean_test_score"][i]),
                "std_test_score": float(res["std_test_score"][i]),
                "rank_test_score": int(res["rank_test_score"][i]),
                "mean_fit_time": float(res["mean_fit_time"][i]),
            }
        )
    print(
        json.dumps(
            {
                "secs": secs,
                "load_secs": load,
                "import_secs": imports,
                "rows": int(X.shape[0]),
                "features": int(X.shape[1]),
                "best_score": float(search.best_score_),
                "best_index": int(search.best_index_),
                "best_params": candidates[search.best_index_]["params"],
                "refit_secs": float(search.refit_time_),
                # The same positions as gust's child reports: the bench checks
                # that both sides read the same numbers.
                "x_samples": [
                    float(X[k * 7919 % X.shape[0], k % X.shape[1]]) for k in range(32)
                ],
                "candidates": candidates,
                "vmhwm_kib": vm_hwm_kib(),
                "load_vmhwm_kib": load_hwm,
                "worker_vmhwm_kib": worker_rss,
                "cpu_secs": cpu_secs(),
                "worker_cpu_secs": worker_cpu,
            }
        ),
        flush=True,
    )


def scaler(bin_path, rows, cols, samples_json):
    import numpy as np
    from sklearn.preprocessing import RobustScaler

    imports = time.perf_counter() - t_start
    rows, cols = int(rows), int(cols)
    t0 = time.perf_counter()
    X = np.fromfile(bin_path, dtype="<f8").reshape(rows, cols)
    load = time.perf_counter() - t0
    reset_hwm()
    cpu0 = cpu_secs()

    t0 = time.perf_counter()
    s = RobustScaler()
    out = s.fit_transform(X)
    secs = time.perf_counter() - t0
    cpu = cpu_secs() - cpu0

    samples = json.loads(samples_json)
    print(
        json.dumps(
            {
                "secs": secs,
                "load_secs": load,
                "import_secs": imports,
                "center": s.center_.tolist(),
                "scale": s.scale_.tolist(),
                "samples": [float(out[i, j]) for i, j in samples],
                "vmhwm_kib": vm_hwm_kib(),
                "cpu_secs": cpu,
            }
        ),
        flush=True,
    )


MODES = {"grid": grid, "scaler": scaler}

if __name__ == "__main__":
    if sys.argv[1:] == ["versions"]:
        versions()
    elif len(sys.argv) > 1 and sys.argv[1] in MODES:
        MODES[sys.argv[1]](*sys.argv[2:])
    else:
        sys.exit(f"usage: {sys.argv[0]} versions | {' | '.join(MODES)} ARGS...")
