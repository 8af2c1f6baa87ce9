# Shell helpers shared by scripts/*.sh and bench/run.sh (sourced, not run).

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_for SECONDS COMMAND…: polls COMMAND every 10 ms until it succeeds; fails after SECONDS.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.01; done
}

# swim_status MEMBER HTTP_PORT: that node's SWIM view of MEMBER (alive, suspect, dead, left), from
# GET /cluster — keys are sorted, so the record reads "id":N,"incarnation":…,…,"status":"…".
swim_status() {
    curl -s -m 2 "http://127.0.0.1:$2/cluster" | grep -o "\"id\":$1,\"incarnation\":[^}]*" |
        grep -o '"status":"[a-z]*"' | cut -d'"' -f4
}

# swim_is MEMBER HTTP_PORT STATUS
swim_is() { [ "$(swim_status "$1" "$2")" = "$3" ]; }
