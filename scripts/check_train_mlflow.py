"""Reads, with the Python MLflow client, what `examples/train_model` wrote (a
grid search logged by `TrainModel`), and asserts that it looks like what
`mlflow.sklearn` autologging logs for `GridSearchCV`. Run it after the example.

    MLFLOW_ALLOW_FILE_STORE=true MLFLOW_TRACKING_URI=file:./gust-train/mlruns python scripts/check_train_mlflow.py

Checks: the newest parent run of experiment `iris_experiment` is FINISHED with
`best_<param>` params and `best_cv_score`; it has the `cv_results.csv` artifact
with one row per candidate and scikit-learn's columns; one child run per
candidate is tagged `mlflow.parentRunId` with its params and mean/std test
scores; the model's `MLmodel` has the `gust_pipeline` flavor, a signature and an
input example. Exits non-zero with a message on the first failed check.
"""

import csv
import os
import sys
import tempfile

import mlflow
from mlflow import MlflowClient
from mlflow.models import Model

EXPERIMENT = os.environ.get("GUST_TRAIN_EXPERIMENT", "iris_experiment")


def check(cond, msg):
    if not cond:
        print(f"FAILED: {msg}", file=sys.stderr)
        sys.exit(1)


def main():
    uri = os.environ["MLFLOW_TRACKING_URI"]
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    check(exp is not None, f"experiment {EXPERIMENT!r} not found at {uri}")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=500)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    check(parents, f"no parent run in {EXPERIMENT!r}")
    parent = parents[0]
    rid = parent.info.run_id
    check(parent.info.status == "FINISHED", f"run {rid} is {parent.info.status}")
    best = {k: v for k, v in parent.data.params.items() if k.startswith("best_")}
    check(best, f"run {rid} has no best_<param> params: {sorted(parent.data.params)}")
    check("best_cv_score" in parent.data.metrics, f"run {rid} lacks best_cv_score")

    with tempfile.TemporaryDirectory() as d:
        path = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="cv_results.csv", dst_path=d)
        with open(path) as f:
            rows = list(csv.DictReader(f))
        for col in ("params", "mean_test_score", "std_test_score", "rank_test_score", "split0_test_score"):
            check(col in rows[0], f"cv_results.csv lacks column {col}: {list(rows[0])}")
        model_dir = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="model", dst_path=d)
        model = Model.load(model_dir)
        check("gust_pipeline" in model.flavors, f"MLmodel flavors {list(model.flavors)}")
        check(model.signature is not None, "MLmodel has no signature")
        example = model.load_input_example(model_dir)
        check(example is not None and list(example.columns) == model.signature.inputs.input_names(),
              f"input example {example}")

    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == rid]
    check(len(children) == len(rows), f"{len(children)} child runs for {len(rows)} candidates")
    for c in children:
        check("mean_test_score" in c.data.metrics and "std_test_score" in c.data.metrics,
              f"child {c.info.run_id} lacks mean/std test scores")
        check(c.data.params, f"child {c.info.run_id} has no params")
    print(f"OK {uri}: run {rid} with {best}, best_cv_score {parent.data.metrics['best_cv_score']:.4f}, "
          f"cv_results.csv of {len(rows)} candidates, {len(children)} child runs, MLmodel (gust_pipeline) with input example")


if __name__ == "__main__":
    main()
