/// Randomized round-robin choice of probe targets (SWIM §4.3): the members are shuffled, probed in
/// that order, and reshuffled when the walk reaches the end; new members are inserted at uniformly
/// random positions. Every member is probed once per round of n − 1 periods, so a crashed member is
/// probed by each other member within 2n − 2 periods at worst (instead of unboundedly late, as with
/// purely random choice).
struct ProbeOrder: Sendable {
    private(set) var order: [MemberID] = []
    private(set) var position = 0

    /// Adds `member` at a random position, unless already there.
    mutating func insert(_ member: MemberID, random: inout SWIMRandom) {
        guard !order.contains(member) else { return }
        let index = random.next(below: order.count + 1)
        order.insert(member, at: index)
        // Inserted behind the walk: keep pointing at the same next member.
        if index < position { position += 1 }
    }

    /// The next member to probe, or nil when nobody is probeable. Entries that are no longer
    /// probeable (dead, left, forgotten) are skipped, and dropped at the next reshuffle.
    mutating func next(
        random: inout SWIMRandom, isProbeable: (MemberID) -> Bool, everyone: () -> [MemberID]
    ) -> MemberID? {
        for pass in 0..<2 {
            while position < order.count {
                let candidate = order[position]
                position += 1
                if isProbeable(candidate) { return candidate }
            }
            if pass == 0 {
                order = everyone()
                random.shuffle(&order)
                position = 0
            }
        }
        return nil
    }
}

/// The probe of the current protocol period (SWIM §3.1).
struct ProbeRound: Sendable {
    var target: MemberID
    var address: String
    var sequence: UInt64
    /// When to fall back to indirect probes (start + probe timeout × LHM).
    var indirectAt: UInt64
    /// When the period ends (start + probe interval × LHM): without an ack by then, the probe failed.
    var endsAt: UInt64
    var indirectSent = false
    /// The intermediaries asked, by address, and those whose nack came back.
    var intermediaries: [String] = []
    var nacks: Set<String> = []
}

/// A ping this member sends on behalf of a ping-request (SWIM §3.1), as the intermediary.
struct Relay: Sendable {
    var requester: String
    var requesterSequence: UInt64
    var target: MemberID
    /// When to nack if the target has not acked (80% of the probe timeout, Lifeguard §IV-A).
    var nackAt: UInt64
    /// When to forget the relay (a later ack is no longer forwarded).
    var expiresAt: UInt64
    var nacked = false
}
