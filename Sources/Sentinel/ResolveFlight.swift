/// One resolution at a time: callers that arrive while the Sentinels are being asked share that
/// answer instead of asking again (a failover makes every pooled connection reconnect at once).
/// Rounds are numbered; a caller that must not get an answer from before some moment (a switch
/// was just announced, or its last round's answer was refused) asks for a round newer than the
/// one it knows, and starts one when the round in flight is not.
actor ResolveFlight {
    private let querier: SentinelQuerier
    private let metrics: RedisMetrics
    private var inFlight: (task: Task<MasterDiscovery.Decision, Never>, round: UInt64)?
    private var rounds: UInt64 = 0
    private(set) var last: MasterDiscovery.Decision?

    init(querier: SentinelQuerier, metrics: RedisMetrics) {
        self.querier = querier
        self.metrics = metrics
    }

    /// The number of the latest round started: a round newer than this starts after now.
    var latestRound: UInt64 { rounds }

    /// A decision from a round numbered above `newerThan` (any round when nil), and that round.
    func resolve(newerThan: UInt64? = nil) async -> (decision: MasterDiscovery.Decision, round: UInt64) {
        if let inFlight, inFlight.round > (newerThan ?? 0) {
            return (await inFlight.task.value, inFlight.round)
        }
        let querier = querier
        let task = Task { await querier.decide() }
        rounds += 1
        let round = rounds
        inFlight = (task, round)
        let decision = await task.value
        // A newer round may have replaced this one as the round to join; it clears itself.
        if inFlight?.round == round {
            inFlight = nil
            last = decision
        }
        switch decision {
        case .resolved: metrics.resolutionsResolved.increment()
        case .undecided: metrics.resolutionsUndecided.increment()
        }
        return (decision, round)
    }

    /// A decision from a round that starts after this call.
    func resolveFresh() async -> MasterDiscovery.Decision {
        await resolve(newerThan: rounds).decision
    }
}
