"""Airflow 3.3.2's own decoders run on frames gust wrote.

    $GUST_AIRFLOW_PYTHON tests/data/airflow/check_frames.py DIR

For every `DIR/*.bin` (a whole frame, length prefix included):

* `req_*.bin`, a runtime -> supervisor frame: decoded as the supervisor's
  `length_prefixed_frame_reader` does (`msgspec.msgpack.Decoder(_RequestFrame)`),
  its body upgraded from the bundle's schema version and validated as
  `ActivitySubprocess.handle_requests` does (`ActivitySubprocess.decoder`,
  the `ToSupervisor` union);
* `resp_*.bin`, a supervisor -> runtime frame (gust's FakeSupervisor side):
  decoded as Airflow's own task runner does (`CommsDecoder`: `_ResponseFrame`,
  then the `ToTask` union).

Prints one JSON object: file name -> {"id", "type", "body"} with the body as
pydantic dumps it in JSON mode by alias (`schema`, not `schema_`), or {"error"} when Airflow refused the frame.
Run by tests/airflow_codec.rs.
"""

from __future__ import annotations

import json
import pathlib
import sys

import msgspec
from pydantic import TypeAdapter

from airflow.sdk.execution_time.comms import ToTask, _RequestFrame, _ResponseFrame
from airflow.sdk.execution_time.schema import resolve_body_class
from airflow.sdk.execution_time.schema.migrator import get_schema_version_migrator
from airflow.sdk.execution_time.supervisor import ActivitySubprocess

VERSION = get_schema_version_migrator()._supervisor_version
to_task = TypeAdapter(ToTask)
out: dict = {}
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.bin")):
    data = path.read_bytes()
    try:
        length = int.from_bytes(data[:4], "big")
        if length != len(data) - 4:
            raise ValueError(f"length prefix {length} for {len(data) - 4} bytes")
        if path.name.startswith("req_"):
            frame = msgspec.msgpack.Decoder(_RequestFrame).decode(data[4:])
            body = get_schema_version_migrator().upgrade(frame.body, resolve_body_class(frame.body), VERSION)
            msg = ActivitySubprocess.decoder.validate_python(body)
        else:
            frame = msgspec.msgpack.Decoder(_ResponseFrame).decode(data[4:])
            msg = to_task.validate_python(frame.body if frame.body is not None else frame.error)
        out[path.name] = {"id": frame.id, "type": type(msg).__name__, "body": msg.model_dump(mode="json", by_alias=True)}
    except Exception as e:  # noqa: BLE001 - reported to the Rust test
        out[path.name] = {"error": f"{type(e).__name__}: {e}"}
print(json.dumps(out))
