import Testing

@testable import Raft

@Suite("Linearizable reads: ReadIndex and leases (thesis §6.4)")
struct ReadTests {
    @Test func readIndexWaitsForAHeartbeatQuorum() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.propose("w", on: 1)
        cluster[1].readIndex(requestID: 7)
        cluster.processReadies()
        #expect(cluster.readStates[0].isEmpty, "not confirmed before any follower answered")
        cluster.deliverOnce()  // heartbeats reach followers
        cluster.processReadies()
        cluster.deliverOnce()  // their answers reach the leader
        cluster.processReadies()
        #expect(cluster.readStates[0] == [ReadState(requestID: 7, index: cluster[1].commitIndex)])
    }

    @Test func readIndexIsNotConfirmedWithoutAQuorum() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.isolate(1)
        cluster[1].readIndex(requestID: 1)
        cluster.settle()
        #expect(cluster.readStates[0].isEmpty)
        // When the isolated leader steps down, the read fails instead of hanging.
        cluster.tick(2 * cluster[1].options.electionTimeout, only: [1])
        #expect(cluster.failedReads[0] == [1])
        #expect(cluster.readStates[0].isEmpty)
    }

    @Test func readsWaitUntilTheLeaderCommittedInItsTerm() throws {
        var leader = try RaftCore.handElected(restoring: .bootstrap(voters: [1, 2, 3]))
        #expect(leader.role == .leader)
        _ = leader.ready()
        leader.advance()
        leader.readIndex(requestID: 3, mode: .linearizable)
        // The followers answer a heartbeat, but the no-op of this term is not committed yet.
        leader.tick()
        for follower: NodeID in [2, 3] {
            leader.step(
                Message(
                    from: follower, to: 1, term: 1,
                    payload: .heartbeatResponse(HeartbeatResponse(sequence: 1, sentAt: 1))))
        }
        let outcome1 = leader.ready()
        #expect(outcome1.readStates.isEmpty)
        leader.advance()
        // The no-op commits; the read gets a fresh heartbeat round and is then confirmed.
        leader.step(Message(from: 2, to: 1, term: 1, payload: .appendResponse(AppendResponse(success: true, index: 1))))
        #expect(leader.commitIndex == 1)
        let ready = leader.ready()
        leader.advance()
        #expect(ready.readStates.isEmpty, "confirmed only by a heartbeat round sent after registration")
        let heartbeat = try #require(
            ready.messages.compactMap { message -> Heartbeat? in
                if case .heartbeat(let heartbeat) = message.payload { return heartbeat }
                return nil
            }.last)
        leader.step(
            Message(
                from: 3, to: 1, term: 1,
                payload: .heartbeatResponse(HeartbeatResponse(sequence: heartbeat.sequence, sentAt: heartbeat.sentAt))))
        let outcome2 = leader.ready()
        #expect(outcome2.readStates == [ReadState(requestID: 3, index: 1)])
    }

    @Test func followerReadsAreForwardedToTheLeader() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.propose("w", on: 1)
        cluster[2].readIndex(requestID: 11)
        cluster.settle()
        cluster.tick(1)
        let state = try #require(cluster.readStates[1].first)
        #expect(state.requestID == 11)
        #expect(state.index == cluster[1].commitIndex)
    }

    @Test func followerWithoutLeaderFailsReadsAtOnce() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster[2].readIndex(requestID: 5)
        cluster.processReadies()
        #expect(cluster.failedReads[1] == [5])
    }

    @Test func lostForwardedReadsExpire() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.blocked.insert([2, 1])
        cluster[2].readIndex(requestID: 8)
        cluster.tick(cluster[2].options.electionTimeout + 1, only: [1, 2])
        #expect(cluster.failedReads[1] == [8])
    }

    @Test func leaseReadIsServedAtOnceWhileTheLeaseHolds() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.tick(2)
        #expect(cluster[1].hasValidLease)
        cluster[1].readIndex(requestID: 1, mode: .lease)
        let ready = cluster[1].ready()
        #expect(ready.readStates == [ReadState(requestID: 1, index: cluster[1].commitIndex)])
        cluster[1].advance()
    }

    @Test func leaseLapsesWithoutAcknowledgementsAndReadsFallBack() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.tick(2)
        cluster.isolate(1)
        let lease = cluster[1].options.leaseDuration
        cluster.tick(lease, only: [1])
        #expect(!cluster[1].hasValidLease)
        #expect(cluster[1].role == .leader, "still leader by CheckQuorum, but the lease is gone")
        cluster[1].readIndex(requestID: 2, mode: .lease)
        cluster.processReadies()
        #expect(cluster.readStates[0].isEmpty, "must not serve from an expired lease")
    }

    @Test func noLeaseOnceTimeoutNowWasSent() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.tick(2)
        #expect(cluster[1].hasValidLease)
        cluster.blocked.insert([1, 2])  // the TimeoutNow is held up
        let outcome3 = cluster[1].transferLeadership(to: 2)
        #expect(outcome3)
        cluster.tick(cluster[1].options.electionTimeout + 1, only: [1, 3])
        #expect(cluster[1].transferTarget == nil, "the transfer was abandoned")
        #expect(!cluster[1].hasValidLease, "a delayed TimeoutNow may still elect node 2")
    }
}
