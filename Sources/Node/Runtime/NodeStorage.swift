import Raft

/// Where a node keeps its snapshots: the real `SnapshotStore` (files written to a temporary name,
/// fsync'ed, renamed into place), or an in-memory one in the host simulation. Either way a save
/// that returns is durable and atomic.
package protocol SnapshotFiles {
    func save(_ snapshot: Snapshot) throws
    func loadLatest() throws -> Snapshot?
}

extension SnapshotStore: SnapshotFiles {}

/// A node's durable state — the write-ahead log and the snapshot files — and the rules that tie
/// them together: how they are read back at start, what a `Ready` writes, and what compaction
/// writes. `RaftNode` and the host simulation use this same code, on the real disk and on a
/// simulated file system.
package final class NodeStorage {
    package let wal: WriteAheadLog
    package let snapshots: any SnapshotFiles

    private init(wal: WriteAheadLog, snapshots: any SnapshotFiles) {
        self.wal = wal
        self.snapshots = snapshots
    }

    /// What a start found.
    package struct Opened {
        package var storage: NodeStorage
        package var restored: RestoredState
        /// A torn write cut off the end of the log (the host logs it).
        package var truncatedTail: WALRecovery.TornTail?
    }

    /// Reads the log and the newest snapshot back and reconciles them.
    package static func open(
        walDirectory: String, fileSystem: any WALFileSystem = POSIXFileSystem(), snapshots: any SnapshotFiles,
        initialVoters: [NodeID]
    ) throws -> Opened {
        let (wal, recovery) = try WriteAheadLog.open(directory: walDirectory, fileSystem: fileSystem)
        let base = try snapshots.loadLatest() ?? RestoredState.bootstrap(voters: initialVoters).snapshot
        var entries = recovery.entries.filter { $0.index > base.metadata.index }
        if base.metadata.index > recovery.snapshotIndex {
            // The snapshot file is newer than anything the WAL recorded: a crash came between
            // saving a snapshot installed from the leader and logging it. The WAL's entries after
            // it belong to the same log only if the WAL holds the snapshot's last entry with the
            // same term (Log Matching); otherwise they are the replaced log and must not return.
            let boundary = recovery.entries.first { $0.index == base.metadata.index }
            let matches = boundary?.term == base.metadata.term
            if !matches { entries = [] }
            // Record the decision durably now: entries appended after this start must not be
            // judged against the old log again on the next one.
            if matches {
                wal.appendSnapshotMarker(index: base.metadata.index, term: base.metadata.term)
            } else {
                wal.append(entries: [], snapshot: base.metadata)
            }
            try wal.sync()
        } else if base.metadata.index < recovery.snapshotIndex {
            throw WALError.corrupt(
                file: walDirectory, offset: 0,
                reason:
                    "the WAL was compacted behind a snapshot at \(recovery.snapshotIndex), but the newest snapshot file is at \(base.metadata.index)"
            )
        }
        // The commit index is not fsync'ed on its own, and lowering it is always safe.
        var hardState = recovery.hardState
        hardState.commit = min(hardState.commit, base.metadata.index + UInt64(entries.count))
        return Opened(
            storage: NodeStorage(wal: wal, snapshots: snapshots),
            restored: RestoredState(hardState: hardState, snapshot: base, entries: entries),
            truncatedTail: recovery.truncatedTail)
    }

    /// Persists a `Ready` in the order its contract asks, and fsyncs when `Ready.mustSync` says
    /// so (a Ready that changes only the commit index rides along with the next fsync). Returns
    /// how long the fsync took, nil when there was none.
    package func persist(_ ready: Ready) throws -> Duration? {
        if let snapshot = ready.snapshot {
            // The snapshot file first: the WAL's marker must never point past a snapshot on disk.
            try snapshots.save(snapshot)
        }
        wal.append(entries: ready.entries, hardState: ready.hardState, snapshot: ready.snapshot?.metadata)
        guard ready.mustSync else { return nil }
        let started = ContinuousClock.now
        try wal.sync()
        return ContinuousClock.now - started
    }

    /// Saves a snapshot the node took of its own state and drops the log it covers.
    package func saveCompaction(_ snapshot: Snapshot) throws {
        try snapshots.save(snapshot)
        wal.appendSnapshotMarker(index: snapshot.metadata.index, term: snapshot.metadata.term)
        try wal.sync()
        try wal.releaseSegments(coveredBy: snapshot.metadata.index)
    }

    package var fsyncCount: Int { wal.fsyncCount }
}
