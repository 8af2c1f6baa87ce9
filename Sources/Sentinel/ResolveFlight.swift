/// One resolution at a time: callers that arrive while the Sentinels are being asked share that
/// answer instead of asking again (a failover makes every pooled connection reconnect at once).
actor ResolveFlight {
    private let querier: SentinelQuerier
    private let metrics: RedisMetrics
    private var inFlight: Task<MasterDiscovery.Decision, Never>?
    private(set) var last: MasterDiscovery.Decision?

    init(querier: SentinelQuerier, metrics: RedisMetrics) {
        self.querier = querier
        self.metrics = metrics
    }

    func resolve() async -> MasterDiscovery.Decision {
        if let inFlight { return await inFlight.value }
        let querier = querier
        let task = Task { await querier.decide() }
        inFlight = task
        let decision = await task.value
        inFlight = nil
        last = decision
        switch decision {
        case .resolved: metrics.resolutionsResolved.increment()
        case .undecided: metrics.resolutionsUndecided.increment()
        }
        return decision
    }
}
