import Testing

@testable import Raft

@Suite("Log replication (paper §5.3, §5.4)")
struct ReplicationTests {
    @Test func writesReplicateAndApplyEverywhereInOrder() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        for text in ["a", "b", "c"] { cluster.propose(text, on: 1) }
        cluster.tick(2)
        for id: NodeID in [1, 2, 3] { #expect(cluster.appliedCommands(id) == ["a", "b", "c"]) }
    }

    @Test func followersRejectProposals() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        let outcome1 = cluster[2].propose([1])
        #expect(outcome1 == .rejected(.notLeader(leader: 1)))
    }

    @Test func newLeaderCommitsANoopOfItsTerm() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        let term = cluster[1].term
        #expect(cluster.applied[0].contains { $0.kind == .noop && $0.term == term })
    }

    @Test func proposalsAreBatchedIntoOneAppendPerFollower() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        for value in 0..<100 { _ = cluster[1].propose([UInt8(value)]) }
        let ready = cluster[1].ready()
        let appends = ready.messages.filter { if case .appendEntries = $0.payload { true } else { false } }
        #expect(appends.count == 2)
        for message in appends {
            guard case .appendEntries(let append) = message.payload else { continue }
            #expect(append.entries.count == 100)
        }
    }

    @Test func inflightWindowBoundsUnacknowledgedAppends() throws {
        var cluster = try TestCluster(voters: [1, 2]) {
            $0.maxInflightMessages = 2
            $0.maxMessageBytes = 1
        }
        cluster.elect(1)
        for value in 0..<10 { _ = cluster[1].propose([UInt8(value)]) }
        let ready = cluster[1].ready()
        let appends = ready.messages.filter { if case .appendEntries = $0.payload { true } else { false } }
        // One entry per message (tiny byte limit), at most two outstanding.
        #expect(appends.count == 2)
        cluster[1].advance()
    }

    @Test func earlierTermEntryIsNotCommittedByCountingReplicas() throws {
        // Paper Figure 8: node 1 leads term 3 holding an entry of term 2 that node 2 also holds.
        let configuration = RestoredState.bootstrap(voters: [1, 2, 3]).snapshot
        let log = [LogEntry(index: 1, term: 1), LogEntry(index: 2, term: 2, data: [2])]
        var leader = try RaftCore.handElected(
            restoring: RestoredState(hardState: HardState(term: 2), snapshot: configuration, entries: log))
        #expect(leader.role == .leader)
        #expect(leader.term == 3)
        _ = leader.ready()
        leader.advance()
        // Node 2 acknowledges index 2 (the term-2 entry): a majority holds it, yet it must not commit.
        leader.step(Message(from: 2, to: 1, term: 3, payload: .appendResponse(AppendResponse(success: true, index: 2))))
        #expect(leader.commitIndex == 0)
        // Once the term-3 no-op at index 3 is on a majority, everything up to 3 commits.
        leader.step(Message(from: 2, to: 1, term: 3, payload: .appendResponse(AppendResponse(success: true, index: 3))))
        #expect(leader.commitIndex == 3)
    }

    @Test func divergentFollowerLogIsRepairedUsingConflictHints() throws {
        // Node 3 holds a long run of entries from a term nobody else has.
        let base = RestoredState.bootstrap(voters: [1, 2, 3]).snapshot
        let common = [LogEntry(index: 1, term: 1)]
        let stale = (2...40).map { LogEntry(index: UInt64($0), term: 2, data: [9]) }
        let good = (2...5).map { LogEntry(index: UInt64($0), term: 3, data: [7]) }
        func node(_ id: NodeID, _ entries: [LogEntry], term: UInt64) throws -> RaftCore {
            try RaftCore(
                options: RaftOptions(id: id),
                restoring: RestoredState(hardState: HardState(term: term), snapshot: base, entries: entries))
        }
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster[1] = try node(1, common + good, term: 3)
        cluster[2] = try node(2, common + good, term: 3)
        cluster[3] = try node(3, common + stale, term: 2)
        cluster.elect(1)
        var rejections = 0
        for _ in 0..<20 {
            cluster.processReadies()
            for message in cluster.network where message.to == 1 {
                if case .appendResponse(let response) = message.payload, !response.success, response.index > 0 {
                    rejections += 1
                }
            }
            cluster.deliverOnce()
        }
        cluster.tick(3)
        #expect(cluster[3].lastIndex == cluster[1].lastIndex)
        for index in 1...cluster[1].lastIndex { #expect(cluster[3].term(at: index) == cluster[1].term(at: index)) }
        // One hint skips the whole term-2 run instead of one index per round trip.
        #expect(rejections <= 3)
    }

    @Test func lostAppendIsRetransmitted() throws {
        var cluster = try TestCluster(voters: [1, 2])
        cluster.elect(1)
        _ = cluster[1].propose(Array("lost".utf8))
        cluster.processReadies()
        cluster.network = []  // the append is lost
        cluster.tick(10)
        #expect(cluster.appliedCommands(2) == ["lost"])
    }

    @Test func committedEntriesAreNotAppliedTwiceAfterDuplicateMessages() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        _ = cluster[1].propose(Array("once".utf8))
        cluster.processReadies()
        cluster.network += cluster.network  // duplicate everything
        cluster.settle()
        cluster.tick(2)
        for id: NodeID in [1, 2, 3] { #expect(cluster.appliedCommands(id) == ["once"]) }
    }
}

@Suite("Durability before acknowledgement (paper Figure 2)")
struct DurabilityTests {
    @Test func leaderCountsItsOwnEntryOnlyOnceDurable() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        guard case .accepted(let index, _) = cluster[1].propose([42]) else {
            Issue.record("leader must accept")
            return
        }
        let ready = cluster[1].ready()  // handed out, not yet persisted (no advance)
        #expect(ready.entries.map(\.index) == [index])
        cluster[1].step(
            Message(
                from: 2, to: 1, term: cluster[1].term,
                payload: .appendResponse(AppendResponse(success: true, index: index))))
        #expect(cluster[1].commitIndex < index, "one follower plus an unpersisted leader is not a durable majority")
        cluster[1].advance()
        #expect(cluster[1].commitIndex == index)
    }

    @Test func votesAndAcknowledgementsComeOnlyInReadyAfterThePersistedState() throws {
        var follower = try RaftCore(options: RaftOptions(id: 2), restoring: .bootstrap(voters: [1, 2]))
        let append = AppendEntries(
            prevLogIndex: 0, prevLogTerm: 0, entries: [LogEntry(index: 1, term: 1, data: [1])], leaderCommit: 0)
        follower.step(Message(from: 1, to: 2, term: 1, payload: .appendEntries(append)))
        let ready = follower.ready()
        // The acknowledgement travels in the same Ready as the entry and term it promises are durable.
        #expect(ready.entries.map(\.index) == [1])
        #expect(ready.hardState?.term == 1)
        #expect(ready.messages.contains { $0.payload == .appendResponse(AppendResponse(success: true, index: 1)) })
    }
}
