#!/usr/bin/env bash
# Lifecycle rows of `make bench` (bench/run.sh runs this after its own rows; it also runs alone):
#   - write outage through HAProxy while the leader restarts gracefully (SIGTERM: drain, hand-over)
#     and while it is SIGKILLed (election after the timeout), measured the same way: one writer
#     PUTs through HAProxy back to back; the outage is the longest time between two acknowledged
#     writes around the event, and every answer that is not 200 is counted (a 503 that carries
#     Retry-After is retried once, after 200 ms, and counts only if the retry fails too);
#   - a learner joining with `serve --join` after the leader compacted its log: time from start
#     to promoted voter (it catches up by snapshot).
# Its own three nodes and HAProxy on ports 26xxx, stopped by pid. Prints Markdown table rows.
# RG (default .build/release/raftgate) picks the binary; LIFECYCLE_RUNS the runs per row.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
RG=${RG:-.build/release/raftgate}
RUNS=${LIFECYCLE_RUNS:-3}
ENTRIES=${LIFECYCLE_ENTRIES:-12000}
TOKEN=bench-lifecycle-admin-token
WORK=$(mktemp -d /tmp/raftgate-lifecycle.XXXXXX)
declare -A PID
ALL=()
cleanup() {
    for pid in "${ALL[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
code() { curl -s -m 2 -o /dev/null -w '%{http_code}' "$@" || true; }
http_ok() { [ "$(code "$@")" = 200 ]; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : "-")}'; }
PEERS="1=127.0.0.1:26101,2=127.0.0.1:26102,3=127.0.0.1:26103"
SEEDS="127.0.0.1:26111,127.0.0.1:26112,127.0.0.1:26113"
start() { # id [extra flags…]
    local id=$1
    shift
    "$RG" serve --id "$id" --data-dir "$WORK/node-$id" --http "127.0.0.1:$((26080 + id))" \
        --health "127.0.0.1:$((26090 + id))" --raft "127.0.0.1:$((26100 + id))" --peers "$PEERS" \
        --swim "127.0.0.1:$((26110 + id))" --swim-seeds "$SEEDS" --cluster-key bench-lifecycle-cluster-key \
        --admin-token "$TOKEN" --log-level warning --bootstrap "$@" 2>>"$WORK/node-$id.log" &
    PID[$id]=$!
    ALL+=($!)
    disown $!
}
leader() {
    for id in 1 2 3; do http_ok "http://127.0.0.1:$((26090 + id))/primary" && { echo "$id"; return; }; done
    echo ""
}
all_ready() {
    for id in 1 2 3; do http_ok "http://127.0.0.1:$((26090 + id))/health/ready" || return 1; done
    [ -n "$(leader)" ]
}
put() { curl -s -m 5 -o /dev/null -w '%{http_code}' -D "$WORK/headers" -X PUT --data y "$1" || true; }

sed -e 's/127.0.0.1:8080/127.0.0.1:26080/; s/127.0.0.1:8404/127.0.0.1:26079/' \
    -e 's/127.0.0.1:808\([1-3]\) check port 1000\([1-3]\)/127.0.0.1:2608\1 check port 2609\2/' \
    examples/three-nodes/haproxy.cfg >"$WORK/haproxy.cfg"
for id in 1 2 3; do start "$id"; done
haproxy -db -f "$WORK/haproxy.cfg" >/dev/null 2>&1 &
ALL+=($!)
disown $!
wait_for 60 all_ready
wait_for 30 http_ok -X PUT --data y http://127.0.0.1:26080/kv/ready

# One writer through HAProxy until $WORK/stop exists; a line per answer: "ms status".
probe() {
    local n=0
    while [ ! -f "$WORK/stop" ]; do
        n=$((n + 1))
        local status
        status=$(put "http://127.0.0.1:26080/kv/outage-$n")
        if [ "$status" = 503 ] && grep -qi '^retry-after' "$WORK/headers"; then
            sleep 0.2
            status=$(put "http://127.0.0.1:26080/kv/outage-$n")
        fi
        echo "$(now_ms) $status"
    done >"$WORK/probe.log"
}
# outage: longest gap between two 200s, and the number of other answers, from probe.log.
outage() { awk '$2 == 200 { if (last && $1 - last > gap) gap = $1 - last; last = $1 } $2 != 200 { bad++ } END { printf "%d %d\n", gap, bad }' "$WORK/probe.log"; }

