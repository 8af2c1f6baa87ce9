/// How a gateway reaches Redis under Sentinel (`raftgate serve --redis-sentinels …`).
public struct SentinelSettings: Sendable, Hashable {
    /// Every Sentinel to ask; discovery needs a majority of them to agree.
    public var sentinels: [RedisEndpoint]
    /// The name the Sentinels monitor the master under.
    public var masterName = "mymaster"
    public var connectTimeout: Duration = .milliseconds(500)
    public var commandTimeout: Duration = .milliseconds(1000)
    /// Connections to the master (and threads to run their blocking calls) per gateway.
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
