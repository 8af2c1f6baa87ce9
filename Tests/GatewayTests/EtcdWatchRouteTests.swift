import Foundation
import Node
import TestSupport
import Testing

@testable import Gateway

#if canImport(Glibc)
    import Glibc
#endif

/// `POST /v3/watch` on a real single-node cluster over a real socket: the request body stays open
/// while the answers stream, as etcd's clients use it.
@Suite("etcd watch stream", .serialized)
struct EtcdWatchRouteTests {
    /// One watch request: the body is sent chunk by chunk (each a JSON request), answers are read
    /// line by line as they come.
    final class WatchConnection: @unchecked Sendable {
        // @unchecked: one test task uses it at a time; blocking calls run off the pool.
        let descriptor: Int32
        var pending: [UInt8] = []

        init?(port: Int, path: String = "/v3/watch", token: String? = nil) {
            guard let descriptor = LoopbackSocket.connect(port: port, receiveTimeoutSeconds: 1) else { return nil }
            self.descriptor = descriptor
            let head =
                "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + (token.map { "Authorization: \($0)\r\n" } ?? "") + "Transfer-Encoding: chunked\r\n\r\n"
            guard LoopbackSocket.send(Array(head.utf8), on: descriptor) else { return nil }
        }

        deinit { Glibc.close(descriptor) }

        func send(_ json: String) -> Bool {
            let body = Array(json.utf8) + [0x0A]
            return LoopbackSocket.send(
                Array("\(String(body.count, radix: 16))\r\n".utf8) + body + Array("\r\n".utf8), on: descriptor)
        }

        func endBody() -> Bool { LoopbackSocket.send(Array("0\r\n\r\n".utf8), on: descriptor) }

        /// The next JSON answer, or nil if none came within `seconds` or the stream ended.
        func next(within seconds: Double = 10) async -> [String: Any]? {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if let line = takeLine() {
                    guard line.first == UInt8(ascii: "{") else { continue }
                    return (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any]
                }
                let descriptor = self.descriptor
                let chunk: [UInt8]? = await offThePool {
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    let got = buffer.withUnsafeMutableBytes { Glibc.recv(descriptor, $0.baseAddress, 4096, 0) }
                    if got == 0 { return nil }
                    return got < 0 ? [] : Array(buffer[..<got])
                }
                guard let chunk else {
                    return takeLine().flatMap { (try? JSONSerialization.jsonObject(with: Data($0))) as? [String: Any] }
                }
                pending += chunk
            }
            return nil
        }

