import CoreMetrics
import HTTPTypes
import Hummingbird
import MembershipNIO
import Node
import Patroni
import Prometheus
import Raft

/// Health endpoints for HAProxy and orchestrators. They answer GET, HEAD and OPTIONS (HAProxy's
/// `option httpchk` may send any of them, as HTTP/1.0 without a Host header).
struct HealthRoutes: Sendable {
    let node: RaftNode
    /// A follower further behind than this (commit − applied) is not a healthy replica.
    var maxReplicaLag: UInt64 = 1000
    /// A follower that has not heard from its leader for longer is not a healthy replica.
    var maxLeaderSilence: Duration = .seconds(2)
    /// Drain state: while draining, readiness, `/replica` and `/primary` answer 503.
    var lifecycle: NodeLifecycle?

    func register(on router: Router<BasicRequestContext>) {
        for method in [HTTPRequest.Method.get, .head, .options] {
            router.on("health/live", method: method) { _, _ in await self.live() }
            router.on("health/ready", method: method) { _, _ in await self.ready() }
            router.on("health", method: method) { _, _ in await self.full() }
            router.on("primary", method: method) { _, _ in await self.primary() }
            router.on("replica", method: method) { _, _ in await self.replica() }
        }
    }

    private func verdict(_ healthy: Bool, _ reason: String, _ status: RaftStatus) -> Response {
        json(
            [
                "healthy": .bool(healthy), "reason": .string(reason), "role": .string(status.role.rawValue),
                "term": .number(status.term),
            ], status: healthy ? .ok : .serviceUnavailable)
    }

    /// Why this node must not be sent work whatever its role: it stopped itself on a fatal error,
    /// it is draining, or a leader told it it was removed from the cluster.
    private func outOfService() async -> String? {
        if let fatal = await node.fatalError { return "stopped: \(fatal)" }
        if lifecycle?.isDraining == true { return "draining" }
        if await node.isRemoved { return "removed from the cluster" }
        return nil
    }

    /// 200 while the process serves, 503 once the node stopped itself on a fatal error (so a
    /// supervisor that checks liveness restarts it, and nothing routes to it meanwhile).
    func live() async -> Response {
        if let fatal = await node.fatalError {
            return verdict(false, "stopped: \(fatal)", await node.status)
        }
        return json(["status": .string("live")])
    }

    /// 200 only while this node leads *and* holds a quorum lease: an isolated old leader says 503.
    func primary() async -> Response {
        let status = await node.status
        if let reason = await outOfService() { return verdict(false, reason, status) }
        if status.role == .leader && status.leaseValid { return verdict(true, "leader with a quorum lease", status) }
        return verdict(false, status.role == .leader ? "leader without a quorum lease" : "not the leader", status)
    }

    /// 200 while this node follows a live leader and keeps up with it.
    func replica() async -> Response {
        let status = await node.status
        if let reason = await outOfService() { return verdict(false, reason, status) }
        guard status.role == .follower, status.leader != nil, let silence = await node.leaderContactAge else {
            return verdict(false, "not following a leader", status)
        }
        guard silence <= maxLeaderSilence else { return verdict(false, "leader silent for \(silence)", status) }
        let lag = await lagBehindLeader(status)
        guard lag <= maxReplicaLag else {
            return verdict(false, "applied \(lag) entries behind the leader's commit", status)
        }
        return verdict(true, "following n\(status.leader!)", status)
    }

    /// Applied index against the leader's commit index (what the leader announced), not this
    /// node's own commit index, which lags with its log when it is behind.
    private func lagBehindLeader(_ status: RaftStatus) async -> UInt64 {
        let leaderCommit = max(await node.leaderCommitIndex, status.commitIndex)
        return leaderCommit - min(status.appliedIndex, leaderCommit)
    }

    /// 200 when this node knows a leader, heard from it within `maxLeaderSilence` (unless it leads),
    /// and has applied within `maxReplicaLag` of the leader's commit.
    func ready() async -> Response {
        if let reason = await outOfService() { return verdict(false, reason, await node.status) }
        let readiness = await node.readiness(ReadinessRule(maxLag: maxReplicaLag, maxLeaderSilence: maxLeaderSilence))
        return verdict(readiness.ready, readiness.reason, readiness.status)
    }

    func full() async -> Response {
        let status = await node.status
        return json([
            "id": .number(status.id), "role": .string(status.role.rawValue), "term": .number(status.term),
            "leader": status.leader.map { .number($0) } ?? .string(""), "commitIndex": .number(status.commitIndex),
            "appliedIndex": .number(status.appliedIndex), "lastIndex": .number(status.lastIndex),
            "snapshotIndex": .number(status.snapshotIndex), "leaseValid": .bool(status.leaseValid),
            "leaderCommitIndex": .number(await node.leaderCommitIndex), "removed": .bool(await node.isRemoved),
            "draining": .bool(lifecycle?.isDraining == true), "stopped": .bool(await node.fatalError != nil),
        ])
    }
}

