import Synchronization

/// A PostgreSQL server a gateway can open connections to: a Patroni member's name and the address
/// of its PostgreSQL (from the gateway's own configuration, never from a stranger's answer).
public struct PostgresEndpoint: Sendable, Hashable, Codable {
    public var name: String
    public var host: String
    public var port: Int

    public init(name: String, host: String, port: Int) {
        self.name = name
        self.host = host
        self.port = port
    }
}

/// Where this gateway sends SQL at this moment. The topology watcher decides it on the leader and
/// commits it; every gateway derives its route from the committed topology, so all of them switch
/// primary at the same revision. This is the seam between the watcher (which produces routes) and
/// the data API and its pools (which consume them).
public struct PostgresRoute: Sendable, Equatable {
    /// The committed topology's epoch; pools drain when it moves to a different primary.
    public var epoch: UInt64
    public var primary: PostgresEndpoint?
    /// Replicas admitted for reads, in a stable order.
    public var replicas: [PostgresEndpoint]
    /// False while this gateway cannot vouch that the committed topology is current (it lost its
    /// quorum, or has not heard its leader lately): it then routes no writes, since the primary it
    /// knows may have been demoted behind its back.
    public var writable: Bool

    public init(epoch: UInt64, primary: PostgresEndpoint?, replicas: [PostgresEndpoint], writable: Bool) {
        self.epoch = epoch
        self.primary = primary
        self.replicas = replicas
        self.writable = writable
    }

    /// No topology committed yet.
    public static let unknown = PostgresRoute(epoch: 0, primary: nil, replicas: [], writable: false)
}

/// Something that knows the current route and says when it changes.
public protocol PostgresRouteSource: Sendable {
    /// The route now; cheap, callable from any context.
    var currentRoute: PostgresRoute { get }
    /// The current route first, then each new one as it changes, until the stream is dropped.
    func routeUpdates() -> AsyncStream<PostgresRoute>
}

/// A route set by hand: for tests and for a gateway pointed at a fixed server.
public final class FixedPostgresRouteSource: PostgresRouteSource {
    private let state:
        Mutex<(route: PostgresRoute, continuations: [Int: AsyncStream<PostgresRoute>.Continuation], next: Int)>

    public init(_ route: PostgresRoute) {
        state = Mutex((route, [:], 0))
    }

    public var currentRoute: PostgresRoute { state.withLock { $0.route } }

    public func set(_ route: PostgresRoute) {
        let continuations = state.withLock { state in
            state.route = route
            return Array(state.continuations.values)
        }
        for continuation in continuations { continuation.yield(route) }
    }

    public func routeUpdates() -> AsyncStream<PostgresRoute> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: PostgresRoute.self, bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state in
            let id = state.next
            state.next += 1
            state.continuations[id] = continuation
            continuation.yield(state.route)
            return id
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }
}
