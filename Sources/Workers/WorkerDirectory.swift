import Node

/// The registry as one node sees it: every worker under `/_sys/workers/`, by service and id,
/// rebuilt from a store or moved forward one change-feed event at a time. Pure.
public struct WorkerDirectory: Sendable, Hashable {
    public private(set) var services: [String: [String: WorkerRecord]] = [:]
    /// The store revision of the newest event applied.
    public private(set) var revision: UInt64 = 0

    public init() {}

    public init(store: KeyValueStore) {
        for (key, record) in store.range(prefix: WorkerRecord.prefix, includeReserved: true) {
            if let worker = WorkerRecord(key: key, value: record.value) { insert(worker) }
        }
        revision = store.revision
    }

    public func workers(of service: String) -> [String: WorkerRecord] { services[service] ?? [:] }

    public var all: [WorkerRecord] {
        services.keys.sorted().flatMap { service in
            services[service]!.keys.sorted().map { services[service]![$0]! }
        }
    }

    /// Applies one change; answers whether the registry changed.
    @discardableResult
    public mutating func apply(_ event: StoreEvent) -> Bool {
        guard event.key.hasPrefix(WorkerRecord.prefix) else { return false }
        revision = max(revision, event.revision)
        switch event.kind {
        case .put:
            if let worker = WorkerRecord(key: event.key, value: event.value) {
                insert(worker)
            } else {
                removeKey(event.key)  // a value that is not a worker's no longer names one
            }
        case .delete:
            removeKey(event.key)
        }
        return true
    }

    private mutating func insert(_ worker: WorkerRecord) {
        services[worker.service, default: [:]][worker.id] = worker
    }

    private mutating func removeKey(_ key: String) {
        let rest = key.dropFirst(WorkerRecord.prefix.count)
        guard let slash = rest.firstIndex(of: "/") else { return }
        let service = String(rest[..<slash])
        let id = String(rest[rest.index(after: slash)...])
        services[service]?[id] = nil
        if services[service]?.isEmpty == true { services[service] = nil }
    }
}
