import Foundation
import NIOConcurrencyHelpers
import Node
import TestSupport
import Testing

@testable import Gateway

/// `EtcdWriter` on three real nodes: Patroni's leader-lock txn is appended by the Raft leader, its
/// answer is lost (the leader cannot commit it in time, its followers down), and the gateway
/// submits it again with the same key once the cluster is back. The answer is the first result.
@Suite("etcd writes across three nodes", .serialized)
struct EtcdWriterClusterTests {
    final class Cluster: @unchecked Sendable {
        // @unchecked: used by one test task at a time (the attempts run one after another).
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("etcd-writer-\(UUID().uuidString)")
            .path
        var ports: [UInt64: Int] = [:]
        var nodes: [UInt64: RaftNode] = [:]

        func configuration(_ id: UInt64) throws -> NodeConfiguration {
            var peers: [UInt64: (host: String, port: Int)] = [:]
            for (peer, port) in ports { peers[peer] = ("127.0.0.1", port) }
            var configuration = NodeConfiguration(
                id: id, dataDirectory: root + "/node-\(id)", raftHost: "127.0.0.1", raftPort: ports[id] ?? 0,
                initialVoters: [1, 2, 3], peers: peers, clusterKey: try ClusterKey("etcd-writer-tests-cluster-key"))
            configuration.tickInterval = .milliseconds(10)
            return configuration
        }

        func startAll() async throws {
            let base = TestPorts.block()
            for id: UInt64 in [1, 2, 3] { ports[id] = base + Int(id) }
            for id: UInt64 in [1, 2, 3] { try await start(id) }
        }

        func start(_ id: UInt64) async throws { nodes[id] = try await RaftNode.start(configuration(id)) }

        func crash(_ id: UInt64) async {
            await nodes[id]?.stop()
            nodes[id] = nil
        }

        func leader(within seconds: Double = 20) async -> RaftNode? {
            let deadline = ContinuousClock.now + .seconds(seconds)
            while ContinuousClock.now < deadline {
                for node in nodes.values where await node.isLeader { return node }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return nil
        }

        func stopAll() async {
            for id in Array(nodes.keys) { await crash(id) }
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    /// The leader-lock txn submitted the way `EtcdWriter` submits it: the first attempt goes to
    /// a leader whose followers are down (it appends the entry, cannot commit it, answers
    /// `.unknown`); then one follower comes back. Only the old leader can win an election now (its
    /// log is ahead and the follower votes for it), so the first attempt's entry commits, and the
    /// later attempts meet it. Answers the first attempt's outcome and the submitted outcome.
    static func lockAfterALostAnswer(keyed: Bool) async throws -> (
        first: WriteOutcome?, outcome: WriteOutcome, version: UInt64?
    ) {
        let cluster = Cluster()
        try await cluster.startAll()
        let leader = try #require(await cluster.leader())
        let followers = cluster.nodes.keys.filter { $0 != leader.id }.sorted()
        let key = KeyValueStore.etcdPrefix + "/service/dcs/leader"
        let lock = StoreTransaction(
            compares: [
                .init(
                    range: .init(key: Array(key.utf8)), target: .createRevision, relation: .equal,
                    operand: .createRevision(0))
            ],
            success: [.put(key: key, value: Array("pg1".utf8), lease: 0, previous: false)])
        let command = StoreCommand(operation: .transaction(lock), idempotencyKey: keyed ? EtcdWriter.newKey() : nil)
        let first = NIOLockedValueBox<WriteOutcome?>(nil)
        let attempts = NIOLockedValueBox(0)
        for id in followers { await cluster.crash(id) }
        let outcome = await EtcdWriter.submit(command, until: .now + .seconds(30), pause: .milliseconds(50)) {
            command, remaining in
            let attempt = attempts.withLockedValue {
                $0 += 1
                return $0
            }
            if attempt == 1 {
                let outcome = await leader.write(command, timeout: .milliseconds(300))
                first.withLockedValue { $0 = outcome }
                try? await cluster.start(followers[0])
                return outcome
            }
            guard let current = await cluster.leader(within: 5) else { return .notLeader(leader: nil) }
            return await current.write(command, timeout: remaining)
        }
        let current = await cluster.leader()
        let record = await current?.read(consistency: .linearizable) { $0.get(key) }
        await cluster.stopAll()
        return (first.withLockedValue { $0 }, outcome, record??.version)
    }

    @Test func aLockTxnWhoseAnswerWasLostAnswersItsFirstResult() async throws {
        let (first, outcome, version) = try await Self.lockAfterALostAnswer(keyed: true)
        guard case .unknown = first else {
            Issue.record("the first attempt was not unknown: \(String(describing: first))")
            return
        }
        guard case .applied(.transaction(let result), _) = outcome else {
            Issue.record("no applied answer: \(outcome)")
            return
        }
        #expect(result.succeeded, "the retry answered with a failed compare")
        #expect(version == 1)
    }

    /// What the same re-submission answers without the idempotency key (as a client's own retry
    /// did before): the compare fails on the lock the first attempt took.
    @Test func withoutTheKeyTheRetryMeetsTheFirstAttemptsLock() async throws {
        let (first, outcome, version) = try await Self.lockAfterALostAnswer(keyed: false)
        guard case .unknown = first, case .applied(.transaction(let result), _) = outcome else {
            Issue.record("unexpected: \(String(describing: first)), \(outcome)")
            return
        }
        #expect(!result.succeeded && version == 1)
    }
}
