#!/usr/bin/env bash
# `make bench`'s /sql rows: `SELECT 1` through raftgate's POST /sql (one node, a fixed route to a
# throwaway PostgreSQL 15, the tenant's pool of persistent libpq connections, SCRAM through the
# gateway's passfile) beside libpq direct to the same server (pgbench: one persistent connection
# per client, the same statement, the same password file). Everything on 127.0.0.1, stopped by pid.
# Writes Markdown rows to $1 (default: stdout).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/dev/stdout}
RG=${RG:-.build/release/raftgate}
DURATION=${BENCH_SECONDS:-5}
CONNECTIONS=${BENCH_SQL_CONNECTIONS:-"1 16"}
PGBIN=/usr/lib/postgresql/15/bin
PGPORT=27301
HTTP=27081
ADMIN_TOKEN=bench-admin-token-000000
KEY=bench-api-key
WORK=$(mktemp -d /tmp/raftgate-sqlbench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    # SIGINT: PostgreSQL's fast shutdown (SIGTERM would wait for its clients), raftgate's graceful one.
    for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do
        alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
. scripts/lib.sh
# PostgreSQL refuses root: as root it runs as postgres, like scripts/stack.sh (setpriv execs, so a
# backgrounded PostgreSQL's $! is the postmaster's pid).
PG_AS=()
[ "$(id -u)" = 0 ] && PG_AS=(setpriv --reuid=postgres --regid=postgres --init-groups --)

mkdir "$WORK/pg"
echo bench-superuser-password >"$WORK/pg/pwfile"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$WORK/pg"
"${PG_AS[@]}" "$PGBIN/initdb" -D "$WORK/pg/data" -U postgres --auth=scram-sha-256 --pwfile="$WORK/pg/pwfile" \
    --no-sync >/dev/null
"${PG_AS[@]}" "$PGBIN/postgres" -D "$WORK/pg/data" -p $PGPORT -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories= -c fsync=off -c max_connections=200 >"$WORK/pg.log" 2>&1 &
PIDS+=($!)
disown $!
wait_for 30 "$PGBIN/pg_isready" -h 127.0.0.1 -p $PGPORT -q
printf '127.0.0.1:%s:*:postgres:bench-superuser-password\n127.0.0.1:%s:*:bench:bench-password\n' \
    $PGPORT $PGPORT >"$WORK/pgpass"
chmod 600 "$WORK/pgpass"
export PGPASSFILE="$WORK/pgpass"
"$PGBIN/psql" -h 127.0.0.1 -p $PGPORT -U postgres -q -c "CREATE ROLE bench LOGIN PASSWORD 'bench-password'"
"$PGBIN/psql" -h 127.0.0.1 -p $PGPORT -U postgres -q -c "CREATE DATABASE bench OWNER bench"

"$RG" serve --id 1 --data-dir "$WORK/node" --http "127.0.0.1:$HTTP" --health 127.0.0.1:27091 \
    --raft 127.0.0.1:27101 --swim 127.0.0.1:27111 --swim-seeds 127.0.0.1:27111 \
    --cluster-key bench-cluster-key-000000 --admin-token "$ADMIN_TOKEN" --bootstrap --log-level warning \
    --postgres-primary "pg=127.0.0.1:$PGPORT" --postgres-passfile "$WORK/pgpass" 2>>"$WORK/raftgate.log" &
PIDS+=($!)
disown $!  # stopped by pid in cleanup; no job-control chatter when it is killed
wait_for 30 curl -sf "http://127.0.0.1:27091/health/ready"
HASH=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
curl -sf -X PUT "http://127.0.0.1:$HTTP/config/bench" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -d "{\"apiKeys\":[\"sha256:$HASH\"],\"postgres\":{\"database\":\"bench\",\"user\":\"bench\",\"maxConnections\":16}}" \
    >/dev/null
sql_ok() { curl -sf -X POST "http://127.0.0.1:$HTTP/sql" -H 'X-Tenant: bench' -H "X-API-Key: $KEY" -d '{"sql":"SELECT 1"}'; }
wait_for 30 sql_ok

to_ms() { echo "$1" | awk '/us$/ {printf "%.2f", $1 / 1000; next} /ms$/ {printf "%.2f", $1 + 0; next} /s$/ {printf "%.0f", $1 * 1000}'; }
echo 'SELECT 1;' >"$WORK/select1.sql"
{
    echo "| \`SELECT 1\` | conns | requests/s | mean latency ms | p99 ms | errors |"
    echo "|---|---:|---:|---:|---:|---:|"
    for c in $CONNECTIONS; do
        threads=$((c < 2 ? 1 : 2))
        out=$(TENANT=bench KEY=$KEY wrk -t$threads -c"$c" -d"${DURATION}s" --latency -s bench/lua/sql.lua "http://127.0.0.1:$HTTP")
        rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%d", $2}')
        mean=$(to_ms "$(echo "$out" | awk '$1 == "Latency" {print $2}')")
        p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
        errors=$(echo "$out" | awk '/Non-2xx/ {print $5}')
        echo "| POST /sql through raftgate (HTTP/1.1 keep-alive, wrk) | $c | $rps | $mean | $p99 | ${errors:-0} |"
        out=$("$PGBIN/pgbench" -h 127.0.0.1 -p $PGPORT -U bench -n -f "$WORK/select1.sql" -c "$c" -j $threads \
            -T "$DURATION" bench 2>&1)
        tps=$(echo "$out" | awk '/^tps/ {printf "%d", $3}')
        mean=$(echo "$out" | awk '/^latency average/ {print $4}')
        failed=$(echo "$out" | awk '/number of failed transactions/ {print $5}')
        echo "| libpq direct (pgbench -f select1.sql, simple protocol) | $c | $tps | $mean | - | ${failed:-0} |"
    done
} >"$OUT"
