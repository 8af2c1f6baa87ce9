import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Node
import Patroni
import Prometheus
import Raft
import TestSupport
import Testing

@testable import Gateway

/// `POST /sql` in process, in front of a real PostgreSQL 15 primary and its real streaming
/// replica, routed by a `FixedPostgresRouteSource` the tests change by hand.
@Suite("POST /sql against a real primary and replica", .serialized)
struct SQLRouteTests {
    static let adminToken = "sql-test-admin-token"
    static let acmeKey = "acme-sql-key"
    static let otherKey = "other-sql-key"
    static let betaKey = "beta-sql-key"
    static let tenantPassword = "acme-db-password"

    struct Fixture: Sendable {
        var client: any TestClientProtocol
        var primary: ThrowawayPostgres
        var replica: ThrowawayPostgres
        var routes: FixedPostgresRouteSource
        var sql: SQLGateway
        var primaryEndpoint: PostgresEndpoint {
            PostgresEndpoint(name: "primary", host: "127.0.0.1", port: primary.port)
        }
        var replicaEndpoint: PostgresEndpoint {
            PostgresEndpoint(name: "replica", host: "127.0.0.1", port: replica.port)
        }
        var fullRoute: PostgresRoute {
            PostgresRoute(epoch: 1, primary: primaryEndpoint, replicas: [replicaEndpoint], writable: true)
        }

        /// POSTs `body` to /sql as tenant acme (or as told).
        func post(_ body: String, tenant: String? = "acme", key: String? = SQLRouteTests.acmeKey) async throws
            -> TestResponse
        {
            var headers: HTTPFields = [:]
            if let tenant { headers[TenantKeys.tenantHeader] = tenant }
            if let key { headers[TenantKeys.apiKeyHeader] = key }
            return try await client.execute(
                uri: "/sql", method: .post, headers: headers, body: ByteBuffer(string: body))
        }

        func query(_ sql: String, _ params: [Any] = [], route: String? = nil) async throws -> TestResponse {
            var body: [String: Any] = ["sql": sql, "params": params]
            if let route { body["route"] = route }
            let data = try JSONSerialization.data(withJSONObject: body)
            return try await post(String(decoding: data, as: UTF8.self))
        }

