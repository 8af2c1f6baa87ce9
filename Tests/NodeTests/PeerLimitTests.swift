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

    @Test func authenticatedConnectionsBeyondTheCapAreClosedThenItRecovers() async throws {
        var limits = PeerConnectionLimits()
        limits.maxInboundConnections = 3
        try await Self.withNode(limits) { node, port in
            let held = await offThePool {
                (2...4).compactMap { id in
                    RawPeer(port: port).flatMap { $0.handshake(as: NodeID(id), to: 1, key: .test) ? $0 : nil }
                }
            }
            #expect(held.count == 3)
            #expect(await Self.eventually { node.openPeerConnections == 3 })
            let extra = await offThePool { () -> Bool in
                guard let peer = RawPeer(port: port), peer.handshake(as: 5, to: 1, key: .test) else { return false }
                return peer.closedByTheNode()
            }
            #expect(extra, "the fourth member is closed once authenticated")
            #expect(node.transportStatistics.connectionsRefused == 1)
            #expect(await Self.serves(node, "during"))
            // Closing the held ones makes room again.
            await offThePool { for peer in held { peer.shutdown() } }
            #expect(await Self.eventually { node.openPeerConnections == 0 })
            let again = await offThePool { () -> RawPeer? in
                guard let peer = RawPeer(port: port), peer.handshake(as: 5, to: 1, key: .test) else { return nil }
                return peer
            }
            #expect(again != nil)
            #expect(await Self.eventually { node.openPeerConnections == 1 }, "a member connects and keeps its place")
            withExtendedLifetime(again) {}
        }
    }

    /// Review finding 3: strangers who never authenticate must not take the places members need.
    /// They hold more connections open in their handshake than there are places for either kind
    /// (the handshake deadline is long, so none gives up on its own); a member still connects and
    /// keeps its place.
    @Test func strangersInTheirHandshakeCannotLockMembersOut() async throws {
        var limits = PeerConnectionLimits()
        limits.maxInboundConnections = 4
        limits.maxPendingHandshakes = 8
        let transport = try await PeerTransport.start(
            id: 1, host: "127.0.0.1", port: 0, clusterKey: .test, handshakeTimeout: .seconds(120), limits: limits)
        let port = transport.localAddress.port!
        let strangers = await offThePool { (0..<12).compactMap { _ in RawPeer(port: port) } }
        #expect(strangers.count == 12)
        #expect(await Self.eventually { transport.statistics.handshakesEvicted == 4 })
        #expect(transport.pendingInboundConnections == 8)
        #expect(transport.openInboundConnections == 0)
        let member = await offThePool { () -> RawPeer? in
            guard let peer = RawPeer(port: port), peer.handshake(as: 2, to: 1, key: .test) else { return nil }
            return peer
        }
        #expect(member != nil, "the member got its challenge")
        #expect(
            await Self.eventually { transport.openInboundConnections == 1 },
            "the member's connection is authenticated and kept")
        #expect(transport.statistics.handshakesAccepted == 1)
        #expect(transport.statistics.connectionsRefused == 0)
        #expect(transport.statistics.handshakesEvicted == 5, "the oldest stranger made room for it")
        withExtendedLifetime((strangers, member)) {}
        await transport.shutdown()
    }

    @Test func admissionDecisions() {
        var admission = InboundAdmission(maxAuthenticated: 2, maxPending: 2)
        var evicted = [1, 2, 3].map { admission.accepted($0) }
        #expect(evicted == [nil, nil, 1], "the oldest in its handshake makes room")
        var authenticated = [1, 2, 3].map { admission.authenticate($0) }
        #expect(authenticated == [false, true, true], "1 was already given up")
        #expect(admission.pending.isEmpty && admission.authenticated == [2, 3])
        // Authenticated connections are never evicted by newcomers; beyond the cap they are refused.
        evicted = [4, 5, 6].map { admission.accepted($0) }
        #expect(evicted == [nil, nil, 4])
        authenticated = [admission.authenticate(5)]
        #expect(authenticated == [false])
        #expect(admission.authenticated == [2, 3] && admission.pending == [6])
        admission.closed(2)
        authenticated = [admission.authenticate(6)]
        #expect(authenticated == [true])
        #expect(admission.authenticated == [3, 6])
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