        /// Whether the server ended the answer within `seconds`: its last chunk, or a close.
        func ended(within seconds: Double = 10) async -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            let last = Array("0\r\n\r\n".utf8)
            while Date() < deadline {
                if pending.count >= last.count,
                    (0...(pending.count - last.count)).contains(where: { Array(pending[$0..<$0 + last.count]) == last })
                {
                    return true
                }
                let descriptor = self.descriptor
                let chunk: [UInt8]? = await offThePool {
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    let got = buffer.withUnsafeMutableBytes { Glibc.recv(descriptor, $0.baseAddress, 4096, 0) }
                    if got == 0 { return nil }
                    return got < 0 ? [] : Array(buffer[..<got])
                }
                guard let chunk else { return true }
                pending += chunk
            }
            return false
        }

        private func takeLine() -> [UInt8]? {
            guard let end = pending.firstIndex(of: 0x0A) else { return nil }
            var line = Array(pending[..<end])
            pending.removeFirst(end + 1)
            if line.last == 0x0D { line.removeLast() }
            return line
        }
    }

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    static func result(_ answer: [String: Any]?) -> [String: Any] { answer?["result"] as? [String: Any] ?? [:] }

    /// A put of etcd key `key`, written as the etcd API writes it (in `EtcdNamespace`).
    static func etcdPut(_ node: RaftNode, _ key: String, _ value: [UInt8] = Array("v".utf8)) async {
        _ = await node.write(
            StoreCommand(operation: .put(key: KeyValueStore.etcdPrefix + key, value: value), isSystem: true))
    }

    static func revision(_ result: [String: Any]) -> String? {
        (result["header"] as? [String: Any])?["revision"] as? String
    }

    @Test func eventsProgressAndACancelMidStream() async throws {
        try await StorePrimitiveRouteTests.withGateway(live: true) { node, client in
            let port = try #require(client.port)
            let subscribers = node.changes.subscriberCount
            let watch = try #require(WatchConnection(port: port))
            let create = #"{"create_request":{"key":"\#(Self.base64("w/"))","range_end":"\#(Self.base64("w0"))"}}"#
            #expect(watch.send(create))
            let created = Self.result(await watch.next())
            #expect(created["created"] as? Bool == true)
            for key in ["w/1", "x/other", "w/2"] { await Self.etcdPut(node, key) }
            // The same key outside the namespace is not etcd's: no event.
            _ = await node.write(StoreCommand(operation: .put(key: "w/3", value: [1])))
            _ = await node.write(
                StoreCommand(operation: .delete(key: KeyValueStore.etcdPrefix + "w/1"), isSystem: true))
            var seen: [String] = []
            while seen.count < 3, let answer = await watch.next() {
                for event in Self.result(answer)["events"] as? [[String: Any]] ?? [] {
                    let kv = event["kv"] as? [String: Any] ?? [:]
                    let key = String(decoding: Data(base64Encoded: kv["key"] as? String ?? "") ?? Data(), as: UTF8.self)
                    seen.append("\(event["type"] as? String ?? "PUT") \(key) \(kv["mod_revision"] as? String ?? "?")")
                }
            }
            #expect(seen == ["PUT w/1 1", "PUT w/2 3", "DELETE w/1 5"], "only the range, in order: \(seen)")
            // A progress request on the open body: a header at the revision the watch reached.
            #expect(watch.send(#"{"progress_request":{}}"#))
            let progress = Self.result(await watch.next())
            #expect(progress["watch_id"] as? String == "-1" && Self.revision(progress) == "5")
            // Cancelled mid-stream: etcd's canceled answer, the stream ends, the subscription goes.
            #expect(watch.send(#"{"cancel_request":{"watch_id":"0"}}"#))
            let canceled = Self.result(await watch.next())
            #expect(canceled["canceled"] as? Bool == true)
            #expect(await watch.ended())
            #expect(await StorePrimitiveRouteTests.eventually { node.changes.subscriberCount == subscribers })
        }
    }

    /// Patroni's way: the create alone, the body ended, and the watch goes on.
    @Test func aWatchOutlivesItsRequestBody() async throws {
        try await StorePrimitiveRouteTests.withGateway(live: true) { node, client in
            let port = try #require(client.port)
            let watch = try #require(WatchConnection(port: port))
            #expect(watch.send(#"{"create_request":{"key":"\#(Self.base64("k"))"}}"#) && watch.endBody())
            #expect(Self.result(await watch.next())["created"] as? Bool == true)
            await Self.etcdPut(node, "k")
            let events = Self.result(await watch.next())["events"] as? [[String: Any]]
            #expect((events?.first?["kv"] as? [String: Any])?["value"] as? String == Self.base64("v"))
        }
    }

    /// A start revision older than the history: etcd's compacted answer, then the stream ends so
    /// the client lists and watches again.
    @Test func aCompactedStartRevision() async throws {
        try await StorePrimitiveRouteTests.withGateway(watchHistory: 3, live: true) { node, client in
            let port = try #require(client.port)
            for index in 0..<8 { await Self.etcdPut(node, "c\(index)", [1]) }
            let compacted = await node.storeStatus.compactRevision
            #expect(compacted > 1)
            let watch = try #require(WatchConnection(port: port))
            #expect(watch.send(#"{"create_request":{"key":"\#(Self.base64("c"))","start_revision":"2"}}"#))
            #expect(Self.result(await watch.next())["created"] as? Bool == true)
            let canceled = Self.result(await watch.next())
            #expect(canceled["canceled"] as? Bool == true)
            // etcd's meaning: the oldest revision a watch may start at, one past the last dropped.
            #expect(canceled["compact_revision"] as? String == "\(compacted + 1)")
            #expect(await watch.ended())
            // Watching again from it works (etcd clients do exactly that).
            let again = try #require(WatchConnection(port: port))
            #expect(
                again.send(#"{"create_request":{"key":"\#(Self.base64("c"))","start_revision":"\#(compacted + 1)"}}"#))
            #expect(Self.result(await again.next())["created"] as? Bool == true)
            let resumed = Self.result(await again.next(within: 1))
            #expect(resumed["canceled"] == nil && resumed["events"] == nil, "not compacted: \(resumed)")
        }
    }

    /// A keepalive stream held open: each keepalive answered as it arrives, a lost lease with its
    /// TTL left out, the answer ended with the body.
    @Test func aKeepAliveStreamAnswersEachKeepAlive() async throws {
        try await StorePrimitiveRouteTests.withGateway(live: true) { node, client in
            let port = try #require(client.port)
            _ = await node.write(StoreCommand(operation: .grantLease(id: 77, ttlMilliseconds: 30_000)))
            let stream = try #require(WatchConnection(port: port, path: "/v3/lease/keepalive"))
            #expect(stream.send(#"{"ID":"77"}"#))
            let first = Self.result(await stream.next())
            #expect(first["ID"] as? String == "77" && first["TTL"] as? String == "30")
            _ = await node.write(StoreCommand(operation: .revokeLease(id: 77)))
            #expect(stream.send(#"{"ID":77}"#))
            let second = Self.result(await stream.next())
            #expect(second["ID"] as? String == "77" && second["TTL"] == nil, "a revoked lease: no TTL")
            #expect(stream.endBody())
            #expect(await stream.ended())
        }
    }

    /// A client that goes away mid-stream leaves nothing behind.
    @Test func aClientThatLeavesReleasesItsSubscription() async throws {
        try await StorePrimitiveRouteTests.withGateway(live: true) { node, client in
            let port = try #require(client.port)
            let subscribers = node.changes.subscriberCount
            var watch: WatchConnection? = try #require(WatchConnection(port: port))
            #expect(watch?.send(#"{"create_request":{"key":"\#(Self.base64("k"))"}}"#) == true)
            #expect(Self.result(await watch?.next())["created"] as? Bool == true)
            #expect(node.changes.subscriberCount == subscribers + 1)
            watch = nil
            // The server notices when it next writes: a change, or a progress bookmark.
            await Self.etcdPut(node, "k", [1])
            await Self.etcdPut(node, "k", [2])
            #expect(await StorePrimitiveRouteTests.eventually { node.changes.subscriberCount == subscribers })
        }
    }
}