        /// Sessions of a tenant's pool on `server`.
        func sessions(_ server: ThrowawayPostgres, state: String? = nil, tenant: String = "acme") async throws -> Int {
            let filter = state.map { " AND state = '\($0)'" } ?? ""
            return Int(
                try await server.psql(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'raftgate/\(tenant)'\(filter)"))
                ?? -1
        }
    }

    static func withSQL(
        metricsRegistry: PrometheusCollectorRegistry? = nil,
        pools: @Sendable (inout TenantPoolSettings) -> Void = { _ in },
        _ body: @Sendable (Fixture) async throws -> Void
    ) async throws {
        let primary = try await ThrowawayPostgres.start()
        var replica: ThrowawayPostgres?
        do {
            try await primary.psql("CREATE ROLE acme LOGIN PASSWORD '\(tenantPassword)'")
            try await primary.psql("CREATE DATABASE acme OWNER acme")
            try await primary.psql(
                """
                SET ROLE acme; CREATE TABLE items (id serial PRIMARY KEY, note text);
                CREATE FUNCTION bump() RETURNS int LANGUAGE sql AS 'INSERT INTO items (note) VALUES (''bumped'') RETURNING id';
                """, database: "acme")
            replica = try await primary.startReplica()
            try await run(primary: primary, replica: replica!, metricsRegistry: metricsRegistry, pools: pools, body)
        } catch {
            await replica?.stop()
            await primary.stop()
            throw error
        }
        await replica?.stop()
        await primary.stop()
    }

    private static func run(
        primary: ThrowawayPostgres, replica: ThrowawayPostgres, metricsRegistry: PrometheusCollectorRegistry?,
        pools: (inout TenantPoolSettings) -> Void, _ body: @Sendable (Fixture) async throws -> Void
    ) async throws {
        let passfile = primary.directory.appendingPathComponent("gateway.pgpass")
        try Data("127.0.0.1:*:acme:acme:\(tenantPassword)\n".utf8).write(to: passfile)
        chmod(passfile.path, 0o600)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("sql-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = NodeConfiguration(
            id: 1, dataDirectory: root, raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1], peers: [:],
            clusterKey: try ClusterKey("gateway-tests-cluster-key"))
        configuration.tickInterval = .milliseconds(5)
        let node = try await RaftNode.start(configuration)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, await !node.status.leaseValid {
            try await Task.sleep(for: .milliseconds(5))
        }
        let cache = await ConfigCache.start(node: node)
        var limits = GatewayLimits()
        limits.maxBodyBytes = 4096
        var settings = TenantPoolSettings()
        settings.passfile = passfile.path
        settings.threads = 8
        settings.connectTimeoutSeconds = 2
        pools(&settings)
        let placeholder = PostgresEndpoint(name: "none", host: "127.0.0.1", port: 1)
        let routes = FixedPostgresRouteSource(.init(epoch: 1, primary: placeholder, replicas: [], writable: true))
        let sql = SQLGateway.start(
            configCache: cache, routes: routes, settings: settings,
            metricsFactory: makeMetricsFactory(registry: metricsRegistry ?? PrometheusCollectorRegistry()))
        let app = Application(
            router: makeGatewayRouter(
                node: node, limits: limits, metricsRegistry: metricsRegistry, configCache: cache,
                adminToken: adminToken, sql: sql))
        do {
            try await app.test(.router) { client in
                for (project, config) in [
                    (
                        "acme",
                        #"{"apiKeys":["\#(TenantKeys.hash(of: acmeKey))"],"postgres":{"database":"acme","user":"acme","maxConnections":4}}"#
                    ),
                    ("other", #"{"apiKeys":["\#(TenantKeys.hash(of: otherKey))"]}"#),
                    // Another tenant on the same database and role (its sessions are told apart by
                    // their application_name).
                    (
                        "beta",
                        #"{"apiKeys":["\#(TenantKeys.hash(of: betaKey))"],"postgres":{"database":"acme","user":"acme","maxConnections":4}}"#
                    ),
                ] {
                    let put = try await client.execute(
                        uri: "/config/\(project)", method: .put, headers: [.authorization: "Bearer \(adminToken)"],
                        body: ByteBuffer(string: config))
                    try #require(put.status == .ok, "\(String(buffer: put.body))")
                }
                let fixture = Fixture(client: client, primary: primary, replica: replica, routes: routes, sql: sql)
                routes.set(fixture.fullRoute)
                try await body(fixture)
            }
        } catch {
            await sql.stop()
            cache.stop()
            await node.stop()
            throw error
        }
        await sql.stop()
        cache.stop()
        await node.stop()
    }

    static func object(_ response: TestResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any]) ?? [:]
    }

    static func rows(_ response: TestResponse) -> [[Any]] { object(response)["rows"] as? [[Any]] ?? [] }

    static func member(_ response: TestResponse) -> String? { object(response)["member"] as? String }

    static func error(_ response: TestResponse) -> [String: Any] { object(response)["error"] as? [String: Any] ?? [:] }

