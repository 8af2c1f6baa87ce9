import Logging
import NIOConcurrencyHelpers
import Node

/// The committed Redis topology on every node, followed from the change feed and handed to the
/// node's pool, which adopts no other master while it is committed; when its master changes the
/// pool closes its connections to the old master and reconnects (resolving and verifying as always).
public final class RedisTopologyView: Sendable {
    public struct Committed: Sendable, Hashable {
        public var topology: RedisTopology
        public var revision: UInt64
    }

    private let current = NIOLockedValueBox<Committed?>(nil)
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)
    private static let feedLimits = ChangeSubscription.Limits(maxItems: 16_384, maxBytes: 64 << 20)

    private init() {}

    public var committed: Committed? { current.withLockedValue { $0 } }

    public static func start(node: RaftNode, pool: RedisMasterPool, logger: Logger) async -> RedisTopologyView {
        let view = RedisTopologyView()
        let (loaded, subscription) = await node.subscribe(limits: feedLimits) { Self.load($0) }
        await view.update(loaded, pool: pool, logger: logger)
        view.task.withLockedValue { task in
            task = Task { [weak view] in
                var subscription = subscription
                while let view {
                    switch await subscription.next() {
                    case .item(.change(let change)):
                        for event in change.events where event.key == RedisTopology.key {
                            let committed =
                                event.kind == .put
                                ? RedisTopology.decode(event.value).map {
                                    Committed(topology: $0, revision: event.revision)
                                }
                                : nil
                            await view.update(committed, pool: pool, logger: logger)
                        }
                    case .item(.replaced(let store)): await view.update(Self.load(store), pool: pool, logger: logger)
                    case .timedOut: continue
                    case .ended(.overflowed):
                        let (reloaded, fresh) = await node.subscribe(limits: feedLimits) { Self.load($0) }
                        await view.update(reloaded, pool: pool, logger: logger)
                        subscription = fresh
                    case .ended(.stopped), .ended(.cancelled):
                        return
                    }
                }
                subscription.cancel()
            }
        }
        return view
    }

    public func stop() {
        task.withLockedValue { $0?.cancel() }
    }

    private static func load(_ store: KeyValueStore) -> Committed? {
        guard let record = store.get(RedisTopology.key), let topology = RedisTopology.decode(record.value) else {
            return nil
        }
        return Committed(topology: topology, revision: record.modRevision)
    }

    private func update(_ committed: Committed?, pool: RedisMasterPool, logger: Logger) async {
        let previous = current.withLockedValue { current in
            defer { current = committed }
            return current
        }
        guard
            previous?.topology.master != committed?.topology.master
                || previous?.topology.epoch != committed?.topology.epoch
        else { return }
        if let committed {
            logger.info(
                "committed Redis master",
                metadata: ["master": "\(committed.topology.master)", "revision": "\(committed.revision)"])
        }
        await pool.follow(committed: committed?.topology.master, epoch: committed?.topology.epoch ?? 0)
    }
}
