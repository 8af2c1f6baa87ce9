#!/usr/bin/env bash
# Restarts the three-node example one node at a time, the leader last, without failing a request:
# each node gets SIGTERM (it turns its health checks 503, hands leadership over if it leads, waits
# out HAProxy's check window, finishes what is in flight, exits 0), is started again, and the next
# one waits until it is ready and a leader holds the cluster. Nodes are stopped by the pids
# scripts/cluster.sh recorded under run/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
RUN=run

# The example started with TLS=1 serves its health checks over HTTPS (scripts/cluster.sh).
SCHEME=http
CURL_TLS=()
if [ -f "$RUN/api-tls" ]; then SCHEME=https; CURL_TLS=(--cacert "$RUN/certs/ca.pem"); fi
code() { curl -s ${CURL_TLS[@]+"${CURL_TLS[@]}"} -o /dev/null -m 2 -w '%{http_code}' "$1" || true; }
is_leader() { [ "$(code "$SCHEME://127.0.0.1:1000$1/primary")" = 200 ]; }
is_ready() { [ "$(code "$SCHEME://127.0.0.1:1000$1/health/ready")" = 200 ]; }
some_leader() { local n; for n in 1 2 3; do is_leader "$n" && return 0; done; return 1; }
all_ready() { local n; for n in 1 2 3; do is_ready "$n" || return 1; done; some_leader; }

for id in 1 2 3; do
    [ -f "$RUN/node$id.pid" ] && kill -0 "$(cat "$RUN/node$id.pid")" 2>/dev/null ||
        { echo "node$id is not running: start the example first (make start-cluster)" >&2; exit 1; }
done
wait_for 30 all_ready || { echo "the cluster is not healthy: not restarting anything" >&2; exit 1; }

leader=""
for id in 1 2 3; do is_leader "$id" && leader=$id; done
order=""
for id in 1 2 3; do [ "$id" = "$leader" ] || order="$order $id"; done
order="$order $leader"

for id in $order; do
    pid=$(cat "$RUN/node$id.pid")
    started=$(now_ms)
    echo "node$id: SIGTERM (pid $pid)$([ "$id" = "$leader" ] && echo ', the leader')"
    kill -TERM "$pid"
    # The node exits by itself once drained; its drain deadline (15 s by default) bounds this.
    wait_for 30 sh -c "! kill -0 $pid" || { echo "node$id did not exit" >&2; exit 1; }
    echo "node$id: exited after $(($(now_ms) - started)) ms; starting it again"
    scripts/cluster.sh start-node "$id"
    wait_for 60 all_ready || { echo "the cluster did not become healthy after node$id (logs in $RUN/)" >&2; exit 1; }
    echo "node$id: back and ready after $(($(now_ms) - started)) ms"
done
echo "rolling restart done; leader now: $(for n in 1 2 3; do is_leader "$n" && echo "node$n"; done)"
