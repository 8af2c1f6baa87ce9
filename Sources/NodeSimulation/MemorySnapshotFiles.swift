import Node
import Raft

/// Snapshot files in memory, for the host simulation and tests of the Ready loop: a save that
/// returns is durable and atomic, as the real `SnapshotStore` makes it (temporary file, fsync,
/// rename, directory fsync); crashes do not touch it. The write-ahead log beside it runs on the
/// simulated file system, where crashes do.
package final class MemorySnapshotFiles: SnapshotFiles {
    package init() {}

    private var newest: Snapshot?

    package func save(_ snapshot: Snapshot) throws {
        if let newest, newest.metadata.index > snapshot.metadata.index { return }
        newest = snapshot
    }

    package func loadLatest() throws -> Snapshot? { newest }
}
