#!/usr/bin/env bash
# SIGKILLs one follower of the running example and measures how long until every other node's
# SWIM view (GET /cluster) says it is dead; then restarts it and waits until every node sees it
# alive again. `make detection-demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
leader=""
for id in 1 2 3; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:1000$id/primary")" = 200 ] && leader=$id
done
[ -n "$leader" ] || { echo "no leader: is the cluster running? (make start-cluster)" >&2; exit 1; }
victim=$((leader % 3 + 1))
others=""
for id in 1 2 3; do [ "$id" = "$victim" ] || others="$others $id"; done
start=$(now_ms)
kill -9 "$(cat run/node$victim.pid)"
for observer in $others; do
    wait_for 30 swim_is "$victim" "808$observer" dead ||
        { echo "node$observer did not mark node$victim dead within 30 s" >&2; exit 1; }
done
echo "node$victim SIGKILLed: every other node marked it dead after $(($(now_ms) - start)) ms"
scripts/cluster.sh start >/dev/null
for observer in $others; do
    wait_for 30 swim_is "$victim" "808$observer" alive || { echo "node$victim not alive again within 30 s" >&2; exit 1; }
done
echo "node$victim restarted: alive again everywhere"
