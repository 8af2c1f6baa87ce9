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

    /// Node 3 reaches its peers, and they reach it, only through relays, which the test cuts:
    /// the majority commits a new topology while node 3 cannot hear of it. Node 3's route may
    /// stay writable on the old topology only until `freshness` after the new one was committed
    /// (its last confirmed read was sent before that), never later; healed, it routes the new one.
    /// (Here node 3 also loses its leader at once — 10 ms ticks — so readiness alone would catch
    /// this cut too; the lag-window case of a heal with a lagging log is not reproduced.)
    @Test func aPartitionedNodeStopsVouchingForTheOldTopologyWithinTheBound() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("split-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let base = TestPorts.block()
        let toThree = try PartitionableRelay(upstream: base + 3)
        let fromThree: [NodeID: PartitionableRelay] = [
            1: try PartitionableRelay(upstream: base + 1), 2: try PartitionableRelay(upstream: base + 2),
        ]
        let relays = [toThree] + fromThree.values
        defer { for relay in relays { relay.stop() } }
        var nodes: [NodeID: RaftNode] = [:]
        for id: NodeID in [1, 2, 3] {
            var peers: [NodeID: (host: String, port: Int)] = [:]
            for peer: NodeID in [1, 2, 3] where peer != id {
                let port = id == 3 ? fromThree[peer]!.port : (peer == 3 ? toThree.port : base + Int(peer))
                peers[peer] = ("127.0.0.1", port)
            }
            var configuration = NodeConfiguration(
                id: id, dataDirectory: root + "/node-\(id)", raftHost: "127.0.0.1", raftPort: base + Int(id),
                initialVoters: [1, 2, 3], peers: peers, clusterKey: try ClusterKey("patroni-tests-cluster-key"))
            configuration.tickInterval = .milliseconds(10)
            nodes[id] = try await RaftNode.start(configuration)
        }
        let freshness = Duration.milliseconds(500)
        let endpoints = [
            "pg1": PostgresEndpoint(name: "pg1", host: "127.0.0.1", port: 5441),
            "pg2": PostgresEndpoint(name: "pg2", host: "127.0.0.1", port: 5442),
        ]
        let routes = await StoreRouteSource.start(
            node: nodes[3]!, endpoints: endpoints, checkInterval: .milliseconds(20), freshness: freshness)
        let samples = ResultBox<[(at: ContinuousClock.Instant, route: PostgresRoute)]>()
        samples.set([])
        let sampler = Task {
            while !Task.isCancelled {
                let at = ContinuousClock.now
                let route = routes.currentRoute
                samples.set((samples.value ?? []) + [(at, route)])
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        func write(_ epoch: UInt64, primary: String, through ids: [NodeID]) async -> ContinuousClock.Instant? {
            let command = StoreCommand(
                operation: .put(
                    key: TopologyRecord.key,
                    value: TopologyRecord.encode(
                        PostgresTopology(epoch: epoch, primary: .init(name: primary, timeline: 1)))),
                isSystem: true)
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                for id in ids where await nodes[id]!.isLeader {
                    if case .applied(.applied, _) = await nodes[id]!.write(command) { return .now }
                }
                try? await Task.sleep(for: .milliseconds(10))
            }
            return nil
        }
        var committedAt: ContinuousClock.Instant?
        do {
            _ = try #require(await write(1, primary: "pg1", through: [1, 2, 3]), "epoch 1 not written")
            let vouched = await poll(within: .seconds(20)) {
                routes.currentRoute.writable && routes.currentRoute.epoch == 1 ? true : nil
            }
            try #require(vouched == true, "node 3 never vouched: \(routes.committed.writableReason)")

            for relay in relays { relay.cut() }
            let committed = try #require(
                await write(2, primary: "pg2", through: [1, 2]), "the majority did not commit epoch 2")
            committedAt = committed
            // Past the bound, with node 3 still cut off.
            while ContinuousClock.now < committed + freshness + .milliseconds(300) {
                try await Task.sleep(for: .milliseconds(10))
            }
            for relay in relays { relay.heal() }
            let healed = await poll(within: .seconds(20)) {
                routes.currentRoute.writable && routes.currentRoute.epoch == 2 ? true : nil
            }
            #expect(healed == true, "healed, node 3 routes the new primary: \(routes.committed.writableReason)")
        } catch {
            sampler.cancel()
            routes.stop()
            for node in nodes.values { await node.stop() }
            throw error
        }
        sampler.cancel()
        routes.stop()
        for node in nodes.values { await node.stop() }
        let stale = (samples.value ?? []).filter { $0.route.writable && $0.route.epoch < 2 }
        #expect(!stale.isEmpty, "node 3 was writable on epoch 1 before the cut")
        let bound = try #require(committedAt) + freshness
        let late = stale.filter { $0.at >= bound }
        #expect(late.isEmpty, "writable on epoch 1 up to \(late.last.map { $0.at - bound } ?? .zero) past the bound")
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
