/// The leader's view of when each lease expires — pure decision logic, time passed in.
///
/// Deadlines are monotonic instants on the leader alone; they are never replicated. A new leader
/// restarts every lease's TTL in full (`restart`), as etcd does, so a lease may outlive its TTL
/// after a leader change but never expires before `ttl` has passed since the last keepalive any
/// leader acknowledged. Every update takes the later of the old and new deadline: nothing here
/// ever brings an expiry forward.
public struct LeaseDeadlines: Sendable {
    public typealias Instant = ContinuousClock.Instant

    private var deadlines: [UInt64: Instant] = [:]
    /// Leases whose revoke was proposed, and when: they are not kept alive any more, and their
    /// revoke is proposed again after `retryAfter` unless it applied (`revoked`) first.
    private var expiring: [UInt64: Instant] = [:]
    public var retryAfter: Duration

    public init(retryAfter: Duration = .seconds(1)) {
        self.retryAfter = retryAfter
    }

    /// Leases tracked (expiring ones included).
    public var count: Int { deadlines.count + expiring.count }

    /// Leadership began at `now`: every lease gets its whole TTL from now.
    public mutating func restart(_ leases: [(id: UInt64, ttl: Duration)], now: Instant) {
        deadlines = [:]
        expiring = [:]
        for lease in leases { deadlines[lease.id] = now + lease.ttl }
    }

    /// The store's leases after a wholesale change (a resubscription or an installed snapshot):
    /// leases no longer there are forgotten, new ones get their whole TTL from now, and the rest
    /// keep their deadlines.
    public mutating func reconcile(_ leases: [(id: UInt64, ttl: Duration)], now: Instant) {
        let live = Set(leases.map(\.id))
        deadlines = deadlines.filter { live.contains($0.key) }
        expiring = expiring.filter { live.contains($0.key) }
        for lease in leases where deadlines[lease.id] == nil && expiring[lease.id] == nil {
            deadlines[lease.id] = now + lease.ttl
        }
    }

    /// A grant applied at `now`.
    public mutating func granted(_ id: UInt64, ttl: Duration, now: Instant) {
        guard expiring[id] == nil else { return }
        deadlines[id] = later(deadlines[id], now + ttl)
    }

    /// A keepalive at `now`: the lease lives `ttl` from now. False when the lease is already
    /// expiring (its revoke is on its way: the keepalive came too late).
    public mutating func refresh(_ id: UInt64, ttl: Duration, now: Instant) -> Bool {
        guard expiring[id] == nil else { return false }
        deadlines[id] = later(deadlines[id], now + ttl)
        return true
    }

    /// Time left before `id` expires; nil when it is unknown here or already expiring.
    public func remaining(_ id: UInt64, now: Instant) -> Duration? {
        guard let deadline = deadlines[id] else { return nil }
        return max(.zero, deadline - now)
    }

    public func isExpiring(_ id: UInt64) -> Bool { expiring[id] != nil }

    /// The revoke applied (or the lease is gone for another reason).
    public mutating func revoked(_ id: UInt64) {
        deadlines[id] = nil
        expiring[id] = nil
    }

    /// Leases whose deadline has passed at `now`, at most `limit`, earliest first; they move to
    /// expiring, so each is handed out once. Expiring leases whose revoke has not applied within
    /// `retryAfter` are handed out again (a revoke of a revoked lease is a no-op, so a duplicate
    /// is harmless).
    public mutating func takeExpired(now: Instant, limit: Int = .max) -> [UInt64] {
        var due = deadlines.filter { $0.value <= now }.map { (id: $0.key, at: $0.value) }
        due += expiring.filter { now - $0.value >= retryAfter }.map { (id: $0.key, at: $0.value) }
        due.sort { ($0.at, $0.id) < ($1.at, $1.id) }
        let taken = due.prefix(max(0, limit)).map(\.id)
        for id in taken {
            deadlines[id] = nil
            expiring[id] = now
        }
        return taken
    }

    private func later(_ current: Instant?, _ candidate: Instant) -> Instant {
        guard let current else { return candidate }
        return max(current, candidate)
    }
}
