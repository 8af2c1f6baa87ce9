import CoreMetrics

/// The Redis client's counters (`/metrics`): commands by result, reconnects, master changes, ROLE
/// mismatches, resolutions and `+switch-master` hints; the rate limiter's decisions.
public struct RedisMetrics: Sendable {
    let commandsOK: Counter
    let commandsErrorReply: Counter
    let commandsUnavailable: Counter
    let reconnects: Counter
    let masterChanges: Counter
    let roleMismatches: Counter
    let resolutionsResolved: Counter
    let resolutionsUndecided: Counter
    let hints: Counter
    let rateAllowed: Counter
    let rateLimited: Counter
    let rateFailedOpen: Counter
    let rateFailedClosed: Counter

    public init(factory: any MetricsFactory) {
        func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
            Counter(label: label, dimensions: dimensions, factory: factory)
        }
        commandsOK = counter("raftgate_redis_commands_total", [("result", "ok")])
        commandsErrorReply = counter("raftgate_redis_commands_total", [("result", "error_reply")])
        commandsUnavailable = counter("raftgate_redis_commands_total", [("result", "unavailable")])
        reconnects = counter("raftgate_redis_reconnects_total")
        masterChanges = counter("raftgate_redis_master_changes_total")
        roleMismatches = counter("raftgate_redis_role_mismatches_total")
        resolutionsResolved = counter("raftgate_redis_resolutions_total", [("result", "resolved")])
        resolutionsUndecided = counter("raftgate_redis_resolutions_total", [("result", "undecided")])
        hints = counter("raftgate_redis_switch_master_hints_total")
        rateAllowed = counter("raftgate_rate_limit_decisions_total", [("decision", "allowed")])
        rateLimited = counter("raftgate_rate_limit_decisions_total", [("decision", "limited")])
        rateFailedOpen = counter("raftgate_rate_limit_decisions_total", [("decision", "failed_open")])
        rateFailedClosed = counter("raftgate_rate_limit_decisions_total", [("decision", "failed_closed")])
    }
}
