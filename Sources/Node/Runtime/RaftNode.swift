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
    /// The core, the durable log and the store, driven one `Ready` at a time (`ReadyLoop`, which
    /// the host simulation runs too).
    var loop: ReadyLoop
    let transport: PeerTransport
    public var store: KeyValueStore { loop.store }
    var pendingWrites: [UInt64: (term: UInt64, waiter: CheckedContinuation<WriteOutcome, Never>)] = [:]
    private var pendingReads: [UInt64: CheckedContinuation<UInt64?, Never>] = [:]
    private var readsAwaitingApply: [(index: UInt64, waiter: CheckedContinuation<UInt64?, Never>)] = []
    /// Reads whose barrier is confirmed, waiting for this node to apply its index (for the tests).
    var readsWaitingForApply: Int { readsAwaitingApply.count }
    /// Tests only, nil otherwise: inbound Raft messages it returns true for are dropped before the
    /// core sees them — a follower's appends held back while heartbeats and the answers to its
    /// reads still arrive, which timing alone cannot arrange.
    var dropsInbound: (@Sendable (Message) -> Bool)?
    func setDropsInbound(_ drops: (@Sendable (Message) -> Bool)?) { dropsInbound = drops }
    /// Request ids start at a random point each boot, so a late answer to a request made before a
    /// restart can never be taken for the answer to a new one.
    private var nextReadID = UInt64.random(in: 1...(UInt64.max >> 1))
    private var pendingForwards: [UInt64: CheckedContinuation<WriteOutcome, Never>] = [:]
    private var nextForwardID = UInt64.random(in: 1...(UInt64.max >> 1))
    /// Who each forwarded write went to: only that node's answer counts.
    private var forwardTargets: [UInt64: NodeID] = [:]
    private var drainScheduled = false
    /// What this leader proposed and has not applied yet (`WriteLimits.maxUncommittedBytes`).
    private var uncommitted = UncommittedLedger()
    private let admission: WriteAdmission
    /// Whether the last put refused for the quota still stands: set by the refusal, cleared once
    /// the store shrinks below what it held then (`raftgate_store_quota_alarm`).
    private var quotaAlarmAt: UInt64?
    /// The idempotency stamps this node puts on keyed commands while it leads, bounded by the
    /// log's clock and monotonic time (`IdempotencyStamper`).
    private var stamper = IdempotencyStamper()
    private let monotonicOrigin = ContinuousClock.now
    private var lastTick = ContinuousClock.now
    private var tasks: [Task<Void, Never>] = []
    var stopped = false
    /// The highest commit index a leader has told this node of (its own on the leader): how far
    /// the cluster has committed, which this node's applied index is measured against for readiness.
    var knownLeaderCommit: UInt64 = 0
    /// Raft addresses of the peers, from the flags and from the replicated member records.
    var peerAddresses: [NodeID: (host: String, port: Int)] = [:]
    public private(set) var snapshotsInstalled = 0
    /// Snapshot chunks dropped for exceeding `PeerConnectionLimits.maxIncomingSnapshotBytes`.
    public private(set) var snapshotChunksRefused = 0
    /// A leader retries a refused snapshot every few ticks: one log line per 10 s is enough.
    private let snapshotRefusalLog = LogThrottle(interval: .seconds(10))
    /// Log entries made durable, and the fsyncs that did it (entries per fsync = group commit).
    public private(set) var persistedEntries = 0
    public var walFsyncs: Int { loop.storage.fsyncCount }
    public private(set) var fatalError: String?
    /// Every applied change, published once; watches, caches and leader services subscribe here.
    public nonisolated let changes = ChangeFeed()
    /// Role, leader and term as the Ready loop reports them; leader-only services follow it.
    public nonisolated let leadership = LeadershipSignal()
    /// Started while this node leads and stopped when it does not (lease expiry is one).
    public nonisolated let leaderServices: LeaderServices
    /// The leader's lease clocks (inactive on followers).
    public nonisolated let lessor = Lessor()
    private var pendingLeaseQueries: [UInt64: (target: NodeID, waiter: CheckedContinuation<LeaseAnswer, Never>)] = [:]
    /// A lease status lists at most this many of its keys (the answer must fit a peer frame).
    public static let maxListedLeaseKeys = 1000
    let logger: Logger
    private let metrics: NodeMetrics
    /// The leader this node last reported, so a change is logged and counted once.
    private var reportedLeader: NodeID?

    public static func start(_ configuration: NodeConfiguration) async throws -> RaftNode {
        let directory = configuration.dataDirectory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let snapshots = try SnapshotStore(directory: directory + "/snapshots")
        var logger = Logger(label: "raftgate.node")
        logger[metadataKey: "node"] = "\(configuration.id)"
        try configuration.writeFailureMarker.check(dataDirectory: directory)
        try persistBootstrapConfiguration(configuration, snapshots: snapshots)
        let fileSystem: any WALFileSystem =
            configuration.faultTrigger.map { FaultInjectingFileSystem(trigger: $0) } ?? POSIXFileSystem()
        let opened = try NodeStorage.open(
            walDirectory: directory + "/wal", fileSystem: fileSystem, snapshots: snapshots,
            initialVoters: configuration.initialVoters)
        if let tail = opened.truncatedTail {
            logger.warning(
                "WAL tail truncated after a crash",
                metadata: [
                    "file": "\(tail.file)", "offset": "\(tail.offset)", "bytes": "\(tail.bytes)",
                    "reason": "\(tail.reason)",
                ])
        }
        var loop = try ReadyLoop(
            opened: opened, options: configuration.raftOptions, compactionThreshold: configuration.compactionThreshold,
            historyLimits: configuration.watchHistory)
        loop.compactionBytes = configuration.compactionBytes
        let transport = try await PeerTransport.start(
            id: configuration.id, host: configuration.raftHost, port: configuration.raftPort,
            clusterKey: configuration.clusterKey, tls: configuration.peerTLS, limits: configuration.peerLimits,
            metricsFactory: configuration.metricsFactory)
        let node = RaftNode(configuration: configuration, loop: loop, transport: transport, logger: logger)
        await node.learnPeerAddresses()
        await node.run()
        await node.leaderServices.add(
            LeaseExpiry(
                node: node, lessor: node.lessor, checkInterval: configuration.leaseCheckInterval,
                expired: node.metrics.leasesExpired, logger: logger))
        await node.leaderServices.add(
            LearnerPromotion(node: node, interval: configuration.tickInterval * 4, logger: logger))
        await node.leaderServices.follow(node.leadership)
        return node
    }

    private init(configuration: NodeConfiguration, loop: ReadyLoop, transport: PeerTransport, logger: Logger) {
        self.logger = logger
        self.leaderServices = LeaderServices(logger: logger)
        self.metrics = NodeMetrics(factory: configuration.metricsFactory)
        self.id = configuration.id
        self.configuration = configuration
        self.loop = loop
        self.transport = transport
        self.admission = WriteAdmission(limits: configuration.writeLimits)
        metrics.quotaBytes.record(Int64(clamping: configuration.writeLimits.quotaBytes))
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

    public var status: RaftStatus { loop.core.status }
    public var isLeader: Bool { loop.core.role == .leader }
    /// How long ago this node last heard from its leader (zero on the leader, nil without one).
    public var leaderContactAge: Duration? {
        loop.core.ticksSinceLeaderContact.map { configuration.tickInterval * $0 }
    }
    public var raftPort: Int { transport.localAddress.port ?? configuration.raftPort }
    /// The store's revision, compacted revision and lease count as this node has applied them
    /// (read without copying the store).
    public var storeStatus: StoreStatus {
        StoreStatus(
            revision: loop.store.revision, compactRevision: loop.store.history.compactRevision,
            leases: loop.store.leaseCount, keys: loop.store.count, dataBytes: loop.store.dataBytes,
            quotaBytesUsed: loop.store.quotaBytesUsed)
    }

    /// A change-feed subscription together with whatever `read` takes from the store at the same
    /// applied index, so nothing is missed or seen twice between the read and the first item.
    public func subscribe<Value: Sendable>(
        limits: ChangeSubscription.Limits = .init(), reading read: @Sendable (KeyValueStore) -> Value
    ) -> (Value, ChangeSubscription) {
        (read(loop.store), changes.subscribe(limits: limits))
    }

    /// The peer transport's counters: connections, drops, and what it refused.
    public nonisolated var transportStatistics: TransportStatistics { transport.statistics }
    public nonisolated var openPeerConnections: Int { transport.openInboundConnections }
    /// Inbound peer connections still in their handshake.
    public nonisolated var pendingPeerConnections: Int { transport.pendingInboundConnections }

    // MARK: Inputs

    private func handle(_ envelope: PeerEnvelope) {
        guard !stopped else { return }
        switch envelope {
        case .raft(let message):
            if let dropsInbound, dropsInbound(message) { return }
            if case .installSnapshot(let chunk) = message.payload,
                !configuration.peerLimits.admits(offset: chunk.offset, count: chunk.data.count)
            {
                // Dropped before the core buffers it: the leader retries, and is refused again
                // until an operator raises the bound (or the store shrinks).
                snapshotChunksRefused += 1
                metrics.snapshotChunksRefused.increment()
                if let suppressed = snapshotRefusalLog.admit() {
                    logger.warning(
                        "refused a snapshot larger than maxIncomingSnapshotBytes",
                        metadata: [
                            "from": "n\(message.from)", "bytes": "\(chunk.offset + chunk.data.count)",
                            "limit": "\(configuration.peerLimits.maxIncomingSnapshotBytes)",
                            "similarSuppressed": "\(suppressed)",
                        ])
                }
                return
            }
            catchUpTicks()
            noteLeaderCommit(message)
            loop.core.step(message)
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
        case .leaseQuery(let query):
            catchUpTicks()
            let answer = answerLeaseQuery(query.lease, refresh: query.refresh)
            transport.send(
                .leaseQueryResult(
                    LeaseQueryResult(requestID: query.requestID, from: id, to: query.from, answer: answer)))
        case .leaseQueryResult(let result):
            guard pendingLeaseQueries[result.requestID]?.target == result.from else { return }
            pendingLeaseQueries.removeValue(forKey: result.requestID)?.waiter.resume(returning: result.answer)
        }
    }

    /// Delivers every tick the monotonic clock says has elapsed.
    func catchUpTicks() {
        guard !stopped else { return }
        let now = ContinuousClock.now
        var delivered = false
        while now - lastTick >= configuration.tickInterval {
            lastTick += configuration.tickInterval
            loop.core.tick()
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

    /// A write that is `.unknown` after `timeout` rather than the configured `writeTimeout`: for
    /// callers whose own clients give up sooner (the etcd API re-submits a keyed command within
    /// Patroni's per-node timeout).
    public func write(_ command: StoreCommand, timeout: Duration) async -> WriteOutcome {
        await write(command, forward: true, timeout: min(timeout, configuration.writeTimeout))
    }

    /// Proposes on this node only, and only while it leads `term`: for leader-only services,
    /// whose decisions (a lease's expiry, say) hold for the term they were made in and must not
    /// be forwarded to, or land under, another leader.
    public func propose(_ command: StoreCommand, inTerm term: UInt64) async -> WriteOutcome {
        guard !stopped, loop.core.role == .leader, loop.core.term == term else {
            return .notLeader(leader: loop.core.leader)
        }
        return await write(command, forward: false)
    }

    private func write(_ command: StoreCommand, forward: Bool, timeout: Duration? = nil) async -> WriteOutcome {
        let timeout = timeout ?? configuration.writeTimeout
        guard !stopped else { return .notLeader(leader: nil) }
        var command = command
        var encoded = command.encoded
        // Larger entries would exceed what peers accept in one frame (and what the WAL accepts
        // in one record): refuse them here, before they can wedge replication.
        guard encoded.count <= configuration.maxCommandBytes else {
            return .notApplied("command of \(encoded.count) bytes exceeds \(configuration.maxCommandBytes)")
        }
        catchUpTicks()
        if forward, loop.core.role != .leader, let leader = loop.core.leader {
            // Membership says the leader is suspect or dead: fail fast so the client retries
            // (through HAProxy, at the next leader) instead of waiting out the forward timeout.
            if unreachablePeers.contains(leader) { return .notLeader(leader: nil) }
            let outcome = await forwardWrite(command, to: leader, timeout: timeout)
            // The leader refused it: this node's alarm and counters say so too.
            if case .refused(let refusal) = outcome { refused(refusal) }
            return outcome
        }
        if loop.core.role == .leader {
            // The log's clock for idempotency keys: this leader's wall time, bounded by how far
            // the log's clock can have moved, stamped once, here.
            if command.idempotencyKey != nil, command.stamp == 0 {
                // What this node applied counts even if no Ready step has reported it yet (a store
                // restored from a snapshot, say): the first stamp must not jump from 0.
                stamper.observe(loop.store.idempotency.clock, at: ContinuousClock.now - monotonicOrigin)
                command.stamp = stamper.stamp(
                    wallMilliseconds: UInt64(max(0, Date().timeIntervalSince1970 * 1000)),
                    at: ContinuousClock.now - monotonicOrigin)
                encoded = command.encoded
            }
            let load = WriteAdmission.Load(
                storeBytes: loop.store.quotaBytesUsed, uncommittedBytes: uncommitted.bytes,
                pendingWrites: pendingWrites.count)
            let remembered =
                command.idempotencyKey.map {
                    loop.store.idempotency.lookup($0, fingerprint: IdempotencyTable.fingerprint(command)) != .absent
                } ?? false
            if let refusal = admission.check(
                command, encodedBytes: encoded.count, load: load, remembered: remembered, byLeaderService: !forward)
            {
                refused(refusal)
                return .refused(refusal)
            }
        }
        switch loop.core.propose(encoded) {
        case .rejected(.transferInProgress) where forward:
            // A drain is handing leadership over: wait for the new leader, then forward to it.
            await awaitTransferEnd()
            return await write(command, forward: true, timeout: timeout)
        case .rejected(.notLeader(let leader)):
            metrics.proposalsRefused.increment()
            return .notLeader(leader: leader)
        case .rejected(let reason):
            metrics.proposalsRefused.increment()
            return .notApplied("\(reason)")
        case .accepted(let index, let term):
            metrics.proposals.increment()
            uncommitted.proposed(index: index, bytes: encoded.count)
            return await withCheckedContinuation { waiter in
                // An older proposal at this index was truncated (this node lost and regained
                // leadership): it was never committed, so its client learns that now.
                pendingWrites[index]?.waiter.resume(returning: .notApplied("truncated before it committed"))
                pendingWrites[index] = (term, waiter)
                scheduleDrain()
                Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    await self?.expireWrite(index: index, term: term, after: timeout)
                }
            }
        }
    }

    private func refused(_ refusal: WriteRefusal) {
        metrics.writesRefused(refusal).increment()
        if case .quotaExceeded(let used, _) = refusal {
            if quotaAlarmAt == nil {
                logger.warning(
                    "store quota reached: puts are refused until keys are deleted",
                    metadata: ["bytes": "\(used)", "quota": "\(configuration.writeLimits.quotaBytes)"])
            }
            quotaAlarmAt = used
            metrics.quotaAlarm.record(1)
        }
    }

    private func forwardWrite(_ command: StoreCommand, to leader: NodeID, timeout: Duration) async -> WriteOutcome {
        let requestID = nextForwardID
        nextForwardID += 1
        return await withCheckedContinuation { waiter in
            pendingForwards[requestID] = waiter
            forwardTargets[requestID] = leader
            transport.send(
                .forwardedWrite(ForwardedWrite(requestID: requestID, from: id, to: leader, command: command.encoded)))
            Task { [weak self] in
                try? await Task.sleep(for: timeout)
                await self?.expireForward(requestID, after: timeout)
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
        if peer == loop.core.leader {
            logger.info("membership suspects the leader; forwarded writes fail fast", metadata: ["leader": "n\(peer)"])
        }
        for (requestID, target) in forwardTargets where target == peer {
            forwardTargets[requestID] = nil
            pendingForwards.removeValue(forKey: requestID)?.resume(
                returning: .unknown("forwarded to n\(peer), which membership now suspects"))
        }
        for (requestID, pending) in pendingLeaseQueries where pending.target == peer {
            pendingLeaseQueries.removeValue(forKey: requestID)?.waiter.resume(
                returning: .unavailable("asked n\(peer), which membership now suspects"))
        }
    }

    /// Peers membership holds suspect, dead or gone.
    public private(set) var unreachablePeers: Set<NodeID> = []

    /// Writes forwarded to a node that is no longer the leader will not be answered in time:
    /// report them as unknown now (the client retries at once) instead of at the timeout.
    private func abandonForwardsToFormerLeaders() {
        for (requestID, target) in forwardTargets where target != loop.core.leader {
            forwardTargets[requestID] = nil
            pendingForwards.removeValue(forKey: requestID)?.resume(
                returning: .unknown("forwarded to n\(target), which no longer leads"))
        }
        for (requestID, pending) in pendingLeaseQueries where pending.target != loop.core.leader {
            pendingLeaseQueries.removeValue(forKey: requestID)?.waiter.resume(
                returning: .unavailable("asked n\(pending.target), which no longer leads"))
        }
    }

    private func expireForward(_ requestID: UInt64, after timeout: Duration) {
        forwardTargets[requestID] = nil
        pendingForwards.removeValue(forKey: requestID)?.resume(
            returning: .unknown("forwarded to the leader, no answer within \(timeout)"))
    }

    private func expireWrite(index: UInt64, term: UInt64, after timeout: Duration) {
        guard let pending = pendingWrites[index], pending.term == term else { return }
        pendingWrites[index] = nil
        pending.waiter.resume(returning: .unknown("not applied within \(timeout)"))
    }

    /// Reads a key with the given consistency. Linearizable and lease reads go through the core
    /// (a follower's are confirmed by the leader: thesis §6.4), then wait until this node has
    /// applied the confirmed index, so any node serves them.
    public func read(_ key: String, consistency: ReadConsistency) async -> ReadOutcome {
        guard await readable(consistency) != nil else { return .unavailable }
        return .value(loop.store.get(key), appliedIndex: loop.appliedIndex)
    }

    /// A range read (continuing after `after`, if given), and the store revision it was read at
    /// (where a watch continues from); keys under `/_sys/` only with `includeReserved`, which
    /// every caller states (the gateway from `ReservedKeys.access`). The barrier and the snapshot
    /// of the key index are taken on the actor (`rangeSnapshot`); the scan, and the copy of up to
    /// `limit` rows, run here, on the caller's task off the actor, so a large read does not hold
    /// up the writes, heartbeats and votes queued behind it. The scan yields every
    /// `SortedKeyIndex.rowsPerSlice` rows, so it does not hold a thread of the pool — where the
    /// actor runs too — for the whole answer either.
    @concurrent
    public nonisolated func range(
        prefix: String, after: String? = nil, limit: Int = .max, consistency: ReadConsistency, includeReserved: Bool
    ) async -> (rows: [(key: String, record: KeyValueStore.Record)], revision: UInt64)? {
        guard let snapshot = await rangeSnapshot(consistency) else { return nil }
        let rows = await snapshot.index.range(
            prefix: prefix, after: after, limit: limit, includeReserved: includeReserved, pause: { await Task.yield() })
        return (rows, snapshot.revision)
    }

    /// An etcd key range read (`StoreTransaction.KeyRange`): at most `limit` keys (0: all), how
    /// many the range holds, and the revision it was read at. Like `range`, the barrier and the
    /// snapshot are taken on the actor and the scan runs here, off it.
    @concurrent
    public nonisolated func keyValues(
        in range: StoreTransaction.KeyRange, limit: UInt64, includeReserved: Bool, consistency: ReadConsistency
    ) async -> (keyValues: [TransactionOutcome.KeyValue], count: UInt64, revision: UInt64)? {
        guard let snapshot = await rangeSnapshot(consistency) else { return nil }
        let found = snapshot.index.keyValues(in: range, limit: limit, includeReserved: includeReserved)
        return (found.keyValues, found.count, snapshot.revision)
    }

    /// The store's key index for a range read of this consistency, taken after the read's
    /// barrier. `readable` returns once the store has applied the index the barrier confirmed
    /// (the leader's commit index as of the read, confirmed by a quorum or by the lease), and
    /// there is no suspension point between its return and the copy below: the snapshot is the
    /// store exactly as of `loop.appliedIndex`, which is at least that confirmed index.
    func rangeSnapshot(_ consistency: ReadConsistency) async -> RangeSnapshot? {
        guard let confirmed = await readable(consistency) else { return nil }
        return RangeSnapshot(
            index: loop.store.keyIndex, revision: loop.store.revision, appliedIndex: loop.appliedIndex,
            confirmedIndex: confirmed)
    }

    /// A read of the applied store at the given consistency, run here on the actor (so `body` must
    /// do bounded work); nil when the read could not be confirmed.
    public func read<Value: Sendable>(
        consistency: ReadConsistency, _ body: @Sendable (KeyValueStore) -> Value
    ) async -> Value? {
        guard await readable(consistency) != nil else { return nil }
        return body(loop.store)
    }

    /// Whether the local state may now answer a read of this consistency: nil if not, else the
    /// index the read must reflect, which this node has applied (a stale read: its applied index).
    private func readable(_ consistency: ReadConsistency) async -> UInt64? {
        guard !stopped else { return nil }
        catchUpTicks()
        let mode: ReadMode
        switch consistency {
        case .stale(let bound):
            guard let bound else { return loop.appliedIndex }
            guard let ticks = loop.core.ticksSinceLeaderContact else { return nil }
            return configuration.tickInterval * ticks <= bound ? loop.appliedIndex : nil
        case .linearizable: mode = .linearizable
        case .lease: mode = .lease
        }
        let requestID = nextReadID
        nextReadID += 1
        let confirmed: UInt64? = await withCheckedContinuation { waiter in
            pendingReads[requestID] = waiter
            loop.core.readIndex(requestID: requestID, mode: mode)
            drain()
        }
        return confirmed
    }

    // MARK: Leases

    /// Keeps lease `id` alive: it lives its whole TTL from now. Answered by the leader, from its
    /// lease clocks; a follower forwards the keepalive over the peer transport. Keepalives never
    /// enter the log (etcd's choice): a new leader restarts every TTL in full instead.
    public func keepAlive(_ id: UInt64) async -> LeaseAnswer {
        await leaseQuery(id, refresh: true)
    }

    /// Lease `id`'s TTL, time left on the leader's clock, and attached keys (from the leader).
    public func leaseStatus(_ id: UInt64) async -> LeaseAnswer {
        await leaseQuery(id, refresh: false)
    }

    private func leaseQuery(_ lease: UInt64, refresh: Bool) async -> LeaseAnswer {
        guard !stopped else { return .unavailable("node stopped") }
        catchUpTicks()
        if loop.core.role == .leader { return answerLeaseQuery(lease, refresh: refresh) }
        guard let leader = loop.core.leader, !unreachablePeers.contains(leader) else {
            return .unavailable("no leader known")
        }
        let requestID = nextForwardID
        nextForwardID += 1
        let timeout = configuration.writeTimeout
        return await withCheckedContinuation { waiter in
            pendingLeaseQueries[requestID] = (leader, waiter)
            transport.send(
                .leaseQuery(LeaseQuery(requestID: requestID, from: id, to: leader, lease: lease, refresh: refresh)))
            Task { [weak self] in
                try? await Task.sleep(for: timeout)
                await self?.expireLeaseQuery(requestID)
            }
        }
    }

    private func expireLeaseQuery(_ requestID: UInt64) {
        pendingLeaseQueries.removeValue(forKey: requestID)?.waiter.resume(
            returning: .unavailable("the leader did not answer within \(configuration.writeTimeout)"))
    }

    /// The leader's answer. Only while its quorum lease holds: then no other leader can exist, so
    /// a keepalive acknowledged here cannot be overtaken by a leader that never heard of it (a
    /// deposed leader that does not know it yet would otherwise promise a lifetime the new
    /// leader, counting from its election, may not grant).
    private func answerLeaseQuery(_ lease: UInt64, refresh: Bool) -> LeaseAnswer {
        guard !stopped, loop.core.role == .leader else { return .unavailable("not the leader") }
        if let refusal = LeaseQueryRule.refusal(
            leaseValid: loop.core.status.leaseValid, appliedIndex: loop.appliedIndex,
            firstIndexOfTerm: loop.core.firstIndexOfTerm)
        {
            return .unavailable(refusal)
        }
        let ttlMilliseconds = loop.store.leaseTTL(lease)
        let answer = LeaseQueryRule.answer(ttlMilliseconds: ttlMilliseconds) {
            let ttl = Duration.milliseconds(Int64(clamping: ttlMilliseconds ?? 0))
            let now = ContinuousClock.now
            return refresh
                ? lessor.refresh(lease, ttl: ttl, term: loop.core.term, now: now)
                : lessor.remaining(lease, ttl: ttl, term: loop.core.term, now: now)
        }
        switch answer {
        case .alive(let ttlMilliseconds, let remaining):
            let keys = refresh ? [] : loop.store.lease(lease)?.keys ?? []
            return .found(
                LeaseInfo(
                    id: lease, ttlMilliseconds: ttlMilliseconds,
                    remainingMilliseconds: UInt64(clamping: remaining.nanoseconds / 1_000_000),
                    keys: Array(keys.prefix(Self.maxListedLeaseKeys)), keyCount: keys.count))
        case .notFound: return .notFound
        case .retry(let reason): return .unavailable(reason)
        }
    }

    /// Stops at once, like a crash: no leadership hand-over, nothing more written. Subscriptions
    /// end (`.stopped`), so watches close, and leader services are cancelled.
    public func stop() async {
        stopped = true
        for task in tasks { task.cancel() }
        tasks = []
        releaseAllWaiters("node stopped")
        changes.stop()
        leadership.finish()
        await leaderServices.stop()
        await transport.shutdown()
    }

    // MARK: The Ready loop

    /// Group commit: proposals that arrive together are persisted by one fsync. Instead of
    /// draining after each proposal, drain once the writes already queued on this actor have
    /// been proposed too.
    func scheduleDrain() {
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

    func drain() {
        while !stopped, let step = loop.next() {
            if let fsync = step.fsync { metrics.fsyncDuration.recordNanoseconds(fsync.nanoseconds) }
            persistedEntries += step.persistedEntries
            metrics.persistedEntries.increment(by: step.persistedEntries)
            if let failure = step.failure {
                if step.storageFailed { configuration.writeFailureMarker.record(failure) }
                fail(failure)
                return
            }
            for message in step.messages { transport.send(message) }
            if loop.store.idempotency.clock > stamper.seen {
                stamper.observe(loop.store.idempotency.clock, at: ContinuousClock.now - monotonicOrigin)
            }
            if let installed = step.installedStore, let index = step.installedSnapshot {
                changes.publish(.replaced(installed))
                learnPeerAddresses()
                snapshotsInstalled += 1
                metrics.snapshotsInstalled.increment()
                logger.info("snapshot installed from the leader", metadata: ["index": "\(index)"])
            }
            for applied in step.applied { answer(applied) }
            releaseReads()
            for state in step.readStates { confirmRead(state) }
            for requestID in step.failedReads { pendingReads.removeValue(forKey: requestID)?.resume(returning: nil) }
            if let softState = step.softState {
                report(softState)
                abandonForwardsToFormerLeaders()
            }
            uncommitted.applied(through: loop.appliedIndex)
            if loop.core.role != .leader { uncommitted.clear() }
            metrics.uncommittedBytes.record(Int64(clamping: uncommitted.bytes))
            if let alarm = quotaAlarmAt, loop.store.quotaBytesUsed < alarm {
                quotaAlarmAt = nil
                metrics.quotaAlarm.record(0)
            }
            metrics.record((loop.core.term, loop.core.role, loop.core.commitIndex, loop.core.appliedIndex))
            metrics.record(storeStatus)
        }
    }

    /// One log line per change of role or leader, and the leader-change counter.
    private func report(_ softState: SoftState) {
        leadership.update(
            Leadership(term: softState.term, isLeader: softState.role == .leader, leader: softState.leader))
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

    /// Tells the watchers what an applied entry changed, and its client how it ended.
    private func answer(_ applied: AppliedEntry) {
        if let change = applied.change {
            changes.publish(.change(change))
            learnPeerAddresses(from: change)
        }
        let entry = applied.entry
        guard let pending = pendingWrites.removeValue(forKey: entry.index) else { return }
        // A configuration change has no store result: applying it is its success.
        let configured: StoreResult? =
            entry.kind == .configurationChange ? .applied(revision: loop.store.revision, found: true) : nil
        if pending.term == entry.term, let result = applied.result ?? configured {
            pending.waiter.resume(returning: .applied(result, index: entry.index))
        } else {
            pending.waiter.resume(returning: .notApplied("another entry was committed at \(entry.index)"))
        }
    }

    /// Serves the reads whose index has now been applied.
    private func releaseReads() {
        var still: [(index: UInt64, waiter: CheckedContinuation<UInt64?, Never>)] = []
        for waiting in readsAwaitingApply {
            if waiting.index <= loop.appliedIndex {
                waiting.waiter.resume(returning: waiting.index)
            } else {
                still.append(waiting)
            }
        }
        readsAwaitingApply = still
    }

    private func confirmRead(_ state: ReadState) {
        guard let waiter = pendingReads.removeValue(forKey: state.requestID) else { return }
        if state.index <= loop.appliedIndex {
            waiter.resume(returning: state.index)
        } else {
            readsAwaitingApply.append((state.index, waiter))
        }
    }

    private func fail(_ reason: String) {
        logger.critical("node stopped", metadata: ["reason": "\(reason)"])
        fatalError = reason
        stopped = true
        for task in tasks { task.cancel() }
        releaseAllWaiters(reason)
        changes.stop()
        leadership.finish()
        let services = leaderServices
        Task { await services.stop() }
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
        for (_, pending) in pendingLeaseQueries { pending.waiter.resume(returning: .unavailable(reason)) }
        pendingLeaseQueries = [:]
    }
}
