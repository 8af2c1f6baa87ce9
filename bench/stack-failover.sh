#!/usr/bin/env bash
# `make bench`'s PostgreSQL rows: the full stack (scripts/stack.sh) in a directory of its own,
# RUNS × `scripts/stack.sh failover` (SIGKILL the primary's Patroni and PostgreSQL under INSERTs,
# direct, through HAProxy's Patroni checks and through the gateways' POST /sql), then stopped by pid. Prints shell assignments
# for bench/run.sh: the runs' promotion times, outages and missing acknowledged INSERTs.
#   STACK_DIR=/some/dir bench/stack-failover.sh RUNS
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
: "${STACK_DIR:?set STACK_DIR to a directory for the stack data}"
export STACK_DIR
if curl -s -m 1 -o /dev/null http://127.0.0.1:2381/health || curl -s -m 1 -o /dev/null http://127.0.0.1:8011/patroni; then
    echo "PG_SKIPPED='the stack is already running (make stop-stack first)'"
    exit 0
fi
trap 'scripts/stack.sh stop >&2 || true' EXIT
scripts/stack.sh start >&2
promotions=() direct=() proxied=() after=() missing=() routed=() routed_patroni=() sql=() sql_after=() sql_failed_reads=()
for _ in $(seq "$RUNS"); do
    log=$(scripts/stack.sh failover 2>&1) || { echo "$log" >&2; exit 1; }
    promotions+=("$(sed -n 's/.* is the new primary, \([0-9]*\) ms after.*/\1/p' <<<"$log")")
    direct+=("$(sed -n 's/^write outage, direct [^:]*: \([0-9]*\) ms.*/\1/p' <<<"$log")")
    proxied+=("$(sed -n 's/^write outage, through HAProxy :5440: \([0-9]*\) ms.*/\1/p' <<<"$log")")
    after+=("$(sed -n 's/^write outage, through HAProxy :5440: .*its first INSERT \(-*[0-9]*\) ms after the promotion.*/\1/p' <<<"$log")")
    routed+=("$(sed -n 's/^raftgate: every gateway routed writes to [a-z0-9]* \(-*[0-9]*\) ms after it left recovery.*/\1/p' <<<"$log")")
    routed_patroni+=("$(sed -n 's/^raftgate: every gateway routed writes .*; \(-*[0-9]*\) ms after Patroni.s \/primary said so$/\1/p' <<<"$log")")
    sql+=("$(sed -n "s/^write outage, through the gateways' POST \/sql: \([0-9]*\) ms.*/\1/p" <<<"$log")")
    sql_after+=("$(sed -n "s/^write outage, through the gateways' POST \/sql: .*its first INSERT \(-*[0-9]*\) ms after the promotion.*/\1/p" <<<"$log")")
    sql_failed_reads+=("$(sed -n 's/^POST \/sql: .*failed reads: \([0-9]*\)$/\1/p' <<<"$log")")
    missing+=("$(sed -n 's/.*missing on the new primary: \([0-9]*\)$/\1/p' <<<"$log")")
done
echo "PG_PROMOTIONS='${promotions[*]}'"
echo "PG_DIRECT_OUTAGES='${direct[*]}'"
echo "PG_PROXIED_OUTAGES='${proxied[*]}'"
echo "PG_PROXIED_AFTER='${after[*]}'"
echo "PG_SQL_OUTAGES='${sql[*]}'"
echo "PG_SQL_AFTER='${sql_after[*]}'"
echo "PG_SQL_FAILED_READS='${sql_failed_reads[*]}'"
echo "PG_MISSING='${missing[*]}'"
echo "PG_GATEWAY_ROUTED='${routed[*]}'"
echo "PG_GATEWAY_AFTER_PATRONI='${routed_patroni[*]}'"
