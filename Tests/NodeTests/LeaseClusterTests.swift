import Foundation
import NIOConcurrencyHelpers
import Raft
import Testing

@testable import Node

/// Polls `condition` every 10 ms until it holds or `seconds` pass; asked at least once.
func eventually(within seconds: Double = 10, _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .seconds(seconds)
    repeat {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    } while ContinuousClock.now < deadline
    return false
}

/// Leases, the change feed and the config cache on three real nodes in this process.
@Suite("Leases and config across three nodes", .serialized)
struct LeaseClusterTests {
    typealias Cluster = ThreeNodeClusterTests.Cluster

    static func grant(_ id: UInt64, ttlMilliseconds: UInt64, via node: RaftNode) async -> Bool {
        let outcome = await node.write(
            StoreCommand(
                operation: .grantLease(id: id, ttlMilliseconds: ttlMilliseconds), idempotencyKey: "grant-\(id)"))
        return outcome == .applied(.leaseGranted(id: id), index: outcome.index)
    }

    static func put(_ key: String, lease: UInt64 = 0, via node: RaftNode) async -> Bool {
        let outcome = await node.write(StoreCommand(operation: .put(key: key, value: [1]), lease: lease))
        guard case .applied(.applied, _) = outcome else { return false }
        return true
    }

    static func has(_ key: String, on node: RaftNode) async -> Bool {
        guard case .value(let record, _) = await node.read(key, consistency: .stale(maxStaleness: nil)) else {
            return false
        }
        return record != nil
    }

    /// Runs `body` on a started cluster and stops the cluster afterwards, also when it throws.
    static func withCluster(
        compactionThreshold: UInt64 = 10_000, _ body: (Cluster) async throws -> Void
    ) async throws {
        let cluster = Cluster(compactionThreshold: compactionThreshold)
        try await cluster.startAll()
        do {
            try await body(cluster)
        } catch {
            await cluster.stopAll()
            throw error
        }
        await cluster.stopAll()
    }

    /// The other nodes, once each knows who leads: a follower that has not yet heard from a new
    /// leader cannot forward a write to it (it answers "no leader" instead).
    static func followers(_ cluster: Cluster, of leader: RaftNode) async -> [RaftNode] {
        let followers = cluster.nodes.values.filter { $0.id != leader.id }.sorted { $0.id < $1.id }
        for follower in followers {
            _ = await eventually { await follower.status.leader == leader.id }
        }
        return followers
    }

