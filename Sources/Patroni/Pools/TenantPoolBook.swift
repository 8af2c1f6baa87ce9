/// What a tenant's pool is built from: the project config's `postgres` section.
public struct TenantPoolConfig: Sendable, Hashable {
    public var database: String
    public var user: String
    /// Connections this gateway opens to each PostgreSQL server for the tenant, at most.
    public var maxConnections: Int

    public init(database: String, user: String, maxConnections: Int) {
        self.database = database
        self.user = user
        self.maxConnections = maxConnections
    }
}

/// The pools' bookkeeping, without a socket or a clock: which tenants have a pool, which was used
/// least recently, which have been idle past their deadline, which must be rebuilt because their
/// config changed. Time arrives as a `Duration` since an origin the owner chooses. The I/O shell
/// (`TenantPools`) applies every decision: it closes the connections of each pool the book lets go.
public struct TenantPoolBook: Sendable, Equatable {
    /// One pool's identity: a tenant's pool rebuilt after a config change is a new generation, so
    /// connections of the old one are closed when they come back instead of rejoining.
    public struct PoolID: Sendable, Hashable {
        public var tenant: String
        public var generation: UInt64
    }

    public enum Closure: Sendable, Equatable {
        /// More than `maxPools` tenants: the least recently used pool made room.
        case evicted(PoolID)
        /// No request for `idleTimeout`.
        case idle(PoolID)
        /// The tenant's config changed (rebuilt on its next request) or was removed.
        case configChanged(PoolID)

        public var pool: PoolID {
            switch self {
            case .evicted(let pool), .idle(let pool), .configChanged(let pool): pool
            }
        }
    }

    struct Entry: Sendable, Equatable {
        var id: PoolID
        var config: TenantPoolConfig
        var lastUsed: Duration
        /// Requests running on the pool: an idle deadline only runs while this is zero.
        var inFlight: Int
    }

    public let maxPools: Int
    public let idleTimeout: Duration
    private(set) var entries: [String: Entry] = [:]
    private var nextGeneration: UInt64 = 1

    public init(maxPools: Int, idleTimeout: Duration) {
        precondition(maxPools > 0, "maxPools must be positive")
        self.maxPools = maxPools
        self.idleTimeout = idleTimeout
    }

    public var count: Int { entries.count }

    public func pool(of tenant: String) -> PoolID? { entries[tenant]?.id }

    /// A request of `tenant` begins: its pool (created, or rebuilt when `config` differs from the
    /// one it was built from) and the pools closed to make that so. Pair with `end`.
    public mutating func begin(tenant: String, config: TenantPoolConfig, now: Duration) -> (
        pool: PoolID, closed: [Closure]
    ) {
        var closed: [Closure] = []
        if var entry = entries[tenant], entry.config == config {
            entry.inFlight += 1
            entry.lastUsed = now
            entries[tenant] = entry
            return (entry.id, [])
        }
        if let stale = entries.removeValue(forKey: tenant) { closed.append(.configChanged(stale.id)) }
        if entries.count >= maxPools {
            // Least recently used first; a pool with requests running is closed only when every
            // pool has some (its connections then close as they come back).
            let victim = entries.values.min { lhs, rhs in
                (lhs.inFlight > 0 ? 1 : 0, lhs.lastUsed, lhs.id.tenant) < (
                    rhs.inFlight > 0 ? 1 : 0, rhs.lastUsed, rhs.id.tenant
                )
            }
            if let victim {
                entries[victim.id.tenant] = nil
                closed.append(.evicted(victim.id))
            }
        }
        let id = PoolID(tenant: tenant, generation: nextGeneration)
        nextGeneration += 1
        entries[tenant] = Entry(id: id, config: config, lastUsed: now, inFlight: 1)
        return (id, closed)
    }

    /// A request that `begin` admitted has finished; its pool's idle deadline starts now.
    public mutating func end(_ pool: PoolID, now: Duration) {
        guard var entry = entries[pool.tenant], entry.id == pool else { return }
        entry.inFlight = max(0, entry.inFlight - 1)
        entry.lastUsed = max(entry.lastUsed, now)
        entries[pool.tenant] = entry
    }

    /// The tenant's config is now `config` (nil: removed, or without a `postgres` section). A pool
    /// built from anything else is closed now rather than at its next request.
    public mutating func configChanged(tenant: String, to config: TenantPoolConfig?) -> [Closure] {
        guard let entry = entries[tenant], entry.config != config else { return [] }
        entries[tenant] = nil
        return [.configChanged(entry.id)]
    }

    /// Pools idle (no request running) for `idleTimeout` or longer at `now`, removed.
    public mutating func expire(now: Duration) -> [Closure] {
        let expired = entries.values.filter { $0.inFlight == 0 && now - $0.lastUsed >= idleTimeout }
            .sorted { $0.id.tenant < $1.id.tenant }
        for entry in expired { entries[entry.id.tenant] = nil }
        return expired.map { .idle($0.id) }
    }

    /// When the next idle deadline falls, if any pool is idle.
    public var nextDeadline: Duration? {
        entries.values.filter { $0.inFlight == 0 }.map { $0.lastUsed + idleTimeout }.min()
    }
}
