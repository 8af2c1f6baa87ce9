/// How the gateway's tenant pools behave and how they reach PostgreSQL.
///
/// Credentials: no password is ever part of the replicated project config. Connections
/// authenticate with what libpq finds in `passfile` (the gateway's own `.pgpass`-format file,
/// `host:port:database:user:password` lines, mode 0600) — or, when that is unset, libpq's own
/// defaults (`PGPASSFILE`, `~/.pgpass`), or with a method that needs no password (peer, cert).
public struct TenantPoolSettings: Sendable, Equatable {
    /// Tenants with a pool at once; the least recently used is closed to make room for another.
    public var maxPools = 100
    /// A pool with no request for this long is closed with its connections.
    public var idleTimeout: Duration = .seconds(300)
    /// How long a request waits for a connection when its tenant's pool is at `maxConnections`.
    public var acquireTimeout: Duration = .seconds(5)
    /// libpq's `connect_timeout`, whole seconds (libpq treats less than 2 as 2).
    public var connectTimeoutSeconds = 5
    /// PostgreSQL's `statement_timeout` for pooled sessions; nil leaves the server's setting.
    public var statementTimeout: Duration? = .seconds(30)
    /// libpq's `passfile`; nil leaves libpq's default.
    public var passfile: String?
    /// libpq's `sslmode`; nil leaves libpq's default (`prefer`).
    public var sslMode: String?
    /// Threads that run the blocking libpq calls (connects and statements); at most this many
    /// statements run at once on this gateway.
    public var threads = 16
    /// `application_name` of pooled sessions, followed by `/<tenant>`, so `pg_stat_activity` shows
    /// whose they are.
    public var applicationName = "raftgate"

    public init() {}
}
