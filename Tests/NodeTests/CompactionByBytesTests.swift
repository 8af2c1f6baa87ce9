import Foundation
import NodeSimulation
import Raft
import RaftSimulation
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
        // Checkpoints after 12 KB and 24 KB; the second compacts to the first.
        for index in 0..<8 {
            let outcome = await node.write(
                StoreCommand(operation: .put(key: "big/\(index)", value: Array(repeating: UInt8(index), count: 3000))))
            guard case .applied(.applied, _) = outcome else {
                Issue.record("write \(index): \(outcome)")
                return
            }
        }
        let compacted = await node.status.snapshotIndex
        #expect(compacted > 0, "24 KB of entries passed the 10 KB bound twice")
        await node.stop()
        node = try await RaftNode.start(configuration)
        #expect(await node.status.snapshotIndex == compacted, "restarted from the snapshot")
        let restored = ContinuousClock.now + .seconds(10)
        while await node.store.count < 8 && ContinuousClock.now < restored {
            try await Task.sleep(for: .milliseconds(10))
        }
        for index in 0..<8 {
            #expect(await node.store.get("big/\(index)")?.value == Array(repeating: UInt8(index), count: 3000))
        }
        await node.stop()
    }

    /// Review finding 4: compaction by bytes keeps a catch-up tail behind the snapshot — between
    /// one and two bounds' worth of entries — so a follower lagging by less is sent entries, not a
    /// snapshot. A restart rebuilds the same store from the snapshot and the tail.
    @Test func byteCompactionKeepsACatchUpTail() throws {
        let fileSystem = SimulatedFileSystem(seed: 7)
        let snapshots = MemorySnapshotFiles()
        var walOptions = WriteAheadLog.Options()
        walOptions.segmentBytes = 4096
        func open() throws -> ReadyLoop {
            let opened = try NodeStorage.open(
                walDirectory: "/wal", walOptions: walOptions, fileSystem: fileSystem, snapshots: snapshots,
                initialVoters: [1])
            var loop = try ReadyLoop(
                opened: opened, options: RaftOptions(id: 1), compactionThreshold: 1_000_000, historyLimits: .init())
            loop.compactionBytes = 10_000
            for _ in 0..<20 { loop.core.tick() }  // a single voter elects itself
            return loop
        }
        var loop = try open()
        var compactions: [UInt64] = []
        var checkpoints: [UInt64] = []
        func drain() {
            while let step = loop.next() {
                #expect(step.failure == nil)
                if let index = step.compactedTo { compactions.append(index) }
            }
            if let index = loop.checkpoint?.index, checkpoints.last != index { checkpoints.append(index) }
        }
        drain()
        for index in 0..<12 {
            let command = StoreCommand(
                operation: .put(key: "big/\(index)", value: Array(repeating: UInt8(index), count: 3000)))
            _ = loop.core.propose(command.encoded)
            drain()
        }
        // Every fourth 3 KB write passes the 10 KB bound: three checkpoints, and each after the
        // first compacts the log only to the one before it.
        #expect(checkpoints.count == 3)
        #expect(compactions == Array(checkpoints.dropLast()))
        let snapshotIndex = loop.core.snapshotIndex
        #expect(snapshotIndex == checkpoints[1])
        #expect(loop.appliedIndex - snapshotIndex >= 4, "the last four writes are still in the log")
        let store = loop.store
        loop = try open()
        #expect(loop.core.snapshotIndex == snapshotIndex, "restarted from the snapshot")
        drain()
        #expect(loop.store.count == 12)
        #expect(loop.store.get("big/11") == store.get("big/11"))
        #expect(loop.store.get("big/0") == store.get("big/0"))
    }

    /// Once byte checkpoints keep a tail, the entry threshold counts from the last checkpoint and
    /// compacts to the one before it too, instead of compacting the tail away.
    @Test func theEntryThresholdKeepsTheTailOnceCheckpointsAreTaken() throws {
        let opened = try NodeStorage.open(
            walDirectory: "/wal", fileSystem: SimulatedFileSystem(seed: 9), snapshots: MemorySnapshotFiles(),
            initialVoters: [1])
        var loop = try ReadyLoop(
            opened: opened, options: RaftOptions(id: 1), compactionThreshold: 6, historyLimits: .init())
        loop.compactionBytes = 10_000
        for _ in 0..<20 { loop.core.tick() }
        while loop.next() != nil {}
        // Four 3 KB writes: a byte checkpoint.
        for index in 0..<4 {
            let command = StoreCommand(operation: .put(key: "big/\(index)", value: Array(repeating: 1, count: 3000)))
            _ = loop.core.propose(command.encoded)
            while loop.next() != nil {}
        }
        let first = try #require(loop.checkpoint?.index)
        #expect(loop.core.snapshotIndex == 0)
        // Small writes: six past the checkpoint the entry threshold compacts to it, not further.
        for index in 0..<6 {
            _ = loop.core.propose(StoreCommand(operation: .put(key: "small/\(index)", value: [1])).encoded)
            while loop.next() != nil {}
        }
        #expect(loop.core.snapshotIndex == first)
        #expect(loop.appliedIndex - loop.core.snapshotIndex >= 6, "the six small writes are still in the log")
    }
}
