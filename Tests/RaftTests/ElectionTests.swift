import Testing

@testable import Raft

@Suite("Election (paper §5.2, PreVote and CheckQuorum thesis §9.6 and §6.2)")
struct ElectionTests {
    @Test func singleNodeElectsItselfAndCommits() throws {
        var cluster = try TestCluster(voters: [1])
        cluster.tick(25)
        #expect(cluster[1].role == .leader)
        let outcome1 = cluster.propose("x", on: 1)
        #expect(outcome1 != nil)
        #expect(cluster.appliedCommands(1) == ["x"])
    }

    @Test func threeNodesElectExactlyOneLeaderByTimeout() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.tick(40)
        let leaders = cluster.nodes.filter { $0.role == .leader }
        #expect(leaders.count == 1)
        let leader = try #require(leaders.first)
        // PreVote: the first real election happens in term 1, nobody bumped terms in vain.
        #expect(leader.term == 1)
        for node in cluster.nodes { #expect(node.leader == leader.id) }
    }

    @Test func partitionedNodeDoesNotRaiseItsTermWithPreVote() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        let term = cluster[1].term
        cluster.isolate(3)
        cluster.tick(100)
        #expect(cluster[3].term == term, "PreVote must not let a partitioned node bump its term")
        cluster.heal()
        cluster.tick(5)
        #expect(cluster[1].role == .leader)
        #expect(cluster[1].term == term, "the rejoining node must not disrupt the leader")
    }

    @Test func withoutPreVoteAPartitionedNodeRaisesItsTerm() throws {
        var cluster = try TestCluster(voters: [1, 2, 3]) { $0.preVote = false }
        cluster.elect(1)
        let term = cluster[1].term
        cluster.isolate(3)
        cluster.tick(100)
        #expect(cluster[3].term > term)
    }

    @Test func isolatedLeaderStepsDownByCheckQuorum() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.isolate(1)
        cluster.tick(2 * cluster[1].options.electionTimeout, only: [1])
        #expect(cluster[1].role == .follower)
        #expect(cluster[1].leader == nil)
    }

    @Test func majorityElectsNewLeaderWhenLeaderIsolated() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.isolate(1)
        cluster.tick(60, only: [2, 3])
        let newLeader = [cluster[2], cluster[3]].first { $0.role == .leader }
        #expect(newLeader != nil)
        #expect(newLeader!.term > cluster[1].term)
    }

    @Test func followerInLeaseIgnoresVoteRequestsOfHigherTerm() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        let term = cluster[2].term
        let request = VoteRequest(preVote: false, lastLogIndex: 100, lastLogTerm: 100, leadershipTransfer: false)
        cluster[2].step(Message(from: 3, to: 2, term: term + 5, payload: .voteRequest(request)))
        #expect(cluster[2].term == term)
        let ready = cluster[2].ready()
        #expect(!ready.messages.contains { if case .voteResponse = $0.payload { true } else { false } })
        cluster[2].advance()
    }

    @Test func candidateIgnoresVotesFromEarlierTerms() throws {
        var cluster = try TestCluster(voters: [1, 2, 3]) { $0.preVote = false }
        // Node 1's boot lease passes (its own timer may start the first election; that is fine).
        for _ in 0..<cluster[1].options.electionTimeout where cluster[1].role == .follower { cluster[1].tick() }
        cluster.network = []
        if cluster[1].role == .follower { cluster[1].campaign() }
        cluster[1].campaign()  // now a candidate in a later term
        _ = cluster[1].ready()
        cluster[1].advance()
        let term = cluster[1].term
        #expect(cluster[1].role == .candidate)
        let staleGrant = VoteResponse(preVote: false, granted: true)
        cluster[1].step(Message(from: 2, to: 1, term: term - 1, payload: .voteResponse(staleGrant)))
        cluster[1].step(Message(from: 3, to: 1, term: term - 1, payload: .voteResponse(staleGrant)))
        #expect(cluster[1].role == .candidate, "grants from an earlier term must not count")
        cluster[1].step(Message(from: 2, to: 1, term: term, payload: .voteResponse(staleGrant)))
        #expect(cluster[1].role == .leader)
    }

    @Test func voteIsRefusedToACandidateWithAStaleLog() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.propose("a", on: 1)
        cluster.tick(30, only: [2])  // node 2's lease on the leader lapses
        cluster.network = []
        let stale = VoteRequest(preVote: false, lastLogIndex: 1, lastLogTerm: 1, leadershipTransfer: false)
        let term = cluster[2].term
        cluster[2].step(Message(from: 3, to: 2, term: term + 1, payload: .voteRequest(stale)))
        let ready = cluster[2].ready()
        let answer = ready.messages.compactMap { message -> VoteResponse? in
            if case .voteResponse(let response) = message.payload { return response }
            return nil
        }
        #expect(answer == [VoteResponse(preVote: false, granted: false)])
        #expect(ready.hardState?.votedFor == nil)
    }

    @Test func oneVotePerTermSurvivesRestart() throws {
        var cluster = try TestCluster(voters: [1, 2, 3]) { $0.preVote = false }
        // Let node 2's boot lease pass without settling anything.
        for _ in 0..<cluster[2].options.electionTimeout { cluster[2].tick() }
        _ = cluster[2].ready()
        cluster[2].advance()
        let request = VoteRequest(preVote: false, lastLogIndex: 0, lastLogTerm: 0, leadershipTransfer: false)
        cluster[2].step(Message(from: 1, to: 2, term: 5, payload: .voteRequest(request)))
        cluster.processReadies()
        #expect(cluster.persistedHardStates[1] == HardState(term: 5, votedFor: 1, commit: 0))
        // Restart node 2 from what it persisted, let its boot lease pass, ask again for node 3.
        var options = RaftOptions(id: 2)
        options.randomSeed = 9
        var restarted = try RaftCore(
            options: options,
            restoring: RestoredState(
                hardState: cluster.persistedHardStates[1],
                snapshot: RestoredState.bootstrap(voters: [1, 2, 3]).snapshot,
                entries: cluster.persistedEntries[1]))
        #expect(restarted.term == 5)
        for _ in 0..<options.electionTimeout { restarted.tick() }
        _ = restarted.ready()
        restarted.advance()
        restarted.step(Message(from: 3, to: 2, term: 5, payload: .voteRequest(request)))
        let ready = restarted.ready()
        #expect(
            ready.messages.contains { $0.payload == .voteResponse(VoteResponse(preVote: false, granted: false)) })
    }

    /// The lease margin must cover the declared drift (see `RaftOptions.minimumLeaseSafetyMargin`).
    @Test func leaseMarginsThatLeaveNoRoomForDriftAreRejected() throws {
        func accepts(electionTimeout: Int, margin: Int, drift: Double) -> Bool {
            var options = RaftOptions(id: 1)
            options.electionTimeout = electionTimeout
            options.leaseSafetyMargin = margin
            options.maxClockDrift = drift
            return (try? RaftCore(options: options, restoring: .bootstrap(voters: [1]))) != nil
        }
        #expect(accepts(electionTimeout: 10, margin: 1, drift: 0))
        #expect(!accepts(electionTimeout: 10, margin: 1, drift: 0.1), "9 × 0.9 = 8.1: the lease may last 8 ticks")
        #expect(accepts(electionTimeout: 10, margin: 2, drift: 0.1), "the defaults")
        #expect(!accepts(electionTimeout: 10, margin: 3, drift: 0.3), "9 × 0.7 = 6.3: 6 ticks at most")
        #expect(accepts(electionTimeout: 10, margin: 4, drift: 0.3))
        #expect(accepts(electionTimeout: 100, margin: 6, drift: 0.05), "99 × 0.95 = 94.05")
        #expect(!accepts(electionTimeout: 100, margin: 5, drift: 0.05))
        #expect(!accepts(electionTimeout: 10, margin: 9, drift: 1.0), "no clock at all is not a bound")
        #expect(!accepts(electionTimeout: 10, margin: 10, drift: 0), "a margin of the whole timeout leaves no lease")
        #expect(RaftOptions.minimumLeaseSafetyMargin(electionTimeout: 10, maxClockDrift: 0.1) == 2)
    }

    @Test func invalidOptionsAreRejected() {
        var options = RaftOptions(id: 1)
        options.leaseSafetyMargin = 0
        #expect(throws: RaftError.self) { try RaftCore(options: options, restoring: .bootstrap(voters: [1])) }
        #expect(throws: RaftError.invalidID) {
            try RaftCore(options: RaftOptions(id: 0), restoring: .bootstrap(voters: [1]))
        }
    }
}
