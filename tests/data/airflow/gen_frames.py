"""Golden frames of the Airflow 3.3.2 supervisor, written by Airflow's own code.

Run with the Python of a venv holding apache-airflow==3.3.2 (from the repository root):

    /work/airflow-venv/bin/python tests/data/airflow/gen_frames.py

It builds real message objects with Airflow's classes (StartupDetails with a
TIRunContext, and the results of the supervisor's own request handlers in
``airflow.sdk.execution_time.request_handlers`` over a stub API client), and
writes each one through ``WatchedSubprocess.send_msg`` -- the supervisor's
method: schema-version downgrade, ``model_dump`` with the handler's dump
options, ``_ResponseFrame`` and its msgspec encoder, the 4-byte length prefix
included -- into ``frames/<name>.bin``. ``manifest.json`` lists every frame
with the slot it fills and the body as pydantic dumps it in JSON mode
(datetimes as ISO strings), which ``tests/airflow_codec.rs`` compares with
what gust decodes. It also records the supervisor schema version Airflow
accepts. The output is deterministic: rerunning it changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import uuid

import airflow.sdk.execution_time.request_handlers as rh
from airflow.sdk.api.datamodels._generated import (
    BundleInfo,
    ConnectionResponse,
    TaskInstance,
    TIRunContext,
    VariableResponse,
    XComResponse,
)
from airflow.sdk.exceptions import ErrorType
from airflow.sdk.execution_time.comms import (
    ErrorResponse,
    GetConnection,
    GetVariable,
    GetXCom,
    StartupDetails,
    XComResult,
)
from airflow.sdk.execution_time.schema.migrator import get_schema_version_migrator
from airflow.sdk.execution_time.supervisor import WatchedSubprocess

HERE = pathlib.Path(__file__).resolve().parent
FRAMES = HERE / "frames"
UTC = dt.timezone.utc
SCHEMA = json.loads((pathlib.Path(rh.__file__).parent / "schema" / "schema.json").read_text())
SUPERVISOR_SCHEMA_VERSION = get_schema_version_migrator()._supervisor_version


class Capture:
    """Stands in for the WatchedSubprocess: `send_msg` writes to `stdin.sendall`."""

    def __init__(self) -> None:
        # What _PopenActivitySubprocess gets from ExecutableCoordinator for a bundle
        # declaring this version (the only one 3.3.2 accepts).
        self._subprocess_schema_version = SUPERVISOR_SCHEMA_VERSION
        self.stdin = self
        self.sent = bytearray()

    def sendall(self, data) -> None:
        self.sent += data

    def _serialize_response(self, msg, **dump_opts):
        return WatchedSubprocess._serialize_response(self, msg, **dump_opts)

    def send_msg(self, msg, request_id, error=None, **dump_opts) -> bytes:
        self.sent = bytearray()
        WatchedSubprocess.send_msg(self, msg, request_id, error, **dump_opts)
        return bytes(self.sent)


class Stub:
    """The parts of airflow.sdk.api.client.Client the request handlers call."""

    def __init__(self, answer) -> None:
        self.connections = self.variables = self.xcoms = self
        self._answer = answer

    def get(self, *args, **kwargs):
        return self._answer


manifest: dict = {
    "airflow_version": __import__("airflow").__version__,
    "supervisor_schema_version": SUPERVISOR_SCHEMA_VERSION,
    "schema_json_api_version": SCHEMA["api_version"],
    "frames": [],
}
FRAMES.mkdir(exist_ok=True)


def emit(name: str, request_id: int, msg=None, error=None, dump_opts=None, expect=None) -> None:
    data = Capture().send_msg(msg, request_id, error, **(dump_opts or {}))
    (FRAMES / f"{name}.bin").write_bytes(data)
    slot = "body" if msg is not None else ("error" if error is not None else "none")
    shown = msg if msg is not None else error
    if expect is None and shown is not None:
        expect = shown.model_dump(mode="json", **(dump_opts or {}))
    manifest["frames"].append(
        {"name": name, "file": f"frames/{name}.bin", "id": request_id, "slot": slot, "expect": expect}
    )


def ti(**kw) -> TaskInstance:
    base = dict(
        id=uuid.UUID("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
        task_id="extract",
        dag_id="etl",
        run_id="scheduled__2026-01-02T00:00:00+00:00",
        try_number=1,
        dag_version_id=uuid.UUID("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"),
        queue="gust",
    )
    base.update(kw)
    return TaskInstance(**base)


def startup(ti_: TaskInstance, ctx: dict, start_date: dt.datetime) -> StartupDetails:
    # As supervisor.py's _on_child_started builds it.
    return StartupDetails.model_construct(
        ti=ti_,
        dag_rel_path="etl.py",
        bundle_info=BundleInfo(name="dags-folder", version=None),
        ti_context=TIRunContext.model_validate(ctx),
        start_date=start_date,
        sentry_integration="",
    )


# 1. A scheduled run: every datetime set, in all three msgpack timestamp widths
#    (whole seconds: 32-bit; microseconds: 64-bit; before 1970: 96-bit).
emit(
    "startup_scheduled",
    0,
    startup(
        ti(),
        {
            "dag_run": {
                "dag_id": "etl",
                "run_id": "scheduled__2026-01-02T00:00:00+00:00",
                "logical_date": dt.datetime(2026, 1, 2, tzinfo=UTC),
                "data_interval_start": dt.datetime(2026, 1, 1, tzinfo=UTC),
                "data_interval_end": dt.datetime(2026, 1, 2, tzinfo=UTC),
                "run_after": dt.datetime(2026, 1, 2, 0, 0, 5, 250000, tzinfo=UTC),
                "start_date": dt.datetime(2026, 1, 2, 0, 0, 6, 123456, tzinfo=UTC),
                "end_date": None,
                "clear_number": 0,
                "run_type": "scheduled",
                "state": "running",
                "conf": {"region": "kr", "limits": {"rows": 1000, "ratio": 0.25}, "tags": ["a", "b"], "on": True},
                "consumed_asset_events": [],
                "partition_key": None,
                "partition_date": dt.datetime(1969, 7, 20, 20, 17, 40, 500000, tzinfo=UTC),
            },
            "max_tries": 3,
            "should_retry": True,
            "task_reschedule_count": 0,
        },
        dt.datetime(2026, 1, 2, 0, 0, 7, 1, tzinfo=UTC),
    ),
)

# 2. A manual run without a logical date (Airflow 3 allows it): nulls everywhere,
#    a mapped task instance, no retries left.
emit(
    "startup_manual_no_logical_date",
    0,
    startup(
        ti(task_id="load", try_number=2, map_index=3, run_id="manual__2026-01-02T09:30:00+00:00"),
        {
            "dag_run": {
                "dag_id": "etl",
                "run_id": "manual__2026-01-02T09:30:00+00:00",
                "logical_date": None,
                "data_interval_start": None,
                "data_interval_end": None,
                "run_after": dt.datetime(2026, 1, 2, 9, 30, tzinfo=UTC),
                "start_date": None,
                "end_date": None,
                "run_type": "manual",
                "state": "queued",
                "conf": None,
                "triggering_user_name": "admin",
                "consumed_asset_events": [],
                "partition_key": None,
                "note": "rerun",
            },
            "max_tries": 2,
            "should_retry": False,
        },
        dt.datetime(2026, 1, 2, 9, 30, 1, tzinfo=UTC),
    ),
)

# 3. Connections, through the supervisor's handler (masking, exclude_unset, by_alias).
# As the API client parses GET connections/{id} (the wire name is "schema").
full_conn = ConnectionResponse.model_validate(
    {
        "conn_id": "my_pg",
        "conn_type": "postgres",
        "host": "db.internal",
        "schema": "analytics",
        "login": "etl",
        "password": "s3cr3t",
        "port": 5432,
        "extra": json.dumps({"sslmode": "require", "options": {"search_path": "etl"}}),
    }
)
resp, opts = rh.handle_get_connection(Stub(full_conn), GetConnection(conn_id="my_pg"))
emit("connection_result", 1, resp, dump_opts=opts)

bare_conn = ConnectionResponse.model_validate(
    {"conn_id": "bare", "conn_type": "http", "host": None, "schema": None, "login": None, "password": None,
     "port": None, "extra": None}
)
resp, opts = rh.handle_get_connection(Stub(bare_conn), GetConnection(conn_id="bare"))
emit("connection_result_bare", 2, resp, dump_opts=opts)

resp, opts = rh.handle_get_connection(
    Stub(ErrorResponse(error=ErrorType.CONNECTION_NOT_FOUND, detail={"conn_id": "nope"})),
    GetConnection(conn_id="nope"),
)
emit("connection_not_found", 3, resp, dump_opts=opts)

# 4. Variables.
resp, opts = rh.handle_get_variable(Stub(VariableResponse(key="threshold", value="0.75")), GetVariable(key="threshold"))
emit("variable_result", 4, resp, dump_opts=opts)

resp, opts = rh.handle_get_variable(
    Stub(ErrorResponse(error=ErrorType.VARIABLE_NOT_FOUND, detail={"key": "missing"})), GetVariable(key="missing")
)
emit("variable_not_found", 5, resp, dump_opts=opts)

resp, opts = rh.handle_get_variable(
    Stub(ErrorResponse(error=ErrorType.PERMISSION_DENIED, detail={"key": "secret", "status_code": 403})),
    GetVariable(key="secret"),
)
emit("variable_permission_denied", 6, resp, dump_opts=opts)

# 5. XComs: nested JSON, and a missing one (value null, not an error).
nested = {
    "rows": 1234,
    "ratio": 0.5,
    "big": 2**63,
    "neg": -(2**63),
    "name": "한글 ✓",
    "ok": True,
    "none": None,
    "items": [{"id": 1, "tags": []}, {"id": 2, "tags": ["x"]}],
    "empty": {},
}
resp, opts = rh.handle_get_xcom(
    Stub(XComResponse(key="return_value", value=nested)),
    GetXCom(key="return_value", dag_id="etl", run_id="r", task_id="extract"),
)
emit("xcom_result_nested", 7, resp, dump_opts=opts)

resp, opts = rh.handle_get_xcom(
    Stub(XComResponse(key="return_value", value=None)),
    GetXCom(key="return_value", dag_id="etl", run_id="r", task_id="nothing"),
)
emit("xcom_result_missing", 8, resp, dump_opts=opts)

# Values no JSON XCom holds, built past pydantic's validation, to pin gust's
# documented msgpack -> JSON mapping on msgspec's encoding of them.
odd = XComResult.model_construct(
    key="odd",
    value={1: "int key", "bin": b"\x00\xff", "nan": float("nan"), "inf": float("inf"),
           "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)},
    type="XComResult",
)
emit(
    "xcom_result_odd_values",
    9,
    odd,
    dump_opts={"exclude_unset": True},
    expect={"key": "odd", "type": "XComResult",
            "value": {"1": "int key", "bin": [0, 255], "nan": None, "inf": None, "when": "2026-01-02T03:04:05Z"}},
)

# 6. Empty answers (SetXCom, PutVariable, TaskState, SucceedTask...).
emit("empty_response", 10)

# 7. The error slot, as handle_requests sends it: an API error with a status code,
#    and an unexpected exception (no status code).
emit(
    "api_server_error",
    11,
    error=ErrorResponse(
        error=ErrorType.API_SERVER_ERROR,
        detail={"status_code": 500, "message": "Server error '500 Internal Server Error'",
                "detail": {"detail": "database is locked"}},
    ),
)
emit(
    "api_transport_error",
    12,
    error=ErrorResponse(
        error=ErrorType.API_SERVER_ERROR,
        detail={"status_code": None, "message": "[Errno 111] Connection refused", "exception_type": "ConnectError"},
    ),
)

(HERE / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False, allow_nan=False) + "\n")
print(f"wrote {len(manifest['frames'])} frames for Airflow {manifest['airflow_version']}, "
      f"supervisor schema {SUPERVISOR_SCHEMA_VERSION}")
