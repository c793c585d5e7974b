"""The Python side of benches/templates.rs: render features.sql N times the way
Airflow renders a templated field (a sandboxed Jinja2 environment with
StrictUndefined over the template search path). Prints the total seconds."""
import sys
import time
from datetime import datetime, timedelta, timezone

import jinja2
from jinja2.sandbox import SandboxedEnvironment

search_path, n = sys.argv[1], int(sys.argv[2])
env = SandboxedEnvironment(
    loader=jinja2.FileSystemLoader(search_path),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    cache_size=0,  # gust reads the file on every render; so does this
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
env.get_template("features.sql").render(**context)  # warm up
t0 = time.perf_counter()
for _ in range(n):
    env.get_template("features.sql").render(**context)
print(time.perf_counter() - t0)
