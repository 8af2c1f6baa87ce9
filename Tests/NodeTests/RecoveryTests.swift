import Foundation
import Raft
import Testing

@testable import Node

@Suite("Starting a node from what a crash left on disk")
struct RecoveryTests {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("recovery-\(UUID().uuidString)").path

    func configuration() -> NodeConfiguration {
        var configuration = NodeConfiguration(
            id: 1, dataDirectory: root, raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1, 2, 3], peers: [:],
            clusterKey: .test)
        configuration.tickInterval = .seconds(60)  // no elections during the test
        return configuration
    }

    func entries(_ range: ClosedRange<UInt64>, term: UInt64) -> [LogEntry] {
        range.map { LogEntry(index: $0, term: term, kind: .noop) }
    }

    /// Leaves on disk what a crash could: a WAL holding entries 1…30 of `logTerm`, and a snapshot
    /// file at 20 (term 3) that the WAL never recorded.
    func prepareSnapshotAhead(ofLogInTerm logTerm: UInt64, commit: UInt64) throws {
        let (wal, _) = try WriteAheadLog.open(directory: root + "/wal")
        wal.append(
            entries: entries(1...30, term: logTerm), hardState: HardState(term: 3, votedFor: nil, commit: commit))
        try wal.sync()
        let metadata = SnapshotMetadata(index: 20, term: 3, configuration: ClusterConfiguration(voters: [1, 2, 3]))
        try SnapshotStore(directory: root + "/snapshots").save(
            Snapshot(metadata: metadata, data: KeyValueStore().snapshot))
    }

    @Test func snapshotSavedButNotLoggedDropsTheReplacedLog() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        // The old log is of term 2; a leader's snapshot at 20 (term 3) was saved, and the crash
        // came before the WAL recorded it.
        try prepareSnapshotAhead(ofLogInTerm: 2, commit: 10)
        let node = try await RaftNode.start(configuration())
        let status = await node.status
        #expect(status.snapshotIndex == 20)
        #expect(status.lastIndex == 20, "entries 21…30 belonged to the replaced log")
        #expect(status.commitIndex == 20)
        await node.stop()
        // The decision was written down: the WAL alone now says the log restarts after 20, so
        // entries appended from here on are not judged against the old log on the next start.
        let (_, replay) = try WriteAheadLog.open(directory: root + "/wal")
        #expect(replay.snapshotIndex == 20)
        #expect(replay.entries.isEmpty)
    }

    @Test func snapshotMatchingTheLogKeepsTheEntriesAfterIt() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        try prepareSnapshotAhead(ofLogInTerm: 3, commit: 25)
        let node = try await RaftNode.start(configuration())
        let status = await node.status
        #expect(status.lastIndex == 30)
        #expect(status.commitIndex == 25)
        await node.stop()
    }

    @Test func missingSnapshotFileBehindACompactedWALStopsTheStart() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (wal, _) = try WriteAheadLog.open(directory: root + "/wal")
        wal.appendSnapshotMarker(index: 50, term: 2)
        try wal.sync()
        await #expect(throws: WALError.self) { _ = try await RaftNode.start(configuration()) }
    }

    @Test func oversizedCommandsAreRefusedBeforeProposing() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = configuration()
        configuration.maxCommandBytes = 1024
        let node = try await RaftNode.start(configuration)
        let outcome = await node.write(
            StoreCommand(operation: .put(key: "big", value: [UInt8](repeating: 1, count: 2048))))
        guard case .notApplied = outcome else {
            Issue.record("expected a refusal, got \(outcome)")
            return
        }
        #expect(await node.status.lastIndex == 0, "nothing reached the log")
        await node.stop()
    }

    @Test func corruptWALStopsTheStartWithFileAndOffset() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (wal, _) = try WriteAheadLog.open(directory: root + "/wal")
        wal.append(entries: entries(1...30, term: 1))
        try wal.sync()
        let path = wal.segmentPaths[0]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count / 3] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        do {
            _ = try await RaftNode.start(configuration())
            Issue.record("a corrupt WAL must stop the node")
        } catch let error as WALError {
            #expect(String(describing: error).contains(path))
            #expect(String(describing: error).contains("at byte"))
        }
    }
}