    @Test func onlyTheLeaderDecidesExpiryAndKeepalivesThroughAFollowerHoldTheLease() async throws {
        try await Self.withCluster { cluster in
            let leader = try #require(await cluster.leader())
            let follower = await Self.followers(cluster, of: leader)[0]
            #expect(await Self.grant(11, ttlMilliseconds: 1000, via: follower))
            #expect(await Self.put("held", lease: 11, via: follower))
            let term = await leader.status.term
            #expect(await eventually { leader.lessor.activeTerm == term }, "the leader runs the lease clocks")
            for node in await Self.followers(cluster, of: leader) { #expect(node.lessor.activeTerm == nil) }

            // Three TTLs of keepalives through a follower: forwarded to the leader, they hold it.
            let answers = NIOLockedValueBox<[LeaseAnswer]>([])
            let until = ContinuousClock.now + .seconds(3)
            while ContinuousClock.now < until {
                let answer = await follower.keepAlive(11)
                answers.withLockedValue { $0.append(answer) }
                try await Task.sleep(for: .milliseconds(100))
            }
            let found = answers.withLockedValue { $0 }.filter { if case .found = $0 { true } else { false } }
            #expect(found.count == answers.withLockedValue { $0.count }, "\(answers.withLockedValue { $0 })")
            for node in cluster.nodes.values { #expect(await Self.has("held", on: node), "n\(node.id) still holds it") }

            // Keepalives stop: the leader expires the lease and every node applies its revoke.
            for node in cluster.nodes.values {
                #expect(await eventually { !(await Self.has("held", on: node)) }, "n\(node.id) applied the revoke")
                #expect(await node.storeStatus.leases == 0)
            }
            for node in await Self.followers(cluster, of: leader) {
                #expect(node.lessor.activeTerm == nil, "followers never ran the lease clocks")
            }
            #expect(await follower.keepAlive(11) == .notFound)
        }
    }

    @Test func aNewLeaderRestartsEveryTTLInFullAndThenExpiresTheLease() async throws {
        try await Self.withCluster { cluster in
            let leader = try #require(await cluster.leader())
            let ttl: UInt64 = 2000
            #expect(await Self.grant(21, ttlMilliseconds: ttl, via: leader))
            #expect(await Self.put("session", lease: 21, via: leader))
            guard case .found = await leader.keepAlive(21) else {
                Issue.record("the leader keeps the lease alive")
                return
            }
            // The old leader's deadline is now about 2 s away; let 0.8 s of it pass, then crash it.
            try await Task.sleep(for: .milliseconds(800))
            let crashedAt = ContinuousClock.now
            await cluster.crash(leader.id)
            let successor = try #require(await cluster.leader(), "a new leader")
            var status: LeaseAnswer = .unavailable("not asked")
            #expect(
                await eventually {
                    status = await successor.leaseStatus(21)
                    if case .found = status { return true }
                    return false
                })
            let askedAt = ContinuousClock.now
            guard case .found(let info) = status else { return }
            // The new leader counts the whole TTL from its election, which came after the crash: at
            // least ttl − (time since the crash) is left — 0.8 s more than the old deadline allowed.
            let sinceCrash = UInt64((askedAt - crashedAt).nanoseconds / 1_000_000)
            #expect(
                info.remainingMilliseconds + sinceCrash >= ttl,
                "remaining \(info.remainingMilliseconds) ms, \(sinceCrash) ms after the crash")
            #expect(info.keys == ["session"])
            // Without keepalives the new leader expires it.
            for node in cluster.nodes.values {
                #expect(await eventually { !(await Self.has("session", on: node)) })
            }
        }
    }

    @Test func aRevokeDeletesItsKeysInOneRevisionOnEveryNode() async throws {
        try await Self.withCluster { cluster in
            let leader = try #require(await cluster.leader())
            #expect(await Self.grant(31, ttlMilliseconds: 60_000, via: leader))
            for key in ["w/1", "w/2", "w/3"] { #expect(await Self.put(key, lease: 31, via: leader)) }
            #expect(await Self.put("w/unleased", via: leader))
            for node in cluster.nodes.values { #expect(await eventually { await Self.has("w/unleased", on: node) }) }
            var subscriptions: [(RaftNode, ChangeSubscription)] = []
            for node in cluster.nodes.values {
                let (_, subscription) = await node.subscribe { $0.revision }
                subscriptions.append((node, subscription))
            }
            let follower = await Self.followers(cluster, of: leader)[0]
            let revoked = await follower.write(StoreCommand(operation: .revokeLease(id: 31)))
            guard case .applied(.applied(let revision, true), _) = revoked else {
                Issue.record("revoke through a follower: \(revoked)")
                return
            }
            for (node, subscription) in subscriptions {
                guard case .item(.change(let change)) = await subscription.next(until: .now + .seconds(10)) else {
                    Issue.record("n\(node.id) published the revoke")
                    continue
                }
                #expect(change.revision == revision)
                #expect(change.events.map(\.key) == ["w/1", "w/2", "w/3"])
                #expect(change.events.allSatisfy { $0.kind == .delete && $0.revision == revision })
                #expect(change.leases == [.revoked(id: 31)])
                subscription.cancel()
            }
        }
    }

    /// Waits until every running node has applied the same index, then compares their stores.
    static func identicalStores(_ cluster: Cluster) async -> Bool {
        await eventually(within: 20) {
            var applied: Set<UInt64> = []
            var stores: [KeyValueStore] = []
            for node in cluster.nodes.values {
                applied.insert(await node.status.appliedIndex)
                stores.append(await node.store)
            }
            return applied.count == 1 && Set(stores).count == 1
        }
    }

    @Test func leaseAndConfigStateIsIdenticalAfterSnapshotsAndRestarts() async throws {
        try await Self.withCluster(compactionThreshold: 8) { cluster in
            let leader = try #require(await cluster.leader())
            #expect(await Self.grant(41, ttlMilliseconds: 120_000, via: leader))
            #expect(await Self.grant(42, ttlMilliseconds: 120_000, via: leader))
            #expect(await Self.put("a", lease: 41, via: leader))
            #expect(await Self.put("b", lease: 42, via: leader))
            let acme = ProjectConfig(apiKeys: [], rateLimit: .init(perSecond: 10, burst: 20))
            #expect(
                await leader.write(
                    StoreCommand(
                        operation: .put(key: ProjectConfig.key(for: "acme"), value: acme.canonicalJSON), isSystem: true)
                )
                .isApplied)
            let lagging = await Self.followers(cluster, of: leader)[0].id
            await cluster.crash(lagging)
            for index in 0..<30 { #expect(await Self.put("k\(index)", lease: index % 2 == 0 ? 41 : 0, via: leader)) }
            let beta = ProjectConfig(postgres: .init(database: "beta", user: "beta", maxConnections: 5))
            #expect(
                await leader.write(
                    StoreCommand(
                        operation: .put(key: ProjectConfig.key(for: "beta"), value: beta.canonicalJSON), isSystem: true)
                )
                .isApplied)
            #expect(await leader.write(StoreCommand(operation: .revokeLease(id: 42))).isApplied)
            try await cluster.start(lagging)
            let restarted = try #require(cluster.nodes[lagging])
            #expect(await Self.identicalStores(cluster), "the snapshot carried leases, configs and history")
            #expect(await restarted.snapshotsInstalled >= 1, "it caught up through a snapshot")
            let cache = await ConfigCache.start(node: restarted)
            #expect(cache.entry(for: "acme")?.config == acme)
            #expect(cache.entry(for: "beta")?.config == beta)
            #expect(await restarted.store.lease(41)?.keys.count == 16)
            #expect(await restarted.store.lease(42) == nil)
            cache.stop()

            // Every node restarts from its own disk: the same state again, and the lease lives on.
            await cluster.stopAll()
            try await cluster.startAll()
            #expect(await Self.identicalStores(cluster))
            let newLeader = try #require(await cluster.leader())
            #expect(
                await eventually {
                    if case .found(let info) = await newLeader.leaseStatus(41) { return info.keyCount == 16 }
                    return false
                })
        }
    }

