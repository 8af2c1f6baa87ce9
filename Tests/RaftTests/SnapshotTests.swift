import Testing

@testable import Raft

@Suite("Snapshots and compaction (paper §7)")
struct SnapshotTests {
    @Test func laggingFollowerCatchesUpThroughAChunkedSnapshot() throws {
        var cluster = try TestCluster(voters: [1, 2, 3]) { $0.snapshotChunkBytes = 4 }
        cluster.elect(1)
        cluster.isolate(3)
        for text in (0..<20).map({ "w\($0)" }) { cluster.propose(text, on: 1) }
        cluster.tick(1, only: [1, 2])
        let applied = cluster[1].appliedIndex
        let state = Array("state-machine-at-\(applied)".utf8)
        try cluster[1].compact(upTo: applied, snapshotData: state)
        #expect(cluster[1].snapshotIndex == applied)
        #expect(cluster[1].term(at: 2) == nil, "compacted entries are gone")
        cluster.heal()
        var chunks = 0
        for _ in 0..<200 {
            cluster.processReadies()
            chunks += cluster.network.filter { if case .installSnapshot = $0.payload { true } else { false } }.count
            cluster.deliverOnce()
            cluster[1].tick()
        }
        #expect(chunks >= state.count / 4, "sent in chunks of at most 4 bytes")
        let installed = try #require(cluster.installedSnapshots[2].last)
        #expect(installed.data == state)
        #expect(installed.metadata.index == applied)
        #expect(cluster[3].commitIndex >= applied)
        cluster.propose("after", on: 1)
        cluster.tick(2)
        #expect(cluster.appliedCommands(3) == ["after"])
    }

    @Test func outOfOrderChunksAreRefusedAndResent() throws {
        var follower = try RaftCore(options: RaftOptions(id: 2), restoring: .bootstrap(voters: [1, 2]))
        let metadata = SnapshotMetadata(index: 10, term: 1, configuration: ClusterConfiguration(voters: [1, 2]))
        let late = InstallSnapshot(metadata: metadata, offset: 4, data: [5, 6], done: true)
        follower.step(Message(from: 1, to: 2, term: 1, payload: .installSnapshot(late)))
        let ready = follower.ready()
        #expect(
            ready.messages.contains {
                $0.payload == .snapshotResponse(SnapshotResponse(snapshotIndex: 10, receivedBytes: 0))
            })
        #expect(ready.snapshot == nil)
        follower.advance()
        let first = InstallSnapshot(metadata: metadata, offset: 0, data: [1, 2, 3, 4], done: false)
        follower.step(Message(from: 1, to: 2, term: 1, payload: .installSnapshot(first)))
        follower.step(Message(from: 1, to: 2, term: 1, payload: .installSnapshot(late)))
        let installed = follower.ready()
        #expect(installed.snapshot?.data == [1, 2, 3, 4, 5, 6])
        #expect(follower.commitIndex == 10)
        #expect(installed.messages.contains { $0.payload == .appendResponse(AppendResponse(success: true, index: 10)) })
    }

    @Test func compactionBeyondAppliedIsRefused() throws {
        var cluster = try TestCluster(voters: [1])
        cluster.elect(1)
        #expect(throws: RaftError.self) { try cluster[1].compact(upTo: 99, snapshotData: []) }
    }

    @Test func restartFromSnapshotAndLogRestoresState() throws {
        let snapshot = Snapshot(
            metadata: SnapshotMetadata(index: 5, term: 2, configuration: ClusterConfiguration(voters: [1, 2, 3])),
            data: [1])
        let entries = [LogEntry(index: 6, term: 2), LogEntry(index: 7, term: 3)]
        var node = try RaftCore(
            options: RaftOptions(id: 1),
            restoring: RestoredState(
                hardState: HardState(term: 3, votedFor: 2, commit: 6), snapshot: snapshot, entries: entries))
        #expect(node.lastIndex == 7)
        #expect(node.commitIndex == 6)
        #expect(node.appliedIndex == 5)
        #expect(node.term(at: 5) == 2)
        // The committed entry after the snapshot is handed out again to rebuild the state machine.
        let outcome1 = node.ready()
        #expect(outcome1.committedEntries.map(\.index) == [6])
    }

    @Test func restoringAGappedLogIsRefused() {
        let entries = [LogEntry(index: 1, term: 1), LogEntry(index: 3, term: 1)]
        #expect(throws: RaftError.entriesNotContiguous(expected: 2, found: 3)) {
            try RaftCore(
                options: RaftOptions(id: 1),
                restoring: RestoredState(
                    hardState: HardState(), snapshot: RestoredState.bootstrap(voters: [1]).snapshot, entries: entries))
        }
    }
}
