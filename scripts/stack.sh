#!/usr/bin/env bash
# The full-stack example: three PostgreSQL 15 managed by Patroni, the three raftgate gateways and
# HAProxy — all on loopback. Patroni's DCS is the gateways themselves (their etcd v3 API), or with
# STACK_DCS=etcd three etcd members, kept for comparison (see "DCS choice" below). Every process it starts is
# recorded by pid under run/stack/pids and stopped by pid; nothing is matched by name.
#
#   scripts/stack.sh start | stop | status | failover | clean
#
# PostgreSQL refuses to run as root. Run as root (CI, the tests), Patroni — and so PostgreSQL,
# its child — runs as the `postgres` user the Debian package creates, through setpriv, which
# execs rather than forks, so the recorded pid is Patroni's own; its directories are owned by
# that user. Run as a normal user, everything runs as that user and needs no sudo (sudo is only
# for `make`'s apt-get). etcd, the gateways and HAProxy run as whoever runs this script.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

STACK=${STACK_DIR:-$PWD/run/stack}
case $STACK in /*) ;; *) STACK=$PWD/$STACK ;; esac
PIDS=$STACK/pids
LOGS=$STACK/logs
EXAMPLE=examples/full-stack
BIN=${RAFTGATE_BIN:-.build/release/raftgate}
PG_BIN=/usr/lib/postgresql/15/bin
MEMBERS="1 2 3"
# The gateways' etcd API password (Patroni's etcd3 credentials, user patroni): an example value,
# like the gateways' keys.
ETCD_PASSWORD=${RAFTGATE_ETCD_PASSWORD:-change-me-example-etcd-password}

# Ports (member i = 1, 2, 3): etcd client 238i / peer 239i, PostgreSQL 544i, Patroni REST 801i.
# The gateways and HAProxy keep examples/three-nodes' ports; HAProxy adds 5440 (primary) and
# 5444 (replicas) for PostgreSQL.
etcd_client() { echo $((2380 + $1)); }
etcd_peer() { echo $((2390 + $1)); }
pg_port() { echo $((5440 + $1)); }
api_port() { echo $((8010 + $1)); }

# The example's superuser password (examples/full-stack/patroni.yml.in).
export PGPASSWORD=${PGPASSWORD:-change-me-example-postgres}
PSQL_ANY_PRIMARY="host=127.0.0.1,127.0.0.1,127.0.0.1 port=5441,5442,5443 user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=1"
# The failover's POST /sql tenant (example values, like the others): its API key, its PostgreSQL
# role and that role's password, which the gateways read from their libpq passfile.
SQL_TENANT=stackbench
SQL_KEY=change-me-example-stackbench-key
SQL_USER=raftgate_bench
SQL_PASSWORD=change-me-example-bench-postgres
ADMIN_TOKEN=change-me-example-admin-token

# A pid file's process is alive if it exists and is not a zombie (a killed process whose parent
# has not reaped it).
pid_alive() {
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}
alive() { [ -f "$PIDS/$1.pid" ] && pid_alive "$(cat "$PIDS/$1.pid")"; }

# stop_pid NAME PID SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL.
stop_pid() {
    local name=$1 pid=$2 seconds=$3
    pid_alive "$pid" || return 0
    kill "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + seconds))
    while pid_alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if pid_alive "$pid"; then
        echo "$name (pid $pid) did not stop in ${seconds}s; sending SIGKILL" >&2
        kill -9 "$pid" 2>/dev/null || true
    fi
}

# The postmaster a Patroni member started, from the first line of its postmaster.pid, if that
# process is alive and is a postgres (the file outlives a crash, and pids are reused).
postmaster_pid() {
    local file=$STACK/pg$1/data/postmaster.pid pid
    [ -r "$file" ] || return 1
    pid=$(head -n 1 "$file")
    [ -n "$pid" ] && pid_alive "$pid" && [ "$(ps -o comm= -p "$pid")" = postgres ] && echo "$pid"
}

# exec_as_postgres COMMAND…: replaces the calling shell with COMMAND, run as the user PostgreSQL
# may run as (see the header). Called only as `exec_as_postgres … &`: the background subshell
# becomes the command itself, so $! is the command's pid and not a shell's that would die on
# SIGTERM and leave the command running.
exec_as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
    else
        exec "$@"
    fi
}

need() { command -v "$1" >/dev/null || { echo "missing $1 — run \`make start-stack\`, which installs it" >&2; exit 1; }; }

# --- DCS choice -------------------------------------------------------------------------------
# STACK_DCS=raftgate (default): Patroni's etcd3 client talks to the three gateways' etcd v3 API.
# STACK_DCS=etcd: to three etcd members of their own (the comparison in `make bench`). A stack keeps
# the DCS it was first started with (its cluster state lives there): `clean` to switch.
STACK_DCS=${STACK_DCS:-}

choose_dcs() {
    local recorded=""
    [ -f "$STACK/dcs" ] && recorded=$(cat "$STACK/dcs")
    # A stack from before the choice existed ran on etcd.
    if [ -z "$recorded" ] && [ -d "$STACK/etcd" ]; then recorded=etcd; fi
    if [ -z "$STACK_DCS" ]; then STACK_DCS=${recorded:-raftgate}; fi
    case $STACK_DCS in
    raftgate | etcd) ;;
    *) echo "STACK_DCS must be raftgate or etcd, not $STACK_DCS" >&2; exit 2 ;;
    esac
    if [ -n "$recorded" ] && [ "$recorded" != "$STACK_DCS" ]; then
        echo "this stack runs with STACK_DCS=$recorded; \`scripts/stack.sh clean\` first to switch to $STACK_DCS" >&2
        exit 1
    fi
}

dcs_hosts() {
    local id out="" port
    for id in $MEMBERS; do
        if [ "$STACK_DCS" = etcd ]; then port=$(etcd_client "$id"); else port=$((8080 + id)); fi
        out="$out${out:+,}127.0.0.1:$port"
    done
    echo "$out"
}

# Starts Patroni's DCS and waits until it serves: etcd's three members, or the gateways (which
# then need a leader: the etcd API forwards writes to it).
start_dcs() {
    local id
    mkdir -p "$STACK"
    echo "$STACK_DCS" >"$STACK/dcs"
    if [ "$STACK_DCS" = etcd ]; then
        need etcd
        for id in $MEMBERS; do start_etcd "$id"; done
        for id in $MEMBERS; do
            wait_for 30 etcd_healthy "$id" || { echo "etcd $id is not healthy (logs in $LOGS/)" >&2; exit 1; }
        done
    else
        for id in $MEMBERS; do start_gateway "$id"; done
        wait_for 30 gateway_leader || { echo "no gateway leader (logs in $LOGS/)" >&2; exit 1; }
    fi
}

# --- etcd -------------------------------------------------------------------------------------
etcd_cluster() {
    local id out=""
    for id in $MEMBERS; do out="$out${out:+,}e$id=http://127.0.0.1:$(etcd_peer "$id")"; done
    echo "$out"
}

start_etcd() {
    local id=$1
    alive "etcd$id" && return
    mkdir -p "$STACK/etcd"
    etcd --name "e$id" --data-dir "$STACK/etcd/e$id" \
        --listen-client-urls "http://127.0.0.1:$(etcd_client "$id")" \
        --advertise-client-urls "http://127.0.0.1:$(etcd_client "$id")" \
        --listen-peer-urls "http://127.0.0.1:$(etcd_peer "$id")" \
        --initial-advertise-peer-urls "http://127.0.0.1:$(etcd_peer "$id")" \
        --initial-cluster "$(etcd_cluster)" --initial-cluster-token raftgate-stack \
        --initial-cluster-state new --log-level warn >>"$LOGS/etcd$id.log" 2>&1 &
    echo $! >"$PIDS/etcd$id.pid"
}

etcd_healthy() { curl -s -m 1 "http://127.0.0.1:$(etcd_client "$1")/health" | grep -q '"health":"true"'; }

# --- Patroni / PostgreSQL ---------------------------------------------------------------------
prepare_member() {
    local id=$1 dir=$STACK/pg$1
    mkdir -p "$dir/log"
    sed -e "s|@NAME@|pg$id|g" -e "s|@API_PORT@|$(api_port "$id")|g" -e "s|@PG_PORT@|$(pg_port "$id")|g" \
        -e "s|@DIR@|$dir|g" -e "s|@DCS_HOSTS@|$(dcs_hosts)|g" -e "s|@ETCD_PASSWORD@|$ETCD_PASSWORD|g" \
        "$EXAMPLE/patroni.yml.in" >"$dir/patroni.yml"
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres:postgres "$dir"
        if ! setpriv --reuid=postgres --regid=postgres --init-groups -- test -w "$dir"; then
            echo "the postgres user cannot reach $dir (a parent directory is closed to it);" >&2
            echo "set STACK_DIR to a directory it can reach, e.g. STACK_DIR=/var/tmp/raftgate-stack" >&2
            exit 1
        fi
    fi
    # initdb wants an empty or missing data directory owned by its user, mode 0700.
    chmod 700 "$dir"
}

start_member() {
    local id=$1
    alive "patroni$id" && return
    prepare_member "$id"
    # HOME points at the member's directory so libpq and Patroni never look in root's home.
    exec_as_postgres env HOME="$STACK/pg$id" PATH="$PG_BIN:$PATH" \
        patroni "$STACK/pg$id/patroni.yml" >>"$LOGS/patroni$id.log" 2>&1 &
    echo $! >"$PIDS/patroni$id.pid"
}

# code MEMBER PATH: the HTTP status Patroni's REST API answers (000 when it does not answer).
api_code() { curl -s -m 1 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(api_port "$1")$2" || true; }

primary_member() {
    local id
    for id in $MEMBERS; do [ "$(api_code "$id" /primary)" = 200 ] && { echo "$id"; return 0; }; done
    return 1
}

# One primary, every other member a running replica, one of them the synchronous standby.
pg_ready() {
    local primary id
    primary=$(primary_member) || return 1
    for id in $MEMBERS; do
        [ "$id" = "$primary" ] || [ "$(api_code "$id" /replica)" = 200 ] || return 1
    done
    for id in $MEMBERS; do [ "$(api_code "$id" /sync)" = 200 ] && return 0; done
    return 1
}

patronictl_list() { patronictl -c "$STACK/pg1/patroni.yml" list 2>/dev/null; }

# --- Redis under Sentinel --------------------------------------------------------------------
# Three Redis 7 (redis i on 637(8+i): 6379 the first master, 6380 and 6381 its replicas) and three
# Sentinels on 2637(8+i) (quorum 2, down-after-milliseconds 2000, failover-timeout 10000). Data,
# configs (the Sentinels rewrite theirs) and logs under $STACK/redis*, $STACK/sentinel*.
redis_port() { echo $((6378 + $1)); }
sentinel_port() { echo $((26378 + $1)); }
REDIS_DOWN_AFTER_MS=2000

start_redis_tier() {
    need redis-server
    need redis-sentinel
    local id dir replica master
    # The master is redis 1 on a first start, afterwards whichever Sentinel 1 last wrote into its
    # config (Sentinels rewrite it on failover): every other one starts as its replica.
    master=$(awk '$1 == "sentinel" && $2 == "monitor" {print $5}' "$STACK/sentinel1/sentinel.conf" 2>/dev/null | tail -n 1 || true)
    master=${master:-$(redis_port 1)}
    for id in $MEMBERS; do
        alive "redis$id" && continue
        dir=$STACK/redis$id
        mkdir -p "$dir"
        replica=()
        [ "$(redis_port "$id")" = "$master" ] || replica=(--replicaof 127.0.0.1 "$master")
        redis-server --port "$(redis_port "$id")" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
            --protected-mode no --min-replicas-to-write 1 --min-replicas-max-lag 10 ${replica[@]+"${replica[@]}"} >>"$LOGS/redis$id.log" 2>&1 &
        echo $! >"$PIDS/redis$id.pid"
    done
    for id in $MEMBERS; do
        alive "sentinel$id" && continue
        dir=$STACK/sentinel$id
        mkdir -p "$dir"
        [ -f "$dir/sentinel.conf" ] || cat >"$dir/sentinel.conf" <<CONF
port $(sentinel_port "$id")
bind 127.0.0.1
protected-mode no
dir $dir
sentinel monitor mymaster 127.0.0.1 $(redis_port 1) 2
sentinel down-after-milliseconds mymaster $REDIS_DOWN_AFTER_MS
sentinel failover-timeout mymaster 10000
sentinel parallel-syncs mymaster 1
CONF
        redis-sentinel "$dir/sentinel.conf" >>"$LOGS/sentinel$id.log" 2>&1 &
        echo $! >"$PIDS/sentinel$id.pid"
    done
}

redis_master() {
    local address
    address=$(redis-cli -p "$(sentinel_port 1)" sentinel get-master-addr-by-name mymaster 2>/dev/null | paste -sd: -) || true
    echo "${address:-unknown}"
}

redis_ready() {
    local id info
    for id in $MEMBERS; do
        info=$(redis-cli -p "$(sentinel_port "$id")" sentinel master mymaster 2>/dev/null | paste -sd' ') || return 1
        grep -q 'num-slaves 2' <<<"$info" && grep -q 'num-other-sentinels 2' <<<"$info" || return 1
    done
}

stop_redis_tier() {
    local id
    for id in $MEMBERS; do alive "sentinel$id" && stop_pid "sentinel$id" "$(cat "$PIDS/sentinel$id.pid")" 10; done
    for id in $MEMBERS; do alive "redis$id" && stop_pid "redis$id" "$(cat "$PIDS/redis$id.pid")" 10; done
    return 0
}

redis_tier_status() {
    local id
    echo "Redis (master per Sentinel 1: $(redis_master)):"
    for id in $MEMBERS; do
        printf 'redis%s :%s %s   sentinel%s :%s %s\n' "$id" "$(redis_port "$id")" \
            "$(redis-cli -p "$(redis_port "$id")" role 2>/dev/null | head -n 1 || echo down)" "$id" "$(sentinel_port "$id")" \
            "$(redis-cli -p "$(sentinel_port "$id")" ping 2>/dev/null || echo down)"
    done
}

# --- gateways and HAProxy ---------------------------------------------------------------------
start_gateway() {
    local id=$1
    alive "gateway$id" && return
    # --bootstrap only on the stack's first start (see scripts/cluster.sh).
    local bootstrap=()
    if [ "${BOOTSTRAP:-0}" = 1 ]; then bootstrap=(--bootstrap); fi
    mkdir -p "$STACK/gateways"
    # The /sql pools' passwords: a libpq passfile, which must be mode 0600.
    (umask 077 && printf '*:*:postgres:%s:%s\n' "$SQL_USER" "$SQL_PASSWORD" >"$STACK/gateways.pgpass")
    RAFTGATE_ETCD_PASSWORD=$ETCD_PASSWORD RAFTGATE_POSTGRES_PASSFILE=$STACK/gateways.pgpass \
        "$BIN" serve --config "$EXAMPLE/gateway$id.json" --data-dir "$STACK/gateways/node$id" ${bootstrap[@]+"${bootstrap[@]}"} \
        >>"$LOGS/gateway$id.log" 2>&1 &
    echo $! >"$PIDS/gateway$id.pid"
}

gateway_leader() {
    local id
    for id in $MEMBERS; do
        [ "$(curl -s -m 1 -o /dev/null -w '%{http_code}' "http://127.0.0.1:1000$id/primary")" = 200 ] && return 0
    done
    return 1
}

write_through_haproxy() {
    [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' -X PUT --data ready http://127.0.0.1:8080/kv/_stack_started)" = 200 ]
}

# --- commands ---------------------------------------------------------------------------------
start() {
    choose_dcs
    need patroni
    need haproxy
    [ -x "$PG_BIN/postgres" ] || { echo "missing $PG_BIN/postgres (Debian's postgresql-15)" >&2; exit 1; }
    [ -x "$BIN" ] || { echo "missing $BIN — \`make start-stack\` builds it" >&2; exit 1; }
    local id
    for id in $MEMBERS; do
        if [ -f "run/node$id.pid" ] && pid_alive "$(cat "run/node$id.pid")"; then
            echo "the three-node example (make start-cluster) is running on the same ports; make stop-cluster first" >&2
            exit 1
        fi
    done
    mkdir -p "$PIDS" "$LOGS"
    # Before anything starts: PostgreSQL's directories must be reachable by the user it runs as.
    for id in $MEMBERS; do prepare_member "$id"; done

    if [ ! -d "$STACK/gateways" ]; then BOOTSTRAP=1; fi
    start_dcs

    for id in $MEMBERS; do start_member "$id"; done
    start_redis_tier
    for id in $MEMBERS; do start_gateway "$id"; done
    alive haproxy || haproxy -f "$EXAMPLE/haproxy.cfg" -D -p "$PIDS/haproxy.pid"

    wait_for 30 gateway_leader || { echo "no gateway leader (logs in $LOGS/)" >&2; exit 1; }
    wait_for 30 write_through_haproxy || { echo "HAProxy routes no write to the gateways" >&2; exit 1; }
    # Bootstrap (initdb, then two base backups) takes tens of seconds on a loaded machine.
    wait_for 180 pg_ready || {
        echo "PostgreSQL is not up: want one primary and two running replicas, one synchronous" >&2
        patronictl_list >&2 || true
        echo "(logs in $LOGS/ and $STACK/pg*/log/)" >&2
        exit 1
    }
    wait_for 60 redis_ready || { echo "Redis and its Sentinels are not up (logs in $LOGS/)" >&2; exit 1; }
    patronictl_list
    cat <<TXT
