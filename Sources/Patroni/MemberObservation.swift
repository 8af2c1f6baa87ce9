/// What the watcher saw of one configured member in one polling round. Each source is nil when
/// it did not answer (or answered something that could not be understood).
public struct MemberObservation: Sendable, Equatable {
    public var name: String
    /// `GET /patroni` on the member: Patroni's view of its own PostgreSQL.
    public var patroni: PatroniObservation?
    /// `GET /cluster` on the member: its reading of the DCS (who holds the leader lock).
    public var cluster: ClusterObservation?
    /// The gateway's own libpq probe of the member's PostgreSQL.
    public var sql: SQLObservation?

    public init(
        name: String, patroni: PatroniObservation? = nil, cluster: ClusterObservation? = nil,
        sql: SQLObservation? = nil
    ) {
        self.name = name
        self.patroni = patroni
        self.cluster = cluster
        self.sql = sql
    }
}

/// The parts of a `/patroni` answer the decision uses.
public struct PatroniObservation: Sendable, Equatable {
    public var role: PatroniRole
    public var state: String
    public var timeline: Int?

    public init(role: PatroniRole, state: String, timeline: Int?) {
        self.role = role
        self.state = state
        self.timeline = timeline
    }

    public init(_ status: PatroniStatus) {
        self.init(role: status.role, state: status.state, timeline: status.timeline)
    }
}

/// The parts of a `/cluster` answer the decision uses.
public struct ClusterObservation: Sendable, Equatable {
    /// The member this view names as holding the leader lock; nil while it sees none.
    public var leader: String?
    /// Patroni's lag figure per member (members it reports as `unknown` are absent).
    public var lagBytes: [String: UInt64]

    public init(leader: String?, lagBytes: [String: UInt64] = [:]) {
        self.leader = leader
        self.lagBytes = lagBytes
    }

    public init(_ cluster: PatroniCluster) {
        var lag: [String: UInt64] = [:]
        for member in cluster.members {
            if case .bytes(let bytes) = member.lag { lag[member.name] = bytes }
        }
        self.init(leader: cluster.leader, lagBytes: lag)
    }
}
