/// What the leader says about a lease (`RaftNode.keepAlive`, `RaftNode.leaseStatus`).
public enum LeaseAnswer: Sendable, Hashable {
    case found(LeaseInfo)
    /// Never granted, revoked, or expired (its revoke may still be on its way).
    case notFound
    /// No leader could answer now (none known, not reachable, or its lease clocks are still
    /// starting after an election): retry.
    case unavailable(String)
}

public struct LeaseInfo: Sendable, Hashable {
    public var id: UInt64
    public var ttlMilliseconds: UInt64
    /// Time left on the leader's clock (after a keepalive: the whole TTL).
    public var remainingMilliseconds: UInt64
    /// Attached keys in byte order, at most `RaftNode.maxListedLeaseKeys` of them.
    public var keys: [String]
    /// All attached keys, listed or not.
    public var keyCount: Int

    public init(id: UInt64, ttlMilliseconds: UInt64, remainingMilliseconds: UInt64, keys: [String], keyCount: Int) {
        self.id = id
        self.ttlMilliseconds = ttlMilliseconds
        self.remainingMilliseconds = remainingMilliseconds
        self.keys = keys
        self.keyCount = keyCount
    }
}
