import Foundation

/// One registered worker, as stored at `/_sys/workers/<service>/<id>` (JSON). Both registration
/// styles write this shape; `source` says which one owns the entry, so the SWIM mirror never
/// removes a worker that registered over HTTP and the other way round.
public struct WorkerRecord: Sendable, Hashable, Codable {
    public enum Source: String, Sendable, Hashable, Codable {
        case http
        case swim
    }

    public var service: String
    public var id: String
    /// `host:port` of the worker's HTTP listener.
    public var address: String
    public var tags: [String: String]
    public var source: Source
    /// The worker is leaving: it gets nothing new, what it has in flight finishes.
    public var draining: Bool

    public init(
        service: String, id: String, address: String, tags: [String: String] = [:], source: Source,
        draining: Bool = false
    ) {
        self.service = service
        self.id = id
        self.address = address
        self.tags = tags
        self.source = source
        self.draining = draining
    }

    public static let prefix = "/_sys/workers/"

    public var key: String { Self.key(service: service, id: id) }

    public static func key(service: String, id: String) -> String { "\(prefix)\(service)/\(id)" }

    public var encoded: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(self)) ?? Data())
    }

    /// The record stored under `key`, or nil for a key or value that is not a worker's.
    public init?(key: String, value: [UInt8]) {
        guard key.hasPrefix(Self.prefix),
            let record = try? JSONDecoder().decode(WorkerRecord.self, from: Data(value)),
            record.key == key
        else { return nil }
        self = record
    }
}

/// What a registration may name: checked before anything is proposed.
public enum WorkerNames {
    /// Service names and worker ids: 1–64 of letters, digits, `.`, `_`, `-` (they are key segments
    /// and metric labels, so no `/` and nothing unbounded).
    public static func isValidName(_ name: String) -> Bool {
        guard (1...64).contains(name.utf8.count) else { return false }
        return name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2E || byte == 0x5F || byte == 0x2D
        }
    }

    /// `host:port` with a non-empty host of at most 253 bytes (no scheme, no path) and a port 1–65535.
    /// An IPv6 host is bracketed: `[::1]:8080`.
    public static func parseAddress(_ address: String) -> (host: String, port: Int)? {
        guard let colon = address.lastIndex(of: ":") else { return nil }
        let host = String(address[..<colon])
        guard let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        guard !host.isEmpty, host.utf8.count <= 253 else { return nil }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { return nil }
            return (host, port)
        }
        let allowed = host.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2E || byte == 0x2D
        }
        return allowed ? (host, port) : nil
    }

    /// Tags travel in gossip and in every registry answer: at most 16, keys 1–64 and values up to 256 bytes.
    public static func areValidTags(_ tags: [String: String]) -> Bool {
        tags.count <= 16
            && tags.allSatisfy { (1...64).contains($0.key.utf8.count) && $0.value.utf8.count <= 256 }
    }
}
