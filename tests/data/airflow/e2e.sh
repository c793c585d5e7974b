#!/usr/bin/env bash
# Tier 3 of the Airflow tests, and the Airflow overhead benchmark: a real
# Airflow 3.3.2 on 127.0.0.1 (SQLite, LocalExecutor, api-server + scheduler +
# dag-processor) runs triggered runs of the stub DAG that the packed gust binary
# generates (`BUNDLE airflow stub-dag`, used as is), with Python tasks appended.
#
#   e2e.sh BUNDLE WORKDIR DAG_ID PYTHON_TASKS [RUNS]
#
# BUNDLE: the packed binary (its directory is the coordinator's executables_root).
# WORKDIR: an empty directory; AIRFLOW_HOME, the DAG file and every process's log
# go there. DAG_ID: the gust DAG to run. PYTHON_TASKS: a Python file appended to
# the generated DAG file (it adds Python tasks to the generated DAG through the
# module-level `<dag>_dag` the generator binds; the generated tasks stay as they
# are). RUNS: how many runs to trigger, one after the other (default 1).
# GUST_E2E_PIPELINE_ENV: NAME=VALUE that makes BUNDLE act as the pipeline
# (default GUST_TEST_PIPELINE=e2e); set for the stub generation and for the
# scheduler, whose LocalExecutor workers launch the bundle.
# GUST_E2E_TIMEOUT: seconds each run may take (default 600); AIRFLOW_BIN: the
# venv's `airflow` (default: next to GUST_AIRFLOW_PYTHON).
#
# Prints one JSON document on stdout: each run's state and its task instances.
# On a failure of the script itself (Airflow not coming up, a run timing out, a
# process dying) it prints the tails of the servers' logs and the task logs to
# stderr. Everything it starts is stopped on exit.
set -euo pipefail

BUNDLE=$(realpath "$1")
WORK=$(realpath "$2")
DAG_ID=$3
PYTHON_TASKS=$(realpath "$4")
RUNS=${5:-1}
PIPELINE_ENV=${GUST_E2E_PIPELINE_ENV:-GUST_TEST_PIPELINE=e2e}
PY=${GUST_AIRFLOW_PYTHON:?set GUST_AIRFLOW_PYTHON to the python of a venv with apache-airflow==3.3.2}
AIRFLOW_BIN=${AIRFLOW_BIN:-$(dirname "$PY")/airflow}
TIMEOUT=${GUST_E2E_TIMEOUT:-600}

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
# A loaded 2-core CI machine parses slowly: generous parse timeouts.
export AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT=180
export AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT=240
# The coordinator runs in the scheduler's LocalExecutor workers: [sdk] must be
# visible to the scheduler.
export AIRFLOW__SDK__COORDINATORS="{\"gust\": {\"classpath\": \"airflow.sdk.coordinators.executable.ExecutableCoordinator\", \"kwargs\": {\"executables_root\": [\"$(dirname "$BUNDLE")\"]}}}"
export AIRFLOW__SDK__QUEUE_TO_COORDINATOR='{"gust": "gust"}'
# Nothing of the caller's connections or variables: af_db and af_n exist only
# in the api-server's environment below, which is where Airflow resolves them.
for v in $(env | grep -oE '^AIRFLOW_(CONN|VAR)_[A-Za-z0-9_]+' || true); do unset "$v"; done

PIDS=()
NAMES=()
stop() {
    for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
    for _ in 1 2 3 4 5; do
        alive=0
        for p in "${PIDS[@]}"; do kill -0 -- "-$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && return
        sleep 1
    done
    for p in "${PIDS[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
}
log() { echo "[e2e $(date -u +%H:%M:%S)] $*" >&2; }
tail_of() { # file, lines
    [ -f "$1" ] || return 0
    echo "----- ${1#"$WORK"/} (last $2 lines)" >&2
    tail -n "$2" "$1" >&2
}
# What a person needs when the script itself fails: the servers' logs and
# every task log Airflow wrote.
diagnose() {
    log "FAILED: diagnostics follow"
    for f in db-migrate reserialize unpause trigger dag-processor api-server scheduler; do
        tail_of "$WORK/$f.log" 60
    done
    if [ -d "$AIRFLOW_HOME/logs/dag_id=$DAG_ID" ]; then
        find "$AIRFLOW_HOME/logs/dag_id=$DAG_ID" -name '*.log' | sort | while read -r f; do
            tail_of "$f" 30
        done
    fi
}
on_exit() {
    rc=$?
    [ $rc = 0 ] || diagnose
    stop
    exit $rc
}
trap on_exit EXIT
# Killed (a test timeout, ^C): still stop the servers, through the EXIT trap.
trap 'exit 143' TERM INT HUP
fail() {
    log "$*"
    exit 1
}
# Every server still running, or which one died.
check_alive() {
    local i
    for i in "${!PIDS[@]}"; do
        kill -0 "${PIDS[$i]}" 2>/dev/null || fail "${NAMES[$i]} exited (log: $WORK/${NAMES[$i]}.log)"
    done
}

