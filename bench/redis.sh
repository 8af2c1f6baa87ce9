#!/usr/bin/env bash
# `make bench`'s Redis rows (also runnable alone: bench/redis.sh after a release build of raftgate).
# Three Redis 7 (one master, two replicas), three Sentinels (quorum 2, down-after 1000 ms) and
# three raftgate nodes asking them, all on 127.0.0.1 (ports 17xxx), stopped by pid. Prints a
# Markdown table (and writes it to $1 when given):
# - cache PUT/GET req/s through a gateway (wrk, 16 connections) vs redis-benchmark SET/GET direct;
# - RUNS × SIGKILL of the master under cache writes through all three gateways (one curl at a
#   time each): time from the first +switch-master a Sentinel publishes to the first successful
#   write through a gateway (the first gateway, and the last of the three), and the write outage.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${BENCH_SECONDS:-5}
RUNS=${BENCH_REDIS_FAILOVERS:-3}
OUT=${1:-}
RG=${RAFTGATE_BIN:-.build/release/raftgate}
KEY=bench-cluster-key-000000
TOKEN=bench-admin-token-000000
TENANT_KEY=bench-tenant-key-0000
WORK=$(mktemp -d /tmp/raftgate-bench-redis.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
. scripts/lib.sh
code() { curl -s -m 2 -o /dev/null -w '%{http_code}' "$@" || true; }
http_ok() { [ "$(code "$@")" = 200 ]; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : "-")}'; }
spawn() { # LOG COMMAND… ; the pid in $LAST
    local log=$1
    shift
    "$@" >>"$WORK/$log.log" 2>&1 &
    LAST=$!
    PIDS+=($LAST)
    disown $LAST
}
redis_port() { echo $((17300 + $1)); }
sentinel_port() { echo $((17310 + $1)); }
http_port() { echo $((17080 + $1)); }
for port in 17081 17082 17083 17091 17092 17093 17101 17102 17103 17301 17302 17303 17311 17312 17313; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "port $port is in use; stop what holds it" >&2; exit 1; fi
done

declare -A REDIS_PID
start_redis() { # INDEX [MASTER_INDEX]
    mkdir -p "$WORK/redis$1"
    local replica=()
    [ -n "${2:-}" ] && replica=(--replicaof 127.0.0.1 "$(redis_port "$2")")
    spawn "redis$1" redis-server --port "$(redis_port "$1")" --bind 127.0.0.1 --dir "$WORK/redis$1" --save "" \
        --appendonly no --protected-mode no --min-replicas-to-write 1 --min-replicas-max-lag 10 ${replica[@]+"${replica[@]}"}
    REDIS_PID[$1]=$LAST
}
start_redis 1
start_redis 2 1
start_redis 3 1
for i in 1 2 3; do
    mkdir -p "$WORK/sentinel$i"
    cat >"$WORK/sentinel$i/sentinel.conf" <<CONF
port $(sentinel_port "$i")
bind 127.0.0.1
protected-mode no
dir $WORK/sentinel$i
sentinel monitor mymaster 127.0.0.1 $(redis_port 1) 2
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 10000
sentinel parallel-syncs mymaster 2
CONF
    spawn "sentinel$i" redis-sentinel "$WORK/sentinel$i/sentinel.conf"
done
SENTINELS="127.0.0.1:17311,127.0.0.1:17312,127.0.0.1:17313"
sentinel_sees_all() { # INDEX: two healthy replicas and two other Sentinels
    local info
    info=$(redis-cli -p "$(sentinel_port "$1")" sentinel master mymaster | paste -sd' ')
    grep -q 'num-slaves 2' <<<"$info" && grep -q 'num-other-sentinels 2' <<<"$info" &&
        [ "$(redis-cli -p "$(sentinel_port "$1")" sentinel replicas mymaster | grep -cE 's_down|o_down|disconnected')" = 0 ]
}
ready() { for i in 1 2 3; do sentinel_sees_all "$i" || return 1; done; }
wait_for 60 ready || { echo "Sentinels not ready" >&2; exit 1; }

