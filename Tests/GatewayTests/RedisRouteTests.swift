import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Node
import Patroni
import Prometheus
import Raft
import Sentinel
import Testing

@testable import Gateway

/// `/cache`, `/redis` and the rate limit on one in-process node whose Sentinels are all
/// unreachable (nothing listens on their ports): bad input is refused before Redis is asked, an
/// unreachable Redis is 503, and the rate limit fails open or closed as each tenant's config says,
/// counted. (With real Redis and Sentinels: IntegrationTests.HASentinelTests.)
@Suite("Redis routes without a reachable Redis")
struct RedisRouteTests {
    static let openKey = "open-tenant-key-1"
    static let shutKey = "shut-tenant-key-1"

    @Test func badInputAndAnUnreachableRedis() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("redis-routes-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = NodeConfiguration(
            id: 1, dataDirectory: root, raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1], peers: [:],
            clusterKey: try ClusterKey("redis-route-tests-cluster-key"))
        configuration.tickInterval = .milliseconds(20)
        let node = try await RaftNode.start(configuration)
        let elected = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < elected, await !node.status.leaseValid {
            try await Task.sleep(for: .milliseconds(5))
        }
        let cache = await ConfigCache.start(node: node)
        defer { cache.stop() }
        for (project, key, failMode) in [("open", Self.openKey, nil), ("shut", Self.shutKey, "closed")] {
            let config = ProjectConfig(
                apiKeys: [TenantKeys.hash(of: key)],
                rateLimit: ProjectConfig.RateLimit(perSecond: 10, burst: 10, failMode: failMode))
            let outcome = await node.write(
                StoreCommand(
                    operation: .put(key: ProjectConfig.key(for: project), value: config.canonicalJSON), isSystem: true))
            guard case .applied(.applied, _) = outcome else { throw CancellationError() }
            let deadline = ContinuousClock.now + .seconds(10)
            while cache.entry(for: project)?.config != config, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        // Port 1: refused at once, so every resolution fails fast.
        var settings = SentinelSettings(sentinels: [
            RedisEndpoint(host: "127.0.0.1", port: 1), RedisEndpoint(host: "127.0.0.1", port: 2),
            RedisEndpoint(host: "127.0.0.1", port: 3),
        ])
        settings.resolveAttempts = 1
        let registry = PrometheusCollectorRegistry()
        let redis = await RedisGateway.start(
            node: node, settings: settings, configCache: cache, metricsFactory: makeMetricsFactory(registry: registry))
        var limits = GatewayLimits()
        limits.maxBodyBytes = 64 * 1024
        // /sql with no route at all: a request the rate limit lets through gets /sql's own answer.
        let sql = SQLGateway.start(
            configCache: cache, routes: FixedPostgresRouteSource(.unknown),
            metricsFactory: makeMetricsFactory(registry: registry))
        let router = makeGatewayRouter(
            node: node, limits: limits, metricsRegistry: registry, configCache: cache, redis: redis, sql: sql)
        let open: HTTPFields = [TenantKeys.tenantHeader: "open", TenantKeys.apiKeyHeader: Self.openKey]
        let shut: HTTPFields = [TenantKeys.tenantHeader: "shut", TenantKeys.apiKeyHeader: Self.shutKey]
        try await Application(router: router).test(.router) { client in
            func call(_ method: HTTPRequest.Method, _ uri: String, _ headers: HTTPFields, body: String = "")
                async throws -> (status: HTTPResponse.Status, body: String, headers: HTTPFields)
            {
                let response = try await client.execute(
                    uri: uri, method: method, headers: headers, body: ByteBuffer(string: body))
                return (response.status, String(buffer: response.body), response.headers)
            }
            // No key: 401 before anything else.
            #expect(try await call(.get, "/cache/k", [TenantKeys.tenantHeader: "open"]).status == .unauthorized)
            // Bad input is refused before Redis is asked (the open tenant's limit fails open first).
            let long = try await call(.put, "/cache/" + String(repeating: "k", count: 513), open, body: "v")
            #expect(long.status == .badRequest && long.body.contains("key_too_long"), "\(long)")
            let undecodable = try await call(.put, "/cache/%FF", open, body: "v")
            #expect(undecodable.status == .badRequest && undecodable.body.contains("bad_key"), "\(undecodable)")
            let ttl = try await call(.put, "/cache/k?ttl_s=tomorrow", open, body: "v")
            #expect(ttl.status == .badRequest && ttl.body.contains("bad_ttl"), "\(ttl)")
            let negative = try await call(.put, "/cache/k?ttl_s=-5", open, body: "v")
            #expect(negative.status == .badRequest && negative.body.contains("bad_ttl"), "\(negative)")
            let huge = try await call(.put, "/cache/k", open, body: String(repeating: "x", count: 65 * 1024))
            #expect(huge.status == .contentTooLarge && huge.body.contains("too_large"), "\(huge)")
            // Good input with Redis unreachable: 503, retry later.
            let unreachable = try await call(.get, "/cache/k", open)
            #expect(unreachable.status == .serviceUnavailable && unreachable.body.contains("redis_unavailable"))
            #expect(unreachable.headers[.retryAfter] == "1")
            // A tenant whose limit fails closed is refused while the limit cannot be checked.
            let closed = try await call(.get, "/cache/k", shut)
            #expect(closed.status == .serviceUnavailable && closed.body.contains("rate_limit_unavailable"), "\(closed)")
            // /sql is behind the same limit: closed refuses before /sql is asked; open lets it through
            // to /sql, which answers for itself (this tenant has no database configured).
            let sqlClosed = try await call(.post, "/sql", shut, body: #"{"sql":"SELECT 1"}"#)
            #expect(
                sqlClosed.status == .serviceUnavailable && sqlClosed.body.contains("rate_limit_unavailable"),
                "\(sqlClosed)")
            let sqlOpen = try await call(.post, "/sql", open, body: #"{"sql":"SELECT 1"}"#)
            #expect(sqlOpen.status == .notFound && sqlOpen.body.contains("no_database"), "\(sqlOpen)")
            // The view says nothing was committed, and what is configured.
            let view = try await call(.get, "/redis", [:])
            #expect(view.status == .ok && view.body.contains(#""master":null"#), "\(view)")
            #expect(view.body.contains("127.0.0.1:3"))
            let metrics = try await call(.get, "/metrics", [:]).body
            #expect(metrics.contains(#"raftgate_rate_limit_decisions_total{decision="failed_open"} 7"#), "\(metrics)")
            #expect(metrics.contains(#"raftgate_rate_limit_decisions_total{decision="failed_closed"} 2"#))
            #expect(metrics.contains(#"raftgate_redis_commands_total{result="unavailable"}"#))
        }
        await sql.stop()
        await redis.stop()
        await node.stop()
    }
}
