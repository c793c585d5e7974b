"""Reads a gust-written MLflow file store with the real MLflow and checks it.

Usage: python mlflow_file_check.py <store root> <expectations.json>

tests/mlflow_file.rs writes the store and the expectations. Exit status 0 when
MLflow (with MLFLOW_ALLOW_FILE_STORE=true) reads everything gust wrote — the
experiment, the run (status, name, params, metrics, history, tags), the
artifacts, the registered model's versions and aliases — and, where this MLflow
has `mlflow migrate-filestore`, when the migrated SQLite database holds the
same. Every mismatch is printed; the exit status is 1 if there was any.
"""

import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile

os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("MLFLOW_REGISTRY_URI", None)

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"MISMATCH: {what}", file=sys.stderr)


def same_float(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def check_tracking(client, spec, where, artifacts=True):
    exp = client.get_experiment_by_name(spec["experiment"])
    check(exp is not None, f"{where}: experiment {spec['experiment']!r} is found by name")
    if exp is None:
        return
    check(exp.experiment_id == spec["experiment_id"], f"{where}: experiment id {exp.experiment_id}")
    check(exp.lifecycle_stage == "active", f"{where}: experiment is active")
    default = client.get_experiment("0")
    check(default.name == "Default", f"{where}: experiment 0 is Default, got {default.name!r}")

    run = client.get_run(spec["run_id"])
    check(run.info.status == "FINISHED", f"{where}: run status {run.info.status}")
    check(run.info.run_name == spec["run_name"], f"{where}: run name {run.info.run_name!r}")
    check(run.info.end_time is not None, f"{where}: run has an end time")
    check(run.data.params == spec["params"], f"{where}: params {run.data.params}")
    for key, value in spec["metrics"].items():
        got = run.data.metrics.get(key)
        check(got is not None and same_float(got, value), f"{where}: metric {key} = {got}, want {value}")
    for key, value in spec["tags"].items():
        check(run.data.tags.get(key) == value, f"{where}: tag {key} = {run.data.tags.get(key)!r}")
    for key, points in spec["history"].items():
        hist = sorted((m.step, m.value) for m in client.get_metric_history(spec["run_id"], key))
        want = sorted((s, v) for s, v in points)
        check(
            len(hist) == len(want) and all(a[0] == b[0] and same_float(a[1], b[1]) for a, b in zip(hist, want)),
            f"{where}: history of {key}: {hist}",
        )

    failed = client.get_run(spec["failed_run_id"])
    check(failed.info.status == "FAILED", f"{where}: failed run status {failed.info.status}")

    found = client.search_runs([exp.experiment_id], "metrics.accuracy > 0.5")
    check([r.info.run_id for r in found] == [spec["run_id"]], f"{where}: search_runs found {len(found)}")
    found = client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'")
    check(spec["run_id"] in [r.info.run_id for r in found], f"{where}: search by status")

    if artifacts:
        root = sorted((f.path, f.is_dir) for f in client.list_artifacts(spec["run_id"]))
        check(root == sorted((p, d) for p, d in spec["artifact_root"]), f"{where}: artifact root {root}")
        with tempfile.TemporaryDirectory() as dst:
            for rel, content in spec["artifact_files"].items():
                local = client.download_artifacts(spec["run_id"], rel, dst)
                got = pathlib.Path(local).read_text(encoding="utf-8")
                check(got == content, f"{where}: artifact {rel} content")


def check_registry(client, spec, where):
    name = spec["model"]
    versions = sorted(
        int(v.version) for v in client.search_model_versions(f"name='{name}'")
    )
    check(versions == spec["versions"], f"{where}: versions {versions}")
    for v in spec["versions"]:
        mv = client.get_model_version(name, str(v))
        check(mv.status == "READY", f"{where}: version {v} status {mv.status}")
        check(mv.run_id == spec["run_id"], f"{where}: version {v} run_id {mv.run_id}")
    model = client.get_registered_model(name)
    # Versions are ints or strings depending on the store; compare as text.
    aliases = {k: str(v) for k, v in model.aliases.items()}
    check(aliases == spec["aliases"], f"{where}: aliases {model.aliases}")
    for alias, version in spec["aliases"].items():
        mv = client.get_model_version_by_alias(name, alias)
        check(str(mv.version) == version, f"{where}: alias {alias} -> {mv.version}")


def main():
    root = pathlib.Path(sys.argv[1]).resolve()
    spec = json.loads(pathlib.Path(sys.argv[2]).read_text(encoding="utf-8"))
    uri = root.as_uri()
    print(f"mlflow {mlflow.__version__} reading {uri}")

    # The global URIs too: some client calls consult them, and MLflow's default
    # would create ./mlflow.db.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    check_tracking(client, spec, "file store")
    check_registry(client, spec, "file store")
    # Every experiment parses (staging directories and the like are skipped).
    names = {e.name for e in client.search_experiments()}
    check(spec["experiment"] in names and "Default" in names, f"search_experiments: {names}")

    from mlflow.cli import cli

    if "migrate-filestore" in cli.commands:
        with tempfile.TemporaryDirectory() as tmp:
            db = f"sqlite:///{tmp}/migrated.db"
            proc = subprocess.run(
                [sys.executable, "-m", "mlflow", "migrate-filestore", "--source", str(root), "--target", db, "--no-progress"],
                capture_output=True,
                text=True,
            )
            check(proc.returncode == 0, f"migrate-filestore exit {proc.returncode}: {proc.stderr[-2000:]}")
            if proc.returncode == 0:
                migrated = MlflowClient(tracking_uri=db, registry_uri=db)
                # Artifacts stay where they are (file:// URIs), so they read the same.
                check_tracking(migrated, spec, "migrated", artifacts=True)
                check_registry(migrated, spec, "migrated")
                print("migrate-filestore: checked")
    else:
        print("migrate-filestore: not in this MLflow; skipped")

    if failures:
        print(f"{len(failures)} mismatches", file=sys.stderr)
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
