import CoreMetrics
import Logging
import NIOConcurrencyHelpers

/// Every project config, decoded, on this node: the apply loop's change feed updates it the
/// moment a change is applied here (push, not a TTL poll), and reading it never waits on the
/// network or on Raft. Whatever is derived from a config (a tenant's pool, its rate limit)
/// registers with `observe` and is told of each change.
public final class ConfigCache: Sendable {
    public struct Entry: Sendable, Hashable {
        public var config: ProjectConfig
        /// The document's modRevision: what `If-Match` compares.
        public var revision: UInt64
    }

    public enum Change: Sendable, Hashable {
        case updated(project: String, Entry)
        case removed(project: String, revision: UInt64)

        public var project: String {
            switch self {
            case .updated(let project, _), .removed(let project, _): project
            }
        }
    }

    /// Identifies an observer, to stop observing.
    public struct Observation: Sendable, Hashable {
        let id: UInt64
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// The store revision the cache reflects.
        var revision: UInt64 = 0
        /// The revision of the newest config change applied.
        var configRevision: UInt64 = 0
        var observers: [UInt64: @Sendable (Change) -> Void] = [:]
        var nextObserver: UInt64 = 0
    }

    private let state = NIOLockedValueBox(State())
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)
    private let logger: Logger
    private let revisionGauge: Gauge
    private let projectsGauge: Gauge
    private static let feedLimits = ChangeSubscription.Limits(maxItems: 16_384, maxBytes: 64 << 20)

    private init(factory: any MetricsFactory, logger: Logger) {
        self.logger = logger
        revisionGauge = Gauge(label: "raftgate_config_revision", factory: factory)
        projectsGauge = Gauge(label: "raftgate_config_projects", factory: factory)
    }

    /// Loads every config from `node`'s applied store and follows its change feed until the node
    /// stops (or `stop`).
    public static func start(
        node: RaftNode, metricsFactory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger = Logger(label: "raftgate.config")
    ) async -> ConfigCache {
        let cache = ConfigCache(factory: metricsFactory, logger: logger)
        let (loaded, subscription) = await node.subscribe(limits: feedLimits) { Self.load($0) }
        cache.replace(with: loaded)
        cache.task.withLockedValue { task in
            task = Task { [weak cache] in
                var subscription = subscription
                while let cache {
                    switch await subscription.next() {
                    case .item(.change(let change)): cache.apply(change)
                    case .item(.replaced(let store)): cache.replace(with: Self.load(store))
                    case .timedOut: continue
                    case .ended(.overflowed):
                        let (reloaded, fresh) = await node.subscribe(limits: feedLimits) { Self.load($0) }
                        cache.replace(with: reloaded)
                        subscription = fresh
                    case .ended(.stopped), .ended(.cancelled):
                        return
                    }
                }
                subscription.cancel()
            }
        }
        return cache
    }

    public func stop() {
        task.withLockedValue { $0?.cancel() }
    }

    // MARK: Reading

    public func entry(for project: String) -> Entry? { state.withLockedValue { $0.entries[project] } }

    public var entries: [String: Entry] { state.withLockedValue { $0.entries } }

    /// The store revision this cache reflects.
    public var revision: UInt64 { state.withLockedValue { $0.revision } }

    /// The revision of the newest config change this node applied.
    public var configRevision: UInt64 { state.withLockedValue { $0.configRevision } }

    // MARK: Observing

    /// Calls `handler` after each change is in the cache, on the cache's task, in revision order;
    /// it should be quick (hand heavy work to a task of its own).
    public func observe(_ handler: @escaping @Sendable (Change) -> Void) -> Observation {
        state.withLockedValue { state in
            state.nextObserver += 1
            state.observers[state.nextObserver] = handler
            return Observation(id: state.nextObserver)
        }
    }

    public func stopObserving(_ observation: Observation) {
        state.withLockedValue { _ = $0.observers.removeValue(forKey: observation.id) }
    }

    /// The changes as a stream, for observers that prefer `for await`.
    public func changes() -> AsyncStream<Change> {
        let (stream, continuation) = AsyncStream.makeStream(of: Change.self)
        let observation = observe { continuation.yield($0) }
        continuation.onTermination = { [weak self] _ in self?.stopObserving(observation) }
        return stream
    }

    // MARK: Updating

    private struct Loaded: Sendable {
        var entries: [String: Entry]
        var revision: UInt64
        var configRevision: UInt64
    }

    private static func load(_ store: KeyValueStore) -> Loaded {
        var entries: [String: Entry] = [:]
        for (key, record) in store.range(prefix: ProjectConfig.keyPrefix, includeReserved: true) {
            let project = String(key.dropFirst(ProjectConfig.keyPrefix.count))
            if let config = try? ProjectConfig.decode(record.value) {
                entries[project] = Entry(config: config, revision: record.modRevision)
            }
        }
        // Deletes leave no record: the newest config revision is unknown after a wholesale load,
        // so the newest surviving document's stands in for it.
        return Loaded(
            entries: entries, revision: store.revision, configRevision: entries.values.map(\.revision).max() ?? 0)
    }

    private func apply(_ change: StoreChange) {
        var changes: [Change] = []
        for event in change.events where event.key.hasPrefix(ProjectConfig.keyPrefix) {
            let project = String(event.key.dropFirst(ProjectConfig.keyPrefix.count))
            switch event.kind {
            case .put:
                do {
                    let config = try ProjectConfig.decode(event.value)
                    changes.append(.updated(project: project, Entry(config: config, revision: event.revision)))
                } catch {
                    // Writes are validated before they are proposed; a document this version cannot
                    // read (written by a newer one) is treated as absent, and said so.
                    logger.warning(
                        "stored project config does not decode",
                        metadata: ["project": "\(project)", "error": "\(error)"])
                    changes.append(.removed(project: project, revision: event.revision))
                }
            case .delete:
                changes.append(.removed(project: project, revision: event.revision))
            }
        }
        let observers = state.withLockedValue { state -> [@Sendable (Change) -> Void] in
            state.revision = max(state.revision, change.revision)
            for change in changes {
                switch change {
                case .updated(let project, let entry): state.entries[project] = entry
                case .removed(let project, _): state.entries[project] = nil
                }
            }
            if !changes.isEmpty { state.configRevision = change.revision }
            return changes.isEmpty ? [] : Array(state.observers.values)
        }
        publish(changes, to: observers)
    }

    private func replace(with loaded: Loaded) {
        let (changes, observers) = state.withLockedValue { state -> ([Change], [@Sendable (Change) -> Void]) in
            var changes: [Change] = []
            for (project, entry) in loaded.entries.sorted(by: { $0.key < $1.key }) where state.entries[project] != entry
            {
                changes.append(.updated(project: project, entry))
            }
            for project in state.entries.keys.sorted() where loaded.entries[project] == nil {
                changes.append(.removed(project: project, revision: loaded.revision))
            }
            state.entries = loaded.entries
            state.revision = loaded.revision
            state.configRevision = max(loaded.configRevision, changes.isEmpty ? 0 : loaded.revision)
            return (changes, Array(state.observers.values))
        }
        publish(changes, to: observers)
    }

    private func publish(_ changes: [Change], to observers: [@Sendable (Change) -> Void]) {
        let (revision, count) = state.withLockedValue { ($0.configRevision, $0.entries.count) }
        revisionGauge.record(Int64(clamping: revision))
        projectsGauge.record(Int64(count))
        for change in changes {
            for observer in observers { observer(change) }
        }
    }
}