# The DAG file Airflow parses: the stub the binary generates, as it is, then the
# Python tasks appended.
DAG_FILE=$WORK/dags/$DAG_ID.py
env "$PIPELINE_ENV" "$BUNDLE" airflow stub-dag --queue gust --output "$DAG_FILE"
grep -q "^${DAG_ID}_dag = " "$DAG_FILE" || fail "the generated $DAG_FILE has no DAG ${DAG_ID}_dag"
cat "$PYTHON_TASKS" >>"$DAG_FILE"

# An airflow CLI command, bounded: a hang fails the script (with diagnostics)
# instead of the test.
cli() { # log file name, then the command's arguments
    local name=$1
    shift
    timeout 600 "$AIRFLOW_BIN" "$@" >>"$WORK/$name.log" 2>&1 ||
        fail "airflow $1 $2 failed or took over 600 s (exit $?; log: $WORK/$name.log)"
}

T0=$(date +%s)
log "airflow db migrate (AIRFLOW_HOME=$AIRFLOW_HOME, port $PORT)"
cli db-migrate db migrate

start() { # name, then env assignments and the command
    local name=$1
    shift
    setsid env "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    NAMES+=("$name")
    log "started $name (pid $!)"
}
# Connections and variables are served by the api-server (Execution API).
start api-server AIRFLOW_CONN_AF_DB='postgres://etl:af-pw-91c2e@db.internal:5432/' AIRFLOW_VAR_AF_N=21 \
    "$AIRFLOW_BIN" api-server -H 127.0.0.1 -p "$PORT" -w 1
# The scheduler's LocalExecutor workers fork the bundle: they make it the pipeline.
start scheduler "$PIPELINE_ENV" "$AIRFLOW_BIN" scheduler
start dag-processor "$AIRFLOW_BIN" dag-processor

# Poll the metadata DB directly (no airflow CLI start-up per poll).
DB=$AIRFLOW_HOME/airflow.db
sql() { # query, args...: rows as JSON
    "$PY" - "$DB" "$@" <<'PYEOF'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
db.row_factory = sqlite3.Row
print(json.dumps([dict(r) for r in db.execute(sys.argv[2], sys.argv[3:])]))
PYEOF
}

log "airflow dags reserialize"
cli reserialize dags reserialize
errors=$(sql "select filename, stacktrace from import_error")
[ "$errors" = "[]" ] || fail "Airflow could not import the DAG file: $errors"
[ "$(sql "select dag_id from serialized_dag where dag_id=?" "$DAG_ID")" != "[]" ] ||
    fail "DAG $DAG_ID is not in Airflow's serialized_dag table after reserialize"
cli unpause dags unpause "$DAG_ID"
# Wait for the api-server, its Execution API included, before triggering: the
# workers' first PATCH /run otherwise waits for it (their client retries).
for path in api/v2/monitor/health execution/health; do
    waited=0
    until curl -fsS "http://127.0.0.1:$PORT/$path" >/dev/null 2>&1; do
        check_alive
        waited=$((waited + 1))
        [ $waited -lt 300 ] || fail "the api-server did not answer /$path within 300 s"
        sleep 1
    done
done
T1=$(date +%s)
log "Airflow is up after $((T1 - T0)) s"

RESULTS=$WORK/runs.jsonl
: >"$RESULTS"
for i in $(seq 1 "$RUNS"); do
    run_id=gust_e2e_$i
    log "triggering run $run_id of $DAG_ID"
    cli trigger dags trigger "$DAG_ID" --run-id "$run_id"
    started=$(date +%s)
    state=none
    while :; do
        sleep 2
        check_alive
        state=$(sql "select state from dag_run where dag_id=? and run_id=?" "$DAG_ID" "$run_id" |
            "$PY" -c 'import json,sys; r=json.load(sys.stdin); print(r[0]["state"] if r else "none")')
        case $state in success | failed) break ;; esac
        [ $(($(date +%s) - started)) -lt "$TIMEOUT" ] ||
            fail "run $run_id is still '$state' after $TIMEOUT s (GUST_E2E_TIMEOUT)"
    done
    seconds=$(($(date +%s) - started))
    log "run $run_id: $state after $seconds s"
    sql "select task_id, state, try_number, queue, operator, scheduled_dttm, queued_dttm, start_date, end_date, duration
         from task_instance where dag_id=? and run_id=? order by task_id" "$DAG_ID" "$run_id" |
        "$PY" -c '
import json, sys
print(json.dumps({"run_id": sys.argv[1], "run_state": sys.argv[2], "seconds": int(sys.argv[3]), "task_instances": json.load(sys.stdin)}))' \
            "$run_id" "$state" "$seconds" >>"$RESULTS"
done
T2=$(date +%s)
log "$RUNS run(s) of $DAG_ID done; whole script $((T2 - T0)) s"
"$PY" -c '
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print(json.dumps({"airflow_home": sys.argv[2], "dag_id": sys.argv[3], "startup_seconds": int(sys.argv[4]),
                  "total_seconds": int(sys.argv[5]), "runs": runs}, indent=1))' \
    "$RESULTS" "$AIRFLOW_HOME" "$DAG_ID" $((T1 - T0)) $((T2 - T0))
