/// What a member tells the cluster about itself beyond being reachable. The member owns it and
/// publishes new versions with `SWIMInstance.updateMetadata(_:)`; the version number lives in the
/// `Member` record (`metadataVersion`).
public struct MemberMetadata: Hashable, Sendable {
    /// The node's id in the rest of the system (its Raft id for gateways).
    public var nodeID: UInt64
    public var role: MemberRole
    /// Where its HTTP API listens (`host:port`).
    public var httpAddress: String
    /// Where its Raft peer transport listens; empty for workers.
    public var raftAddress: String
    /// Where its SWIM UDP socket listens.
    public var swimAddress: String
    /// Free-form labels (zone, version, capacity …). Keep them short: they travel in gossip.
    public var tags: [String: String]

    public init(
        nodeID: UInt64, role: MemberRole, httpAddress: String = "", raftAddress: String = "",
        swimAddress: String = "", tags: [String: String] = [:]
    ) {
        self.nodeID = nodeID
        self.role = role
        self.httpAddress = httpAddress
        self.raftAddress = raftAddress
        self.swimAddress = swimAddress
        self.tags = tags
    }
}

/// What a member does. Kept as a string on the wire so that new roles do not break old nodes.
public struct MemberRole: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    /// A raftgate gateway: a Raft voter or learner that serves the HTTP API.
    public static let gateway = MemberRole(rawValue: "gateway")
    /// A worker behind the gateways: discovered and proxied to, never a Raft member.
    public static let worker = MemberRole(rawValue: "worker")

    public var description: String { rawValue }
}
