"""The Python side of benches/templates.rs: render features.sql N times the way
Airflow renders a templated field (a sandboxed Jinja2 environment with
StrictUndefined over the template search path).

Prints two totals in seconds: with Jinja2's template cache (the best case), and
with a fresh environment per render (what Airflow does: each task instance builds
its template environment anew, so each render parses the file)."""
import sys
import time
from datetime import datetime, timedelta, timezone

import jinja2
from jinja2.sandbox import SandboxedEnvironment

search_path, n = sys.argv[1], int(sys.argv[2])


def make_env():
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(search_path),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


seoul = timezone(timedelta(hours=9))
logical_date = datetime(2025, 1, 8, tzinfo=seoul)
context = {
    "ds": logical_date.strftime("%Y-%m-%d"),
    "ds_nodash": logical_date.strftime("%Y%m%d"),
    "ts": logical_date.isoformat(),
    "logical_date": logical_date,
    "params": {},
}

env = make_env()
env.get_template("features.sql").render(**context)  # warm up
t0 = time.perf_counter()
for _ in range(n):
    env.get_template("features.sql").render(**context)
cached = time.perf_counter() - t0

t0 = time.perf_counter()
for _ in range(n):
    make_env().get_template("features.sql").render(**context)
fresh = time.perf_counter() - t0
print(cached, fresh)
