import Testing

@_spi(PlantedBugs) @testable import Raft

/// A follower's promise not to help elect anyone while it recently heard from a leader (thesis
/// §6.4.1) is what makes the old leader's lease sound. It must hold whatever term the follower has
/// since been pushed into: a term bump carries no news about the leader it acknowledged.
@Suite("The lease promise (thesis §6.4.1)")
struct LeasePromiseTests {
    /// The trace the review found, five nodes, FIFO links, every message moved by hand:
    /// A (1) leads and is cut off; B (2) and C (3) pre-vote; B's pre-vote to D (4) is held in a
    /// queue; C wins its pre-vote and gets D's vote; the partition heals toward B and E (5), whose
    /// acknowledgements give A a lease over {A, B, E}; B's stale pre-vote then reaches D, whose
    /// rejection carries C's term and pushes B into it with no leader; C's vote request reaches B.
    /// Before the fix B granted it, C led with {C, D, B} and committed W while A still served a
    /// lease read that missed W.
    @Test func aTermBumpDoesNotReleaseTheFollowersPromise() throws {
        let outcome = try Self.reviewTrace()
        #expect(!outcome.newLeaderElected, "C must not win with B's vote while A holds a lease over B")
        #expect(!outcome.staleLeaseRead)
    }

    /// The trace is a faithful regression test: with the promise inferred from `leader != nil`
    /// again (the bug as it was), it ends in the stale lease read.
    @Test func theTraceFindsTheOldRule() throws {
        let outcome = try Self.reviewTrace(plantedBugs: [.promiseFromLeaderField])
        #expect(outcome.newLeaderElected)
        #expect(outcome.staleLeaseRead)
    }

    static func reviewTrace(plantedBugs: Set<PlantedBug> = []) throws -> (newLeaderElected: Bool, staleLeaseRead: Bool)
    {
        var cluster = try TestCluster(voters: [1, 2, 3, 4, 5]) { $0.plantedBugs = plantedBugs }
        cluster.elect(1)
        cluster.propose("before", on: 1)
        let timeout = cluster[1].options.electionTimeout
        let oldTerm = cluster[1].term

        // A is partitioned. Let the others' promise run out, without letting any of them campaign
        // on its own (the test decides who campaigns and when).
        cluster.isolate(1)
        for round in 0..<timeout {
            for id: NodeID in [2, 3, 4, 5] { cluster[id].tick() }
            // A's clock runs too (its old lease expires); not long enough for its CheckQuorum.
            if round < timeout - 2 { cluster[1].tick() }
            cluster.processReadies()
            cluster.network = []
        }
        cluster.settle()
        for id: NodeID in [2, 3, 4, 5] { try #require(cluster[id].role == .follower) }

        // B and C pre-vote for the next term.
        cluster[2].campaign()
        cluster[3].campaign()
        cluster.processReadies()
        let heldPreVote = try #require(
            cluster.take { $0.from == 2 && $0.to == 4 && $0.isVoteRequest(preVote: true) }.first)
        // B's other pre-votes go nowhere: B must stay a pre-candidate.
        _ = cluster.take { $0.from == 2 }
        // C's pre-votes reach B, D and E, and their grants reach C: C becomes a candidate.
        cluster.deliver { $0.from == 3 }
        cluster.processReadies()
        _ = cluster.take { $0.to == 2 }
        cluster.deliver { $0.to == 3 }
        cluster.processReadies()
        try #require(cluster[3].role == .candidate)
        let newTerm = cluster[3].term
        try #require(newTerm == oldTerm + 1)
        // C's vote request to B is held; D grants its vote; E never hears of C.
        let heldVote = try #require(
            cluster.take { $0.from == 3 && $0.to == 2 && $0.isVoteRequest(preVote: false) }.first)
        _ = cluster.take { $0.from == 3 && $0.to != 4 }
        cluster.deliver { $0.from == 3 && $0.to == 4 }
        cluster.processReadies()
        cluster.deliver { $0.from == 4 && $0.to == 3 }
        cluster.processReadies()
        try #require(cluster[3].role == .candidate, "two votes of five")

        // The partition heals toward B and E; their acknowledgements give A a lease.
        cluster.blocked.remove([1, 2])
        cluster.blocked.remove([2, 1])
        cluster.blocked.remove([1, 5])
        cluster.blocked.remove([5, 1])
        cluster[1].tick()
        cluster.processReadies()
        cluster.deliver { $0.from == 1 }
        cluster.processReadies()
        try #require(cluster[2].role == .follower && cluster[2].leader == 1)
        cluster.deliver { $0.to == 1 }
        cluster.processReadies()
        try #require(cluster[1].hasValidLease, "A holds a lease over {A, B, E}")
        // From here on B's (and E's) answers to A are lost.
        cluster.isolate(1)
        cluster.network = []

