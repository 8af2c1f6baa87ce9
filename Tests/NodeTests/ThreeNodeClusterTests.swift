import Foundation
import Raft
import TestSupport
import Testing

@testable import Node

/// Three real nodes in this process: real sockets on 127.0.0.1, real data directories.
@Suite("Three nodes over TCP with durable logs", .serialized)
struct ThreeNodeClusterTests {
    final class Cluster {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cluster-\(UUID().uuidString)").path
        var ports: [NodeID: Int] = [:]
        var nodes: [NodeID: RaftNode] = [:]
        let compactionThreshold: UInt64

        init(compactionThreshold: UInt64 = 10_000) { self.compactionThreshold = compactionThreshold }

        func configuration(_ id: NodeID) -> NodeConfiguration {
            var peers: [NodeID: (host: String, port: Int)] = [:]
            for (peer, port) in ports { peers[peer] = ("127.0.0.1", port) }
            var configuration = NodeConfiguration(
                id: id, dataDirectory: root + "/node-\(id)", raftHost: "127.0.0.1", raftPort: ports[id] ?? 0,
                initialVoters: [1, 2, 3], peers: peers, clusterKey: .test)
            configuration.tickInterval = .milliseconds(10)
            configuration.compactionThreshold = compactionThreshold
            return configuration
        }

        func startAll() async throws {
            // Fixed ports, not ephemeral ones: a restarted node must get its port back.
            if ports.isEmpty {
                let base = TestPorts.block()
                for id: NodeID in [1, 2, 3] { ports[id] = base + Int(id) }
            }
            for id: NodeID in [1, 2, 3] { try await start(id) }
        }

        func start(_ id: NodeID) async throws {
            nodes[id] = try await RaftNode.start(configuration(id))
        }

        func crash(_ id: NodeID) async {
            await nodes[id]?.stop()
            nodes[id] = nil
        }

