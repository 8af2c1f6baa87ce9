import Logging
import NIOPosix

/// One polling round's I/O: every member's `/patroni` and `/cluster` and a libpq probe of its
/// PostgreSQL, all at once. The probes run on `threads` (libpq blocks), never on an event loop or
/// Swift concurrency's pool. Every source has the request timeout as a client-side deadline that
/// needs nothing from the member (a whole HTTP exchange, libpq's connect and query), so a round
/// ends within about that timeout even when a member hangs: the round decides with the sources
/// that answered, and one that did not counts as not answering this round. A cancelled round
/// returns at once.
public struct TopologyPoller: Sendable {
    let settings: TopologyWatchSettings
    let client: PatroniClient
    let threads: NIOThreadPool
    let metrics: TopologyMetrics
    let logger: Logger

    public init(
        settings: TopologyWatchSettings, client: PatroniClient, threads: NIOThreadPool, metrics: TopologyMetrics,
        logger: Logger
    ) {
        self.settings = settings
        self.client = client
        self.threads = threads
        self.metrics = metrics
        self.logger = logger
    }

    /// What one round saw, and per member what failed (for the view and the logs).
    public struct Round: Sendable {
        public var observations: [MemberObservation]
        public var failures: [String: [String]]
    }

    public func round() async -> Round {
        await withTaskGroup(of: (MemberObservation, [String]).self) { group in
            for member in settings.members {
                group.addTask { await observe(member) }
            }
            var byName: [String: (MemberObservation, [String])] = [:]
            for await (observation, failures) in group { byName[observation.name] = (observation, failures) }
            metrics.round()
            let ordered = settings.members.compactMap { byName[$0.name] }
            return Round(
                observations: ordered.map(\.0),
                failures: Dictionary(
                    uniqueKeysWithValues: ordered.filter { !$0.1.isEmpty }.map { ($0.0.name, $0.1) }))
        }
    }

    private func observe(_ member: PatroniMember) async -> (MemberObservation, [String]) {
        async let status = attempt { try await client.status(of: member) }
        async let cluster = attempt { try await client.cluster(of: member) }
        async let sql = attempt {
            try await PostgresProbe.observe(
                settings.credentials.parameters(for: member.postgres), on: threads, timeout: settings.requestTimeout)
        }
        var failures: [String] = []
        var observation = MemberObservation(name: member.name)
        switch await status {
        case .success(let status): observation.patroni = PatroniObservation(status)
        case .failure(let error):
            metrics.apiFailure(member: member.name, endpoint: "/patroni")
            failures.append("/patroni: \(error)")
        }
        switch await cluster {
        case .success(let cluster): observation.cluster = ClusterObservation(cluster)
        case .failure(let error):
            metrics.apiFailure(member: member.name, endpoint: "/cluster")
            failures.append("/cluster: \(error)")
        }
        switch await sql {
        case .success(let sql): observation.sql = sql
        case .failure(let error):
            metrics.probeFailure(member: member.name)
            failures.append("probe: \(error)")
        }
        return (observation, failures)
    }

    private func attempt<Value: Sendable>(_ body: @Sendable () async throws -> Value) async -> Result<
        Value, ObservationError
    > {
        do {
            return .success(try await body())
        } catch {
            return .failure(ObservationError(description: "\(error)"))
        }
    }
}

struct ObservationError: Error, CustomStringConvertible {
    var description: String
}
