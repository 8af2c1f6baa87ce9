/// Which servers' pooled connections to close when the route changes. A server keeps its
/// connections only while it keeps its role: a primary that is no longer the primary (demoted,
/// replaced, gone) may hold sessions on a server that now refuses writes or has been rewound, and
/// a replica that left the route (lagging, dead) should not serve reads from an idle connection
/// reopened later. A replica promoted to primary is drained too: connections opened as read
/// connections are not trusted for writes.
public enum RouteDrain {
    public enum Role: Sendable, Equatable {
        case primary
        case replica
    }

    public static func roles(_ route: PostgresRoute) -> [PostgresEndpoint: Role] {
        var roles: [PostgresEndpoint: Role] = [:]
        for replica in route.replicas { roles[replica] = .replica }
        if let primary = route.primary { roles[primary] = .primary }
        return roles
    }

    /// The servers of `old` whose role differs in `new` (or that left it), sorted by name.
    public static func endpoints(from old: PostgresRoute, to new: PostgresRoute) -> [PostgresEndpoint] {
        let before = roles(old)
        let after = roles(new)
        return before.filter { after[$0.key] != $0.value }.map(\.key).sorted {
            ($0.name, $0.host, $0.port) < ($1.name, $1.host, $1.port)
        }
    }
}
