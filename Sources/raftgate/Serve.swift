import ArgumentParser
import Foundation
import Gateway
import Hummingbird
import Logging
import Membership
import MembershipNIO
import Metrics
import Node
import Patroni
import Prometheus
import Raft
import ServiceLifecycle
import Workers

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a node: the HTTP API, the health-only listener and the Raft peer port.",
        discussion: """
            Settings come from flags, then RAFTGATE_<OPTION> environment variables (RAFTGATE_ID, \
            RAFTGATE_DATA_DIR, …), then the JSON file named by --config or RAFTGATE_CONFIG, whose keys are \
            the options in camel case ("id", "dataDir", "peers", …). See examples/three-nodes/node1.json.
            """)

    @Option(help: "JSON config file (RAFTGATE_CONFIG).") var config: String?
    @Option(help: "This node's id (RAFTGATE_ID).") var id: UInt64?
    @Option(help: "Data directory (RAFTGATE_DATA_DIR); default ./data/node-<id>.") var dataDir: String?
    @Option(help: "HTTP API address, host:port (RAFTGATE_HTTP); default 127.0.0.1:808<id>.") var http: String?
    @Option(help: "Health-only listener, host:port (RAFTGATE_HEALTH); default 127.0.0.1:1000<id>.") var health: String?
    @Option(help: "Raft peer address, host:port (RAFTGATE_RAFT); default 127.0.0.1:909<id>.") var raft: String?
    @Option(help: "Peers as id=host:port,… (RAFTGATE_PEERS).") var peers: String?
    @Option(help: "Milliseconds per Raft tick (RAFTGATE_TICK_MS); elections after 10–20 ticks.") var tickMs: Int?
    @Option(help: "trace, debug, info, notice, warning, error or critical (RAFTGATE_LOG_LEVEL).") var logLevel: String?
    @Option(help: "Largest request body in bytes; larger get 413 (RAFTGATE_MAX_BODY_BYTES).") var maxBodyBytes: Int?
    @Option(help: "SWIM UDP (and push-pull TCP) address (RAFTGATE_SWIM); default <raft host>:707<id>.")
    var swim: String?
    @Option(help: "SWIM seeds, host:port,… (RAFTGATE_SWIM_SEEDS); default each peer's host at 707<peer id>.")
    var swimSeeds: String?
    @Option(help: "Shared secret authenticating Raft peers and SWIM, ≥ 16 bytes; required (RAFTGATE_CLUSTER_KEY).")
    var clusterKey: String?
    @Flag(help: "Without a cluster key, run with a public development key; never on a network (RAFTGATE_INSECURE_DEV).")
    var insecureDev = false
    @Option(help: "Largest SWIM clock difference accepted, ms (RAFTGATE_SWIM_REPLAY_WINDOW_MS); default 30000.")
    var swimReplayWindowMs: Int?
    @Option(
        help: "Bearer token for admin routes such as config writes, ≥ 16 bytes (RAFTGATE_ADMIN_TOKEN); none: refused.")
    var adminToken: String?
    @Option(help: "Changes a new store keeps for watches to resume from (RAFTGATE_WATCH_HISTORY); default 10000.")
    var watchHistory: Int?
    @OptionGroup var lifecycleFlags: LifecycleFlags
    @OptionGroup var tls: TLSOptions
    @OptionGroup(title: "Workers") var workerOptions: WorkerOptions
    @OptionGroup(title: "Limits") var limitOptions: LimitOptions
    @OptionGroup(title: "PostgreSQL under Patroni") var postgresOptions: PostgresOptions
    @OptionGroup(title: "Redis under Sentinel") var redisOptions: RedisOptions
    @OptionGroup(title: "PostgreSQL data API (/sql)") var sqlPoolOptions: SQLPoolOptions
    @OptionGroup(title: "etcd API") var etcdOptions: EtcdOptions

    func run() async throws {
        let settings = try await ServeSettings.resolve(
            .init(
                config: config, id: id, dataDir: dataDir, http: http, health: health, raft: raft, peers: peers,
                tickMs: tickMs, logLevel: logLevel, maxBodyBytes: maxBodyBytes, swim: swim, swimSeeds: swimSeeds,
                clusterKey: clusterKey, insecureDev: insecureDev, swimReplayWindowMs: swimReplayWindowMs,
                adminToken: adminToken, watchHistory: watchHistory, tls: tls.flags, limits: limitOptions,
                postgres: postgresOptions, sqlPools: sqlPoolOptions),
            environment: ProcessInfo.processInfo.environment)
        let workerSettings = try workerOptions.settings(environment: ProcessInfo.processInfo.environment)
        let etcdAccess = try etcdOptions.access(
            insecureDev: insecureDev || settings.usesDevelopmentKey
                || ProcessInfo.processInfo.environment["RAFTGATE_INSECURE_DEV"] == "true",
            environment: ProcessInfo.processInfo.environment)
        let publicServices = try workerOptions.publicServiceNames(environment: ProcessInfo.processInfo.environment)
        let sentinelSettings = try redisOptions.settings(
            configFile: config, environment: ProcessInfo.processInfo.environment)

        // One line per event on stderr, each carrying the node id.
        let level = settings.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "raftgate")
        logger[metadataKey: "node"] = "\(settings.id)"

        let registry = PrometheusCollectorRegistry()
        let metricsFactory = makeMetricsFactory(registry: registry)
        MetricsSystem.bootstrap(metricsFactory)

        var configuration = NodeConfiguration(
            id: settings.id, dataDirectory: settings.dataDirectory, raftHost: settings.raft.host,
            raftPort: settings.raft.port, initialVoters: settings.peers.keys.sorted(),
            peers: settings.peers.mapValues { ($0.host, $0.port) }, clusterKey: try ClusterKey(settings.clusterKey))
        let lifecycleSettings = try lifecycleFlags.resolve(environment: ProcessInfo.processInfo.environment)
        var swimSeeds = settings.swimSeeds
        try await lifecycleSettings.join(
            settings: settings, into: &configuration, swimSeeds: &swimSeeds, logger: logger)
        lifecycleSettings.applyTestHooks(to: &configuration)
        configuration.tickInterval = .milliseconds(settings.tickMilliseconds)
        configuration.metricsFactory = metricsFactory
        let loadedTLS = try await settings.tls.load()
        configuration.peerTLS = loadedTLS.peer
        configuration.watchHistory = ChangeHistory.Limits(maxEvents: settings.watchHistory)
        var limits = GatewayLimits()
        limits.maxBodyBytes = settings.maxBodyBytes
        limits.defaultRangeLimit = settings.limits.defaultRangeLimit
        limits.maxRangeLimit = settings.limits.maxRangeLimit
        configuration.writeLimits = settings.limits.writeLimits
        configuration.compactionBytes = settings.limits.compactionBytes
        configuration.peerLimits.maxInboundConnections = settings.limits.maxPeerConnections
        configuration.peerLimits.idleTimeout = .milliseconds(settings.limits.peerIdleMilliseconds)
        configuration.peerLimits.maxIncomingSnapshotBytes = settings.limits.maxSnapshotBytes
        var connectionLimits = ConnectionLimits()
        connectionLimits.maxConnections = settings.limits.maxConnections
        connectionLimits.headerTimeout = .milliseconds(Int64(settings.limits.headerTimeoutMilliseconds))
        connectionLimits.requestTimeout = .milliseconds(Int64(settings.limits.requestTimeoutMilliseconds))

        logger.info(
            "starting",
            metadata: [
                "http": "\(settings.http)", "health": "\(settings.health)", "raft": "\(settings.raft)",
                "dataDir": "\(settings.dataDirectory)", "swim": "\(settings.swim)",
                "swimSeeds": "\(settings.swimSeeds.joined(separator: ","))",
                "tls":
                    "api=\(settings.tls.api != nil) clientCerts=\(settings.tls.api?.clientCA != nil) peer=\(settings.tls.peer != nil)",
                "peers":
                    "\(settings.peers.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))",
            ])
        if settings.usesDevelopmentKey {
            logger.critical(
                "INSECURE: --insecure-dev and no clusterKey: Raft and SWIM use a public development key, so anyone who can reach the Raft or SWIM port can join, write, or stop this cluster; set RAFTGATE_CLUSTER_KEY on any network"
            )
        }
        let node = try await RaftNode.start(configuration)
        let configCache = await ConfigCache.start(
            node: node, metricsFactory: metricsFactory, logger: Logger(label: "raftgate.config"))
        if settings.adminToken == nil {
            logger.warning("no adminToken configured: config writes and other admin routes are refused")
        }
        switch etcdAccess {
        case .off: logger.info("the etcd API is off: no etcd password (--etcd-password, RAFTGATE_ETCD_PASSWORD)")
        case .open: logger.warning("INSECURE: --insecure-dev and no etcd password: the etcd API is open to anyone")
        case .password: break
        }
        var membershipConfiguration = MembershipConfiguration(
            id: settings.id, host: settings.swim.host, port: settings.swim.port,
            metadata: MemberMetadata(
                nodeID: settings.id, role: .gateway, httpAddress: "\(settings.http)", raftAddress: "\(settings.raft)",
                swimAddress: "\(settings.swim)"),
            seeds: swimSeeds, clusterKey: Array(settings.clusterKey.utf8))
        membershipConfiguration.replayWindow = .milliseconds(settings.swimReplayWindowMilliseconds)
        membershipConfiguration.metricsFactory = metricsFactory
        membershipConfiguration.logger = Logger(label: "raftgate.membership")
        let membership = try await MembershipService.start(membershipConfiguration)
        // Raft's host hears of suspected and dead peers from SWIM, long before its own timeouts.
        let changes = await membership.changes()
        let watcher = Task {
            for await change in changes where change.member.metadata?.role == .gateway || change.member.metadata == nil
            {
                let kind = change.status.kind
                await node.membershipChanged(
                    peer: change.member.id.node, reachable: kind == .alive, dead: kind == .dead || kind == .left)
            }
        }
        let workers = await WorkerGateway.start(
            node: node, membership: membership, settings: workerSettings,
            publicServices: publicServices, clientScheme: loadedTLS.api == nil ? "http" : "https",
            metricsFactory: metricsFactory,
            logger: Logger(label: "raftgate.workers"))
        // PostgreSQL under Patroni: the route source on every node (`postgres?.routes`, a
        // `PostgresRouteSource` for the SQL routes) and the leader-only topology watcher.
        var postgres: PostgresTopologyService?
        if let watch = settings.postgres {
            postgres = await PostgresTopologyService.start(
                node: node, settings: watch, metricsFactory: metricsFactory, logger: Logger(label: "raftgate.postgres"))
        }
        var redis: RedisGateway?
        if let sentinelSettings {
            redis = await RedisGateway.start(
                node: node, settings: sentinelSettings, configCache: configCache, metricsFactory: metricsFactory,
                logger: Logger(label: "raftgate.redis"))
        }
        // Where /sql sends statements: the committed topology when Patroni members are configured, else
        // a fixed route from the settings (none: /sql answers 503 no_primary).
        let postgresRoutes: any PostgresRouteSource =
            postgres?.routes ?? FixedPostgresRouteSource(settings.sqlPools.fixedRoute ?? .unknown)
        let sql = SQLGateway.start(
            configCache: configCache, routes: postgresRoutes, settings: settings.sqlPools.pools,
            metricsFactory: metricsFactory)
        // Idle connections are closed: Hummingbird keeps even an HTTP/1.0 connection open until the
        // client closes it, so without a timeout a client that never closes would hold a socket.
        let lifecycle = NodeLifecycle(node: node, plan: lifecycleSettings.plan, logger: logger)
        // The health listener has deadlines too, and a cap of its own, so API load never takes it.
        var healthLimits = connectionLimits
        healthLimits.maxConnections = 512
        healthLimits.idleTimeout = .seconds(10)
        let healthApp = Application(
            router: makeHealthRouter(node: node, lifecycle: lifecycle),
            server: try loadedTLS.server(
                .guardedHTTP1(
                    healthLimits,
                    counter: ConnectionCounter(
                        limit: healthLimits.maxConnections, factory: metricsFactory, listener: "health"))),
            configuration: .init(
                address: .hostname(settings.health.host, port: settings.health.port), serverName: "raftgate-health"),
            logger: logger)
        let api = Application(
            router: makeGatewayRouter(
                node: node, limits: limits, metricsRegistry: registry, membership: membership,
                configCache: configCache, adminToken: settings.adminToken, lifecycle: lifecycle, workers: workers,
                postgres: postgres, redis: redis, sql: sql, etcdAccess: etcdAccess),
            server: try loadedTLS.server(
                .guardedHTTP1(
                    connectionLimits,
                    counter: ConnectionCounter(limit: connectionLimits.maxConnections, factory: metricsFactory),
                    additionalChannelHandlers: { PeerAddressHeader.handlers })),
            // A listen backlog as deep as the connection cap (the kernel clips it to somaxconn): a
            // proxy opening hundreds of connections at once would otherwise overflow Hummingbird's
            // 256, have SYNs dropped and time out connecting (HAProxy's 503 sC).
            configuration: .init(
                address: .hostname(settings.http.host, port: settings.http.port), serverName: "raftgate",
                backlog: connectionLimits.maxConnections),
            services: [healthApp],
            logger: logger)
        // SIGTERM reaches the lifecycle service first (last in the group): it drains, then the
        // API and health listeners close and finish what is in flight.
        try await ServiceGroup(
            configuration: .init(
                services: [api, LifecycleService(lifecycle: lifecycle, logger: logger)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        ).run()
        // Tell the others this node is leaving (no suspicion period), then stop.
        await membership.leave()
        watcher.cancel()
        await workers.stop()
        await redis?.stop()
        await sql.stop()
        configCache.stop()
        await node.stop()
        await postgres?.stop()
        logger.info("stopped")
    }
}
