import CoreMetrics
import NIOPosix
import Synchronization

/// The tenant pools' I/O shell: libpq connections, one pool per tenant with a bounded set of
/// connections to each server, run on a thread pool of their own so no blocking libpq call ever
/// holds an event loop or a thread of Swift concurrency's pool. `TenantPoolBook` decides which
/// pools live; `RouteDrain` which servers' connections to close when the route changes; this type
/// opens, lends, takes back and closes connections accordingly.
public final class TenantPools: Sendable {
    /// One statement for one tenant on one server.
    public struct Request: Sendable {
        public var tenant: String
        public var config: TenantPoolConfig
        public var endpoint: PostgresEndpoint
        /// `.primary` connections insist on a server that takes writes (`target_session_attrs`).
        public var role: RouteDrain.Role
        public var sql: String
        public var parameters: [String?]

        public init(
            tenant: String, config: TenantPoolConfig, endpoint: PostgresEndpoint, role: RouteDrain.Role, sql: String,
            parameters: [String?]
        ) {
            self.tenant = tenant
            self.config = config
            self.endpoint = endpoint
            self.role = role
            self.sql = sql
            self.parameters = parameters
        }
    }

    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// No connection could be opened: the statement was never sent.
        case unreachable(String)
        /// Every connection of the tenant's pool to that server stayed busy for `acquireTimeout`.
        case exhausted
        /// The statement ran and PostgreSQL refused it, or the connection broke while it was in
        /// flight (`connectionLost`: whether it ran is unknown).
        case statement(StatementError)
        case shutDown

