/// Passive outlier ejection for one worker, Envoy's outlier detection cut down to what the proxy
/// needs: a connect failure, a timeout or a protocol error ejects at once; consecutive 5xx eject
/// after `consecutiveServerErrors`. Each ejection lasts `baseEjection` × 2^(ejections so far),
/// capped at `maxEjection`; a worker that stays clean for a full `maxEjection` is forgiven its count.
/// Pure: time arrives as an argument.
public struct OutlierDetector: Sendable, Hashable {
    public struct Settings: Sendable, Hashable {
        public var consecutiveServerErrors: Int = 5
        public var baseEjection: Duration = .seconds(5)
        public var maxEjection: Duration = .seconds(60)

        public init() {}
    }

    public private(set) var consecutiveServerErrors = 0
    /// Ejections so far (the next lasts base × 2^this).
    public private(set) var ejections = 0
    public private(set) var ejectedUntil: ContinuousClock.Instant?
    private var lastEjection: ContinuousClock.Instant?

    public init() {}

    public func isEjected(at now: ContinuousClock.Instant) -> Bool {
        guard let ejectedUntil else { return false }
        return now < ejectedUntil
    }

    /// Whether `outcome` makes this worker an outlier (the caller decides whether ejecting it is allowed).
    public mutating func record(_ outcome: UpstreamOutcome, settings: Settings) -> Bool {
        switch outcome {
        case .success:
            consecutiveServerErrors = 0
            return false
        case .serverError:
            consecutiveServerErrors += 1
            return consecutiveServerErrors >= settings.consecutiveServerErrors
        case .connectFailure, .timeout, .protocolError:
            return true
        }
    }

    /// Ejects from `now` on; answers for how long.
    public mutating func eject(at now: ContinuousClock.Instant, settings: Settings) -> Duration {
        if let lastEjection, now - lastEjection > settings.maxEjection * 2 { ejections = 0 }
        let factor = 1 << min(ejections, 20)
        let duration = min(settings.baseEjection * factor, settings.maxEjection)
        ejections += 1
        consecutiveServerErrors = 0
        ejectedUntil = now + duration
        lastEjection = now
        return duration
    }

    /// An active health check passed after the ejection ran out: nothing more to do than clear it.
    public mutating func clearIfExpired(at now: ContinuousClock.Instant) {
        if let ejectedUntil, now >= ejectedUntil { self.ejectedUntil = nil }
    }
}
