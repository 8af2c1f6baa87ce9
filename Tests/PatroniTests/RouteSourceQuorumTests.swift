import Foundation
import Node
import Raft
import TestSupport
import Testing

@testable import Patroni

/// The route source over three real nodes in this process (real sockets on 127.0.0.1, real
/// WALs): the node it runs on loses its quorum — the other two crash — and its route stops being
/// writable, whether it led or followed.
@Suite("The route source when its node loses quorum", .serialized)
struct RouteSourceQuorumTests {
    @Test(arguments: ["leader", "follower"])
    func writesStopWhenTheNodeLosesItsQuorum(_ survivorRole: String) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("quorum-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let base = TestPorts.block()
        var peers: [NodeID: (host: String, port: Int)] = [:]
        for id: NodeID in [1, 2, 3] { peers[id] = ("127.0.0.1", base + Int(id)) }
        var nodes: [NodeID: RaftNode] = [:]
        for id: NodeID in [1, 2, 3] {
            var configuration = NodeConfiguration(
                id: id, dataDirectory: root + "/node-\(id)", raftHost: "127.0.0.1", raftPort: base + Int(id),
                initialVoters: [1, 2, 3], peers: peers, clusterKey: try ClusterKey("patroni-tests-cluster-key"))
            configuration.tickInterval = .milliseconds(10)
            nodes[id] = try await RaftNode.start(configuration)
        }
        var source: StoreRouteSource?
        do {
            let leaderID = await poll(within: .seconds(20)) { () async -> NodeID? in
                for (id, node) in nodes where await node.isLeader { return id }
                return nil
            }
            let leader = try #require(leaderID.flatMap { nodes[$0] }, "no leader elected")
            let topology = PostgresTopology(epoch: 3, primary: .init(name: "pg1", timeline: 1))
            let written = await leader.write(
                StoreCommand(
                    operation: .put(key: TopologyRecord.key, value: TopologyRecord.encode(topology)), isSystem: true))
            guard case .applied(.applied, _) = written else {
                Issue.record("the topology was not written: \(written)")
                throw CancellationError()
            }
            let survivorID =
                survivorRole == "leader" ? leaderID! : nodes.keys.sorted().first { $0 != leaderID }!
            let survivor = nodes[survivorID]!
            let routes = await StoreRouteSource.start(
                node: survivor,
                endpoints: ["pg1": PostgresEndpoint(name: "pg1", host: "127.0.0.1", port: 5441)],
                checkInterval: .milliseconds(20), freshness: .milliseconds(500))
            source = routes
            let vouched = await poll(within: .seconds(20)) { routes.currentRoute.writable ? true : nil }
            try #require(vouched == true, "n\(survivorID) never vouched: \(routes.committed.writableReason)")
            #expect(routes.currentRoute.epoch == 3)

            for id in nodes.keys where id != survivorID {
                await nodes[id]?.stop()
                nodes[id] = nil
            }
            let stopped = await poll(within: .seconds(20)) { routes.currentRoute.writable ? nil : true }
            #expect(stopped == true, "n\(survivorID), the \(survivorRole), still writable alone")
            #expect(routes.currentRoute.primary != nil, "the route stays, only writes stop")
        } catch {
            source?.stop()
            for node in nodes.values { await node.stop() }
            throw error
        }
        source?.stop()
        for node in nodes.values { await node.stop() }
    }

    private func poll<Value: Sendable>(
        within limit: Duration, _ probe: () async -> Value?
    ) async -> Value? {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let value = await probe() { return value }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }
}