for id in 1 2 3; do
    spawn "node$id" "$RG" serve --bootstrap --id "$id" --data-dir "$WORK/node$id" --http "127.0.0.1:$(http_port $id)" \
        --health "127.0.0.1:$((17090 + id))" --raft "127.0.0.1:$((17100 + id))" \
        --peers "1=127.0.0.1:17101,2=127.0.0.1:17102,3=127.0.0.1:17103" --swim "127.0.0.1:$((17110 + id))" \
        --swim-seeds "127.0.0.1:17111,127.0.0.1:17112,127.0.0.1:17113" --cluster-key "$KEY" --admin-token "$TOKEN" \
        --redis-sentinels "$SENTINELS" --log-level warning
done
for id in 1 2 3; do wait_for 30 http_ok "http://127.0.0.1:$((17090 + id))/health/ready"; done
leader() { for id in 1 2 3; do http_ok "http://127.0.0.1:$((17090 + id))/primary" && { echo "$id"; return; }; done; }
DIGEST=$(printf '%s' "$TENANT_KEY" | sha256sum | cut -d' ' -f1)
curl -s -m 5 -o /dev/null -X PUT "http://127.0.0.1:$(http_port "$(leader)")/config/bench" -H "Authorization: Bearer $TOKEN" \
    -d "{\"apiKeys\":[\"sha256:$DIGEST\"],\"rateLimit\":{\"perSecond\":1000000,\"burst\":10000000}}"
put() { # GATEWAY KEY → status
    curl -s -m 2 -o /dev/null -w '%{http_code}' -X PUT --data v -H 'X-Tenant: bench' -H "X-API-Key: $TENANT_KEY" \
        "http://127.0.0.1:$(http_port "$1")/cache/$2" || true
}
cache_ok() { for id in 1 2 3; do [ "$(put "$id" ready)" = 200 ] || return 1; done; }
wait_for 30 cache_ok || { echo "the cache API does not answer" >&2; exit 1; }
master_index() {
    local port
    port=$(redis-cli -p 17311 sentinel get-master-addr-by-name mymaster | tail -n 1)
    echo $((port - 17300))
}

# --- throughput: through a gateway vs redis-benchmark direct ------------------------------------
wrk_cell() { # MODE → "req/s p50 p99"
    local output
    output=$(MODE=$1 KEY=$TENANT_KEY wrk -t 2 -c 16 -d "${DURATION}s" --latency -s bench/lua/raftgate-cache.lua \
        "http://127.0.0.1:$(http_port 1)")
    echo "$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$output") $(awk '$1 == "50%" {print $2}' <<<"$output") $(awk '$1 == "99%" {print $2}' <<<"$output")"
}
MASTER=$(master_index)
read -r -a GW_PUT <<<"$(wrk_cell put)"
read -r -a GW_GET <<<"$(wrk_cell get)"
DIRECT=$(redis-benchmark -p "$(redis_port "$MASTER")" -t set,get -n 200000 -c 16 -d 64 -q 2>/dev/null | tr '\r' '\n')
DIRECT_SET=$(awk '/^SET:/ && /requests per second/ {printf "%d", $2}' <<<"$DIRECT")
DIRECT_GET=$(awk '/^GET:/ && /requests per second/ {printf "%d", $2}' <<<"$DIRECT")

