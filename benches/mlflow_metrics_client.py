"""Python side of benches/mlflow_metrics.rs: N points of metric `loss` into a new
run, with MlflowClient.log_metric in a loop or with log_batch (which the client
splits into requests of 1000 metrics itself).

Usage: mlflow_metrics_client.py "log_metric loop"|log_batch EXPERIMENT_ID N
(server from MLFLOW_TRACKING_URI). Prints one JSON line: run_id, secs.
"""
import json
import sys
import time

from mlflow import MlflowClient
from mlflow.entities import Metric


def main():
    how, experiment_id, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = MlflowClient()
    run = client.create_run(experiment_id, run_name=f"python {how}")
    run_id = run.info.run_id
    ts = int(time.time() * 1000)
    start = time.perf_counter()
    if how == "log_batch":
        metrics = [Metric("loss", 1.0 / (1.0 + i), ts + i, i) for i in range(n)]
        client.log_batch(run_id, metrics=metrics)
    else:
        for i in range(n):
            client.log_metric(run_id, "loss", 1.0 / (1.0 + i), timestamp=ts + i, step=i)
    secs = time.perf_counter() - start
    client.set_terminated(run_id)
    print(json.dumps({"run_id": run_id, "secs": secs}))


if __name__ == "__main__":
    main()
