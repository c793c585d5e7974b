#!/usr/bin/env bash
# Tier 3 of the Airflow tests, and the Airflow overhead benchmark: a real
# Airflow 3.3.2 on 127.0.0.1 (SQLite, LocalExecutor, api-server + scheduler +
# dag-processor; `scripts/services.sh start airflow-server`, private instance)
# runs triggered runs of the stub DAG that the packed gust binary generates
# (`BUNDLE airflow stub-dag`, used as is), with Python tasks appended.
#
#   e2e.sh BUNDLE WORKDIR DAG_ID PYTHON_TASKS [RUNS]
#
# BUNDLE: the packed binary (its directory is the coordinator's executables_root).
# WORKDIR: an empty directory; AIRFLOW_HOME (home/), the DAG file (dags/) and the
# services' state and logs (services/logs/airflow-*.log) go there. DAG_ID: the
# gust DAG to run. PYTHON_TASKS: a Python file appended to the generated DAG file
# (it adds Python tasks to the generated DAG through the module-level `<dag>_dag`
# the generator binds; the generated tasks stay as they are). RUNS: how many runs
# to trigger, one after the other (default 1).
# GUST_E2E_PIPELINE_ENV: NAME=VALUE that makes BUNDLE act as the pipeline
# (default GUST_TEST_PIPELINE=e2e); set for the stub generation and for the
# scheduler, whose LocalExecutor workers launch the bundle.
# GUST_E2E_TIMEOUT: seconds each run may take (default 600).
#
# Prints one JSON document on stdout: each run's state and its task instances.
# On a failure of the script itself (Airflow not coming up, a run timing out, a
# process dying) it prints the tails of the servers' logs and the task logs to
# stderr. The Airflow it starts is stopped on exit.
set -euo pipefail

BUNDLE=$(realpath "$1")
WORK=$(realpath "$2")
DAG_ID=$3
PYTHON_TASKS=$(realpath "$4")
RUNS=${5:-1}
PIPELINE_ENV=${GUST_E2E_PIPELINE_ENV:-GUST_TEST_PIPELINE=e2e}
PY=${GUST_AIRFLOW_PYTHON:?set GUST_AIRFLOW_PYTHON to the python of a venv with apache-airflow==3.3.2}
TIMEOUT=${GUST_E2E_TIMEOUT:-600}
SERVICES_SH=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../../.." && pwd -P)/scripts/services.sh

# A private airflow-server: its own state directory, home, port, DAG folder and
# executables_root; the venv GUST_AIRFLOW_PYTHON belongs to.
export GUST_SERVICES_DIR=$WORK/services
export GUST_AIRFLOW_VENV
GUST_AIRFLOW_VENV=$(dirname "$(dirname "$PY")")
export GUST_AIRFLOW_HOME=$WORK/home
export GUST_AIRFLOW_DAGS_FOLDER=$WORK/dags
export GUST_AIRFLOW_EXECUTABLES
GUST_AIRFLOW_EXECUTABLES=$(dirname "$BUNDLE")
export GUST_AIRFLOW_PORT
GUST_AIRFLOW_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# af_db and af_n exist only in the api-server's environment, which is where
# Airflow resolves connections and variables for its tasks (services.sh keeps
# the caller's AIRFLOW_CONN_*/AIRFLOW_VAR_* out of Airflow's processes).
mkdir -p "$WORK/dags" "$GUST_SERVICES_DIR"
export GUST_AIRFLOW_API_ENV=$WORK/api-server.env GUST_AIRFLOW_WORKER_ENV=$WORK/worker.env
printf '%s\n' 'AIRFLOW_CONN_AF_DB=postgres://etl:af-pw-91c2e@db.internal:5432/' 'AIRFLOW_VAR_AF_N=21' \
    >"$GUST_AIRFLOW_API_ENV"
# The scheduler's LocalExecutor workers fork the bundle: they make it the pipeline.
printf '%s\n' "$PIPELINE_ENV" >"$GUST_AIRFLOW_WORKER_ENV"
LOGS=$GUST_SERVICES_DIR/logs

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
    for f in "$LOGS"/airflow-*.log "$WORK"/cli-*.log; do
        tail_of "$f" 60
    done
    if [ -d "$GUST_AIRFLOW_HOME/logs/dag_id=$DAG_ID" ]; then
        find "$GUST_AIRFLOW_HOME/logs/dag_id=$DAG_ID" -name '*.log' | sort | while read -r f; do
            tail_of "$f" 30
        done
    fi
}
on_exit() {
    rc=$?
    [ $rc = 0 ] || diagnose
    "$SERVICES_SH" stop airflow-server >&2 || true
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
    "$SERVICES_SH" status airflow-server >/dev/null 2>&1 ||
        fail "a process of the airflow-server exited (logs: $LOGS/airflow-*.log)"
}

# The DAG file Airflow parses: the stub the binary generates, as it is, then the
# Python tasks appended.
DAG_FILE=$WORK/dags/$DAG_ID.py
env "$PIPELINE_ENV" "$BUNDLE" airflow stub-dag --queue gust --output "$DAG_FILE"
grep -q "^${DAG_ID}_dag = " "$DAG_FILE" || fail "the generated $DAG_FILE has no DAG ${DAG_ID}_dag"
cat "$PYTHON_TASKS" >>"$DAG_FILE"

T0=$(date +%s)
log "scripts/services.sh start airflow-server (port $GUST_AIRFLOW_PORT, AIRFLOW_HOME $GUST_AIRFLOW_HOME)"
# It waits for the api-server's /api/v2/monitor/health and /execution/health:
# the workers' first PATCH /run otherwise waits for it (their client retries).
"$SERVICES_SH" start airflow-server >&2 || fail "scripts/services.sh start airflow-server failed"
# The settings the servers run with, for the airflow commands below.
# shellcheck disable=SC1091
. "$GUST_AIRFLOW_HOME/airflow.env"
AIRFLOW_BIN=$GUST_AIRFLOW_VENV/bin/airflow

# An airflow CLI command, bounded: a hang fails the script (with diagnostics)
# instead of the test.
cli() { # log file name, then the command's arguments
    local name=$1
    shift
    timeout 600 "$AIRFLOW_BIN" "$@" >>"$WORK/cli-$name.log" 2>&1 ||
        fail "airflow $1 $2 failed or took over 600 s (exit $?; log: $WORK/cli-$name.log)"
}

# Poll the metadata DB directly (no airflow CLI start-up per poll).
DB=$GUST_AIRFLOW_HOME/airflow.db
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
    "$RESULTS" "$GUST_AIRFLOW_HOME" "$DAG_ID" $((T1 - T0)) $((T2 - T0))
