import Testing

@testable import Raft

/// What happens around a node leaving: the removed follower stops campaigning, a leader that
/// removes itself hands over, and a leader cut off right after its election steps down quickly.
@Suite("Removal, hand-over and the first CheckQuorum")
struct RemovalAndStepDownTests {
    /// Thesis §4.2.3: the removed follower never receives the entry that removes it. Without being
    /// told, it times out and campaigns forever; told once by the leader, it stays quiet.
    @Test func aRemovedFollowerIsToldAndStopsCampaigning() throws {
        var cluster = try TestCluster(voters: [1, 2, 3, 4])
        cluster.elect(1)
        guard case .accepted(let index, _) = cluster[1].proposeConfigurationChange(.remove(4)) else {
            Issue.record("removal must be accepted")
            return
        }
        cluster.settle()
        cluster.tick(1)
        try #require(cluster[1].commitIndex >= index)
        #expect(cluster[4].configuration.isVoter(4), "node 4 never got the entry that removes it")

        // Node 4 hears no more heartbeats, times out and pre-votes; the leader answers with the notice.
        var campaigns = 0
        for _ in 0..<(8 * cluster[4].options.electionTimeout) {
            for id: NodeID in [1, 2, 3, 4] { cluster[id].tick() }
            cluster.processReadies()
            campaigns += cluster.network.filter { $0.from == 4 && $0.isVoteRequest(preVote: true) }.count > 0 ? 1 : 0
            cluster.settle()
        }
        #expect(campaigns == 1, "one campaign, answered with the removal notice, then silence")
        #expect(cluster[4].removedByConfiguration == index, "the host can report the removal it was told of")
        #expect(cluster[1].removedByConfiguration == nil)
        #expect(cluster[4].role == .follower)
        #expect(cluster[1].role == .leader, "the cluster is undisturbed")
    }

    /// A stale notice (a node removed, then added back) does not silence it: once its log shows a
    /// configuration at least as new as the notice's, that configuration decides.
    @Test func aNoticeOlderThanTheNodesConfigurationIsIgnored() throws {
        var node = try RaftCore(options: RaftOptions(id: 2), restoring: .bootstrap(voters: [1, 2, 3]))
        node.step(Message(from: 1, to: 2, term: 1, payload: .removed(configurationIndex: 0)))
        #expect(node.removedByConfiguration == nil)
        for _ in 0..<(3 * node.options.electionTimeout) { node.tick() }
        #expect(node.role == .preCandidate, "a notice about configuration 0 says nothing new")
    }

    /// Thesis §3.10 and §4.2.2: once its own removal commits, the leader sends TimeoutNow to the
    /// most caught-up voter, which is elected at once — no election timeout without a leader.
    @Test func aLeaderThatRemovesItselfHandsOver() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.propose("before", on: 1)
        guard case .accepted = cluster[1].proposeConfigurationChange(.remove(1)) else {
            Issue.record("removal must be accepted")
            return
        }
        cluster.settle()
        cluster.tick(1, only: [1])
        #expect(cluster[1].role == .follower)
        let newLeader = try #require([cluster[2], cluster[3]].first { $0.role == .leader })
        #expect(newLeader.configuration.voters == [2, 3])
        #expect(newLeader.term == cluster[1].term + 1 || newLeader.term == cluster[1].term)
        cluster.propose("after", on: newLeader.id)
        #expect(cluster.appliedCommands(newLeader.id) == ["before", "after"])
    }

    /// As etcd: a new leader counts only itself as recently active, so when it is cut off right
    /// after winning it steps down at its first CheckQuorum, one election timeout later.
    @Test func aNewLeaderCutOffAtOnceStepsDownWithinOneElectionTimeout() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        let timeout = cluster[1].options.electionTimeout
        // Everyone follows node 1 now; hand leadership to node 2 and cut node 2 off the moment it wins.
        cluster[1].transferLeadership(to: 2)
        for _ in 0..<20 {
            cluster.processReadies()
            if cluster[2].role == .leader { break }
            cluster.deliverOnce()
        }
        try #require(cluster[2].role == .leader)
        cluster.isolate(2)
        cluster.network = []
        cluster.tick(timeout, only: [2])
        #expect(cluster[2].role == .follower, "stepped down at the first CheckQuorum")
    }

    /// A learner that has never answered is not promoted, even in a young cluster where "within
    /// `maxPromotionLag` of the commit index" holds for a log of nothing: the promotion would raise
    /// the quorum with a member that cannot vote, and the change could never commit nor be undone.
    @Test func aLearnerThatNeverAnsweredIsNotPromoted() throws {
        var cluster = try TestCluster(voters: [1], learners: [2])
        cluster.isolate(2)
        cluster.elect(1)
        try #require(cluster[1].role == .leader)
        let result = cluster[1].proposeConfigurationChange(.promoteLearner(2))
        #expect(result == .rejected(.learnerNotCaughtUp))
        cluster.heal()
        cluster.propose("x", on: 1)
        cluster.tick(2)
        #expect(cluster[1].proposeConfigurationChange(.promoteLearner(2)) != .rejected(.learnerNotCaughtUp))
    }

    /// A node just started keeps the boot lease: it may have promised a leader not to help elect
    /// another before it restarted, so a hand-started campaign waits too (the review's trace:
    /// B acknowledges A's heartbeat, restarts, is told to campaign, C grants, B leads while A
    /// still serves lease reads).
    @Test func aJustStartedNodeDoesNotCampaignByHand() throws {
        var node = try RaftCore(options: RaftOptions(id: 2), restoring: .bootstrap(voters: [1, 2, 3]))
        node.campaign()
        #expect(node.role == .follower)
        for _ in 0..<(node.options.electionTimeout - 1) { node.tick() }
        node.campaign()
        #expect(node.role == .follower, "still within one election timeout of starting")
        node.tick()
        node.campaign()
        #expect(node.role == .preCandidate)
    }
}
