/// Everything the topology watcher and the route source are configured with.
public struct TopologyWatchSettings: Sendable {
    public var members: [PatroniMember]
    public var credentials: PostgresMonitorCredentials
    /// Time between the starts of two polling rounds.
    public var pollInterval: Duration
    /// How long one source — a whole Patroni REST request, or the SQL probe's connect and query
    /// together — may take before it counts as not answering this round: a client-side deadline
    /// that needs nothing from the member.
    public var requestTimeout: Duration
    public var policy: TopologyPolicy

    public init(
        members: [PatroniMember], credentials: PostgresMonitorCredentials = PostgresMonitorCredentials(),
        pollInterval: Duration = .milliseconds(500), requestTimeout: Duration = .seconds(1),
        policy: TopologyPolicy = .default
    ) {
        self.members = members
        self.credentials = credentials
        self.pollInterval = pollInterval
        self.requestTimeout = requestTimeout
        self.policy = policy
    }

    /// Member name → where its PostgreSQL listens.
    public var endpoints: [String: PostgresEndpoint] {
        Dictionary(uniqueKeysWithValues: members.map { ($0.name, $0.postgres) })
    }
}

/// Whom the probes log in as. The probe needs `pg_monitor` (for `pg_stat_wal_receiver`) or a
/// superuser. Either a password or a libpq password file (`passfile`, the `.pgpass` format) —
/// the file keeps the secret out of the gateway's config and environment.
public struct PostgresMonitorCredentials: Sendable, Hashable {
    public var user: String
    public var password: String?
    public var passfile: String?
    public var database: String
    /// libpq's `connect_timeout`, whole seconds; libpq treats anything below 2 as 2.
    public var connectTimeoutSeconds: Int
    /// The probe's statement_timeout, so a running server ends a slow query itself. A server
    /// that does not run at all (frozen host) is bounded by the request timeout instead, on the
    /// client side.
    public var statementTimeoutMilliseconds: Int

    public init(
        user: String = "postgres", password: String? = nil, passfile: String? = nil, database: String = "postgres",
        connectTimeoutSeconds: Int = 2, statementTimeoutMilliseconds: Int = 1000
    ) {
        self.user = user
        self.password = password
        self.passfile = passfile
        self.database = database
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.statementTimeoutMilliseconds = statementTimeoutMilliseconds
    }

    /// libpq keyword/value pairs for `endpoint` (handed to `PQconnectdbParams` as they are, never
    /// spliced into a connection string). `application_name` shows the probes in
    /// `pg_stat_activity`; TCP keepalives notice a member whose host vanished.
    public func parameters(for endpoint: PostgresEndpoint) -> [(keyword: String, value: String)] {
        var parameters: [(keyword: String, value: String)] = [
            ("host", endpoint.host), ("port", String(endpoint.port)), ("user", user), ("dbname", database),
            ("connect_timeout", String(connectTimeoutSeconds)), ("application_name", "raftgate-topology-probe"),
            ("options", "-c statement_timeout=\(statementTimeoutMilliseconds)"), ("keepalives", "1"),
            ("keepalives_idle", "5"), ("keepalives_interval", "2"), ("keepalives_count", "2"),
        ]
        if let password { parameters.append(("password", password)) }
        if let passfile { parameters.append(("passfile", passfile)) }
        return parameters
    }
}