raftgate full stack is up.
  gateways through HAProxy  http://127.0.0.1:8080   (nodes :8081 :8082 :8083, health :10001-3)
  PostgreSQL members        127.0.0.1:5441 :5442 :5443   (user postgres, password $PGPASSWORD)
  Patroni REST              http://127.0.0.1:8011 :8012 :8013   (/patroni /cluster /primary /replica)
  PostgreSQL via HAProxy    127.0.0.1:5440 (primary)  :5444 (replicas)  — Patroni's checks
  Patroni's DCS             $STACK_DCS at $(dcs_hosts)
  Redis / Sentinels         127.0.0.1:6379 :6380 :6381 / :26379 :26380 :26381 (master now: $(redis_master))
  HAProxy stats             http://127.0.0.1:8404
  pids, logs, data          $STACK/
Try:
  curl -s http://127.0.0.1:8011/cluster
  PGPASSWORD=$PGPASSWORD psql -h 127.0.0.1 -p 5440 -U postgres -c 'select pg_is_in_recovery()'
  scripts/stack.sh failover
TXT
}

stop() {
    local id primary pid
    alive haproxy && stop_pid haproxy "$(cat "$PIDS/haproxy.pid")" 10
    # Replicas first, the primary last: a primary stopped first hands its lock to a replica that
    # is about to stop too.
    primary=$(primary_member || true)
    for id in $MEMBERS; do
        [ "$id" = "$primary" ] && continue
        alive "patroni$id" && stop_pid "patroni$id" "$(cat "$PIDS/patroni$id.pid")" 60
    done
    for id in $MEMBERS; do alive "patroni$id" && stop_pid "patroni$id" "$(cat "$PIDS/patroni$id.pid")" 60; done
    # Patroni stops its PostgreSQL on SIGTERM; one left behind (Patroni SIGKILL'd earlier) is
    # stopped through its own pid file.
    for id in $MEMBERS; do
        if pid=$(postmaster_pid "$id"); then stop_pid "postgres pg$id" "$pid" 30; fi
    done
    # The gateways after Patroni: they may be its DCS, which a stopping Patroni still talks to.
    for id in $MEMBERS; do alive "gateway$id" && stop_pid "gateway$id" "$(cat "$PIDS/gateway$id.pid")" 20; done
    for id in $MEMBERS; do alive "etcd$id" && stop_pid "etcd$id" "$(cat "$PIDS/etcd$id.pid")" 10; done
    stop_redis_tier
    rm -f "$PIDS"/*.pid
    echo "stopped"
}

status() {
    local id
    choose_dcs
    echo "Patroni's DCS: $STACK_DCS ($(dcs_hosts))"
    echo "Patroni:"
    patronictl_list || echo "  (no answer)"
    echo
    for id in $MEMBERS; do
        printf 'pg%s  patroni /primary %s /replica %s   gateway%s /primary %s   etcd%s %s\n' "$id" \
            "$(api_code "$id" /primary)" "$(api_code "$id" /replica)" "$id" \
            "$(curl -s -m 1 -o /dev/null -w '%{http_code}' "http://127.0.0.1:1000$id/primary" || true)" \
            "$id" "$(etcd_healthy "$id" && echo healthy || echo down)"
    done
    echo
    redis_tier_status
}

# SIGKILL the primary's Patroni and PostgreSQL under two streams of INSERTs (each its own psql):
# one straight to whichever member is read-write (libpq's target_session_attrs), one through
# HAProxy's :5440 (Patroni's checks). Times the promotion and each stream's outage, checks that
# every acknowledged INSERT is on the new primary, then restarts the killed member.
STOP_WRITERS=
start_writer() { # connection file
    local connection=$1 file=$2
    : >"$file"
    (
        # One line per INSERT: "<started ms> <answered ms> <id, or failed>".
        while [ ! -f "$STACK/failover.stop" ]; do
            started=$(now_ms)
            if out=$(psql "$connection" -Atq -c 'INSERT INTO stack_failover DEFAULT VALUES RETURNING id' 2>>"$STACK/failover-writes.log"); then
                echo "$started $(now_ms) $out" >>"$file"
            else
                echo "$started $(now_ms) failed" >>"$file"
            fi
        done
    ) &
    STOP_WRITERS="$STOP_WRITERS $!"
}
# start_sql_writer FILE: INSERTs through POST /sql, round the three gateways, in FILE's format;
# a 504 outcome_unknown or no answer is "unknown", never acknowledged.
start_sql_writer() {
    local file=$1
    : >"$file"
    (
        n=0
        while [ ! -f "$STACK/failover.stop" ]; do
            started=$(now_ms) port=$((8081 + n % 3)) n=$((n + 1))
            out=$(curl -s -m 5 -w ' %{http_code}' -X POST "http://127.0.0.1:$port/sql" -H "X-Tenant: $SQL_TENANT" \
                -H "X-API-Key: $SQL_KEY" -d '{"sql":"INSERT INTO stack_failover DEFAULT VALUES RETURNING id"}' || true)
            id=$(sed -n 's/.*"rows":\[\[\([0-9]*\)\]\].*/\1/p' <<<"$out")
            case "${out##* }" in
            200) [ -n "$id" ] && echo "$started $(now_ms) $id" || echo "$started $(now_ms) failed" ;;
            504 | 000) echo "$started $(now_ms) unknown" ;;
            *) echo "$started $(now_ms) failed" ;;
            esac >>"$file"
        done
    ) &
    STOP_WRITERS="$STOP_WRITERS $!"
}
# start_sql_reader FILE: SELECTs through POST /sql round the gateways, "<started ms> <answered ms>
# ok|<status>" per line.
start_sql_reader() {
    local file=$1
    : >"$file"
    (
        n=0
        while [ ! -f "$STACK/failover.stop" ]; do
            started=$(now_ms) port=$((8081 + n % 3)) n=$((n + 1))
            code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/sql" \
                -H "X-Tenant: $SQL_TENANT" -H "X-API-Key: $SQL_KEY" \
                -d '{"sql":"SELECT pg_is_in_recovery(), count(*) FROM stack_failover"}' || true)
            [ "$code" = 200 ] && code=ok
            echo "$started $(now_ms) $code" >>"$file"
        done
    ) &
    STOP_WRITERS="$STOP_WRITERS $!"
}
# sql_tenant: the role (INSERT and SELECT on the table only) and the project config of the /sql
# tenant, then waits until every gateway answers it.
sql_tenant() {
    psql "$PSQL_ANY_PRIMARY" -q -v ON_ERROR_STOP=1 \
        -c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$SQL_USER') THEN CREATE ROLE $SQL_USER LOGIN PASSWORD '$SQL_PASSWORD'; END IF; END\$\$" \
        -c "GRANT SELECT, INSERT ON stack_failover TO $SQL_USER" -c "GRANT USAGE ON SEQUENCE stack_failover_id_seq TO $SQL_USER"
    local digest
    digest=$(printf %s "$SQL_KEY" | sha256sum | cut -d' ' -f1)
    put_sql_config() {
        [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X PUT "http://127.0.0.1:8080/config/$SQL_TENANT" \
            -H "Authorization: Bearer $ADMIN_TOKEN" \
            -d "{\"apiKeys\":[\"sha256:$digest\"],\"postgres\":{\"database\":\"postgres\",\"user\":\"$SQL_USER\",\"maxConnections\":4}}")" = 200 ]
    }
    wait_for 30 put_sql_config || { echo "the /sql tenant's config was not written" >&2; return 1; }
    sql_answers() {
        local port
        for port in 8081 8082 8083; do
            [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/sql" -H "X-Tenant: $SQL_TENANT" \
                -H "X-API-Key: $SQL_KEY" -d '{"sql":"SELECT count(*) FROM stack_failover"}')" = 200 ] || return 1
        done
    }
    wait_for 30 sql_answers || { echo "POST /sql does not answer on every gateway" >&2; return 1; }
}
stop_writers() {
    touch "$STACK/failover.stop"
    local writer
    for writer in $STOP_WRITERS; do wait "$writer" || true; done
    STOP_WRITERS=
    rm -f "$STACK/failover.stop"
}
# acknowledged_after FILE MS: FILE has an acknowledged INSERT that *started* after MS (one in
# flight at the kill can be answered just after it). Lines are matched whole, since the writer
# may be half-way through appending one.
acknowledged_after() { awk -v t="$2" 'NF == 3 && $3 ~ /^[0-9]+$/ && $1 > t {found=1} END {exit !found}' "$1"; }
# outage FILE: "<longest gap between acknowledged INSERTs, ms> <when it ended, ms>".
# (printf "%.0f": mawk prints a bare 13-digit number as 1.79602e+12, and %d overflows at 2^31.)
outage() { awk 'NF == 3 && $3 ~ /^[0-9]+$/ {if (last && $2 - last > gap) {gap = $2 - last; end = $2}; last = $2} END {printf "%.0f %.0f\n", gap, end}' "$1"; }

