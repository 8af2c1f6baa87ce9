#!/usr/bin/env bash
# `make bench`'s worker-proxy rows (also runnable alone: bench/workers.sh after a release build of
# raftgate and raftgate-echo). Three raftgate nodes and echo workers on 127.0.0.1 (ports 19xxx),
# stopped by pid. Prints a Markdown table (and writes it to $1 when given):
# - proxy overhead: wrk GET through node 1's /w/echo/… vs the same echo worker directly, 1/16/64 connections;
# - registration → first proxied answer on every node, over HTTP (PUT /workers) and through SWIM (raftgate agent);
# - failed requests while a worker is SIGKILLed under load (wrk, 16 connections, 2 workers).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${BENCH_SECONDS:-5}
CONNECTIONS=${BENCH_CONNECTIONS:-"1 16 64"}
OUT=${1:-}
RG=${RAFTGATE_BIN:-.build/release/raftgate}
ECHO=${RAFTGATE_ECHO_BIN:-.build/release/raftgate-echo}
KEY=bench-cluster-key-000000
TOKEN=bench-admin-token-000000
WORK=$(mktemp -d /tmp/raftgate-bench-workers.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
. scripts/lib.sh
code() { curl -s -m 2 -o /dev/null -w '%{http_code}' "$@" || true; }
http_ok() { [ "$(code "$@")" = 200 ]; }
to_ms() { echo "$1" | awk '/us$/ {printf "%.2f", $1 / 1000; next} /ms$/ {printf "%.2f", $1 + 0; next} /s$/ {printf "%.0f", $1 * 1000}'; }
spawn() { # LOG COMMAND… ; the pid in $LAST
    local log=$1
    shift
    "$@" >>"$WORK/$log.log" 2>&1 &
    LAST=$!
    PIDS+=($LAST)
    disown $LAST
}

http_port() { echo $((19080 + $1)); }
# Another run's processes on these ports would answer in place of ours.
for port in 19081 19082 19083 19091 19092 19093 19101 19102 19103 19201 19202 19203 19204; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "port $port is in use; stop what holds it" >&2; exit 1; fi
done
SWIM_SEEDS="127.0.0.1:19111,127.0.0.1:19112,127.0.0.1:19113"
for id in 1 2 3; do
    spawn "node$id" "$RG" serve --bootstrap --id "$id" --data-dir "$WORK/node$id" --http "127.0.0.1:$(http_port $id)" \
        --health "127.0.0.1:$((19090 + id))" --raft "127.0.0.1:$((19100 + id))" \
        --peers "1=127.0.0.1:19101,2=127.0.0.1:19102,3=127.0.0.1:19103" --swim "127.0.0.1:$((19110 + id))" \
        --swim-seeds "$SWIM_SEEDS" --cluster-key "$KEY" --admin-token "$TOKEN" --public-services echo,viahttp,viaswim \
        --log-level warning
done
for id in 1 2 3; do wait_for 30 http_ok "http://127.0.0.1:$((19090 + id))/health/ready"; done
leader() { for id in 1 2 3; do http_ok "http://127.0.0.1:$((19090 + id))/primary" && { echo "$id"; return; }; done; }
LEADER_URL="http://127.0.0.1:$(http_port "$(leader)")"
register() { # SERVICE ID PORT
    curl -s -m 5 -o "$WORK/register-$2.json" -w '%{http_code}' -X PUT "$LEADER_URL/workers/$1/$2" -H "Authorization: Bearer $TOKEN" \
        -d "{\"address\":\"127.0.0.1:$3\",\"ttl_ms\":600000}"
}

# --- proxy overhead --------------------------------------------------------------------------
spawn echo1 "$ECHO" --id e1 --listen 127.0.0.1:19201
wait_for 10 http_ok http://127.0.0.1:19201/health
[ "$(register echo e1 19201)" = 200 ] || { cat "$WORK/register-e1.json" >&2; exit 1; }
wait_for 10 http_ok "http://127.0.0.1:$(http_port 1)/w/echo/hello"
wrk_cell() { # URL CONNECTIONS → "req/s p50 p99 non2xx+errors"
    local threads=$(($2 < 2 ? 1 : 2)) output
    output=$(wrk -t"$threads" -c"$2" -d"${DURATION}s" --latency "$1")
    echo "$(echo "$output" | awk '/Requests\/sec/ {printf "%d", $2}') \
$(to_ms "$(echo "$output" | awk '$1 == "50%" {print $2}')") $(to_ms "$(echo "$output" | awk '$1 == "99%" {print $2}')") \
$(echo "$output" | awk '/Non-2xx/ {n += $5} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}')"
}
declare -A CELL
for c in $CONNECTIONS; do
    echo "bench workers: $c connection(s)" >&2
    CELL[proxy,$c]=$(wrk_cell "http://127.0.0.1:$(http_port 1)/w/echo/hello" "$c")
    CELL[direct,$c]=$(wrk_cell "http://127.0.0.1:19201/hello" "$c")
done

# --- registration → first proxied answer on every node ---------------------------------------
first_answer_everywhere() { # SERVICE WORKER → waits until all three nodes answer from it
    for id in 1 2 3; do
        wait_for 30 sh -c "curl -s -m 1 http://127.0.0.1:$(http_port $id)/w/$1/x | grep -q '\"worker\":\"$2\"'"
    done
}
spawn echo2 "$ECHO" --id e2 --listen 127.0.0.1:19202
spawn echo3 "$ECHO" --id e3 --listen 127.0.0.1:19203
wait_for 10 http_ok http://127.0.0.1:19202/health
wait_for 10 http_ok http://127.0.0.1:19203/health
t0=$(now_ms)
[ "$(register viahttp e2 19202)" = 200 ]
first_answer_everywhere viahttp e2
HTTP_FIRST=$(($(now_ms) - t0))
t0=$(now_ms)
spawn agent3 "$RG" agent --service viaswim --address 127.0.0.1:19203 --swim 127.0.0.1:19213 --id 3003 \
    --seeds "$SWIM_SEEDS" --cluster-key "$KEY"
first_answer_everywhere viaswim e3
SWIM_FIRST=$(($(now_ms) - t0))

# --- SIGKILL a worker under load ---------------------------------------------------------------
spawn echo4 "$ECHO" --id e4 --listen 127.0.0.1:19204
VICTIM=$LAST
wait_for 10 http_ok http://127.0.0.1:19204/health
[ "$(register echo e4 19204)" = 200 ]
wait_for 10 sh -c "curl -s http://127.0.0.1:$(http_port 1)/workers/echo | grep -o '\"eligible\":true' | wc -l | grep -q 2"
(sleep "$(awk -v d="$DURATION" 'BEGIN {print d / 2}')" && kill -9 "$VICTIM" 2>/dev/null) &
KILL_OUTPUT=$(wrk -t2 -c16 -d"${DURATION}s" "http://127.0.0.1:$(http_port 1)/w/echo/load")
KILL_TOTAL=$(echo "$KILL_OUTPUT" | awk '/requests in/ {print $1}')
KILL_FAILED=$(echo "$KILL_OUTPUT" | awk '/Non-2xx/ {n += $5} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}')

field() { echo "${CELL[$1]}" | awk -v n="$2" '{print $n}'; }
{
    echo "| worker proxy row | conns | through /w/echo (node 1) | echo worker directly | proxied ÷ direct |"
    echo "|---|---:|---:|---:|---:|"
    for c in $CONNECTIONS; do
        echo "| GET req/s | $c | $(field "proxy,$c" 1) | $(field "direct,$c" 1) | $(awk -v a="$(field "proxy,$c" 1)" -v b="$(field "direct,$c" 1)" 'BEGIN {printf "%.2f×", a / b}') |"
        echo "| GET p50 / p99 ms | $c | $(field "proxy,$c" 2) / $(field "proxy,$c" 3) | $(field "direct,$c" 2) / $(field "direct,$c" 3) | |"
    done
    echo "| registration → first proxied answer on all 3 nodes (ms), HTTP PUT | | ${HTTP_FIRST} | | |"
    echo "| registration → first proxied answer on all 3 nodes (ms), raftgate agent (process start, SWIM join, mirror) | | ${SWIM_FIRST} | | |"
    echo "| requests failed while 1 of 2 workers is SIGKILLed half-way through (wrk GET, 16 conns, ${DURATION} s) | | ${KILL_FAILED} of ${KILL_TOTAL} | | |"
    errors=""
    for key in "${!CELL[@]}"; do
        e=$(echo "${CELL[$key]}" | awk '{print $4}')
        [ "${e:-0}" = 0 ] || errors="$errors $key:$e"
    done
    echo
    echo "Worker proxy: non-2xx answers or socket errors during the load cells: ${errors:-none}. Debug builds are"
    echo "not measured; everything runs on one machine, wrk included, so the proxy and the worker share its cores."
} >"$WORK/workers.md"
cat "$WORK/workers.md"
[ -z "$OUT" ] || cp "$WORK/workers.md" "$OUT"
