import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Node
import Raft
import TestSupport
import Testing

@testable import Gateway

/// Leases, watch and project config over HTTP, on a real single-node cluster.
@Suite("Lease, watch and config routes", .serialized)
struct StorePrimitiveRouteTests {
    static let adminToken = "gateway-test-admin-token"
    static let authorized: HTTPFields = [.authorization: "Bearer \(adminToken)"]

    /// A leader behind the routes, with a config cache; `.live` serves on a real port (for SSE).
    static func withGateway(
        adminToken: String? = Self.adminToken, watchHistory: Int = 10_000, live: Bool = false,
        etcd: EtcdAccess = .open,
        limits configure: (inout GatewayLimits) -> Void = { _ in },
        _ body: @Sendable (RaftNode, any TestClientProtocol) async throws -> Void
    ) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("primitives-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = NodeConfiguration(
            id: 1, dataDirectory: root, raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1], peers: [:],
            clusterKey: try ClusterKey("gateway-tests-cluster-key"))
        configuration.tickInterval = .milliseconds(5)
        configuration.watchHistory = .init(maxEvents: watchHistory)
        let node = try await RaftNode.start(configuration)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, await !node.status.leaseValid {
            try await Task.sleep(for: .milliseconds(5))
        }
        var limits = GatewayLimits()
        limits.maxBodyBytes = 4096
        configure(&limits)
        let cache = await ConfigCache.start(node: node)
        let app = Application(
            router: makeGatewayRouter(
                node: node, limits: limits, configCache: cache, adminToken: adminToken, etcdAccess: etcd))
        try await app.test(live ? .live : .router) { client in try await body(node, client) }
        cache.stop()
        await node.stop()
    }

    /// The admin token and one more header.
    static func authorized(_ name: HTTPField.Name, _ value: String) -> HTTPFields {
        var fields = authorized
        fields[name] = value
        return fields
    }

    static func object(_ response: TestResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any]) ?? [:]
    }

    static func errorCode(_ response: TestResponse) -> String? {
        (object(response)["error"] as? [String: Any])?["code"] as? String
    }

    static func errorMessage(_ response: TestResponse) -> String {
        (object(response)["error"] as? [String: Any])?["message"] as? String ?? ""
    }

    static func number(_ response: TestResponse, _ field: String) -> UInt64? {
        (object(response)[field] as? NSNumber)?.uint64Value
    }

    static func eventually(within seconds: Double = 10, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        repeat {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        } while ContinuousClock.now < deadline
        return false
    }

    // MARK: Leases

    @Test func aLeaseHoldsItsKeysUntilRevoked() async throws {
        try await Self.withGateway { _, client in
            let granted = try await client.execute(
                uri: "/lease", method: .post, body: ByteBuffer(string: #"{"ttl_ms":30000}"#))
            #expect(granted.status == .ok)
            let id = try #require(Self.number(granted, "id"))
            #expect(Self.number(granted, "ttl_ms") == 30000)
            for key in ["svc/a", "svc/b"] {
                let put = try await client.execute(
                    uri: "/kv/\(key)?lease=\(id)", method: .put, body: ByteBuffer(string: "up"))
                #expect(put.status == .ok)
            }
            let read = try await client.execute(uri: "/kv/svc/a", method: .get)
            #expect(Self.number(read, "lease") == id)
            let status = try await client.execute(uri: "/lease/\(id)", method: .get)
            #expect(status.status == .ok)
            #expect(Self.object(status)["keys"] as? [String] == ["svc/a", "svc/b"])
            #expect((1...30000).contains(Self.number(status, "remaining_ms") ?? 0))
            let kept = try await client.execute(uri: "/lease/\(id)/keepalive", method: .post)
            #expect(kept.status == .ok && Self.number(kept, "ttl_ms") == 30000)
            let revoked = try await client.execute(uri: "/lease/\(id)", method: .delete)
            #expect(revoked.status == .ok)
            #expect(try await client.execute(uri: "/kv/svc/a", method: .get).status == .notFound)
            #expect(try await client.execute(uri: "/kv/svc/b", method: .get).status == .notFound)
            #expect(try await client.execute(uri: "/lease/\(id)", method: .get).status == .notFound)
        }
    }

    @Test func badLeaseInputIsAClearErrorAndChangesNothing() async throws {
        try await Self.withGateway { node, client in
            #expect(
                try await client.execute(uri: "/kv/existing", method: .put, body: ByteBuffer(string: "v")).status == .ok
            )
            let before = await node.storeStatus
            let cases: [(String, HTTPRequest.Method, String, HTTPResponse.Status, String)] = [
                ("/lease", .post, #"{"ttl_ms":999}"#, .badRequest, "bad_request"),
                ("/lease", .post, #"{"ttl_ms":86400001}"#, .badRequest, "bad_request"),
                ("/lease", .post, #"{"ttl_ms":-5}"#, .badRequest, "bad_request"),
                ("/lease", .post, #"{"ttl_ms":"soon"}"#, .badRequest, "bad_request"),
                ("/lease", .post, "{}", .badRequest, "bad_request"),
                ("/lease", .post, "not json", .badRequest, "bad_request"),
                ("/lease/123/keepalive", .post, "", .notFound, "lease_not_found"),
                ("/lease/123", .get, "", .notFound, "lease_not_found"),
                ("/lease/123", .delete, "", .notFound, "lease_not_found"),
                ("/lease/abc", .get, "", .badRequest, "bad_request"),
                ("/lease/0/keepalive", .post, "", .badRequest, "bad_request"),
                ("/lease/9007199254740992", .get, "", .badRequest, "bad_request"),
                ("/kv/existing?lease=123", .put, "x", .notFound, "lease_not_found"),
                ("/kv/existing?lease=soon", .put, "x", .badRequest, "bad_request"),
                ("/kv/existing?lease=5", .delete, "", .badRequest, "bad_request"),
            ]
            for (uri, method, body, status, code) in cases {
                let response = try await client.execute(uri: uri, method: method, body: ByteBuffer(string: body))
                #expect(response.status == status, "\(method) \(uri) \(body)")
                #expect(Self.errorCode(response) == code, "\(method) \(uri) \(body)")
            }
            let after = await node.storeStatus
            #expect(after == before, "no key, revision or lease changed")
            let read = try await client.execute(uri: "/kv/existing", method: .get)
            #expect(String(buffer: read.body).contains("\"v\""))
            #expect(
                Self.errorMessage(
                    try await client.execute(uri: "/lease", method: .post, body: ByteBuffer(string: "{\"ttl_ms\":1}"))
                ).contains("1000"))
        }
    }

    // MARK: Config

    static let document =
        #"{"apiKeys":["sha256:\#(String(repeating: "ab", count: 32))"],"rateLimit":{"perSecond":100,"burst":200},"postgres":{"database":"acme","user":"acme","maxConnections":10},"routes":{"api":"api"}}"#

    @Test func configWritesNeedTheAdminTokenAndAValidDocument() async throws {
        try await Self.withGateway { node, client in
            let before = await node.storeStatus
            let body = ByteBuffer(string: Self.document)
            let missing = try await client.execute(uri: "/config/acme", method: .put, body: body)
            #expect(missing.status == .unauthorized && Self.errorCode(missing) == "unauthorized")
            #expect(missing.headers[.wwwAuthenticate] == "Bearer")
            let wrong = try await client.execute(
                uri: "/config/acme", method: .put, headers: [.authorization: "Bearer not-the-token-at-all"], body: body)
            #expect(wrong.status == .forbidden && Self.errorCode(wrong) == "forbidden")
            let basic = try await client.execute(
                uri: "/config/acme", method: .put, headers: [.authorization: "Basic \(Self.adminToken)"], body: body)
            #expect(basic.status == .unauthorized)
            #expect(try await client.execute(uri: "/config/acme", method: .delete).status == .unauthorized)
            let invalid: [(String, String, String)] = [
                (#"{"rateLimit":{"perSec":100,"burst":200}}"#, "unknown_field", "rateLimit.perSec"),
                (#"{"tls":true}"#, "unknown_field", "tls"),
                (#"{"postgres":{"database":"a","user":"b","pool":3}}"#, "unknown_field", "postgres.pool"),
                (#"{"rateLimit":{"perSecond":100,"burst":0}}"#, "invalid_config", "rateLimit.burst"),
                (#"{"rateLimit":{"perSecond":100}}"#, "invalid_config", "rateLimit.burst"),
                (#"{"rateLimit":{"perSecond":1.5,"burst":2}}"#, "invalid_config", "rateLimit.perSecond"),
                (#"{"postgres":{"database":"acme; drop","user":"acme"}}"#, "invalid_config", "postgres.database"),
                (
                    #"{"postgres":{"database":"acme","user":"acme","maxConnections":5000}}"#, "invalid_config",
                    "postgres.maxConnections"
                ),
                (#"{"apiKeys":["plaintext-key"]}"#, "invalid_config", "apiKeys[0]"),
                (#"{"routes":{"api":7}}"#, "invalid_config", "routes.api"),
                (#"{"routes":{"../etc":"api"}}"#, "invalid_config", "routes"),
                ("[1,2]", "bad_request", "JSON object"),
                ("{not json", "bad_request", "not valid JSON"),
            ]
            for (document, code, names) in invalid {
                let response = try await client.execute(
                    uri: "/config/acme", method: .put, headers: Self.authorized, body: ByteBuffer(string: document))
                #expect(response.status == .badRequest, "\(document)")
                #expect(Self.errorCode(response) == code, "\(document)")
                #expect(Self.errorMessage(response).contains(names), "\(document): \(Self.errorMessage(response))")
            }
            let badName = try await client.execute(
                uri: "/config/Acme.Corp", method: .put, headers: Self.authorized, body: body)
            #expect(badName.status == .badRequest)
            #expect(await node.storeStatus == before, "nothing was written")
            let listed = try await client.execute(uri: "/config", method: .get, headers: Self.authorized)
            #expect((Self.object(listed)["projects"] as? [Any])?.isEmpty == true)

            let written = try await client.execute(
                uri: "/config/acme", method: .put, headers: Self.authorized, body: body)
            #expect(written.status == .ok)
            let revision = try #require(Self.number(written, "revision"))
            #expect(
                try await Self.eventually {
                    try await client.execute(uri: "/config/acme", method: .get, headers: Self.authorized).status == .ok
                })
            let read = try await client.execute(uri: "/config/acme", method: .get, headers: Self.authorized)
            #expect(read.headers[.eTag] == "\"\(revision)\"")
            #expect(Self.number(read, "revision") == revision)
            let config = try #require(Self.object(read)["config"] as? [String: Any])
            #expect((config["rateLimit"] as? [String: Any])?["burst"] as? Int == 200)
            #expect((config["postgres"] as? [String: Any])?["maxConnections"] as? Int == 10)
        }
    }

    @Test func configWritesAreCompareAndSetAndDeletable() async throws {
        try await Self.withGateway { _, client in
            let created = try await client.execute(
                uri: "/config/beta", method: .put, headers: Self.authorized(.ifNoneMatch, "*"),
                body: ByteBuffer(string: "{}"))
            #expect(created.status == .ok)
            let revision = try #require(Self.number(created, "revision"))
            let again = try await client.execute(
                uri: "/config/beta", method: .put, headers: Self.authorized(.ifNoneMatch, "*"),
                body: ByteBuffer(string: "{}"))
            #expect(again.status == .preconditionFailed)
            let stale = try await client.execute(
                uri: "/config/beta", method: .put, headers: Self.authorized(.ifMatch, "\"\(revision + 5)\""),
                body: ByteBuffer(string: #"{"routes":{"a":"b"}}"#))
            #expect(stale.status == .preconditionFailed && Self.errorCode(stale) == "condition_failed")
            let fresh = try await client.execute(
                uri: "/config/beta", method: .put, headers: Self.authorized(.ifMatch, "\"\(revision)\""),
                body: ByteBuffer(string: #"{"routes":{"a":"b"}}"#))
            #expect(fresh.status == .ok)
            #expect(
                try await Self.eventually {
                    let read = try await client.execute(uri: "/config/beta", method: .get, headers: Self.authorized)
                    return ((Self.object(read)["config"] as? [String: Any])?["routes"] as? [String: String]) == [
                        "a": "b"
                    ]
                })
            let deleted = try await client.execute(uri: "/config/beta", method: .delete, headers: Self.authorized)
            #expect(deleted.status == .ok)
            #expect(
                try await Self.eventually {
                    try await client.execute(uri: "/config/beta", method: .get, headers: Self.authorized).status
                        == .notFound
                })
            let twice = try await client.execute(uri: "/config/beta", method: .delete, headers: Self.authorized)
            #expect(twice.status == .notFound)
        }
    }

    @Test func withoutAnAdminTokenConfigWritesAreRefused() async throws {
        try await Self.withGateway(adminToken: nil) { node, client in
            let before = await node.storeStatus
            let response = try await client.execute(
                uri: "/config/acme", method: .put, headers: [.authorization: "Bearer anything-at-all-here"],
                body: ByteBuffer(string: "{}"))
            #expect(response.status == .forbidden && Self.errorCode(response) == "admin_disabled")
            #expect(await node.storeStatus == before)
        }
    }

    // MARK: Watch

    @Test func badWatchRequestsAndACompactedRevision() async throws {
        try await Self.withGateway(watchHistory: 3) { _, client in
            for since in ["abc", "-1", "1.5", ""] {
                let response = try await client.execute(uri: "/watch?since=\(since)", method: .get)
                #expect(response.status == .badRequest, "since=\(since)")
                #expect(Self.errorCode(response) == "bad_request")
            }
            let reserved = try await client.execute(uri: "/watch?prefix=/_sys/config/", method: .get)
            #expect(reserved.status == .unauthorized)
            for index in 1...6 {
                _ = try await client.execute(uri: "/kv/k\(index)", method: .put, body: ByteBuffer(string: "v"))
            }
            let gone = try await client.execute(uri: "/watch?since=1", method: .get)
            #expect(gone.status == .gone)
            #expect(Self.errorCode(gone) == "compacted")
            #expect(Self.number(gone, "compact_revision") == 3)
            let range = try await client.execute(uri: "/kv?prefix=k", method: .get)
            #expect(Self.number(range, "revision") == 6, "a list says where to watch from")
        }
    }

    @Test func aWatchStreamsInOrderAndResumesWithoutGapsOrRepeats() async throws {
        try await Self.withGateway(live: true, limits: { $0.watchProgressInterval = .milliseconds(200) }) {
            node, client in
            let port = try #require(client.port)
            let put = { (key: String) in
                _ = await node.write(StoreCommand(operation: .put(key: key, value: Array(key.utf8))))
            }
            await put("w/0")
            let watch = try #require(await EventStreamClient.open(port: port, path: "/watch?prefix=w/"))
            #expect(watch.status == 200)
            let opening = await watch.next()
            #expect(opening?.name == "progress" && opening?.revision == 1, "the stream opens with a bookmark")
            for key in ["w/1", "x/other", "w/2"] { await put(key) }
            let first = await watch.events { $0.key == "w/2" }
            #expect(first.map(\.name) == ["put", "put"])
            #expect(first.map(\.key) == ["w/1", "w/2"])
            #expect(first.map(\.revision) == [2, 4])
            #expect(first.map(\.id) == ["2", "4"])
            // Quiet: bookmarks keep coming, each at the applied revision.
            let bookmark = await watch.events { $0.name == "progress" }.last
            #expect(bookmark?.revision == 4)
            watch.close()

            for key in ["w/3", "x/more", "w/4"] { await put(key) }
            let resumed = try #require(await EventStreamClient.open(port: port, path: "/watch?prefix=w/&since=4"))
            let missed = await resumed.events { $0.name == "progress" }
            #expect(missed.map(\.key) == ["w/3", "w/4", nil], "exactly what came after 4, then a bookmark")
            #expect(missed.last?.revision == 7)
            resumed.close()
            let viaHeader = try #require(
                await EventStreamClient.open(port: port, path: "/watch?prefix=w/", headers: ["Last-Event-ID": "5"]))
            #expect(await viaHeader.events { $0.name == "progress" }.map(\.key) == ["w/4", nil])
            viaHeader.close()
        }
    }

    @Test func aRevokeIsOneRevisionOnTheWatchWithOneResumePoint() async throws {
        try await Self.withGateway(live: true) { node, client in
            let port = try #require(client.port)
            _ = await node.write(StoreCommand(operation: .grantLease(id: 5, ttlMilliseconds: 60_000)))
            for key in ["s/a", "s/b"] {
                _ = await node.write(StoreCommand(operation: .put(key: key, value: [1]), lease: 5))
            }
            let watch = try #require(await EventStreamClient.open(port: port, path: "/watch?prefix=s/&since=2"))
            #expect(await watch.next()?.name == "progress")
            _ = await node.write(StoreCommand(operation: .revokeLease(id: 5)))
            let deletes = await watch.events { $0.key == "s/b" }
            #expect(deletes.map(\.name) == ["delete", "delete"])
            #expect(deletes.map(\.revision) == [3, 3])
            #expect(deletes.map(\.id) == [nil, "3"], "resuming mid-revision is impossible")
            watch.close()
        }
    }

    @Test func reservedKeysAreWatchedOnlyWithTheAdminToken() async throws {
        try await Self.withGateway(live: true) { node, client in
            let port = try #require(client.port)
            let everything = try #require(await EventStreamClient.open(port: port, path: "/watch"))
            let admin = try #require(
                await EventStreamClient.open(
                    port: port, path: "/watch?prefix=/_sys/config/",
                    headers: ["Authorization": "Bearer \(Self.adminToken)"]))
            _ = await everything.next()
            _ = await admin.next()
            _ = try await client.execute(
                uri: "/config/acme", method: .put, headers: Self.authorized, body: ByteBuffer(string: "{}"))
            _ = await node.write(StoreCommand(operation: .put(key: "user", value: [1])))
            #expect(await admin.events { $0.name == "put" }.last?.key == "/_sys/config/acme")
            #expect(
                await everything.events { $0.name == "put" }.last?.key == "user", "no /_sys/ event without the token")
            everything.close()
            admin.close()
        }
    }
}