# Restarts the current leader with signal $1 while the probe writes; "gap failures" to $WORK/result.
# (Runs in this shell, not a subshell: PID and ALL must see the restarted node.)
restart_leader() {
    local id prober
    id=$(leader)
    rm -f "$WORK/stop"
    probe &
    prober=$!
    ALL+=($prober)
    sleep 1
    kill "-$1" "${PID[$id]}"
    wait_for 30 sh -c "! kill -0 ${PID[$id]} 2>/dev/null"
    start "$id"
    wait_for 60 all_ready
    sleep 1
    touch "$WORK/stop"
    wait "$prober" || true
    outage >"$WORK/result"
}

GRACEFUL=()
GRACEFUL_BAD=0
KILLED=()
KILLED_BAD=0
for _ in $(seq "$RUNS"); do
    restart_leader TERM
    read -r gap bad <"$WORK/result"
    GRACEFUL+=("$gap")
    GRACEFUL_BAD=$((GRACEFUL_BAD + bad))
    restart_leader KILL
    read -r gap bad <"$WORK/result"
    KILLED+=("$gap")
    KILLED_BAD=$((KILLED_BAD + bad))
done

# A learner that must catch up by snapshot: enough entries for the leader to compact (every
# 10,000 applied), then a fourth node joins through a follower (redirected to the leader).
LEADER=$(leader)
if command -v wrk >/dev/null; then
    cat >"$WORK/put.lua" <<'LUA'
counter = 0
request = function()
    counter = counter + 1
    return wrk.format("PUT", "/kv/fill-" .. counter, nil, string.rep("x", 64))
end
LUA
    until [ "$(curl -s "http://127.0.0.1:$((26090 + LEADER))/health" | grep -o '"snapshotIndex":[0-9]*' | cut -d: -f2)" -gt 0 ]; do
        wrk -t1 -c16 -d2s -s "$WORK/put.lua" "http://127.0.0.1:$((26080 + LEADER))" >/dev/null
    done
else
    for n in $(seq "$ENTRIES"); do curl -s -o /dev/null -X PUT --data x "http://127.0.0.1:$((26080 + LEADER))/kv/fill-$n"; done
fi
SNAPSHOT=$(curl -s "http://127.0.0.1:$((26090 + LEADER))/health" | grep -o '"snapshotIndex":[0-9]*' | cut -d: -f2)
FOLLOWER=$((LEADER % 3 + 1))
t0=$(now_ms)
start 4 --join "127.0.0.1:$((26080 + FOLLOWER))"
promoted() {
    curl -s -m 2 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$((26080 + LEADER))/members" |
        grep -q '"id":4,[^}]*"role":"voter"'
}
wait_for 120 promoted
CATCH_UP=$(($(now_ms) - t0))
INSTALLED=$(curl -s "http://127.0.0.1:26094/health" | grep -o '"snapshotIndex":[0-9]*' | cut -d: -f2)

echo "| write outage through HAProxy, leader restarted gracefully (SIGTERM), median of $RUNS (ms) | | $(printf '%s\n' "${GRACEFUL[@]}" | median) (runs: ${GRACEFUL[*]}; failed writes: $GRACEFUL_BAD) | | | |"
echo "| write outage through HAProxy, leader SIGKILLed, median of $RUNS (ms) | | $(printf '%s\n' "${KILLED[@]}" | median) (runs: ${KILLED[*]}; failed writes: $KILLED_BAD) | | | |"
echo "| learner joins (--join) → caught up by snapshot and promoted (ms) | | $CATCH_UP (leader snapshot at index $SNAPSHOT; learner installed index $INSTALLED) | | | |"
