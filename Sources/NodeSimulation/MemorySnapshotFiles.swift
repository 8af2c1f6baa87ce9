import Node
import Raft

/// Snapshot files for the host simulation: a save that returns is durable and atomic, as the real
/// `SnapshotStore` makes it (temporary file, fsync, rename, directory fsync); crashes do not touch
/// it. The write-ahead log beside it runs on the simulated file system, where crashes do.
final class MemorySnapshotFiles: SnapshotFiles {
    private var newest: Snapshot?

    func save(_ snapshot: Snapshot) throws {
        if let newest, newest.metadata.index > snapshot.metadata.index { return }
        newest = snapshot
    }

    func loadLatest() throws -> Snapshot? { newest }
}
