import Logging
import Node
import Synchronization

/// The `PostgresRouteSource` of every node: follows the change feed for
/// `/_sys/topology/postgres` (the moment a topology is applied here, the route changes — every
/// node at the same revision) and maps member names to this gateway's configured endpoints.
/// `writable` follows `RouteDerivation.canVouch`, re-checked every `checkInterval`, so a node
/// that loses its quorum or its leader stops routing writes within the readiness rule's silence
/// bound plus one interval.
public final class StoreRouteSource: PostgresRouteSource {
    /// The committed topology as this node applied it, and at which revision.
    public struct Committed: Sendable, Equatable {
        public var topology: PostgresTopology?
        public var revision: UInt64
        /// Why writes are refused here, or "ready".
        public var writableReason: String
    }

    private struct State {
        var committed = Committed(topology: nil, revision: 0, writableReason: "starting")
        var writable = false
        var route = PostgresRoute.unknown
        var continuations: [Int: AsyncStream<PostgresRoute>.Continuation] = [:]
        var next = 0
    }

    private let state = Mutex(State())
    private let tasks = Mutex<[Task<Void, Never>]>([])
    public let endpoints: [String: PostgresEndpoint]
    private let metrics: TopologyMetrics
    private let logger: Logger
    private static let feedLimits = ChangeSubscription.Limits(maxItems: 16_384, maxBytes: 64 << 20)

    private init(endpoints: [String: PostgresEndpoint], metrics: TopologyMetrics, logger: Logger) {
        self.endpoints = endpoints
        self.metrics = metrics
        self.logger = logger
    }

    public static func start(
        node: RaftNode, endpoints: [String: PostgresEndpoint], rule: ReadinessRule = .standard,
        checkInterval: Duration = .milliseconds(100), metrics: TopologyMetrics = TopologyMetrics(),
        logger: Logger = Logger(label: "raftgate.postgres")
    ) async -> StoreRouteSource {
        let source = StoreRouteSource(endpoints: endpoints, metrics: metrics, logger: logger)
        let (loaded, subscription) = await node.subscribe(limits: feedLimits) { Self.load($0) }
        source.update(topology: loaded.topology, revision: loaded.revision)
        source.refresh(await node.readiness(rule))
        let feed = Task { [weak source] in
            var subscription = subscription
            while let source {
                switch await subscription.next() {
                case .item(.change(let change)):
                    for event in change.events where event.key == TopologyRecord.key {
                        source.update(
                            topology: event.kind == .put ? TopologyRecord.decode(event.value) : nil,
                            revision: event.revision)
                    }
                case .item(.replaced(let store)):
                    let loaded = Self.load(store)
                    source.update(topology: loaded.topology, revision: loaded.revision)
                case .timedOut: continue
                case .ended(.overflowed):
                    let (reloaded, fresh) = await node.subscribe(limits: feedLimits) { Self.load($0) }
                    source.update(topology: reloaded.topology, revision: reloaded.revision)
                    subscription = fresh
                case .ended(.stopped), .ended(.cancelled):
                    return
                }
            }
            subscription.cancel()
        }
        let vouching = Task { [weak source] in
            while !Task.isCancelled {
                try? await Task.sleep(for: checkInterval)
                guard let source else { return }
                source.refresh(await node.readiness(rule))
            }
        }
        source.tasks.withLock { $0 = [feed, vouching] }
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

    public var currentRoute: PostgresRoute { state.withLock { $0.route } }

    public var committed: Committed { state.withLock { $0.committed } }

    public func routeUpdates() -> AsyncStream<PostgresRoute> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: PostgresRoute.self, bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state in
            let id = state.next
            state.next += 1
            state.continuations[id] = continuation
            continuation.yield(state.route)
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

    private func update(topology: PostgresTopology?, revision: UInt64) {
        let (epochMoved, previousEpoch) = state.withLock { state -> (Bool, UInt64?) in
            let previous = state.committed.topology?.epoch
            state.committed.topology = topology
            state.committed.revision = revision
            return (previous != topology?.epoch, previous)
        }
        if let topology, let previousEpoch, topology.epoch < previousEpoch {
            // The watcher never commits one (TopologyDecider, TopologyRecord.epochFloor); an
            // epoch-keyed consumer would miss this change, so say so loudly.
            logger.error(
                "committed postgres topology epoch went backwards",
                metadata: ["from": "\(previousEpoch)", "to": "\(topology.epoch)", "revision": "\(revision)"])
        }
        if let topology, epochMoved {
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

    private func refresh(_ readiness: Readiness) {
        let (writable, reason) = RouteDerivation.canVouch(readiness)
        let changed = state.withLock { state -> Bool in
            state.committed.writableReason = reason
            guard state.writable != writable else { return false }
            state.writable = writable
            return true
        }
        if changed {
            metrics.writable(writable)
            logger.notice(
                writable ? "postgres writes routed again" : "postgres writes stopped: cannot vouch for the topology",
                metadata: ["reason": "\(reason)"])
            publish()
        }
    }

    private func publish() {
        let (route, continuations) = state.withLock {
            state -> (PostgresRoute?, [AsyncStream<PostgresRoute>.Continuation]) in
            let route = RouteDerivation.route(
                topology: state.committed.topology, endpoints: endpoints, writable: state.writable)
            guard route != state.route else { return (nil, []) }
            state.route = route
            return (route, Array(state.continuations.values))
        }
        guard let route else { return }
        for continuation in continuations { continuation.yield(route) }
    }
}
