import Logging
import Node
import Synchronization

/// The `PostgresRouteSource` of every node: follows the change feed for
/// `/_sys/topology/postgres` (the moment a topology is applied here, the route changes — every
/// node at the same revision) and maps member names to this gateway's configured endpoints.
/// `writable` is a `WriteVouch`: every `checkInterval` the node reads the topology with a
/// linearizable (lease) read — confirmed by the leader, answered once this node has applied the
/// confirmed index — and the route is writable only within `freshness` of when the last such read
/// was sent, checked at each `currentRoute`. A node cut off from its quorum, behind the leader,
/// or paused therefore stops routing writes within `freshness`, whatever its readiness allows.
public final class StoreRouteSource: PostgresRouteSource {
    /// The committed topology as this node applied it, and at which revision.
    public struct Committed: Sendable, Equatable {
        public var topology: PostgresTopology?
        public var revision: UInt64
        /// Why writes are refused here, or "ready".
        public var writableReason: String
    }

    private struct State {
        var topology: PostgresTopology?
        var revision: UInt64 = 0
        var vouch: WriteVouch
        /// The route last handed to `routeUpdates()` subscribers.
        var published = PostgresRoute.unknown
        var publishedWritable = false
        var continuations: [Int: AsyncStream<PostgresRoute>.Continuation] = [:]
        var next = 0
    }

    private let state: Mutex<State>
    private let tasks = Mutex<[Task<Void, Never>]>([])
    public let endpoints: [String: PostgresEndpoint]
    private let now: @Sendable () -> ContinuousClock.Instant
    private let metrics: TopologyMetrics
    private let logger: Logger
    private static let feedLimits = ChangeSubscription.Limits(maxItems: 16_384, maxBytes: 64 << 20)

    private init(
        endpoints: [String: PostgresEndpoint], freshness: Duration,
        now: @escaping @Sendable () -> ContinuousClock.Instant,
        metrics: TopologyMetrics, logger: Logger
    ) {
        self.endpoints = endpoints
        state = Mutex(State(vouch: WriteVouch(freshness: freshness)))
        self.now = now
        self.metrics = metrics
        self.logger = logger
    }

