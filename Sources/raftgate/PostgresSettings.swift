import ArgumentParser
import Patroni

/// `raftgate serve`'s settings for PostgreSQL under Patroni: each a flag, a `RAFTGATE_*` variable
/// and a camel-case config file key, like every other setting. Without `pgMembers` the node does
/// not watch Patroni (no watcher, no route source, no `/pg`).
struct PostgresOptions: ParsableArguments {
    @Option(
        help:
            "Patroni members, name=pghost:pgport@http://patroni-host:port,… (RAFTGATE_PG_MEMBERS); none: no Patroni.")
    var pgMembers: String?
    @Option(help: "Role the topology probes log in as, pg_monitor or superuser (RAFTGATE_PG_USER); default postgres.")
    var pgUser: String?
    @Option(
        help:
            "Password of --pg-user. Visible to every local user in the process list: prefer --pg-passfile or RAFTGATE_PG_PASSWORD."
    )
    var pgPassword: String?
    @Option(help: "libpq password file (.pgpass format) for the probes (RAFTGATE_PG_PASSFILE).")
    var pgPassfile: String?
    @Option(help: "Database the probes connect to (RAFTGATE_PG_DATABASE); default postgres.")
    var pgDatabase: String?
    @Option(help: "ms between topology polling rounds on the leader (RAFTGATE_PG_POLL_MS); default 500.")
    var pgPollMs: Int?
    @Option(help: "ms a Patroni REST request may take (RAFTGATE_PG_REQUEST_TIMEOUT_MS); default 1000.")
    var pgRequestTimeoutMs: Int?
    @Option(help: "Consecutive samples under the lag bound to admit a replica (RAFTGATE_PG_ADMIT_SAMPLES); 3.")
    var pgAdmitSamples: Int?
    @Option(help: "Lag in bytes a replica is admitted under (RAFTGATE_PG_ADMIT_LAG_BYTES); default 1048576.")
    var pgAdmitLagBytes: Int?
    @Option(help: "Lag in bytes above which a replica is dropped (RAFTGATE_PG_DROP_LAG_BYTES); default 16777216.")
    var pgDropLagBytes: Int?
}

enum PostgresSettings {
    /// The watch settings, or nil when no members are configured. `text` and `number` read a flag,
    /// then the environment and the config file (as `ServeSettings.resolve` does).
    static func resolve(
        _ options: PostgresOptions, text: (String?, String) -> String?, number: (Int?, String) throws -> Int?
    ) throws -> TopologyWatchSettings? {
        guard let membersText = text(options.pgMembers, "pgMembers") else { return nil }
        func bounded(_ flag: Int?, _ key: String, _ fallback: Int, _ range: ClosedRange<Int>) throws -> Int {
            let value = try number(flag, key) ?? fallback
            guard range.contains(value) else {
                throw ValidationError("\(key) must be from \(range.lowerBound) to \(range.upperBound), got \(value)")
            }
            return value
        }
        do {
            let members = try PatroniMember.parseList(membersText)
            let user = text(options.pgUser, "pgUser") ?? "postgres"
            let database = text(options.pgDatabase, "pgDatabase") ?? "postgres"
            guard !user.isEmpty, !database.isEmpty else {
                throw ValidationError("pgUser and pgDatabase must not be empty")
            }
            let credentials = PostgresMonitorCredentials(
                user: user, password: text(options.pgPassword, "pgPassword"),
                passfile: text(options.pgPassfile, "pgPassfile"), database: database)
            let policy = try TopologyPolicy(
                admitAfterSamples: try bounded(options.pgAdmitSamples, "pgAdmitSamples", 3, 1...1000),
                admitLagBytes: UInt64(try bounded(options.pgAdmitLagBytes, "pgAdmitLagBytes", 1 << 20, 0...Int.max)),
                dropLagBytes: UInt64(try bounded(options.pgDropLagBytes, "pgDropLagBytes", 16 << 20, 0...Int.max)))
            return TopologyWatchSettings(
                members: members, credentials: credentials,
                pollInterval: .milliseconds(try bounded(options.pgPollMs, "pgPollMs", 500, 50...60_000)),
                requestTimeout: .milliseconds(
                    try bounded(options.pgRequestTimeoutMs, "pgRequestTimeoutMs", 1000, 50...60_000)),
                policy: policy)
        } catch let error as PatroniConfigurationError {
            throw ValidationError("\(error)")
        }
    }
}
