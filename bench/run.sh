#!/usr/bin/env bash
# `make bench`: raftgate beside etcd 3.4 (Debian's etcd-server) on this machine, in one run, with
# the same load generator (wrk + Lua), value size (64 bytes) and connection counts (1, 16, 64).
# Everything runs on 127.0.0.1 and is stopped by pid. Prints a Markdown table and writes it to
# bench/results/<date>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${BENCH_SECONDS:-5}
CONNECTIONS=${BENCH_CONNECTIONS:-"1 16 64"}
RUNS=${BENCH_FAILOVERS:-5}
CHANGES=${BENCH_CHANGES:-200}
ADMIN_TOKEN=bench-admin-token-000000
# The 1,000-connection cells need wrk's, HAProxy's and each node's sockets: raise the soft limit
# (inherited by everything started below) as far as the hard one allows.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
MANY=${BENCH_MANY_CONNECTIONS:-1000}
WORK=$(mktemp -d /tmp/raftgate-bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
. scripts/lib.sh
median() { sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : "-")}'; }
code() { curl -s -m 2 -o /dev/null -w '%{http_code}' "$@" || true; }
http_ok() { [ "$(code "$@")" = 200 ]; }

# --- raftgate: three nodes and HAProxy --------------------------------------------------------
RG=.build/release/raftgate
rg_http() { echo $((25080 + $1)); }
rg_health() { echo $((25090 + $1)); }
RG_PEERS="1=127.0.0.1:25101,2=127.0.0.1:25102,3=127.0.0.1:25103"
RG_SWIM="127.0.0.1:25111,127.0.0.1:25112,127.0.0.1:25113"
declare -A RG_PID ETCD_PID
rg_start() {
    "$RG" serve --id "$1" --data-dir "$WORK/raftgate-$1" --http "127.0.0.1:$(rg_http "$1")" \
        --health "127.0.0.1:$(rg_health "$1")" --raft "127.0.0.1:$((25100 + $1))" --peers "$RG_PEERS" \
        --swim "127.0.0.1:$((25110 + $1))" --swim-seeds "$RG_SWIM" --cluster-key bench-cluster-key-000000 \
        --admin-token "$ADMIN_TOKEN" --bootstrap \
        --log-level warning 2>>"$WORK/raftgate-$1.log" &
    RG_PID[$1]=$!
    PIDS+=($!)
    disown $!  # stopped by pid in cleanup; no job-control chatter when it is killed
}
rg_leader() {
    for id in 1 2 3; do [ "$(code "http://127.0.0.1:$(rg_health $id)/primary")" = 200 ] && { echo $id; return; }; done
    echo ""
}
# --- etcd: three members ----------------------------------------------------------------------
ETCD_CLUSTER="e1=http://127.0.0.1:25211,e2=http://127.0.0.1:25212,e3=http://127.0.0.1:25213"
etcd_client() { echo $((25200 + $1)); }
etcd_start() {
    etcd --name "e$1" --data-dir "$WORK/etcd-$1" --listen-client-urls "http://127.0.0.1:$(etcd_client "$1")" \
        --advertise-client-urls "http://127.0.0.1:$(etcd_client "$1")" \
        --listen-peer-urls "http://127.0.0.1:$((25210 + $1))" --initial-advertise-peer-urls "http://127.0.0.1:$((25210 + $1))" \
        --initial-cluster "$ETCD_CLUSTER" --initial-cluster-state new --initial-cluster-token bench \
        --log-level error >>"$WORK/etcd-$1.log" 2>&1 &
    ETCD_PID[$1]=$!
    PIDS+=($!)
    disown $!
}
etcd_leader() {
    for id in 1 2 3; do
        status=$(curl -s -m 2 -X POST "http://127.0.0.1:$(etcd_client $id)/v3/maintenance/status" -d '{}' || true)
        member=$(echo "$status" | grep -o '"member_id":"[0-9]*"' | cut -d'"' -f4)
        leader=$(echo "$status" | grep -o '"leader":"[0-9]*"' | cut -d'"' -f4)
        [ -n "$member" ] && [ "$member" = "$leader" ] && { echo $id; return; }
    done
    echo ""
}
etcd_put() { curl -s -m 2 -X POST "http://127.0.0.1:$(etcd_client "$1")/v3/kv/put" -d '{"key":"Zm8=","value":"YmFy"}' | grep -q revision; }
etcd_healthy() { curl -s -m 1 "http://127.0.0.1:$(etcd_client "$1")/health" | grep -q '"health":"true"'; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

echo "bench: physical floor"
eval "$(.build/release/raft-bench-disk --floor "$WORK/floor")"

echo "bench: starting raftgate and etcd (time to ready)"
t0=$(now_ms)
for id in 1 2 3; do rg_start $id; done
for id in 1 2 3; do wait_for 30 http_ok "http://127.0.0.1:$(rg_health $id)/health/ready"; done
RG_READY=$(( $(now_ms) - t0 ))
t0=$(now_ms)
for id in 1 2 3; do etcd_start $id; done
for id in 1 2 3; do wait_for 30 etcd_healthy $id; done
ETCD_READY=$(( $(now_ms) - t0 ))
sed -e "s/127.0.0.1:8080/127.0.0.1:25080/; s/127.0.0.1:8404/127.0.0.1:25079/" \
    -e "s/127.0.0.1:808\([123]\)/127.0.0.1:2508\1/; s/port 1000\([123]\)/port 2509\1/" \
    examples/three-nodes/haproxy.cfg >"$WORK/haproxy.cfg"
haproxy -db -f "$WORK/haproxy.cfg" >/dev/null 2>&1 &
PIDS+=($!)
disown $!
wait_for 30 http_ok -X PUT --data x http://127.0.0.1:25080/kv/bench/1
wait_for 30 etcd_put 1
curl -s -X POST "http://127.0.0.1:$(etcd_client 1)/v3/kv/put" -d '{"key":"YmVuY2gvMQ==","value":"eA=="}' >/dev/null
sleep 2
RG_RSS=$(for id in 1 2 3; do rss_mb "${RG_PID[$id]}"; echo; done | median)
ETCD_RSS=$(for id in 1 2 3; do rss_mb "${ETCD_PID[$id]}"; echo; done | median)

# wrk NAME URL SCRIPT CONNECTIONS [ENV=VALUE…] → "requests/s p50_ms p99_ms errors"
wrk_run() {
    local url=$1 script=$2 connections=$3; shift 3
    local threads=$((connections < 2 ? 1 : 2))
    local output
    output=$(env "$@" wrk -t"$threads" -c"$connections" -d"${DURATION}s" --latency -s "bench/lua/$script" "$url")
    local rps p50 p99 errors
    rps=$(echo "$output" | awk '/Requests\/sec/ {printf "%d", $2}')
    p50=$(echo "$output" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$output" | awk '$1 == "99%" {print $2}')
    errors=$(echo "$output" | awk '/Non-2xx/ {print $5}')
    # "Socket errors: connect A, read B, write C, timeout D" → A+B+C+D.
    local socket_errors
    socket_errors=$(echo "$output" | awk -F'[ ,]+' '/Socket errors/ {print $5 + $7 + $9 + $11}')
    echo "$rps $(to_ms "$p50") $(to_ms "$p99") ${errors:-0} ${socket_errors:-0}"
}
rss_max() { for pid in "$@"; do rss_mb "$pid"; echo; done | sort -n | tail -1; }
to_ms() { echo "$1" | awk '/us$/ {printf "%.2f", $1 / 1000; next} /ms$/ {printf "%.2f", $1 + 0; next} /s$/ {printf "%.0f", $1 * 1000}'; }

declare -A RESULT
RG_LEADER=$(rg_leader)
ETCD_LEADER=$(etcd_leader)
for c in $CONNECTIONS; do
    echo "bench: $c connection(s)"
    RESULT[w,proxy,$c]=$(wrk_run "http://127.0.0.1:25080" raftgate-write.lua "$c")
    RESULT[w,direct,$c]=$(wrk_run "http://127.0.0.1:$(rg_http "$RG_LEADER")" raftgate-write.lua "$c")
    RESULT[w,etcd,$c]=$(wrk_run "http://127.0.0.1:$(etcd_client "$ETCD_LEADER")" etcd.lua "$c" MODE=write)
    RESULT[r,proxy,$c]=$(wrk_run "http://127.0.0.1:25080" raftgate-read.lua "$c" CONSISTENCY=linearizable)
    RESULT[r,direct,$c]=$(wrk_run "http://127.0.0.1:$(rg_http "$RG_LEADER")" raftgate-read.lua "$c" CONSISTENCY=linearizable)
    RESULT[r,etcd,$c]=$(wrk_run "http://127.0.0.1:$(etcd_client "$ETCD_LEADER")" etcd.lua "$c" MODE=read)
    RESULT[l,proxy,$c]=$(wrk_run "http://127.0.0.1:25080" raftgate-read.lua "$c" CONSISTENCY=lease)
    RESULT[l,direct,$c]=$(wrk_run "http://127.0.0.1:$(rg_http "$RG_LEADER")" raftgate-read.lua "$c" CONSISTENCY=lease)
    RESULT[l,etcd,$c]=$(wrk_run "http://127.0.0.1:$(etcd_client "$ETCD_LEADER")" etcd.lua "$c" MODE=read SERIALIZABLE=1)
done

echo "bench: $MANY connections through HAProxy (raftgate) / direct to the leader (etcd)"
RESULT[w,proxy,$MANY]=$(wrk_run "http://127.0.0.1:25080" raftgate-write.lua "$MANY")
RESULT[l,proxy,$MANY]=$(wrk_run "http://127.0.0.1:25080" raftgate-read.lua "$MANY" CONSISTENCY=lease)
RG_RSS_MANY=$(rss_max "${RG_PID[1]}" "${RG_PID[2]}" "${RG_PID[3]}")
RESULT[w,etcd,$MANY]=$(wrk_run "http://127.0.0.1:$(etcd_client "$ETCD_LEADER")" etcd.lua "$MANY" MODE=write)
RESULT[l,etcd,$MANY]=$(wrk_run "http://127.0.0.1:$(etcd_client "$ETCD_LEADER")" etcd.lua "$MANY" MODE=read SERIALIZABLE=1)
ETCD_RSS_MANY=$(rss_max "${ETCD_PID[1]}" "${ETCD_PID[2]}" "${ETCD_PID[3]}")

# --- TLS on vs off: a second raftgate cluster with HTTPS on its API and mutual TLS between peers,
# measured like the direct rows above (wrk speaks https; it does not verify the certificate).
echo "bench: TLS on (HTTPS API + peer mutual TLS), direct to the leader"
TLS_CERTS="$WORK/certs"
scripts/make-certs.sh "$TLS_CERTS" n1 n2 n3
TLS_PEERS="1=127.0.0.1:25401,2=127.0.0.1:25402,3=127.0.0.1:25403"
TLS_SWIM="127.0.0.1:25411,127.0.0.1:25412,127.0.0.1:25413"
declare -A TLS_PID
for id in 1 2 3; do
    "$RG" serve --bootstrap --id "$id" --data-dir "$WORK/tls-$id" --http "127.0.0.1:$((25380 + id))" \
        --health "127.0.0.1:$((25390 + id))" --raft "127.0.0.1:$((25400 + id))" --peers "$TLS_PEERS" \
        --swim "127.0.0.1:$((25410 + id))" --swim-seeds "$TLS_SWIM" --cluster-key bench-cluster-key-000000 \
        --tls-cert "$TLS_CERTS/n$id.pem" --tls-key "$TLS_CERTS/n$id.key" \
        --peer-tls-cert "$TLS_CERTS/n$id.pem" --peer-tls-key "$TLS_CERTS/n$id.key" --peer-tls-ca "$TLS_CERTS/ca.pem" \
        --log-level warning 2>>"$WORK/tls-$id.log" &
    TLS_PID[$id]=$!
    PIDS+=($!)
    disown $!
done
for id in 1 2 3; do wait_for 30 http_ok --cacert "$TLS_CERTS/ca.pem" "https://127.0.0.1:$((25390 + id))/health/ready"; done
TLS_LEADER=""
for id in 1 2 3; do http_ok --cacert "$TLS_CERTS/ca.pem" "https://127.0.0.1:$((25390 + id))/primary" && TLS_LEADER=$id; done
wait_for 30 http_ok --cacert "$TLS_CERTS/ca.pem" -X PUT --data x "https://127.0.0.1:$((25380 + TLS_LEADER))/kv/bench/1"
for c in $CONNECTIONS; do
    RESULT[tw,$c]=$(wrk_run "https://127.0.0.1:$((25380 + TLS_LEADER))" raftgate-write.lua "$c")
    RESULT[tr,$c]=$(wrk_run "https://127.0.0.1:$((25380 + TLS_LEADER))" raftgate-read.lua "$c" CONSISTENCY=linearizable)
done
for id in 1 2 3; do kill -9 "${TLS_PID[$id]}" 2>/dev/null || true; done

echo "bench: propagation, $CHANGES changes each (write → a follower's watch; config → every node's cache)"
WATCH_TOOL=.build/release/raft-bench-watch
RG_LEADER=$(rg_leader)
RG_FOLLOWER=$((RG_LEADER % 3 + 1))
eval "$($WATCH_TOOL watch --writer "127.0.0.1:$(rg_http "$RG_LEADER")" --watcher "127.0.0.1:$(rg_http "$RG_FOLLOWER")" \
    --count "$CHANGES" --name rg_watch)"
eval "$($WATCH_TOOL config --writer "127.0.0.1:$(rg_http "$RG_LEADER")" --token "$ADMIN_TOKEN" --count "$CHANGES" \
    --nodes "127.0.0.1:$(rg_http 1),127.0.0.1:$(rg_http 2),127.0.0.1:$(rg_http 3)" --name rg_config)"
ETCD_LEADER=$(etcd_leader)
eval "$($WATCH_TOOL etcd --writer "127.0.0.1:$(etcd_client "$ETCD_LEADER")" \
    --watcher "127.0.0.1:$(etcd_client $((ETCD_LEADER % 3 + 1)))" --count "$CHANGES" --name etcd_watch)"

echo "bench: failover, $RUNS runs each (SIGKILL the leader → first successful write)"
RG_FAILOVERS=()
for _ in $(seq "$RUNS"); do
    leader=$(rg_leader)
    t0=$(now_ms)
    kill -9 "${RG_PID[$leader]}"
    wait_for 30 http_ok -m 1 -X PUT --data y http://127.0.0.1:25080/kv/failover
    RG_FAILOVERS+=($(( $(now_ms) - t0 )))
    rg_start "$leader"
    wait_for 30 http_ok "http://127.0.0.1:$(rg_health "$leader")/health/ready"
    sleep 2
done
ETCD_FAILOVERS=()
for _ in $(seq "$RUNS"); do
    leader=$(etcd_leader)
    other=$((leader % 3 + 1))
    t0=$(now_ms)
    kill -9 "${ETCD_PID[$leader]}"
    wait_for 30 etcd_put "$other"
    ETCD_FAILOVERS+=($(( $(now_ms) - t0 )))
    etcd_start "$leader"
    wait_for 30 etcd_healthy "$leader"
    sleep 2
done

echo "bench: failure detection, $RUNS runs (SIGKILL a follower → every other node's SWIM view says dead)"
RG_DETECTIONS=()
for _ in $(seq "$RUNS"); do
    leader=$(rg_leader)
    victim=$((leader % 3 + 1))
    t0=$(now_ms)
    kill -9 "${RG_PID[$victim]}"
    for observer in 1 2 3; do
        [ "$observer" = "$victim" ] && continue
        wait_for 30 swim_is "$victim" "$(rg_http "$observer")" dead
    done
    RG_DETECTIONS+=($(( $(now_ms) - t0 )))
    rg_start "$victim"
    for observer in 1 2 3; do
        [ "$observer" = "$victim" ] && continue
        wait_for 30 swim_is "$victim" "$(rg_http "$observer")" alive
    done
done

# --- PostgreSQL under Patroni: the full stack's failover, the anchor for issue 12's routing ------
PG_RUNS=${BENCH_PG_FAILOVERS:-3}
echo "bench: PostgreSQL failover under Patroni, $PG_RUNS runs (SIGKILL the primary's Patroni and PostgreSQL)"
chmod 755 "$WORK" # as root, PostgreSQL runs as the postgres user, which must reach $WORK/stack
PG_SKIPPED=""
if PG_VARS=$(STACK_DIR="$WORK/stack" RAFTGATE_BIN="$RG" bench/stack-failover.sh "$PG_RUNS" 2>>"$WORK/stack.log"); then
    eval "$PG_VARS"
else
    PG_SKIPPED="failed: $(tail -n 3 "$WORK/stack.log" | tr '\n' ' ')"
fi

echo "bench: Patroni failover with raftgate vs etcd as its DCS (bench/patroni-dcs.sh)"
PATRONI_DCS_ROWS=$(RG="$RG" PATRONI_DCS_RUNS="${BENCH_PG_FAILOVERS:-3}" bench/patroni-dcs.sh 2>>"$WORK/patroni-dcs.log") ||
    PATRONI_DCS_ROWS="| Patroni failover, raftgate vs etcd as its DCS | | failed: $(tail -n 2 "$WORK/patroni-dcs.log" | tr '\n' ' ') | | | |"

echo "bench: lifecycle (graceful vs SIGKILL leader restart, learner catch-up by snapshot)"
LIFECYCLE_ROWS=$(RG="$RG" LIFECYCLE_RUNS="$RUNS" bench/lifecycle.sh)

echo "bench: worker proxy (bench/workers.sh)"
bench/workers.sh "$WORK/workers.md" >/dev/null

echo "bench: range reads of 10,000 keys beside writes (bench/ranges.sh)"
RG="$RG" bench/ranges.sh "$WORK/ranges.md" >/dev/null
echo "bench: Redis under Sentinel (bench/redis.sh)"
bench/redis.sh "$WORK/redis.md" >/dev/null || echo "Redis rows failed (see above)" >"$WORK/redis.md"
echo "bench: SELECT 1 through /sql vs libpq direct (bench/sql.sh)"
SQL_SKIPPED=""
RG="$RG" bench/sql.sh "$WORK/sql.md" 2>"$WORK/sql.log" || SQL_SKIPPED="failed: $(tail -n 3 "$WORK/sql.log" | tr '\n' ' ')"

# --- the table ---------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "-") printf "%.2f×", a / b; else print "-" }'; }
field() { echo "${RESULT[$1]}" | awk -v n="$2" '{print $n}'; }
RG_FAILOVER=$(printf '%s\n' "${RG_FAILOVERS[@]}" | median)
ETCD_FAILOVER=$(printf '%s\n' "${ETCD_FAILOVERS[@]}" | median)
RG_DETECTION=$(printf '%s\n' "${RG_DETECTIONS[@]}" | median)
{
    echo "# raftgate vs etcd $(etcd --version | awk '/etcd Version/ {print $3}') — $(date -u +%Y-%m-%d)"
    echo
    echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -r)."
    echo "Both clusters: three members on 127.0.0.1, running side by side. Load: wrk with"
    echo "bench/lua/*.lua, ${DURATION} s per cell, 64-byte values. raftgate: release build, tick 50 ms (elections"
    echo "after 0.5–1 s), behind HAProxy (examples/three-nodes/haproxy.cfg) or direct to the leader. etcd:"
    echo "defaults (heartbeat 100 ms, election 1 s), its v3 JSON gateway on the leader."
    echo
    echo "Physical floor of a durable replicated write here: fsync p50 ${fsync_p50_us} µs / p99 ${fsync_p99_us} µs,"
    echo "loopback round trip p50 ${loopback_rtt_p50_us} µs / p99 ${loopback_rtt_p99_us} µs — so about"
    echo "$(awk -v f="$fsync_p50_us" -v r="$loopback_rtt_p50_us" 'BEGIN {printf "%.2f", (f + r) / 1000}') ms at p50 for one fsync plus one round trip."
    echo
    echo "| row | conns | raftgate via HAProxy | raftgate direct | etcd | direct ÷ etcd |"
    echo "|---|---:|---:|---:|---:|---:|"
    for kind in w r l; do
        case $kind in w) name="write";; r) name="linearizable read";; l) name="lease read (etcd: serializable)";; esac
        for c in $CONNECTIONS; do
            echo "| $name req/s | $c | $(field "$kind,proxy,$c" 1) | $(field "$kind,direct,$c" 1) | $(field "$kind,etcd,$c" 1) | $(ratio "$(field "$kind,direct,$c" 1)" "$(field "$kind,etcd,$c" 1)") |"
            echo "| $name p50 / p99 ms | $c | $(field "$kind,proxy,$c" 2) / $(field "$kind,proxy,$c" 3) | $(field "$kind,direct,$c" 2) / $(field "$kind,direct,$c" 3) | $(field "$kind,etcd,$c" 2) / $(field "$kind,etcd,$c" 3) | $(ratio "$(field "$kind,direct,$c" 2)" "$(field "$kind,etcd,$c" 2)") (p50) |"
        done
    done
    for kind in w l; do
        case $kind in w) name="write";; l) name="lease read (etcd: serializable)";; esac
        echo "| $MANY connections: $name req/s | $MANY | $(field "$kind,proxy,$MANY" 1) | | $(field "$kind,etcd,$MANY" 1) (direct) | |"
        echo "| $MANY connections: $name p50 / p99 ms, socket errors | $MANY | $(field "$kind,proxy,$MANY" 2) / $(field "$kind,proxy,$MANY" 3), $(field "$kind,proxy,$MANY" 5) | | $(field "$kind,etcd,$MANY" 2) / $(field "$kind,etcd,$MANY" 3), $(field "$kind,etcd,$MANY" 5) | |"
    done
    echo "| RSS after the $MANY-connection cells, largest node (MB) | | ${RG_RSS_MANY} | | ${ETCD_RSS_MANY} | $(ratio "$RG_RSS_MANY" "$ETCD_RSS_MANY") |"
    echo "| failover: SIGKILL leader → first write, median of $RUNS (ms) | | ${RG_FAILOVER} (via HAProxy; runs: ${RG_FAILOVERS[*]}) | | ${ETCD_FAILOVER} (to a survivor; runs: ${ETCD_FAILOVERS[*]}) | $(ratio "$RG_FAILOVER" "$ETCD_FAILOVER") |"
    echo "| every node learns a SIGKILL'd node is dead, median of $RUNS (ms) | | ${RG_DETECTION} (SWIM; runs: ${RG_DETECTIONS[*]}) | | n/a (no failure detector: etcd never declares a member dead) | |"
    echo "| write on the leader → event on a follower's watch, p50 / p99 ms ($CHANGES writes) | | ${rg_watch_p50_ms} / ${rg_watch_p99_ms} (direct) | | ${etcd_watch_p50_ms} / ${etcd_watch_p99_ms} (v3 JSON gateway /v3/watch) | $(ratio "$rg_watch_p50_ms" "$etcd_watch_p50_ms") (p50) |"
    echo "| config change → in force on every node, p50 / p99 ms ($CHANGES changes) | | ${rg_config_p50_ms} / ${rg_config_p99_ms} (each node's cache, polled) | | anchor: a 60 s TTL poll is stale for 30,000 / 59,400 | |"
    echo "$LIFECYCLE_ROWS"
    echo "$PATRONI_DCS_ROWS"
    echo "| idle RSS per node (MB, median) | | ${RG_RSS} | | ${ETCD_RSS} | $(ratio "$RG_RSS" "$ETCD_RSS") |"
    echo "| start to ready, 3 nodes (ms) | | ${RG_READY} | | ${ETCD_READY} | $(ratio "$RG_READY" "$ETCD_READY") |"
    echo
    echo "TLS on vs off, direct to the leader (on: HTTPS on the API, mutual TLS between peers, EC P-256"
    echo "certificates from scripts/make-certs.sh; off: the direct cells above):"
    echo
    echo "| row | conns | TLS off | TLS on | on ÷ off |"
    echo "|---|---:|---:|---:|---:|"
    for kind in w r; do
        case $kind in w) name="write";; r) name="linearizable read";; esac
        for c in $CONNECTIONS; do
            echo "| $name req/s | $c | $(field "$kind,direct,$c" 1) | $(field "t$kind,$c" 1) | $(ratio "$(field "t$kind,$c" 1)" "$(field "$kind,direct,$c" 1)") |"
            echo "| $name p50 / p99 ms | $c | $(field "$kind,direct,$c" 2) / $(field "$kind,direct,$c" 3) | $(field "t$kind,$c" 2) / $(field "t$kind,$c" 3) | $(ratio "$(field "t$kind,$c" 2)" "$(field "$kind,direct,$c" 2)") (p50) |"
        done
    done
    echo
    errors=""
    for key in "${!RESULT[@]}"; do
        e=$(echo "${RESULT[$key]}" | awk '{print $4}')
        [ "${e:-0}" = 0 ] || errors="$errors $key:$e"
    done
    echo "Non-2xx answers during the load cells: ${errors:-none}."
    echo
    echo "PostgreSQL 15 under Patroni $(patroni --version 2>/dev/null | awk '{print $2}') (synchronous mode, ttl 10 s; scripts/stack.sh, DCS: ${STACK_DCS:-raftgate}):"
    echo "$PG_RUNS × SIGKILL of the primary's Patroni and PostgreSQL under INSERTs (a fresh psql each)."
    if [ -n "$PG_SKIPPED" ]; then
        echo "Skipped: $PG_SKIPPED"
    else
        echo
        echo "| row | median (ms) | runs (ms) |"
        echo "|---|---:|---|"
        echo "| promotion (Patroni's /primary on another member) after the SIGKILL | $(printf '%s\n' $PG_PROMOTIONS | median) | $PG_PROMOTIONS |"
        echo "| write outage, libpq to whichever member is read-write | $(printf '%s\n' $PG_DIRECT_OUTAGES | median) | $PG_DIRECT_OUTAGES |"
        echo "| write outage through HAProxy :5440 (Patroni's checks) | $(printf '%s\n' $PG_PROXIED_OUTAGES | median) | $PG_PROXIED_OUTAGES |"
        echo "| HAProxy's first INSERT after the promotion — the delay raftgate's routing is to beat | $(printf '%s\n' $PG_PROXIED_AFTER | median) | $PG_PROXIED_AFTER |"
        echo "| write outage through the gateways' POST /sql (round the three gateways, curl each) | $(printf '%s\n' $PG_SQL_OUTAGES | median) | $PG_SQL_OUTAGES |"
        echo "| POST /sql's first INSERT after the promotion (goal ≤ 1000) | $(printf '%s\n' $PG_SQL_AFTER | median) | $PG_SQL_AFTER |"
        echo "| POST /sql reads that failed during the run (count, not ms) | $(printf '%s\n' $PG_SQL_FAILED_READS | median) | $PG_SQL_FAILED_READS |"
        echo "| raftgate: every gateway's GET /pg routes writes to the new primary, after it left recovery (pg_is_in_recovery() false) | $(printf '%s\n' $PG_GATEWAY_ROUTED | median) | $PG_GATEWAY_ROUTED |"
        echo "| raftgate: the same, after Patroni's /primary answered 200 (HAProxy's row above starts here) | $(printf '%s\n' $PG_GATEWAY_AFTER_PATRONI | median) | $PG_GATEWAY_AFTER_PATRONI |"
        echo "| raftgate /sql: first write after the promotion | not built yet (issue 12) | |"
        echo
        echo "Acknowledged INSERTs missing on the new primary, per run: $PG_MISSING."
    fi
    echo
    echo "\`SELECT 1\` through \`POST /sql\` (one raftgate, a fixed route, the tenant's pool) vs libpq direct to the"
    echo "same PostgreSQL 15 (bench/sql.sh, ${DURATION} s per cell):"
    echo
    if [ -n "$SQL_SKIPPED" ]; then echo "Skipped: $SQL_SKIPPED"; else cat "$WORK/sql.md"; fi
    echo
    echo "Propagation rows: raft-bench-watch makes one change at a time, after a random pause of up to one"
    echo "tick (50 ms), and times from just before the request is sent until the change shows: the event"
    echo "on a follower's watch (etcd: a follower's /v3/watch), or every node's GET /config answering it."
    echo "The leader tells followers of a commit as soon as its commit index moves, so these rows are"
    echo "not bounded by the tick."
    echo
    echo "Range reads beside writes (bench/ranges.sh): three nodes, 10,000 keys of 64 bytes, wrk direct to the"
    echo "leader; linearizable range reads of all 10,000 keys (limit=10000) back to back. The anchor is"
    echo "the first row, the same writes with no range reads."
    echo
    echo "| row | requests/s | p50 / p99 ms |"
    echo "|---|---:|---:|"
    cat "$WORK/ranges.md"
    echo
    cat "$WORK/workers.md"
    echo
    cat "$WORK/redis.md"
} >"$WORK/table.md"
mkdir -p bench/results
cp "$WORK/table.md" "bench/results/$(date -u +%Y-%m-%d).md"
cat "$WORK/table.md"
echo
echo "written to bench/results/$(date -u +%Y-%m-%d).md"
