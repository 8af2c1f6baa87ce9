#!/usr/bin/env bash
# `make bench`'s range-read rows (bench/run.sh runs this; it also runs alone after a release build):
# what large range reads cost the writes of the node serving them. Three raftgate nodes on
# 127.0.0.1 (ports 27xxx), stopped by pid; RANGE_KEYS keys of 64 bytes under range/, then, direct
# to the leader, with wrk:
#   - writes alone (PUT /kv/bench/<n>, WRITERS connections): req/s, p50 / p99;
#   - the same writes while RANGE_READERS connections read all RANGE_KEYS keys back to back
#     (GET /kv?prefix=range/&limit=RANGE_KEYS, linearizable): write p50 / p99, range reads/s;
#   - range reads alone: reads/s, p50 / p99.
# RG picks the binary (compare two builds by running it twice); LABEL names it in the rows.
# Prints Markdown table rows — row | requests/s | p50 / p99 ms — and writes them to $1 when given.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
RG=${RG:-.build/release/raftgate}
LABEL=${LABEL:-this build}
OUT=${1:-}
DURATION=${BENCH_SECONDS:-5}
KEYS=${RANGE_KEYS:-10000}
WRITERS=${WRITERS:-4}
READERS=${RANGE_READERS:-2}
WORK=$(mktemp -d /tmp/raftgate-bench-ranges.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
code() { curl -s -m 2 -o /dev/null -w '%{http_code}' "$@" || true; }
http_ok() { [ "$(code "$@")" = 200 ]; }
to_ms() { echo "$1" | awk '/us$/ {printf "%.2f", $1 / 1000; next} /ms$/ {printf "%.2f", $1 + 0; next} /s$/ {printf "%.0f", $1 * 1000}'; }
PEERS="1=127.0.0.1:27101,2=127.0.0.1:27102,3=127.0.0.1:27103"
SEEDS="127.0.0.1:27111,127.0.0.1:27112,127.0.0.1:27113"
for id in 1 2 3; do
    "$RG" serve --id "$id" --data-dir "$WORK/node-$id" --http "127.0.0.1:$((27080 + id))" \
        --health "127.0.0.1:$((27090 + id))" --raft "127.0.0.1:$((27100 + id))" --peers "$PEERS" \
        --swim "127.0.0.1:$((27110 + id))" --swim-seeds "$SEEDS" --cluster-key bench-ranges-cluster-key \
        --log-level warning --bootstrap 2>>"$WORK/node-$id.log" &
    PIDS+=($!)
    disown $!
done
for id in 1 2 3; do wait_for 30 http_ok "http://127.0.0.1:$((27090 + id))/health/ready"; done
LEADER=""
wait_for 30 bash -c "for id in 1 2 3; do [ \"\$(curl -s -m 1 -o /dev/null -w '%{http_code}' http://127.0.0.1:\$((27090 + id))/primary)\" = 200 ] && exit 0; done; exit 1"
for id in 1 2 3; do http_ok "http://127.0.0.1:$((27090 + id))/primary" && LEADER=$id; done
URL="http://127.0.0.1:$((27080 + LEADER))"

# The keys: one curl, 32 requests at a time, URL globbing for the names.
printf '%064d' 0 >"$WORK/value"
last=$(printf '%05d' $((KEYS - 1)))
curl -s --no-progress-meter --parallel --parallel-max 32 -X PUT --data-binary "@$WORK/value" \
    "$URL/kv/range/[00000-$last]" >/dev/null 2>>"$WORK/fill.log"
listed=$(curl -s "$URL/kv?prefix=range/&limit=$KEYS" | grep -o '"key":"range/' | wc -l)
[ "$listed" = "$KEYS" ] || { echo "ranges.sh: filled $listed of $KEYS keys" >&2; exit 1; }

# wrk SCRIPT CONNECTIONS [ENV=VALUE…] → "requests/s p50_ms p99_ms non2xx"
wrk_run() {
    local script=$1 connections=$2
    shift 2
    local output
    output=$(env "$@" wrk -t1 -c"$connections" -d"${DURATION}s" --latency -s "bench/lua/$script" "$URL")
    echo "$output" | awk '/Requests\/sec/ {rps = int($2)} $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2}
        /Non-2xx/ {errors = $5} END {print rps, p50, p99, errors + 0}' |
        while read -r rps p50 p99 errors; do echo "$rps $(to_ms "$p50") $(to_ms "$p99") $errors"; done
}
field() { echo "$1" | awk -v n="$2" '{print $n}'; }

WRITES_ALONE=$(wrk_run raftgate-write.lua "$WRITERS")
# Readers start first and run past the writers' window, so every write is measured under them.
DURATION=$((DURATION + 2)) wrk_run raftgate-range.lua "$READERS" LIMIT="$KEYS" >"$WORK/readers" &
READERS_PID=$!
sleep 1
WRITES_UNDER=$(wrk_run raftgate-write.lua "$WRITERS")
wait "$READERS_PID"
RANGES_UNDER=$(cat "$WORK/readers")
RANGES_ALONE=$(wrk_run raftgate-range.lua "$READERS" LIMIT="$KEYS")
errors=$(( $(field "$WRITES_ALONE" 4) + $(field "$WRITES_UNDER" 4) + $(field "$RANGES_UNDER" 4) + $(field "$RANGES_ALONE" 4) ))

{
    echo "| writes alone, $WRITERS conns ($LABEL) | $(field "$WRITES_ALONE" 1) | $(field "$WRITES_ALONE" 2) / $(field "$WRITES_ALONE" 3) |"
    echo "| writes, $WRITERS conns, while $READERS conns read all $KEYS keys back to back ($LABEL) | $(field "$WRITES_UNDER" 1) | $(field "$WRITES_UNDER" 2) / $(field "$WRITES_UNDER" 3) |"
    echo "| $KEYS-key range reads, $READERS conns, during those writes ($LABEL) | $(field "$RANGES_UNDER" 1) | $(field "$RANGES_UNDER" 2) / $(field "$RANGES_UNDER" 3) |"
    echo "| $KEYS-key range reads alone, $READERS conns ($LABEL) | $(field "$RANGES_ALONE" 1) | $(field "$RANGES_ALONE" 2) / $(field "$RANGES_ALONE" 3) |"
    [ "$errors" = 0 ] || echo "| non-2xx answers in these cells ($LABEL) | $errors | |"
} >"$WORK/rows.md"
[ -n "$OUT" ] && cp "$WORK/rows.md" "$OUT"
cat "$WORK/rows.md"
