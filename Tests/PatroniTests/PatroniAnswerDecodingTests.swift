import Foundation
import Testing

@testable import Patroni

@Suite("Patroni 3.0.2 REST answers")
struct PatroniAnswerDecodingTests {
    @Test func aPrimarySaysMasterIn302() throws {
        let status = try PatroniStatus.decode(try Fixture.data("patroni-3.0.2-master.json"))
        #expect(status.role == .primary)
        #expect(status.state == "running")
        #expect(status.timeline == 1)
        #expect(status.serverVersion == 150018)
        #expect(status.wal?.location == LSN(67_109_000))
        #expect(status.wal?.replayedLocation == nil)
        #expect(status.replication.map(\.applicationName) == ["pg3", "pg2"])
        #expect(status.replication.map(\.syncState) == ["sync", "async"])
        #expect(status.software == .init(version: "3.0.2", scope: "raftgate-pg"))
        #expect(!status.isSyncStandby && !status.clusterUnlocked)
    }

    /// Later Patroni says `primary`; the captured 3.0.2 answer with only that word changed must
    /// decode to the same status.
    @Test func primaryAndMasterMeanTheSame() throws {
        let master = try Fixture.data("patroni-3.0.2-master.json")
        let text = try #require(String(data: master, encoding: .utf8))
        #expect(text.contains("\"role\": \"master\""))
        let renamed = Data(text.replacingOccurrences(of: "\"role\": \"master\"", with: "\"role\": \"primary\"").utf8)
        #expect(try PatroniStatus.decode(renamed) == PatroniStatus.decode(master))
        #expect(PatroniRole(name: "master").description == "primary")
    }

    @Test func replicasAndTheSyncStandby() throws {
        let replica = try PatroniStatus.decode(try Fixture.data("patroni-3.0.2-replica.json"))
        #expect(replica.role == .replica && !replica.isSyncStandby)
        #expect(replica.wal?.receivedLocation == LSN(67_109_000) && replica.wal?.replayedLocation == LSN(67_109_000))
        #expect(replica.wal?.location == nil && replica.wal?.paused == false)
        #expect(replica.replication.isEmpty)
        let sync = try PatroniStatus.decode(try Fixture.data("patroni-3.0.2-sync-standby.json"))
        #expect(sync.role == .replica && sync.isSyncStandby)
    }

    @Test func otherRolesAreKeptVerbatim() throws {
        let body = Data(#"{"state": "stopped", "role": "demoted", "dcs_last_seen": 1}"#.utf8)
        let status = try PatroniStatus.decode(body)
        #expect(status.role == .other("demoted") && status.state == "stopped" && status.timeline == nil)
        #expect(
            try PatroniStatus.decode(Data(#"{"state":"running","role":"standby_leader"}"#.utf8)).role == .standbyLeader)
    }

    @Test func aHealthyCluster() throws {
        let cluster = try PatroniCluster.decode(try Fixture.data("cluster-3.0.2-healthy.json"))
        #expect(cluster.members.map(\.name) == ["pg1", "pg2", "pg3"])
        #expect(cluster.members.map(\.role) == ["leader", "replica", "sync_standby"])
        #expect(cluster.leader == "pg1")
        #expect(cluster.members[0].lag == nil, "the leader has no lag field")
        #expect(cluster.members[1].lag == .bytes(0))
        #expect(cluster.members[2].port == 5443 && cluster.members[2].host == "127.0.0.1")
        #expect(cluster.members[0].apiURL == "http://127.0.0.1:8011/patroni")
        #expect(!cluster.isPaused)
        let observation = ClusterObservation(cluster)
        #expect(observation == ClusterObservation(leader: "pg1", lagBytes: ["pg2": 0, "pg3": 0]))
    }

    /// Mid-failover: pg3 (the old primary) has left the DCS, pg2 holds the lock while its own
    /// /patroni still says replica on the old timeline — and /cluster's timeline for it is stale.
    @Test func aFailoverInProgress() throws {
        let cluster = try PatroniCluster.decode(try Fixture.data("cluster-3.0.2-failover-promoting.json"))
        #expect(cluster.members.map(\.name) == ["pg1", "pg2"])
        #expect(cluster.leader == "pg2")
        let holder = try PatroniStatus.decode(try Fixture.data("patroni-3.0.2-promoting-lock-holder.json"))
        #expect(holder.role == .replica && holder.timeline == 5)
        let promoted = try PatroniStatus.decode(try Fixture.data("patroni-3.0.2-master-after-failover.json"))
        #expect(promoted.role == .primary && promoted.timeline == 6)
        let behind = try PatroniStatus.decode(try Fixture.data("patroni-3.0.2-replica-old-timeline.json"))
        #expect(behind.role == .replica && behind.timeline == 5, "the other replica, not yet on timeline 6")
        let lagging = try PatroniCluster.decode(try Fixture.data("cluster-3.0.2-failover-lagging.json"))
        #expect(ClusterObservation(lagging).lagBytes == ["pg1": 280])
        #expect(lagging.members.first { $0.name == "pg2" }?.timeline == 5, "the DCS copy trails the promotion")
    }

    /// Captured while a deposed primary was being rewound: Patroni reports it stopped, with no
    /// timeline and an unknown lag.
    @Test func aMemberBeingRewound() throws {
        let cluster = try PatroniCluster.decode(try Fixture.data("cluster-3.0.2-member-stopped.json"))
        let rewound = try #require(cluster.members.first { $0.name == "pg1" })
        #expect(rewound.state == "stopped" && rewound.lag == .unknown && rewound.timeline == nil)
        #expect(cluster.leader == "pg3")
        #expect(ClusterObservation(cluster) == ClusterObservation(leader: "pg3", lagBytes: ["pg2": 0]))
        let status = try PatroniStatus.decode(try Fixture.data("patroni-3.0.2-stopped.json"))
        #expect(status.state == "stopped" && status.role == .replica && status.timeline == nil && status.wal == nil)
    }

    @Test func unknownLagIsNotANumber() throws {
        let body = Data(
            #"{"members":[{"name":"a","role":"leader","state":"running"},{"name":"b","role":"replica","state":"running","lag":"unknown"}],"pause":true}"#
                .utf8)
        let cluster = try PatroniCluster.decode(body)
        #expect(cluster.members[1].lag == .unknown)
        #expect(cluster.isPaused)
        #expect(ClusterObservation(cluster).lagBytes.isEmpty)
    }

    @Test func anUnlockedClusterNamesNoLeader() throws {
        let body = Data(#"{"members":[{"name":"a","role":"replica","state":"running","lag":0}]}"#.utf8)
        #expect(try PatroniCluster.decode(body).leader == nil)
    }

    @Test func malformedAnswersSayWhatIsWrong() {
        #expect(throws: PatroniAnswerError(endpoint: "/patroni", message: "missing field role")) {
            try PatroniStatus.decode(Data(#"{"state":"running"}"#.utf8))
        }
        #expect(throws: PatroniAnswerError.self) { try PatroniStatus.decode(Data("<html>502</html>".utf8)) }
        #expect(throws: PatroniAnswerError.self) {
            try PatroniCluster.decode(
                Data(#"{"members":[{"name":"a","role":"replica","state":"x","lag":"far"}]}"#.utf8))
        }
        do {
            _ = try PatroniCluster.decode(Data(#"{"members":[{"name":1}]}"#.utf8))
            Issue.record("a numeric name decoded")
        } catch {
            #expect(error.endpoint == "/cluster")
            #expect(error.message.contains("members.[0].name"), "\(error.message)")
        }
    }
}
