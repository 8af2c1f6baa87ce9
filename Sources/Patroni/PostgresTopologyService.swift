import CoreMetrics
import Logging
import NIOPosix
import Node

/// Everything a node runs for PostgreSQL under Patroni: the route source every node keeps (what
/// the SQL routes consume: `routes`), and — registered with the node's leader services — the
/// topology watcher, whose latest round `observations` holds while this node leads.
public final class PostgresTopologyService: Sendable {
    public let routes: StoreRouteSource
    public let observations: TopologyObservations
    public let settings: TopologyWatchSettings
    private let client: PatroniClient
    private let threads: NIOThreadPool

    private init(
        routes: StoreRouteSource, observations: TopologyObservations, settings: TopologyWatchSettings,
        client: PatroniClient, threads: NIOThreadPool
    ) {
        self.routes = routes
        self.observations = observations
        self.settings = settings
        self.client = client
        self.threads = threads
    }

    public static func start(
        node: RaftNode, settings: TopologyWatchSettings, rule: ReadinessRule = .standard,
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger = Logger(label: "raftgate.postgres")
    ) async -> PostgresTopologyService {
        let metrics = TopologyMetrics(factory: metricsFactory)
        let routes = await StoreRouteSource.start(
            node: node, endpoints: settings.endpoints, rule: rule, metrics: metrics, logger: logger)
        // One probe thread per member: a round probes each member once, and each probe gives its
        // thread back by the request timeout (libpq's client-side deadline), so probes do not
        // queue behind each other.
        let threads = NIOThreadPool(numberOfThreads: max(1, settings.members.count))
        threads.start()
        let client = PatroniClient(timeout: settings.requestTimeout, logger: logger)
        let observations = TopologyObservations()
        let poller = TopologyPoller(
            settings: settings, client: client, threads: threads, metrics: metrics, logger: logger)
        await node.leaderServices.add(
            TopologyWatcher(node: node, poller: poller, observations: observations, logger: logger))
        return PostgresTopologyService(
            routes: routes, observations: observations, settings: settings, client: client, threads: threads)
    }

    /// Stops the route source and releases the watcher's client and threads; call after the
    /// node's leader services have stopped (or with the node stopping).
    public func stop() async {
        routes.stop()
        await client.shutdown()
        try? await threads.shutdownGracefully()
    }
}