# --- failover --------------------------------------------------------------------------------
writer() { # GATEWAY FILE: "<started ms> <answered ms> <status>" per write until $WORK/stop
    local i=0 started status
    while [ ! -f "$WORK/stop" ]; do
        i=$((i + 1))
        started=$(now_ms)
        status=$(put "$1" "fo-$1-$i")
        echo "$started $(now_ms) $status" >>"$2"
    done
}
subscriber() { # SENTINEL_INDEX FILE: "<ms> <line>" per line the subscription delivers
    exec 5<>"/dev/tcp/127.0.0.1/$(sentinel_port "$1")"
    printf 'SUBSCRIBE +switch-master\r\n' >&5
    while IFS= read -r line <&5; do echo "$(now_ms) ${line%$'\r'}" >>"$2"; done
}
SWITCH_FIRST=() SWITCH_ALL=() OUTAGES=() FAILED=()
for run in $(seq "$RUNS"); do
    rm -f "$WORK/stop"
    MASTER=$(master_index)
    writers=() subs=()
    for i in 1 2 3; do
        subscriber "$i" "$WORK/sub-$run-$i.txt" &
        subs+=($!)
    done
    for id in 1 2 3; do
        : >"$WORK/w-$run-$id.txt"
        writer "$id" "$WORK/w-$run-$id.txt" &
        writers+=($!)
    done
    sleep 1
    killed=$(now_ms)
    kill -9 "${REDIS_PID[$MASTER]}"
    switched() { cat "$WORK"/sub-"$run"-*.txt 2>/dev/null | grep -q ' mymaster '; }
    wait_for 60 switched || { echo "no +switch-master within 60 s" >&2; exit 1; }
    written_after() { # every gateway wrote after the switch
        local t
        t=$(cat "$WORK"/sub-"$run"-*.txt | awk '/ mymaster / {print $1}' | sort -n | head -n 1)
        for id in 1 2 3; do
            awk -v t="$t" '$3 == 200 && $2 > t {found=1} END {exit !found}' "$WORK/w-$run-$id.txt" || return 1
        done
    }
    wait_for 60 written_after || echo "not every gateway wrote within 60 s of the switch" >&2
    touch "$WORK/stop"
    for pid in "${writers[@]}"; do wait "$pid" || true; done
    for pid in "${subs[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    switch_at=$(cat "$WORK"/sub-"$run"-*.txt | awk '/ mymaster / {print $1}' | sort -n | head -n 1)
    firsts=()
    for id in 1 2 3; do
        firsts+=("$(awk -v t="$switch_at" '$3 == 200 && $2 > t {print $2 - t; exit}' "$WORK/w-$run-$id.txt")")
    done
    SWITCH_FIRST+=("$(printf '%s\n' "${firsts[@]}" | sort -n | head -n 1)")
    SWITCH_ALL+=("$(printf '%s\n' "${firsts[@]}" | sort -n | tail -n 1)")
    OUTAGES+=("$(cat "$WORK"/w-"$run"-*.txt | awk -v k="$killed" '$3 == 200 {print $2}' | sort -n |
        awk -v k="$killed" '{if (last && $1 > k && $1 - last > gap) gap = $1 - last; last = $1} END {printf "%.0f", gap}')")
    FAILED+=("$(cat "$WORK"/w-"$run"-*.txt | awk '$3 != 200' | wc -l)")
    # The killed master comes back; the Sentinels make it a replica before the next run.
    start_redis "$MASTER"
    wait_for 60 ready || { echo "the old master did not rejoin as a replica" >&2; exit 1; }
done

TABLE=$(
    echo "Redis 7 under Sentinel (three Redis, three Sentinels, quorum 2, down-after-milliseconds 1000; bench/redis.sh):"
    echo
    echo "| row | raftgate | anchor |"
    echo "|---|---:|---:|"
    echo "| cache PUT req/s, 16 conns (p50 / p99) | ${GW_PUT[0]} (${GW_PUT[1]} / ${GW_PUT[2]}) through gateway 1 | ${DIRECT_SET} redis-benchmark SET direct, 16 conns |"
    echo "| cache GET req/s, 16 conns (p50 / p99) | ${GW_GET[0]} (${GW_GET[1]} / ${GW_GET[2]}) through gateway 1 | ${DIRECT_GET} redis-benchmark GET direct, 16 conns |"
    echo "| first +switch-master → first successful write, first gateway, median of $RUNS (ms) | $(printf '%s\n' "${SWITCH_FIRST[@]}" | median) (runs: ${SWITCH_FIRST[*]}) | goal ≤ 1000 |"
    echo "| first +switch-master → every gateway has written, median of $RUNS (ms) | $(printf '%s\n' "${SWITCH_ALL[@]}" | median) (runs: ${SWITCH_ALL[*]}) | |"
    echo "| write outage after SIGKILL of the master, longest gap, median of $RUNS (ms) | $(printf '%s\n' "${OUTAGES[@]}" | median) (runs: ${OUTAGES[*]}) | down-after 1000 + Sentinel election |"
    echo "| failed cache writes per run (3 gateways, one curl at a time each) | ${FAILED[*]} | |"
)
echo "$TABLE"
if [ -n "$OUT" ]; then echo "$TABLE" >"$OUT"; fi
