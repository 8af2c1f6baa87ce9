import NIOConcurrencyHelpers

/// The leader's lease clocks, shared by the expiry service that runs them while this node leads
/// (`LeaseExpiry`) and by the node, which answers keepalives from them. Inactive on a follower,
/// and on a new leader until its expiry service has restarted every TTL.
public final class Lessor: Sendable {
    public enum Answer: Sendable, Hashable {
        /// The lease lives; this long is left.
        case alive(remaining: Duration)
        /// Its deadline passed and its revoke is on its way.
        case expiring
        /// This node does not run the lease clocks for the current term.
        case inactive
    }

    private struct State {
        var term: UInt64?
        var deadlines = LeaseDeadlines()
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    /// The term whose clocks are running, if any.
    public var activeTerm: UInt64? { state.withLockedValue { $0.term } }

    /// Leases tracked while active.
    public var count: Int { state.withLockedValue { $0.term == nil ? 0 : $0.deadlines.count } }

    func activate(term: UInt64, leases: [(id: UInt64, ttl: Duration)], now: ContinuousClock.Instant) {
        state.withLockedValue { state in
            state.term = term
            state.deadlines.restart(leases, now: now)
        }
    }

    func deactivate(term: UInt64) {
        state.withLockedValue { state in
            guard state.term == term else { return }
            state.term = nil
            state.deadlines.restart([], now: .now)
        }
    }

    func apply(_ events: [LeaseEvent], now: ContinuousClock.Instant) {
        state.withLockedValue { state in
            for event in events {
                switch event {
                case .granted(let id, let ttl): state.deadlines.granted(id, ttl: .milliseconds(ttl), now: now)
                case .revoked(let id): state.deadlines.revoked(id)
                }
            }
        }
    }

    func reconcile(_ leases: [(id: UInt64, ttl: Duration)], now: ContinuousClock.Instant) {
        state.withLockedValue { $0.deadlines.reconcile(leases, now: now) }
    }

    /// A keepalive for a lease the store holds, on the leader of `term`.
    func refresh(_ id: UInt64, ttl: Duration, term: UInt64, now: ContinuousClock.Instant) -> Answer {
        state.withLockedValue { state in
            guard state.term == term else { return .inactive }
            guard state.deadlines.refresh(id, ttl: ttl, now: now) else { return .expiring }
            return .alive(remaining: state.deadlines.remaining(id, now: now) ?? ttl)
        }
    }

    /// Time left for a lease the store holds. One the clocks have not seen yet (its grant applied
    /// a moment ago) starts its TTL now, as it would a moment later.
    func remaining(_ id: UInt64, ttl: Duration, term: UInt64, now: ContinuousClock.Instant) -> Answer {
        state.withLockedValue { state in
            guard state.term == term else { return .inactive }
            if state.deadlines.isExpiring(id) { return .expiring }
            if state.deadlines.remaining(id, now: now) == nil { state.deadlines.granted(id, ttl: ttl, now: now) }
            return .alive(remaining: state.deadlines.remaining(id, now: now) ?? ttl)
        }
    }

    func takeExpired(now: ContinuousClock.Instant, limit: Int) -> [UInt64] {
        state.withLockedValue { $0.term == nil ? [] : $0.deadlines.takeExpired(now: now, limit: limit) }
    }

    func revoked(_ id: UInt64) {
        state.withLockedValue { $0.deadlines.revoked(id) }
    }
}
