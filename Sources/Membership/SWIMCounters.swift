/// Monotonic counters of what this member did, for metrics.
public struct SWIMCounters: Hashable, Sendable {
    /// Direct pings sent as probes (one per protocol period).
    public var probesSent = 0
    /// Ping-requests sent to intermediaries after missed direct acks.
    public var indirectProbesSent = 0
    /// Nacks sent as an intermediary whose ping to the target went unanswered.
    public var nacksSent = 0
    /// Members this node started to suspect because its own probe failed.
    public var suspicionsRaised = 0
    /// Suspicions (or death notices) about this node that it refuted by raising its incarnation.
    public var refutations = 0
    /// Members this node held as suspect that came back alive by refuting (false suspicions seen).
    public var falseSuspicionRefutations = 0
    /// Members this node declared dead when their suspicion timed out.
    public var deathsDeclared = 0
    /// Push-pull exchanges this node started (periodic, joining, or after a revival).
    public var pushPullsStarted = 0

    public init() {}
}