    static func eventually(within seconds: Double = 20, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        repeat {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(25))
        } while ContinuousClock.now < deadline
        return false
    }

    @Test func readsReachTheReplicaAndWritesThePrimary() async throws {
        let registry = PrometheusCollectorRegistry()
        try await Self.withSQL(metricsRegistry: registry) { fixture in
            let read = try await fixture.query("SELECT pg_is_in_recovery() AS standby")
            #expect(read.status == .ok, "\(String(buffer: read.body))")
            #expect(Self.member(read) == "replica" && Self.object(read)["route"] as? String == "replica")
            #expect(Self.rows(read).first?.first as? Bool == true, "the replica is in recovery")
            #expect(
                Self.object(read)["columns"] as? [[String: String]] == [["name": "standby", "type": "bool"]])

            let write = try await fixture.query("INSERT INTO items (note) VALUES ($1) RETURNING id", ["hello"])
            #expect(write.status == .ok, "\(String(buffer: write.body))")
            #expect(Self.member(write) == "primary" && Self.object(write)["rowCount"] as? Int == 1)
            #expect(Self.rows(write).first?.first as? Int == 1)

            // Replicated: a read served by the replica sees it.
            #expect(
                try await Self.eventually {
                    let seen = try await fixture.query("SELECT note FROM items")
                    return Self.member(seen) == "replica" && Self.rows(seen).first?.first as? String == "hello"
                })

            let pinned = try await fixture.query("SELECT pg_is_in_recovery()", route: "primary")
            #expect(Self.member(pinned) == "primary" && Self.rows(pinned).first?.first as? Bool == false)

            // A "read" calling a function that writes: the replica refuses (25006), the primary runs it.
            let bumped = try await fixture.query("SELECT bump()")
            #expect(bumped.status == .ok && Self.member(bumped) == "primary", "\(String(buffer: bumped.body))")

            let kinds = try await fixture.query(
                #"SELECT 9007199254740993::int8 AS a, 1.50::numeric AS b, '{"k":[1]}'::jsonb AS c, 'NaN'::float8 AS d, ARRAY[1,2] AS e, NULL AS f, 'x"y'::text AS g"#
            )
            #expect(kinds.status == .ok, "\(String(buffer: kinds.body))")
            #expect(
                String(buffer: kinds.body).contains(
                    #""rows":[[9007199254740993,"1.50",{"k": [1]},"NaN","{1,2}",null,"x\"y"]]"#),
                "\(String(buffer: kinds.body))")

            // Concurrent reads and writes, then every session the servers hold is an idle pooled one.
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<32 {
                    group.addTask {
                        try await
                            (index % 2 == 0
                            ? fixture.query("SELECT pg_sleep(0.02), count(*) FROM items")
                            : fixture.query("INSERT INTO items (note) VALUES ($1)", ["load \(index)"])).status
                    }
                }
                for try await status in group { #expect(status == .ok) }
            }
            let snapshot = fixture.sql.poolSnapshot
            let onPrimary = try #require(snapshot.server("acme", fixture.primaryEndpoint))
            let onReplica = try #require(snapshot.server("acme", fixture.replicaEndpoint))
            #expect(onPrimary.open == onPrimary.idle && onReplica.open == onReplica.idle)
            #expect(onPrimary.open <= 4 && onReplica.open <= 4)
            #expect(try await fixture.sessions(fixture.primary) == onPrimary.idle)
            #expect(try await fixture.sessions(fixture.replica) == onReplica.idle)
            #expect(try await fixture.sessions(fixture.primary, state: "idle") == onPrimary.idle)

            let metrics = String(buffer: try await fixture.client.execute(uri: "/metrics", method: .get).body)
            for series in [
                #"raftgate_sql_query_duration_seconds_count{route="replica"}"#,
                #"raftgate_sql_query_duration_seconds_count{route="primary"}"#, "raftgate_pg_pools_open 1",
                "raftgate_pg_connections_open \(onPrimary.open + onReplica.open)",
            ] {
                #expect(metrics.contains(series), "\(series)")
            }
        }
    }

    @Test func badInputGetsAClearErrorAndChangesNothing() async throws {
        try await Self.withSQL { fixture in
            func expectError(_ response: TestResponse, _ status: HTTPResponse.Status, _ code: String) {
                #expect(response.status == status, "\(String(buffer: response.body))")
                #expect(Self.error(response)["code"] as? String == code, "\(String(buffer: response.body))")
            }
            expectError(try await fixture.post("{not json"), .badRequest, "bad_request")
            expectError(try await fixture.post(#"{"sql":"SELECT 1","param":[]}"#), .badRequest, "bad_request")
            expectError(try await fixture.post(#"{"sql":1}"#), .badRequest, "bad_request")
            expectError(try await fixture.post(#"{"sql":"SELECT 1","route":"replica"}"#), .badRequest, "bad_request")
            expectError(try await fixture.post(#"{"sql":"SELECT 1"}"#, key: nil), .unauthorized, "unauthorized")
            expectError(
                try await fixture.post(#"{"sql":"SELECT 1"}"#, key: SQLRouteTests.otherKey), .forbidden, "wrong_tenant")
            expectError(
                try await fixture.post(#"{"sql":"SELECT 1"}"#, tenant: "nobody", key: "guess"), .unauthorized,
                "unauthorized")
            expectError(
                try await fixture.post(#"{"sql":"SELECT 1"}"#, tenant: "other", key: SQLRouteTests.otherKey), .notFound,
                "no_database")

            let syntax = try await fixture.query("INSERT INTO items (note) VALUS ('x')")
            expectError(syntax, .badRequest, "sql_error")
            #expect(Self.error(syntax)["sqlstate"] as? String == "42601")
            #expect(Self.error(syntax)["position"] as? Int == 26)
            let undefined = try await fixture.query("SELECT * FROM missing")
            expectError(undefined, .badRequest, "sql_error")
            #expect(Self.error(undefined)["sqlstate"] as? String == "42P01")

            expectError(
                try await fixture.query("INSERT INTO items (note) VALUES ('a'); SELECT 1"), .badRequest,
                "refused_statement")
            expectError(try await fixture.query("BEGIN"), .badRequest, "refused_statement")
            expectError(try await fixture.query("SET search_path = elsewhere"), .badRequest, "refused_statement")
            let huge = "INSERT INTO items (note) VALUES ('" + String(repeating: "x", count: 5000) + "')"
            expectError(try await fixture.query(huge), .contentTooLarge, "too_large")

            // Connection parameters cannot be smuggled in through a project config either.
            let injected = try await fixture.client.execute(
                uri: "/config/evil", method: .put, headers: [.authorization: "Bearer \(SQLRouteTests.adminToken)"],
                body: ByteBuffer(
                    string: #"{"postgres":{"database":"acme host=192.0.2.1","user":"acme","maxConnections":1}}"#))
            expectError(injected, .badRequest, "invalid_config")
            #expect(
                try await fixture.client.execute(
                    uri: "/config/evil", method: .get, headers: [.authorization: "Bearer \(SQLRouteTests.adminToken)"]
                ).status == .notFound)

            // Nothing was written, and the pool still serves.
            let count = try await fixture.query("SELECT count(*) FROM items", route: "primary")
            #expect(count.status == .ok && Self.rows(count).first?.first as? Int == 0, "\(String(buffer: count.body))")
        }
    }

    @Test func routeChangesFailoversAndUnknownOutcomes() async throws {
        try await Self.withSQL { fixture in
            // No primary: writes wait, reads still go to the replica.
            fixture.routes.set(.init(epoch: 2, primary: nil, replicas: [fixture.replicaEndpoint], writable: true))
            let noPrimary = try await fixture.query("INSERT INTO items (note) VALUES ('x')")
            #expect(noPrimary.status == .serviceUnavailable && noPrimary.headers[.retryAfter] == "1")
            #expect(Self.error(noPrimary)["code"] as? String == "no_primary")
            #expect(Self.member(try await fixture.query("SELECT 1")) == "replica")
            // A gateway that cannot vouch for its route routes no writes, but reads.
            fixture.routes.set(
                .init(epoch: 3, primary: fixture.primaryEndpoint, replicas: [fixture.replicaEndpoint], writable: false))
            let stale = try await fixture.query("INSERT INTO items (note) VALUES ('x')")
            #expect(stale.status == .serviceUnavailable && Self.error(stale)["code"] as? String == "not_writable")
            #expect(try await fixture.query("SELECT 1").status == .ok)
            fixture.routes.set(.unknown)
            let nothing = try await fixture.query("SELECT 1")
            #expect(nothing.status == .serviceUnavailable && nothing.headers[.retryAfter] == "1")

            // The replica leaves the route: its pooled connections are closed.
            fixture.routes.set(fixture.fullRoute)
            #expect(Self.member(try await fixture.query("SELECT 1")) == "replica")
            #expect(try await fixture.sessions(fixture.replica) == 1)
            fixture.routes.set(.init(epoch: 5, primary: fixture.primaryEndpoint, replicas: [], writable: true))
            #expect(try await Self.eventually { try await fixture.sessions(fixture.replica) == 0 })
            #expect(fixture.sql.poolSnapshot.server("acme", fixture.replicaEndpoint)?.open ?? 0 == 0)
            #expect(Self.member(try await fixture.query("SELECT 1")) == "primary")

            // A read whose replica dies under it is answered by the primary.
            fixture.routes.set(fixture.fullRoute)
            // (The retry runs the whole statement again on the primary: the sleep is short.)
            async let interrupted = fixture.query("SELECT pg_is_in_recovery() AS standby, pg_sleep(4)")
            #expect(try await Self.eventually { try await fixture.sessions(fixture.replica, state: "active") == 1 })
            await fixture.replica.stop()
            let read = try await interrupted
            #expect(read.status == .ok, "\(String(buffer: read.body))")
            #expect(Self.member(read) == "primary" && Self.object(read)["retried"] as? Bool == true)
            #expect(Self.rows(read).first?.first as? Bool == false)

            // A write whose connection breaks is reported as unknown, never retried.
            async let lost = fixture.query("INSERT INTO items (note) SELECT 'lost' FROM pg_sleep(10)")
            #expect(try await Self.eventually { try await fixture.sessions(fixture.primary, state: "active") == 1 })
            try await fixture.primary.psql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'raftgate/acme' AND state = 'active'"
            )
            let write = try await lost
            #expect(write.status == .gatewayTimeout, "\(String(buffer: write.body))")
            #expect(Self.error(write)["code"] as? String == "outcome_unknown")
            let count = try await fixture.query("SELECT count(*) FROM items WHERE note = 'lost'", route: "primary")
            #expect(Self.rows(count).first?.first as? Int == 0, "\(String(buffer: count.body))")
        }
    }

    /// The pools' lifecycle as the API drives it: a config written through `/config` closes the
    /// tenant's pool at once (the config cache pushes it), another tenant takes the only pool slot
    /// (LRU), and an unused pool closes after its idle timeout.
    @Test func configChangesEvictionAndIdleTimeoutThroughTheAPI() async throws {
        try await Self.withSQL(pools: {
            $0.maxPools = 1
            $0.idleTimeout = .seconds(5)
        }) { fixture in
            #expect(Self.member(try await fixture.query("SELECT 1")) == "replica")
            let first = try #require(fixture.sql.poolSnapshot.pools["acme"])
            #expect(try await fixture.sessions(fixture.replica) == 1)

            let put = try await fixture.client.execute(
                uri: "/config/acme", method: .put, headers: [.authorization: "Bearer \(SQLRouteTests.adminToken)"],
                body: ByteBuffer(
                    string:
                        #"{"apiKeys":["\#(TenantKeys.hash(of: SQLRouteTests.acmeKey))"],"postgres":{"database":"acme","user":"acme","maxConnections":2}}"#
                ))
            #expect(put.status == .ok)
            #expect(try await Self.eventually { fixture.sql.poolSnapshot.pools["acme"] == nil })
            #expect(try await Self.eventually { try await fixture.sessions(fixture.replica) == 0 })
            #expect(Self.member(try await fixture.query("SELECT 1")) == "replica")
            let rebuilt = try #require(fixture.sql.poolSnapshot.pools["acme"])
            #expect(rebuilt.generation > first.generation)

            // One pool at most: beta's first request closes acme's.
            var headers: HTTPFields = [TenantKeys.tenantHeader: "beta", TenantKeys.apiKeyHeader: SQLRouteTests.betaKey]
            headers[.contentType] = "application/json"
            let beta = try await fixture.client.execute(
                uri: "/sql", method: .post, headers: headers, body: ByteBuffer(string: #"{"sql":"SELECT 2"}"#))
            #expect(beta.status == .ok && Self.rows(beta).first?.first as? Int == 2)
            #expect(Set(fixture.sql.poolSnapshot.pools.keys) == ["beta"])
            #expect(try await Self.eventually { try await fixture.sessions(fixture.replica) == 0 })
            #expect(try await fixture.sessions(fixture.replica, tenant: "beta") == 1)

            // Unused for the idle timeout: closed, and the server holds no session of it.
            #expect(try await Self.eventually { fixture.sql.poolSnapshot.pools.isEmpty })
            #expect(try await Self.eventually { try await fixture.sessions(fixture.replica, tenant: "beta") == 0 })
            #expect(fixture.sql.poolSnapshot.connections == 0)
        }
    }
}
