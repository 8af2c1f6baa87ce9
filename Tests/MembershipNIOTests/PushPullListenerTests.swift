import Foundation
import Membership
import TestSupport
import Testing

@testable import MembershipNIO

/// The TCP side of the service, spoken to directly: push-pull state exchange (memberlist's
/// full-state sync), one request frame in, one response frame out, then the listener hangs up.
@Suite("Push-pull listener over TCP")
struct PushPullListenerTests {
    /// Sends `bytes` to 127.0.0.1:`port` and returns everything read until the listener closes,
    /// or nil if it could not be reached. Off the pool: the listener answers from this process.
    static func exchange(_ bytes: [UInt8], port: Int) async -> [UInt8]? {
        await offThePool {
            guard let descriptor = LoopbackSocket.connect(port: port) else { return nil }
            defer { close(descriptor) }
            guard LoopbackSocket.send(bytes, on: descriptor) else { return nil }
            var received: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { break }
                received += chunk[..<count]
            }
            return received
        }
    }

    static func frame(_ payload: [UInt8]) -> [UInt8] {
        withUnsafeBytes(of: UInt32(payload.count).bigEndian) { Array($0) } + payload
    }

    static func unframe(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count >= 4 else { return nil }
        let length = bytes[..<4].reduce(0) { $0 << 8 | Int($1) }
        return bytes.count == 4 + length ? Array(bytes[4...]) : nil
    }

    @Test func aRequestIsMergedAndAnsweredWithTheWholeState() async throws {
        let base = TestPorts.block()
        let services = try await MembershipServiceTests.start([1, 2], base: base)
        defer { Task { for service in services.values { await service.stop() } } }
        #expect(
            await MembershipServiceTests.eventually {
                await MembershipServiceTests.status(services[1]!, of: 2) == .alive
            }, "n1 knows n2")
        let authenticator = MessageAuthenticator(clusterKey: MembershipServiceTests.key)
        // A member no datagram ever mentioned: only the TCP exchange can teach it to n1.
        let stranger = Member(
            id: MemberID(9), address: "127.0.0.1:\(base + 9)", status: .alive(incarnation: 1),
            metadata: MemberMetadata(nodeID: 9, role: .worker, httpAddress: "127.0.0.1:\(base + 99)"),
            metadataVersion: 1)
        let request = authenticator.seal(SWIMWireCodec.encode(.pushPull(.request, members: [stranger])))

        let answer = try #require(await Self.exchange(Self.frame(request), port: base + 1), "the listener accepts")

        let sealed = try #require(Self.unframe(answer), "one whole frame, then the listener closed")
        let payload = try #require(authenticator.open(sealed), "the response is sealed with the cluster key")
        guard case .pushPull(.response, let members) = try SWIMWireCodec.decode(payload) else {
            Issue.record("not a push-pull response: \(try SWIMWireCodec.decode(payload))")
            return
        }
        #expect(Set(members.map(\.id.node)).isSuperset(of: [1, 2]), "n1's whole view: \(members)")
        let learned = await services[1]!.member(9)
        #expect(learned?.metadata?.role == .worker, "n1 merged what the request carried")
    }

    @Test func garbageAndForgeriesGetNoAnswerAndChangeNothing() async throws {
        let base = TestPorts.block()
        let services = try await MembershipServiceTests.start([1], base: base)
        defer { Task { await services[1]!.stop() } }
        let before = await services[1]!.members
        let forged = MessageAuthenticator(clusterKey: Array("not-the-cluster-key-at-all".utf8))
            .seal(SWIMWireCodec.encode(.pushPull(.request, members: [])))
        var generator = SystemRandomNumberGenerator()
        let garbage = (0..<300).map { _ in UInt8.random(in: 0...255, using: &generator) }

        let forgedAnswer = await Self.exchange(Self.frame(forged), port: base + 1)
        #expect(forgedAnswer == [], "a forged request: no answer")
        let garbageAnswer = await Self.exchange(Self.frame(garbage), port: base + 1)
        #expect(garbageAnswer == [], "garbage: no answer")
        // A length far over the limit is refused before any body is awaited.
        let oversizedAnswer = await Self.exchange([0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3], port: base + 1)
        #expect(oversizedAnswer == [])

        #expect(await services[1]!.droppedUnauthenticated == 2)
        #expect(Set(await services[1]!.members) == Set(before), "nothing merged")
        // And the listener still serves a real request.
        let authenticator = MessageAuthenticator(clusterKey: MembershipServiceTests.key)
        let request = authenticator.seal(SWIMWireCodec.encode(.pushPull(.request, members: [])))
        let answer = await Self.exchange(Self.frame(request), port: base + 1)
        #expect(answer.flatMap(Self.unframe) != nil)
    }
}
