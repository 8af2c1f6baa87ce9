import Foundation
import Raft
import Testing

@testable import Node

@Suite("Log compaction by bytes")
struct CompactionByBytesTests {
    /// A few large values trigger a snapshot long before the entry threshold would, and the node
    /// restarts from it with every acknowledged write.
    @Test func largeEntriesCompactTheLogBeforeTheEntryThreshold() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("compact-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = NodeConfiguration(
            id: 1, dataDirectory: root, raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1], peers: [:],
            clusterKey: .test)
        configuration.tickInterval = .milliseconds(20)
        configuration.compactionThreshold = 1_000_000
        configuration.compactionBytes = 10_000
        var node = try await RaftNode.start(configuration)
        let elected = ContinuousClock.now + .seconds(10)
        while await !node.isLeader && ContinuousClock.now < elected { try await Task.sleep(for: .milliseconds(10)) }
        #expect(await node.status.snapshotIndex == 0)
        for index in 0..<4 {
            let outcome = await node.write(
                StoreCommand(operation: .put(key: "big/\(index)", value: Array(repeating: UInt8(index), count: 3000))))
            guard case .applied(.applied, _) = outcome else {
                Issue.record("write \(index): \(outcome)")
                return
            }
        }
        let compacted = await node.status.snapshotIndex
        #expect(compacted > 0, "12 KB of entries passed the 10 KB bound")
        await node.stop()
        node = try await RaftNode.start(configuration)
        #expect(await node.status.snapshotIndex == compacted, "restarted from the snapshot")
        let restored = ContinuousClock.now + .seconds(10)
        while await node.store.count < 4 && ContinuousClock.now < restored {
            try await Task.sleep(for: .milliseconds(10))
        }
        for index in 0..<4 {
            #expect(await node.store.get("big/\(index)")?.value == Array(repeating: UInt8(index), count: 3000))
        }
        await node.stop()
    }
}
