import Testing

@testable import Patroni

@Suite("Tenant pool bookkeeping")
struct TenantPoolBookTests {
    static let config = TenantPoolConfig(database: "acme", user: "acme", maxConnections: 10)

    static func seconds(_ value: Int) -> Duration { .seconds(value) }

    @Test func aTenantKeepsItsPoolWhileItsConfigStays() {
        var book = TenantPoolBook(maxPools: 3, idleTimeout: .seconds(300))
        let first = book.begin(tenant: "acme", config: Self.config, now: .zero)
        #expect(first.closed.isEmpty)
        book.end(first.pool, now: .seconds(1))
        let second = book.begin(tenant: "acme", config: Self.config, now: .seconds(2))
        #expect(second.pool == first.pool)
        #expect(second.closed.isEmpty)
    }

    @Test func aChangedConfigRebuildsThePool() {
        var book = TenantPoolBook(maxPools: 3, idleTimeout: .seconds(300))
        let first = book.begin(tenant: "acme", config: Self.config, now: .zero)
        book.end(first.pool, now: .zero)
        var bigger = Self.config
        bigger.maxConnections = 20
        let rebuilt = book.begin(tenant: "acme", config: bigger, now: .seconds(1))
        #expect(rebuilt.pool != first.pool)
        #expect(rebuilt.pool.generation > first.pool.generation)
        #expect(rebuilt.closed == [.configChanged(first.pool)])
        // Told by the config cache: closed now, not at the next request.
        #expect(book.configChanged(tenant: "acme", to: bigger) == [])
        #expect(book.configChanged(tenant: "acme", to: Self.config) == [.configChanged(rebuilt.pool)])
        #expect(book.pool(of: "acme") == nil)
        #expect(book.configChanged(tenant: "acme", to: nil) == [])
        #expect(book.configChanged(tenant: "other", to: nil) == [])
    }

    @Test func theLeastRecentlyUsedPoolMakesRoom() {
        var book = TenantPoolBook(maxPools: 2, idleTimeout: .seconds(300))
        let a = book.begin(tenant: "a", config: Self.config, now: .seconds(1))
        book.end(a.pool, now: .seconds(1))
        let b = book.begin(tenant: "b", config: Self.config, now: .seconds(2))
        book.end(b.pool, now: .seconds(2))
        // a is used again: b is now the least recently used.
        book.end(book.begin(tenant: "a", config: Self.config, now: .seconds(3)).pool, now: .seconds(3))
        let c = book.begin(tenant: "c", config: Self.config, now: .seconds(4))
        #expect(c.closed == [.evicted(b.pool)])
        #expect(book.count == 2)
        #expect(book.pool(of: "b") == nil && book.pool(of: "a") == a.pool)
    }

    @Test func aBusyPoolIsEvictedOnlyWhenEveryPoolIsBusy() {
        var book = TenantPoolBook(maxPools: 2, idleTimeout: .seconds(300))
        let a = book.begin(tenant: "a", config: Self.config, now: .seconds(1))  // stays busy
        let b = book.begin(tenant: "b", config: Self.config, now: .seconds(2))
        book.end(b.pool, now: .seconds(2))
        #expect(book.begin(tenant: "c", config: Self.config, now: .seconds(3)).closed == [.evicted(b.pool)])
        // Now a and c are both busy: the older one goes.
        #expect(book.begin(tenant: "d", config: Self.config, now: .seconds(4)).closed == [.evicted(a.pool)])
        // Its request ending later changes nothing.
        book.end(a.pool, now: .seconds(5))
        #expect(book.pool(of: "a") == nil)
    }

    @Test func idlePoolsExpireAfterTheTimeoutAndBusyOnesNever() {
        var book = TenantPoolBook(maxPools: 10, idleTimeout: .seconds(300))
        let a = book.begin(tenant: "a", config: Self.config, now: .zero)
        book.end(a.pool, now: .seconds(10))
        let b = book.begin(tenant: "b", config: Self.config, now: .zero)  // a long request
        #expect(book.nextDeadline == .seconds(310))
        #expect(book.expire(now: .seconds(309)) == [])
        #expect(book.expire(now: .seconds(310)) == [.idle(a.pool)])
        #expect(book.expire(now: .seconds(10_000)) == [])
        book.end(b.pool, now: .seconds(10_000))
        #expect(book.nextDeadline == .seconds(10_300))
        #expect(book.expire(now: .seconds(10_300)) == [.idle(b.pool)])
        #expect(book.count == 0 && book.nextDeadline == nil)
    }
}

@Suite("Which servers a route change drains")
struct RouteDrainTests {
    static let pg1 = PostgresEndpoint(name: "pg1", host: "127.0.0.1", port: 5432)
    static let pg2 = PostgresEndpoint(name: "pg2", host: "127.0.0.1", port: 5433)
    static let pg3 = PostgresEndpoint(name: "pg3", host: "127.0.0.1", port: 5434)

    static func route(_ primary: PostgresEndpoint?, _ replicas: [PostgresEndpoint], epoch: UInt64 = 1)
        -> PostgresRoute
    {
        PostgresRoute(epoch: epoch, primary: primary, replicas: replicas, writable: true)
    }

    @Test func anUnchangedRouteDrainsNothing() {
        #expect(
            RouteDrain.endpoints(from: Self.route(Self.pg1, [Self.pg2]), to: Self.route(Self.pg1, [Self.pg2], epoch: 2))
                == [])
    }

    @Test func aFailoverDrainsTheOldAndTheNewPrimary() {
        let before = Self.route(Self.pg1, [Self.pg2, Self.pg3])
        let after = Self.route(Self.pg2, [Self.pg3])
        #expect(RouteDrain.endpoints(from: before, to: after) == [Self.pg1, Self.pg2])
        // The old primary rejoining as a replica does not keep its primary connections either.
        #expect(
            RouteDrain.endpoints(from: before, to: Self.route(Self.pg2, [Self.pg1, Self.pg3])) == [Self.pg1, Self.pg2])
    }

    @Test func aReplicaLeavingTheRouteIsDrainedAlone() {
        #expect(
            RouteDrain.endpoints(
                from: Self.route(Self.pg1, [Self.pg2, Self.pg3]), to: Self.route(Self.pg1, [Self.pg3])) == [Self.pg2])
        #expect(RouteDrain.endpoints(from: Self.route(Self.pg1, [Self.pg2]), to: .unknown) == [Self.pg1, Self.pg2])
        #expect(RouteDrain.endpoints(from: Self.route(Self.pg1, []), to: Self.route(Self.pg1, [Self.pg2])) == [])
    }
}
