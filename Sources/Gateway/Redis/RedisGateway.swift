import CoreMetrics
import Logging
import Node
import Sentinel

/// What a node runs for Redis under Sentinel: the client (Sentinel discovery, the pool of verified
/// connections to the master, `+switch-master` subscriptions), the committed topology followed
/// from the change feed, and — registered with the node's leader services — the watcher that
/// commits it. Tenants' rate limits come from their project configs.
public struct RedisGateway: Sendable {
    public let client: RedisClient
    public let view: RedisTopologyView
    let configCache: ConfigCache?
    let cacheLimits: CacheRequest.Limits

    public static func start(
        node: RaftNode, settings: SentinelSettings, configCache: ConfigCache?,
        cacheLimits: CacheRequest.Limits = CacheRequest.Limits(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory, logger: Logger = Logger(label: "raftgate.redis")
    ) async -> RedisGateway {
        var settings = settings
        settings.clientName = "raftgate-n\(node.id)"
        let client = RedisClient(settings: settings, metricsFactory: metricsFactory, logger: logger)
        let view = await RedisTopologyView.start(node: node, pool: client.pool, logger: logger)
        await node.leaderServices.add(
            RedisTopologyWatcher(node: node, client: client, interval: settings.watchInterval, logger: logger))
        return RedisGateway(client: client, view: view, configCache: configCache, cacheLimits: cacheLimits)
    }

    public func stop() async {
        view.stop()
        await client.shutdown()
    }

    /// The tenant's limit, from its project config (`rateLimit`); nil: not limited.
    func rule(for tenant: String) -> RateLimitRule? {
        guard let limit = configCache?.entry(for: tenant)?.config.rateLimit else { return nil }
        return RateLimitRule(
            perSecond: limit.perSecond, burst: limit.burst,
            failMode: limit.failMode.flatMap(RateLimitRule.FailMode.init(rawValue:)) ?? .open)
    }
}
