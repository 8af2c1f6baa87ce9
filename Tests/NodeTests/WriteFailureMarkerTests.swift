import Foundation
import NodeSimulation
import Raft
import RaftSimulation
import Testing

@testable import Node

/// A node that stopped on a storage error does not start again on the same boot: the page cache
/// may show it data that never reached the disk (Linux marks pages whose fsync failed clean).
@Suite("Storage failures are remembered until a reboot")
struct WriteFailureMarkerTests {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("marker-\(UUID().uuidString)").path

    @Test func aRecordedFailureRefusesTheSameDataDirectoryOnly() throws {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let marker = WriteFailureMarker(dataDirectory: "/var/lib/raftgate/node-1", root: root)
        try marker.check(dataDirectory: "/var/lib/raftgate/node-1")
        marker.record("cannot persist: WAL fsync failed: errno 5")
        #expect(throws: WriteFailureMarker.Refused.self) { try marker.check(dataDirectory: "/var/lib/raftgate/node-1") }
        let other = WriteFailureMarker(dataDirectory: "/var/lib/raftgate/node-2", root: root)
        try other.check(dataDirectory: "/var/lib/raftgate/node-2")
        #expect(
            WriteFailureMarker(dataDirectory: "/var/lib/raftgate/./node-1", root: root).path == marker.path,
            "the same directory however it is spelled")
    }

    @Test func theReadyLoopSaysWhenTheDiskFailed() throws {
        let fileSystem = SimulatedFileSystem(seed: 3)
        let snapshots = MemorySnapshotFiles()
        let opened = try NodeStorage.open(
            walDirectory: "/wal", fileSystem: fileSystem, snapshots: snapshots, initialVoters: [1])
        var loop = try ReadyLoop(
            opened: opened, options: RaftOptions(id: 1), compactionThreshold: 100, historyLimits: .init())
        for _ in 0..<20 { loop.core.tick() }  // a single voter elects itself
        fileSystem.failNextSyncs(1)
        var failed: ReadyStep?
        while let step = loop.next() {
            if step.failure != nil { failed = step }
        }
        let step = try #require(failed)
        #expect(step.storageFailed)
        #expect(step.messages.isEmpty, "nothing is sent after a failed persist")
        #expect(loop.next() == nil, "a stopped loop does nothing more")
    }

    @Test func aNodeRefusesToStartAfterAStorageFailureOnThisBoot() async throws {
        let markers = root + "/shm"
        try FileManager.default.createDirectory(atPath: markers, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = NodeConfiguration(
            id: 1, dataDirectory: root + "/data", raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1], peers: [:],
            clusterKey: .test)
        configuration.writeFailureMarkerRoot = markers
        configuration.writeFailureMarker.record("cannot persist: WAL fsync failed: errno 5")
        do {
            let node = try await RaftNode.start(configuration)
            await node.stop()
            Issue.record("the node started on the boot its disk failed")
        } catch let refused as WriteFailureMarker.Refused {
            #expect(refused.message.contains("Reboot the machine first"))
        }
        try FileManager.default.removeItem(atPath: configuration.writeFailureMarker.path)
        let node = try await RaftNode.start(configuration)
        await node.stop()
    }
}
