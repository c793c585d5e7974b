#!/usr/bin/env python3
"""Regenerates ``template_parity.json``: Airflow's own rendering of the template cases.

The ground truth for gust's templates (see ``tests/template_parity.rs``). Reads the
case list ``template_parity_cases.json`` (next to this file) and renders each case
with Airflow's own templater: the sandboxed Jinja environment of the task SDK
(``create_template_env()``: Airflow's filters, ``StrictUndefined``, the ``do``
extension), Airflow's ``macros`` (``MacrosAccessor``), and the dates as the task
runner gives them (``coerce_datetime`` → pendulum ``DateTime`` in UTC), rendered with
``render_template_to_string`` as a templated field is.

For each case the output has ``expected`` (the rendered text) or ``error`` (the
exception class: Airflow raised). Cases with a ``check`` (non-deterministic macros:
``uuid``, ``hex32``, ``float_0_1``, ``float_positive``) are verified here against
the same shape and carry no ``expected``. ``gust_unsupported`` (a reason) is copied
from the case list: the Rust test then asserts that gust fails with a template
error instead of rendering something else.

The checked-in file was made with Airflow 3.3.2 on its venv's Python. Usage::

    /work/main/.services/airflow-venv/bin/python tests/data/templates/gen_template_parity.py

It is deterministic: rerunning it gives the same file.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import warnings
from pathlib import Path

warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)

import airflow  # noqa: E402
from airflow.sdk.definitions._internal.templater import create_template_env  # noqa: E402
from airflow.sdk.definitions.context import render_template_to_string  # noqa: E402
from airflow.sdk.execution_time.context import MacrosAccessor  # noqa: E402
from airflow.sdk.timezone import coerce_datetime  # noqa: E402

HERE = Path(__file__).resolve().parent
CASES = HERE / "template_parity_cases.json"
OUT = HERE / "template_parity.json"

SHAPES = {
    "uuid": re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"),
    "hex32": re.compile(r"^[0-9a-f]{32}$"),
}


def shape_ok(check: str, text: str) -> bool:
    if check in SHAPES:
        return bool(SHAPES[check].match(text))
    value = float(text)
    if check == "float_0_1":
        return 0.0 <= value < 1.0
    if check == "float_positive":
        return value > 0.0
    raise ValueError(f"unknown check {check!r}")


def context(spec: dict) -> dict:
    """The template context of a task run, built as the SDK task runner builds it."""

    def date(s: str):
        return coerce_datetime(dt.datetime.fromisoformat(s).astimezone(dt.timezone.utc))

    logical_date = date(spec["logical_date"])
    ds = logical_date.strftime("%Y-%m-%d")
    ts = logical_date.isoformat()
    return {
        "dag_id": spec["dag_id"],
        "task_id": spec["task_id"],
        "run_id": spec["run_id"],
        "macros": MacrosAccessor(),
        "params": spec["params"],
        "logical_date": logical_date,
        "ds": ds,
        "ds_nodash": ds.replace("-", ""),
        "ts": ts,
        "ts_nodash": logical_date.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": ts.replace("-", "").replace(":", ""),
        "data_interval_start": date(spec["data_interval_start"]),
        "data_interval_end": date(spec["data_interval_end"]),
    }


def main() -> int:
    spec = json.loads(CASES.read_text())
    env = create_template_env()
    out = []
    for case in spec["cases"]:
        row = {"name": case["name"], "template": case["template"]}
        try:
            text = render_template_to_string(env.from_string(case["template"]), context(spec["context"]))
        except Exception as e:  # noqa: BLE001 - any exception is "Airflow raised"
            row["error"] = type(e).__name__
        else:
            if "check" in case:
                if not shape_ok(case["check"], text):
                    print(f"{case['name']}: {text!r} is not a {case['check']}", file=sys.stderr)
                    return 1
                row["check"] = case["check"]
            else:
                row["expected"] = text
        if "gust_unsupported" in case:
            row["gust_unsupported"] = case["gust_unsupported"]
        out.append(row)
    doc = {
        "generator": "tests/data/templates/gen_template_parity.py",
        "airflow_version": airflow.__version__,
        "context": spec["context"],
        "cases": out,
    }
    OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(out)} cases to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
