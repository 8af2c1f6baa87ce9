# raftgate — the commands a newcomer runs. See README.md.
SWIFT ?= swift
SIM_SEEDS ?= 3000
SIM_STEPS ?= 3000

# Debian packages the build needs; `make deps` installs whichever are missing.
# libpq-dev for CLibPQ; postgresql-15 because PatroniTests and the /sql tests start PostgreSQL themselves
# (with a streaming replica: pg_basebackup and psql come with it, from postgresql-client-15).
# etcd-server because the etcd API's answers are compared with a real etcd 3.4's (EtcdCompatibilityTests).
# libhiredis-dev (0.14.1) for CHiredis.
DEBIAN_PACKAGES := liblz4-dev libpq-dev postgresql-15 pkg-config haproxy curl iptables openssl etcd-server libhiredis-dev

CHAOS_SECONDS ?= 120
CHAOS_NODES ?= 3,5
CHAOS_KEYS ?= 3
CHAOS_SEED ?= $(shell date +%s)

.PHONY: bench chaos all deps build test unit-test test-ha sim bench-core bench-disk bench-node lint format start-cluster stop-cluster status failover-demo detection-demo start-stack stop-stack stack-status stack-failover rolling-restart clean

all: build

# $(call install_missing,packages,shell run after an install): apt-get installs whichever of the
# Debian packages are missing (sudo when not root; apt-get update only if the first try fails).
install_missing = @missing=""; for package in $(1); do \
	    dpkg -s $$package >/dev/null 2>&1 || missing="$$missing $$package"; done; \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	    $$sudo apt-get install -y $$missing || { $$sudo apt-get update && $$sudo apt-get install -y $$missing; }; \
	    $(2) \
	fi

# The etcd-server package may start a system etcd; the benchmark runs its own.
STOP_PACKAGED_ETCD := if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then \
	    echo "stopping and disabling the etcd service the package started"; $$sudo systemctl disable --now etcd; fi;

# The full stack's packages: PostgreSQL 15, Patroni 3.0.2 and etcd 3.4 (Patroni's DCS with STACK_DCS=etcd,
# and the comparison in `make bench`; by default the gateways are its DCS).
# Redis 7 and its Sentinel for the Redis tier (make test-ha, the full stack).
STACK_PACKAGES := postgresql patroni etcd-server redis-server redis-sentinel

# Those packages enable system services (etcd, PostgreSQL's cluster `main`, patroni) and start them
# where systemd runs; the stack runs its own processes, so the services are stopped and disabled.
STOP_PACKAGED_STACK := if command -v systemctl >/dev/null; then for unit in etcd postgresql patroni redis-server redis-sentinel; do \
	    if systemctl is-enabled --quiet $$unit 2>/dev/null || systemctl is-active --quiet $$unit 2>/dev/null; then \
	        echo "stopping and disabling the $$unit service the package installed"; $$sudo systemctl disable $$unit; \
	        if [ -d /run/systemd/system ]; then $$sudo systemctl stop $$unit; fi; fi; done; fi;

deps:
	$(call install_missing,$(DEBIAN_PACKAGES),$(STOP_PACKAGED_STACK))

build: deps
	$(SWIFT) build

## Every test: lint, unit and integration tests, the CI-sized simulation, a short chaos round.
test: lint unit-test test-ha sim chaos

## Three test processes, not one: the pure cores' suites run seconds of CPU-bound simulation, and
## in one process they hold every thread of Swift concurrency's pool (one per core) while the
## suites that time real sockets and processes wait, so those missed their deadlines on a loaded
## machine. Every test target is in exactly one group; a new target lands in the middle one. The
## last two groups run their tests one at a time: their in-process clusters and real processes each
## time elections and leases, and dozens at once on two cores starved them past their deadlines
## (seen: a new leader's reads failing, a cluster not starting); serially the middle group takes 30 s
## instead of 13 and the process group 72 s instead of 51.
PURE_TESTS := ^(RaftTests|MembershipTests|LinearizabilityTests)\.
PROCESS_TESTS := ^IntegrationTests\.
unit-test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter '$(PURE_TESTS)'
	$(SWIFT) test --skip-build --no-parallel --skip '$(PURE_TESTS)' --skip '$(PROCESS_TESTS)'
	$(SWIFT) test --skip-build --no-parallel --filter '$(PROCESS_TESTS)' --skip '$(HA_TESTS)'

