import Logging
import Node

/// The leader-only service that commits `/_sys/topology/redis` (DESIGN.md): every `interval`, or
/// sooner after a `+switch-master` hint, it asks the Sentinels, verifies the master with `ROLE`,
/// and proposes the topology for its own term only when its master, epoch or replicas differ from
/// the stored one — so every
/// gateway switches at the same revision, and a deposed leader's late write cannot land.
public struct RedisTopologyWatcher: LeaderService {
    public let name = "redis topology watcher"
    let node: RaftNode
    let client: RedisClient
    let interval: Duration
    let logger: Logger

    public init(node: RaftNode, client: RedisClient, interval: Duration, logger: Logger) {
        self.node = node
        self.client = client
        self.interval = interval
        self.logger = logger
    }

    public func lead(term: UInt64) async {
        while !Task.isCancelled {
            let hints = client.hintsHeard
            await round(term: term)
            // Wait out the interval in short steps, ending early when a hint arrives.
            let deadline = ContinuousClock.now + interval
            while !Task.isCancelled, ContinuousClock.now < deadline, client.hintsHeard == hints {
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    private func round(term: UInt64) async {
        guard case .success(let resolution) = await client.verifiedResolution() else { return }
        let topology = RedisTopology(resolution)
        guard case .value(let record, _) = await node.read(RedisTopology.key, consistency: .stale(maxStaleness: nil))
        else { return }
        guard RedisTopology.needsCommit(stored: record.flatMap { RedisTopology.decode($0.value) }, observed: topology)
        else { return }
        let outcome = await node.propose(
            StoreCommand(operation: .put(key: RedisTopology.key, value: topology.encoded), isSystem: true), inTerm: term
        )
        if case .applied(.applied, _) = outcome {
            logger.info(
                "Redis topology committed",
                metadata: [
                    "master": "\(topology.master)", "epoch": "\(topology.epoch)",
                    "sentinels": "\(topology.sentinels.count)", "replicas": "\(topology.replicas.count)",
                ])
        } else {
            logger.debug("Redis topology not committed", metadata: ["outcome": "\(outcome)"])
        }
    }
}
