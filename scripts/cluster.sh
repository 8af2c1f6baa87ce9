#!/usr/bin/env bash
# The three-node example: start, stop, status. Everything it starts is recorded by pid under
# run/ and stopped by pid — nothing is matched by name.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=run
BIN=${RAFTGATE_BIN:-.build/release/raftgate}  # RAFTGATE_BIN: another build, e.g. .build/debug/raftgate
ECHO=.build/release/raftgate-echo
CERTS=$RUN/certs

# Peer mutual TLS is always on in the example, with a throwaway CA made here. TLS=1 also serves
# HTTPS on every node's API and health ports (HAProxy then checks and forwards over TLS, verifying
# the nodes against that CA); the mode is remembered in $RUN/api-tls while the cluster runs, so
# restarting one node (make failover-demo) keeps it.
if [ "${TLS:-}" = 1 ] || { [ -z "${TLS:-}" ] && [ -f "$RUN/api-tls" ]; }; then API_TLS=1; else API_TLS=0; fi
if [ "$API_TLS" = 1 ]; then
    SCHEME=https
    CURL_TLS=(--cacert "$CERTS/ca.pem")
else
    SCHEME=http
    CURL_TLS=()
fi

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
    local tls=(--peer-tls-cert "$CERTS/node$id.pem" --peer-tls-key "$CERTS/node$id.key" --peer-tls-ca "$CERTS/ca.pem")
    if [ "$API_TLS" = 1 ]; then tls+=(--tls-cert "$CERTS/node$id.pem" --tls-key "$CERTS/node$id.key"); fi
    if [ "${BOOTSTRAP:-0}" = 1 ]; then tls+=(--bootstrap); fi
    "$BIN" serve --config examples/three-nodes/node$id.json --data-dir "$RUN/data/node$id" "${tls[@]}" \
        --public-services echo \
        >>"$RUN/node$id.log" 2>&1 &
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
        [ "$(curl -s "${CURL_TLS[@]}" -o /dev/null -w '%{http_code}' "$SCHEME://127.0.0.1:1000$id/primary")" = 200 ] &&
            return 0
    done
    return 1
}

# The sample workers of service `echo`, one per registration style: echo-1 registers itself over
# HTTP with a lease (through HAProxy, so the write reaches the leader); echo-2 is registered by a
# `raftgate agent` that joins SWIM as a worker.
start_workers() {
    if ! alive "$RUN/echo1.pid"; then
        "$ECHO" --id echo-1 --listen 127.0.0.1:9201 --register http://127.0.0.1:8080 --ttl-ms 5000 \
            --admin-token change-me-example-admin-token >>"$RUN/echo1.log" 2>&1 &
        echo $! >"$RUN/echo1.pid"
    fi
    if ! alive "$RUN/echo2.pid"; then
        "$ECHO" --id echo-2 --listen 127.0.0.1:9202 >>"$RUN/echo2.log" 2>&1 &
        echo $! >"$RUN/echo2.pid"
    fi
    if ! alive "$RUN/agent2.pid"; then
        "$BIN" agent --service echo --address 127.0.0.1:9202 --swim 127.0.0.1:7201 --id 201 \
            --seeds 127.0.0.1:7071,127.0.0.1:7072,127.0.0.1:7073 --cluster-key change-me-example-cluster-key \
            >>"$RUN/agent2.log" 2>&1 &
        echo $! >"$RUN/agent2.pid"
    fi
}

two_workers_registered() {
    [ "$(curl -s http://127.0.0.1:8080/workers/echo | grep -o '"eligible":true' | wc -l)" -ge 2 ]
}

write_through_haproxy() {
    [ "$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data ready http://127.0.0.1:8080/kv/_cluster_started)" = 200 ]
}

case "${1:-}" in
start)
    if [ ! -d "$RUN/data" ]; then BOOTSTRAP=1; fi
    mkdir -p "$RUN/data"
    # A throwaway CA and one certificate per node, made once per run/ directory and again when
    # they are about to expire (they last 30 days).
    if [ ! -f "$CERTS/node3.pem" ] || ! openssl x509 -checkend 3600 -noout -in "$CERTS/node3.pem" >/dev/null 2>&1; then
        rm -rf "$CERTS"
        scripts/make-certs.sh "$CERTS" node1 node2 node3
    fi
    if [ "$API_TLS" = 1 ]; then touch "$RUN/api-tls"; fi
    for id in 1 2 3; do start_node "$id"; done
    if ! alive "$RUN/haproxy.pid"; then
        config=examples/three-nodes/haproxy.cfg
        [ "$API_TLS" = 1 ] && config=examples/three-nodes/haproxy-tls.cfg
        haproxy -f "$config" -D -p "$RUN/haproxy.pid"
    fi
    wait_for "a leader" 30 leader_elected
    wait_for "HAProxy to route a write to the leader" 30 write_through_haproxy
    start_workers
    wait_for "both echo workers in the registry" 30 two_workers_registered
    cat <<TXT
raftgate three-node example is up.
  API through HAProxy   http://127.0.0.1:8080   (writes → leader, reads → round-robin)
  nodes (API)           $SCHEME://127.0.0.1:8081  :8082  :8083
  health-only           $SCHEME://127.0.0.1:10001 :10002 :10003  (/primary /replica /health)
  peer port             mutual TLS, certificates of the CA in $CERTS/ (ca.pem)
  HAProxy stats         http://127.0.0.1:8404
  workers (service echo) echo-1 :9201 (HTTP lease), echo-2 :9202 (raftgate agent, SWIM :7201)
  pids and logs         $RUN/
Try:
  curl -X POST http://127.0.0.1:8080/kv -d '{"key":"hello","value":"world"}'
  curl http://127.0.0.1:8080/kv/hello
  curl http://127.0.0.1:8081/w/echo/hello; curl http://127.0.0.1:8081/w/echo/hello   # two workers answer
  curl http://127.0.0.1:8080/workers
TXT
    ;;
stop)
    for name in agent2 echo2 echo1 haproxy node1 node2 node3; do
        if alive "$RUN/$name.pid"; then
            pid=$(cat "$RUN/$name.pid")
            kill "$pid"
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        fi
        rm -f "$RUN/$name.pid"
    done
    rm -f "$RUN/api-tls"
    echo "stopped"
    ;;
status)
    # `raftgate status` speaks plain HTTP only.
    [ "$API_TLS" = 1 ] || "$BIN" status --endpoints 127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083 || true
    echo
    for id in 1 2 3; do
        printf 'node%s  /primary %s  /replica %s\n' "$id" \
            "$(curl -s "${CURL_TLS[@]}" -o /dev/null -w '%{http_code}' "$SCHEME://127.0.0.1:1000$id/primary")" \
            "$(curl -s "${CURL_TLS[@]}" -o /dev/null -w '%{http_code}' "$SCHEME://127.0.0.1:1000$id/replica")"
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
