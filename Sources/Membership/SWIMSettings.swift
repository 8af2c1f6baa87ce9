/// Settings of one SWIM member. Times are in ticks, an abstract unit: the instance only counts
/// `tick()` calls. The NIO shell ticks every 50 ms, so the defaults below are tuned for a LAN of a
/// handful of gateway nodes (round trips well under a millisecond, a few to a few dozen members).
///
/// Detection time and false positives pull against each other: everything that makes a dead member
/// declared dead sooner also gives a slow or lossy live member less time to answer or refute.
public struct SWIMSettings: Sendable, Hashable {
    /// Length of one protocol period: each member probes one other member per period (SWIM §3.1,
    /// §4.3). Default 10 ticks (500 ms). Shorter detects sooner and costs more packets per second;
    /// it must leave room for the indirect round (`probeTimeout` + `nackTimeout` + two hops).
    /// Scaled by the local health multiplier (Lifeguard §IV-A).
    public var probeInterval = 10
    /// How long to wait for a direct ack before asking `indirectProbeCount` members to probe for us
    /// (SWIM §3.1). Default 4 ticks (200 ms). Shorter reacts sooner but sends more ping-requests on
    /// a slow network; it does not by itself cause false positives (the period's end decides).
    /// Scaled by the local health multiplier (Lifeguard §IV-A).
    public var probeTimeout = 4
    /// k, the number of members asked to probe a target that missed its direct ack (SWIM §3.1).
    /// Default 3. More helpers make a lossy link to one member less likely to look like a failure
    /// (fewer false positives) at the cost of 4 packets per helper on each missed ack.
    public var indirectProbeCount = 3
    /// α: the minimum suspicion timeout is α · max(1, log10 n) · `probeInterval` (memberlist's
    /// choice, after SWIM §4.2's "suspicion timeout ∝ log n"). Default 4 (2 s for n ≤ 10). It is the
    /// time a suspected member has to refute once enough members confirm the suspicion: raise it
    /// if members pause (GC, CPU starvation) for longer; lower it for faster detection.
    public var suspicionMinMultiplier = 4
    /// β: the maximum suspicion timeout is β × the minimum (Lifeguard §IV-B). Default 4 (8 s for
    /// n ≤ 10). A suspicion that nobody else confirms waits this long, so a member that alone has a
    /// bad link (or is itself unhealthy) cannot get a healthy one declared dead quickly.
    public var suspicionMaxMultiplier = 4
    /// K, the number of independent confirmations after which the suspicion timeout reaches its
    /// minimum (Lifeguard §IV-B); capped at n − 2, the members that could confirm (with K = 0 the
    /// timeout is the maximum: nobody can confirm). Default 3.
    /// Higher makes detection depend on more probers agreeing (fewer false positives, slower).
    public var suspicionConfirmations = 3
    /// λ: each piece of gossip is piggybacked at most λ · ⌈log10(n + 1)⌉ times by each member
    /// (SWIM §4.1, infection-style dissemination with a retransmit limit λ log n). Default 4. Higher
    /// spreads news more reliably under loss and uses more of each datagram.
    public var retransmitMultiplier = 4
    /// The local health multiplier (LHM) ranges over 1 … this (Lifeguard §IV-A). Default 8. A member
    /// that misses acks and nacks (its own network or CPU is the problem) slows its probing and
    /// waits longer for acks, up to 8×, rather than accusing healthy members.
    public var maxLocalHealthMultiplier = 8
    /// Upper bound on gossip records piggybacked on one datagram (also bounded by bytes). Default 16.
    public var maxGossipPerMessage = 16
    /// Upper bound on the encoded size of one datagram from the core. Default 1,360 bytes: under a
    /// 1,400-byte datagram with 40 bytes left for the shell's authentication wrapper (key id and an
    /// HMAC-SHA256 tag), so nothing is fragmented on a 1,500-byte MTU.
    public var maxPayloadBytes = 1360
    /// How often each member exchanges its full state with a random member over TCP (memberlist's
    /// push-pull). Default 200 ticks (10 s). Repairs what gossip missed and heals partitions; shorter
    /// converges faster after a partition at the cost of a full-state transfer per interval.
    public var pushPullInterval = 200
    /// While joining, how often to retry the seeds until one answers. Default 20 ticks (1 s).
    public var joinRetryInterval = 20
    /// How long dead and left members are remembered (tombstones) before they are forgotten.
    /// Default 6,000 ticks (5 min). Must outlive the gossip about them, or old alive gossip could
    /// bring a forgotten member back; a partition longer than this heals only by rejoining seeds.
    public var tombstoneTicks = 6000
    /// How many members a leaving member tells directly (the rest learn by gossip). Default 8.
    public var leaveFanout = 8
    /// Seed of the instance's generator. Simulations replay exactly; production passes a random seed.
    public var randomSeed: UInt64 = 1

    public init() {}

