#!/usr/bin/env bash
# Tier 3 of the Airflow tests: a real Airflow 3.3.2 on 127.0.0.1 (SQLite,
# LocalExecutor, api-server + scheduler + dag-processor) runs one triggered run
# of DAG `af_demo` whose gust tasks are `@task.stub(queue="gust")`, executed by
# the packed test binary through Airflow's ExecutableCoordinator.
#
#   e2e.sh BUNDLE WORKDIR
#
# BUNDLE: the packed binary (its directory is the coordinator's executables_root).
# WORKDIR: an empty directory; AIRFLOW_HOME, the DAG file and every process's log
# go there. Needs AIRFLOW_BIN (the venv's `airflow`; default: next to
# GUST_AIRFLOW_PYTHON). Prints one JSON document on stdout: the run's state and
# its task instances. Everything it starts is stopped on exit.
set -euo pipefail

BUNDLE=$(realpath "$1")
WORK=$(realpath "$2")
PY=${GUST_AIRFLOW_PYTHON:?set GUST_AIRFLOW_PYTHON to the python of a venv with apache-airflow==3.3.2}
AIRFLOW_BIN=${AIRFLOW_BIN:-$(dirname "$PY")/airflow}
TIMEOUT=${GUST_E2E_TIMEOUT:-420}
RUN_ID=gust_e2e

export AIRFLOW_HOME=$WORK/home
mkdir -p "$AIRFLOW_HOME" "$WORK/dags"
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# Config every process shares (research notes §2.2). The JWT secret must be the
# same for the scheduler (which signs the workload tokens) and the api-server.
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__PARALLELISM=2
export AIRFLOW__API__WORKERS=1
export AIRFLOW__API__PORT=$PORT
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__BASE_URL=http://127.0.0.1:$PORT
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$PORT/execution/
export AIRFLOW__CORE__DAGS_FOLDER=$WORK/dags
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
# 64+ bytes: a shorter HS512 key makes every process warn (InsecureKeyLengthWarning).
export AIRFLOW__API_AUTH__JWT_SECRET=gust-e2e-jwt-secret-not-a-real-one-0123456789abcdef0123456789abcdef
export AIRFLOW__CORE__FERNET_KEY=
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$AIRFLOW_HOME/airflow.db
export AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC=1
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5
# The coordinator runs in the scheduler's LocalExecutor workers: [sdk] must be
# visible to the scheduler.
export AIRFLOW__SDK__COORDINATORS="{\"gust\": {\"classpath\": \"airflow.sdk.coordinators.executable.ExecutableCoordinator\", \"kwargs\": {\"executables_root\": [\"$(dirname "$BUNDLE")\"]}}}"
export AIRFLOW__SDK__QUEUE_TO_COORDINATOR='{"gust": "gust"}'
# Nothing of the caller's connections or variables: af_db and af_n exist only
# in the api-server's environment below, which is where Airflow resolves them.
for v in $(env | grep -oE '^AIRFLOW_(CONN|VAR)_[A-Za-z0-9_]+' || true); do unset "$v"; done

PIDS=()
stop() {
    for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
    sleep 2
    for p in "${PIDS[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
}
trap stop EXIT
# Killed (a test timeout, ^C): still stop the servers, through the EXIT trap.
trap 'exit 143' TERM INT HUP
log() { echo "[e2e $(date -u +%H:%M:%S)] $*" >&2; }

