/// What the instance asks its host to do, returned from every input.
public enum SWIMDirective: Hashable, Sendable {
    /// Send `message` to `address`. A `.pushPull(.response, …)` is the answer to a push-pull
    /// request and goes back on the TCP connection that request came in on; everything else is
    /// one UDP datagram (encode with `SWIMWireCodec.encodeDatagram`).
    case send(SWIMMessage, to: String)
    /// Open a TCP connection to `address`, send `SWIMInstance.pushPullRequest()` (taken at that
    /// moment) and feed the response back through `receive(_:from:)` or `mergePushPull(_:)`.
    /// A failed connection needs no report: the instance retries on its own schedule.
    case startPushPull(to: String)
    /// A member's status, metadata or address changed in this node's view (including this node's
    /// own record). Subscribers of the membership layer are told.
    case memberChanged(MemberChange)
}

/// One change of a member in this node's view.
public struct MemberChange: Hashable, Sendable, CustomStringConvertible {
    /// The status before; nil when the member was not known.
    public var previousStatus: MemberStatus?
    /// The member as now known.
    public var member: Member

    public init(previousStatus: MemberStatus?, member: Member) {
        self.previousStatus = previousStatus
        self.member = member
    }

    public var status: MemberStatus { member.status }

    public var description: String {
        let before = previousStatus.map { "\($0.kind)(\($0.incarnation))" } ?? "unknown"
        return "\(member.id): \(before) → \(member.status.kind)(\(member.status.incarnation))"
    }
}
