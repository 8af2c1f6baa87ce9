import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Node
import Prometheus
import Raft
import Testing

@testable import Gateway

/// The bounds of issue 15 hit on purpose through the routes: the documented error, nothing lost,
/// and service again once the pressure is gone.
@Suite("Limits: store quota, overload, range limits, admin-only /_sys/", .serialized)
struct LimitRouteTests {
    static let adminToken = "limit-tests-admin-token"
    static let authorized: HTTPFields = [.authorization: "Bearer \(adminToken)"]

    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!

    static func withGateway(
        writeLimits: WriteLimits = WriteLimits(), limits configure: (inout GatewayLimits) -> Void = { _ in },
        _ body: @Sendable (RaftNode, PrometheusCollectorRegistry, any TestClientProtocol) async throws -> Void
    ) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("limits-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let registry = PrometheusCollectorRegistry()
        var configuration = NodeConfiguration(
            id: 1, dataDirectory: root, raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1], peers: [:],
            clusterKey: try ClusterKey("limit-tests-cluster-key"))
        configuration.tickInterval = .milliseconds(20)
        configuration.writeLimits = writeLimits
        configuration.metricsFactory = makeMetricsFactory(registry: registry)
        let node = try await RaftNode.start(configuration)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, await !node.status.leaseValid {
            try await Task.sleep(for: .milliseconds(5))
        }
        var limits = GatewayLimits()
        configure(&limits)
        let cache = await ConfigCache.start(node: node)
        let app = Application(
            router: makeGatewayRouter(
                node: node, limits: limits, metricsRegistry: registry, configCache: cache, adminToken: adminToken))
        try await app.test(.router) { client in try await body(node, registry, client) }
        cache.stop()
        await node.stop()
    }

    static func object(_ response: TestResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any]) ?? [:]
    }

    static func errorCode(_ response: TestResponse) -> String? {
        (object(response)["error"] as? [String: Any])?["code"] as? String
    }

    static func keys(_ response: TestResponse) -> [String] {
        (object(response)["kvs"] as? [[String: Any]])?.compactMap { $0["key"] as? String } ?? []
    }

    /// The value of an unlabelled gauge in Prometheus text.
    static func gauge(_ registry: PrometheusCollectorRegistry, _ name: String) -> Double? {
        let text = String(decoding: registry.emitToBuffer(), as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    // MARK: Store quota

    @Test func theQuotaRefusesPutsKeepsReadsAndDeletesAndRecovers() async throws {
        var writeLimits = WriteLimits()
        writeLimits.quotaBytes = 392
        try await Self.withGateway(writeLimits: writeLimits) { node, registry, client in
            let value = String(repeating: "v", count: 46)  // 50 bytes with a 4-byte key
            var acknowledged: [String] = []
            var refusal: TestResponse?
            for index in 0..<20 {
                let key = "q/\(String(format: "%02d", index))"
                let response = try await client.execute(
                    uri: "/kv/\(key)", method: .put, headers: [Self.idempotencyKey: "put-\(key)"],
                    body: ByteBuffer(string: value))
                if response.status == .ok {
                    acknowledged.append(key)
                } else {
                    refusal = response
                    break
                }
            }
            let refused = try #require(refusal, "the quota was never reached")
            #expect(refused.status.code == 507)
            #expect(Self.errorCode(refused) == "quota_exceeded")
            #expect(acknowledged.count == 4, "392 bytes hold four 50-byte keys, each charged 48 bytes more")
            #expect(await node.storeStatus.dataBytes == 200)
            #expect(await node.storeStatus.quotaBytesUsed == 392)
            #expect(Self.gauge(registry, "raftgate_store_quota_alarm") == 1)
            #expect(Self.gauge(registry, "raftgate_store_bytes") == 200)
            let before = await node.storeStatus
            // Refused again, and nothing changed; a lease grant is a write too.
            let again = try await client.execute(uri: "/kv/q/x", method: .put, body: ByteBuffer(string: "x"))
            #expect(again.status.code == 507)
            #expect(
                Self.errorCode(
                    try await client.execute(
                        uri: "/lease", method: .post, body: ByteBuffer(string: #"{"ttl_ms":5000}"#))
                ) == "quota_exceeded")
            #expect(await node.storeStatus == before)
            // Review finding 7: a retry of an acknowledged write is answered as the first time,
            // not told 507 "nothing was written"; the same key with another request is still 422.
            let last = try #require(acknowledged.last)
            let retry = try await client.execute(
                uri: "/kv/\(last)", method: .put, headers: [Self.idempotencyKey: "put-\(last)"],
                body: ByteBuffer(string: value))
            #expect(retry.status == .ok)
            #expect(Self.object(retry)["revision"] as? Double == Double(acknowledged.count))
            let reused = try await client.execute(
                uri: "/kv/\(last)", method: .put, headers: [Self.idempotencyKey: "put-\(last)"],
                body: ByteBuffer(string: "other"))
            #expect(reused.status.code == 422)
            #expect(await node.storeStatus == before)
            // Reads still work and every acknowledged write is there.
            let listed = try await client.execute(uri: "/kv?prefix=q/", method: .get)
            #expect(Self.keys(listed) == acknowledged)
            for key in acknowledged {
                let read = try await client.execute(uri: "/kv/\(key)", method: .get)
                #expect(read.status == .ok && Self.object(read)["value"] as? String == value)
            }
            // Deletes work, and make room again.
            #expect(try await client.execute(uri: "/kv/\(acknowledged[0])", method: .delete).status == .ok)
            #expect(Self.gauge(registry, "raftgate_store_quota_alarm") == 0)
            let recovered = try await client.execute(uri: "/kv/q/new", method: .put, body: ByteBuffer(string: "small"))
            #expect(recovered.status == .ok)
        }
    }

    /// Beyond 2 pending writes, or beyond 300 uncommitted bytes (a few 64-byte puts): the same
    /// burst is refused in part, and every acknowledged write is there.
    @Test(arguments: [(2, UInt64(64 << 20)), (10_000, UInt64(300))])
    func theLeaderSaysOverloadedBeyondItsBoundsAndRecovers(pending: Int, uncommitted: UInt64) async throws {
        var writeLimits = WriteLimits()
        writeLimits.maxPendingWrites = pending
        writeLimits.maxUncommittedBytes = uncommitted
        try await Self.withGateway(writeLimits: writeLimits) { node, registry, client in
            let outcomes = await withTaskGroup(of: (Int, WriteOutcome).self) { group in
                for index in 0..<100 {
                    group.addTask {
                        let value = [UInt8](repeating: 1, count: 64)
                        return (index, await node.write(StoreCommand(operation: .put(key: "o/\(index)", value: value))))
                    }
                }
                return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            var applied: [Int] = []
            var overloaded = 0
            for (index, outcome) in outcomes {
                switch outcome {
                case .applied(.applied, _): applied.append(index)
                case .refused(let refusal) where refusal.isOverload: overloaded += 1
                default: Issue.record("write \(index): \(outcome)")
                }
            }
            #expect(overloaded > 0, "100 writes at once exceed the bound")
            #expect(applied.count + overloaded == 100)
            // Every acknowledged write is in the store, and no refused one is.
            let listed = try await client.execute(uri: "/kv?prefix=o/&limit=1000", method: .get)
            #expect(Set(Self.keys(listed)) == Set(applied.map { "o/\($0)" }))
            // The answer a client gets, and writes go through again once the burst is over.
            #expect(
                RouteSupport.failure(.refused(.pendingWrites(pending: 2, limit: 2))).headers[.retryAfter] == "1")
            let after = try await client.execute(uri: "/kv/o/after", method: .put, body: ByteBuffer(string: "x"))
            #expect(after.status == .ok)
        }
    }

    // MARK: Idempotency keys

    @Test func anIdempotencyKeyIsBoundToItsRequestAndStampedByTheLeader() async throws {
        try await Self.withGateway { node, _, client in
            let key: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "req-42"]
            let first = try await client.execute(
                uri: "/kv/i", method: .put, headers: key, body: ByteBuffer(string: "one"))
            #expect(first.status == .ok)
            let retry = try await client.execute(
                uri: "/kv/i", method: .put, headers: key, body: ByteBuffer(string: "one"))
            #expect(retry.status == .ok)
            #expect(Self.object(retry)["revision"] as? Int == Self.object(first)["revision"] as? Int)
            let before = await node.storeStatus
            for (uri, body) in [("/kv/i", "two"), ("/kv/j", "one")] {
                let reused = try await client.execute(
                    uri: uri, method: .put, headers: key, body: ByteBuffer(string: body))
                #expect(reused.status == .unprocessableContent, "\(uri) \(body)")
                #expect(Self.errorCode(reused) == "idempotency_key_reused")
            }
            let delete = try await client.execute(uri: "/kv/i", method: .delete, headers: key)
            #expect(delete.status == .unprocessableContent)
            #expect(await node.storeStatus == before, "nothing was applied")
            let read = try await client.execute(uri: "/kv/i", method: .get)
            #expect(Self.object(read)["value"] as? String == "one")
            // The log's clock is the leader's wall time at proposal.
            let now = UInt64(Date().timeIntervalSince1970 * 1000)
            let clock = await node.store.idempotency.clock
            #expect(clock > now - 60_000 && clock <= now)
        }
    }

    // MARK: Range limits

    @Test func rangeReadsHaveADefaultAndAMaximumLimit() async throws {
        try await Self.withGateway(limits: {
            $0.defaultRangeLimit = 3
            $0.maxRangeLimit = 5
        }) { _, _, client in
            for index in 0..<7 {
                _ = try await client.execute(uri: "/kv/r/\(index)", method: .put, body: ByteBuffer(string: "v"))
            }
            let first = try await client.execute(uri: "/kv?prefix=r/", method: .get)
            #expect(Self.keys(first) == ["r/0", "r/1", "r/2"])
            #expect(Self.object(first)["more"] as? Bool == true)
            let most = try await client.execute(uri: "/kv?prefix=r/&limit=5", method: .get)
            #expect(Self.keys(most).count == 5 && Self.object(most)["more"] as? Bool == true)
            let rest = try await client.execute(uri: "/kv?prefix=r/5&limit=5", method: .get)
            #expect(Self.keys(rest) == ["r/5"] && Self.object(rest)["more"] as? Bool == false)
            let tooMany = try await client.execute(uri: "/kv?prefix=r/&limit=6", method: .get)
            #expect(tooMany.status == .badRequest && Self.errorCode(tooMany) == "limit_too_large")
            #expect(try await client.execute(uri: "/kv?limit=0", method: .get).status == .badRequest)
        }
    }

    /// Review finding 5: `"more": true` can be followed. Each answer names the key to continue
    /// after, `after=` continues strictly after it, and the pages together are the whole prefix,
    /// even when a key is added before the cursor and another after it between two pages.
    @Test func rangeReadsPageWithAfter() async throws {
        try await Self.withGateway(limits: {
            $0.defaultRangeLimit = 3
            $0.maxRangeLimit = 5
        }) { _, _, client in
            for index in 0..<7 {
                _ = try await client.execute(uri: "/kv/r/\(index)", method: .put, body: ByteBuffer(string: "v"))
            }
            _ = try await client.execute(uri: "/kv/s", method: .put, body: ByteBuffer(string: "v"))
            var listed: [String] = []
            var revisions: [Double] = []
            var after: String?
            for page in 0..<10 {
                let uri = "/kv?prefix=r/" + (after.map { "&after=\($0)" } ?? "")
                let response = try await client.execute(uri: uri, method: .get)
                #expect(response.status == .ok)
                let answer = Self.object(response)
                listed += Self.keys(response)
                revisions.append(answer["revision"] as? Double ?? 0)
                guard answer["more"] as? Bool == true else {
                    #expect(answer["next"] == nil, "the last page names no next key")
                    break
                }
                after = try #require(answer["next"] as? String)
                #expect(after == Self.keys(response).last)
                if page == 0 {
                    // Between pages: one key lands before the cursor, one after it.
                    _ = try await client.execute(uri: "/kv/r/0a", method: .put, body: ByteBuffer(string: "v"))
                    _ = try await client.execute(uri: "/kv/r/9", method: .put, body: ByteBuffer(string: "v"))
                }
            }
            #expect(listed == ["r/0", "r/1", "r/2", "r/3", "r/4", "r/5", "r/6", "r/9"])
            #expect(revisions.count == 3 && revisions[0] < revisions[1], "each page at its own revision")
            // A cursor between keys, or past them all, works too; `limit` applies as before.
            let between = try await client.execute(uri: "/kv?prefix=r/&after=r/45&limit=2", method: .get)
            #expect(Self.keys(between) == ["r/5", "r/6"] && Self.object(between)["next"] as? String == "r/6")
            let past = try await client.execute(uri: "/kv?prefix=r/&after=z", method: .get)
            #expect(Self.keys(past).isEmpty && Self.object(past)["more"] as? Bool == false)
            // A cursor before the prefix starts at the prefix.
            let before = try await client.execute(uri: "/kv?prefix=r/&after=a&limit=1", method: .get)
            #expect(Self.keys(before) == ["r/0"])
        }
    }

    // MARK: Admin token

    @Test func reservedKeysAndConfigReadsNeedTheAdminToken() async throws {
        try await Self.withGateway { _, _, client in
            let written = try await client.execute(
                uri: "/config/acme", method: .put, headers: Self.authorized, body: ByteBuffer(string: "{}"))
            #expect(written.status == .ok)
            _ = try await client.execute(uri: "/kv/user", method: .put, body: ByteBuffer(string: "v"))
            // A wide prefix leaves /_sys/ out without the token, and shows it with the token.
            for prefix in ["", "/", "/_"] {
                let open = try await client.execute(uri: "/kv?prefix=\(prefix)", method: .get)
                #expect(open.status == .ok)
                #expect(!Self.keys(open).contains { $0.hasPrefix("/_sys/") }, "prefix \(prefix)")
            }
            let admin = try await client.execute(uri: "/kv?prefix=", method: .get, headers: Self.authorized)
            #expect(Self.keys(admin) == ["/_sys/config/acme", "user"])
            // A prefix inside /_sys/ is refused outright without it.
            let inside = try await client.execute(uri: "/kv?prefix=/_sys/", method: .get)
            #expect(inside.status == .unauthorized)
            let wrong = try await client.execute(
                uri: "/kv?prefix=/_sys/", method: .get, headers: [.authorization: "Bearer not-the-admin-token"])
            #expect(wrong.status == .forbidden)
            for uri in ["/config", "/config/acme"] {
                #expect(try await client.execute(uri: uri, method: .get).status == .unauthorized, "\(uri)")
                #expect(try await client.execute(uri: uri, method: .get, headers: Self.authorized).status == .ok)
            }
            #expect(try await client.execute(uri: "/watch?prefix=/_sys/", method: .get).status == .unauthorized)
        }
    }

    @Test func theAdminMiddlewareGuardsAWholeRouteGroup() async throws {
        let router = Router()
        router.group("members").add(middleware: AdminTokenMiddleware(AdminToken(Self.adminToken)))
            .get { _, _ in "members" }
            .post("transfer") { _, _ in "moved" }
        router.get("open") { _, _ in "open" }
        try await Application(router: router).test(.router) { client in
            #expect(try await client.execute(uri: "/open", method: .get).status == .ok)
            for (uri, method) in [("/members", HTTPRequest.Method.get), ("/members/transfer", .post)] {
                let bare = try await client.execute(uri: uri, method: method)
                #expect(bare.status == .unauthorized && Self.errorCode(bare) == "unauthorized")
                let wrong = try await client.execute(
                    uri: uri, method: method, headers: [.authorization: "Bearer \(Self.adminToken)x"])
                #expect(wrong.status == .forbidden && Self.errorCode(wrong) == "forbidden")
                #expect(try await client.execute(uri: uri, method: method, headers: Self.authorized).status == .ok)
            }
        }
        let disabled = Router()
        disabled.group("members").add(middleware: AdminTokenMiddleware(AdminToken(nil))).get { _, _ in "members" }
        try await Application(router: disabled).test(.router) { client in
            let refused = try await client.execute(uri: "/members", method: .get, headers: Self.authorized)
            #expect(refused.status == .forbidden && Self.errorCode(refused) == "admin_disabled")
        }
    }
}
