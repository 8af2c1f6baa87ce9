import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

@testable import Gateway

#if canImport(Glibc)
    import Glibc
#endif

/// The HTTP listener's connection cap and request deadlines, over real sockets.
@Suite("Connection guard: connection cap, header and request deadlines")
struct ConnectionGuardTests {
    static func withServer(
        _ configure: (inout ConnectionLimits) -> Void, _ body: @Sendable (Int, ConnectionCounter) async throws -> Void
    ) async throws {
        var limits = ConnectionLimits()
        configure(&limits)
        let counter = ConnectionCounter(limit: limits.maxConnections)
        let router = Router()
        router.get("hello") { _, _ in "hello" }
        router.put("echo") { request, _ in
            var request = request
            return String(buffer: try await request.collectBody(upTo: 1 << 20))
        }
        let app = Application(router: router, server: .guardedHTTP1(limits, counter: counter))
        try await app.test(.live) { client in try await body(try #require(client.port), counter) }
    }

    /// Everything the server sends until it closes the connection (or the read times out).
    static func readToClose(_ descriptor: Int32) -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { return (String(decoding: received, as: UTF8.self), true) }
            if count < 0 { return (String(decoding: received, as: UTF8.self), false) }
            received += chunk[..<count]
        }
    }

    /// One request on an open connection; the response's status line and body (the response is
    /// small and sent at once with Content-Length).
    static func exchange(_ descriptor: Int32, _ request: String) -> String? {
        guard LoopbackSocket.send(Array(request.utf8), on: descriptor) else { return nil }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return nil }
            received += chunk[..<count]
            let text = String(decoding: received, as: UTF8.self)
            guard let split = text.range(of: "\r\n\r\n") else { continue }
            let head = text[..<split.lowerBound].lowercased()
            guard let lengthLine = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
                let length = Int(lengthLine.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
            else { return text }
            if text.utf8.count - text[..<split.upperBound].utf8.count >= length { return text }
        }
    }

    static let hello = "GET /hello HTTP/1.1\r\nHost: test\r\n\r\n"

    @Test func connectionsBeyondTheCapAreRefusedAndTheRestServedThenItRecovers() async throws {
        try await Self.withServer({ $0.maxConnections = 50 }) { port, counter in
            // The live test framework's own client connects at start and takes a place too.
            _ = await Self.eventually(within: .seconds(1)) { counter.current == 1 }
            let room = 50 - counter.current
            let held = await offThePool { (0..<room).compactMap { _ in LoopbackSocket.connect(port: port) } }
            defer { held.dropFirst().forEach { close($0) } }
            #expect(held.count == room)
            #expect(await Self.eventually { counter.current == 50 })
            // The extra connections get a 503 naming the limit, and are closed.
            for _ in 0..<10 {
                let extra = await offThePool { () -> (String, Bool)? in
                    guard let descriptor = LoopbackSocket.connect(port: port) else { return nil }
                    defer { close(descriptor) }
                    return Self.readToClose(descriptor)
                }
                let (text, closed) = try #require(extra)
                #expect(text.hasPrefix("HTTP/1.1 503"), "\(text)")
                #expect(text.contains(#""code":"too_many_connections""#))
                #expect(closed)
            }
            // The admitted ones are served.
            for descriptor in held {
                let answer = await offThePool { Self.exchange(descriptor, Self.hello) }
                #expect(answer?.hasPrefix("HTTP/1.1 200") == true && answer?.hasSuffix("hello") == true)
            }
            // One closes: a new connection is served again.
            close(held[0])
            #expect(
                await Self.eventually {
                    await offThePool {
                        guard let descriptor = LoopbackSocket.connect(port: port) else { return false }
                        defer { close(descriptor) }
                        return Self.exchange(descriptor, Self.hello)?.hasPrefix("HTTP/1.1 200") == true
                    }
                })
            #expect(counter.current <= 50)
        }
    }

    @Test func aClientTricklingItsHeaderOrBodyIsCutOff() async throws {
        try await Self.withServer({
            $0.headerTimeout = .milliseconds(300)
            $0.requestTimeout = .milliseconds(800)
        }) { port, counter in
            // A header that never completes: 408 after the header deadline, and the close.
            let header = await offThePool { () -> (String, Bool)? in
                guard let descriptor = LoopbackSocket.connect(port: port) else { return nil }
                defer { close(descriptor) }
                _ = LoopbackSocket.send(Array("GET /hello HTTP/1.1\r\nHo".utf8), on: descriptor)
                return Self.readToClose(descriptor)
            }
            let (headerText, headerClosed) = try #require(header)
            #expect(headerText.hasPrefix("HTTP/1.1 408") && headerText.contains("request_timeout"), "\(headerText)")
            #expect(headerClosed)
            // A body that stops short of its Content-Length: 408 after the request deadline.
            let body = await offThePool { () -> (String, Bool)? in
                guard let descriptor = LoopbackSocket.connect(port: port) else { return nil }
                defer { close(descriptor) }
                _ = LoopbackSocket.send(
                    Array("PUT /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nonly ten..".utf8),
                    on: descriptor)
                return Self.readToClose(descriptor)
            }
            let (bodyText, bodyClosed) = try #require(body)
            #expect(bodyText.hasPrefix("HTTP/1.1 408"), "\(bodyText)")
            #expect(bodyClosed)
            // A keep-alive connection may sit idle between requests past the header deadline (that
            // is the idle timeout's business), and whole requests are served as before.
            let kept = await offThePool { () -> [String?] in
                guard let descriptor = LoopbackSocket.connect(port: port) else { return [] }
                defer { close(descriptor) }
                let first = Self.exchange(descriptor, Self.hello)
                usleep(500_000)
                return [first, Self.exchange(descriptor, Self.hello)]
            }
            #expect(kept.count == 2 && kept.allSatisfy { $0?.hasPrefix("HTTP/1.1 200") == true }, "\(kept)")
        }
    }

    /// Review finding 9: a request pipelined behind another, whose head the HTTP codec hands on
    /// from its buffer once the first is answered, still has its body timed: trickling it is cut
    /// off at the request deadline.
    @Test func aPipelinedRequestsBodyIsTimedToo() async throws {
        try await Self.withServer({
            $0.headerTimeout = .milliseconds(300)
            $0.requestTimeout = .milliseconds(800)
        }) { port, _ in
            let answer = await offThePool { () -> (String, Bool)? in
                guard let descriptor = LoopbackSocket.connect(port: port) else { return nil }
                defer { close(descriptor) }
                let pipelined = Self.hello + "PUT /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nonly ten.."
                _ = LoopbackSocket.send(Array(pipelined.utf8), on: descriptor)
                return Self.readToClose(descriptor)
            }
            let (text, closed) = try #require(answer)
            #expect(text.hasPrefix("HTTP/1.1 200"), "the first request is answered: \(text)")
            #expect(text.contains("HTTP/1.1 408") && text.contains("request_timeout"), "\(text)")
            #expect(closed, "the connection is closed, not held by the trickled body")
        }
    }

    static func eventually(within limit: Duration = .seconds(10), _ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + limit
        repeat {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        } while ContinuousClock.now < deadline
        return false
    }
}
