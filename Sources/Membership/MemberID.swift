/// The identity of a member: a node id chosen by the operator (the same number as its Raft id for
/// gateways). The UDP address it is reached at is kept in its `Member` record, so a member that
/// moves keeps its identity.
public struct MemberID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var node: UInt64

    public init(_ node: UInt64) {
        self.node = node
    }

    public static func < (lhs: MemberID, rhs: MemberID) -> Bool { lhs.node < rhs.node }

    public var description: String { "m\(node)" }
}