# route_timer OLD FILE KILLED_MS: after the SIGKILL of pgOLD, polls the other members'
# pg_is_in_recovery() and every gateway's GET /pg; writes "<ms the new primary left recovery>
# <ms every gateway routed writes to it> <member>" to FILE (either time empty if not seen within
# 60 s). A fresh psql per poll sees the promotion late (by up to a few hundred ms on a loaded
# machine), so the promotion's time is taken from the new primary's own log when it has it: the
# millisecond stamp of "database system is ready to accept connections", which PostgreSQL logs
# as the startup process ends recovery.
route_timer() {
    local old=$1 file=$2 killed=$3 left="" routed="" member="" id deadline=$((SECONDS + 60)) views port ready
    while [ $SECONDS -lt $deadline ] && [ -z "$routed" ]; do
        if [ -z "$left" ]; then
            for id in $MEMBERS; do
                [ "$id" = "$old" ] && continue
                if [ "$(psql "host=127.0.0.1 port=$(pg_port "$id") user=postgres dbname=postgres connect_timeout=1" \
                    -Atq -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; then
                    left=$(now_ms) member=pg$id
                fi
            done
        fi
        if [ -n "$left" ]; then
            views=0
            for port in 8081 8082 8083; do
                curl -s -m 1 "http://127.0.0.1:$port/pg" | grep -q "\"primary\":\"$member\".*\"writable\":true" &&
                    views=$((views + 1))
            done
            [ $views = 3 ] && routed=$(now_ms)
        fi
        [ -n "$routed" ] || sleep 0.02
    done
    if [ -n "$member" ]; then
        ready=$(grep -a "database system is ready to accept connections" "$STACK/$member/log/postgresql.log" 2>/dev/null |
            tail -n 1 | awk '{print $1" "$2" "$3}')
        if [ -n "$ready" ] && ready=$(date -d "$ready" +%s%3N 2>/dev/null) && [ "$ready" -gt "$killed" ] &&
            [ "$ready" -le "$left" ]; then
            left=$ready
        fi
    fi
    echo "$left $routed $member" >"$file"
}

failover() {
    choose_dcs
    local old new pid
    old=$(primary_member) || { echo "no primary; is the stack up?" >&2; exit 1; }
    psql "$PSQL_ANY_PRIMARY" -q -v ON_ERROR_STOP=1 \
        -c 'CREATE TABLE IF NOT EXISTS stack_failover (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())'
    sql_tenant || exit 1
    local direct=$STACK/failover-direct.txt proxied=$STACK/failover-haproxy.txt sql=$STACK/failover-sql.txt
    local sql_reads=$STACK/failover-sql-reads.txt
    rm -f "$STACK/failover.stop"
    start_writer "$PSQL_ANY_PRIMARY" "$direct"
    start_writer "host=127.0.0.1 port=5440 user=postgres dbname=postgres connect_timeout=1" "$proxied"
    start_sql_writer "$sql"
    start_sql_reader "$sql_reads"
    if ! wait_for 30 acknowledged_after "$direct" 0 || ! wait_for 30 acknowledged_after "$proxied" 0 ||
        ! wait_for 30 acknowledged_after "$sql" 0; then
        stop_writers
        echo "no write succeeded" >&2
        exit 1
    fi
    sleep 1 # a second of steady writes before the kill, for the record

    local killed_at
    killed_at=$(now_ms)
    pid=$(postmaster_pid "$old" || true)
    kill -9 "$(cat "$PIDS/patroni$old.pid")"
    [ -n "$pid" ] && kill -9 "$pid"
    route_timer "$old" "$STACK/failover-route.txt" "$killed_at" &
    local timer=$!
    # Whatever happens next, the killed member is started again: a run that stops half-way must
    # not leave the cluster a member short for the next one.
    trap 'start_member "$old"' EXIT
    echo "SIGKILL'd pg$old's Patroni and PostgreSQL (the primary)"
    other_primary() { new=$(primary_member) && [ "$new" != "$old" ]; }
    wait_for 60 other_primary || { stop_writers; echo "no new primary within 60 s" >&2; exit 1; }
    # `new` is what other_primary found: asking again could catch a slow answer and, under
    # set -e, end the script with the killed member still down.
    local promoted_at
    promoted_at=$(now_ms)
    wait_for 30 acknowledged_after "$direct" "$killed_at" || echo "no direct INSERT succeeded within 30 s" >&2
    wait_for 30 acknowledged_after "$proxied" "$killed_at" || echo "no INSERT through HAProxy within 30 s" >&2
    wait_for 30 acknowledged_after "$sql" "$killed_at" || echo "no INSERT through POST /sql within 30 s" >&2
    stop_writers
    wait "$timer" || true
    local route
    read -r -a route <<<"$(cat "$STACK/failover-route.txt") x x x"

    local direct_outage proxied_outage sql_outage failed ids missing
    read -r -a direct_outage <<<"$(outage "$direct")"
    read -r -a proxied_outage <<<"$(outage "$proxied")"
    read -r -a sql_outage <<<"$(outage "$sql")"
    failed=$(cat "$direct" "$proxied" "$sql" | grep -c ' failed$' || true)
    ids=$(cat "$direct" "$proxied" "$sql" | awk 'NF == 3 && $3 ~ /^[0-9]+$/ {print $3}' | paste -sd, -)
    # Counted on the new primary itself (not "whichever is writable"), retried until it answers.
    count_missing() {
        missing=$(psql "host=127.0.0.1 port=$(pg_port "$new") user=postgres dbname=postgres connect_timeout=2" -Atq \
            -c "SELECT count(*) FROM unnest(array[$ids]::bigint[]) AS a(id) WHERE NOT EXISTS (SELECT 1 FROM stack_failover s WHERE s.id = a.id)")
    }
    wait_for 30 count_missing || missing="unknown (pg$new did not answer)"
    echo "pg$new is the new primary, $((promoted_at - killed_at)) ms after the SIGKILL (Patroni REST /primary)"
    echo "write outage, direct (libpq read-write): ${direct_outage[0]} ms without an acknowledged INSERT"
    echo "write outage, through HAProxy :5440: ${proxied_outage[0]} ms; its first INSERT $((proxied_outage[1] - promoted_at)) ms after the promotion was seen"
    echo "write outage, through the gateways' POST /sql: ${sql_outage[0]} ms; its first INSERT $((sql_outage[1] - promoted_at)) ms after the promotion was seen"
    echo "POST /sql: $(grep -c ' unknown$' "$sql" || true) INSERTs of unknown outcome (504 or no answer, not counted as acknowledged); reads $(grep -Ec '^[0-9]+ [0-9]+ ' "$sql_reads"), failed reads: $(grep -Ec '^[0-9]+ [0-9]+ [0-9]+$' "$sql_reads")"
    if [ -n "${route[1]}" ] && [ "${route[1]}" != x ] && [ "${route[0]}" != x ]; then
        echo "raftgate: every gateway routed writes to ${route[2]} $((route[1] - route[0])) ms after it left recovery (pg_is_in_recovery() false); $((route[1] - promoted_at)) ms after Patroni's /primary said so"
    else
        echo "raftgate: the gateways did not all route to the new primary within 60 s"
    fi
    echo "acknowledged INSERTs: $(cat "$direct" "$proxied" "$sql" | grep -Ec '^[0-9]+ [0-9]+ [0-9]+$'), failed: $failed, missing on the new primary: $missing"

    start_member "$old"
    trap - EXIT
    wait_for 180 pg_ready || { echo "pg$old did not rejoin as a replica (logs in $LOGS/)" >&2; patronictl_list >&2; exit 1; }
    patronictl_list
    [ "$missing" = 0 ] || { echo "LOST $missing acknowledged INSERTs" >&2; exit 1; }
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
failover) failover ;;
clean)
    stop
    rm -rf "$STACK"
    echo "removed $STACK"
    ;;
*)
    echo "usage: $0 start|stop|status|failover|clean" >&2
    exit 2
    ;;
esac
