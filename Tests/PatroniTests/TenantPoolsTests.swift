import Foundation
import Metrics
import TestSupport
import Testing

@testable import Patroni

/// The tenant pools against a real PostgreSQL 15: what `pg_stat_activity` shows is what the pools
/// say they hold, under load, after LRU eviction, idle expiry, a config change and a drain.
@Suite("Tenant pools against a real PostgreSQL", .serialized)
struct TenantPoolsTests {
    static let tenantPassword = "tenant-test-password"

    /// A server with role and database `acme` (password in a passfile the pools use) and pools
    /// configured by `configure`.
    static func withPools(
        _ configure: (inout TenantPoolSettings) -> Void = { _ in },
        _ body: (ThrowawayPostgres, TenantPools, PostgresEndpoint) async throws -> Void
    ) async throws {
        try await ThrowawayPostgres.with { server in
            try await server.psql("CREATE ROLE acme LOGIN PASSWORD '\(tenantPassword)'")
            try await server.psql("CREATE DATABASE acme OWNER acme")
            let passfile = server.directory.appendingPathComponent("gateway.pgpass")
            try Data("127.0.0.1:\(server.port):*:acme:\(tenantPassword)\n".utf8).write(to: passfile)
            chmod(passfile.path, 0o600)
            var settings = TenantPoolSettings()
            settings.passfile = passfile.path
            settings.threads = 8
            configure(&settings)
            let pools = TenantPools(settings: settings, metricsFactory: NOOPMetricsHandler.instance)
            let endpoint = PostgresEndpoint(name: "pg1", host: "127.0.0.1", port: server.port)
            do {
                try await body(server, pools, endpoint)
            } catch {
                await pools.shutdown()
                throw error
            }
            await pools.shutdown()
        }
    }

    static func config(_ maxConnections: Int) -> TenantPoolConfig {
        TenantPoolConfig(database: "acme", user: "acme", maxConnections: maxConnections)
    }

    static func request(
        _ sql: String, _ parameters: [String?] = [], tenant: String = "acme", config: TenantPoolConfig = config(4),
        on endpoint: PostgresEndpoint
    ) -> TenantPools.Request {
        .init(tenant: tenant, config: config, endpoint: endpoint, role: .primary, sql: sql, parameters: parameters)
    }

    /// Sessions the server holds for a tenant's pool (its `application_name`).
    static func sessions(_ server: ThrowawayPostgres, _ tenant: String = "acme") async throws -> Int {
        Int(
            try await server.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'raftgate/\(tenant)'")
        )
            ?? -1
    }

