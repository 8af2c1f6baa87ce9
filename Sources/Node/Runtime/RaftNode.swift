import Foundation
import Logging
import Raft

/// A raftgate node's consensus runtime: drives a `RaftCore` with a durable log, snapshot files,
/// the TCP peer transport and the replicated store, in the order the core's contract asks —
/// persist and fsync, then send, then apply, then advance.
///
/// Time: ticks are derived from the monotonic clock, and every elapsed tick is delivered before
/// any other input is handled, so a node that was paused never judges its lease by a stale clock.
public actor RaftNode {
    public nonisolated let id: NodeID
    public nonisolated let configuration: NodeConfiguration
    private var core: RaftCore
    private let wal: WriteAheadLog
    private let snapshots: SnapshotStore
    private let transport: PeerTransport
    public private(set) var store: KeyValueStore
    private var appliedIndex: UInt64
    private var pendingWrites: [UInt64: (term: UInt64, waiter: CheckedContinuation<WriteOutcome, Never>)] = [:]
    private var pendingReads: [UInt64: CheckedContinuation<UInt64?, Never>] = [:]
    private var readsAwaitingApply: [(index: UInt64, waiter: CheckedContinuation<UInt64?, Never>)] = []
    /// Request ids start at a random point each boot, so a late answer to a request made before a
    /// restart can never be taken for the answer to a new one.
    private var nextReadID = UInt64.random(in: 1...(UInt64.max >> 1))
    private var pendingForwards: [UInt64: CheckedContinuation<WriteOutcome, Never>] = [:]
    private var nextForwardID = UInt64.random(in: 1...(UInt64.max >> 1))
    /// Who each forwarded write went to: only that node's answer counts.
    private var forwardTargets: [UInt64: NodeID] = [:]
    private var drainScheduled = false
    private var lastTick = ContinuousClock.now
    private var tasks: [Task<Void, Never>] = []
    private var stopped = false
    public private(set) var snapshotsInstalled = 0
    /// Log entries made durable, and the fsyncs that did it (entries per fsync = group commit).
    public private(set) var persistedEntries = 0
    public var walFsyncs: Int { wal.fsyncCount }
    public private(set) var fatalError: String?
    private let logger: Logger
    private let metrics: NodeMetrics
    /// The leader this node last reported, so a change is logged and counted once.
    private var reportedLeader: NodeID?

    public static func start(_ configuration: NodeConfiguration) async throws -> RaftNode {
        let directory = configuration.dataDirectory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let snapshots = try SnapshotStore(directory: directory + "/snapshots")
        var logger = Logger(label: "raftgate.node")
        logger[metadataKey: "node"] = "\(configuration.id)"
        let (wal, recovery) = try WriteAheadLog.open(directory: directory + "/wal")
        if let tail = recovery.truncatedTail {
            logger.warning(
                "WAL tail truncated after a crash",
                metadata: [
                    "file": "\(tail.file)", "offset": "\(tail.offset)", "bytes": "\(tail.bytes)",
                    "reason": "\(tail.reason)",
                ])
        }
        let base =
            try snapshots.loadLatest() ?? RestoredState.bootstrap(voters: configuration.initialVoters).snapshot
        var entries = recovery.entries.filter { $0.index > base.metadata.index }
        if base.metadata.index > recovery.snapshotIndex {
            // The snapshot file is newer than anything the WAL recorded: a crash came between
            // saving a snapshot installed from the leader and logging it. The WAL's entries after
            // it belong to the same log only if the WAL holds the snapshot's last entry with the
            // same term (Log Matching); otherwise they are the replaced log and must not return.
            let boundary = recovery.entries.first { $0.index == base.metadata.index }
            let matches = boundary?.term == base.metadata.term
            if !matches { entries = [] }
            // Record the decision durably now: entries appended after this start must not be
            // judged against the old log again on the next one.
            if matches {
                wal.appendSnapshotMarker(index: base.metadata.index, term: base.metadata.term)
            } else {
                wal.append(entries: [], snapshot: base.metadata)
            }
            try wal.sync()
        } else if base.metadata.index < recovery.snapshotIndex {
            throw WALError.corrupt(
                file: directory + "/snapshots", offset: 0,
                reason:
                    "the WAL was compacted behind a snapshot at \(recovery.snapshotIndex), but the newest snapshot file is at \(base.metadata.index)"
            )
        }
        // The commit index is not fsync'ed on its own, and lowering it is always safe.
        var hardState = recovery.hardState
        hardState.commit = min(hardState.commit, base.metadata.index + UInt64(entries.count))
        let core = try RaftCore(
            options: configuration.raftOptions,
            restoring: RestoredState(hardState: hardState, snapshot: base, entries: entries))
        let store = base.data.isEmpty ? KeyValueStore() : try KeyValueStore(snapshot: base.data)
        let transport = try await PeerTransport.start(
            id: configuration.id, host: configuration.raftHost, port: configuration.raftPort,
            clusterKey: configuration.clusterKey, metricsFactory: configuration.metricsFactory)
        for (peer, address) in configuration.peers where peer != configuration.id {
            transport.setPeer(peer, host: address.host, port: address.port)
        }
        let node = RaftNode(
            configuration: configuration, core: core, wal: wal, snapshots: snapshots, transport: transport,
            store: store, appliedIndex: base.metadata.index, logger: logger)
        await node.run()
        return node
    }

    private init(
        configuration: NodeConfiguration, core: RaftCore, wal: WriteAheadLog, snapshots: SnapshotStore,
        transport: PeerTransport, store: KeyValueStore, appliedIndex: UInt64, logger: Logger
    ) {
        self.logger = logger
        self.metrics = NodeMetrics(factory: configuration.metricsFactory)
        self.id = configuration.id
        self.configuration = configuration
        self.core = core
        self.wal = wal
        self.snapshots = snapshots
        self.transport = transport
        self.store = store
        self.appliedIndex = appliedIndex
    }

    private func run() {
        let inbound = transport.messages
        tasks.append(
            Task { [weak self] in
                for await envelope in inbound {
                    guard let self else { return }
                    await self.handle(envelope)
                }
            })
        let interval = configuration.tickInterval
        tasks.append(
            Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    guard let self else { return }
                    await self.catchUpTicks()
                }
            })
    }

    // MARK: Observing

    public var status: RaftStatus { core.status }
    public var isLeader: Bool { core.role == .leader }
    /// How long ago this node last heard from its leader (zero on the leader, nil without one).
    public var leaderContactAge: Duration? {
        core.ticksSinceLeaderContact.map { configuration.tickInterval * $0 }
    }
    public var raftPort: Int { transport.localAddress.port ?? configuration.raftPort }
    /// The peer transport's counters: connections, drops, and what it refused.
    public nonisolated var transportStatistics: TransportStatistics { transport.statistics }

    // MARK: Inputs

    private func handle(_ envelope: PeerEnvelope) {
        guard !stopped else { return }
        switch envelope {
        case .raft(let message):
            catchUpTicks()
            core.step(message)
            drain()
        case .forwardedWrite(let forwarded):
            // Answer a follower's forwarded write with exactly what a local client would get;
            // a node that does not lead says so rather than forwarding again.
            Task {
                let outcome: WriteOutcome
                if let command = try? StoreCommand(decoding: forwarded.command) {
                    outcome = await self.write(command, forward: false)
                } else {
                    outcome = .notApplied("undecodable command")
                }
                self.transport.send(
                    .forwardedResult(
                        ForwardedResult(
                            requestID: forwarded.requestID, from: self.id, to: forwarded.from, outcome: outcome)))
            }
        case .forwardedResult(let result):
            guard forwardTargets[result.requestID] == result.from else { return }
            forwardTargets[result.requestID] = nil
            pendingForwards.removeValue(forKey: result.requestID)?.resume(returning: result.outcome)
        }
    }

    /// Delivers every tick the monotonic clock says has elapsed.
    private func catchUpTicks() {
        guard !stopped else { return }
        let now = ContinuousClock.now
        var delivered = false
        while now - lastTick >= configuration.tickInterval {
            lastTick += configuration.tickInterval
            core.tick()
            delivered = true
        }
        if delivered { drain() }
    }

    /// Writes through this node: proposed here when it leads, otherwise forwarded to the leader
    /// over the peer transport. Waits for the outcome; a forwarded write whose answer does not come
    /// back in time is `.unknown` (the leader may still have applied it).
    public func write(_ command: StoreCommand) async -> WriteOutcome {
        await write(command, forward: true)
    }

    private func write(_ command: StoreCommand, forward: Bool) async -> WriteOutcome {
        guard !stopped else { return .notLeader(leader: nil) }
        let encoded = command.encoded
        // Larger entries would exceed what peers accept in one frame (and what the WAL accepts
        // in one record): refuse them here, before they can wedge replication.
        guard encoded.count <= configuration.maxCommandBytes else {
            return .notApplied("command of \(encoded.count) bytes exceeds \(configuration.maxCommandBytes)")
        }
        catchUpTicks()
        if forward, core.role != .leader, let leader = core.leader {
            // Membership says the leader is suspect or dead: fail fast so the client retries
            // (through HAProxy, at the next leader) instead of waiting out the forward timeout.
            if unreachablePeers.contains(leader) { return .notLeader(leader: nil) }
            return await forwardWrite(command, to: leader)
        }
        switch core.propose(encoded) {
        case .rejected(.notLeader(let leader)):
            metrics.proposalsRefused.increment()
            return .notLeader(leader: leader)
        case .rejected(let reason):
            metrics.proposalsRefused.increment()
            return .notApplied("\(reason)")
        case .accepted(let index, let term):
            metrics.proposals.increment()
            let timeout = configuration.writeTimeout
            return await withCheckedContinuation { waiter in
                // An older proposal at this index was truncated (this node lost and regained
                // leadership): it was never committed, so its client learns that now.
                pendingWrites[index]?.waiter.resume(returning: .notApplied("truncated before it committed"))
                pendingWrites[index] = (term, waiter)
                scheduleDrain()
                Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    await self?.expireWrite(index: index, term: term)
                }
            }
        }
    }

    private func forwardWrite(_ command: StoreCommand, to leader: NodeID) async -> WriteOutcome {
        let requestID = nextForwardID
        nextForwardID += 1
        let timeout = configuration.writeTimeout
        return await withCheckedContinuation { waiter in
            pendingForwards[requestID] = waiter
            forwardTargets[requestID] = leader
            transport.send(
                .forwardedWrite(ForwardedWrite(requestID: requestID, from: id, to: leader, command: command.encoded)))
            Task { [weak self] in
                try? await Task.sleep(for: timeout)
                await self?.expireForward(requestID)
            }
        }
    }

    /// Membership's view of a peer (SWIM, faster than Raft's election timeout). Unreachable means
    /// suspected, dead or gone; `dead` also slows redialling it to the longest back-off.
    public func membershipChanged(peer: NodeID, reachable: Bool, dead: Bool) {
        guard peer != id else { return }
        transport.setPeerDeclaredDead(peer, dead)
        if reachable {
            unreachablePeers.remove(peer)
            return
        }
        guard unreachablePeers.insert(peer).inserted else { return }
        if peer == core.leader {
            logger.info("membership suspects the leader; forwarded writes fail fast", metadata: ["leader": "n\(peer)"])
        }
        for (requestID, target) in forwardTargets where target == peer {
            forwardTargets[requestID] = nil
            pendingForwards.removeValue(forKey: requestID)?.resume(
                returning: .unknown("forwarded to n\(peer), which membership now suspects"))
        }
    }

    /// Peers membership holds suspect, dead or gone.
    public private(set) var unreachablePeers: Set<NodeID> = []

    /// Writes forwarded to a node that is no longer the leader will not be answered in time:
    /// report them as unknown now (the client retries at once) instead of at the timeout.
    private func abandonForwardsToFormerLeaders() {
        for (requestID, target) in forwardTargets where target != core.leader {
            forwardTargets[requestID] = nil
            pendingForwards.removeValue(forKey: requestID)?.resume(
                returning: .unknown("forwarded to n\(target), which no longer leads"))
        }
    }

    private func expireForward(_ requestID: UInt64) {
        forwardTargets[requestID] = nil
        pendingForwards.removeValue(forKey: requestID)?.resume(
            returning: .unknown("forwarded to the leader, no answer within \(configuration.writeTimeout)"))
    }

    private func expireWrite(index: UInt64, term: UInt64) {
        guard let pending = pendingWrites[index], pending.term == term else { return }
        pendingWrites[index] = nil
        pending.waiter.resume(returning: .unknown("not applied within \(configuration.writeTimeout)"))
    }

    /// Reads a key with the given consistency. Linearizable and lease reads go through the core
    /// (a follower's are confirmed by the leader: thesis §6.4), then wait until this node has
    /// applied the confirmed index, so any node serves them.
    public func read(_ key: String, consistency: ReadConsistency) async -> ReadOutcome {
        guard await readable(consistency) else { return .unavailable }
        return .value(store.get(key), appliedIndex: appliedIndex)
    }

    /// Keys beginning with `prefix`, in order, at most `limit`, with the given consistency.
    public func range(
        prefix: String, limit: Int = .max, consistency: ReadConsistency
    ) async -> [(key: String, record: KeyValueStore.Record)]? {
        guard await readable(consistency) else { return nil }
        return store.range(prefix: prefix, limit: limit)
    }

    /// Whether the local state may now answer a read of this consistency.
    private func readable(_ consistency: ReadConsistency) async -> Bool {
        guard !stopped else { return false }
        catchUpTicks()
        let mode: ReadMode
        switch consistency {
        case .stale(let bound):
            guard let bound else { return true }
            guard let ticks = core.ticksSinceLeaderContact else { return false }
            return configuration.tickInterval * ticks <= bound
        case .linearizable: mode = .linearizable
        case .lease: mode = .lease
        }
        let requestID = nextReadID
        nextReadID += 1
        let confirmed: UInt64? = await withCheckedContinuation { waiter in
            pendingReads[requestID] = waiter
            core.readIndex(requestID: requestID, mode: mode)
            drain()
        }
        return confirmed != nil
    }

    /// Stops at once, like a crash: no leadership hand-over, nothing more written.
    public func stop() async {
        stopped = true
        for task in tasks { task.cancel() }
        tasks = []
        releaseAllWaiters("node stopped")
        await transport.shutdown()
    }

    // MARK: The Ready loop

    /// Group commit: proposals that arrive together are persisted by one fsync. Instead of
    /// draining after each proposal, drain once the writes already queued on this actor have
    /// been proposed too.
    private func scheduleDrain() {
        guard !drainScheduled else { return }
        drainScheduled = true
        Task {
            self.runScheduledDrain()
        }
    }

    private func runScheduledDrain() {
        drainScheduled = false
        drain()
    }

    private func drain() {
        while !stopped && core.hasReady {
            let ready = core.ready()
            do {
                try persist(ready)
            } catch {
                fail("cannot persist: \(error)")
                return
            }
            for message in ready.messages { transport.send(message) }
            if let snapshot = ready.snapshot, !install(snapshot) { return }
            for entry in ready.committedEntries {
                guard apply(entry) else { return }
            }
            for state in ready.readStates { confirmRead(state) }
            for requestID in ready.failedReads { pendingReads.removeValue(forKey: requestID)?.resume(returning: nil) }
            core.advance()
            if let softState = ready.softState {
                report(softState)
                abandonForwardsToFormerLeaders()
            }
            metrics.record((core.term, core.role, core.commitIndex, core.appliedIndex))
            if let violation = core.safetyViolation {
                fail(violation)
                return
            }
            compactIfDue()
        }
    }

    private func persist(_ ready: Ready) throws {
        if let snapshot = ready.snapshot {
            // The snapshot file first: the WAL's marker must never point past a snapshot on disk.
            try snapshots.save(snapshot)
        }
        wal.append(entries: ready.entries, hardState: ready.hardState, snapshot: ready.snapshot?.metadata)
        // The core decides (`Ready.mustSync`): a Ready that changes only the commit index rides
        // along with the next fsync instead of paying for one.
        if ready.mustSync {
            let started = ContinuousClock.now
            try wal.sync()
            metrics.fsyncDuration.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
        }
        persistedEntries += ready.entries.count
        metrics.persistedEntries.increment(by: ready.entries.count)
    }

    /// One log line per change of role or leader, and the leader-change counter.
    private func report(_ softState: SoftState) {
        if softState.leader != reportedLeader {
            reportedLeader = softState.leader
            if softState.leader != nil { metrics.leaderChanges.increment() }
        }
        logger.info(
            "raft state changed",
            metadata: [
                "role": "\(softState.role.rawValue)", "term": "\(softState.term)",
                "leader": "\(softState.leader.map { "n\($0)" } ?? "none")",
            ])
    }

    private func install(_ snapshot: Snapshot) -> Bool {
        do {
            store = snapshot.data.isEmpty ? KeyValueStore() : try KeyValueStore(snapshot: snapshot.data)
            appliedIndex = snapshot.metadata.index
            snapshotsInstalled += 1
            metrics.snapshotsInstalled.increment()
            logger.info("snapshot installed from the leader", metadata: ["index": "\(snapshot.metadata.index)"])
            releaseReads()
            return true
        } catch {
            fail("snapshot at \(snapshot.metadata.index) does not decode: \(error)")
            return false
        }
    }

    /// Serves the reads whose index has now been applied.
    private func releaseReads() {
        var still: [(index: UInt64, waiter: CheckedContinuation<UInt64?, Never>)] = []
        for waiting in readsAwaitingApply {
            if waiting.index <= appliedIndex {
                waiting.waiter.resume(returning: waiting.index)
            } else {
                still.append(waiting)
            }
        }
        readsAwaitingApply = still
    }

    /// Applies one committed entry; false when it stopped the node. A command this node cannot
    /// decode (written by a newer version, or damaged) stops it: skipping the entry would let
    /// this store drift from the others', silently.
    private func apply(_ entry: LogEntry) -> Bool {
        var result: StoreResult?
        if entry.kind == .command {
            do {
                result = store.apply(try StoreCommand(decoding: entry.data))
            } catch {
                fail(
                    "committed entry \(entry.index) (term \(entry.term)) is not a store command this node can decode: \(error)"
                )
                return false
            }
        }
        appliedIndex = entry.index
        if let pending = pendingWrites.removeValue(forKey: entry.index) {
            if pending.term == entry.term, let result {
                pending.waiter.resume(returning: .applied(result, index: entry.index))
            } else {
                pending.waiter.resume(returning: .notApplied("another entry was committed at \(entry.index)"))
            }
        }
        releaseReads()
        return true
    }

    private func confirmRead(_ state: ReadState) {
        guard let waiter = pendingReads.removeValue(forKey: state.requestID) else { return }
        if state.index <= appliedIndex {
            waiter.resume(returning: state.index)
        } else {
            readsAwaitingApply.append((state.index, waiter))
        }
    }

    private func compactIfDue() {
        let applied = core.appliedIndex
        guard applied == appliedIndex, applied >= core.snapshotIndex + configuration.compactionThreshold else { return }
        do {
            let term = core.term(at: applied) ?? 0
            try core.compact(upTo: applied, snapshotData: store.snapshot)
            try snapshots.save(core.snapshot)
            wal.appendSnapshotMarker(index: applied, term: term)
            try wal.sync()
            try wal.releaseSegments(coveredBy: applied)
        } catch {
            fail("compaction at \(applied) failed: \(error)")
        }
    }

    private func fail(_ reason: String) {
        logger.critical("node stopped", metadata: ["reason": "\(reason)"])
        fatalError = reason
        stopped = true
        for task in tasks { task.cancel() }
        releaseAllWaiters(reason)
    }

    private func releaseAllWaiters(_ reason: String) {
        for (_, pending) in pendingWrites { pending.waiter.resume(returning: .unknown(reason)) }
        pendingWrites = [:]
        for (_, waiter) in pendingForwards { waiter.resume(returning: .unknown(reason)) }
        pendingForwards = [:]
        for (_, waiter) in pendingReads { waiter.resume(returning: nil) }
        pendingReads = [:]
        for waiting in readsAwaitingApply { waiting.waiter.resume(returning: nil) }
        readsAwaitingApply = []
    }
}
