/// What the active health checks (`GET /health` on each worker) concluded about one worker:
/// unhealthy after `unhealthyThreshold` failed checks in a row, healthy again after
/// `healthyThreshold` passed ones. A new worker starts healthy, so it gets traffic at once;
/// a refused connection on a check makes it unhealthy at once (the process is gone). Pure.
public struct ActiveHealth: Sendable, Hashable {
    public struct Settings: Sendable, Hashable {
        public var unhealthyThreshold = 2
        public var healthyThreshold = 1

        public init() {}
    }

    public private(set) var isHealthy = true
    private var failures = 0
    private var passes = 0

    public init() {}

    /// Records one check; answers whether `isHealthy` changed.
    @discardableResult
    public mutating func record(passed: Bool, refused: Bool = false, settings: Settings) -> Bool {
        let before = isHealthy
        if passed {
            failures = 0
            passes += 1
            if !isHealthy && passes >= settings.healthyThreshold { isHealthy = true }
        } else {
            passes = 0
            failures += 1
            if isHealthy && (refused || failures >= settings.unhealthyThreshold) { isHealthy = false }
        }
        return before != isHealthy
    }
}
