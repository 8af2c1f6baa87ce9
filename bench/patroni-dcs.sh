#!/usr/bin/env bash
# `make bench`'s Patroni DCS rows: the same Patroni 3.0.2 settings (examples/full-stack/patroni.yml.in:
# synchronous mode, ttl 10 s, loop_wait 2 s) over two DCSes in one run — three raftgate gateways
# (their etcd v3 API) and three etcd 3.4 members — each with three PostgreSQL 15 members. RUNS times,
# alternating, SIGKILL a cluster's primary (Patroni and postmaster) and time until another member's
# Patroni says it is primary; the killed member is restarted and rejoins before the next run.
# Everything on 127.0.0.1 ports 26400–26499, stopped by pid. Prints two Markdown rows in the
# columns of bench/run.sh's main table.
#   RG=.build/release/raftgate PATRONI_DCS_RUNS=3 bench/patroni-dcs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
RG=${RG:-.build/release/raftgate}
RUNS=${PATRONI_DCS_RUNS:-3}
PG_BIN=/usr/lib/postgresql/15/bin
ETCD_PASSWORD=bench-etcd-password-0000 # the gateways' etcd API password, Patroni's etcd3 credentials
WORK=$(mktemp -d /tmp/raftgate-patroni-dcs.XXXXXX)
chmod 755 "$WORK" # as root, PostgreSQL runs as the postgres user, which must reach its directories
PIDS=()
declare -A PATRONI_PID
median() { sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : "-")}'; }
code() { curl -s -m 1 -o /dev/null -w '%{http_code}' "$@" || true; }

# Ports: raftgate http 2640i, health 2641i, raft 2642i, SWIM 2643i; etcd client 2645i, peer 2646i;
# Patroni REST 2647i (over raftgate) / 2648i (over etcd); PostgreSQL 2649i / 2650i.
rest_port() { if [ "$1" = rg ]; then echo $((26470 + $2)); else echo $((26480 + $2)); fi; }
pg_port() { if [ "$1" = rg ]; then echo $((26490 + $2)); else echo $((26500 + $2)); fi; }
dcs_hosts() {
    if [ "$1" = rg ]; then echo 127.0.0.1:26401,127.0.0.1:26402,127.0.0.1:26403
    else echo 127.0.0.1:26451,127.0.0.1:26452,127.0.0.1:26453; fi
}