HA_TESTS := ^IntegrationTests\.HA(Patroni|Sentinel|EtcdDCS)
## Real PostgreSQL under Patroni, Redis under Sentinel, Patroni on raftgate as its DCS.
test-ha: deps
	$(call install_missing,$(STACK_PACKAGES),$(STOP_PACKAGED_STACK))
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel --filter '$(HA_TESTS)'

## Many seeded simulation runs of 3- and 5-node clusters under faults; prints one summary line.
## A failure prints its seed and the command that replays it exactly.
sim: deps
	$(SWIFT) build -c release --product raft-sim
	.build/release/raft-sim --seeds $(SIM_SEEDS) --steps $(SIM_STEPS)

## Real clusters (3 then 5 nodes, each on its own 127.0.0.1x address) behind HAProxy under a
## seeded nemesis (kills, pauses, iptables partitions, torn WAL tails, full restarts); the history
## is checked for linearizability. CHAOS_SECONDS is the whole run, split between the cluster sizes.
## Reports go to results/chaos/<time>-n<N>-seed<S>/. Long run: CHAOS_SECONDS=1800 make chaos
chaos: deps
	$(SWIFT) build --product raftgate
	$(SWIFT) build -c release --product raft-chaos
	.build/release/raft-chaos --seed $(CHAOS_SEED) --seconds $(CHAOS_SECONDS) --nodes $(CHAOS_NODES) \
	    --keys $(CHAOS_KEYS) --binary .build/debug/raftgate --results results/chaos

## raftgate beside etcd 3.4 (Debian's etcd-server), same wrk load, same machine: writes, reads,
## failover, failure detection, RSS, start-up; and PostgreSQL failover under Patroni (the full stack). Prints a table and writes bench/results/<date>.md.
bench: deps
	$(call install_missing,etcd-server wrk $(STACK_PACKAGES),$(STOP_PACKAGED_STACK))
	$(SWIFT) build -c release --product raftgate
	$(SWIFT) build -c release --product raft-bench-disk
	$(SWIFT) build -c release --product raft-bench-watch
	$(SWIFT) build -c release --product raftgate-echo
	bench/run.sh

## Entries per second the Raft core commits in memory (3 nodes; 1, 16 and 256 in flight).
bench-core: deps
	$(SWIFT) build -c release --product raft-bench-core
	.build/release/raft-bench-core

## What durability costs here: WAL append + fsync latency (p50/p99) and group-commit throughput.
bench-disk: deps
	$(SWIFT) build -c release --product raft-bench-disk
	.build/release/raft-bench-disk .build/bench-disk

## Three in-process nodes over TCP with real WALs: write throughput, latency and entries per fsync.
bench-node: deps
	$(SWIFT) build -c release --product raft-bench-node
	.build/release/raft-bench-node .build/bench-node

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift

format:
	$(SWIFT) format format --in-place --recursive Sources Tests Package.swift

## The three-node example behind HAProxy (pids and logs under run/); peers use mutual TLS with a
## throwaway CA. TLS=1 also serves HTTPS on the nodes' API and health ports.
start-cluster: deps
	$(SWIFT) build -c release --product raftgate
	$(SWIFT) build -c release --product raftgate-echo
	TLS="$(TLS)" scripts/cluster.sh start

stop-cluster:
	scripts/cluster.sh stop

status:
	scripts/cluster.sh status

## Restart the running example's nodes one at a time, the leader last (SIGTERM = drain), waiting
## for the cluster to be healthy between them. Start it first with `make start-cluster`.
rolling-restart:
	scripts/rolling-restart.sh

## SIGKILL the leader, time the first successful write through HAProxy, restart the node.
failover-demo:
	scripts/failover.sh

## SIGKILL a follower and time until every other node's SWIM view says it is dead.
detection-demo:
	scripts/detection.sh

## The full stack: three etcd (Patroni's DCS), three PostgreSQL 15 under Patroni (synchronous
## mode), the three gateways and HAProxy, all on loopback; pids, logs and data under run/stack/.
start-stack: deps
	$(call install_missing,$(STACK_PACKAGES),$(STOP_PACKAGED_STACK))
	$(SWIFT) build -c release --product raftgate
	scripts/stack.sh start

stop-stack:
	scripts/stack.sh stop

stack-status:
	scripts/stack.sh status

## SIGKILL the primary's Patroni and PostgreSQL under INSERTs; time the outage, check no
## acknowledged INSERT is lost, restart the member.
stack-failover:
	scripts/stack.sh failover

clean:
	rm -rf .build
