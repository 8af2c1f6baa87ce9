/// One member as some node knows it. The same record is the unit of gossip piggybacked on probes
/// (SWIM §4.1) and of the full push-pull state exchange.
///
/// In gossip, `metadata` is carried only with `alive` records (it is what changes rarely and costs
/// the most bytes); suspect, dead and left records travel without it and the receiver keeps what it
/// knew. `metadataVersion` is 0 when `metadata` is nil.
public struct Member: Hashable, Sendable, CustomStringConvertible {
    public var id: MemberID
    /// The member's SWIM UDP address (`host:port`), where probes go.
    public var address: String
    public var status: MemberStatus
    public var metadata: MemberMetadata?
    /// Increases each time the member publishes new metadata. At the same incarnation the higher
    /// version wins; a higher incarnation carrying metadata replaces it whatever its version (the
    /// member restarted and counts afresh).
    public var metadataVersion: UInt64

    public init(
        id: MemberID, address: String, status: MemberStatus, metadata: MemberMetadata? = nil,
        metadataVersion: UInt64 = 0
    ) {
        self.id = id
        self.address = address
        self.status = status
        self.metadata = metadata
        self.metadataVersion = metadata == nil ? 0 : metadataVersion
    }

    public var description: String { "\(id)@\(address) \(status.kind)(\(status.incarnation))" }
}
