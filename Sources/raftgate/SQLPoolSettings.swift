import ArgumentParser
import Patroni

/// `raftgate serve`'s settings for `POST /sql` and the tenant pools, each a flag, a `RAFTGATE_*`
/// variable and a camel-case config file key (`postgresMaxPools`, …) like every other setting.
struct SQLPoolOptions: ParsableArguments {
    @Option(help: "Tenant pools at once, least recently used closed first (RAFTGATE_POSTGRES_MAX_POOLS); 100.")
    var postgresMaxPools: Int?
    @Option(help: "ms a tenant pool may sit unused before it closes (RAFTGATE_POSTGRES_POOL_IDLE_MS); 300000.")
    var postgresPoolIdleMs: Int?
    @Option(help: "ms a request waits for a busy pool's connection, then 503 (RAFTGATE_POSTGRES_ACQUIRE_MS); 5000.")
    var postgresAcquireMs: Int?
    @Option(help: "libpq connect_timeout, seconds (RAFTGATE_POSTGRES_CONNECT_TIMEOUT_S); default 5.")
    var postgresConnectTimeoutS: Int?
    @Option(help: "statement_timeout of pooled sessions, ms; 0 keeps the server's (RAFTGATE_POSTGRES_STATEMENT_MS).")
    var postgresStatementMs: Int?
    @Option(help: "libpq passfile with the tenants' passwords (RAFTGATE_POSTGRES_PASSFILE); default libpq's.")
    var postgresPassfile: String?
    @Option(help: "libpq sslmode: disable, allow, prefer, require, verify-ca, verify-full (RAFTGATE_POSTGRES_SSLMODE).")
    var postgresSslmode: String?
    @Option(help: "Threads running blocking libpq calls (RAFTGATE_POSTGRES_THREADS); default 16.")
    var postgresThreads: Int?
    @Option(help: "A fixed primary, name=host:port, until a topology watcher routes (RAFTGATE_POSTGRES_PRIMARY).")
    var postgresPrimary: String?
    @Option(help: "Fixed read replicas, name=host:port,… (RAFTGATE_POSTGRES_REPLICAS).")
    var postgresReplicas: String?
}

/// The options, resolved and checked.
struct SQLPoolSettings: Sendable {
    var pools = TenantPoolSettings()
    /// The route given by `postgresPrimary`/`postgresReplicas`; nil when neither is set.
    var fixedRoute: PostgresRoute?

    static let sslModes: Set<String> = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

    /// `text`/`number` read a flag, then the environment and the config file (as
    /// `ServeSettings.resolve` does for every setting).
    static func resolve(
        _ options: SQLPoolOptions, text: (String?, String) -> String?, number: (Int?, String) throws -> Int?
    ) throws -> SQLPoolSettings {
        var settings = SQLPoolSettings()
        func bounded(_ flag: Int?, _ key: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let value = try number(flag, key) else { return nil }
            guard range.contains(value) else {
                throw ValidationError("\(key) must be from \(range.lowerBound) to \(range.upperBound), got \(value)")
            }
            return value
        }
        if let value = try bounded(options.postgresMaxPools, "postgresMaxPools", 1...100_000) {
            settings.pools.maxPools = value
        }
        if let value = try bounded(options.postgresPoolIdleMs, "postgresPoolIdleMs", 100...86_400_000) {
            settings.pools.idleTimeout = .milliseconds(value)
        }
        if let value = try bounded(options.postgresAcquireMs, "postgresAcquireMs", 1...600_000) {
            settings.pools.acquireTimeout = .milliseconds(value)
        }
        if let value = try bounded(options.postgresConnectTimeoutS, "postgresConnectTimeoutS", 1...600) {
            settings.pools.connectTimeoutSeconds = value
        }
        if let value = try bounded(options.postgresStatementMs, "postgresStatementMs", 0...86_400_000) {
            settings.pools.statementTimeout = value == 0 ? nil : .milliseconds(value)
        }
        if let value = try bounded(options.postgresThreads, "postgresThreads", 1...1024) {
            settings.pools.threads = value
        }
        settings.pools.passfile = text(options.postgresPassfile, "postgresPassfile")
        if let mode = text(options.postgresSslmode, "postgresSslmode") {
            guard sslModes.contains(mode) else {
                throw ValidationError("postgresSslmode must be one of \(sslModes.sorted().joined(separator: ", "))")
            }
            settings.pools.sslMode = mode
        }
        let primary = try text(options.postgresPrimary, "postgresPrimary").map { try endpoint($0, "postgresPrimary") }
        let replicas = try (text(options.postgresReplicas, "postgresReplicas") ?? "").split(separator: ",")
            .map { try endpoint(String($0), "postgresReplicas") }
        if primary != nil || !replicas.isEmpty {
            settings.fixedRoute = PostgresRoute(
                epoch: 1, primary: primary, replicas: replicas, writable: primary != nil)
        }
        return settings
    }

    private static func endpoint(_ text: String, _ key: String) throws -> PostgresEndpoint {
        let parts = text.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, !parts[0].isEmpty, let address = Address(String(parts[1])) else {
            throw ValidationError("\(key) must look like pg1=127.0.0.1:5432, got \(text)")
        }
        return PostgresEndpoint(name: String(parts[0]), host: address.host, port: address.port)
    }
}
