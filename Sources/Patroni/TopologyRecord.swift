import Foundation

/// How the decided topology is stored: one JSON document under `/_sys/topology/postgres`, written
/// only by the leader's watcher, read by every node's route source.
public enum TopologyRecord {
    public static let key = "/_sys/topology/postgres"

    public static func encode(_ topology: PostgresTopology) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // A struct of integers, strings and arrays: encoding cannot fail.
        return Array(try! encoder.encode(topology))
    }

    /// The stored document, or nil when it is not one this version understands (written by a
    /// newer one, say): the reader then treats the topology as unknown rather than guessing.
    public static func decode(_ bytes: [UInt8]) -> PostgresTopology? {
        try? JSONDecoder().decode(PostgresTopology.self, from: Data(bytes))
    }

    /// A floor for the epoch of a stored document `decode` cannot read: its `epoch` field if that
    /// is a number, and never below the key's version (each commit moves the epoch at most once,
    /// so the epoch cannot outgrow the number of writes). The watcher continues above it, so the
    /// epoch never goes backwards across an unreadable record.
    public static func epochFloor(_ bytes: [UInt8], version: UInt64) -> UInt64 {
        let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
        let stored = (object?["epoch"] as? NSNumber).map { $0.uint64Value } ?? 0
        return max(stored, version)
    }
}
