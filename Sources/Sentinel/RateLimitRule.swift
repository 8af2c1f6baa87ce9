/// A tenant's token bucket, as the generic cell rate algorithm (GCRA) keeps it: one Redis key per
/// tenant holding the "theoretical arrival time" (TAT) in microseconds of Redis's own clock, so
/// every gateway shares one bucket and no gateway's clock matters. A request is admitted when
/// `TAT + interval − burst·interval ≤ now`, which lets `burst` requests through at once and then
/// one per `interval` (= 1 / perSecond).
public struct RateLimitRule: Sendable, Hashable {
    public var perSecond: Int
    public var burst: Int
    /// What to do when Redis cannot be asked.
    public var failMode: FailMode

    public enum FailMode: String, Sendable, Hashable, CaseIterable {
        /// Admit the request (and count it): an outage of Redis does not become one of the API.
        case open
        /// Refuse it with 503: the limit is never exceeded, whatever Redis does.
        case closed
    }

    public init(perSecond: Int, burst: Int, failMode: FailMode = .open) {
        self.perSecond = perSecond
        self.burst = burst
        self.failMode = failMode
    }

    /// Microseconds between two requests at the sustained rate (at least 1).
    public var intervalMicroseconds: Int { max(1, 1_000_000 / max(1, perSecond)) }

    public static func key(tenant: String) -> String { "raftgate:rl:\(tenant)" }

    /// KEYS[1] the bucket, ARGV[1] the interval and ARGV[2] the burst; answers `{1, 0}` when
    /// admitted, `{0, µs until the next admission}` when not. TIME is Redis's clock; Redis 7
    /// replicates a script's effects, so reading it before writing is allowed. `%.0f` because
    /// Lua's tostring would print a TAT of 16 digits in exponent form and lose its last ones.
    public static let script = """
        local now_parts = redis.call('TIME')
        local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
        local interval = tonumber(ARGV[1])
        local burst = tonumber(ARGV[2])
        local tat = tonumber(redis.call('GET', KEYS[1]) or now)
        if tat < now then tat = now end
        local allow_at = tat + interval - burst * interval
        if now < allow_at then
          return {0, allow_at - now}
        end
        local new_tat = tat + interval
        redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1)
        return {1, 0}
        """

    public func arguments(tenant: String) -> [[UInt8]] {
        ["EVAL", Self.script, "1", Self.key(tenant: tenant), "\(intervalMicroseconds)", "\(burst)"].map {
            Array($0.utf8)
        }
    }
}

/// The rate limiter's decision, pure: from the script's answer, or from Redis being unreachable
/// and the rule's fail mode.
public enum RateLimitDecision: Sendable, Hashable {
    case allowed
    /// Over the limit: answer 429 with `Retry-After` (whole seconds, at least 1).
    case limited(retryAfterSeconds: Int)
    /// Redis could not be asked and the rule fails open.
    case allowedUnchecked(reason: String)
    /// Redis could not be asked and the rule fails closed: answer 503.
    case refused(reason: String)

    public static func from(reply: RedisReply) -> RateLimitDecision? {
        guard let parts = reply.elements, parts.count == 2, let admitted = parts[0].integer,
            let waitMicroseconds = parts[1].integer
        else { return nil }
        if admitted == 1 { return .allowed }
        let seconds = (max(waitMicroseconds, 1) + 999_999) / 1_000_000
        return .limited(retryAfterSeconds: Int(max(1, seconds)))
    }

    public static func unavailable(_ reason: String, mode: RateLimitRule.FailMode) -> RateLimitDecision {
        switch mode {
        case .open: .allowedUnchecked(reason: reason)
        case .closed: .refused(reason: reason)
        }
    }
}