    @Test func everyNodesConfigCacheFollowsChangesAndTellsItsObservers() async throws {
        try await Self.withCluster { cluster in
            let leader = try #require(await cluster.leader())
            var caches: [ConfigCache] = []
            for node in cluster.nodes.values { caches.append(await ConfigCache.start(node: node)) }
            defer { for cache in caches { cache.stop() } }
            let observed = NIOLockedValueBox<[ConfigCache.Change]>([])
            _ = caches[0].observe { change in observed.withLockedValue { $0.append(change) } }
            let follower = await Self.followers(cluster, of: leader)[0]
            let config = ProjectConfig(rateLimit: .init(perSecond: 5, burst: 5), routes: ["api": "api"])
            let written = await follower.write(
                StoreCommand(
                    operation: .put(key: ProjectConfig.key(for: "acme"), value: config.canonicalJSON), isSystem: true))
            guard case .applied(.applied(let revision, _), _) = written else {
                Issue.record("config write: \(written)")
                return
            }
            for cache in caches {
                #expect(await eventually { cache.entry(for: "acme") == .init(config: config, revision: revision) })
                #expect(cache.configRevision == revision)
            }
            #expect(
                observed.withLockedValue { $0 } == [
                    .updated(project: "acme", .init(config: config, revision: revision))
                ])
            let deleted = await leader.write(
                StoreCommand(operation: .delete(key: ProjectConfig.key(for: "acme")), isSystem: true))
            #expect(deleted.isApplied)
            for cache in caches { #expect(await eventually { cache.entry(for: "acme") == nil }) }
            #expect(observed.withLockedValue { $0.count } == 2)
            #expect(observed.withLockedValue { $0.last?.project } == "acme")
        }
    }
}

extension WriteOutcome {
    var index: UInt64 {
        if case .applied(_, let index) = self { return index }
        return 0
    }

    var isApplied: Bool {
        if case .applied(.applied, _) = self { return true }
        return false
    }
}
