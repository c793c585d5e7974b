#!/usr/bin/env bash
# Local backing services for gust's integration tests.
#
#   scripts/services.sh start    install what is missing, start what is down, wait until ready
#   scripts/services.sh stop     stop what this script started (by its pid files)
#   scripts/services.sh status   one up/down line per service (exit 1 if any is down)
#   scripts/services.sh env      export lines for the tests: eval "$(scripts/services.sh env)"
#   scripts/services.sh restart postgres|mariadb|redis|redis-cluster|moto|s3s-fs|mlflow|mlflow-auth
#                                stop, then start (data kept where the server keeps it on disk)
#   scripts/services.sh kill postgres|mariadb|mlflow   a crash: SIGKILL (postgres: pg_ctl stop -m
#                                immediate), no restart; `start` brings it back
#   scripts/services.sh kill-cluster-master [port]     SIGKILL the cluster master serving slot 0
#                                (or the master on port); prints its port; its replica takes over
#
# start, stop and status act on every service, or only on those named after the
# command (e.g. `scripts/services.sh start mlflow-auth`); start then installs only
# what those need, and does not start what they depend on (mlflow needs postgres
# and moto running already).
#
# Services (all on 127.0.0.1, on non-standard ports so they never clash with a
# system-wide server that may run with trust auth on the standard ones):
#   postgres       55432        role gust / gust-pg-pw, databases gust_test and mlflow
#   mariadb        53306        user gust / gust-my-pw, database gust_test, local_infile=1
#   redis          56379        requirepass gust-redis-pw, no persistence
#   redis-cluster  57001-57006  3 masters + 3 replicas, same password
#   moto           55000        S3 + SageMaker (and every other moto service)
#   s3s-fs         55001        a second, independent S3 implementation
#   mlflow         55050        PostgreSQL backend store, artifacts proxied to s3://mlflow-artifacts on moto
#   mlflow-auth    55051        basic-auth app, admin gust-admin / gust-mlflow-pw (every API call needs
#                               a user; default permission READ), SQLite backend store and auth DB,
#                               artifacts proxied to a local directory
#   airflow        no server: a venv of its own with apache-airflow==3.3.2 (a few minutes and
#                               300 MB the first time), whose python (GUST_AIRFLOW_PYTHON in `env`)
#                               runs Airflow's own code in the Airflow-mode tests; `stop` leaves it
#   airflow-server 58080        only when named (`start airflow-server`; `stop` with no names
#                               stops it too): a real Airflow 3.3.2 from that venv, api-server +
#                               scheduler + dag-processor, SQLite, LocalExecutor, gust's
#                               ExecutableCoordinator on queue `gust`; AIRFLOW_HOME <state dir>/airflow,
#                               DAG files in its dags/, bundles in its executables/; every setting
#                               is in <AIRFLOW_HOME>/airflow.env, for `airflow` commands:
#                               `. .services/airflow/airflow.env && airflow dags list`
#
# All state (data dirs, logs, pid files, the Python venvs, the s3s-fs binary)
# lives under <repo>/.services/, which is git-ignored. Needs root on Debian 12;
# the only thing not installed from apt/PyPI/crates.io is cargo itself.
#
# Private instances (tests/faults_process.rs restarts and kills servers, so it
# starts its own, never the shared ones): these environment variables, when set,
# replace the defaults above.
#   GUST_SERVICES_DIR      the state directory instead of <repo>/.services
#   GUST_SERVICES_VENV     the Python venv (default <state dir>/venv), e.g. the shared one
#   GUST_AIRFLOW_VENV      Airflow's venv (default <state dir>/airflow-venv), e.g. the shared one
#   GUST_PG_PORT GUST_MY_PORT GUST_REDIS_PORT GUST_REDIS_TLS_PORT GUST_MOTO_PORT
#   GUST_S3S_PORT GUST_MLFLOW_PORT GUST_MLFLOW_AUTH_PORT
#   GUST_CLUSTER_PORTS     six ports, space-separated; GUST_CLUSTER_BUS_PORTS their
#                          cluster bus ports (default each port + 100)
#   GUST_CLUSTER_NODE_TIMEOUT   cluster-node-timeout in ms (default 5000): how soon
#                          a replica takes over from a dead master
#   GUST_MLFLOW_BACKEND_STORE_URI / GUST_MLFLOW_ARTIFACTS_DESTINATION  mlflow's stores
#                          (default: the postgres database mlflow, s3://mlflow-artifacts
#                          on moto); a sqlite: backend and a local directory need neither
#   GUST_PORT_FREE_TIMEOUT seconds `start` waits for a taken port to be freed
#                          before it gives up (default 20)
#   GUST_AIRFLOW_PORT GUST_AIRFLOW_HOME GUST_AIRFLOW_DAGS_FOLDER GUST_AIRFLOW_EXECUTABLES
#                          airflow-server's port, AIRFLOW_HOME, DAG folder, executables_root
#   GUST_AIRFLOW_API_ENV / GUST_AIRFLOW_WORKER_ENV  files of NAME=VALUE lines added to the
#                          api-server's environment (connections and variables Airflow
#                          serves: AIRFLOW_CONN_*, AIRFLOW_VAR_*) / to the scheduler's,
#                          whose LocalExecutor workers launch the bundles
set -euo pipefail
umask 022 # the postgres OS user must be able to reach .services and its log

PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
SVC_DIR=${GUST_SERVICES_DIR:-$REPO_ROOT/.services}
RUN_DIR=$SVC_DIR/run
LOG_DIR=$SVC_DIR/logs
VENV=${GUST_SERVICES_VENV:-$SVC_DIR/venv}
AIRFLOW_VENV=${GUST_AIRFLOW_VENV:-$SVC_DIR/airflow-venv}
CARGO_ROOT=$SVC_DIR/cargo

HOST=127.0.0.1
READY_TIMEOUT=60
MLFLOW_READY_TIMEOUT=180 # first start migrates the MLflow schema in PostgreSQL

PG_PORT=${GUST_PG_PORT:-55432}
PG_USER=gust
PG_PASSWORD=gust-pg-pw
PG_DIR=$SVC_DIR/postgres # owned by the postgres OS user; also holds the unix socket
PG_DATA=$PG_DIR/data

MY_PORT=${GUST_MY_PORT:-53306}
MY_USER=gust
MY_PASSWORD=gust-my-pw
MY_DIR=$SVC_DIR/mariadb
MY_DATA=$MY_DIR/data
MY_SOCKET=$MY_DIR/mariadbd.sock

