/// Lifeguard's Local Health Multiplier (§IV-A): a saturating score of how badly this member itself
/// seems to be doing. The multiplier (score + 1, from 1 to the maximum) stretches the probe interval
/// and probe timeout, so a member that is slow or behind a lossy link gives others more time before
/// it accuses them, instead of flooding the group with false suspicions.
struct LocalHealth: Hashable, Sendable {
    let maximumMultiplier: Int
    private(set) var score = 0

    init(maximumMultiplier: Int) {
        self.maximumMultiplier = maximumMultiplier
    }

    var multiplier: Int { score + 1 }

    /// Events (Lifeguard §IV-A): a successful probe −1; a failed probe whose nacks did not all come
    /// back +1 per missing nack (or +1 when nobody could be asked); refuting a suspicion about
    /// ourselves +1. Clamped to 0 … max − 1.
    mutating func apply(_ delta: Int) {
        score = min(max(score + delta, 0), maximumMultiplier - 1)
    }
}
