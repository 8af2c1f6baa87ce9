import Foundation
import Raft

/// Where a cluster member can be reached, replicated under `/_sys/members/<id>` so that every node
/// (and a node restarted later) can dial a member that was added at runtime. Raft's configuration
/// entries carry only ids; the addresses live in the store beside them, written before the
/// configuration change that needs them.
public struct MemberRecord: Sendable, Hashable, Codable {
    public static let prefix = "/_sys/members/"

    public var id: NodeID
    /// The Raft peer port, host:port.
    public var raft: String
    /// The HTTP API, host:port, when known (redirects to the leader and `raftgate member` use it).
    public var http: String?

    public init(id: NodeID, raft: String, http: String? = nil) {
        self.id = id
        self.raft = raft
        self.http = http
    }

    public var key: String { Self.prefix + String(id) }

    public var encoded: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(self)) ?? Data())
    }

    public init?(key: String, value: [UInt8]) {
        guard key.hasPrefix(Self.prefix), let id = NodeID(key.dropFirst(Self.prefix.count)),
            let decoded = try? JSONDecoder().decode(MemberRecord.self, from: Data(value)), decoded.id == id
        else { return nil }
        self = decoded
    }

    /// The Raft address split for the transport, nil when it is not host:port.
    public var raftEndpoint: (host: String, port: Int)? { Self.endpoint(raft) }
    /// The Raft address when another node can dial it.
    public var dialableRaftEndpoint: (host: String, port: Int)? { Self.dialable(raft) }

    /// A bind-all address (0.0.0.0, ::): where a node listens, never where another can reach it.
    /// A record holding one would override the flags' good address on every node.
    public static func isUnspecified(host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if bare.isEmpty || bare == "*" { return true }
        if bare.contains(":") { return bare.split(separator: ":").allSatisfy { $0.allSatisfy { $0 == "0" } } }
        return bare.split(separator: ".", omittingEmptySubsequences: false).count == 4
            && bare.split(separator: ".").allSatisfy { $0.allSatisfy { $0 == "0" } }
    }

    /// `endpoint`, unless its host is unspecified (see `isUnspecified`).
    public static func dialable(_ text: String) -> (host: String, port: Int)? {
        guard let endpoint = endpoint(text), !isUnspecified(host: endpoint.host) else { return nil }
        return endpoint
    }

    public static func endpoint(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port), colon > text.startIndex
        else { return nil }
        return (String(text[..<colon]), port)
    }
}
