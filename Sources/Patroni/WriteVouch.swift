/// Whether this node may route writes to the primary its applied topology names: only within
/// `freshness` of the moment it sent a linearizable read of the topology (ReadIndex, or the
/// leader's lease read) that it had applied when the read returned. Everything committed before
/// that moment — any newer primary included — was applied here by then, so the route is current
/// as of it; past the bound it is not vouched for. A deadline, checked at each use: a process
/// that was paused, or a refresh that is late or stuck, cannot leave a stale "writable" behind.
/// Pure: the caller supplies the clock's readings.
public struct WriteVouch: Sendable, Equatable {
    public var freshness: Duration
    /// When the last confirmed read was sent; nil before the first or after a refusal.
    public private(set) var confirmedAt: ContinuousClock.Instant?
    /// Why the last attempt failed, or "ready".
    public private(set) var lastReason: String

    public init(freshness: Duration) {
        self.freshness = freshness
        confirmedAt = nil
        lastReason = "no linearizable read of the topology confirmed yet"
    }

    /// A read sent at `sentAt` returned, and this node had applied its index.
    public mutating func confirm(sentAt: ContinuousClock.Instant) {
        confirmedAt = max(confirmedAt ?? sentAt, sentAt)
        lastReason = "ready"
    }

    /// This node cannot vouch now (no leader, read refused, readiness failed): writes stop at
    /// once rather than at the bound.
    public mutating func refuse(_ reason: String) {
        confirmedAt = nil
        lastReason = reason
    }

    public func writable(at now: ContinuousClock.Instant) -> Bool {
        guard let confirmedAt else { return false }
        return now < confirmedAt + freshness
    }

    public func reason(at now: ContinuousClock.Instant) -> String {
        guard confirmedAt != nil, !writable(at: now) else { return lastReason }
        return "no linearizable read of the topology confirmed within \(freshness)"
    }
}