# The DAG Airflow parses: the gust tasks are stubs on queue gust, with the same
# ids as in the binary; Python tasks check their XComs and measure overhead.
cat > "$WORK/dags/af_demo.py" <<'PYEOF'
from datetime import timedelta

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="af_demo",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"factor": 2},
)
def af_demo():
    @task.stub(task_id="extract", queue="gust")
    def extract(): ...

    @task.stub(task_id="transform", queue="gust")
    def transform(): ...

    @task.stub(task_id="noop", queue="gust")
    def noop(): ...

    @task.stub(task_id="flaky", queue="gust", retries=1, retry_delay=timedelta(seconds=1))
    def flaky(): ...

    @task.stub(task_id="broken", queue="gust", retries=2, retry_delay=timedelta(seconds=1))
    def broken(): ...

    @task(task_id="check")
    def check(ti=None):
        got = ti.xcom_pull(task_ids="extract")
        assert got == {"n": 21, "host": "db.internal", "try": 1}, got
        day = ti.xcom_pull(task_ids="extract", key="day")
        assert isinstance(day, str) and len(day) == 10, day
        t = ti.xcom_pull(task_ids="transform")
        assert t["n"] == 42, t
        print("gust-e2e check ok", got, t)

    @task(task_id="py_noop")
    def py_noop():
        return None

    @task(task_id="after_broken")
    def after_broken():
        return None

    # The only leaf: the run succeeds when every check passed, even though
    # flaky and broken fail on purpose.
    @task(task_id="done", trigger_rule="all_done")
    def done():
        return None

    e, t, c = extract(), transform(), check()
    e >> t >> c
    n, p = noop(), py_noop()
    f = flaky()
    b, a = broken(), after_broken()
    b >> a
    d = done()
    [c, n, p, f, a] >> d


af_demo()
PYEOF

T0=$(date +%s)
log "airflow db migrate (AIRFLOW_HOME=$AIRFLOW_HOME, port $PORT)"
"$AIRFLOW_BIN" db migrate >"$WORK/db-migrate.log" 2>&1

start() { # name, then env assignments and the command
    local name=$1
    shift
    setsid env "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    log "started $name (pid $!)"
}
# Connections and variables are served by the api-server (Execution API).
start api-server AIRFLOW_CONN_AF_DB='postgres://etl:af-pw-91c2e@db.internal:5432/' AIRFLOW_VAR_AF_N=21 \
    "$AIRFLOW_BIN" api-server -H 127.0.0.1 -p "$PORT" -w 1
# The scheduler's LocalExecutor workers fork the bundle: they make it the pipeline.
start scheduler GUST_TEST_PIPELINE=1 "$AIRFLOW_BIN" scheduler
start dag-processor "$AIRFLOW_BIN" dag-processor

log "airflow dags reserialize"
"$AIRFLOW_BIN" dags reserialize >"$WORK/reserialize.log" 2>&1
"$AIRFLOW_BIN" dags unpause af_demo >"$WORK/unpause.log" 2>&1
# Wait for the api-server, its Execution API included, before triggering: the
# workers' first PATCH /run otherwise waits for it (their client retries).
for path in api/v2/monitor/health execution/health; do
    for _ in $(seq 1 120); do
        curl -fsS "http://127.0.0.1:$PORT/$path" >/dev/null 2>&1 && break
        sleep 1
    done
done
log "triggering run $RUN_ID"
"$AIRFLOW_BIN" dags trigger af_demo --run-id "$RUN_ID" >"$WORK/trigger.log" 2>&1
T1=$(date +%s)

# Poll the metadata DB directly (no airflow CLI start-up per poll).
DB=$AIRFLOW_HOME/airflow.db
query() {
    "$PY" - "$DB" "$RUN_ID" <<'PYEOF'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.row_factory = sqlite3.Row
run = db.execute("select state from dag_run where dag_id='af_demo' and run_id=?", (sys.argv[2],)).fetchone()
tis = [dict(r) for r in db.execute(
    "select task_id, state, try_number, queue, queued_dttm, start_date, end_date, duration "
    "from task_instance where dag_id='af_demo' and run_id=? order by task_id", (sys.argv[2],))]
print(json.dumps({"run_state": run["state"] if run else None, "task_instances": tis}))
PYEOF
}
state=none
while [ $(($(date +%s) - T1)) -lt "$TIMEOUT" ]; do
    sleep 3
    state=$(query | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["run_state"])')
    case $state in success | failed) break ;; esac
done
T2=$(date +%s)
log "run $RUN_ID: $state after $((T2 - T1)) s (whole script so far $((T2 - T0)) s)"
query | "$PY" -c '
import json, sys
doc = json.load(sys.stdin)
doc.update(airflow_home=sys.argv[1], run_id=sys.argv[2], run_seconds=int(sys.argv[3]), total_seconds=int(sys.argv[4]))
print(json.dumps(doc, indent=1))' "$AIRFLOW_HOME" "$RUN_ID" $((T2 - T1)) $((T2 - T0))
