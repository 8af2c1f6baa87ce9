import Foundation
import Patroni

/// Answers captured from the example stack's Patroni 3.0.2 (`make start-stack`, then curl; the
/// failover ones during `scripts/stack.sh failover`), stored under Fixtures/.
enum Fixture {
    static func data(_ name: String) throws -> Data {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        return try Data(contentsOf: directory.appendingPathComponent(name))
    }
}

/// Builders for one member's observations, named for what the member is doing.
enum Observe {
    static func primary(_ name: String, timeline: Int, writtenAt lsn: UInt64, views leader: String?)
        -> MemberObservation
    {
        MemberObservation(
            name: name, patroni: PatroniObservation(role: .primary, state: "running", timeline: timeline),
            cluster: ClusterObservation(leader: leader),
            sql: SQLObservation(inRecovery: false, timeline: timeline, currentLSN: LSN(lsn)))
    }

    static func replica(_ name: String, timeline: Int, replayedTo lsn: UInt64, views leader: String?)
        -> MemberObservation
    {
        MemberObservation(
            name: name, patroni: PatroniObservation(role: .replica, state: "running", timeline: timeline),
            cluster: ClusterObservation(leader: leader),
            sql: SQLObservation(inRecovery: true, timeline: timeline, receiveLSN: LSN(lsn), replayLSN: LSN(lsn)))
    }

    /// A healthy three-member cluster: pg1 primary at `written`, pg2 and pg3 replayed to `replayed`.
    static func healthy(written: UInt64 = 10_000, replayed: UInt64 = 10_000, timeline: Int = 1) -> [MemberObservation] {
        [
            primary("pg1", timeline: timeline, writtenAt: written, views: "pg1"),
            replica("pg2", timeline: timeline, replayedTo: replayed, views: "pg1"),
            replica("pg3", timeline: timeline, replayedTo: replayed, views: "pg1"),
        ]
    }
}

extension MemberObservation {
    func without(patroni dropPatroni: Bool = false, cluster dropCluster: Bool = false, sql dropSQL: Bool = false)
        -> MemberObservation
    {
        var copy = self
        if dropPatroni { copy.patroni = nil }
        if dropCluster { copy.cluster = nil }
        if dropSQL { copy.sql = nil }
        return copy
    }
}