        /// Polls until exactly one running node leads, or fails after `seconds`.
        func leader(within seconds: Double = 20) async -> RaftNode? {
            let deadline = ContinuousClock.now + .seconds(seconds)
            while ContinuousClock.now < deadline {
                for node in nodes.values where await node.isLeader { return node }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return nil
        }

        /// Writes through whoever leads, retrying while leadership settles.
        func write(_ key: String, _ value: String, within seconds: Double = 20) async -> WriteOutcome? {
            let deadline = ContinuousClock.now + .seconds(seconds)
            let command = StoreCommand(operation: .put(key: key, value: Array(value.utf8)), idempotencyKey: key + value)
            while ContinuousClock.now < deadline {
                if let leader = await leader(within: 5) {
                    let outcome = await leader.write(command)
                    if case .applied = outcome { return outcome }
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return nil
        }

        func stopAll() async {
            for id in Array(nodes.keys) { await crash(id) }
        }

        deinit { try? FileManager.default.removeItem(atPath: root) }
    }

    func value(_ outcome: ReadOutcome) -> String? {
        guard case .value(let record, _) = outcome, let record else { return nil }
        return String(decoding: record.value, as: UTF8.self)
    }

    @Test func leaderCrashLosesNothingAndTheOldNodeCatchesUp() async throws {
        let cluster = Cluster()
        try await cluster.startAll()
        for index in 0..<20 {
            let outcome = await cluster.write("k\(index)", "v\(index)")
            #expect(outcome != nil, "write \(index) acknowledged")
        }
        let oldLeader = try #require(await cluster.leader())
        let oldID = oldLeader.id
        await cluster.crash(oldID)
        let newLeader = try #require(await cluster.leader(), "a new leader is elected")
        #expect(newLeader.id != oldID)
        for index in 0..<20 {
            let outcome = await newLeader.read("k\(index)", consistency: .linearizable)
            #expect(value(outcome) == "v\(index)", "\(outcome)")
        }
        for index in 20..<30 { #expect(await cluster.write("k\(index)", "v\(index)") != nil) }
        // Every running node, followers included, serves linearizable reads (forwarded ReadIndex).
        for node in cluster.nodes.values {
            #expect(value(await node.read("k29", consistency: .linearizable)) == "v29")
        }
        try await cluster.start(oldID)
        let restarted = try #require(cluster.nodes[oldID])
        let deadline = ContinuousClock.now + .seconds(20)
        while value(await restarted.read("k29", consistency: .stale(maxStaleness: nil))) != "v29"
            && ContinuousClock.now < deadline
        {
            try await Task.sleep(for: .milliseconds(20))
        }
        for index in 0..<30 {
            #expect(value(await restarted.read("k\(index)", consistency: .stale(maxStaleness: nil))) == "v\(index)")
        }
        await cluster.stopAll()
    }

    @Test func followersForwardWritesToTheLeader() async throws {
        let cluster = Cluster()
        try await cluster.startAll()
        let leader = try #require(await cluster.leader())
        #expect(await cluster.write("warm", "up") != nil)
        for node in cluster.nodes.values where node.id != leader.id {
            let outcome = await node.write(
                StoreCommand(operation: .put(key: "from-\(node.id)", value: [1]), condition: .absent))
            guard case .applied(.applied, _) = outcome else {
                Issue.record("forwarded write from n\(node.id): \(outcome)")
                continue
            }
            #expect(await leader.read("from-\(node.id)", consistency: .linearizable) != .unavailable)
            // The same condition again fails on the leader, and the follower is told so.
            let again = await node.write(
                StoreCommand(operation: .put(key: "from-\(node.id)", value: [2]), condition: .absent))
            guard case .applied(.conditionFailed, _) = again else {
                Issue.record("second create-only write should fail its condition: \(again)")
                continue
            }
        }
        await cluster.stopAll()
    }

    /// Membership (SWIM) suspects the leader: a follower stops forwarding to it at once — writes
    /// answer "no leader" instead of waiting for a forward timeout — and resumes when it is alive.
    @Test func aSuspectedLeaderIsNotForwardedTo() async throws {
        let cluster = Cluster()
        try await cluster.startAll()
        let leader = try #require(await cluster.leader())
        #expect(await cluster.write("warm", "up") != nil)
        let follower = try #require(cluster.nodes.values.first { $0.id != leader.id })
        await follower.membershipChanged(peer: leader.id, reachable: false, dead: false)
        let started = ContinuousClock.now
        let refused = await follower.write(StoreCommand(operation: .put(key: "k", value: [1]), condition: .none))
        #expect(refused == .notLeader(leader: nil))
        #expect(ContinuousClock.now - started < .seconds(1), "no forward timeout was waited")
        await follower.membershipChanged(peer: leader.id, reachable: true, dead: false)
        let forwarded = await follower.write(StoreCommand(operation: .put(key: "k", value: [2]), condition: .none))
        guard case .applied = forwarded else {
            Issue.record("forwarding resumes once the leader is alive: \(forwarded)")
            await cluster.stopAll()
            return
        }
        await cluster.stopAll()
    }

    @Test func readConsistencies() async throws {
        let cluster = Cluster()
        try await cluster.startAll()
        #expect(await cluster.write("a/1", "x") != nil)
        #expect(await cluster.write("a/2", "y") != nil)
        #expect(await cluster.write("b/1", "z") != nil)
        let leader = try #require(await cluster.leader())
        for node in cluster.nodes.values {
            #expect(value(await node.read("a/2", consistency: .lease)) == "y")
            let keys = await node.range(prefix: "a/", consistency: .linearizable, includeReserved: false)?.rows.map(
                \.key)
            #expect(keys == ["a/1", "a/2"])
        }
        // A follower cut off from the leader refuses bounded stale reads once the bound passes,
        // but still answers unbounded ones from what it has.
        let follower = try #require(cluster.nodes.values.first { $0.id != leader.id })
        for other in cluster.nodes.values where other.id != follower.id { await cluster.crash(other.id) }
        let deadline = ContinuousClock.now + .seconds(10)
        while await follower.read("a/1", consistency: .stale(maxStaleness: .milliseconds(50))) != .unavailable,
            ContinuousClock.now < deadline
        {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(await follower.read("a/1", consistency: .stale(maxStaleness: .milliseconds(50))) == .unavailable)
        #expect(value(await follower.read("a/1", consistency: .stale(maxStaleness: nil))) == "x")
        #expect(await follower.read("a/1", consistency: .linearizable) == .unavailable)
        await cluster.stopAll()
    }

    /// A range read's snapshot is taken after its barrier, on every node: it reflects at least the
    /// index the barrier confirmed, which covers every write acknowledged before the read began,
    /// and it stays as it was while later writes apply (the scan runs off the actor on it).
    @Test func rangeSnapshotsFollowTheBarrierAndIgnoreLaterWrites() async throws {
        /// A read refused while leadership changes (its barrier fails: no answer rather than a
        /// stale one) is asked again, as a client would.
        func snapshot(_ node: RaftNode, _ consistency: ReadConsistency) async -> RangeSnapshot? {
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                if let snapshot = await node.rangeSnapshot(consistency) { return snapshot }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return nil
        }
        let cluster = Cluster()
        try await cluster.startAll()
        var acknowledged: UInt64 = 0
        for index in 0..<10 {
            guard case .applied(_, let logIndex) = await cluster.write("r/\(index)", "v") else {
                Issue.record("write \(index) was not acknowledged")
                await cluster.stopAll()
                return
            }
            acknowledged = logIndex
        }
        let leader = try #require(await cluster.leader())
        for node in cluster.nodes.values {
            for consistency in [ReadConsistency.linearizable, .lease] {
                let snapshot = try #require(await snapshot(node, consistency), "n\(node.id) \(consistency)")
                #expect(snapshot.confirmedIndex >= acknowledged, "the barrier covers every acknowledged write")
                #expect(snapshot.appliedIndex >= snapshot.confirmedIndex, "taken once the barrier's index applied")
                #expect(snapshot.index.range(prefix: "r/").count == 10)
            }
        }
        let before = try #require(await snapshot(leader, .linearizable))
        for index in 10..<20 { #expect(await cluster.write("r/\(index)", "v") != nil) }
        // Retried (with an idempotency key, so once) while leadership settles, like `write`.
        let delete = StoreCommand(operation: .delete(key: "r/0"), idempotencyKey: "delete r/0")
        var deleted = false
        let deadline = ContinuousClock.now + .seconds(20)
        while !deleted, ContinuousClock.now < deadline, let current = await cluster.leader(within: 5) {
            if case .applied(.applied, _) = await current.write(delete) { deleted = true }
        }
        #expect(deleted)
        #expect(before.index.range(prefix: "r/").map(\.key) == (0..<10).map { "r/\($0)" }.sorted())
        for node in cluster.nodes.values {
            let after = try #require(await snapshot(node, .linearizable))
            #expect(
                after.index.range(prefix: "r/").count == 19, "n\(node.id) sees every acknowledged write, and the delete"
            )
            #expect(after.revision > before.revision)
            // The same through the off-actor scan.
            var rows: [(key: String, record: KeyValueStore.Record)]?
            let deadline = ContinuousClock.now + .seconds(20)
            while rows == nil, ContinuousClock.now < deadline {
                rows = await node.range(prefix: "r/", consistency: .linearizable, includeReserved: false)?.rows
                if rows == nil { try? await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(rows?.count == 19)
        }
        await cluster.stopAll()
    }

    /// The barrier, deterministically: a follower whose applies are held back (the leader's
    /// appends to it are dropped; heartbeats and the answers to its reads still arrive) gets its
    /// range reads' barriers confirmed at an index it has not applied, and answers neither read —
    /// the off-actor scan nor the snapshot — until it has applied that index, which covers a
    /// write acknowledged before the reads began.
    @Test func aFollowerRangeReadWaitsUntilItHasAppliedTheBarrierIndex() async throws {
        let cluster = Cluster()
        try await cluster.startAll()
        #expect(await cluster.write("w/0", "before") != nil)
        let leader = try #require(await cluster.leader())
        let follower = try #require(cluster.nodes.values.first { $0.id != leader.id })
        await follower.setDropsInbound { message in
            switch message.payload {
            case .appendEntries, .installSnapshot: true
            default: false
            }
        }
        guard case .applied(_, let acknowledged) = await cluster.write("w/1", "held back") else {
            Issue.record("the write was not acknowledged")
            await cluster.stopAll()
            return
        }
        #expect(await follower.status.appliedIndex < acknowledged)
        // Asked again if a barrier fails while leadership changes, as a client would.
        let deadline = ContinuousClock.now + .seconds(20)
        let snapshotRead = Task {
            while ContinuousClock.now < deadline {
                if let snapshot = await follower.rangeSnapshot(.linearizable) { return Optional(snapshot) }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return nil
        }
        let rangeRead = Task {
            while ContinuousClock.now < deadline {
                if let answer = await follower.range(prefix: "w/", consistency: .linearizable, includeReserved: false) {
                    return Optional(answer.rows.map(\.key))
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return nil
        }
        while await follower.readsWaitingForApply < 2, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(await follower.readsWaitingForApply == 2, "both barriers confirmed, both reads waiting")
        #expect(await follower.status.appliedIndex < acknowledged, "still held back: neither read has answered")
        await follower.setDropsInbound(nil)
        let snapshot = try #require(await snapshotRead.value)
        #expect(snapshot.confirmedIndex >= acknowledged)
        #expect(snapshot.appliedIndex >= snapshot.confirmedIndex)
        #expect(snapshot.index.range(prefix: "w/").map(\.key) == ["w/0", "w/1"])
        #expect(await rangeRead.value == ["w/0", "w/1"])
        await cluster.stopAll()
    }

    @Test func laggingNodeCatchesUpThroughAnInstallSnapshotOverTCP() async throws {
        let cluster = Cluster(compactionThreshold: 8)
        try await cluster.startAll()
        #expect(await cluster.write("first", "1") != nil)
        let leader = try #require(await cluster.leader())
        let follower = try #require([NodeID(1), 2, 3].first { $0 != leader.id })
        await cluster.crash(follower)
        for index in 0..<40 { #expect(await cluster.write("k\(index)", "v\(index)") != nil) }
        try await cluster.start(follower)
        let restarted = try #require(cluster.nodes[follower])
        let deadline = ContinuousClock.now + .seconds(20)
        while value(await restarted.read("k39", consistency: .stale(maxStaleness: nil))) != "v39"
            && ContinuousClock.now < deadline
        {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(await restarted.snapshotsInstalled >= 1, "the log it missed was compacted away")
        for index in 0..<40 {
            #expect(value(await restarted.read("k\(index)", consistency: .stale(maxStaleness: nil))) == "v\(index)")
        }
        #expect(value(await restarted.read("first", consistency: .stale(maxStaleness: nil))) == "1")
        await cluster.stopAll()
    }

    @Test func wholeClusterRestartsFromDisk() async throws {
        let cluster = Cluster(compactionThreshold: 16)
        try await cluster.startAll()
        for index in 0..<25 { #expect(await cluster.write("k\(index)", "v\(index)") != nil) }
        await cluster.stopAll()
        // A crash mid-write leaves a torn record at the end of a WAL: it is cut off on restart.
        let wal = cluster.root + "/node-1/wal"
        let newest = try #require(try FileManager.default.contentsOfDirectory(atPath: wal).sorted().last)
        let handle = try #require(FileHandle(forWritingAtPath: wal + "/" + newest))
        handle.seekToEndOfFile()
        handle.write(Data([200, 0, 0, 0, 1, 2]))
        try handle.close()
        try await cluster.startAll()
        let leader = try #require(await cluster.leader())
        for index in 0..<25 {
            #expect(value(await leader.read("k\(index)", consistency: .linearizable)) == "v\(index)")
        }
        await cluster.stopAll()
    }
}
