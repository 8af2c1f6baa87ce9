import Testing

@testable import Patroni

@Suite("The topology decision over rounds")
struct TopologyDeciderTests {
    let policy = try! TopologyPolicy(admitAfterSamples: 3, admitLagBytes: 1000, dropLagBytes: 5000)
    let members = ["pg1", "pg2", "pg3"]

    @Test func replicasJoinAfterNRoundsAndTheEpochMovesOnlyOnChange() throws {
        var decider = try TopologyDecider(members: members, policy: policy)
        let first = decider.observe(Observe.healthy())
        #expect(first.changed && first.topology == PostgresTopology(epoch: 1, primary: .init(name: "pg1", timeline: 1)))
        let second = decider.observe(Observe.healthy())
        #expect(!second.changed && second.topology.epoch == 1, "streaks grew, the topology did not")
        #expect(second.members.map(\.healthySamples) == [0, 2, 2])
        let third = decider.observe(Observe.healthy())
        #expect(
            third.changed
                && third.topology
                    == PostgresTopology(epoch: 2, primary: first.topology.primary, replicas: ["pg2", "pg3"])
        )
        for _ in 0..<5 { #expect(!decider.observe(Observe.healthy()).changed) }
        #expect(decider.topology.epoch == 2)
    }

    @Test func lagIsTheProbesWriteMinusReplayPosition() throws {
        var decider = try TopologyDecider(members: members, policy: policy)
        let decision = decider.observe(Observe.healthy(written: 10_000, replayed: 9_700))
        #expect(decision.members.map(\.lagBytes) == [nil, 300, 300])
        #expect(decision.members.map(\.isPrimary) == [true, false, false])
    }

    /// Without the primary's write position (its probe failed; Patroni still vouches for it),
    /// Patroni's /cluster lag figure is used — the primary's own view first.
    @Test func patronisLagFigureWhenTheProbesCannotTell() throws {
        var decider = try TopologyDecider(members: members, policy: policy)
        var round = Observe.healthy()
        round[0] = round[0].without(sql: true)
        round[0].cluster = ClusterObservation(leader: "pg1", lagBytes: ["pg2": 4000, "pg3": 10])
        round[1].cluster = ClusterObservation(leader: "pg1", lagBytes: ["pg2": 0, "pg3": 0])
        let decision = decider.observe(round)
        #expect(decision.topology.primary?.name == "pg1")
        #expect(decision.members.map(\.lagBytes) == [nil, 4000, 10])
    }

    /// Lag flapping around the admission bound, round after round: once admitted, pg2 stays.
    @Test func lagFlappingKeepsTheTopologyStill() throws {
        var decider = try TopologyDecider(members: members, policy: policy)
        for _ in 0..<3 { _ = decider.observe(Observe.healthy()) }
        #expect(decider.topology.replicas == ["pg2", "pg3"])
        let epoch = decider.topology.epoch
        for replayed: UInt64 in [8_900, 9_100, 8_000, 9_500, 5_100, 9_999] {
            let decision = decider.observe(Observe.healthy(written: 10_000, replayed: replayed))
            #expect(!decision.changed, "replayed \(replayed)")
        }
        #expect(decider.topology.epoch == epoch)
        let dropped = decider.observe(Observe.healthy(written: 10_000, replayed: 4_999))
        #expect(dropped.changed && dropped.topology.replicas.isEmpty && dropped.topology.epoch == epoch + 1)
    }

    /// A failover as the captured answers went: the old primary vanishes, the lock moves to pg2
    /// while pg2 is still in recovery, pg2 comes out on timeline 2, pg3 follows it.
    @Test func aFailoverStepByStep() throws {
        var decider = try TopologyDecider(members: members, policy: policy)
        for _ in 0..<3 { _ = decider.observe(Observe.healthy()) }
        let before = decider.topology
        #expect(before.replicas == ["pg2", "pg3"])

        // pg1 SIGKILL'd; until the lock expires the views still name it.
        let gone = MemberObservation(name: "pg1")
        let stale = decider.observe([
            gone, Observe.replica("pg2", timeline: 1, replayedTo: 10_000, views: "pg1"),
            Observe.replica("pg3", timeline: 1, replayedTo: 10_000, views: "pg1"),
        ])
        #expect(stale.topology.primary == nil && stale.changed)
        #expect(stale.topology.replicas == ["pg2", "pg3"], "reads keep their replicas between primaries")

        // The lock is pg2's, pg2 still replaying: nothing changes.
        let promoting = decider.observe([
            gone, Observe.replica("pg2", timeline: 1, replayedTo: 10_000, views: "pg2"),
            Observe.replica("pg3", timeline: 1, replayedTo: 10_000, views: "pg2"),
        ])
        #expect(!promoting.changed)

        // pg2 promoted to timeline 2; pg3 still on timeline 1 is no use for reads.
        let promoted = decider.observe([
            gone, Observe.primary("pg2", timeline: 2, writtenAt: 10_100, views: "pg2"),
            Observe.replica("pg3", timeline: 1, replayedTo: 10_000, views: "pg2"),
        ])
        #expect(promoted.changed)
        #expect(promoted.topology.primary == .init(name: "pg2", timeline: 2) && promoted.topology.replicas.isEmpty)
        #expect(promoted.members[2].note == "on timeline 1, the primary on 2")

        // pg3 follows timeline 2 and is admitted after three rounds; pg1 stays out.
        let following = [
            gone, Observe.primary("pg2", timeline: 2, writtenAt: 10_100, views: "pg2"),
            Observe.replica("pg3", timeline: 2, replayedTo: 10_100, views: "pg2"),
        ]
        #expect(!decider.observe(following).changed)
        #expect(!decider.observe(following).changed)
        let settled = decider.observe(following)
        #expect(settled.changed && settled.topology.replicas == ["pg3"])
        #expect(settled.topology.epoch == before.epoch + 3, "three changes: primary lost, pg2 primary, pg3 admitted")
    }

