/// Every service's workers with what the proxy knows of each — requests in flight, active health,
/// ejection — and the decisions made from it: which worker takes the next request, whether a
/// failure ejects one. Pure (no sockets, no clock: time arrives as an argument); the proxy owns
/// one behind a lock.
public struct WorkerBalancer: Sendable {
    public struct Settings: Sendable, Hashable {
        public var outlier = OutlierDetector.Settings()
        public var health = ActiveHealth.Settings()

        public init() {}
    }

    public struct WorkerState: Sendable, Hashable {
        public var record: WorkerRecord
        public var outstanding = 0
        public var outlier = OutlierDetector()
        public var health = ActiveHealth()

        /// May take a new request at `now`.
        public func isEligible(at now: ContinuousClock.Instant) -> Bool {
            !record.draining && health.isHealthy && !outlier.isEjected(at: now)
        }
    }

    public enum Pick: Sendable, Hashable {
        case worker(WorkerRecord)
        case unknownService
        /// The service has workers, none of which may take a request now (none left to try).
        case noEligibleWorker
    }

    public let settings: Settings
    public private(set) var services: [String: [String: WorkerState]] = [:]
    private var rotation: UInt64 = 0

    /// `rotationSeed`: where tie-breaking starts. Gateways seeded with their node ids break the
    /// first ties differently, so requests spread over the gateways also spread over the workers.
    public init(settings: Settings = Settings(), rotationSeed: UInt64 = 0) {
        self.settings = settings
        rotation = rotationSeed
    }

    /// Takes the registry as it now is: new workers start fresh, known ones keep their counts,
    /// gone ones are forgotten (their in-flight requests still finish; their release is a no-op).
    public mutating func sync(_ directory: WorkerDirectory) {
        var next: [String: [String: WorkerState]] = [:]
        for (service, workers) in directory.services {
            var states: [String: WorkerState] = [:]
            for (id, record) in workers {
                var state = services[service]?[id] ?? WorkerState(record: record)
                if state.record.address != record.address { state = WorkerState(record: record) }
                state.record = record
                states[id] = state
            }
            next[service] = states
        }
        services = next
    }

    public func knows(_ service: String) -> Bool { services[service] != nil }

    /// The eligible worker with the fewest requests in flight, leaving out `excluding` (workers
    /// already tried); counts the request as in flight on it.
    public mutating func pick(_ service: String, excluding: Set<String> = [], at now: ContinuousClock.Instant)
        -> Pick
    {
        guard let workers = services[service] else { return .unknownService }
        let candidates = workers.keys.sorted().compactMap { id -> LeastOutstandingPicker.Candidate? in
            let state = workers[id]!
            guard !excluding.contains(id), state.isEligible(at: now) else { return nil }
            return .init(id: id, outstanding: state.outstanding)
        }
        guard let id = LeastOutstandingPicker.pick(candidates, rotation: rotation) else { return .noEligibleWorker }
        rotation &+= 1
        services[service]![id]!.outstanding += 1
        return .worker(workers[id]!.record)
    }

    /// The request picked on this worker is over (its response body is done or it failed).
    public mutating func release(_ service: String, _ id: String) {
        guard let outstanding = services[service]?[id]?.outstanding, outstanding > 0 else { return }
        services[service]![id]!.outstanding = outstanding - 1
    }

    /// Records how one try went; answers the ejection's length when it ejected the worker. The last
    /// eligible worker of a service is never ejected unless it refused the connection: a slow or
    /// erroring worker still serves better than none.
    public mutating func record(
        _ outcome: UpstreamOutcome, service: String, id: String, at now: ContinuousClock.Instant
    ) -> Duration? {
        guard var state = services[service]?[id] else { return nil }
        defer { services[service]![id] = state }
        guard state.outlier.record(outcome, settings: settings.outlier), !state.outlier.isEjected(at: now) else {
            return nil
        }
        let others = services[service]!.filter { $0.key != id && $0.value.isEligible(at: now) }.count
        guard others > 0 || outcome == .connectFailure(refused: true) else { return nil }
        return state.outlier.eject(at: now, settings: settings.outlier)
    }

    /// Records an active health check; answers whether the worker's health changed.
    @discardableResult
    public mutating func recordCheck(
        service: String, id: String, passed: Bool, refused: Bool, at now: ContinuousClock.Instant
    ) -> Bool {
        guard var state = services[service]?[id] else { return false }
        let changed = state.health.record(passed: passed, refused: refused, settings: settings.health)
        if passed { state.outlier.clearIfExpired(at: now) }
        services[service]![id] = state
        return changed
    }

    public func eligibleCount(_ service: String, at now: ContinuousClock.Instant) -> Int {
        services[service]?.values.filter { $0.isEligible(at: now) }.count ?? 0
    }

    /// Every worker, by service then id.
    public var all: [WorkerState] {
        services.keys.sorted().flatMap { service in services[service]!.keys.sorted().map { services[service]![$0]! } }
    }
}
