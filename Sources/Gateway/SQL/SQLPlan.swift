import HTTPTypes
import Patroni

/// Where a `/sql` statement goes, decided from the route alone (pure). A read goes to an admitted
/// replica, taken in turn, with one other member to retry on if the first is lost mid-statement;
/// a write goes to the primary only, and only while the route is `writable`, with nothing to retry
/// on. A client forcing `"route":"primary"` (to read its own writes) is held to the write rule.
enum SQLPlan {
    struct Target: Sendable, Equatable {
        var endpoint: PostgresEndpoint
        var role: RouteDrain.Role
    }

    enum Decision: Sendable, Equatable {
        /// In order: the first, then the one to retry a read on.
        case targets([Target])
        case noPrimary
        case notWritable
        /// A read with neither a primary nor an admitted replica.
        case noServer
    }

    static func decide(_ kind: Kind, route: PostgresRoute, turn: Int) -> Decision {
        switch kind {
        case .write, .primaryRead:
            guard let primary = route.primary else { return .noPrimary }
            guard route.writable else { return .notWritable }
            return .targets([Target(endpoint: primary, role: .primary)])
        case .read:
            let replicas = route.replicas.filter { $0 != route.primary }
            guard !replicas.isEmpty else {
                return route.primary.map { .targets([Target(endpoint: $0, role: .primary)]) } ?? .noServer
            }
            let index = Int(UInt(bitPattern: turn) % UInt(replicas.count))
            var targets = [Target(endpoint: replicas[index], role: .replica)]
            if replicas.count > 1 {
                targets.append(Target(endpoint: replicas[(index + 1) % replicas.count], role: .replica))
            } else if let primary = route.primary {
                targets.append(Target(endpoint: primary, role: .primary))
            }
            return .targets(targets)
        }
    }

    enum Kind: Sendable, Equatable {
        case read
        /// A read the client pinned to the primary.
        case primaryRead
        case write
    }

    /// The HTTP status for a PostgreSQL error, by SQLSTATE class: the client's statement (syntax,
    /// data, undefined objects: 400), a conflict with other data (unique or foreign keys,
    /// serialization failures, deadlocks: 409), missing privilege (403), the server's condition
    /// (out of resources, shutting down, connection trouble: 503), an internal error (500).
    static func status(sqlState: String?) -> HTTPResponse.Status {
        guard let sqlState, sqlState.count == 5 else { return .badGateway }
        if sqlState == "42501" { return .forbidden }
        if sqlState == "57014" { return .badRequest }  // statement_timeout: the statement is too slow.
        switch sqlState.prefix(2) {
        case "23", "40": return .conflict
        case "08", "53", "57", "58": return .serviceUnavailable
        case "XX": return .internalServerError
        default: return .badRequest
        }
    }
}