    /// Patroni's REST API down everywhere mid-run: writes and reads carry on.
    @Test func anAPIOutageMovesNothing() throws {
        var decider = try TopologyDecider(members: members, policy: policy)
        for _ in 0..<3 { _ = decider.observe(Observe.healthy()) }
        let before = decider.topology
        let blind = Observe.healthy().map { $0.without(patroni: true, cluster: true) }
        for _ in 0..<5 { #expect(!decider.observe(blind).changed) }
        #expect(decider.topology == before)
    }

    /// A new leader's watcher continues from the committed topology: no epoch reset, no change
    /// on its first round, and an API outage keeps the committed primary.
    @Test func aNewLeaderStartsFromTheCommittedTopology() throws {
        let committed = PostgresTopology(epoch: 41, primary: .init(name: "pg1", timeline: 1), replicas: ["pg3"])
        var decider = try TopologyDecider(members: members, policy: policy, committed: committed)
        let blind = Observe.healthy().map { $0.without(patroni: true, cluster: true) }
        let first = decider.observe(blind)
        #expect(!first.changed && first.topology == committed)
        var fresh = try TopologyDecider(members: members, policy: policy, committed: committed)
        let second = fresh.observe(Observe.healthy(written: 10_000, replayed: 0))
        #expect(second.changed && second.topology.epoch == 42 && second.topology.replicas.isEmpty, "pg3 too far behind")
    }

    /// One member's Patroni API unusable for many rounds — a replica's answering garbage (the
    /// watcher drops an answer it cannot decode), then the primary's down — while PostgreSQL is
    /// healthy everywhere: the epoch stays, writes and reads keep their members.
    @Test func oneMembersAPIUnusableMovesNothing() throws {
        var decider = try TopologyDecider(members: members, policy: policy)
        for _ in 0..<3 { _ = decider.observe(Observe.healthy()) }
        let before = decider.topology
        for member in [1, 0] {
            for _ in 0..<10 {
                var round = Observe.healthy(written: 10_500, replayed: 10_000)
                round[member] = round[member].without(patroni: true, cluster: true)
                #expect(!decider.observe(round).changed, "pg\(member + 1)'s API unusable")
            }
        }
        #expect(decider.topology == before)
    }

    /// A split DCS read for one round pauses writes (no majority names anyone), and the next
    /// round with agreeing views restores the same primary under a new epoch — every gateway
    /// sees both steps, in order.
    @Test func aSplitRoundPausesWritesAndTheNextRestoresThem() throws {
        var decider = try TopologyDecider(members: members, policy: policy)
        for _ in 0..<3 { _ = decider.observe(Observe.healthy()) }
        let before = decider.topology
        var split = Observe.healthy()
        split[1].cluster = ClusterObservation(leader: "pg2")
        split[2].cluster = ClusterObservation(leader: nil)
        let paused = decider.observe(split)
        #expect(paused.changed && paused.topology.primary == nil && paused.topology.replicas == before.replicas)
        let restored = decider.observe(Observe.healthy())
        #expect(restored.changed && restored.topology.primary == before.primary)
        #expect(restored.topology.epoch == before.epoch + 2)
    }

    @Test func observationsOfStrangersAreIgnoredAndMissingMembersCountAsDown() throws {
        var decider = try TopologyDecider(members: ["pg1", "pg2"], policy: policy)
        var round = Observe.healthy()
        round.append(Observe.primary("intruder", timeline: 9, writtenAt: 1, views: "intruder"))
        let decision = decider.observe(round)
        #expect(decision.topology.primary == .init(name: "pg1", timeline: 1))
        #expect(decision.members.map(\.name) == ["pg1", "pg2"])
        let lonely = decider.observe([Observe.healthy()[1]])
        #expect(lonely.topology.primary == nil)
        #expect(lonely.members[0].note == "PostgreSQL probe failed")
    }

    /// pg4 was removed from the configuration, then leadership moved: the new watcher's first
    /// round routes without pg4, which is a change, so it gets a new epoch (an epoch-keyed pool
    /// must notice it).
    @Test func droppingAnUnconfiguredMemberMovesTheEpoch() throws {
        let committed = PostgresTopology(epoch: 7, primary: .init(name: "pg1", timeline: 1), replicas: ["pg2", "pg4"])
        var decider = try TopologyDecider(members: members, policy: policy, committed: committed)
        let blind = Observe.healthy().map { $0.without(patroni: true, cluster: true) }
        let first = decider.observe(blind)
        #expect(first.changed)
        #expect(first.topology == PostgresTopology(epoch: 8, primary: committed.primary, replicas: ["pg2"]))
        #expect(!decider.observe(blind).changed)
    }

    /// Over a long mixed run (failovers, outages, split views, lag, missing members) the epoch
    /// never goes backwards, moves by exactly one whenever the routes change and never otherwise.
    @Test func theEpochMovesOnEveryRouteChangeAndNeverBack() throws {
        var decider = try TopologyDecider(
            members: members, policy: policy,
            committed: PostgresTopology(epoch: 3, primary: .init(name: "pg3", timeline: 1), replicas: ["pg4"]))
        var split = Observe.healthy()
        split[1].cluster = ClusterObservation(leader: "pg2")
        split[2].cluster = ClusterObservation(leader: nil)
        let palette: [[MemberObservation]] = [
            Observe.healthy(), Observe.healthy(written: 10_000, replayed: 1_000),
            Observe.healthy().map { $0.without(patroni: true, cluster: true) }, split,
            [Observe.healthy()[1]], [],
            [
                MemberObservation(name: "pg1"), Observe.primary("pg2", timeline: 2, writtenAt: 20_000, views: "pg2"),
                Observe.replica("pg3", timeline: 2, replayedTo: 20_000, views: "pg2"),
            ],
            [
                Observe.primary("pg1", timeline: 3, writtenAt: 30_000, views: "pg1"),
                Observe.replica("pg2", timeline: 3, replayedTo: 30_000, views: "pg1"), MemberObservation(name: "pg3"),
            ],
        ]
        var previous = decider.topology
        var random: UInt64 = 0x9E37_79B9_7F4A_7C15
        for step in 0..<2_000 {
            random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let decision = decider.observe(palette[Int((random >> 33) % UInt64(palette.count))])
            let moved = !decision.topology.routesLike(previous)
            #expect(decision.changed == moved, "step \(step)")
            #expect(decision.topology.epoch == previous.epoch + (moved ? 1 : 0), "step \(step)")
            previous = decision.topology
        }
        #expect(previous.epoch > 3)
    }

    @Test func anUnreadableRecordsEpochIsAFloor() {
        #expect(TopologyRecord.epochFloor(Array("{\"epoch\":12,\"primary\":7}".utf8), version: 5) == 12)
        #expect(TopologyRecord.epochFloor(Array("{\"epoch\":\"five\"}".utf8), version: 5) == 5)
        #expect(TopologyRecord.epochFloor(Array("not json".utf8), version: 2) == 2)
    }

    @Test func badMemberListsAreRefused() {
        #expect(throws: PatroniConfigurationError.self) { try TopologyDecider(members: []) }
        #expect(throws: PatroniConfigurationError.self) { try TopologyDecider(members: ["a", "b", "a"]) }
    }
}

/// The decision fed the answers Patroni gave during a real failover (Fixtures/), with no SQL
/// probe: Patroni's word alone.
@Suite("The decision over captured Patroni answers")
struct CapturedFailoverTests {
    func observe(_ name: String, patroni: String, cluster: String) throws -> MemberObservation {
        MemberObservation(
            name: name, patroni: PatroniObservation(try PatroniStatus.decode(try Fixture.data(patroni))),
            cluster: ClusterObservation(try PatroniCluster.decode(try Fixture.data(cluster))))
    }

