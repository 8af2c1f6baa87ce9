import Foundation

/// The Redis topology the leader commits to `/_sys/topology/redis` (DESIGN.md), so every gateway
/// switches master at the same revision:
///
///     {"epoch":3,"master":"127.0.0.1:6380","replicas":["127.0.0.1:6379","127.0.0.1:6381"],
///      "sentinels":["127.0.0.1:26379","127.0.0.1:26380","127.0.0.1:26381"]}
///
/// `sentinels` are those that agreed on the master; `epoch` is their config epoch.
public struct RedisTopology: Sendable, Hashable, Codable {
    public var master: RedisEndpoint
    public var replicas: [RedisEndpoint]
    public var sentinels: [RedisEndpoint]
    public var epoch: UInt64

    public init(master: RedisEndpoint, replicas: [RedisEndpoint], sentinels: [RedisEndpoint], epoch: UInt64) {
        self.master = master
        self.replicas = replicas
        self.sentinels = sentinels
        self.epoch = epoch
    }

    public init(_ resolution: MasterDiscovery.Resolution) {
        self.init(
            master: resolution.master, replicas: resolution.replicas, sentinels: resolution.agreeing,
            epoch: resolution.epoch)
    }

    public static let key = "/_sys/topology/redis"

    /// Whether `observed` is worth a Raft commit over `stored`: a new master, epoch or replica
    /// set. Which Sentinels agreed is left out — one of them timing out now and then would
    /// otherwise commit (and wake every node's change feed) every round (review F11).
    public static func needsCommit(stored: RedisTopology?, observed: RedisTopology) -> Bool {
        guard let stored else { return true }
        return stored.master != observed.master || stored.epoch != observed.epoch
            || Set(stored.replicas) != Set(observed.replicas)
    }

    public var encoded: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(self)) ?? Data())
    }

    public static func decode(_ bytes: [UInt8]) -> RedisTopology? {
        try? JSONDecoder().decode(RedisTopology.self, from: Data(bytes))
    }
}
