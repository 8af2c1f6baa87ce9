import NIOCore

/// Which sealed SWIM packets are fresh: a packet is admitted once, and only while its sender's
/// timestamp is within `window` of this node's clock. Pure — the time comes in as an argument —
/// so it is tested without sockets or clocks.
///
/// This assumes members' wall clocks agree to well within the window (NTP does; the default is
/// 30 s). A member whose clock is off by more has every packet refused as out of window, which
/// `MembershipService` logs and counts.
///
/// Memory is bounded: a stamp is remembered until it is older than the window (after which the
/// window check refuses its copies anyway), and never more than `capacity` stamps at once. When
/// full, the oldest stamp is forgotten and `floor` rises to its time: nothing stamped at or before
/// the floor is admitted again. Under a flood that refuses some genuine packets, never a replay.
/// Forgetting an expired stamp raises the floor too, so a wall clock stepped backwards cannot
/// reopen the window for stamps already forgotten.
struct ReplayWindow: Sendable {
    enum Verdict: Hashable, Sendable {
        case fresh
        /// Seen before, or stamped at or before the floor.
        case replayed
        /// Further than the window from now, in the past or the future.
        case outsideWindow
    }

    let windowMillis: UInt64
    let capacity: Int
    private var seen: Set<PacketStamp> = []
    /// The stamps in `seen`, in the order they were admitted.
    private var order = CircularBuffer<PacketStamp>()
    private(set) var floor: UInt64 = 0

    init(window: Duration, capacity: Int = 32_768) {
        precondition(capacity > 0)
        let (seconds, attoseconds) = window.components
        windowMillis = UInt64(max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000))
        self.capacity = capacity
    }

    /// Stamps remembered now.
    var count: Int { seen.count }

    /// Judges `stamp` at `now` (this node's wall clock in milliseconds) and remembers it if fresh.
    mutating func admit(_ stamp: PacketStamp, now: UInt64) -> Verdict {
        guard Self.distance(stamp.sentAtMillis, now) <= windowMillis else { return .outsideWindow }
        forgetExpired(now: now)
        guard stamp.sentAtMillis > floor, !seen.contains(stamp) else { return .replayed }
        if seen.count >= capacity, let oldest = order.popFirst() {
            seen.remove(oldest)
            floor = max(floor, oldest.sentAtMillis)
            guard stamp.sentAtMillis > floor else { return .replayed }
        }
        seen.insert(stamp)
        order.append(stamp)
        return .fresh
    }

    private mutating func forgetExpired(now: UInt64) {
        while let first = order.first, first.sentAtMillis < now, now - first.sentAtMillis > windowMillis {
            order.removeFirst()
            seen.remove(first)
            floor = max(floor, first.sentAtMillis)
        }
    }

    static func distance(_ a: UInt64, _ b: UInt64) -> UInt64 { a > b ? a - b : b - a }
}
