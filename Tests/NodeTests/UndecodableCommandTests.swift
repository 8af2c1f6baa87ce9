import Foundation
import Raft
import Testing

@testable import Node

@Suite("A committed command the node cannot decode")
struct UndecodableCommandTests {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("undecodable-\(UUID().uuidString)").path

    func put(_ key: String, at index: UInt64) -> LogEntry {
        LogEntry(
            index: index, term: 1, kind: .command,
            data: StoreCommand(operation: .put(key: key, value: Array(key.utf8))).encoded)
    }

    @Test func stopsTheNodeAndNothingAfterItIsApplied() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        // What a newer version might have committed: a command encoding version this one does not know
        // (2 carries leases, 3 an idempotency stamp).
        let unknown = LogEntry(index: 2, term: 1, kind: .command, data: [9, 1, 0, 0, 0, 0])
        let (wal, _) = try WriteAheadLog.open(directory: root + "/wal")
        wal.append(
            entries: [put("before", at: 1), unknown, put("after", at: 3)],
            hardState: HardState(term: 1, votedFor: nil, commit: 3))
        try wal.sync()

        var configuration = NodeConfiguration(
            id: 1, dataDirectory: root, raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1, 2, 3], peers: [:],
            clusterKey: .test)
        configuration.tickInterval = .seconds(60)  // no elections: only the restored commits apply
        let node = try await RaftNode.start(configuration)
        // A read runs the Ready loop, which applies the three restored commits in order.
        let read = await node.read("before", consistency: .linearizable)
        guard case .unavailable = read else {
            Issue.record("a stopped node must not serve the read, got \(read)")
            return
        }
        let reason = try #require(await node.fatalError)
        #expect(reason.contains("committed entry 2 (term 1)"), "\(reason)")
        #expect(reason.contains("unsupportedVersion"), "\(reason)")
        let store = await node.store
        #expect(store.get("before") != nil, "entries before it were applied")
        #expect(store.get("after") == nil, "nothing after it is applied")
        #expect(store.revision == 1)
        await node.stop()
    }
}
