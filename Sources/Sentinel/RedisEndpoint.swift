/// Where a Redis (or a Sentinel) listens: a host name or IP literal and a TCP port.
public struct RedisEndpoint: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port`; nil for anything else (no port, a port outside 1–65535, an empty host).
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let host = String(text[..<colon])
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (1...65_535).contains(port) else {
            return nil
        }
        self.init(host: host, port: port)
    }

    public var description: String { "\(host):\(port)" }

    /// Stored and shown as the `host:port` string.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let endpoint = RedisEndpoint(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not host:port"))
        }
        self = endpoint
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public static func < (lhs: RedisEndpoint, rhs: RedisEndpoint) -> Bool {
        (lhs.host, lhs.port) < (rhs.host, rhs.port)
    }
}
