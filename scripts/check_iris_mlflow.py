"""Reads, with the Python MLflow client, what `examples/iris_pipeline` wrote, and
asserts it (issue #5's cross-check). Run it after the example ran at least twice.

    MLFLOW_TRACKING_URI=http://127.0.0.1:55050 python scripts/check_iris_mlflow.py
    MLFLOW_ALLOW_FILE_STORE=true MLFLOW_TRACKING_URI=file:./mlruns python scripts/check_iris_mlflow.py

Checks: the newest runs of experiment `testjun` are FINISHED with the params and
metrics `TrainModel` logs; the model's `MLmodel` downloads and parses as an MLflow
model with the `gust_pipeline` flavor, a signature and an input example that
MLflow loads as a DataFrame; version numbers of `IrisModel` increase across the
last two runs and carry the tags `RegisterModel` sets; alias `champion` resolves
to the most accurate of them.
Exits non-zero with a message on the first failed check.
"""

import os
import sys
import tempfile

import mlflow
from mlflow import MlflowClient
from mlflow.models import Model

EXPERIMENT = os.environ.get("GUST_IRIS_EXPERIMENT", "testjun")
MODEL = os.environ.get("GUST_IRIS_MODEL", "IrisModel")


def check(cond, msg):
    if not cond:
        print(f"FAILED: {msg}", file=sys.stderr)
        sys.exit(1)


def main():
    uri = os.environ["MLFLOW_TRACKING_URI"]
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    exp = client.get_experiment_by_name(EXPERIMENT)
    check(exp is not None, f"experiment {EXPERIMENT!r} not found at {uri}")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=2)
    check(len(runs) == 2, f"expected at least two runs in {EXPERIMENT!r}, found {len(runs)}")

    for run in runs:
        rid = run.info.run_id
        check(run.info.status == "FINISHED", f"run {rid} is {run.info.status}")
        for p in ("estimator", "n_trees", "seed", "features", "target", "train_rows", "test_rows"):
            check(p in run.data.params, f"run {rid} lacks param {p}")
        check(run.data.params["n_trees"] == "100", f"run {rid}: n_trees {run.data.params['n_trees']}")
        check(run.data.params["estimator"] == "random_forest_classifier", f"run {rid}: estimator")
        check(run.data.params["test_rows"] == "30", f"run {rid}: test_rows {run.data.params['test_rows']}")
        for m in ("accuracy", "f1_macro"):
            check(m in run.data.metrics, f"run {rid} lacks metric {m}")
            check(0.0 <= run.data.metrics[m] <= 1.0, f"run {rid}: {m}={run.data.metrics[m]}")
        with tempfile.TemporaryDirectory() as d:
            path = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="iris_model", dst_path=d)
            model = Model.load(path)
            check("gust_pipeline" in model.flavors, f"run {rid}: MLmodel flavors {list(model.flavors)}")
            check(model.run_id == rid, f"run {rid}: MLmodel run_id {model.run_id}")
            check(model.signature is not None, f"run {rid}: MLmodel has no signature")
            names = model.signature.inputs.input_names()
            check(names == ["SepalLength", "SepalWidth", "PetalLength", "PetalWidth"], f"signature inputs {names}")
            example = model.load_input_example(path)
            check(example is not None and list(example.columns) == names, f"run {rid}: input example {example}")
            check(len(example) == 5, f"run {rid}: input example has {len(example)} rows")

    versions = {}
    for v in client.search_model_versions(f"name='{MODEL}'"):
        versions[v.run_id] = int(v.version)
        check("logical_date" in v.tags, f"version {v.version} lacks tag logical_date: {v.tags}")
        check(v.description and "iris" in v.description, f"version {v.version} description {v.description!r}")
    newest, previous = runs[0].info.run_id, runs[1].info.run_id
    check(newest in versions and previous in versions, f"runs not registered as {MODEL} versions: {versions}")
    check(versions[newest] > versions[previous], f"version of the newer run {versions[newest]} <= {versions[previous]}")
    champion = client.get_model_version_by_alias(MODEL, "champion")
    check(champion.run_id in {r.run_id for r in client.search_model_versions(f"name='{MODEL}'")}, "champion points nowhere")
    check(champion.status == "READY", f"champion version status {champion.status}")
    champion_run = client.get_run(champion.run_id)
    best = max(r.data.metrics["accuracy"] for r in runs)
    check(champion_run.data.metrics["accuracy"] >= best, "champion is not the most accurate of the last runs")
    print(
        f"OK {uri}: runs {previous} -> {newest} FINISHED with params and metrics; MLmodel (gust_pipeline, signature, input example) parsed; "
        f"{MODEL} versions {versions[previous]} -> {versions[newest]}; champion = version {champion.version}"
    )


if __name__ == "__main__":
    main()
