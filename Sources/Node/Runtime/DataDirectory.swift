import Foundation

/// What a node's data directory holds, judged before the node starts.
public enum DataDirectory {
    /// True when `directory` holds a log or a finished snapshot: the node has state and restarts
    /// from it. A `*.snap.tmp` left by a save the process did not finish does not count (the next
    /// start deletes it), so a joining node killed while writing its first base snapshot is still
    /// fresh and joins again instead of inventing a configuration from its flags.
    public static func holdsState(_ directory: String) -> Bool {
        let manager = FileManager.default
        if let names = try? manager.contentsOfDirectory(atPath: directory + "/wal"), !names.isEmpty {
            return true
        }
        let snapshots = (try? manager.contentsOfDirectory(atPath: directory + "/snapshots")) ?? []
        return snapshots.contains { $0.hasSuffix(".snap") }
    }
}
