import Foundation
import Raft
import TestSupport
import Testing

@testable import Node

/// The peer port's bounds hit on purpose: a connection cap, an idle timeout, and a snapshot larger
/// than the node takes. Each is refused and counted, and the node goes on serving.
@Suite("Peer port limits")
struct PeerLimitTests {
    static func withNode(_ limits: PeerConnectionLimits, _ body: (RaftNode, Int) async throws -> Void) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("peerlimits-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = NodeConfiguration(
            id: 1, dataDirectory: root, raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1], peers: [:],
            clusterKey: .test)
        configuration.tickInterval = .milliseconds(20)
        configuration.peerLimits = limits
        let node = try await RaftNode.start(configuration)
        let elected = ContinuousClock.now + .seconds(10)
        while await !node.isLeader && ContinuousClock.now < elected { try await Task.sleep(for: .milliseconds(10)) }
        try await body(node, await node.raftPort)
        await node.stop()
    }

    static func serves(_ node: RaftNode, _ key: String) async -> Bool {
        if case .applied(.applied, _) = await node.write(StoreCommand(operation: .put(key: key, value: [1]))) {
            return true
        }
        return false
    }

    static func eventually(_ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        repeat {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        } while ContinuousClock.now < deadline
        return false
    }

    @Test func connectionsBeyondTheCapAreClosedOnAcceptThenItRecovers() async throws {
        var limits = PeerConnectionLimits()
        limits.maxInboundConnections = 3
        try await Self.withNode(limits) { node, port in
            let held = await offThePool { (0..<3).compactMap { _ in RawPeer(port: port) } }
            #expect(held.count == 3)
            // Accepted connections are set up on several event loops, in no fixed order: wait until
            // all three hold their places before the fourth knocks.
            #expect(await Self.eventually { node.openPeerConnections == 3 })
            let extra = await offThePool { RawPeer(port: port)?.closedByTheNode() ?? false }
            #expect(extra, "the fourth connection is closed at once")
            #expect(node.transportStatistics.connectionsRefused == 1)
            // The admitted ones still get their handshake.
            let admitted = await offThePool { held[0].handshake(as: 2, to: 1, key: .test) }
            #expect(admitted)
            #expect(await Self.serves(node, "during"))
            // Closing the held ones makes room again.
            await offThePool { for peer in held { peer.shutdown() } }
            #expect(
                await Self.eventually {
                    await offThePool { RawPeer(port: port)?.handshake(as: 2, to: 1, key: .test) ?? false }
                })
        }
    }

    @Test func aQuietConnectionIsClosedAfterTheIdleTimeout() async throws {
        var limits = PeerConnectionLimits()
        limits.idleTimeout = .milliseconds(300)
        try await Self.withNode(limits) { node, port in
            let closed = await offThePool { () -> Bool in
                guard let peer = RawPeer(port: port), peer.handshake(as: 2, to: 1, key: .test) else { return false }
                return peer.closedByTheNode()
            }
            #expect(closed)
            #expect(node.transportStatistics.handshakesAccepted == 1)
            #expect(node.transportStatistics.idleConnectionsClosed == 1)
            #expect(await Self.serves(node, "after"))
        }
    }

    @Test func aSnapshotLargerThanTheBoundIsRefused() async throws {
        var limits = PeerConnectionLimits()
        limits.maxIncomingSnapshotBytes = 1000
        #expect(limits.admits(offset: 0, count: 1000) && !limits.admits(offset: 1, count: 1000))
        #expect(!limits.admits(offset: -1, count: 1) && !limits.admits(offset: Int.max, count: 1))
        try await Self.withNode(limits) { node, port in
            let term = await node.status.term
            let store = await node.store
            let chunk = InstallSnapshot(
                metadata: SnapshotMetadata(index: 1000, term: 99, configuration: ClusterConfiguration(voters: [2])),
                offset: 0, data: Array(repeating: 7, count: 2000), done: false)
            let sent = await offThePool { () -> Bool in
                guard let peer = RawPeer(port: port), peer.handshake(as: 2, to: 1, key: .test) else { return false }
                return peer.send(PeerFrame.encode(Message(from: 2, to: 1, term: 99, payload: .installSnapshot(chunk))))
            }
            #expect(sent)
            #expect(await Self.eventually { await node.snapshotChunksRefused == 1 })
            #expect(await node.status.term == term, "the refused chunk did not move the term")
            #expect(await node.store == store)
            #expect(await node.fatalError == nil)
            #expect(await Self.serves(node, "after"))
        }
    }
}