/// The routes of one raftgate node. Unknown routes get a JSON 404. With a metrics registry,
/// requests are counted and timed into it and `GET /metrics` serves it. With a config cache, the
/// `/config` routes are served from it; `adminToken` guards admin routes (none: they are refused).
/// With `sql`, `POST /sql` serves the tenants' PostgreSQL (its own config cache authenticates).
public func makeGatewayRouter(
    node: RaftNode, limits: GatewayLimits = GatewayLimits(), metricsRegistry: PrometheusCollectorRegistry? = nil,
    membership: MembershipService? = nil, configCache: ConfigCache? = nil, adminToken: String? = nil,
    lifecycle: NodeLifecycle? = nil, workers: WorkerGateway? = nil, postgres: PostgresTopologyService? = nil,
    redis: RedisGateway? = nil, sql: SQLGateway? = nil, etcdAccess: EtcdAccess = .off
) -> Router<BasicRequestContext> {
    let router = Router()
    let factory: any MetricsFactory =
        metricsRegistry.map { makeMetricsFactory(registry: $0) } ?? NOOPMetricsHandler.instance
    if metricsRegistry != nil {
        router.middlewares.add(RequestMetricsMiddleware(factory: factory))
    }
    router.middlewares.add(NotFoundAsJSON())
    let admin = AdminToken(adminToken)
    let watchMetrics = WatchMetrics(factory: factory)
    KeyValueRoutes(node: node, limits: limits, admin: admin).register(on: router)
    LeaseRoutes(node: node, limits: limits, admin: admin).register(on: router)
    WatchRoutes(node: node, limits: limits, admin: admin, metrics: watchMetrics).register(on: router)
    // etcd's v3 JSON API for Patroni; member URLs use the scheme the API is served with.
    EtcdRoutes(
        node: node, limits: limits, membership: membership, clientScheme: workers?.clientScheme ?? "http",
        access: etcdAccess
    ).register(on: router)
    if let configCache {
        ConfigRoutes(node: node, cache: configCache, limits: limits, admin: admin).register(on: router)
    }
    if let workers {
        WorkerRoutes(node: node, workers: workers, limits: limits, admin: admin).register(on: router)
        let proxied = router.group("w")
        // Tenant API keys, before the routes (a group's middleware wraps only the routes added
        // after it).
        proxied.add(
            middleware: ProxyTenantGate(
                tenants: configCache.map { TenantAuthentication(cache: $0) },
                publicServices: workers.publicServices))
        let publicServices = workers.publicServices
        proxied.add(
            middleware: TenantRateLimit(redis: redis) { request in
                ProxyTenantGate<BasicRequestContext>.service(ofPath: request.uri.path).map {
                    !publicServices.contains($0)
                }
                    ?? false
            })
        ProxyRoutes(
            proxy: workers.proxy, limits: limits, clientScheme: workers.clientScheme,
            publicServices: workers.publicServices
        ).register(on: proxied)
    }
    if let postgres {
        PostgresTopologyRoutes(node: node, postgres: postgres).register(on: router)
    }
    if let redis {
        RedisRoutes(redis: redis).register(on: router)
        if let configCache {
            let cache = router.group("cache")
            cache.add(middleware: TenantAuthentication(cache: configCache))
            cache.add(middleware: TenantRateLimit(redis: redis))
            CacheRoutes(redis: redis, limits: limits).register(on: cache)
        }
    }
    if let sql {
        let group = router.group("sql")
        group.add(middleware: TenantAuthentication(cache: sql.configCache))
        group.add(middleware: TenantRateLimit(redis: redis))
        SQLRoutes(sql: sql, limits: limits).register(on: group)
    }
    HealthRoutes(node: node, lifecycle: lifecycle).register(on: router)
    if let lifecycle {
        LifecycleRoutes(lifecycle: lifecycle, admin: admin).register(on: router)
    }
    MembershipRoutes(node: node, membership: membership, admin: admin, limits: limits).register(on: router)
    AdminRoutes(
        node: node, metricsRegistry: metricsRegistry, membership: membership, configCache: configCache,
        watchMetrics: watchMetrics
    ).register(on: router)
    return router
}

/// The metrics factory raftgate uses: Prometheus, with histogram buckets fitted to what is
/// measured — fsyncs from 50 µs, requests from 250 µs (the defaults start at 5 ms, too coarse for
/// a local write).
public func makeMetricsFactory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
    var factory = PrometheusMetricsFactory(registry: registry)
    factory.defaultDurationHistogramBuckets = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
        .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
    ]
    return factory
}

/// Only the health endpoints: served on a separate port so HAProxy's checks never queue behind API load.
public func makeHealthRouter(node: RaftNode, lifecycle: NodeLifecycle? = nil) -> Router<BasicRequestContext> {
    let router = Router()
    router.middlewares.add(NotFoundAsJSON())
    HealthRoutes(node: node, lifecycle: lifecycle).register(on: router)
    return router
}

/// Turns the router's bare 404 for unknown routes into the JSON error shape.
struct NotFoundAsJSON: RouterMiddleware {
    func handle(
        _ request: Request, context: BasicRequestContext, next: (Request, BasicRequestContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            return GatewayError(
                status: .notFound, code: "no_route", message: "no route \(request.method) \(request.uri.path)"
            )
            .response
        }
    }
}
