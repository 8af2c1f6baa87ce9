/// What members send each other. Everything but `pushPull` travels in one UDP datagram; `pushPull`
/// travels over a TCP connection the shell opens for it.
public enum SWIMMessage: Hashable, Sendable {
    /// A probe of `target` (SWIM §3.1). `target` guards against a different member now living at the
    /// address; the receiver acks only if it is `target`.
    case ping(sequence: UInt64, target: MemberID, gossip: [Member])
    /// "Probe `target` for me" (SWIM §3.1 ping-req), sent to k members after a missed direct ack.
    case pingRequest(sequence: UInt64, target: MemberID, targetAddress: String, gossip: [Member])
    /// The answer to a ping from `target`, or relayed by an intermediary for a ping-req.
    case ack(sequence: UInt64, target: MemberID, gossip: [Member])
    /// From an intermediary whose own ping to the target went unanswered (Lifeguard §IV-A): the
    /// requester learns that the intermediary at least is alive and reachable.
    case nack(sequence: UInt64, gossip: [Member])
    /// Full state exchange: the initiator sends a request with its member list, the other side
    /// answers on the same connection with a response holding its own.
    case pushPull(PushPullKind, members: [Member])
    /// A member leaving gracefully tells a few members directly; gossip carries it to the rest.
    case leave(member: MemberID, incarnation: UInt64)

    /// The member records carried (piggybacked gossip, or the push-pull state).
    public var gossip: [Member] {
        switch self {
        case .ping(_, _, let gossip), .pingRequest(_, _, _, let gossip), .ack(_, _, let gossip),
            .nack(_, let gossip):
            gossip
        case .pushPull(_, let members): members
        case .leave: []
        }
    }
}

public enum PushPullKind: UInt8, Hashable, Sendable {
    case request = 0
    case response = 1
}