    @Test func theLockMovesBeforeThePromotionAndTheDecisionWaitsForIt() throws {
        var decider = try TopologyDecider(members: ["pg1", "pg2", "pg3"])
        let promoting = decider.observe([
            try observe(
                "pg1", patroni: "patroni-3.0.2-replica-old-timeline.json",
                cluster: "cluster-3.0.2-failover-promoting.json"),
            try observe(
                "pg2", patroni: "patroni-3.0.2-promoting-lock-holder.json",
                cluster: "cluster-3.0.2-failover-promoting.json"),
            MemberObservation(name: "pg3"),
        ])
        #expect(promoting.topology.primary == nil, "pg2 holds the lock but still says replica")
        let promoted = decider.observe([
            try observe(
                "pg1", patroni: "patroni-3.0.2-replica-old-timeline.json",
                cluster: "cluster-3.0.2-failover-lagging.json"),
            try observe(
                "pg2", patroni: "patroni-3.0.2-master-after-failover.json",
                cluster: "cluster-3.0.2-failover-lagging.json"),
            MemberObservation(name: "pg3"),
        ])
        #expect(promoted.changed && promoted.topology.primary == .init(name: "pg2", timeline: 6))
        #expect(promoted.topology.replicas.isEmpty, "no replica is admitted on Patroni's word alone")
        #expect(promoted.members[0].note == "PostgreSQL probe failed")
    }
}
