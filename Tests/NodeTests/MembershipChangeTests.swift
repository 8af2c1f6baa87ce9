import Foundation
import Raft
import TestSupport
import Testing

@testable import Node

/// Membership changes on real nodes in this process: a node added at runtime is dialled from its
/// replicated member record, catches up by snapshot, is promoted by the leader, and the
/// configuration survives restarts whatever the flags say.
@Suite("Membership changes and leadership hand-over", .serialized)
struct MembershipChangeTests {
    typealias Cluster = ThreeNodeClusterTests.Cluster

    func eventually(within seconds: Double = 20, _ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        repeat {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        } while ContinuousClock.now < deadline
        return false
    }

    @Test func aLearnerAddedAtRuntimeCatchesUpBySnapshotIsPromotedAndSurvivesRestarts() async throws {
        let cluster = Cluster(compactionThreshold: 20)
        try await cluster.startAll()
        for index in 0..<60 { #expect(await cluster.write("k\(index)", "v\(index)") != nil) }
        let leader = try #require(await cluster.leader())
        #expect(await leader.status.snapshotIndex > 0, "the leader compacted: a new node needs a snapshot")

        let port = cluster.ports[1]! + 3
        cluster.ports[4] = port
        #expect(await leader.recordMissingMembers() == nil, "the bootstrap members' addresses are recorded")
        let recorded = await leader.recordMember(MemberRecord(id: 4, raft: "127.0.0.1:\(port)"))
        guard case .applied = recorded else {
            Issue.record("member record: \(recorded)")
            return
        }
        let added = await leader.changeMembership(.addLearner(4))
        guard case .applied = added else {
            Issue.record("add learner: \(added)")
            await cluster.stopAll()
            return
        }
        // A member cannot be added twice.
        #expect(await leader.changeMembership(.addLearner(4)) == .notApplied("invalidConfigurationChange"))

        var joiner = cluster.configuration(4)
        let base = await leader.baseConfiguration
        joiner.initialVoters = base.voters
        joiner.initialLearners = base.learners
        cluster.nodes[4] = try await RaftNode.start(joiner)
        let fourth = try #require(cluster.nodes[4])

        #expect(await eventually { await leader.status.configuration.isVoter(4) }, "promoted once caught up")
        #expect(await fourth.snapshotsInstalled >= 1, "caught up by snapshot")
        #expect(await eventually { await fourth.status.appliedIndex >= leader.status.commitIndex })
        for id: NodeID in [1, 2, 3] {
            let node = try #require(cluster.nodes[id])
            #expect(
                await eventually { await node.knownPeerAddresses[4] == "127.0.0.1:\(port)" },
                "n\(id) can dial n4 from its member record")
        }
        // Writes now need the new voter's quorum, and it takes part.
        #expect(await cluster.write("after-join", "yes") != nil)
        #expect(await eventually { await fourth.store.get("after-join")?.value == Array("yes".utf8) })

        // A restart whose flags describe another cluster keeps the persisted configuration.
        let restarted: NodeID = leader.id == 2 ? 3 : 2
        await cluster.crash(restarted)
        var flags = cluster.configuration(restarted)
        flags.initialVoters = [restarted]
        flags.peers = [restarted: ("127.0.0.1", cluster.ports[restarted]!)]
        cluster.nodes[restarted] = try await RaftNode.start(flags)
        let again = try #require(cluster.nodes[restarted])
        #expect(await again.status.configuration == ClusterConfiguration(voters: [1, 2, 3, 4]))
        #expect(await eventually { await again.knownPeerAddresses[4] == "127.0.0.1:\(port)" })
        #expect(await cluster.write("after-restart", "yes") != nil)
        #expect(await eventually { await again.store.get("after-restart")?.value == Array("yes".utf8) })
        await cluster.stopAll()
    }