    /// An intermediary of an indirect probe sends a nack when its own ping to the target has gone
    /// unanswered for 80% of the probe timeout (Lifeguard §IV-A), so the nack reaches the requester
    /// before the requester's probe period ends.
    public var nackTimeout: Int { max(1, probeTimeout * 4 / 5) }

    /// The minimum suspicion timeout for a group of `members` (α · max(1, log10 n) · probe interval).
    public func suspicionMinTicks(members: Int) -> Int {
        let scale = max(1, SWIMMath.log10(Double(max(members, 1))))
        return Int((Double(suspicionMinMultiplier) * scale * Double(probeInterval)).rounded(.up))
    }

    /// The maximum suspicion timeout for a group of `members` (β × minimum).
    public func suspicionMaxTicks(members: Int) -> Int { suspicionMaxMultiplier * suspicionMinTicks(members: members) }

    /// K for a group of `members`: nobody but the other n − 2 members can confirm.
    public func expectedConfirmations(members: Int) -> Int { min(suspicionConfirmations, max(0, members - 2)) }

    /// Lifeguard §IV-B, Local Health Aware Suspicion: the timeout starts at the maximum and shrinks
    /// logarithmically towards the minimum as independent confirmations C arrive:
    /// `max(min, max − (max − min) · log(C + 1) / log(K + 1))`.
    public func suspicionTimeout(members: Int, confirmations: Int) -> Int {
        let minimum = suspicionMinTicks(members: members)
        let maximum = suspicionMaxTicks(members: members)
        let expected = expectedConfirmations(members: members)
        // Nobody else could confirm (two members): a lone, unconfirmable suspicion waits the maximum.
        guard expected > 0 else { return maximum }
        let confirmed = min(max(confirmations, 0), expected)
        let fraction = SWIMMath.naturalLog(Double(confirmed + 1)) / SWIMMath.naturalLog(Double(expected + 1))
        let timeout = Double(maximum) - Double(maximum - minimum) * fraction
        return max(minimum, Int(timeout.rounded(.up)))
    }

    /// How many times each member piggybacks one piece of gossip: λ · ⌈log10(n + 1)⌉ (SWIM §4.1).
    public func retransmitLimit(members: Int) -> Int {
        let scale = Int(SWIMMath.log10(Double(max(members, 1) + 1)).rounded(.up))
        return retransmitMultiplier * max(1, scale)
    }

    /// The longest time, in ticks, from a member's crash until a live member declares it dead.
    ///
    /// `((2n − 2) · probeInterval + suspicionMaxTicks(n)) · m + 1`, where n is the number of members
    /// and m the largest local health multiplier of the observer meanwhile (1 when healthy; it
    /// stretches both the probe periods and the suspicion timeout):
    /// - randomized round-robin probing (SWIM §4.3) probes every member once per round of n − 1
    ///   periods, so at worst the observer's next probe of the crashed member starts 2n − 3 periods
    ///   later (first in one round, last in the next) and fails at the end of its own period;
    /// - the observer then suspects it (or already did, on others' gossip) and its own suspicion
    ///   timer, never longer than the maximum (Lifeguard §IV-B) times m, declares it dead;
    /// - plus one tick because timers are checked on whole ticks.
    /// The clock starts at the crash or, if later, when the observer last learned of a newer
    /// incarnation of the member (a refutation still in flight). It does not depend on message
    /// loss: a crashed member never acks, and the observer needs nobody's help to time out.
    public func worstCaseDetectionTicks(members: Int, localHealthMultiplier: Int = 1) -> Int {
        let periods = 2 * max(members - 1, 0)
        let multiplier = max(1, localHealthMultiplier)
        return (periods * probeInterval + suspicionMaxTicks(members: members)) * multiplier + 1
    }

    /// Rejects settings under which the protocol's timing assumptions fail.
    public func validate() throws(SWIMError) {
        guard probeTimeout >= 1, probeInterval > probeTimeout else {
            throw .invalidSettings("probeTimeout must be at least 1 tick and below probeInterval")
        }
        guard indirectProbeCount >= 0, suspicionConfirmations >= 0 else {
            throw .invalidSettings("indirectProbeCount and suspicionConfirmations cannot be negative")
        }
        guard suspicionMinMultiplier >= 1, suspicionMaxMultiplier >= 1, retransmitMultiplier >= 1 else {
            throw .invalidSettings("suspicion and retransmit multipliers must be at least 1")
        }
        guard maxLocalHealthMultiplier >= 1 else {
            throw .invalidSettings("maxLocalHealthMultiplier must be at least 1")
        }
        guard (0...127).contains(maxGossipPerMessage) else {
            throw .invalidSettings("maxGossipPerMessage must be in 0...127")
        }
        guard (256...65_507).contains(maxPayloadBytes) else {
            throw .invalidSettings("maxPayloadBytes must be in 256...65507")
        }
        guard pushPullInterval >= 1, joinRetryInterval >= 1, tombstoneTicks >= 1, leaveFanout >= 0 else {
            throw .invalidSettings("intervals must be at least 1 tick")
        }
    }
}

public enum SWIMError: Error, Hashable, Sendable {
    case invalidSettings(String)
}
