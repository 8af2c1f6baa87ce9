import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Node
import Prometheus
import Raft
import Testing

@testable import Gateway

/// The HTTP surface over a real single-node cluster (real WAL in a temp dir).
@Suite("Gateway routes", .serialized)
struct GatewayRouteTests {
    static func withLeader(
        metricsRegistry: PrometheusCollectorRegistry? = nil,
        _ body: @Sendable (RaftNode, any TestClientProtocol) async throws -> Void
    ) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = NodeConfiguration(
            id: 1, dataDirectory: root, raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1], peers: [:],
            clusterKey: try ClusterKey("gateway-tests-cluster-key"))
        configuration.tickInterval = .milliseconds(5)
        if let metricsRegistry { configuration.metricsFactory = makeMetricsFactory(registry: metricsRegistry) }
        let node = try await RaftNode.start(configuration)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if await node.status.leaseValid { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        var limits = GatewayLimits()
        limits.maxBodyBytes = 1024
        let app = Application(router: makeGatewayRouter(node: node, limits: limits, metricsRegistry: metricsRegistry))
        try await app.test(.router) { client in try await body(node, client) }
        await node.stop()
    }

    static func text(_ response: TestResponse) -> String { String(buffer: response.body) }

    static func field(_ response: TestResponse, _ name: String) -> Any? {
        (try? JSONSerialization.jsonObject(with: Data(text(response).utf8)) as? [String: Any])?[name]
    }

    static func errorCode(_ response: TestResponse) -> String? {
        (field(response, "error") as? [String: Any])?["code"] as? String
    }

    @Test func writeReadUpdateDelete() async throws {
        try await Self.withLeader { _, client in
            let posted = try await client.execute(
                uri: "/kv", method: .post, body: ByteBuffer(string: #"{"key":"greeting","value":"hello"}"#))
            #expect(posted.status == .ok)
            #expect(Self.field(posted, "revision") as? Int == 1)
            let read = try await client.execute(uri: "/kv/greeting", method: .get)
            #expect(read.status == .ok)
            #expect(Self.field(read, "value") as? String == "hello")
            let put = try await client.execute(uri: "/kv/dir/nested", method: .put, body: ByteBuffer(string: "v"))
            #expect(put.status == .ok)
            let range = try await client.execute(uri: "/kv?prefix=dir/", method: .get)
            #expect(((Self.field(range, "kvs") as? [[String: Any]])?.first?["key"] as? String) == "dir/nested")
            let deleted = try await client.execute(uri: "/kv/greeting", method: .delete)
            #expect(deleted.status == .ok)
            let gone = try await client.execute(uri: "/kv/greeting", method: .get)
            #expect(gone.status == .notFound)
            #expect(Self.errorCode(gone) == "not_found")
        }
    }

    @Test func conditionalWrites() async throws {
        try await Self.withLeader { _, client in
            let created = try await client.execute(
                uri: "/kv/lock", method: .put, headers: [.ifNoneMatch: "*"], body: ByteBuffer(string: "a"))
            #expect(created.status == .ok)
            let again = try await client.execute(
                uri: "/kv/lock", method: .put, headers: [.ifNoneMatch: "*"], body: ByteBuffer(string: "b"))
            #expect(again.status == .preconditionFailed)
            let wrong = try await client.execute(
                uri: "/kv/lock", method: .put, headers: [.ifMatch: "999"], body: ByteBuffer(string: "c"))
            #expect(wrong.status == .preconditionFailed)
            let revision = Self.field(created, "revision") as? Int ?? 0
            let right = try await client.execute(
                uri: "/kv/lock", method: .put, headers: [.ifMatch: "\(revision)"], body: ByteBuffer(string: "d"))
            #expect(right.status == .ok)
        }
    }

    @Test func idempotentRetriesApplyOnce() async throws {
        try await Self.withLeader { _, client in
            let key = HTTPField.Name("Idempotency-Key")!
            let first = try await client.execute(
                uri: "/kv/counter", method: .put, headers: [key: "retry-1"], body: ByteBuffer(string: "1"))
            _ = try await client.execute(uri: "/kv/counter", method: .put, body: ByteBuffer(string: "2"))
            let retry = try await client.execute(
                uri: "/kv/counter", method: .put, headers: [key: "retry-1"], body: ByteBuffer(string: "1"))
            #expect(Self.field(retry, "revision") as? Int == Self.field(first, "revision") as? Int)
            let read = try await client.execute(uri: "/kv/counter", method: .get)
            #expect(Self.field(read, "value") as? String == "2", "the retry changed nothing")
        }
    }

    @Test func badInputGetsAClearErrorAndChangesNothing() async throws {
        try await Self.withLeader { node, client in
            let before = await node.status.lastIndex
            let cases: [(String, HTTPRequest.Method, String, HTTPResponse.Status, String)] = [
                ("/kv", .post, "{not json", .badRequest, "bad_request"),
                ("/kv", .post, #"{"key": 5, "value": "x"}"#, .badRequest, "bad_request"),
                ("/kv", .post, #"{"key": "", "value": "x"}"#, .badRequest, "bad_request"),
                ("/kv", .post, #"{"key": "/_sys/workers/1", "value": "x"}"#, .forbidden, "reserved_key"),
                ("/kv/_sys/x", .put, "x", .ok, ""),  // "_sys/x" is an ordinary key; only "/_sys/" is reserved
                ("/kv/" + String(repeating: "k", count: 5000), .put, "x", .badRequest, "bad_request"),
                ("/kv/big", .put, String(repeating: "x", count: 4096), .contentTooLarge, "too_large"),
                ("/kv/k?consistency=maybe", .get, "", .badRequest, "bad_request"),
                ("/nope", .get, "", .notFound, "no_route"),
            ]
            for (uri, method, body, status, code) in cases {
                let response = try await client.execute(uri: uri, method: method, body: ByteBuffer(string: body))
                #expect(response.status == status, "\(method) \(uri.prefix(40))")
                if !code.isEmpty { #expect(Self.errorCode(response) == code, "\(method) \(uri.prefix(40))") }
            }
            #expect(await node.status.lastIndex == before + 1, "only the one valid write reached the log")
            let live = try await client.execute(uri: "/health/live", method: .get)
            #expect(live.status == .ok, "still serving")
        }
    }

    @Test func healthEndpointsAnswerGetHeadAndOptions() async throws {
        try await Self.withLeader { _, client in
            for method in [HTTPRequest.Method.get, .head, .options] {
                #expect(try await client.execute(uri: "/health/live", method: method).status == .ok)
                #expect(try await client.execute(uri: "/primary", method: method).status == .ok)
                #expect(try await client.execute(uri: "/replica", method: method).status == .serviceUnavailable)
                #expect(try await client.execute(uri: "/health/ready", method: method).status == .ok)
            }
            let full = try await client.execute(uri: "/health", method: .get)
            #expect(Self.field(full, "role") as? String == "leader")
        }
    }
}