    static func eventually(within seconds: Double = 20, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        repeat {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(25))
        } while ContinuousClock.now < deadline
        return false
    }

    @Test func concurrentLoadLeavesExactlyThePoolsIdleConnections() async throws {
        try await Self.withPools({ $0.idleTimeout = .seconds(5) }) { server, pools, endpoint in
            let answer = try await pools.run(
                Self.request("SELECT $1::int + 1 AS n, 'x'::text AS t, NULL::int8 AS z", ["41"], on: endpoint))
            #expect(answer.columns.map(\.name) == ["n", "t", "z"])
            #expect(answer.columns.map(\.typeName) == ["int4", "text", "int8"])
            #expect(answer.rows == [["42", "x", nil]])
            #expect(answer.command == "SELECT 1")

            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<40 {
                    group.addTask { _ = try await pools.run(Self.request("SELECT pg_sleep(0.01)", on: endpoint)) }
                }
                try await group.waitForAll()
            }
            let server1 = try #require(pools.snapshot.server("acme", endpoint))
            #expect(server1.open == server1.idle, "every connection came back")
            #expect((1...4).contains(server1.open), "bounded by maxConnections: \(server1)")
            #expect(pools.snapshot.connections == server1.open)
            #expect(try await Self.sessions(server) == server1.idle)
            // Idle past the timeout: the pool closes and the server sees no session of it.
            #expect(try await Self.eventually { try await Self.sessions(server) == 0 })
            #expect(pools.snapshot.pools.isEmpty && pools.snapshot.connections == 0)
        }
    }

    @Test func theLeastRecentlyUsedPoolIsClosedForANewTenant() async throws {
        try await Self.withPools({ $0.maxPools = 2 }) { server, pools, endpoint in
            for tenant in ["t1", "t2"] {
                _ = try await pools.run(Self.request("SELECT 1", tenant: tenant, on: endpoint))
            }
            _ = try await pools.run(Self.request("SELECT 1", tenant: "t1", on: endpoint))  // t2 is now the oldest
            _ = try await pools.run(Self.request("SELECT 1", tenant: "t3", on: endpoint))
            #expect(Set(pools.snapshot.pools.keys) == ["t1", "t3"])
            #expect(try await Self.eventually { try await Self.sessions(server, "t2") == 0 })
            #expect(try await Self.sessions(server, "t1") == 1)
            #expect(try await Self.sessions(server, "t3") == 1)
        }
    }

    @Test func aConfigChangeRebuildsThePool() async throws {
        try await Self.withPools { server, pools, endpoint in
            func load(_ config: TenantPoolConfig) async throws {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<12 {
                        group.addTask {
                            _ = try await pools.run(Self.request("SELECT pg_sleep(0.05)", config: config, on: endpoint))
                        }
                    }
                    try await group.waitForAll()
                }
            }
            try await load(Self.config(2))
            let before = try #require(pools.snapshot.pools["acme"])
            #expect((1...2).contains(before.servers[endpoint]?.open ?? 0))
            // The config cache reports the change: the old pool closes at once.
            pools.configChanged(tenant: "acme", to: Self.config(5))
            #expect(pools.snapshot.pools["acme"] == nil)
            #expect(try await Self.eventually { try await Self.sessions(server) == 0 })
            try await load(Self.config(5))
            let after = try #require(pools.snapshot.pools["acme"])
            #expect(after.generation > before.generation)
            #expect((1...5).contains(after.servers[endpoint]?.open ?? 0))
            #expect(try await Self.sessions(server) == after.servers[endpoint]?.idle)
        }
    }

    @Test func aDrainClosesIdleConnectionsNowAndBusyOnesWhenTheyReturn() async throws {
        try await Self.withPools { server, pools, endpoint in
            _ = try await pools.run(Self.request("SELECT 1", on: endpoint))
            #expect(try await Self.sessions(server) == 1)
            pools.drain([endpoint])
            #expect(pools.snapshot.server("acme", endpoint)?.open == 0)
            #expect(try await Self.eventually { try await Self.sessions(server) == 0 })

            async let slow = pools.run(Self.request("SELECT pg_sleep(0.5)", on: endpoint))
            #expect(try await Self.eventually { try await Self.sessions(server) == 1 })
            pools.drain([endpoint])
            _ = try await slow
            #expect(pools.snapshot.server("acme", endpoint) == .init(open: 0, idle: 0))
            #expect(try await Self.eventually { try await Self.sessions(server) == 0 })
            // The next request opens a fresh connection.
            #expect(try await pools.run(Self.request("SELECT 2", on: endpoint)).rows == [["2"]])
        }
    }

    @Test func aConnectionTheServerClosedIsReplacedNotUsed() async throws {
        try await Self.withPools { server, pools, endpoint in
            _ = try await pools.run(Self.request("SELECT 1", on: endpoint))
            try await server.psql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'raftgate/acme'")
            #expect(try await Self.eventually { try await Self.sessions(server) == 0 })
            #expect(try await pools.run(Self.request("SELECT 3", on: endpoint)).rows == [["3"]])
            #expect(pools.snapshot.connections == 1)
            #expect(try await Self.sessions(server) == 1)
        }
    }

    @Test func errorsCarryTheirSQLStateAndLeaveThePoolWhole() async throws {
        try await Self.withPools { server, pools, endpoint in
            do {
                _ = try await pools.run(Self.request("SELEC 1", on: endpoint))
                Issue.record("a syntax error succeeded")
            } catch TenantPools.Failure.statement(let error) {
                #expect(error.sqlState == "42601" && !error.connectionLost && error.position == 1, "\(error)")
            }
            #expect(try await pools.run(Self.request("SELECT 1", on: endpoint)).rows == [["1"]])
            #expect(pools.snapshot.server("acme", endpoint) == .init(open: 1, idle: 1))
        }
    }

    /// Config values are libpq values, never conninfo text: a database name carrying `host=` names
    /// a database that does not exist on this server, it does not send the pool elsewhere.
    @Test func aConnectionStringInConfigIsJustAName() async throws {
        try await Self.withPools { server, pools, endpoint in
            let injected = TenantPoolConfig(database: "acme host=192.0.2.1 port=1", user: "acme", maxConnections: 1)
            do {
                _ = try await pools.run(Self.request("SELECT 1", config: injected, on: endpoint))
                Issue.record("connected with an injected database name")
            } catch TenantPools.Failure.unreachable(let message) {
                #expect(message.contains("database \"acme host=192.0.2.1 port=1\" does not exist"), "\(message)")
            }
            #expect(pools.snapshot.connections == 0)
        }
    }
}
