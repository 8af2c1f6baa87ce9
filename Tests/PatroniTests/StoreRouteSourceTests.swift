import Foundation
import Node
import Raft
import Synchronization
import Testing

@testable import Patroni

/// The route source over a real single-node cluster (real WAL in a temporary directory): it
/// follows `/_sys/topology/postgres` through the change feed.
@Suite("The store-backed route source", .serialized)
struct StoreRouteSourceTests {
    let endpoints = [
        "pg1": PostgresEndpoint(name: "pg1", host: "127.0.0.1", port: 5441),
        "pg2": PostgresEndpoint(name: "pg2", host: "127.0.0.1", port: 5442),
    ]

    static func withLeader(_ body: (RaftNode) async throws -> Void) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("routes-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = NodeConfiguration(
            id: 1, dataDirectory: root, raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1], peers: [:],
            clusterKey: try ClusterKey("patroni-tests-cluster-key"))
        configuration.tickInterval = .milliseconds(5)
        let node = try await RaftNode.start(configuration)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, await !node.status.leaseValid {
            try await Task.sleep(for: .milliseconds(5))
        }
        do {
            try await body(node)
        } catch {
            await node.stop()
            throw error
        }
        await node.stop()
    }

    static func put(_ node: RaftNode, _ value: [UInt8]) async {
        let outcome = await node.write(
            StoreCommand(operation: .put(key: TopologyRecord.key, value: value), isSystem: true))
        guard case .applied(.applied, _) = outcome else {
            Issue.record("the topology put did not apply: \(outcome)")
            return
        }
    }

    static func route(_ source: StoreRouteSource, where condition: (PostgresRoute) -> Bool) async -> PostgresRoute? {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let route = source.currentRoute
            if condition(route) { return route }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    @Test func followsTheCommittedTopology() async throws {
        let endpoints = endpoints
        try await Self.withLeader { node in
            let source = await StoreRouteSource.start(
                node: node, endpoints: endpoints, checkInterval: .milliseconds(10))
            defer { source.stop() }
            #expect(source.currentRoute == .unknown, "nothing committed yet")
            var updates = source.routeUpdates().makeAsyncIterator()
            #expect(await updates.next() == .unknown, "the stream opens with the current route")

            let topology = PostgresTopology(epoch: 4, primary: .init(name: "pg2", timeline: 2), replicas: ["pg1"])
            await Self.put(node, TopologyRecord.encode(topology))
            let routed = await Self.route(source) { $0.epoch == 4 && $0.writable }
            #expect(
                routed
                    == PostgresRoute(epoch: 4, primary: endpoints["pg2"], replicas: [endpoints["pg1"]!], writable: true)
            )
            #expect(source.committed.topology == topology && source.committed.revision > 0)
            let stream = Mutex(updates)
            let streamed = await finished(within: .seconds(10)) { () async -> PostgresRoute? in
                var updates = stream.withLock { $0 }
                while let next = await updates.next() {
                    if next == routed { return next }
                }
                return nil
            }
            #expect(streamed == routed, "the stream carries the new route (within 10 s)")

            // A document this version cannot read: the topology is unknown, no writes.
            await Self.put(node, Array("{\"epoch\":\"five\"}".utf8))
            #expect(await Self.route(source) { $0 == .unknown } != nil)
            // A readable one again, then the key deleted.
            await Self.put(
                node, TopologyRecord.encode(PostgresTopology(epoch: 6, primary: .init(name: "pg1", timeline: 3))))
            #expect(await Self.route(source) { $0.epoch == 6 && $0.primary == endpoints["pg1"] } != nil)
            _ = await node.write(StoreCommand(operation: .delete(key: TopologyRecord.key), isSystem: true))
            #expect(await Self.route(source) { $0 == .unknown } != nil)
        }
    }

    /// `writable` is a deadline checked at use: with no refresh after the first (the next is an
    /// hour away), the route stops being writable once the clock passes the freshness bound —
    /// a paused process that resumes does not find a stale "writable".
    @Test func writableRunsOutWithoutARefresh() async throws {
        let endpoints = endpoints
        try await Self.withLeader { node in
            let topology = PostgresTopology(epoch: 2, primary: .init(name: "pg1", timeline: 1))
            await Self.put(node, TopologyRecord.encode(topology))
            let clock = ManualInstant()
            let source = await StoreRouteSource.start(
                node: node, endpoints: endpoints, checkInterval: .seconds(3600), freshness: .seconds(1),
                now: { clock.now })
            defer { source.stop() }
            #expect(await Self.route(source) { $0.writable } != nil, "the first read vouches")
            clock.advance(by: .milliseconds(999))
            #expect(source.currentRoute.writable)
            clock.advance(by: .milliseconds(1))
            #expect(!source.currentRoute.writable)
            #expect(source.currentRoute.primary == endpoints["pg1"], "the route stays, only writes stop")
            #expect(source.committed.writableReason.contains("within"))
        }
    }

    /// A route source started after the topology was committed loads it from the store.
    @Test func loadsWhatIsAlreadyCommitted() async throws {
        let endpoints = endpoints
        try await Self.withLeader { node in
            let topology = PostgresTopology(epoch: 9, primary: .init(name: "pg1", timeline: 1), replicas: ["pg2"])
            await Self.put(node, TopologyRecord.encode(topology))
            let source = await StoreRouteSource.start(
                node: node, endpoints: endpoints, checkInterval: .milliseconds(10))
            defer { source.stop() }
            #expect(source.currentRoute.epoch == 9 && source.currentRoute.primary == endpoints["pg1"])
            #expect(await Self.route(source) { $0.writable } != nil, "a leader with its lease vouches for it")
        }
    }
}

/// A clock reading the test moves by hand.
final class ManualInstant: Sendable {
    private let instant = Mutex(ContinuousClock.now)
    var now: ContinuousClock.Instant { instant.withLock { $0 } }
    func advance(by duration: Duration) { instant.withLock { $0 += duration } }
}
