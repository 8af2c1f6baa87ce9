/// Picks the stamp a leader puts on a keyed command: the log's clock for forgetting idempotency
/// keys (`IdempotencyTable`). Pure: the wall clock and a monotonic reading are passed in.
///
/// The stamp is the leader's wall time, but never more than the log's clock has had time to
/// advance: at most the largest stamp this node has seen (applied, or stamped itself) plus the
/// monotonic time elapsed since it saw it. A leader whose wall clock is an hour ahead would
/// otherwise move the log's clock an hour at once and every replica would forget every key in the
/// window at that index; bounded, the clock runs at real speed whatever the wall clocks say. It
/// never runs backwards: a leader whose wall clock is behind stamps the clock it has seen.
struct IdempotencyStamper: Sendable, Hashable {
    /// The largest stamp seen, and the monotonic reading when it was first seen.
    private(set) var seen: UInt64 = 0
    private var seenAt: Duration?

    /// The store's clock after applying: a larger one restarts the elapsed time from `now`.
    mutating func observe(_ clock: UInt64, at now: Duration) {
        guard clock > seen || seenAt == nil else { return }
        seen = max(seen, clock)
        seenAt = now
    }

    /// The stamp for a command proposed now. The first stamp a cluster ever takes (the log's clock
    /// is still 0, so no key can be forgotten by it) is the wall time.
    mutating func stamp(wallMilliseconds: UInt64, at now: Duration) -> UInt64 {
        let stamp: UInt64
        if seen == 0 {
            stamp = max(1, wallMilliseconds)
        } else {
            let elapsed = max(.zero, now - (seenAt ?? now))
            let bound =
                seen + UInt64(elapsed.components.seconds) * 1000
                + UInt64(elapsed.components.attoseconds / 1_000_000_000_000_000)
            stamp = max(seen, min(wallMilliseconds, bound))
        }
        observe(stamp, at: now)
        return stamp
    }
}