    @Test func aDrainingLeaderHandsOverToTheMostCaughtUpVoterAndKeepsForwardingWrites() async throws {
        let cluster = Cluster()
        try await cluster.startAll()
        #expect(await cluster.write("before", "1") != nil)
        let leader = try #require(await cluster.leader())
        let target = try #require(await leader.handOffTarget)
        #expect(target != leader.id)
        let outcome = await leader.handOffLeadership(timeout: .seconds(5))
        #expect(outcome == .transferred(to: target) || outcome == .transferred(to: nil), "\(outcome)")
        #expect(await !leader.isLeader)
        let next = try #require(cluster.nodes[target])
        #expect(await eventually { await next.isLeader })
        // The old leader forwards a write to the new one.
        let command = StoreCommand(operation: .put(key: "through-old", value: Array("2".utf8)))
        var applied = false
        for _ in 0..<50 where !applied {
            if case .applied = await leader.write(command) {
                applied = true
            } else {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(applied)
        await cluster.stopAll()
    }

    /// A write the leader takes while it hands leadership over waits for the new leader and is
    /// forwarded to it, rather than failing when the old leader has stepped down but not yet heard
    /// who won.
    @Test func aWriteDuringAHandOverWaitsForTheNewLeader() async throws {
        let cluster = Cluster()
        try await cluster.startAll()
        #expect(await cluster.write("before", "1") != nil)
        for round in 0..<3 {
            let leader = try #require(await cluster.leader())
            let target = try #require(await leader.handOffTarget)
            #expect(await leader.beginTransferForTest(to: target))
            let command = StoreCommand(operation: .put(key: "during-\(round)", value: Array("v".utf8)))
            let outcome = await leader.write(command)
            guard case .applied = outcome else {
                Issue.record("round \(round): \(outcome)")
                break
            }
            #expect(await eventually { await cluster.leader() != nil })
        }
        await cluster.stopAll()
    }

    /// `peers` (initial voters) is only the bootstrap configuration: the first start writes it
    /// down, and a restart with other flags, before any snapshot was taken, keeps it.
    @Test func theBootstrapConfigurationIsPersistedOnTheFirstStart() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bootstrap-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = NodeConfiguration(
            id: 1, dataDirectory: root, raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1, 2, 3], peers: [:],
            clusterKey: .test)
        configuration.tickInterval = .seconds(60)  // no elections during the test
        let first = try await RaftNode.start(configuration)
        #expect(await first.status.configuration == ClusterConfiguration(voters: [1, 2, 3]))
        await first.stop()
        configuration.initialVoters = [1]
        let second = try await RaftNode.start(configuration)
        #expect(
            await second.status.configuration == ClusterConfiguration(voters: [1, 2, 3]),
            "the flags changed, not the cluster")
        #expect(await second.status.snapshotIndex == 0)
        await second.stop()
    }

    /// A joining node killed while writing its first base snapshot leaves only a `*.snap.tmp`: it
    /// is still fresh (it joins again), and a node that may not bootstrap refuses to start rather
    /// than becoming a one-node cluster of itself from its flags.
    @Test func aJoinerKilledWritingItsBaseSnapshotIsFreshAndNeverBootstrapsFromItsFlags() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("joiner-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/snapshots", withIntermediateDirectories: true)
        let leftover = root + "/snapshots/snapshot-0000000000000000-0000000000000000.snap.tmp"
        #expect(FileManager.default.createFile(atPath: leftover, contents: Data("half a snapshot".utf8)))
        #expect(!DataDirectory.holdsState(root), "an unfinished save is no state")
        var configuration = NodeConfiguration(
            id: 4, dataDirectory: root, raftHost: "127.0.0.1", raftPort: 0, initialVoters: [4], peers: [:],
            clusterKey: .test)
        configuration.tickInterval = .seconds(60)
        configuration.mayBootstrap = false
        await #expect(throws: BootstrapRefused.self) { _ = try await RaftNode.start(configuration) }
        #expect(!DataDirectory.holdsState(root), "no configuration was invented")
        configuration.mayBootstrap = true
        let node = try await RaftNode.start(configuration)
        #expect(DataDirectory.holdsState(root))
        await node.stop()
    }

    /// A follower installing a snapshot hears only capped heartbeats (commit 0: it holds nothing)
    /// and chunks: the chunk's snapshot index is what tells it how far the leader's commit is.
    @Test func aSnapshotChunkRaisesTheKnownLeaderCommit() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("chunk-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = NodeConfiguration(
            id: 2, dataDirectory: root, raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1, 2, 3], peers: [:],
            clusterKey: .test)
        configuration.tickInterval = .seconds(60)  // no elections: the node knows no leader
        let node = try await RaftNode.start(configuration)
        let metadata = SnapshotMetadata(index: 5000, term: 1, configuration: ClusterConfiguration(voters: [1, 2, 3]))
        await node.noteLeaderCommit(
            Message(from: 1, to: 2, term: 1, payload: .heartbeat(Heartbeat(commit: 0, sequence: 1, sentAt: 0))))
        await node.noteLeaderCommit(
            Message(
                from: 1, to: 2, term: 1,
                payload: .installSnapshot(InstallSnapshot(metadata: metadata, offset: 0, data: [], done: false))))
        #expect(await node.leaderCommitIndex == 5000)
        #expect(await node.status.appliedIndex == 0, "so it is 5000 entries behind, not ready")
        await node.stop()
    }

    /// The old leader steps down on the new one's vote request, before it hears who won: a write
    /// it held back must wait for that too, or it fails with no leader to forward to.
    @Test func aHeldBackWriteWaitsUntilALeaderIsKnown() {
        #expect(!LeadershipHandOff.isSettled(transferTarget: 2, role: .leader, leader: 1))
        #expect(!LeadershipHandOff.isSettled(transferTarget: nil, role: .follower, leader: nil))
        #expect(LeadershipHandOff.isSettled(transferTarget: nil, role: .follower, leader: 2))
        #expect(LeadershipHandOff.isSettled(transferTarget: nil, role: .leader, leader: 1), "transfer abandoned")
    }

    @Test func theHandOffTargetIsTheMostCaughtUpLiveVoter() {
        typealias F = LeadershipHandOff.Follower
        let configuration = ClusterConfiguration(voters: [1, 2, 3, 4], learners: [5])
        let followers = [
            F(id: 2, match: 90, isLearner: false, recentlyActive: true),
            F(id: 3, match: 95, isLearner: false, recentlyActive: true),
            F(id: 4, match: 99, isLearner: false, recentlyActive: false),
            F(id: 5, match: 100, isLearner: true, recentlyActive: true),
        ]
        #expect(LeadershipHandOff.target(followers: followers, configuration: configuration) == 3)
        let tied = [
            F(id: 3, match: 95, isLearner: false, recentlyActive: true),
            F(id: 2, match: 95, isLearner: false, recentlyActive: true),
        ]
        #expect(LeadershipHandOff.target(followers: tied, configuration: configuration) == 2)
        #expect(LeadershipHandOff.target(followers: [], configuration: configuration) == nil)
        #expect(LeadershipHandOff.target(followers: [followers[3]], configuration: configuration) == nil)
    }

    @Test func memberRecordsRoundTripAndRejectWhatIsNotOne() {
        let record = MemberRecord(id: 7, raft: "10.0.0.7:9097", http: "10.0.0.7:8087")
        #expect(record.key == "/_sys/members/7")
        #expect(MemberRecord(key: record.key, value: record.encoded) == record)
        #expect(MemberRecord(key: "/_sys/members/8", value: record.encoded) == nil, "the key names another id")
        #expect(MemberRecord(key: "/_sys/config/7", value: record.encoded) == nil)
        #expect(MemberRecord(key: record.key, value: Array("{".utf8)) == nil)
        #expect(record.raftEndpoint?.host == "10.0.0.7" && record.raftEndpoint?.port == 9097)
        #expect(MemberRecord.endpoint("no-port") == nil)
        #expect(MemberRecord.endpoint(":80") == nil)
        #expect(MemberRecord.endpoint("h:70000") == nil)
        for host in ["0.0.0.0", "::", "[::]", "0:0:0:0:0:0:0:0", "", "*"] {
            #expect(MemberRecord.isUnspecified(host: host), "\(host)")
        }
        for host in ["127.0.0.1", "10.0.0.0", "::1", "[fe80::1]", "node-0", "0.0.0.0.example"] {
            #expect(!MemberRecord.isUnspecified(host: host), "\(host)")
        }
        #expect(MemberRecord(id: 2, raft: "0.0.0.0:9097").dialableRaftEndpoint == nil)
    }

    /// A node bound to 0.0.0.0 records no address for itself, and a record holding a bind-all
    /// address never replaces the address a node has from its flags.
    @Test func unspecifiedHostsAreNeverRecordedNorLearned() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("wildcard-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = NodeConfiguration(
            id: 1, dataDirectory: root, raftHost: "0.0.0.0", raftPort: 0, initialVoters: [1, 2],
            peers: [2: ("127.0.0.2", 9097)], clusterKey: .test)
        configuration.tickInterval = .seconds(60)
        let node = try await RaftNode.start(configuration)
        #expect(await node.missingMemberRecords == [MemberRecord(id: 2, raft: "127.0.0.2:9097")])
        _ = await node.recordMember(MemberRecord(id: 2, raft: "0.0.0.0:9097"))
        #expect(await node.peerEndpoints[2]?.host == "127.0.0.2")
        await node.stop()
    }
}

extension RaftNode {
    /// Starts a leadership transfer without waiting for it, as a drain's first step does.
    func beginTransferForTest(to target: NodeID) -> Bool {
        catchUpTicks()
        let started = loop.core.transferLeadership(to: target)
        drain()
        return started
    }
}
