#!/usr/bin/env bash
# Kills the leader of the running example with SIGKILL and measures the time until a write
# through HAProxy (:8080) succeeds again; then restarts the killed node. `make failover-demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
leader=""
for id in 1 2 3; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:1000$id/primary")" = 200 ] && leader=$id
done
[ -n "$leader" ] || { echo "no leader: is the cluster running? (make start-cluster)" >&2; exit 1; }
echo "leader is node$leader; writing through HAProxy, then SIGKILL node$leader"
curl -s -X PUT --data before "http://127.0.0.1:8080/kv/failover" >/dev/null
start=$(date +%s%N)
kill -9 "$(cat run/node$leader.pid)"
deadline=$((SECONDS + 30))
until [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X PUT --data after http://127.0.0.1:8080/kv/failover)" = 200 ]; do
    [ $SECONDS -lt $deadline ] || { echo "no write succeeded within 30 s" >&2; exit 1; }
    sleep 0.01
done
end=$(date +%s%N)
echo "first successful write through :8080 after $(( (end - start) / 1000000 )) ms"
for id in 1 2 3; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:1000$id/primary")" = 200 ] && echo "new leader: node$id"
done
echo "read back: $(curl -s http://127.0.0.1:8080/kv/failover)"
scripts/cluster.sh start >/dev/null
echo "node$leader restarted and rejoined"
