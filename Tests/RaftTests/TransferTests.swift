import Testing

@testable import Raft

@Suite("Leadership transfer (thesis §3.10)")
struct TransferTests {
    @Test func transferToCaughtUpFollower() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.propose("before", on: 1)
        let term = cluster[1].term
        let outcome1 = cluster[1].transferLeadership(to: 3)
        #expect(outcome1)
        cluster.settle()
        #expect(cluster[3].role == .leader)
        #expect(cluster[3].term == term + 1)
        #expect(cluster[1].role == .follower)
        cluster.propose("after", on: 3)
        cluster.tick(2)
        for id: NodeID in [1, 2, 3] { #expect(cluster.appliedCommands(id) == ["before", "after"]) }
    }

    @Test func transferCatchesALaggingTargetUpFirst() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.isolate(3)
        for text in ["a", "b", "c"] { cluster.propose(text, on: 1) }
        cluster.heal()
        let outcome2 = cluster[1].transferLeadership(to: 3)
        #expect(outcome2)
        let outcome3 = cluster[1].propose([1])
        #expect(outcome3 == .rejected(.transferInProgress))
        cluster.settle()
        cluster.tick(2)
        #expect(cluster[3].role == .leader)
        #expect(cluster.appliedCommands(3) == ["a", "b", "c"])
    }

    @Test func transferIsAbandonedAfterAnElectionTimeout() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.isolate(3)
        let outcome4 = cluster[1].transferLeadership(to: 3)
        #expect(outcome4)
        cluster.tick(cluster[1].options.electionTimeout, only: [1, 2])
        #expect(cluster[1].transferTarget == nil)
        #expect(cluster[1].role == .leader)
        if case .rejected = cluster[1].propose([1]) { Issue.record("proposals must be accepted again") }
    }

    @Test func transferToNonVoterIsRefused() throws {
        var cluster = try TestCluster(voters: [1, 2], learners: [3])
        cluster.elect(1)
        let outcome5 = cluster[1].transferLeadership(to: 3)
        #expect(!outcome5)
        let outcome6 = cluster[1].transferLeadership(to: 1)
        #expect(!outcome6)
        let outcome7 = cluster[2].transferLeadership(to: 1)
        #expect(!outcome7)
    }
}