REDIS_PORT=${GUST_REDIS_PORT:-56379}
REDIS_TLS_PORT=${GUST_REDIS_TLS_PORT:-56380} # the same server over TLS, with a certificate from our own CA
REDIS_PASSWORD=gust-redis-pw
REDIS_DIR=$SVC_DIR/redis
read -r -a CLUSTER_PORTS <<<"${GUST_CLUSTER_PORTS:-57001 57002 57003 57004 57005 57006}"
((${#CLUSTER_PORTS[@]} == 6)) || { echo "services: GUST_CLUSTER_PORTS needs six ports" >&2; exit 2; }
# The cluster bus listens on port+10000 unless told otherwise, which does not
# exist above 55535: it gets port+100 (57101-57106) through cluster-port.
CLUSTER_BUS_OFFSET=100
read -r -a CLUSTER_BUS_PORTS <<<"${GUST_CLUSTER_BUS_PORTS:-}"
if ((${#CLUSTER_BUS_PORTS[@]} == 0)); then
  for port in "${CLUSTER_PORTS[@]}"; do CLUSTER_BUS_PORTS+=($((port + CLUSTER_BUS_OFFSET))); done
fi
((${#CLUSTER_BUS_PORTS[@]} == 6)) || { echo "services: GUST_CLUSTER_BUS_PORTS needs six ports" >&2; exit 2; }
CLUSTER_NODE_TIMEOUT=${GUST_CLUSTER_NODE_TIMEOUT:-5000}
CLUSTER_DIR=$SVC_DIR/redis-cluster

AWS_KEY=gust-access-key
AWS_SECRET=gust-secret-key
AWS_REGION=us-east-1

MOTO_PORT=${GUST_MOTO_PORT:-55000}
S3S_PORT=${GUST_S3S_PORT:-55001}
S3S_VERSION=0.14.1 # newest s3s-fs that builds with the toolchain on our machines (rustc 1.95)
S3S_DATA=$SVC_DIR/s3s-fs

MLFLOW_PORT=${GUST_MLFLOW_PORT:-55050}
MLFLOW_BUCKET=mlflow-artifacts
MLFLOW_DIR=$SVC_DIR/mlflow # working directory of the server (it must not litter the repo)
MLFLOW_BACKEND=${GUST_MLFLOW_BACKEND_STORE_URI:-postgresql+psycopg2://$PG_USER:$PG_PASSWORD@$HOST:$PG_PORT/mlflow}
MLFLOW_ARTIFACTS=${GUST_MLFLOW_ARTIFACTS_DESTINATION:-s3://$MLFLOW_BUCKET}

MLFLOW_AUTH_PORT=${GUST_MLFLOW_AUTH_PORT:-55051}
MLFLOW_AUTH_USER=gust-admin
MLFLOW_AUTH_PASSWORD=gust-mlflow-pw # MLflow wants at least 12 characters
MLFLOW_AUTH_DIR=$SVC_DIR/mlflow-auth # backend store, auth DB, artifacts and basic_auth.ini
# Signs the basic-auth app's CSRF tokens (the sign-up form only); must be static.
MLFLOW_AUTH_SECRET_KEY=gust-mlflow-auth-secret-key

AIRFLOW_PORT=${GUST_AIRFLOW_PORT:-58080}
AIRFLOW_HOME_DIR=${GUST_AIRFLOW_HOME:-$SVC_DIR/airflow}
AIRFLOW_DAGS=${GUST_AIRFLOW_DAGS_FOLDER:-$AIRFLOW_HOME_DIR/dags}
AIRFLOW_EXECUTABLES=${GUST_AIRFLOW_EXECUTABLES:-$AIRFLOW_HOME_DIR/executables}
AIRFLOW_READY_TIMEOUT=300 # a loaded 2-core machine: db migrate plus three Python servers

# mlflow[auth]: Flask-WTF, without which the basic-auth app does not import.
# pyarrow and pandas: the Parquet read-back test and the pandas side of benches/transfers.rs;
# scikit-learn: the reference of tests/ml_sklearn.rs.
PIP_PACKAGES=('moto[server]==5.2.5' 'mlflow[auth]' boto3 psycopg2-binary redis pyarrow pandas scikit-learn)
# Airflow in a venv of its own: its pins (SQLAlchemy, pydantic, …) would fight
# mlflow's. The version the Airflow mode is tested against: its
# ExecutableCoordinator and supervisor schema 2026-06-16.
AIRFLOW_VERSION=3.3.2

# ---------------------------------------------------------------------------
# helpers

log() { echo "services: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# Quotes $1 for a POSIX shell, single-quote style.
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# Percent-encodes $1 for the userinfo of a URI (everything but RFC 3986's unreserved).
urlenc() {
  local LC_ALL=C s=$1 out="" c i # C: byte by byte, so UTF-8 comes out as %XX%XX
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    if [[ $c == [A-Za-z0-9._~-] ]]; then
      out+=$c
    else
      out+=$(printf '%%%02X' "'$c")
    fi
  done
  printf '%s' "$out"
}

# Reads /proc/<pid>/stat and sets STATE and PGRP. Fails if the process is gone.
# The command name may contain spaces or parentheses, hence the cut at the last ')'.
proc_stat() {
  local line
  { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
  line=${line##*) }
  read -r STATE _ PGRP _ <<<"$line"
}

# Prints the pid recorded in pid file $1 if that process is alive (not a
# zombie) and its command line contains $2; the check on the command line
# keeps us from signalling an unrelated process that got a recycled pid.
pid_of() {
  local file=$1 pattern=$2 pid="" cmdline
  [[ -r $file ]] || return 1
  { read -r pid || true; } <"$file"
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  proc_stat "$pid" && [[ $STATE != Z ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$pattern"* ]] || return 1
  echo "$pid"
}

# True while a non-zombie process is in process group $1. (kill -0 is not
# enough: zombies answer it, and PID 1 of a container may never reap them.)
group_alive() {
  local f
  for f in /proc/[0-9]*; do
    proc_stat "${f#/proc/}" || continue
    [[ $PGRP == "$1" && $STATE != Z ]] && return 0
  done
  return 1
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null; }

# Fails (with a message) if a port we are about to listen on is taken: a
# foreign server there would otherwise pass our readiness checks. Waits up to
# GUST_PORT_FREE_TIMEOUT seconds (default 20) first: a server this script has
# just killed or stopped can hold its port a moment longer on a loaded machine
# (a cold CI run once lost `kill mlflow` + `start mlflow` to that).
ports_free() {
  local name=$1 port deadline=$((SECONDS + ${GUST_PORT_FREE_TIMEOUT:-20}))
  shift
  for port in "$@"; do
    while port_open "$port"; do
      if ((SECONDS >= deadline)); then
        log "$name: $HOST:$port is already in use by a process this script did not start"
        return 1
      fi
      sleep 0.5
    done
  done
}

# Starts "$@" detached: in its own session (so stop can signal the whole
# process group, e.g. mlflow's uvicorn child), stdio on the log, without the
# lock fd. The child records its own pid before exec'ing the server, so the
# pid file names the server process whether or not setsid had to fork.
launch() {
  local pidfile=$1 logfile=$2 i
  shift 2
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # $$ and $@ are expanded by the inner bash
  (cd "$SVC_DIR" && exec setsid bash -c 'echo $$ >"$0" && exec "$@"' "$pidfile" "$@") \
    </dev/null >>"$logfile" 2>&1 9>&- &
  for ((i = 0; i < 50; i++)); do
    [[ -s $pidfile ]] && return 0
    sleep 0.1
  done
  return 1
}

# Waits until "$@" succeeds. Gives up early if pid file $3 exists but its
# process (pattern $4) died, else after $2 seconds; on failure prints the
# tail of log $5.
wait_ready() {
  local name=$1 timeout=$2 pidfile=$3 pattern=$4 logfile=$5
  shift 5
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if "$@" >/dev/null 2>&1; then
      [[ -n $pidfile ]] || return 0
      pid_of "$pidfile" "$pattern" >/dev/null && return 0
    fi
    if [[ -n $pidfile && -e $pidfile ]] && ! pid_of "$pidfile" "$pattern" >/dev/null; then
      log "$name: process exited during startup"
      show_log "$name" "$logfile"
      return 1
    fi
    sleep 1
  done
  log "$name: not ready after ${timeout}s"
  show_log "$name" "$logfile"
  return 1
}

show_log() {
  [[ -f $2 ]] || return 0
  echo "----- $1: last lines of $2 -----" >&2
  tail -n 40 "$2" >&2
  echo "-----" >&2
}

# Stops the process in pid file $2 (command line contains $3) with SIGTERM,
# then SIGKILL after 30 s; a session leader we launched is signalled as a
# group so its children go too. Removes the pid file.
stop_pidfile() {
  local name=$1 pidfile=$2 pattern=$3 pid i
  if ! pid=$(pid_of "$pidfile" "$pattern"); then
    rm -f "$pidfile"
    echo "$name: not running"
    return 0
  fi
  proc_stat "$pid" || true
  if [[ $PGRP == "$pid" ]]; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do group_alive "$pid" || break; sleep 0.1; done
    if group_alive "$pid"; then
      log "$name: still alive after 30s, sending SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  else
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do pid_of "$pidfile" "$pattern" >/dev/null || break; sleep 0.1; done
    if pid_of "$pidfile" "$pattern" >/dev/null; then
      log "$name: still alive after 30s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
  echo "$name: stopped"
}

# One status line; fails if the service is down.
status_line() {
  local name=$1 pidfile=$2 pattern=$3 port=$4 pid
  if pid=$(pid_of "$pidfile" "$pattern") && port_open "$port"; then
    echo "$name: up (pid $pid, $HOST:$port)"
  else
    echo "$name: down"
    return 1
  fi
}

APT_PACKAGES=()
need_apt() { APT_PACKAGES+=("$@"); }

# Installs the collected apt packages in one go. Package maintainer scripts
# would start Debian's own postgresql/mariadb/redis on the standard ports; a
# policy-rc.d that denies every start keeps them down (Docker images ship
# one already; if not, one is put in place for the duration of the install).
apt_flush() {
  ((${#APT_PACKAGES[@]})) || return 0
  local policy=/usr/sbin/policy-rc.d
  log "apt-get install ${APT_PACKAGES[*]} (log: $LOG_DIR/apt.log)"
  (
    if [[ ! -e $policy ]]; then
      trap 'rm -f "$policy"' EXIT
      printf '#!/bin/sh\nexit 101\n' >"$policy"
      chmod 755 "$policy"
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q --no-install-recommends "${APT_PACKAGES[@]}"
  ) >>"$LOG_DIR/apt.log" 2>&1 || {
    show_log apt "$LOG_DIR/apt.log"
    die "apt-get install failed"
  }
  APT_PACKAGES=()
}

# ---------------------------------------------------------------------------
# postgres

pg_bindir() {
  local d best=""
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x $d/pg_ctl ]] && best=$d # the glob sorts 15 < 16 < 17: keep the newest
  done
  [[ -n $best ]] && echo "$best"
}

# pg_ctl/initdb refuse to run as root; cd / because root's cwd may be unreadable for postgres.
as_postgres() { (cd / && runuser -u postgres -- "$@"); }

install_postgres() { pg_bindir >/dev/null || need_apt postgresql; }

pg_log() { echo "$LOG_DIR/postgres.log"; }

# PostgreSQL runs as its own OS user, who must be able to traverse down to
# $SVC_DIR. A checkout in a private directory (mktemp -d makes them 0700) gets
# o+x — traverse only, no listing — on each directory on the way that lacks it.
pg_reach_svc_dir() {
  local d=$SVC_DIR
  runuser -u postgres -- test -x "$SVC_DIR" && return 0
  while [[ $d != / && -n $d ]]; do
    if [[ -z $(find "$d" -maxdepth 0 -perm -o=x) ]]; then
      log "chmod o+x $d (the postgres OS user must reach $SVC_DIR)"
      chmod o+x "$d"
    fi
    d=$(dirname "$d")
  done
}

start_postgres() {
  local bin logfile
  bin=$(pg_bindir)
  logfile=$(pg_log)
  pg_reach_svc_dir
  runuser -u postgres -- test -x "$SVC_DIR" ||
    die "the postgres OS user cannot reach $SVC_DIR (check the permissions of its parent directories)"
  if pid_of "$PG_DATA/postmaster.pid" postgres >/dev/null; then
    wait_ready postgres "$READY_TIMEOUT" "$PG_DATA/postmaster.pid" postgres "$logfile" ready_postgres "$bin"
    setup_postgres "$bin"
    echo "postgres: ready on $HOST:$PG_PORT (already running)"
    return 0
  fi
  ports_free postgres "$PG_PORT"
  install -d -o postgres -g postgres -m 700 "$PG_DIR"
  touch "$logfile" && chown postgres:postgres "$logfile"
  if [[ ! -f $PG_DATA/PG_VERSION ]]; then
    rm -rf "$PG_DATA" # a half-done initdb
    log "postgres: initdb $PG_DATA"
    as_postgres "$bin/initdb" -D "$PG_DATA" -U postgres -E UTF8 --no-locale \
      --auth-local=peer --auth-host=scram-sha-256 >>"$logfile" 2>&1
    echo "include 'gust.conf'" >>"$PG_DATA/postgresql.conf"
  fi
  # Rewritten on every cold start so edits to this script take effect.
  cat >"$PG_DATA/gust.conf" <<EOF
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
password_encryption = 'scram-sha-256'
EOF
  # Password auth only over TCP; peer auth on our private socket is for this
  # script's own setup as the postgres superuser.
  cat >"$PG_DATA/pg_hba.conf" <<EOF
local all postgres                  peer
host  all all      $HOST/32 scram-sha-256
EOF
  chown postgres:postgres "$PG_DATA/gust.conf" "$PG_DATA/pg_hba.conf"
  as_postgres "$bin/pg_ctl" -D "$PG_DATA" -l "$logfile" -w -t "$READY_TIMEOUT" start >/dev/null 9>&- || {
    show_log postgres "$logfile"
    return 1
  }
  wait_ready postgres "$READY_TIMEOUT" "$PG_DATA/postmaster.pid" postgres "$logfile" ready_postgres "$bin"
  setup_postgres "$bin"
  echo "postgres: ready on $HOST:$PG_PORT"
}

ready_postgres() { "$1/pg_isready" -q -h "$HOST" -p "$PG_PORT"; }

# Idempotent: role (password re-set every time) and the two databases.
setup_postgres() {
  as_postgres "$1/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -d postgres \
    -v user="$PG_USER" -v pw="$PG_PASSWORD" >>"$(pg_log)" 2>&1 <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'user')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
ALTER ROLE :"user" LOGIN PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', d, :'user') FROM unnest(ARRAY['gust_test', 'mlflow']) AS d
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = d) \gexec
SQL
}

stop_postgres() {
  local bin
  if ! pid_of "$PG_DATA/postmaster.pid" postgres >/dev/null; then
    echo "postgres: not running"
    return 0
  fi
  bin=$(pg_bindir)
  as_postgres "$bin/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
  echo "postgres: stopped"
}

status_postgres() { status_line postgres "$PG_DATA/postmaster.pid" postgres "$PG_PORT"; }

# ---------------------------------------------------------------------------
# mariadb

install_mariadb() {
  local bin
  for bin in mariadbd mariadb-install-db mariadb mariadb-admin; do
    command -v "$bin" >/dev/null || {
      need_apt mariadb-server mariadb-client
      return 0
    }
  done
}

my_root() { mariadb --no-defaults --socket="$MY_SOCKET" -uroot "$@"; }

start_mariadb() {
  local pidfile=$RUN_DIR/mariadb.pid logfile=$LOG_DIR/mariadb.log
  if pid_of "$pidfile" mariadbd >/dev/null; then
    wait_ready mariadb "$READY_TIMEOUT" "$pidfile" mariadbd "$logfile" ready_mariadb
    setup_mariadb
    echo "mariadb: ready on $HOST:$MY_PORT (already running)"
    return 0
  fi
  ports_free mariadb "$MY_PORT"
  mkdir -p "$MY_DIR"
  if [[ ! -d $MY_DATA/mysql ]]; then
    rm -rf "$MY_DATA"
    log "mariadb: mariadb-install-db $MY_DATA"
    # root gets unix_socket auth only: no password login for root, ever.
    mariadb-install-db --no-defaults --datadir="$MY_DATA" --user=root \
      --auth-root-authentication-method=socket --skip-test-db >>"$logfile" 2>&1
  fi
  # --no-defaults: ignore /etc/mysql/*.cnf (Debian's socket and datadir).
  launch "$pidfile" "$logfile" mariadbd --no-defaults --user=root \
    --datadir="$MY_DATA" --socket="$MY_SOCKET" --pid-file="$MY_DIR/mariadbd.pid" \
    --bind-address="$HOST" --port="$MY_PORT" --skip-name-resolve \
    --local-infile=1 --innodb-buffer-pool-size=64M
  wait_ready mariadb "$READY_TIMEOUT" "$pidfile" mariadbd "$logfile" ready_mariadb
  setup_mariadb
  echo "mariadb: ready on $HOST:$MY_PORT"
}

ready_mariadb() {
  mariadb-admin --no-defaults --socket="$MY_SOCKET" -uroot ping && port_open "$MY_PORT"
}

# Idempotent. Drops anonymous accounts and any root account other than the
# socket-only root@localhost, so a wrong password can never get in.
setup_mariadb() {
  local user host
  while IFS=$'\t' read -r user host; do
    my_root -e "DROP USER '$user'@'$host'"
  done < <(my_root -N -B -e "SELECT user, host FROM mysql.user WHERE user = '' OR (user = 'root' AND host <> 'localhost')")
  my_root <<SQL
CREATE DATABASE IF NOT EXISTS gust_test;
CREATE USER IF NOT EXISTS '$MY_USER'@'127.0.0.1' IDENTIFIED BY '$MY_PASSWORD';
CREATE USER IF NOT EXISTS '$MY_USER'@'localhost' IDENTIFIED BY '$MY_PASSWORD';
ALTER USER '$MY_USER'@'127.0.0.1' IDENTIFIED BY '$MY_PASSWORD';
ALTER USER '$MY_USER'@'localhost' IDENTIFIED BY '$MY_PASSWORD';
GRANT ALL PRIVILEGES ON gust_test.* TO '$MY_USER'@'127.0.0.1', '$MY_USER'@'localhost';
FLUSH PRIVILEGES;
SQL
}

stop_mariadb() { stop_pidfile mariadb "$RUN_DIR/mariadb.pid" mariadbd; }
status_mariadb() { status_line mariadb "$RUN_DIR/mariadb.pid" mariadbd "$MY_PORT"; }

# ---------------------------------------------------------------------------
# redis (single node)

install_redis() {
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    need_apt redis-server redis-tools
  fi
  command -v openssl >/dev/null || need_apt openssl # the TLS port's certificates
}

# The password goes through the environment, not -a, to keep it out of ps and warnings.
rcli() { REDISCLI_AUTH=$REDIS_PASSWORD redis-cli -h "$HOST" "$@"; }

# Writes a redis.conf for port $1 into dir $2 (pid file $3, log $4); extra lines on stdin.
write_redis_conf() {
  cat >"$2/redis.conf" <<EOF
bind $HOST
port $1
daemonize yes
pidfile $3
logfile $4
dir $2
requirepass $REDIS_PASSWORD
save ""
appendonly no
$(cat)
EOF
}

# A test CA and a certificate for the name localhost (not the address $HOST, so
# that connecting by address tests a hostname mismatch) signed by it, for the
# TLS port; made once. Clients trust it through the extra ssl_ca_certs.
redis_tls_certs() {
  local d=$REDIS_DIR/tls
  [[ -s $d/ca.crt && -s $d/redis.crt && -s $d/redis.key ]] && return 0
  mkdir -p "$d"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=gust test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$d/ca.key" -out "$d/ca.crt" &&
      openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$d/redis.key" -out "$d/redis.csr" &&
      printf '%s\n' "subjectAltName=DNS:localhost" "basicConstraints=CA:FALSE" \
        "extendedKeyUsage=serverAuth" >"$d/redis.ext" &&
      openssl x509 -req -in "$d/redis.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -days 3650 -extfile "$d/redis.ext" -out "$d/redis.crt"
  } >>"$LOG_DIR/redis.log" 2>&1 || die "redis: could not make the TLS certificates (see $LOG_DIR/redis.log)"
}

start_redis() {
  local pidfile=$RUN_DIR/redis.pid logfile=$LOG_DIR/redis.log
  if pid_of "$pidfile" redis-server >/dev/null; then
    wait_ready redis "$READY_TIMEOUT" "$pidfile" redis-server "$logfile" ready_redis "$REDIS_PORT"
    echo "redis: ready on $HOST:$REDIS_PORT (already running)"
    return 0
  fi
  ports_free redis "$REDIS_PORT" "$REDIS_TLS_PORT"
  mkdir -p "$REDIS_DIR"
  redis_tls_certs
  write_redis_conf "$REDIS_PORT" "$REDIS_DIR" "$pidfile" "$logfile" <<CONF
tls-port $REDIS_TLS_PORT
tls-cert-file $REDIS_DIR/tls/redis.crt
tls-key-file $REDIS_DIR/tls/redis.key
tls-ca-cert-file $REDIS_DIR/tls/ca.crt
tls-auth-clients no
CONF
  rm -f "$pidfile"
  redis-server "$REDIS_DIR/redis.conf" </dev/null >>"$logfile" 2>&1 9>&-
  wait_ready redis "$READY_TIMEOUT" "$pidfile" redis-server "$logfile" ready_redis "$REDIS_PORT"
  echo "redis: ready on $HOST:$REDIS_PORT (TLS on $REDIS_TLS_PORT)"
}

ready_redis() { [[ $(rcli -p "$1" ping 2>/dev/null) == PONG ]]; }

stop_redis() { stop_pidfile redis "$RUN_DIR/redis.pid" redis-server; }
status_redis() { status_line redis "$RUN_DIR/redis.pid" redis-server "$REDIS_PORT"; }

# ---------------------------------------------------------------------------
# redis cluster (6 nodes: 3 masters with one replica each)

cluster_pidfile() { echo "$RUN_DIR/redis-cluster-$1.pid"; }
cluster_log() { echo "$LOG_DIR/redis-cluster.log"; } # all nodes and the create step share one log

# Healthy: every node says cluster_state:ok, and the first node sees exactly
# 3 masters (not failed, owning slots) that each have a live replica.
cluster_healthy() {
  local port
  for port in "${CLUSTER_PORTS[@]}"; do
    [[ $(rcli -p "$port" cluster info 2>/dev/null) == *cluster_state:ok* ]] || return 1
  done
  rcli -p "${CLUSTER_PORTS[0]}" cluster nodes 2>/dev/null | awk '
    $3 ~ /fail/ { next }
    $3 ~ /master/ && NF >= 9 { masters[$1] = 1 }
    $3 ~ /slave/ { replicated[$4] = 1 }
    END {
      n = 0; ok = 0
      for (m in masters) { n++; if (m in replicated) ok++ }
      exit !(n == 3 && ok == 3)
    }'
}

start_redis_cluster() {
  local port running=0 dir logfile
  logfile=$(cluster_log)
  for port in "${CLUSTER_PORTS[@]}"; do
    pid_of "$(cluster_pidfile "$port")" redis-server >/dev/null && running=$((running + 1))
  done
  if ((running == ${#CLUSTER_PORTS[@]})) && cluster_healthy; then
    echo "redis-cluster: ready on $HOST:${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[-1]} (already running)"
    return 0
  fi
  # Anything else (cold start with old nodes.conf files, a node down, a broken
  # cluster) gets a fresh cluster: without persistence a restarted cluster
  # holds no data anyway, and a new one has a known topology.
  if ((running > 0)); then
    log "redis-cluster: $running/${#CLUSTER_PORTS[@]} nodes running but the cluster is not healthy: recreating"
    stop_redis_cluster >/dev/null
  fi
  local i
  for i in "${!CLUSTER_PORTS[@]}"; do
    ports_free redis-cluster "${CLUSTER_PORTS[i]}" "${CLUSTER_BUS_PORTS[i]}"
  done
  rm -rf "$CLUSTER_DIR"
  for i in "${!CLUSTER_PORTS[@]}"; do
    port=${CLUSTER_PORTS[i]}
    dir=$CLUSTER_DIR/$port
    mkdir -p "$dir"
    write_redis_conf "$port" "$dir" "$(cluster_pidfile "$port")" "$logfile" <<EOF
cluster-enabled yes
cluster-port ${CLUSTER_BUS_PORTS[i]}
cluster-config-file $dir/nodes.conf
cluster-node-timeout $CLUSTER_NODE_TIMEOUT
masterauth $REDIS_PASSWORD
EOF
    rm -f "$(cluster_pidfile "$port")"
    redis-server "$dir/redis.conf" </dev/null >>"$logfile" 2>&1 9>&-
  done
  for port in "${CLUSTER_PORTS[@]}"; do
    wait_ready "redis-cluster node $port" "$READY_TIMEOUT" "$(cluster_pidfile "$port")" redis-server \
      "$logfile" ready_redis "$port"
  done
  local nodes=()
  for port in "${CLUSTER_PORTS[@]}"; do nodes+=("$HOST:$port"); done
  REDISCLI_AUTH=$REDIS_PASSWORD redis-cli --cluster create "${nodes[@]}" \
    --cluster-replicas 1 --cluster-yes </dev/null >>"$logfile" 2>&1 || {
    show_log redis-cluster "$logfile"
    return 1
  }
  wait_ready redis-cluster "$READY_TIMEOUT" "" "" "$logfile" cluster_healthy
  echo "redis-cluster: ready on $HOST:${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[-1]}"
}

stop_redis_cluster() {
  local port
  for port in "${CLUSTER_PORTS[@]}"; do
    stop_pidfile "redis-cluster node $port" "$(cluster_pidfile "$port")" redis-server
  done
}

status_redis_cluster() {
  local port up=0 state=""
  for port in "${CLUSTER_PORTS[@]}"; do
    pid_of "$(cluster_pidfile "$port")" redis-server >/dev/null && port_open "$port" && up=$((up + 1))
  done
  if ((up == ${#CLUSTER_PORTS[@]})) && cluster_healthy; then
    echo "redis-cluster: up ($up nodes, cluster_state:ok, $HOST:${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[-1]})"
  else
    ((up == 0)) || state=" ($up/${#CLUSTER_PORTS[@]} nodes up, cluster not healthy)"
    echo "redis-cluster: down$state"
    return 1
  fi
}

# ---------------------------------------------------------------------------
# Python venv: moto, mlflow (with its auth extra), boto3, psycopg2 (moto and
# mlflow servers, and a Python client for the tests' cross-checks)

install_python_prereqs() {
  local py
  if ! py=$(command -v python3); then
    need_apt python3 python3-venv
  elif [[ $py == /usr/bin/python3 ]] &&
    [[ $(dpkg-query -W -f='${Status}' python3-venv 2>/dev/null) != "install ok installed" ]]; then
    need_apt python3-venv # Debian's python3 has no working venv/ensurepip without it
  fi
}

venv_complete() {
  [[ -x $VENV/bin/moto_server && -x $VENV/bin/mlflow ]] || return 1
  "$VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.util, sys
mods = ["moto", "flask", "flask_cors", "flask_wtf", "mlflow", "boto3", "psycopg2", "redis", "pyarrow", "pandas", "sklearn"]
sys.exit(any(importlib.util.find_spec(m) is None for m in mods))
PY
}

install_python_env() {
  venv_complete && return 0
  local logfile=$LOG_DIR/pip.log
  if ! "$VENV/bin/python" -c '' 2>/dev/null; then
    rm -rf "$VENV" # missing, or its interpreter is gone
    python3 -m venv "$VENV"
  fi
  log "pip install ${PIP_PACKAGES[*]} into $VENV (a minute or two; log: $logfile)"
  "$VENV/bin/pip" install --disable-pip-version-check "${PIP_PACKAGES[@]}" >>"$logfile" 2>&1 || {
    show_log pip "$logfile"
    die "pip install failed"
  }
}

# ---------------------------------------------------------------------------
# airflow: no server, a venv with apache-airflow (tests/airflow_mode.rs,
# tests/airflow_codec.rs and src/cli/stub_dag.rs run Airflow's own code with it)

# The distributions, not an import: importing airflow reads its config and
# takes seconds. pip installs the top-level package after its dependencies, so a
# half-done install does not pass.
airflow_venv_complete() {
  "$AIRFLOW_VENV/bin/python" - "$AIRFLOW_VERSION" <<'PY' 2>/dev/null
import importlib.metadata as md, sys
try:
    ok = md.version("apache-airflow") == sys.argv[1] and md.version("apache-airflow-task-sdk")
except md.PackageNotFoundError:
    ok = False
sys.exit(not ok)
PY
}

start_airflow() {
  local logfile=$LOG_DIR/pip-airflow.log
  if airflow_venv_complete; then
    echo "airflow: apache-airflow $AIRFLOW_VERSION in $AIRFLOW_VENV (already installed)"
    return 0
  fi
  if ! "$AIRFLOW_VENV/bin/python" -c '' 2>/dev/null; then
    # Airflow 3.3 wants Python >=3.10, !=3.15.
    python3 -c 'import sys; v = sys.version_info[:2]; sys.exit(not ((3, 10) <= v and v != (3, 15)))' ||
      die "airflow: apache-airflow $AIRFLOW_VERSION needs Python >= 3.10 (python3 is $(python3 -V 2>&1))"
    rm -rf "$AIRFLOW_VENV" # missing, or its interpreter is gone
    python3 -m venv "$AIRFLOW_VENV"
  fi
  log "airflow: pip install apache-airflow==$AIRFLOW_VERSION into $AIRFLOW_VENV (a few minutes; log: $logfile)"
  "$AIRFLOW_VENV/bin/pip" install --disable-pip-version-check "apache-airflow==$AIRFLOW_VERSION" >>"$logfile" 2>&1 || {
    show_log pip-airflow "$logfile"
    return 1
  }
  airflow_venv_complete || {
    log "airflow: pip finished but apache-airflow $AIRFLOW_VERSION is not in $AIRFLOW_VENV"
    return 1
  }
  echo "airflow: apache-airflow $AIRFLOW_VERSION in $AIRFLOW_VENV"
}

stop_airflow() { echo "airflow: nothing to stop (a venv, kept)"; }

status_airflow() {
  if airflow_venv_complete; then
    echo "airflow: installed (apache-airflow $AIRFLOW_VERSION, $AIRFLOW_VENV)"
  else
    echo "airflow: not installed (scripts/services.sh start airflow)"
    return 1
  fi
}

# ---------------------------------------------------------------------------
# airflow-server: a real Airflow from that venv, for Tier 3 of the Airflow tests
# (tests/data/airflow/e2e.sh) and to try a pipeline's bundle by hand.

# Every setting the processes share, as export lines: written to
# <AIRFLOW_HOME>/airflow.env, which the servers and any `airflow` command source.
# Environment, not airflow.cfg: each AIRFLOW__SECTION__KEY is exact. Notes (the
# research notes §2.2): the JWT secret (64+ bytes: a shorter HS512 key makes every
# process warn) must be the same for the scheduler, which signs the workers'
# tokens, and the api-server; the coordinator runs in the scheduler's
# LocalExecutor workers, so [sdk] must be visible to the scheduler; the parse
# timeouts are generous for a loaded 2-core CI machine.
airflow_env() {
  local coordinators name value
  coordinators='{"gust": {"classpath": "airflow.sdk.coordinators.executable.ExecutableCoordinator", "kwargs": {"executables_root": ["'$AIRFLOW_EXECUTABLES'"]}}}'
  while IFS='=' read -r name value; do
    echo "export $name=$(shq "$value")"
  done <<EOF
AIRFLOW_HOME=$AIRFLOW_HOME_DIR
AIRFLOW__CORE__LOAD_EXAMPLES=False
AIRFLOW__CORE__EXECUTOR=LocalExecutor
AIRFLOW__CORE__PARALLELISM=2
AIRFLOW__CORE__DAGS_FOLDER=$AIRFLOW_DAGS
AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://$HOST:$AIRFLOW_PORT/execution/
AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
AIRFLOW__CORE__FERNET_KEY=
AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT=180
AIRFLOW__API__WORKERS=1
AIRFLOW__API__HOST=$HOST
AIRFLOW__API__PORT=$AIRFLOW_PORT
AIRFLOW__API__BASE_URL=http://$HOST:$AIRFLOW_PORT
AIRFLOW__API_AUTH__JWT_SECRET=gust-services-jwt-secret-not-a-real-one-0123456789abcdef0123456789ab
AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$AIRFLOW_HOME_DIR/airflow.db
AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC=1
AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5
AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT=240
AIRFLOW__SDK__COORDINATORS=$coordinators
AIRFLOW__SDK__QUEUE_TO_COORDINATOR={"gust": "gust"}
EOF
}

# NAME=VALUE lines of file $1 (none when $1 is empty), one array element each.
AIRFLOW_EXTRA_ENV=()
read_env_file() {
  AIRFLOW_EXTRA_ENV=()
  [[ -n $1 ]] || return 0
  [[ -r $1 ]] || die "airflow-server: cannot read the environment file $1"
  local line
  while IFS= read -r line || [[ -n $line ]]; do
    [[ -z $line || $line == \#* ]] && continue
    [[ $line == [A-Za-z_]*=* ]] || die "airflow-server: $1: not NAME=VALUE: $line"
    AIRFLOW_EXTRA_ENV+=("$line")
  done <"$1"
}

airflow_pidfile() { echo "$RUN_DIR/airflow-$1.pid"; }

airflow_ready() {
  curl -fsS --max-time 5 "http://$HOST:$AIRFLOW_PORT/api/v2/monitor/health" >/dev/null &&
    curl -fsS --max-time 5 "http://$HOST:$AIRFLOW_PORT/execution/health" >/dev/null
}

start_airflow_server() {
  local part v bin=$AIRFLOW_VENV/bin/airflow
  if pid_of "$(airflow_pidfile api-server)" airflow >/dev/null; then
    wait_ready airflow-server "$AIRFLOW_READY_TIMEOUT" "$(airflow_pidfile api-server)" airflow \
      "$LOG_DIR/airflow-api-server.log" airflow_ready
    echo "airflow-server: ready on $HOST:$AIRFLOW_PORT (already running)"
    return 0
  fi
  ports_free airflow-server "$AIRFLOW_PORT"
  mkdir -p "$AIRFLOW_HOME_DIR" "$AIRFLOW_DAGS" "$AIRFLOW_EXECUTABLES"
  airflow_env >"$AIRFLOW_HOME_DIR/airflow.env"
  # The caller's connections and variables stay out: Airflow serves its own
  # (GUST_AIRFLOW_API_ENV), and a test of "a connection only Airflow has" needs that.
  for v in $(env | grep -oE '^AIRFLOW_(CONN|VAR)_[A-Za-z0-9_]+' || true); do unset "$v"; done
  # shellcheck disable=SC1091
  . "$AIRFLOW_HOME_DIR/airflow.env"
  timeout "$AIRFLOW_READY_TIMEOUT" "$bin" db migrate >>"$LOG_DIR/airflow-db-migrate.log" 2>&1 || {
    log "airflow-server: airflow db migrate failed or took over ${AIRFLOW_READY_TIMEOUT}s"
    show_log airflow-db-migrate "$LOG_DIR/airflow-db-migrate.log"
    return 1
  }
  read_env_file "${GUST_AIRFLOW_API_ENV:-}"
  launch "$(airflow_pidfile api-server)" "$LOG_DIR/airflow-api-server.log" \
    env "${AIRFLOW_EXTRA_ENV[@]}" "$bin" api-server -H "$HOST" -p "$AIRFLOW_PORT" -w 1
  read_env_file "${GUST_AIRFLOW_WORKER_ENV:-}"
  launch "$(airflow_pidfile scheduler)" "$LOG_DIR/airflow-scheduler.log" \
    env "${AIRFLOW_EXTRA_ENV[@]}" "$bin" scheduler
  launch "$(airflow_pidfile dag-processor)" "$LOG_DIR/airflow-dag-processor.log" "$bin" dag-processor
  wait_ready airflow-server "$AIRFLOW_READY_TIMEOUT" "$(airflow_pidfile api-server)" airflow \
    "$LOG_DIR/airflow-api-server.log" airflow_ready
  for part in scheduler dag-processor; do
    pid_of "$(airflow_pidfile "$part")" airflow >/dev/null || {
      log "airflow-server: the $part exited during startup"
      show_log "airflow $part" "$LOG_DIR/airflow-$part.log"
      return 1
    }
  done
  echo "airflow-server: ready on $HOST:$AIRFLOW_PORT (AIRFLOW_HOME $AIRFLOW_HOME_DIR)"
}

stop_airflow_server() {
  local part
  for part in dag-processor scheduler api-server; do
    stop_pidfile "airflow $part" "$(airflow_pidfile "$part")" airflow
  done
}

status_airflow_server() {
  local part down=0 pid
  for part in scheduler dag-processor; do
    pid_of "$(airflow_pidfile "$part")" airflow >/dev/null || down=1
  done
  if ((down == 0)) && pid=$(pid_of "$(airflow_pidfile api-server)" airflow) && port_open "$AIRFLOW_PORT"; then
    echo "airflow-server: up (api-server pid $pid, $HOST:$AIRFLOW_PORT; AIRFLOW_HOME $AIRFLOW_HOME_DIR)"
  else
    echo "airflow-server: down"
    return 1
  fi
}

# ---------------------------------------------------------------------------
# moto

start_moto() {
  local pidfile=$RUN_DIR/moto.pid logfile=$LOG_DIR/moto.log
  if pid_of "$pidfile" moto_server >/dev/null; then
    wait_ready moto "$READY_TIMEOUT" "$pidfile" moto_server "$logfile" ready_moto
    echo "moto: ready on $HOST:$MOTO_PORT (already running)"
    return 0
  fi
  ports_free moto "$MOTO_PORT"
  launch "$pidfile" "$logfile" "$VENV/bin/moto_server" -H "$HOST" -p "$MOTO_PORT"
  wait_ready moto "$READY_TIMEOUT" "$pidfile" moto_server "$logfile" ready_moto
  echo "moto: ready on $HOST:$MOTO_PORT"
}

# An unsigned S3 ListBuckets: moto accepts any credentials, or none.
ready_moto() { curl -fsS --max-time 5 -o /dev/null "http://$HOST:$MOTO_PORT/"; }

stop_moto() { stop_pidfile moto "$RUN_DIR/moto.pid" moto_server; }
status_moto() { status_line moto "$RUN_DIR/moto.pid" moto_server "$MOTO_PORT"; }

# ---------------------------------------------------------------------------
# s3s-fs

S3S_BIN=$CARGO_ROOT/bin/s3s-fs

install_s3s_fs() {
  [[ -x $S3S_BIN ]] && return 0
  local cargo logfile=$LOG_DIR/cargo-install.log
  cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
  [[ -x $cargo ]] || die "cargo not found: s3s-fs is built with cargo install (install Rust first)"
  log "cargo install s3s-fs $S3S_VERSION into $CARGO_ROOT (a few minutes; log: $logfile)"
  # The binary is behind the `binary` feature. A private target dir keeps the
  # build away from the project's target/ (and whatever CARGO_TARGET_DIR says).
  CARGO_TARGET_DIR=$SVC_DIR/cargo-build "$cargo" install s3s-fs --version "$S3S_VERSION" \
    --locked --features binary --root "$CARGO_ROOT" >>"$logfile" 2>&1 || {
    show_log cargo-install "$logfile"
    die "cargo install s3s-fs failed"
  }
  rm -rf "$SVC_DIR/cargo-build"
}

start_s3s_fs() {
  local pidfile=$RUN_DIR/s3s-fs.pid logfile=$LOG_DIR/s3s-fs.log
  if pid_of "$pidfile" s3s-fs >/dev/null; then
    wait_ready s3s-fs "$READY_TIMEOUT" "$pidfile" s3s-fs "$logfile" ready_s3s_fs
    echo "s3s-fs: ready on $HOST:$S3S_PORT (already running)"
    return 0
  fi
  ports_free s3s-fs "$S3S_PORT"
  mkdir -p "$S3S_DATA"
  # RUST_LOG: s3s-fs logs nothing but errors unless told (its filter comes from the environment).
  launch "$pidfile" "$logfile" env RUST_LOG=warn "$S3S_BIN" --host "$HOST" --port "$S3S_PORT" \
    --access-key "$AWS_KEY" --secret-key "$AWS_SECRET" "$S3S_DATA"
  wait_ready s3s-fs "$READY_TIMEOUT" "$pidfile" s3s-fs "$logfile" ready_s3s_fs
  echo "s3s-fs: ready on $HOST:$S3S_PORT"
}

# Any HTTP answer will do (an unsigned request gets 403).
ready_s3s_fs() {
  [[ $(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://$HOST:$S3S_PORT/") != 000 ]]
}

stop_s3s_fs() { stop_pidfile s3s-fs "$RUN_DIR/s3s-fs.pid" s3s-fs; }
status_s3s_fs() { status_line s3s-fs "$RUN_DIR/s3s-fs.pid" s3s-fs "$S3S_PORT"; }

# ---------------------------------------------------------------------------
# mlflow

# The bucket of an s3:// artifacts destination.
mlflow_bucket() {
  local b=${MLFLOW_ARTIFACTS#s3://}
  echo "${b%%/*}"
}

# moto keeps everything in memory, so the bucket is (re)created on every start.
ensure_mlflow_bucket() {
  AWS_ACCESS_KEY_ID=$AWS_KEY AWS_SECRET_ACCESS_KEY=$AWS_SECRET AWS_DEFAULT_REGION=$AWS_REGION \
    "$VENV/bin/python" - "http://$HOST:$MOTO_PORT" "$(mlflow_bucket)" <<'PY'
import sys
import boto3
from botocore.exceptions import ClientError

endpoint, bucket = sys.argv[1:3]
s3 = boto3.client("s3", endpoint_url=endpoint)
try:
    s3.head_bucket(Bucket=bucket)
except ClientError:
    s3.create_bucket(Bucket=bucket)
PY
}

start_mlflow() {
  local pidfile=$RUN_DIR/mlflow.pid logfile=$LOG_DIR/mlflow.log
  if [[ $MLFLOW_ARTIFACTS == s3://* ]]; then ensure_mlflow_bucket; fi
  if pid_of "$pidfile" mlflow >/dev/null; then
    wait_ready mlflow "$MLFLOW_READY_TIMEOUT" "$pidfile" mlflow "$logfile" ready_mlflow
    echo "mlflow: ready on $HOST:$MLFLOW_PORT (already running)"
    return 0
  fi
  ports_free mlflow "$MLFLOW_PORT"
  mkdir -p "$MLFLOW_DIR"
  if [[ $MLFLOW_ARTIFACTS == /* ]]; then mkdir -p "$MLFLOW_ARTIFACTS"; fi
  # MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: otherwise the server forks a pool
  #   of job workers worth ~2 GB. --workers 1: one uvicorn process is plenty.
  # --allowed-hosts: MLflow 3 rejects unknown Host headers; spelled out so
  #   127.0.0.1:<port> keeps working whatever the default list becomes.
  launch "$pidfile" "$logfile" env \
    MLFLOW_S3_ENDPOINT_URL="http://$HOST:$MOTO_PORT" \
    AWS_ACCESS_KEY_ID="$AWS_KEY" AWS_SECRET_ACCESS_KEY="$AWS_SECRET" AWS_DEFAULT_REGION="$AWS_REGION" \
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
    "$VENV/bin/mlflow" server --host "$HOST" --port "$MLFLOW_PORT" --workers 1 \
    --backend-store-uri "$MLFLOW_BACKEND" \
    --serve-artifacts --artifacts-destination "$MLFLOW_ARTIFACTS" \
    --allowed-hosts "$HOST,$HOST:*,localhost,localhost:*"
  wait_ready mlflow "$MLFLOW_READY_TIMEOUT" "$pidfile" mlflow "$logfile" ready_mlflow
  echo "mlflow: ready on $HOST:$MLFLOW_PORT"
}

ready_mlflow() {
  local url=http://$HOST:$MLFLOW_PORT
  [[ $(curl -fsS --max-time 5 "$url/health") == OK ]] &&
    [[ $(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X POST \
      -H 'Content-Type: application/json' -d '{"max_results":1}' \
      "$url/api/2.0/mlflow/experiments/search") == 200 ]]
}

stop_mlflow() { stop_pidfile mlflow "$RUN_DIR/mlflow.pid" mlflow; }
status_mlflow() { status_line mlflow "$RUN_DIR/mlflow.pid" mlflow "$MLFLOW_PORT"; }

# ---------------------------------------------------------------------------
# mlflow-auth: a second MLflow server, with the basic-auth app, for the tests of
# wrong credentials. Self-contained: SQLite stores, artifacts on the local disk.

start_mlflow_auth() {
  local pidfile=$RUN_DIR/mlflow-auth.pid logfile=$LOG_DIR/mlflow-auth.log
  if pid_of "$pidfile" basic-auth >/dev/null; then
    wait_ready mlflow-auth "$MLFLOW_READY_TIMEOUT" "$pidfile" basic-auth "$logfile" ready_mlflow_auth
    echo "mlflow-auth: ready on $HOST:$MLFLOW_AUTH_PORT (already running)"
    return 0
  fi
  ports_free mlflow-auth "$MLFLOW_AUTH_PORT"
  mkdir -p "$MLFLOW_AUTH_DIR/artifacts"
  # Rewritten on every cold start so edits to this script take effect. The admin
  # user is created from it when auth.db has no such user yet; a changed password
  # is not applied to an existing user (delete auth.db for that).
  (
    umask 077
    cat >"$MLFLOW_AUTH_DIR/basic_auth.ini" <<EOF
[mlflow]
default_permission = READ
database_uri = sqlite:///$MLFLOW_AUTH_DIR/auth.db
admin_username = $MLFLOW_AUTH_USER
admin_password = $MLFLOW_AUTH_PASSWORD
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
EOF
  )
  # MLFLOW_FLASK_SERVER_SECRET_KEY: the basic-auth app refuses to start without
  # one. MLFLOW_AUTH_ADMIN_*, if the caller has them, would override the ini file.
  # The rest as for mlflow above.
  launch "$pidfile" "$logfile" env -u MLFLOW_AUTH_ADMIN_USERNAME -u MLFLOW_AUTH_ADMIN_PASSWORD \
    MLFLOW_AUTH_CONFIG_PATH="$MLFLOW_AUTH_DIR/basic_auth.ini" \
    MLFLOW_FLASK_SERVER_SECRET_KEY="$MLFLOW_AUTH_SECRET_KEY" \
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
    "$VENV/bin/mlflow" server --app-name basic-auth \
    --host "$HOST" --port "$MLFLOW_AUTH_PORT" --workers 1 \
    --backend-store-uri "sqlite:///$MLFLOW_AUTH_DIR/mlflow.db" \
    --serve-artifacts --artifacts-destination "$MLFLOW_AUTH_DIR/artifacts" \
    --allowed-hosts "$HOST,$HOST:*,localhost,localhost:*"
  wait_ready mlflow-auth "$MLFLOW_READY_TIMEOUT" "$pidfile" basic-auth "$logfile" ready_mlflow_auth
  echo "mlflow-auth: ready on $HOST:$MLFLOW_AUTH_PORT"
}

# An API call with the admin's credentials answers 200 and one without them 401
# (so this is the basic-auth app, not an open server). The credentials reach curl
# on stdin, not on its command line (config syntax: \ and " escaped).
ready_mlflow_auth() {
  local url=http://$HOST:$MLFLOW_AUTH_PORT user=$MLFLOW_AUTH_USER:$MLFLOW_AUTH_PASSWORD
  user=${user//\\/\\\\}
  user=${user//\"/\\\"}
  local search=(-s --max-time 10 -o /dev/null -w '%{http_code}' -X POST
    -H 'Content-Type: application/json' -d '{"max_results":1}' "$url/api/2.0/mlflow/experiments/search")
  [[ $(curl -fsS --max-time 5 "$url/health") == OK ]] &&
    [[ $(printf 'user = "%s"\n' "$user" | curl -K - "${search[@]}") == 200 ]] &&
    [[ $(curl "${search[@]}") == 401 ]]
}

# (Its pid file is matched on basic-auth, so a stale one never names the other mlflow.)
stop_mlflow_auth() { stop_pidfile mlflow-auth "$RUN_DIR/mlflow-auth.pid" basic-auth; }
status_mlflow_auth() { status_line mlflow-auth "$RUN_DIR/mlflow-auth.pid" basic-auth "$MLFLOW_AUTH_PORT"; }

# ---------------------------------------------------------------------------
# commands

# airflow last: its first install is the longest step, and no server waits for it.
SERVICES=(postgres mariadb redis redis_cluster moto s3s_fs mlflow mlflow_auth airflow)
# Started and checked only when named: three Python servers the test suite does
# not need running (Tier 3 starts its own). `stop` with no names stops them too.
ON_REQUEST=(airflow_server)

# The services a command acts on: those named on its command line (redis-cluster
# or redis_cluster), in SERVICES order, or all of them.
SELECTED=()
select_services() {
  local svc arg known all=("${SERVICES[@]}" "${ON_REQUEST[@]}")
  if (($# == 0)); then
    SELECTED=("${SERVICES[@]}")
    return 0
  fi
  for arg in "$@"; do
    known=0
    for svc in "${all[@]}"; do [[ ${arg//-/_} == "$svc" ]] && known=1; done
    ((known)) || die "unknown service '$arg' (services: ${all[*]//_/-})"
  done
  SELECTED=()
  for svc in "${all[@]}"; do
    for arg in "$@"; do
      if [[ ${arg//-/_} == "$svc" ]]; then
        SELECTED+=("$svc")
        break
      fi
    done
  done
}

selected() {
  local svc
  for svc in "${SELECTED[@]}"; do [[ $svc == "$1" ]] && return 0; done
  return 1
}

# The services $1 needs running: started before it, or it is not started.
deps_of() {
  case $1 in
    mlflow)
      if [[ $MLFLOW_BACKEND == postgresql* ]]; then echo postgres; fi
      if [[ $MLFLOW_ARTIFACTS == s3://* ]]; then echo moto; fi
      ;;
    airflow_server) echo airflow ;;
  esac
}

lock() {
  mkdir -p "$SVC_DIR"
  exec 9>"$SVC_DIR/.lock"
  flock -n 9 || {
    log "waiting for another services.sh start/stop to finish"
    flock 9
  }
}

require_root() { ((EUID == 0)) || die "must run as root (installs packages, runs postgres as its OS user)"; }

cmd_start() {
  select_services "$@"
  require_root
  lock
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  chmod 755 "$SVC_DIR" # the postgres OS user must traverse it

  command -v curl >/dev/null || need_apt curl
  command -v flock >/dev/null || need_apt util-linux
  if selected postgres; then install_postgres; fi
  if selected mariadb; then install_mariadb; fi
  if selected redis || selected redis_cluster; then install_redis; fi
  local python=0
  if selected moto || selected mlflow || selected mlflow_auth; then python=1; fi
  if ((python)) || selected airflow; then install_python_prereqs; fi
  # s3s-fs is built from source: cargo needs a C toolchain to link.
  if selected s3s_fs; then [[ -x $S3S_BIN ]] || command -v cc >/dev/null || need_apt gcc libc6-dev; fi
  apt_flush
  ((python == 0)) || install_python_env
  if selected s3s_fs; then install_s3s_fs; fi

  # Each service starts in a subshell with errexit, so one failure does not
  # keep the others down; an unexpected failing command is reported via ERR.
  local svc dep rc failed=() missing
  for svc in "${SELECTED[@]}"; do
    missing=()
    for dep in $(deps_of "$svc"); do
      if selected "$dep"; then
        [[ " ${failed[*]} " != *" $dep "* ]] || missing+=("$dep")
      else
        "status_$dep" >/dev/null || missing+=("$dep")
      fi
    done
    if ((${#missing[@]})); then
      log "${svc//_/-}: not started (not ready: ${missing[*]//_/-})"
      failed+=("$svc")
      continue
    fi
    set +e
    (
      set -eE
      # (a function that returned 1 has already said why)
      trap 'rc=$?; [[ $BASH_COMMAND == return* ]] || log "${svc//_/-}: failed (status $rc): $BASH_COMMAND"' ERR
      "start_$svc"
    )
    rc=$?
    set -e
    ((rc == 0)) || failed+=("$svc")
  done
  if ((${#failed[@]})); then
    log "not ready: ${failed[*]//_/-} (logs in $LOG_DIR)"
    exit 1
  fi
}

cmd_stop() {
  select_services "$@"
  (($#)) || SELECTED+=("${ON_REQUEST[@]}")
  require_root
  lock
  local i
  # Reverse order: the mlflow servers first (mlflow uses postgres and moto).
  for ((i = ${#SELECTED[@]} - 1; i >= 0; i--)); do
    "stop_${SELECTED[i]}"
  done
}

cmd_status() {
  select_services "$@"
  local svc down=0
  for svc in "${SELECTED[@]}"; do
    "status_$svc" || down=1
  done
  return "$down"
}

cmd_restart() {
  (($# > 0)) || usage
  cmd_stop "$@"
  # stop took the lock on fd 9; start takes it again (on a new descriptor).
  exec 9>&-
  cmd_start "$@"
}

# A crash of one server, not restarted (`start` does that): what a power cut or
# the OOM killer does. PostgreSQL's immediate stop is its crash (no checkpoint;
# recovery replays the WAL on the next start).
kill_postgres() {
  pid_of "$PG_DATA/postmaster.pid" postgres >/dev/null || die "postgres: not running"
  as_postgres "$(pg_bindir)/pg_ctl" -D "$PG_DATA" -m immediate -w -t 60 stop >/dev/null
  echo "postgres: killed (immediate stop)"
}

# SIGKILL of the process group launch() made (mlflow's uvicorn child goes too).
kill_pidfile() {
  local name=$1 pidfile=$2 pattern=$3 pid i
  pid=$(pid_of "$pidfile" "$pattern") || die "$name: not running"
  proc_stat "$pid" || true
  # Up to 30 s for the processes to be gone: under load a killed process can
  # take seconds to be reaped, and it holds its port until then.
  if [[ $PGRP == "$pid" ]]; then
    kill -KILL -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do group_alive "$pid" || break; sleep 0.1; done
    group_alive "$pid" && log "$name: process group $pid still alive 30s after SIGKILL"
  else
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do pid_of "$pidfile" "$pattern" >/dev/null || break; sleep 0.1; done
    pid_of "$pidfile" "$pattern" >/dev/null && log "$name: pid $pid still alive 30s after SIGKILL"
  fi
  rm -f "$pidfile"
  echo "$name: killed (SIGKILL)"
}

kill_mariadb() { kill_pidfile mariadb "$RUN_DIR/mariadb.pid" mariadbd; }
kill_mlflow() { kill_pidfile mlflow "$RUN_DIR/mlflow.pid" mlflow; }

cmd_kill() {
  (($# == 1)) || usage
  require_root
  lock
  case ${1//-/_} in
    postgres | mariadb | mlflow) "kill_${1//-/_}" ;;
    *) die "kill: postgres, mariadb or mlflow (a cluster master: kill-cluster-master)" ;;
  esac
}

# SIGKILL of one master of the cluster: the one on port $1, else the one
# serving slot 0. Prints its port. Its replica is promoted after
# cluster-node-timeout (GUST_CLUSTER_NODE_TIMEOUT); the killed node stays down
# (`start redis-cluster` then recreates the whole cluster, data lost).
cmd_kill_cluster_master() {
  (($# <= 1)) || usage
  require_root
  lock
  local port=${1:-} p pid
  if [[ -z $port ]]; then
    for p in "${CLUSTER_PORTS[@]}"; do
      # CLUSTER NODES: "id host:port@bus flags master-id ping pong epoch link slots…".
      port=$(rcli -p "$p" cluster nodes 2>/dev/null | awk '
        $3 ~ /master/ && $3 !~ /fail/ {
          for (i = 9; i <= NF; i++) if ($i ~ /^0(-|$)/) { split($2, a, "[:@]"); print a[2]; exit }
        }') && [[ -n $port ]] && break
    done
    [[ -n $port ]] || die "redis-cluster: no node answers CLUSTER SLOTS"
  fi
  [[ " ${CLUSTER_PORTS[*]} " == *" $port "* ]] || die "redis-cluster: $port is not a node of this cluster"
  [[ $(rcli -p "$port" role 2>/dev/null | head -n 1) == master ]] ||
    die "redis-cluster: the node on $port is not a master"
  pid=$(pid_of "$(cluster_pidfile "$port")" redis-server) || die "redis-cluster: node $port is not running"
  kill -KILL "$pid"
  while pid_of "$(cluster_pidfile "$port")" redis-server >/dev/null; do sleep 0.1; done
  echo "$port"
}

cmd_env() {
  local name value
  while IFS='=' read -r name value; do
    echo "export $name=$(shq "$value")"
  done <<EOF
AIRFLOW_CONN_POSTGRES_DEFAULT=postgres://$PG_USER:$PG_PASSWORD@$HOST:$PG_PORT/gust_test
AIRFLOW_CONN_MYSQL_DEFAULT=mysql://$MY_USER:$MY_PASSWORD@$HOST:$MY_PORT/gust_test
AIRFLOW_CONN_REDIS_DEFAULT=redis://:$REDIS_PASSWORD@$HOST:$REDIS_PORT/0
AIRFLOW_CONN_REDIS_TLS=redis://:$REDIS_PASSWORD@localhost:$REDIS_TLS_PORT/0?ssl=true&ssl_ca_certs=$(urlenc "$REDIS_DIR/tls/ca.crt")
AIRFLOW_CONN_REDIS_CLUSTER=redis://:$REDIS_PASSWORD@$HOST:${CLUSTER_PORTS[0]}/?cluster=true&startup_nodes=$HOST%3A${CLUSTER_PORTS[0]}%2C$HOST%3A${CLUSTER_PORTS[1]}%2C$HOST%3A${CLUSTER_PORTS[2]}
AIRFLOW_CONN_AWS_DEFAULT=aws://$AWS_KEY:$AWS_SECRET@/?region_name=$AWS_REGION&endpoint_url=http%3A%2F%2F$HOST%3A$MOTO_PORT
AIRFLOW_CONN_S3S_FS=aws://$AWS_KEY:$AWS_SECRET@/?region_name=$AWS_REGION&endpoint_url=http%3A%2F%2F$HOST%3A$S3S_PORT
AIRFLOW_CONN_MLFLOW_DEFAULT=http://$HOST:$MLFLOW_PORT
AIRFLOW_CONN_MLFLOW_AUTH=http://$(urlenc "$MLFLOW_AUTH_USER"):$(urlenc "$MLFLOW_AUTH_PASSWORD")@$HOST:$MLFLOW_AUTH_PORT
MLFLOW_TRACKING_URI=http://$HOST:$MLFLOW_PORT
MLFLOW_S3_ENDPOINT_URL=http://$HOST:$MOTO_PORT
GUST_SERVICES_PYTHON=$VENV/bin/python
GUST_AIRFLOW_PYTHON=$AIRFLOW_VENV/bin/python
EOF
}

usage() {
  echo "usage: $0 start|stop|status [service...] | restart service... | env" >&2
  echo "       $0 kill postgres|mariadb|mlflow | kill-cluster-master [port]" >&2
  echo "services: ${SERVICES[*]//_/-} (and, only when named: ${ON_REQUEST[*]//_/-})" >&2
  exit 2
}

cmd=${1:-}
shift || true
case $cmd in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  restart) cmd_restart "$@" ;;
  kill) cmd_kill "$@" ;;
  kill-cluster-master) cmd_kill_cluster_master "$@" ;;
  env)
    (($# == 0)) || usage
    cmd_env
    ;;
  *) usage ;;
esac
