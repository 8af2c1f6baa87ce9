import Testing

@testable import Patroni

@Suite("Who is primary")
struct PrimaryRuleTests {
    @Test func theLockHolderOutOfRecovery() {
        let verdict = PrimaryRule.decide(Observe.healthy(timeline: 3), previous: nil)
        #expect(verdict.primary == .init(name: "pg1", timeline: 3))
    }

    /// The views disagree (a DCS read mid-change): the member a strict majority names wins, a
    /// tie gives nobody.
    @Test func splitViews() {
        var round = Observe.healthy()
        round[2].cluster = ClusterObservation(leader: "pg2")
        #expect(PrimaryRule.decide(round, previous: nil).primary?.name == "pg1", "two of three name pg1")
        round[1].cluster = ClusterObservation(leader: "pg2")
        #expect(
            PrimaryRule.decide(round, previous: "pg1").primary == nil, "two of three name pg2, which is in recovery")
        round[1].cluster = nil
        #expect(PrimaryRule.decide(round, previous: "pg1").primary == nil, "one each: no majority")
    }

    /// The lock holder is mid-promotion (captured: pg2 holds the lock while its /patroni still says
    /// replica); the old primary is gone. Nobody takes writes until pg2 is out of recovery.
    @Test func aLockHolderStillInRecoveryIsNotPrimary() {
        let round = [
            Observe.replica("pg1", timeline: 5, replayedTo: 100, views: "pg2"),
            Observe.replica("pg2", timeline: 5, replayedTo: 100, views: "pg2"),
            MemberObservation(name: "pg3"),
        ]
        let verdict = PrimaryRule.decide(round, previous: "pg3")
        #expect(verdict.primary == nil)
        var promoted = round
        promoted[1] = Observe.primary("pg2", timeline: 6, writtenAt: 200, views: "pg2")
        #expect(PrimaryRule.decide(promoted, previous: "pg3").primary == .init(name: "pg2", timeline: 6))
    }

    /// A stale lock holder: the old primary, cut off from the DCS, is still writable on the old
    /// timeline and its own view still names itself; the new primary is one timeline ahead.
    @Test func aDeposedPrimaryOnAnOlderTimelineIsNeverChosen() {
        let round = [
            Observe.primary("pg1", timeline: 4, writtenAt: 900, views: "pg1"),
            Observe.primary("pg2", timeline: 5, writtenAt: 300, views: "pg2"),
            Observe.replica("pg3", timeline: 5, replayedTo: 300, views: "pg2"),
        ]
        #expect(PrimaryRule.decide(round, previous: "pg1").primary == .init(name: "pg2", timeline: 5))
        // The new primary unreachable from here: a replica's newer timeline still rules pg1 out.
        var hidden = round
        hidden[1] = MemberObservation(name: "pg2")
        #expect(PrimaryRule.decide(hidden, previous: "pg1").primary == nil)
        // Even when every view still names the deposed primary (stale DCS reads).
        hidden[2].cluster = ClusterObservation(leader: "pg1")
        #expect(PrimaryRule.decide(hidden, previous: "pg1").primary == nil)
    }

    /// Two writable members on the same timeline (a manual pg_promote): only the lock decides.
    @Test func twoWritableOnOneTimelineTheLockDecides() {
        var round = Observe.healthy()
        round[1] = Observe.primary("pg2", timeline: 1, writtenAt: 10_000, views: "pg1")
        #expect(PrimaryRule.decide(round, previous: nil).primary?.name == "pg1")
        for index in round.indices { round[index].cluster = nil }
        #expect(PrimaryRule.decide(round, previous: "pg1").primary == nil, "no lock evidence, two writable")
    }

    /// Patroni's API down everywhere, PostgreSQL healthy: the previous primary keeps writes.
    @Test func apiDownKeepsAHealthyPrimary() {
        let round = Observe.healthy().map { $0.without(patroni: true, cluster: true) }
        let kept = PrimaryRule.decide(round, previous: "pg1")
        #expect(kept.primary == .init(name: "pg1", timeline: 1))
        #expect(PrimaryRule.decide(round, previous: nil).primary == nil, "never made primary without the lock")
        #expect(PrimaryRule.decide(round, previous: "pg2").primary == nil, "pg2 is in recovery")
        var failed = round
        failed[0] = failed[0].without(sql: true)
        #expect(PrimaryRule.decide(failed, previous: "pg1").primary == nil, "no source left says it is writable")
    }

    /// The watcher sees only the old primary (its Patroni dead, the other members cut off): a
    /// promotion elsewhere would be invisible, so it is not kept. One more probe answering on
    /// the same timeline (a majority: no newer timeline exists there) keeps it.
    @Test func apiDownKeepsThePrimaryOnlyWithAMajorityOfProbes() {
        let alone = [
            MemberObservation(name: "pg1", sql: SQLObservation(inRecovery: false, timeline: 1, currentLSN: LSN(10))),
            MemberObservation(name: "pg2"), MemberObservation(name: "pg3"),
        ]
        let verdict = PrimaryRule.decide(alone, previous: "pg1")
        #expect(verdict.primary == nil)
        #expect(verdict.reason.contains("1 of 3 probes"))
        var withPG3 = alone
        withPG3[2].sql = SQLObservation(inRecovery: true, timeline: 1, receiveLSN: LSN(10), replayLSN: LSN(10))
        #expect(PrimaryRule.decide(withPG3, previous: "pg1").primary == .init(name: "pg1", timeline: 1))
    }

    /// Only the primary's own Patroni is down: the others' views still name it.
    @Test func thePrimarysOwnAPIDown() {
        var round = Observe.healthy()
        round[0] = round[0].without(patroni: true, cluster: true)
        #expect(PrimaryRule.decide(round, previous: nil).primary?.name == "pg1")
    }

    /// The probe failed but Patroni says primary, running, with the lock: writes continue.
    @Test func aFailedProbeFallsBackToPatroni() {
        var round = Observe.healthy(timeline: 2)
        round[0] = round[0].without(sql: true)
        #expect(PrimaryRule.decide(round, previous: "pg1").primary == .init(name: "pg1", timeline: 2))
        round[0].patroni?.state = "unknown"
        #expect(PrimaryRule.decide(round, previous: "pg1").primary == nil, "Patroni could not query it either")
    }

    /// The probe outranks Patroni: a probe that says in recovery wins over a stale `master`.
    @Test func theProbeOutranksPatroni() {
        var round = Observe.healthy()
        round[0].sql = SQLObservation(inRecovery: true, timeline: 1, replayLSN: LSN(1))
        #expect(PrimaryRule.decide(round, previous: "pg1").primary == nil)
    }

    /// The lock expired (every view unlocked): no primary even though PostgreSQL still accepts
    /// writes — Patroni is about to promote someone else.
    @Test func anUnlockedClusterHasNoPrimary() {
        var round = Observe.healthy()
        for index in round.indices { round[index].cluster = ClusterObservation(leader: nil) }
        let verdict = PrimaryRule.decide(round, previous: "pg1")
        #expect(verdict.primary == nil)
        #expect(verdict.reason.contains("nobody"))
    }
}
