/// What one member believes about another (SWIM §4.2, with a `left` state for graceful leave).
///
/// Every status carries the incarnation number it is about. Only the member itself increments its
/// incarnation (to refute a suspicion); everyone else just repeats it.
public enum MemberStatus: Hashable, Sendable {
    /// Answering probes, as of `incarnation`.
    case alive(incarnation: UInt64)
    /// A probe failed; `confirmations` holds the members that suspect it independently (the first
    /// suspector included), which shortens the suspicion timeout (Lifeguard §IV-B).
    case suspect(incarnation: UInt64, confirmations: Set<MemberID>)
    /// Suspected for longer than the suspicion timeout without refuting (SWIM §4.2 "confirm").
    case dead(incarnation: UInt64)
    /// Announced its own departure; never resurrected by alive gossip of the same incarnation.
    case left(incarnation: UInt64)

    /// The status without its data, for counting and comparing.
    public enum Kind: Int, Hashable, Sendable, CaseIterable, Comparable, CustomStringConvertible {
        case alive = 0
        case suspect = 1
        case dead = 2
        case left = 3

        public static func < (lhs: Kind, rhs: Kind) -> Bool { lhs.rawValue < rhs.rawValue }

        public var description: String {
            switch self {
            case .alive: "alive"
            case .suspect: "suspect"
            case .dead: "dead"
            case .left: "left"
            }
        }
    }

    public var incarnation: UInt64 {
        switch self {
        case .alive(let incarnation), .suspect(let incarnation, _), .dead(let incarnation), .left(let incarnation):
            incarnation
        }
    }

    public var kind: Kind {
        switch self {
        case .alive: .alive
        case .suspect: .suspect
        case .dead: .dead
        case .left: .left
        }
    }

    /// Alive or suspect: still probed, still a member.
    public var isReachable: Bool { kind == .alive || kind == .suspect }

    /// Whether news of `self` replaces a record holding `other`.
    ///
    /// SWIM §4.2 orders the updates about one member: a higher incarnation always wins; at the same
    /// incarnation suspect overrides alive and dead ("confirm") overrides both. We extend the order
    /// with `left` above `dead`, so a graceful leave is never undone by older or equal gossip, and
    /// we let a higher incarnation override `dead` too, so a member that was declared dead and
    /// comes back (it refutes with a higher incarnation) becomes alive again, as memberlist does.
    public func supersedes(_ other: MemberStatus) -> Bool {
        if incarnation != other.incarnation { return incarnation > other.incarnation }
        return kind > other.kind
    }
}
