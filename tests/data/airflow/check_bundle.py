"""Airflow 3.3.2's own bundle lookup run on a file gust packed.

    $GUST_AIRFLOW_PYTHON tests/data/airflow/check_bundle.py BUNDLE DAG_ID

Prints one JSON object: `metadata` (the manifest as the coordinator's
`_read_bundle_metadata` parsed it after checking the trailer and the SHA-256,
or null when it skipped the file), and `command` / `schema_version` from
`ExecutableCoordinator._build_execute_task_command` over the bundle's
directory -- the call that picks the binary to fork for a task of DAG_ID --
or `error` when it found no usable bundle. Run by tests/airflow_codec.rs.
"""

from __future__ import annotations

import json
import pathlib
import sys
import uuid

from airflow.sdk.api.datamodels._generated import TaskInstance
from airflow.sdk.coordinators.executable import ExecutableCoordinator
from airflow.sdk.coordinators.executable.coordinator import _read_bundle_metadata

bundle = pathlib.Path(sys.argv[1])
dag_id = sys.argv[2]
out: dict = {"metadata": _read_bundle_metadata(bundle)}
ti = TaskInstance(
    id=uuid.uuid4(), task_id="t", dag_id=dag_id, run_id="r", try_number=1, dag_version_id=uuid.uuid4(), queue="gust"
)
try:
    command, schema_version = ExecutableCoordinator(executables_root=[bundle.parent])._build_execute_task_command(
        what=ti
    )
    out["command"] = command
    out["schema_version"] = schema_version
except (FileNotFoundError, ValueError) as e:
    out["error"] = str(e)
print(json.dumps(out, default=str))
