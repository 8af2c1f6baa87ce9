#!/usr/bin/env bash
# The three-node example: start, stop, status. Everything it starts is recorded by pid under
# run/ and stopped by pid — nothing is matched by name.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=run
BIN=${RAFTGATE_BIN:-.build/release/raftgate}  # RAFTGATE_BIN: another build, e.g. .build/debug/raftgate

# A pid is alive if it exists and is not a zombie (a killed node whose parent has not reaped it).
alive() {
    [ -f "$1" ] || return 1
    local state
    state=$(ps -o stat= -p "$(cat "$1")" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}

start_node() {
    local id=$1
    if alive "$RUN/node$id.pid"; then return; fi
    # Each node's ports and peers come from its config file; the data directory from a flag,
    # which overrides the file (flags > RAFTGATE_* environment > file).
    # --bootstrap only on the cluster's first start (no run/data yet): a node whose data directory
    # was lost since must not come back as a voter with an empty log (raftgate refuses; see README).
    local bootstrap=()
    if [ "${BOOTSTRAP:-0}" = 1 ]; then bootstrap=(--bootstrap); fi
    "$BIN" serve --config examples/three-nodes/node$id.json --data-dir "$RUN/data/node$id" \
        ${bootstrap[@]+"${bootstrap[@]}"} >>"$RUN/node$id.log" 2>&1 &
    echo $! >"$RUN/node$id.pid"
}

wait_for() { # description, deadline in seconds, command...
    local what=$1 seconds=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            echo "timed out waiting for $what (logs in $RUN/)" >&2
            return 1
        fi
        sleep 0.1
    done
}

leader_elected() {
    for id in 1 2 3; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:1000$id/primary")" = 200 ] && return 0
    done
    return 1
}

write_through_haproxy() {
    [ "$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data ready http://127.0.0.1:8080/kv/_cluster_started)" = 200 ]
}

case "${1:-}" in
start)
    if [ ! -d "$RUN/data" ]; then BOOTSTRAP=1; fi
    mkdir -p "$RUN/data"
    for id in 1 2 3; do start_node "$id"; done
    if ! alive "$RUN/haproxy.pid"; then
        haproxy -f examples/three-nodes/haproxy.cfg -D -p "$RUN/haproxy.pid"
    fi
    wait_for "a leader" 30 leader_elected
    wait_for "HAProxy to route a write to the leader" 30 write_through_haproxy
    cat <<TXT
raftgate three-node example is up.
  API through HAProxy   http://127.0.0.1:8080   (writes → leader, reads → round-robin)
  nodes (API)           http://127.0.0.1:8081  :8082  :8083
  health-only           http://127.0.0.1:10001 :10002 :10003  (/primary /replica /health)
  HAProxy stats         http://127.0.0.1:8404
  pids and logs         $RUN/
Try:
  curl -X POST http://127.0.0.1:8080/kv -d '{"key":"hello","value":"world"}'
  curl http://127.0.0.1:8080/kv/hello
TXT
    ;;
stop)
    for name in haproxy node1 node2 node3; do
        if alive "$RUN/$name.pid"; then
            pid=$(cat "$RUN/$name.pid")
            kill "$pid"
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        fi
        rm -f "$RUN/$name.pid"
    done
    echo "stopped"
    ;;
status)
    "$BIN" status --endpoints 127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083 || true
    echo
    for id in 1 2 3; do
        printf 'node%s  /primary %s  /replica %s\n' "$id" \
            "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:1000$id/primary")" \
            "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:1000$id/replica")"
    done
    ;;
start-node)
    # One node of the example (scripts/rolling-restart.sh restarts them one at a time).
    mkdir -p "$RUN/data"
    start_node "${2:?usage: $0 start-node ID}"
    ;;
*)
    echo "usage: $0 start|stop|status|start-node ID" >&2
    exit 2
    ;;
esac
