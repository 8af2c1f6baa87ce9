#!/usr/bin/env bash
# SIGKILLs one follower of the running example and measures how long until every other node's
# SWIM view (GET /cluster) says it is dead; then restarts it and waits until every node sees it
# alive again. `make detection-demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
# Node $2's view of node $1's SWIM status, from /cluster (keys are sorted, so the record reads
# "id":N,"incarnation":…,…,"status":"…").
swim_status() {
    curl -s -m 2 "http://127.0.0.1:808$2/cluster" | grep -o "\"id\":$1,\"incarnation\":[^}]*" |
        grep -o '"status":"[a-z]*"' | cut -d'"' -f4
}
leader=""
for id in 1 2 3; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:1000$id/primary")" = 200 ] && leader=$id
done
[ -n "$leader" ] || { echo "no leader: is the cluster running? (make start-cluster)" >&2; exit 1; }
victim=$((leader % 3 + 1))
others=""
for id in 1 2 3; do [ "$id" = "$victim" ] || others="$others $id"; done
start=$(date +%s%N)
kill -9 "$(cat run/node$victim.pid)"
deadline=$((SECONDS + 30))
for observer in $others; do
    until [ "$(swim_status "$victim" "$observer")" = dead ]; do
        [ $SECONDS -lt $deadline ] || { echo "node$observer did not mark node$victim dead within 30 s" >&2; exit 1; }
        sleep 0.01
    done
done
end=$(date +%s%N)
echo "node$victim SIGKILLed: every other node marked it dead after $(( (end - start) / 1000000 )) ms"
scripts/cluster.sh start >/dev/null
deadline=$((SECONDS + 30))
for observer in $others; do
    until [ "$(swim_status "$victim" "$observer")" = alive ]; do
        [ $SECONDS -lt $deadline ] || { echo "node$victim not alive again within 30 s" >&2; exit 1; }
        sleep 0.05
    done
done
echo "node$victim restarted: alive again everywhere"
