/// The members whose news is still being disseminated (SWIM §4.1: infection-style dissemination
/// piggybacked on probes), each with how often it has been sent.
///
/// The queue holds member ids, not records: what is sent is always the newest record, so newer news
/// about a member replaces older news for free. News that has been sent the fewest times goes
/// first (newest first among equals); after `limit` sends it is dropped.
struct GossipQueue: Sendable {
    struct Entry: Sendable {
        var transmissions: Int
        var order: UInt64
    }

    private(set) var entries: [MemberID: Entry] = [:]
    private var nextOrder: UInt64 = 0

    var isEmpty: Bool { entries.isEmpty }

    /// Queues (or re-queues, with its count reset) news about `member`.
    mutating func enqueue(_ member: MemberID) {
        nextOrder += 1
        entries[member] = Entry(transmissions: 0, order: nextOrder)
    }

    mutating func remove(_ member: MemberID) {
        entries[member] = nil
    }

    /// Every queued member, least transmitted first, then newest first. A total, deterministic order.
    func candidates() -> [MemberID] {
        entries.sorted { lhs, rhs in
            if lhs.value.transmissions != rhs.value.transmissions {
                return lhs.value.transmissions < rhs.value.transmissions
            }
            return lhs.value.order > rhs.value.order
        }.map(\.key)
    }

    /// Counts one more send of `member`'s news; drops it once it reached `limit`.
    mutating func transmitted(_ member: MemberID, limit: Int) {
        guard var entry = entries[member] else { return }
        entry.transmissions += 1
        entries[member] = entry.transmissions >= limit ? nil : entry
    }
}
