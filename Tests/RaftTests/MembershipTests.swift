import Testing

@testable import Raft

@Suite("Membership: learners and single-server changes (thesis §4)")
struct MembershipTests {
    @Test func learnerReceivesTheLogButDoesNotCountTowardsCommit() throws {
        var cluster = try TestCluster(voters: [1, 2], learners: [3])
        cluster.elect(1)
        cluster.propose("a", on: 1)
        cluster.tick(2)
        #expect(cluster.appliedCommands(3) == ["a"])
        // With voter 2 unreachable, the learner's acknowledgement must not commit anything.
        cluster.isolate(2)
        let outcome1 = cluster.propose("b", on: 1)
        let index = try #require(outcome1)
        cluster.tick(2, only: [1, 3])
        #expect(cluster[1].commitIndex < index)
        #expect(cluster[3].lastIndex >= index)
    }

    @Test func learnersNeverCampaign() throws {
        var cluster = try TestCluster(voters: [1, 2], learners: [3])
        cluster.isolate(3)
        cluster.tick(100, only: [3])
        #expect(cluster[3].role == .follower)
        #expect(cluster[3].term == 0)
    }

    @Test func addLearnerThenPromote() throws {
        var cluster = try TestCluster(voters: [1, 2], learners: [3])
        cluster.elect(1)
        cluster.propose("x", on: 1)
        cluster.tick(2)
        let outcome2 = cluster[1].proposeConfigurationChange(.promoteLearner(3))
        #expect(outcome2 != .rejected(.learnerNotCaughtUp))
        cluster.settle()
        cluster.tick(2)
        for id: NodeID in [1, 2, 3] { #expect(cluster[id].configuration == ClusterConfiguration(voters: [1, 2, 3])) }
        // Now node 3 counts: with node 2 away, 1 and 3 still commit.
        cluster.isolate(2)
        let outcome3 = cluster.propose("y", on: 1)
        let index = try #require(outcome3)
        cluster.tick(2, only: [1, 3])
        #expect(cluster[1].commitIndex >= index)
    }

    @Test func onlyOneChangeAtATime() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.isolate(2)
        cluster.isolate(3)
        guard case .accepted = cluster[1].proposeConfigurationChange(.addLearner(4)) else {
            Issue.record("first change must be accepted")
            return
        }
        let outcome4 = cluster[1].proposeConfigurationChange(.addLearner(5))
        #expect(outcome4 == .rejected(.configurationChangePending))
        // The configuration takes effect on append, before it commits (thesis §4.1).
        #expect(cluster[1].configuration.learners == [4])
    }

    @Test func noChangeBeforeTheLeaderCommittedInItsTerm() throws {
        var leader = try RaftCore.handElected(restoring: .bootstrap(voters: [1, 2, 3]))
        #expect(leader.role == .leader)
        let outcome5 = leader.proposeConfigurationChange(.addLearner(4))
        #expect(outcome5 == .rejected(.configurationChangePending))
    }

    @Test func promotingAnUnreachableLearnerIsRefused() throws {
        var cluster = try TestCluster(voters: [1, 2], learners: [3])
        cluster.elect(1)
        cluster.isolate(3)
        for text in (0..<100).map(String.init) { cluster.propose(text, on: 1) }
        cluster.tick(2 * cluster[1].options.electionTimeout, only: [1, 2])
        let outcome6 = cluster[1].proposeConfigurationChange(.promoteLearner(3))
        #expect(outcome6 == .rejected(.learnerNotCaughtUp))
    }

    @Test func invalidChangesAreRefused() throws {
        var cluster = try TestCluster(voters: [1])
        cluster.elect(1)
        let outcome7 = cluster[1].proposeConfigurationChange(.remove(1))
        #expect(outcome7 == .rejected(.invalidConfigurationChange))
        let outcome8 = cluster[1].proposeConfigurationChange(.promoteLearner(9))
        #expect(outcome8 == .rejected(.invalidConfigurationChange))
        let outcome9 = cluster[1].proposeConfigurationChange(.addLearner(1))
        #expect(outcome9 == .rejected(.invalidConfigurationChange))
    }

    @Test func removedLeaderStepsDownOnceTheChangeCommits() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        guard case .accepted = cluster[1].proposeConfigurationChange(.remove(1)) else {
            Issue.record("removal must be accepted")
            return
        }
        cluster.settle()
        cluster.tick(1)
        #expect(cluster[1].role == .follower)
        cluster.tick(60, only: [2, 3])
        let newLeader = try #require([cluster[2], cluster[3]].first { $0.role == .leader })
        #expect(newLeader.configuration.voters == [2, 3])
        cluster.propose("after", on: newLeader.id)
        #expect(cluster.appliedCommands(newLeader.id) == ["after"])
    }

    @Test func configurationRevertsWhenItsEntryIsTruncated() throws {
        // Follower 3 got an uncommitted change from an old leader; the new leader overwrites it.
        let base = RestoredState.bootstrap(voters: [1, 2, 3]).snapshot
        let change = LogEntry(
            index: 2, term: 1, kind: .configurationChange, data: ConfigurationChange.addLearner(9).encoded)
        var follower = try RaftCore(
            options: RaftOptions(id: 3),
            restoring: RestoredState(
                hardState: HardState(term: 1), snapshot: base, entries: [LogEntry(index: 1, term: 1), change]))
        #expect(follower.configuration.learners == [9])
        let append = AppendEntries(
            prevLogIndex: 1, prevLogTerm: 1, entries: [LogEntry(index: 2, term: 2, kind: .noop)], leaderCommit: 0)
        follower.step(Message(from: 1, to: 3, term: 2, payload: .appendEntries(append)))
        #expect(follower.configuration == ClusterConfiguration(voters: [1, 2, 3]))
        let outcome10 = follower.ready()
        #expect(outcome10.configuration == ClusterConfiguration(voters: [1, 2, 3]))
    }

    @Test func configurationChangeEncodingRoundTrips() {
        for change in [ConfigurationChange.addLearner(1), .promoteLearner(.max), .remove(42)] {
            #expect(ConfigurationChange(encoded: change.encoded) == change)
        }
        #expect(ConfigurationChange(encoded: [9, 0, 0, 0, 0, 0, 0, 0, 0]) == nil)
        #expect(ConfigurationChange(encoded: []) == nil)
    }
}
