import Logging
import NIOConcurrencyHelpers
import Node

/// The registry view of one node: every worker under `/_sys/workers/`, kept current from the
/// change feed the moment a change is applied here (no poll). The proxy and `GET /workers` read it.
public final class WorkerRegistry: Sendable {
    private let directory = NIOLockedValueBox(WorkerDirectory())
    private let observers = NIOLockedValueBox<[@Sendable (WorkerDirectory) -> Void]>([])
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)
    private static let feedLimits = ChangeSubscription.Limits(maxItems: 16_384, maxBytes: 64 << 20)

    private init() {}

    /// Loads the registry from `node`'s applied store and follows the feed until the node stops.
    public static func start(node: RaftNode) async -> WorkerRegistry {
        let registry = WorkerRegistry()
        let (loaded, subscription) = await node.subscribe(limits: feedLimits) { WorkerDirectory(store: $0) }
        registry.replace(loaded)
        registry.task.withLockedValue { task in
            task = Task { [weak registry] in
                var subscription = subscription
                while let registry {
                    switch await subscription.next() {
                    case .item(.change(let change)):
                        registry.apply(change.events)
                    case .item(.replaced(let store)):
                        registry.replace(WorkerDirectory(store: store))
                    case .timedOut:
                        continue
                    case .ended(.overflowed):
                        let (reloaded, fresh) = await node.subscribe(limits: feedLimits) { WorkerDirectory(store: $0) }
                        registry.replace(reloaded)
                        subscription = fresh
                    case .ended(.stopped), .ended(.cancelled):
                        return
                    }
                }
                subscription.cancel()
            }
        }
        return registry
    }

    public func stop() { task.withLockedValue { $0?.cancel() } }

    public var current: WorkerDirectory { directory.withLockedValue { $0 } }

    /// Calls `handler` with the current registry now and after every change, in revision order.
    public func observe(_ handler: @escaping @Sendable (WorkerDirectory) -> Void) {
        let now = observers.withLockedValue { observers in
            observers.append(handler)
            return directory.withLockedValue { $0 }
        }
        handler(now)
    }

    private func apply(_ events: [StoreEvent]) {
        let changed = directory.withLockedValue { directory -> WorkerDirectory? in
            var changed = false
            for event in events where directory.apply(event) { changed = true }
            return changed ? directory : nil
        }
        if let changed { notify(changed) }
    }

    private func replace(_ loaded: WorkerDirectory) {
        directory.withLockedValue { $0 = loaded }
        notify(loaded)
    }

    private func notify(_ directory: WorkerDirectory) {
        for observer in observers.withLockedValue({ $0 }) { observer(directory) }
    }
}
