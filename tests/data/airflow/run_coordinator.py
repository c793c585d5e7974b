"""Airflow 3.3.2's real ExecutableCoordinator running one task of a bundle gust packed.

    $GUST_AIRFLOW_PYTHON tests/data/airflow/run_coordinator.py EXECUTABLES_ROOT DAG_ID TASK_ID

No servers: the supervisor's Execution API client talks to an
``httpx.MockTransport`` (the contract test of the research notes, section 2.4)
that serves the task's run context, a connection ``my_pg``, a variable
``threshold`` (every other one is missing), an upstream XCom
``extract.return_value`` and records every call. The coordinator finds the
bundle under EXECUTABLES_ROOT, forks it with ``--comm``/``--logs`` and
supervises it to its exit. Prints one JSON object on the last line:
``exit_code``, ``final_state`` and ``calls`` (method, path, JSON body).
Run by tests/airflow_codec.rs.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import uuid

import httpx

from airflow.sdk.api.client import Client
from airflow.sdk.api.datamodels._generated import BundleInfo, TaskInstance
from airflow.sdk.coordinators.executable import ExecutableCoordinator

root, dag_id, task_id = sys.argv[1], sys.argv[2], sys.argv[3]
run_id = "manual__2026-01-02T00:00:00+00:00"
calls: list[dict] = []


def handler(request: httpx.Request) -> httpx.Response:
    path = request.url.path.removeprefix("/execution/")
    body = json.loads(request.content) if request.content else None
    calls.append({"method": request.method, "path": path, "query": str(request.url.query, "ascii"), "body": body})
    if request.method == "PATCH" and path.endswith("/run"):
        return httpx.Response(
            200,
            json={
                "dag_run": {
                    "dag_id": dag_id,
                    "run_id": run_id,
                    "logical_date": "2026-01-02T00:00:00Z",
                    "data_interval_start": "2026-01-01T00:00:00Z",
                    "data_interval_end": "2026-01-02T00:00:00Z",
                    "run_after": "2026-01-02T00:00:00Z",
                    "start_date": "2026-01-02T00:00:01.5Z",
                    "end_date": None,
                    "run_type": "manual",
                    "state": "running",
                    "conf": {"limit": 10},
                    "consumed_asset_events": [],
                    "partition_key": None,
                },
                "max_tries": 1,
                "should_retry": False,
            },
        )
    if path.endswith("/heartbeat"):
        return httpx.Response(204)
    if path.endswith("/state"):
        return httpx.Response(204)
    if path == "connections/my_pg":
        return httpx.Response(
            200,
            json={"conn_id": "my_pg", "conn_type": "postgres", "host": "db.internal", "schema": "analytics",
                  "login": "etl", "password": "s3cr3t-pw", "port": 5432, "extra": '{"sslmode": "require"}'},
        )
    if path == "variables/threshold":
        return httpx.Response(200, json={"key": "threshold", "value": "0.75"})
    if path.startswith(("connections/", "variables/")) and request.method == "GET":
        return httpx.Response(404, json={"detail": {"reason": "not_found", "message": "not found"}})
    if path.startswith("xcoms/") and request.method == "GET":
        if path == f"xcoms/{dag_id}/{run_id}/extract/return_value":
            return httpx.Response(200, json={"key": "return_value", "value": {"rows": 3, "ok": True}})
        return httpx.Response(404, json={"detail": {"reason": "not_found"}})
    if path.startswith("xcoms/") and request.method == "POST":
        return httpx.Response(201, json=None)
    return httpx.Response(500, json={"detail": f"unexpected {request.method} {path}"})


client = Client(base_url="http://fake/execution/", token="t", transport=httpx.MockTransport(handler))
ti = TaskInstance(
    id=uuid.UUID("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
    task_id=task_id,
    dag_id=dag_id,
    run_id=run_id,
    try_number=1,
    dag_version_id=uuid.UUID("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"),
    queue="gust",
)
result = ExecutableCoordinator(executables_root=[root]).execute_task(
    what=ti,
    dag_rel_path=f"{dag_id}.py",
    bundle_info=BundleInfo(name="dags-folder"),
    client=client,
    subprocess_logs_to_stdout=True,
)
print(json.dumps({"exit_code": result.exit_code, "final_state": str(result.final_state), "calls": calls}))