        // B's stale pre-vote reaches D, which rejects it with C's term; B jumps to that term.
        cluster[4].step(heldPreVote)
        cluster.processReadies()
        cluster.deliver { $0.from == 4 && $0.to == 2 }
        cluster.processReadies()
        try #require(cluster[2].term == newTerm, "the rejection carried the new term")
        // C's vote request reaches B: B heard from A within the election timeout and must refuse.
        cluster[2].step(heldVote)
        cluster.processReadies()
        cluster.deliver { $0.to == 3 }
        cluster.processReadies()
        guard cluster[3].role == .leader else { return (false, false) }

        // C commits W with {C, D, B}; A, cut off, still believes its lease and serves a read.
        let proposed = cluster.propose("W", on: 3)
        let written = try #require(proposed)
        try #require(cluster[3].commitIndex >= written)
        try #require(cluster[1].role == .leader)
        cluster[1].readIndex(requestID: 99, mode: .lease)
        cluster.processReadies()
        let stale = cluster.readStates[0].contains { $0.requestID == 99 && $0.index < written }
        return (true, stale)
    }

    /// The same promise, seen from one follower: a higher-term message that is not from a leader
    /// (here a vote rejection) moves its term but it still refuses votes and pre-votes until an
    /// election timeout has passed since it last heard from the leader.
    @Test func aFollowerRefusesVotesUntilItsLeaderContactIsAnElectionTimeoutOld() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        let timeout = cluster[1].options.electionTimeout
        let term = cluster[2].term
        cluster.isolate(1)
        // A higher-term rejection from node 3 reaches node 2: its term moves, its leader is gone.
        cluster[2].step(
            Message(from: 3, to: 2, term: term + 1, payload: .voteResponse(VoteResponse(preVote: true, granted: false)))
        )
        try #require(cluster[2].term == term + 1 && cluster[2].leader == nil)
        cluster.processReadies()
        cluster.network = []
        let request = VoteRequest(
            preVote: false, lastLogIndex: cluster[3].lastIndex, lastLogTerm: cluster[3].lastTerm,
            leadershipTransfer: false)
        cluster[2].step(Message(from: 3, to: 2, term: term + 1, payload: .voteRequest(request)))
        cluster.processReadies()
        #expect(!cluster.network.contains { $0.isGrant }, "refused within the promise")
        var preVote = request
        preVote.preVote = true
        cluster[2].step(Message(from: 3, to: 2, term: term + 2, payload: .voteRequest(preVote)))
        cluster.processReadies()
        #expect(!cluster.network.contains { $0.isGrant }, "pre-votes too, whatever their term")
        cluster.network = []

        // Once the election timeout has passed since the last heartbeat, it votes again.
        for _ in 0..<timeout { cluster[2].tick() }
        cluster.processReadies()
        cluster.network = []
        cluster[2].step(Message(from: 3, to: 2, term: cluster[2].term, payload: .voteRequest(request)))
        cluster.processReadies()
        #expect(cluster.network.contains { $0.isGrant && $0.to == 3 })
    }

    /// A leadership transfer's vote requests set the promise aside (thesis §3.10), whatever the term.
    @Test func aTransferVoteIsGrantedWithinThePromise() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.transferLeadershipAndSettle(from: 1, to: 3)
        #expect(cluster[3].role == .leader)
    }
}

extension TestCluster {
    /// Removes and returns the in-flight messages that match.
    mutating func take(where predicate: (Message) -> Bool) -> [Message] {
        let taken = network.filter(predicate)
        network.removeAll(where: predicate)
        return taken
    }

    /// Delivers the in-flight messages that match, in order, and keeps the rest in flight.
    mutating func deliver(where predicate: (Message) -> Bool) {
        for message in take(where: predicate) where !blocked.contains([message.from, message.to]) {
            self[message.to].step(message)
        }
    }

    mutating func transferLeadershipAndSettle(from leader: NodeID, to target: NodeID) {
        self[leader].transferLeadership(to: target)
        settle()
    }
}

extension Message {
    func isVoteRequest(preVote: Bool) -> Bool {
        if case .voteRequest(let request) = payload { return request.preVote == preVote }
        return false
    }

    var isGrant: Bool {
        if case .voteResponse(let response) = payload { return response.granted }
        return false
    }
}
