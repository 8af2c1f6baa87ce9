import CoreMetrics
import NIOConcurrencyHelpers
import Node
import Patroni

/// The data API's parts on one node: the tenant pools (Patroni), the route they follow and the
/// config cache they are rebuilt from. `start` wires them: a route change drains the servers whose
/// role changed, a config change closes the tenant's pool (rebuilt on its next request).
public final class SQLGateway: Sendable {
    let pools: TenantPools
    let routes: any PostgresRouteSource
    let configCache: ConfigCache
    /// Query latency by where the statement ran.
    let latency: [RouteDrain.Role: CoreMetrics.Timer]
    /// Rotates reads over the admitted replicas.
    private let turn = NIOLockedValueBox(0)
    private let followers: NIOLockedValueBox<[Task<Void, Never>]>

    private init(
        pools: TenantPools, routes: any PostgresRouteSource, configCache: ConfigCache, factory: any MetricsFactory
    ) {
        self.pools = pools
        self.routes = routes
        self.configCache = configCache
        latency = [
            .primary: CoreMetrics.Timer(
                label: "raftgate_sql_query_duration_seconds", dimensions: [("route", "primary")], factory: factory),
            .replica: CoreMetrics.Timer(
                label: "raftgate_sql_query_duration_seconds", dimensions: [("route", "replica")], factory: factory),
        ]
        followers = NIOLockedValueBox([])
    }

    public static func start(
        configCache: ConfigCache, routes: any PostgresRouteSource, settings: TenantPoolSettings = TenantPoolSettings(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) -> SQLGateway {
        let pools = TenantPools(settings: settings, metricsFactory: metricsFactory)
        let gateway = SQLGateway(pools: pools, routes: routes, configCache: configCache, factory: metricsFactory)
        let updates = routes.routeUpdates()
        let changes = configCache.changes()
        gateway.followers.withLockedValue {
            $0 = [
                Task { await pools.follow(updates) },
                Task {
                    for await change in changes {
                        let config: TenantPoolConfig? =
                            switch change {
                            case .updated(_, let entry): entry.config.postgres.map(TenantPoolConfig.init)
                            case .removed: nil
                            }
                        pools.configChanged(tenant: change.project, to: config)
                    }
                },
            ]
        }
        return gateway
    }

    public func stop() async {
        for task in followers.withLockedValue({ $0 }) { task.cancel() }
        await pools.shutdown()
    }

    /// What the pools hold now.
    public var poolSnapshot: TenantPools.Snapshot { pools.snapshot }

    func nextTurn() -> Int {
        turn.withLockedValue { turn in
            turn &+= 1
            return turn
        }
    }
}

extension TenantPoolConfig {
    init(_ postgres: ProjectConfig.Postgres) {
        self.init(database: postgres.database, user: postgres.user, maxConnections: postgres.maxConnections)
    }
}
