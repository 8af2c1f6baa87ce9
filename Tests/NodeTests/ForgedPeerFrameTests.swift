import Foundation
import Raft
import TestSupport
import Testing

@testable import Node

/// Issue 15's attack on a running node: someone who can reach the Raft port sends a higher-term
/// AppendEntries (which used to make the node step down, or stop on a safety violation), an
/// InstallSnapshot (which used to replace its store) and a forwarded `/_sys/` write (which used to
/// be applied) — without a handshake, after one under a guessed key, and after a real one as
/// node 2 but claiming to be node 3. Every attempt is refused and counted, and the node goes on
/// leading in the same term with the same store.
@Suite("Forged peer frames against a running node")
struct ForgedPeerFrameTests {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("forged-\(UUID().uuidString)").path

    static func forgedFrames(from sender: NodeID) -> [[UInt8]] {
        var forgedStore = KeyValueStore()
        _ = forgedStore.apply(StoreCommand(operation: .put(key: "/_sys/owned", value: [1])))
        let snapshot = InstallSnapshot(
            metadata: SnapshotMetadata(index: 1000, term: 99, configuration: ClusterConfiguration(voters: [sender])),
            offset: 0, data: forgedStore.snapshot, done: true)
        let append = AppendEntries(
            prevLogIndex: 0, prevLogTerm: 0,
            entries: [
                LogEntry(
                    index: 1, term: 99, kind: .command,
                    data: StoreCommand(operation: .put(key: "/_sys/owned", value: [2])).encoded)
            ], leaderCommit: 1)
        let write = StoreCommand(operation: .put(key: "/_sys/owned", value: [3]))
        return [
            PeerFrame.encode(Message(from: sender, to: 1, term: 99, payload: .appendEntries(append))),
            PeerFrame.encode(Message(from: sender, to: 1, term: 99, payload: .installSnapshot(snapshot))),
            PeerFrame.encode(
                PeerEnvelope.forwardedWrite(
                    ForwardedWrite(requestID: 1, from: sender, to: 1, command: write.encoded))),
        ]
    }

    enum Approach: CaseIterable {
        case noHandshake, guessedKey, anotherMembersName
    }

    @Test func strangersCannotMoveTheTermNorTouchTheStore() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = NodeConfiguration(
            id: 1, dataDirectory: root, raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1], peers: [:],
            clusterKey: .test)
        configuration.tickInterval = .milliseconds(10)
        let node = try await RaftNode.start(configuration)
        let elected = ContinuousClock.now + .seconds(10)
        while await !node.isLeader && ContinuousClock.now < elected { try await Task.sleep(for: .milliseconds(10)) }
        #expect(await node.isLeader)
        guard case .applied = await node.write(StoreCommand(operation: .put(key: "before", value: [0]))) else {
            Issue.record("the node does not serve writes")
            return
        }
        let term = await node.status.term
        let store = await node.store
        let port = await node.raftPort

        for approach in Approach.allCases {
            for frame in Self.forgedFrames(from: approach == .anotherMembersName ? 3 : 2) {
                let refused = await offThePool {
                    guard let attacker = RawPeer(port: port) else { return false }
                    switch approach {
                    case .noHandshake: break
                    case .guessedKey: guard attacker.handshake(as: 2, to: 1, key: .other) else { return false }
                    case .anotherMembersName: guard attacker.handshake(as: 2, to: 1, key: .test) else { return false }
                    }
                    attacker.send(frame)
                    return attacker.closedByTheNode()
                }
                #expect(refused, "\(approach): the node hangs up")
            }
        }

        let statistics = node.transportStatistics
        #expect(statistics.handshakesRejected == 6, "three without a handshake, three with a guessed key")
        #expect(statistics.handshakesAccepted == 3)
        #expect(statistics.framesMisaddressed == 3, "node 2 speaking as node 3")
        #expect(await node.status.term == term, "the term did not move")
        #expect(await node.isLeader)
        #expect(await node.fatalError == nil)
        #expect(await node.store == store, "the store is unchanged")
        #expect(await node.store.get("/_sys/owned") == nil)
        guard case .applied = await node.write(StoreCommand(operation: .put(key: "after", value: [1]))) else {
            Issue.record("the node stopped serving writes")
            await node.stop()
            return
        }
        await node.stop()
    }
}
