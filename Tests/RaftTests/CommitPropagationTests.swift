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