    /// `now` is the clock `freshness` is measured on (tests pass their own).
    public static func start(
        node: RaftNode, endpoints: [String: PostgresEndpoint], rule: ReadinessRule = .standard,
        checkInterval: Duration = .milliseconds(100), freshness: Duration = .seconds(1),
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }, metrics: TopologyMetrics = TopologyMetrics(),
        logger: Logger = Logger(label: "raftgate.postgres")
    ) async -> StoreRouteSource {
        let source = StoreRouteSource(
            endpoints: endpoints, freshness: freshness, now: now, metrics: metrics, logger: logger)
        metrics.writable(false)
        let (loaded, subscription) = await node.subscribe(limits: feedLimits) { Self.load($0) }
        source.update(topology: loaded.topology, revision: loaded.revision, authoritative: true)
        let feed = Task { [weak source] in
            var subscription = subscription
            while let source {
                switch await subscription.next() {
                case .item(.change(let change)):
                    for event in change.events where event.key == TopologyRecord.key {
                        source.update(
                            topology: event.kind == .put ? TopologyRecord.decode(event.value) : nil,
                            revision: event.revision, authoritative: false)
                    }
                case .item(.replaced(let store)):
                    let loaded = Self.load(store)
                    source.update(topology: loaded.topology, revision: loaded.revision, authoritative: true)
                case .timedOut: continue
                case .ended(.overflowed):
                    let (reloaded, fresh) = await node.subscribe(limits: feedLimits) { Self.load($0) }
                    source.update(topology: reloaded.topology, revision: reloaded.revision, authoritative: true)
                    subscription = fresh
                case .ended(.stopped), .ended(.cancelled):
                    return
                }
            }
            subscription.cancel()
        }
        // One read at a time; a read that hangs only lets the vouch run out.
        let vouching = Task { [weak source] in
            while !Task.isCancelled {
                guard let sentAt = source?.now() else { return }
                let (ready, reason) = RouteDerivation.canVouch(await node.readiness(rule))
                if ready, case .value(let record, _) = await node.read(TopologyRecord.key, consistency: .lease) {
                    source?.confirm(record, sentAt: sentAt)
                } else {
                    source?.refuse(ready ? "the leader did not confirm a read of the topology" : reason)
                }
                try? await Task.sleep(for: checkInterval)
            }
        }
        // Subscribers hear of a vouch running out even while a read is stuck.
        let expiry = Task { [weak source] in
            while !Task.isCancelled {
                try? await Task.sleep(for: checkInterval)
                guard let source else { return }
                source.publish()
            }
        }
        source.tasks.withLock { $0 = [feed, vouching, expiry] }
        return source
    }

    public func stop() {
        let running = tasks.withLock { tasks in
            defer { tasks = [] }
            return tasks
        }
        for task in running { task.cancel() }
        let continuations = state.withLock { state in
            defer { state.continuations = [:] }
            return Array(state.continuations.values)
        }
        for continuation in continuations { continuation.finish() }
    }

    /// Writable only while the last confirmed read is younger than `freshness`, as of now.
    public var currentRoute: PostgresRoute {
        let now = now()
        return state.withLock { state in
            RouteDerivation.route(
                topology: state.topology, endpoints: endpoints, writable: state.vouch.writable(at: now))
        }
    }

    public var committed: Committed {
        let now = now()
        return state.withLock { state in
            Committed(topology: state.topology, revision: state.revision, writableReason: state.vouch.reason(at: now))
        }
    }

    public func routeUpdates() -> AsyncStream<PostgresRoute> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: PostgresRoute.self, bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state in
            let id = state.next
            state.next += 1
            state.continuations[id] = continuation
            continuation.yield(state.published)
            return id
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    private struct Loaded: Sendable {
        var topology: PostgresTopology?
        var revision: UInt64
    }

    private static func load(_ store: KeyValueStore) -> Loaded {
        let record = store.get(TopologyRecord.key)
        return Loaded(topology: record.flatMap { TopologyRecord.decode($0.value) }, revision: record?.modRevision ?? 0)
    }

    /// A topology applied here. Feed events never move the revision back (a confirmed read may
    /// have moved it on already); a whole-store load is authoritative, and one that does move it
    /// back withdraws the vouch until the next confirmed read.
    private func update(topology: PostgresTopology?, revision: UInt64, authoritative: Bool) {
        let (applied, previousEpoch) = state.withLock { state -> (Bool, UInt64?) in
            let previous = state.topology?.epoch
            if revision < state.revision {
                guard authoritative else { return (false, previous) }
                state.vouch.refuse("the topology was reloaded at an older revision")
            }
            state.topology = topology
            state.revision = revision
            return (true, previous)
        }
        guard applied else { return }
        if let topology, let previousEpoch, topology.epoch < previousEpoch {
            // The watcher never commits one (TopologyDecider, TopologyRecord.epochFloor); an
            // epoch-keyed consumer would miss this change, so say so loudly.
            logger.error(
                "committed postgres topology epoch went backwards",
                metadata: ["from": "\(previousEpoch)", "to": "\(topology.epoch)", "revision": "\(revision)"])
        }
        if let topology, previousEpoch != topology.epoch {
            metrics.topologyApplied(epoch: topology.epoch)
            let missing = ([topology.primary?.name].compactMap { $0 } + topology.replicas).filter {
                endpoints[$0] == nil
            }
            if !missing.isEmpty {
                logger.error(
                    "committed postgres topology names members this gateway has no endpoint for",
                    metadata: ["members": "\(missing.joined(separator: ","))"])
            }
        }
        publish()
    }

    /// A linearizable read sent at `sentAt` returned `record`, applied here: take its topology if
    /// the change feed has not delivered it yet, then vouch as of `sentAt`.
    private func confirm(_ record: KeyValueStore.Record?, sentAt: ContinuousClock.Instant) {
        let current = state.withLock { state in
            guard let record else { return state.topology == nil }
            return record.modRevision <= state.revision
        }
        if !current {
            update(
                topology: record.flatMap { TopologyRecord.decode($0.value) },
                revision: record?.modRevision ?? state.withLock { $0.revision }, authoritative: true)
        }
        state.withLock { $0.vouch.confirm(sentAt: sentAt) }
        publish()
    }

    private func refuse(_ reason: String) {
        state.withLock { $0.vouch.refuse(reason) }
        publish()
    }

    /// Hands the route as of now to subscribers when it differs from the last one handed out.
    private func publish() {
        let now = now()
        let (route, flipped, writable, reason, continuations) = state.withLock {
            state -> (PostgresRoute?, Bool, Bool, String, [AsyncStream<PostgresRoute>.Continuation]) in
            let writable = state.vouch.writable(at: now)
            let flipped = writable != state.publishedWritable
            state.publishedWritable = writable
            let reason = state.vouch.reason(at: now)
            let route = RouteDerivation.route(topology: state.topology, endpoints: endpoints, writable: writable)
            guard route != state.published else { return (nil, flipped, writable, reason, []) }
            state.published = route
            return (route, flipped, writable, reason, Array(state.continuations.values))
        }
        if flipped {
            metrics.writable(writable)
            logger.notice(
                writable ? "postgres writes routed again" : "postgres writes stopped: cannot vouch for the topology",
                metadata: ["reason": "\(reason)"])
        }
        guard let route else { return }
        for continuation in continuations { continuation.yield(route) }
    }
}
