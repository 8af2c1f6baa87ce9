/// How a gateway reaches Redis under Sentinel (`raftgate serve --redis-sentinels …`).
public struct SentinelSettings: Sendable, Hashable {
    /// Every Sentinel to ask; discovery needs a majority of them to agree.
    public var sentinels: [RedisEndpoint]
    /// The name the Sentinels monitor the master under.
    public var masterName = "mymaster"
    public var connectTimeout: Duration = .milliseconds(500)
    public var commandTimeout: Duration = .milliseconds(1000)
    /// How long one command may take as a whole — waiting for a free connection, resolving,
    /// connecting and its retry — before it fails (`noMaster`: 503, or the rate limit's fail
    /// mode). Checked between steps, so a step already running (each bounded by the timeouts
    /// above) may overrun it by that step.
    public var requestTimeout: Duration = .milliseconds(2000)
    /// The same for the rate-limit check in front of every `/w` and `/cache` request: a Redis that
    /// hangs costs a request at most about this before the fail mode applies.
    public var rateLimitTimeout: Duration = .milliseconds(500)
    /// At most this many connections to the master (in use or idle) per gateway, and as many
    /// threads to run their blocking calls; a command beyond them waits for one (within its
    /// `requestTimeout`).
    public var poolSize = 8
    /// How often the leader asks the Sentinels even without a `+switch-master` hint.
    public var watchInterval: Duration = .milliseconds(1000)
    /// How often a failed resolution (no agreement, the master refused, ROLE said replica) is retried
    /// within one command, and how long to wait between tries.
    public var resolveAttempts = 3
    public var resolveBackoff: Duration = .milliseconds(100)
    /// `CLIENT SETNAME` of every connection, so an operator (and the tests) can tell a gateway's
    /// connections apart in `CLIENT LIST`.
    public var clientName = "raftgate"

    public init(sentinels: [RedisEndpoint], masterName: String = "mymaster") {
        self.sentinels = sentinels
        self.masterName = masterName
    }
}
