import Testing

@testable import Raft

@Suite("Commit propagation to followers")
struct CommitPropagationTests {
    /// Followers apply a write as soon as the leader's commit reaches them — no tick needed. They
    /// used to wait for the next tick's heartbeat, which put a tick (50 ms) between a write and
    /// every follower's watchers and config caches.
    @Test func followersApplyACommittedWriteWithoutWaitingForATick() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.propose("x", on: 1)
        for id: NodeID in [1, 2, 3] { #expect(cluster.appliedCommands(id) == ["x"], "n\(id)") }
    }

    /// The heartbeat that carries it is an ordinary heartbeat round: reads it confirms are sound.
    @Test func theCommitHeartbeatConfirmsReadsLikeAnyRound() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster[1].readIndex(requestID: 7, mode: .linearizable)
        cluster.propose("y", on: 1)
        #expect(cluster.readStates[0].map(\.requestID) == [7])
        #expect(cluster.appliedCommands(2) == ["y"])
    }
}

@Suite("Commit propagation to the slower follower")
struct SlowerFollowerCommitTests {
    /// The entry commits on the faster follower's acknowledgement; the slower follower's arrives
    /// afterwards and it is told of the commit at once, not at the next tick's heartbeat.
    @Test func theFollowerWhoseAckCameLateLearnsTheCommitWithoutATick() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        _ = cluster[1].propose(Array("x".utf8))
        cluster.processReadies()
        // Node 3's acknowledgement is held back until the entry has committed on node 2's.
        cluster.deliverOnce()
        cluster.processReadies()
        let late = cluster.take { $0.from == 3 && $0.to == 1 }
        cluster.deliver { $0.to == 1 }
        cluster.processReadies()
        try #require(cluster[1].commitIndex == cluster[1].lastIndex, "committed on node 2's acknowledgement")
        cluster.network.removeAll { $0.to == 3 }  // the commit round's heartbeat to 3 said only what 3 held then
        for message in late { cluster[1].step(message) }
        cluster.settle()  // messages only, no tick
        #expect(cluster.appliedCommands(3) == ["x"])
    }
}

@Suite("Probes under commit heartbeats")
struct ProbeRateTests {
    /// Commits broadcast heartbeats, and a follower in probe state answers each. The leader still
    /// sends it at most one probe per heartbeat interval, not one per commit: on a slow link the
    /// same large probe would otherwise go out again and again and fill the peer queue.
    @Test func aLaggingFollowerGetsOneProbePerHeartbeatIntervalNotOnePerCommit() throws {
        var cluster = try TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.isolate(3)
        for round in 0..<5 { cluster.propose("before-\(round)", on: 1) }
        cluster.heal()
        let follower = try #require(cluster[1].progressIndex(of: 3))
        cluster[1].progress[follower].becomeProbe()
        var probes = 0
        for round in 0..<6 {
            _ = cluster[1].propose(Array("during-\(round)".utf8))
            for _ in 0..<4 {
                cluster.processReadies()
                // The probes are lost on the slow link; everything else arrives.
                probes += cluster.take { $0.from == 1 && $0.to == 3 && $0.isAppend }.count
                cluster.deliver { _ in true }
            }
        }
        #expect(cluster[1].commitIndex > 8, "the commits happened, each with its heartbeat")
        #expect(probes <= 1, "one probe within the interval, whatever the number of commits (got \(probes))")
    }
}

extension Message {
    var isAppend: Bool {
        if case .appendEntries = payload { return true }
        return false
    }
}
