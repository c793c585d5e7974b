"""The contract between a packed gust pipeline and Airflow 3.3.2's worker, shown by Airflow's own code.

    $GUST_AIRFLOW_PYTHON coordinator_contract.py --bundles DIR --dag DAG --task TASK
        [--try-number N] [--max-tries M] [--conf JSON]
        [--connections JSON] [--variables JSON] [--xcoms JSON]

What a real Airflow worker does for a task queued to an ExecutableCoordinator,
minus the servers: ``supervise_task`` hands the task instance to the
coordinator's ``execute_task(what=, dag_rel_path=, bundle_info=, client=,
subprocess_logs_to_stdout=)``; the coordinator finds the bundle for DAG under
DIR, forks it with ``--comm``/``--logs``, and its supervisor makes every
Execution API call on the binary's behalf. Here the API client is the real
``airflow.sdk.api.client.Client`` on an ``httpx.MockTransport``: this file's
``handler`` is the API server, answering from the scripted state:

* ``--connections {"conn_id": {"conn_type": …, "host": …}}``, ``--variables
  {"key": "value"}``, ``--xcoms {"task_id/key": value}`` (XComs of this run);
  anything else is a 404, as the API server answers;
* the run: logical date 2026-01-01T00:00Z, data interval the day before it,
  ``--conf`` as ``dag_run.conf``, ``--try-number`` and ``--max-tries`` (so
  ``should_retry`` is Airflow's ``max_tries != 0 and try_number <= max_tries``).

Prints one JSON document on stdout: ``exit_code`` and ``final_state`` (the
coordinator's result) and ``calls``, every API call in order as ``{method,
path, query, body}`` (path relative to the API root). The task's log lines
and the supervisor's own go to stderr. Run by tests/airflow_mode.rs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid

# Keep stdout for the one JSON document: everything else written to it (the
# supervisor forwards the task's logs to stdout) goes to stderr.
result_out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

import httpx  # noqa: E402

from airflow.sdk.api.client import Client  # noqa: E402
from airflow.sdk.api.datamodels._generated import BundleInfo, TaskInstance  # noqa: E402
from airflow.sdk.coordinators.executable import ExecutableCoordinator  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--bundles", required=True)
parser.add_argument("--dag", required=True)
parser.add_argument("--task", required=True)
parser.add_argument("--try-number", type=int, default=1)
parser.add_argument("--max-tries", type=int, default=0)
parser.add_argument("--conf", type=json.loads, default={})
parser.add_argument("--connections", type=json.loads, default={})
parser.add_argument("--variables", type=json.loads, default={})
parser.add_argument("--xcoms", type=json.loads, default={})
args = parser.parse_args()

TI_ID = uuid.UUID("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
RUN_ID = "scheduled__2026-01-01T00:00:00+00:00"
calls: list[dict] = []


def not_found(what: str) -> httpx.Response:
    return httpx.Response(404, json={"detail": {"reason": "not_found", "message": f"{what} not found"}})


def handler(request: httpx.Request) -> httpx.Response:
    path = request.url.path.removeprefix("/execution/")
    body = json.loads(request.content) if request.content else None
    calls.append({"method": request.method, "path": path, "query": str(request.url.query, "ascii"), "body": body})
    parts = path.split("/")
    match request.method, parts:
        case "PATCH", ["task-instances", _, "run"]:
            return httpx.Response(200, json=run_context())
        case "PUT", ["task-instances", _, "heartbeat"]:
            return httpx.Response(204)
        case "PATCH", ["task-instances", _, "state"]:
            return httpx.Response(204)
        case "GET", ["connections", conn_id]:
            if conn_id not in args.connections:
                return not_found(f"connection {conn_id}")
            fields = dict.fromkeys(["host", "schema", "login", "password", "port", "extra"])
            return httpx.Response(200, json={**fields, **args.connections[conn_id], "conn_id": conn_id})
        case "GET", ["variables", key]:
            if key not in args.variables:
                return not_found(f"variable {key}")
            return httpx.Response(200, json={"key": key, "value": args.variables[key]})
        case "GET", ["xcoms", dag_id, run_id, task_id, key]:
            # A 404 here is not an error to the task: the client answers it
            # with XComResponse(value=None), i.e. XComResult{value: null}.
            if (dag_id, run_id) != (args.dag, RUN_ID) or f"{task_id}/{key}" not in args.xcoms:
                return not_found(f"xcom {task_id}/{key}")
            return httpx.Response(200, json={"key": key, "value": args.xcoms[f"{task_id}/{key}"]})
        case "POST", ["xcoms", _, _, _, _]:
            return httpx.Response(201, json=None)
    # A 4xx, not a 5xx: the client would retry a 5xx for half a minute.
    return httpx.Response(400, json={"detail": f"the contract has no {request.method} {path}"})


def run_context() -> dict:
    """The TIRunContext the API server returns for ``PATCH task-instances/{id}/run``."""
    return {
        "dag_run": {
            "dag_id": args.dag,
            "run_id": RUN_ID,
            "logical_date": "2026-01-01T00:00:00Z",
            "data_interval_start": "2025-12-31T00:00:00Z",
            "data_interval_end": "2026-01-01T00:00:00Z",
            "run_after": "2026-01-01T00:00:00Z",
            "start_date": "2026-01-01T00:00:05Z",
            "end_date": None,
            "run_type": "scheduled",
            "state": "running",
            "conf": args.conf,
            "consumed_asset_events": [],
            "partition_key": None,
        },
        "max_tries": args.max_tries,
        "should_retry": args.max_tries != 0 and args.try_number <= args.max_tries,
    }


client = Client(base_url="http://fake/execution/", token="t", transport=httpx.MockTransport(handler))
ti = TaskInstance(
    id=TI_ID,
    task_id=args.task,
    dag_id=args.dag,
    run_id=RUN_ID,
    try_number=args.try_number,
    dag_version_id=uuid.UUID("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"),
    queue="gust",
)
result = ExecutableCoordinator(executables_root=[args.bundles]).execute_task(
    what=ti,
    dag_rel_path=f"{args.dag}.py",
    bundle_info=BundleInfo(name="dags-folder"),
    client=client,
    subprocess_logs_to_stdout=False,  # the task logger prints them already
)
# A state the supervisor reported itself is a str; one it kept from the task, an enum.
final_state = getattr(result.final_state, "value", result.final_state)
json.dump(
    {"exit_code": result.exit_code, "final_state": final_state, "calls": calls},
    result_out,
    indent=1,
)
result_out.write("\n")
result_out.flush()
sys.exit(0)
