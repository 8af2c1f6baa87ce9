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
}