        public var description: String {
            switch self {
            case .unreachable(let message): "could not connect: \(message)"
            case .exhausted: "no pooled connection became free in time"
            case .statement(let error): error.description
            case .shutDown: "the pools are shut down"
            }
        }
    }

    /// What the pools hold now, for views and tests.
    public struct Snapshot: Sendable {
        public struct Server: Sendable, Equatable {
            public var open: Int
            public var idle: Int
        }

        public struct Pool: Sendable, Equatable {
            /// A rebuilt pool has a new generation.
            public var generation: UInt64
            public var servers: [PostgresEndpoint: Server]
        }

        public var pools: [String: Pool]
        /// libpq connections open, in every pool.
        public var connections: Int

        public func server(_ tenant: String, _ endpoint: PostgresEndpoint) -> Server? {
            pools[tenant]?.servers[endpoint]
        }
    }

    private struct ServerKey: Hashable {
        var endpoint: PostgresEndpoint
        var role: RouteDrain.Role
    }

    private enum Lease {
        case connection(PooledConnection)
        /// Permission to open one more connection (the slot is already counted).
        case open
    }

    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Lease, any Error>
    }

    private struct Server {
        var open = 0
        var idle: [PooledConnection] = []
        var waiters: [Waiter] = []
    }

    private struct PoolState {
        var id: TenantPoolBook.PoolID
        var servers: [ServerKey: Server] = [:]
    }

    private struct State {
        var book: TenantPoolBook
        var pools: [String: PoolState] = [:]
        /// Bumped per server when it is drained: connections opened before are closed on return.
        var drains: [PostgresEndpoint: UInt64] = [:]
        var connections = 0
        var nextWaiter: UInt64 = 0
        var shutDown = false
    }

    /// A libpq connection lent to one request at a time. `@unchecked Sendable`: libpq allows a
    /// connection to move between threads as long as two never use it at once; the pool hands it
    /// to exactly one borrower, and every handoff passes through the pool's mutex (or the thread
    /// pool's queue), which orders the accesses. Only the libpq threads call its methods.
    private final class PooledConnection: @unchecked Sendable {
        private var connection: PostgresConnection?
        let pool: TenantPoolBook.PoolID
        let key: ServerKey
        /// The server's drain count when it was opened.
        let drain: UInt64
        private var typeNames: [UInt32: String] = [:]

        init(_ connection: PostgresConnection, pool: TenantPoolBook.PoolID, key: ServerKey, drain: UInt64) {
            self.connection = connection
            self.pool = pool
            self.key = key
            self.drain = drain
        }

        var looksAlive: Bool { connection?.looksAlive ?? false }
        var isIdle: Bool { connection?.isIdle ?? false }

        func execute(_ sql: String, _ parameters: [String?]) throws(StatementError) -> StatementResult {
            guard let connection else {
                throw StatementError(sqlState: nil, message: "the connection is closed", connectionLost: true)
            }
            return try connection.execute(sql, parameters: parameters, typeNames: &typeNames)
        }

        /// PQfinish, on the calling (libpq) thread.
        func close() { connection = nil }
    }

    public let settings: TenantPoolSettings
    private let state: Mutex<State>
    private let threads: NIOThreadPool
    private let origin = ContinuousClock.now
    private let expiry = Mutex<Task<Void, Never>?>(nil)
    private let poolsGauge: Gauge
    private let connectionsGauge: Gauge
    private let closedCounters: [String: Counter]
    private let connectCounter: Counter

    public init(settings: TenantPoolSettings = TenantPoolSettings(), metricsFactory: any MetricsFactory) {
        self.settings = settings
        state = Mutex(State(book: TenantPoolBook(maxPools: settings.maxPools, idleTimeout: settings.idleTimeout)))
        threads = NIOThreadPool(numberOfThreads: settings.threads)
        poolsGauge = Gauge(label: "raftgate_pg_pools_open", factory: metricsFactory)
        connectionsGauge = Gauge(label: "raftgate_pg_connections_open", factory: metricsFactory)
        connectCounter = Counter(label: "raftgate_pg_connections_opened_total", factory: metricsFactory)
        var counters: [String: Counter] = [:]
        for reason in ["lru", "idle", "config"] {
            counters[reason] = Counter(
                label: "raftgate_pg_pool_closes_total", dimensions: [("reason", reason)], factory: metricsFactory)
        }
        closedCounters = counters
        threads.start()
        let tick = min(max(settings.idleTimeout / 4, .milliseconds(20)), .seconds(1))
        expiry.withLock {
            $0 = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: tick)
                    guard let self else { return }
                    self.expireIdle()
                }
            }
        }
    }

    /// Closes every connection and stops the threads; requests after it fail with `.shutDown`.
    public func shutdown() async {
        expiry.withLock { $0?.cancel() }
        let (idle, waiters) = state.withLock { state -> ([PooledConnection], [Waiter]) in
            state.shutDown = true
            let servers = state.pools.values.flatMap(\.servers.values)
            state.pools = [:]
            return (servers.flatMap(\.idle), servers.flatMap(\.waiters))
        }
        for waiter in waiters { waiter.continuation.resume(throwing: Failure.shutDown) }
        close(idle)
        try? await threads.shutdownGracefully()
    }

    // MARK: Running statements

    public func run(_ request: Request) async throws(Failure) -> StatementResult {
        let key = ServerKey(endpoint: request.endpoint, role: request.role)
        let (pool, toClose) = try begin(request)
        close(toClose)
        defer { end(pool) }
        let lease: Lease
        do {
            lease = try await acquire(pool, key, maxConnections: request.config.maxConnections)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .shutDown
        }
        let drain = state.withLock { $0.drains[request.endpoint] ?? 0 }
        let parameters = connectParameters(request, key: key)
        let (sql, values) = (request.sql, request.parameters)
        // Everything blocking happens in this one hop to the libpq threads.
        let outcome: Outcome
        do {
            outcome = try await threads.runIfActive { () -> Outcome in
                var lent: PooledConnection?
                if case .connection(let connection) = lease { lent = connection }
                var closedDead = false
                if let connection = lent, !connection.looksAlive {
                    // The server closed it while it sat idle: replaced by a fresh one in the same slot.
                    connection.close()
                    closedDead = true
                    lent = nil
                }
                let connection: PooledConnection
                if let lent {
                    connection = lent
                } else {
                    do {
                        connection = PooledConnection(
                            try PostgresConnection(parameters), pool: pool, key: key, drain: drain)
                    } catch {
                        return Outcome(
                            result: nil, unreachable: (error as? PostgresError)?.message ?? "\(error)",
                            closedDead: closedDead)
                    }
                }
                let result = Result { () throws(StatementError) -> StatementResult in
                    try connection.execute(sql, values)
                }
                return Outcome(
                    result: (result, connection, connection.isIdle), opened: lent == nil, closedDead: closedDead)
            }
        } catch {
            if case .connection(let connection) = lease { giveBack(connection, reusable: false, pool: pool, key: key) }
            throw .shutDown
        }
        if outcome.closedDead { forget(1) }
        if outcome.opened { opened() }
        guard let done = outcome.result else {
            giveBack(nil, reusable: false, pool: pool, key: key)
            throw .unreachable(outcome.unreachable ?? "")
        }
        giveBack(done.connection, reusable: done.reusable, pool: pool, key: key)
        switch done.result {
        case .success(let answer): return answer
        case .failure(let error): throw .statement(error)
        }
    }

    private struct Outcome: Sendable {
        var result: (result: Result<StatementResult, StatementError>, connection: PooledConnection, reusable: Bool)?
        var unreachable: String?
        var opened = false
        var closedDead: Bool
    }

    private func begin(_ request: Request) throws(Failure) -> (TenantPoolBook.PoolID, [PooledConnection]) {
        let now = ContinuousClock.now - origin
        let outcome = state.withLock {
            state -> (TenantPoolBook.PoolID, [PooledConnection], [TenantPoolBook.Closure])? in
            guard !state.shutDown else { return nil }
            let (id, closures) = state.book.begin(tenant: request.tenant, config: request.config, now: now)
            let idle = closures.flatMap { Self.remove($0.pool, from: &state) }
            if state.pools[request.tenant]?.id != id { state.pools[request.tenant] = PoolState(id: id) }
            return (id, idle, closures)
        }
        guard let outcome else { throw .shutDown }
        record(outcome.2)
        return (outcome.0, outcome.1)
    }

    private func end(_ pool: TenantPoolBook.PoolID) {
        let now = ContinuousClock.now - origin
        state.withLock { $0.book.end(pool, now: now) }
    }

    private func acquire(_ pool: TenantPoolBook.PoolID, _ key: ServerKey, maxConnections: Int) async throws -> Lease {
        let timeout = settings.acquireTimeout
        return try await withCheckedThrowingContinuation { continuation in
            let waiting: UInt64? = state.withLock { state in
                guard var current = state.pools[pool.tenant], current.id == pool else {
                    // Closed between begin and here (evicted by another tenant's request): this
                    // request still runs, on a connection closed when it comes back.
                    continuation.resume(returning: .open)
                    return nil
                }
                var server = current.servers[key] ?? Server()
                defer {
                    current.servers[key] = server
                    state.pools[pool.tenant] = current
                }
                if let connection = server.idle.popLast() {
                    continuation.resume(returning: .connection(connection))
                    return nil
                }
                if server.open < maxConnections {
                    server.open += 1
                    continuation.resume(returning: .open)
                    return nil
                }
                state.nextWaiter += 1
                server.waiters.append(Waiter(id: state.nextWaiter, continuation: continuation))
                return state.nextWaiter
            }
            if let waiting {
                Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    self?.timeOut(waiting, pool: pool, key: key)
                }
            }
        }
    }

    private func timeOut(_ waiter: UInt64, pool: TenantPoolBook.PoolID, key: ServerKey) {
        let expired = state.withLock { state -> Waiter? in
            guard var current = state.pools[pool.tenant], current.id == pool,
                let index = current.servers[key]?.waiters.firstIndex(where: { $0.id == waiter })
            else { return nil }
            let removed = current.servers[key]!.waiters.remove(at: index)
            state.pools[pool.tenant] = current
            return removed
        }
        expired?.continuation.resume(throwing: Failure.exhausted)
    }

    /// Takes a slot back: a reusable `connection` of a current pool, opened since the server's
    /// last drain, rejoins the pool (or goes straight to a waiter); any other is closed, and its
    /// slot passes to a waiter or is freed.
    private func giveBack(
        _ connection: PooledConnection?, reusable: Bool, pool: TenantPoolBook.PoolID, key: ServerKey
    ) {
        let (doomed, resume) = state.withLock { state -> (PooledConnection?, (Waiter, Lease)?) in
            guard var current = state.pools[pool.tenant], current.id == pool else {
                // The pool is gone (evicted, idle, rebuilt): its connections close as they return.
                return (connection, nil)
            }
            defer { state.pools[pool.tenant] = current }
            var server = current.servers[key] ?? Server()
            defer { current.servers[key] = server }
            if let connection, reusable, !state.shutDown, connection.drain == state.drains[key.endpoint] ?? 0 {
                if !server.waiters.isEmpty { return (nil, (server.waiters.removeFirst(), .connection(connection))) }
                server.idle.append(connection)
                return (nil, nil)
            }
            if !server.waiters.isEmpty { return (connection, (server.waiters.removeFirst(), .open)) }
            server.open = max(0, server.open - 1)
            return (connection, nil)
        }
        if let resume { resume.0.continuation.resume(returning: resume.1) }
        if let doomed { close([doomed]) }
    }

    private func opened() {
        let total = state.withLock { state in
            state.connections += 1
            return state.connections
        }
        connectCounter.increment()
        connectionsGauge.record(total)
    }

    private func forget(_ closed: Int) {
        let total = state.withLock { state in
            state.connections -= closed
            return state.connections
        }
        connectionsGauge.record(total)
    }

    /// Closes connections on the libpq threads (PQfinish writes a goodbye to the socket).
    private func close(_ connections: [PooledConnection]) {
        guard !connections.isEmpty else { return }
        forget(connections.count)
        let doomed = Doomed(connections)
        threads.submit { _ in doomed.closeAll() }
    }

    /// Connections handed to a libpq thread only to be closed there. `@unchecked Sendable`: no
    /// one else holds them any more; the thread pool's queue orders the handoff.
    private final class Doomed: @unchecked Sendable {
        private let connections: [PooledConnection]
        init(_ connections: [PooledConnection]) { self.connections = connections }
        func closeAll() { connections.forEach { $0.close() } }
    }

    // MARK: Route and config changes

    /// Closes the pooled connections to `endpoints` in every pool now, and those in use when they
    /// come back.
    public func drain(_ endpoints: [PostgresEndpoint]) {
        guard !endpoints.isEmpty else { return }
        let idle = state.withLock { state -> [PooledConnection] in
            var idle: [PooledConnection] = []
            for endpoint in endpoints { state.drains[endpoint, default: 0] += 1 }
            for (tenant, var pool) in state.pools {
                for (key, var server) in pool.servers where endpoints.contains(key.endpoint) {
                    idle += server.idle
                    server.open -= server.idle.count
                    server.idle = []
                    pool.servers[key] = server
                }
                state.pools[tenant] = pool
            }
            return idle
        }
        close(idle)
    }

    /// Follows a route source: each change drains the servers whose role changed. Runs until the
    /// stream ends or the task is cancelled.
    public func follow(_ routes: AsyncStream<PostgresRoute>) async {
        var previous: PostgresRoute?
        for await route in routes {
            if let previous { drain(RouteDrain.endpoints(from: previous, to: route)) }
            previous = route
        }
    }

    /// The tenant's config changed (nil: removed or without PostgreSQL): a pool built from another
    /// config is closed now, and rebuilt from the new one on the next request.
    public func configChanged(tenant: String, to config: TenantPoolConfig?) {
        let (idle, closures) = state.withLock { state -> ([PooledConnection], [TenantPoolBook.Closure]) in
            let closures = state.book.configChanged(tenant: tenant, to: config)
            return (closures.flatMap { Self.remove($0.pool, from: &state) }, closures)
        }
        record(closures)
        close(idle)
    }

    func expireIdle() {
        let now = ContinuousClock.now - origin
        let (idle, closures) = state.withLock { state -> ([PooledConnection], [TenantPoolBook.Closure]) in
            let closures = state.book.expire(now: now)
            return (closures.flatMap { Self.remove($0.pool, from: &state) }, closures)
        }
        record(closures)
        close(idle)
    }

    /// Forgets a closed pool; its idle connections are returned for closing. Its waiters get a
    /// slot of their own: they run once on a connection that closes when it comes back.
    private static func remove(_ pool: TenantPoolBook.PoolID, from state: inout State) -> [PooledConnection] {
        guard let removed = state.pools[pool.tenant], removed.id == pool else { return [] }
        state.pools[pool.tenant] = nil
        for waiter in removed.servers.values.flatMap(\.waiters) { waiter.continuation.resume(returning: .open) }
        return removed.servers.values.flatMap(\.idle)
    }

    private func record(_ closures: [TenantPoolBook.Closure]) {
        let pools = state.withLock { $0.book.count }
        poolsGauge.record(pools)
        for closure in closures {
            switch closure {
            case .evicted: closedCounters["lru"]?.increment()
            case .idle: closedCounters["idle"]?.increment()
            case .configChanged: closedCounters["config"]?.increment()
            }
        }
    }

    // MARK: Views

    public var snapshot: Snapshot {
        state.withLock { state in
            var pools: [String: Snapshot.Pool] = [:]
            for (tenant, pool) in state.pools {
                var servers: [PostgresEndpoint: Snapshot.Server] = [:]
                for (key, server) in pool.servers {
                    let previous = servers[key.endpoint] ?? Snapshot.Server(open: 0, idle: 0)
                    servers[key.endpoint] = Snapshot.Server(
                        open: previous.open + server.open, idle: previous.idle + server.idle.count)
                }
                pools[tenant] = Snapshot.Pool(generation: pool.id.generation, servers: servers)
            }
            return Snapshot(pools: pools, connections: state.connections)
        }
    }

    // MARK: Connecting

    /// libpq keyword/value pairs: each value stays one value, so nothing in a tenant's config can
    /// add a parameter (`dbname=x host=elsewhere` is a database of that odd name).
    private func connectParameters(_ request: Request, key: ServerKey) -> [(keyword: String, value: String)] {
        var parameters: [(keyword: String, value: String)] = [
            ("host", request.endpoint.host), ("port", String(request.endpoint.port)),
            ("dbname", request.config.database), ("user", request.config.user),
            ("connect_timeout", String(max(settings.connectTimeoutSeconds, 1))),
            ("application_name", "\(settings.applicationName)/\(request.tenant)"),
        ]
        if let timeout = settings.statementTimeout {
            let milliseconds =
                timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
            parameters.append(("options", "-c statement_timeout=\(milliseconds)"))
        }
        if let passfile = settings.passfile { parameters.append(("passfile", passfile)) }
        if let sslMode = settings.sslMode { parameters.append(("sslmode", sslMode)) }
        // A route can be a moment stale: a primary connection that reaches a server in recovery
        // fails to connect rather than take writes that would fail one by one.
        if key.role == .primary { parameters.append(("target_session_attrs", "read-write")) }
        return parameters
    }
}