postmaster_pid() {
    local file=$WORK/$1-pg$2/data/postmaster.pid pid
    [ -r "$file" ] || return 1
    pid=$(head -n 1 "$file")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

cleanup() {
    local dcs id pid
    for dcs in rg etcd; do
        for id in 1 2 3; do
            pid=${PATRONI_PID[$dcs$id]:-}
            [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
            if pid=$(postmaster_pid "$dcs" "$id"); then kill -QUIT "$pid" 2>/dev/null || true; fi
        done
    done
    sleep 1
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

start_gateway() {
    RAFTGATE_ETCD_PASSWORD=$ETCD_PASSWORD "$RG" serve --id "$1" --data-dir "$WORK/raftgate-$1" --http "127.0.0.1:$((26400 + $1))" \
        --health "127.0.0.1:$((26410 + $1))" --raft "127.0.0.1:$((26420 + $1))" \
        --peers "1=127.0.0.1:26421,2=127.0.0.1:26422,3=127.0.0.1:26423" --swim "127.0.0.1:$((26430 + $1))" \
        --swim-seeds "127.0.0.1:26431,127.0.0.1:26432,127.0.0.1:26433" --cluster-key bench-cluster-key-000000 \
        --bootstrap --log-level warning 2>>"$WORK/raftgate-$1.log" &
    PIDS+=($!)
    disown $!
}
start_etcd() {
    etcd --name "e$1" --data-dir "$WORK/etcd-$1" --listen-client-urls "http://127.0.0.1:$((26450 + $1))" \
        --advertise-client-urls "http://127.0.0.1:$((26450 + $1))" \
        --listen-peer-urls "http://127.0.0.1:$((26460 + $1))" --initial-advertise-peer-urls "http://127.0.0.1:$((26460 + $1))" \
        --initial-cluster "e1=http://127.0.0.1:26461,e2=http://127.0.0.1:26462,e3=http://127.0.0.1:26463" \
        --initial-cluster-state new --initial-cluster-token patroni-dcs --log-level error >>"$WORK/etcd-$1.log" 2>&1 &
    PIDS+=($!)
    disown $!
}
gateway_leader() { local id; for id in 1 2 3; do [ "$(code "http://127.0.0.1:$((26410 + id))/primary")" = 200 ] && return 0; done; return 1; }
etcd_healthy() { curl -s -m 1 "http://127.0.0.1:$((26450 + $1))/health" | grep -q '"health":"true"'; }

start_member() { # DCS ID
    local dcs=$1 id=$2 dir=$WORK/$1-pg$2
    mkdir -p "$dir/log"
    sed -e "s|@NAME@|pg$id|g" -e "s|@API_PORT@|$(rest_port "$dcs" "$id")|g" -e "s|@PG_PORT@|$(pg_port "$dcs" "$id")|g" \
        -e "s|@DIR@|$dir|g" -e "s|@DCS_HOSTS@|$(dcs_hosts "$dcs")|g" -e "s|@ETCD_PASSWORD@|$ETCD_PASSWORD|g" \
        examples/full-stack/patroni.yml.in >"$dir/patroni.yml"
    chmod 700 "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres:postgres "$dir"
        setpriv --reuid=postgres --regid=postgres --init-groups -- env HOME="$dir" PATH="$PG_BIN:$PATH" \
            patroni "$dir/patroni.yml" >>"$WORK/$dcs-patroni$id.log" 2>&1 &
    else
        env HOME="$dir" PATH="$PG_BIN:$PATH" patroni "$dir/patroni.yml" >>"$WORK/$dcs-patroni$id.log" 2>&1 &
    fi
    PATRONI_PID[$dcs$id]=$!
    disown $!
}

primary_of() { local id; for id in 1 2 3; do [ "$(code "http://127.0.0.1:$(rest_port "$1" "$id")/primary")" = 200 ] && { echo "$id"; return 0; }; done; return 1; }
# One primary, two running replicas, one of them the synchronous standby.
ready() {
    local primary id
    primary=$(primary_of "$1") || return 1
    for id in 1 2 3; do [ "$id" = "$primary" ] || [ "$(code "http://127.0.0.1:$(rest_port "$1" "$id")/replica")" = 200 ] || return 1; done
    for id in 1 2 3; do [ "$(code "http://127.0.0.1:$(rest_port "$1" "$id")/sync")" = 200 ] && return 0; done
    return 1
}
promoted_other() { local new; new=$(primary_of "$1") && [ "$new" != "$2" ]; }

for id in 1 2 3; do start_gateway "$id"; start_etcd "$id"; done
wait_for 30 gateway_leader || { echo "no raftgate leader" >&2; exit 1; }
for id in 1 2 3; do wait_for 30 etcd_healthy "$id" || { echo "etcd $id not healthy" >&2; exit 1; }; done
for dcs in rg etcd; do for id in 1 2 3; do start_member "$dcs" "$id"; done; done
for dcs in rg etcd; do
    wait_for 240 ready "$dcs" || { echo "Patroni over $dcs did not come up (logs in $WORK)" >&2; tail -n 20 "$WORK/$dcs-patroni1.log" >&2; exit 1; }
done

declare -A TIMES
for _ in $(seq "$RUNS"); do
    for dcs in rg etcd; do
        old=$(primary_of "$dcs")
        pm=$(postmaster_pid "$dcs" "$old" || true)
        started=$(now_ms)
        kill -9 "${PATRONI_PID[$dcs$old]}"
        [ -n "$pm" ] && kill -9 "$pm"
        wait_for 90 promoted_other "$dcs" "$old" || { echo "no failover over $dcs within 90 s" >&2; exit 1; }
        TIMES[$dcs]="${TIMES[$dcs]:-} $(($(now_ms) - started))"
        start_member "$dcs" "$old"
        wait_for 240 ready "$dcs" || { echo "pg$old did not rejoin over $dcs" >&2; exit 1; }
    done
done
rg_median=$(printf '%s\n' ${TIMES[rg]} | median)
etcd_median=$(printf '%s\n' ${TIMES[etcd]} | median)
ratio=$(awk -v a="$rg_median" -v b="$etcd_median" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}')
echo "| Patroni failover, raftgate vs etcd as its DCS: SIGKILL the primary → another member's /primary, median of $RUNS (ms; ttl 10 s) | | ${rg_median} (runs:${TIMES[rg]}) | | ${etcd_median} (runs:${TIMES[etcd]}) | ${ratio} |"
