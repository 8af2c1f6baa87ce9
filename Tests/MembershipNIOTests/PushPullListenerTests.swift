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

    static func freshStamp() -> PacketStamp {
        PacketStamp(sentAtMillis: MembershipService.wallClockMillis(), nonce: UInt64.random(in: 0...UInt64.max))
    }

    static func request(
        _ members: [Member], stamp: PacketStamp = freshStamp(), key: [UInt8] = MembershipServiceTests.key
    ) -> [UInt8] {
        MessageAuthenticator(clusterKey: key).seal(
            SWIMWireCodec.encode(.pushPull(.request, members: members)), kind: .pushPullRequest, stamp: stamp)
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
        let stamp = Self.freshStamp()
        let request = Self.request([stranger], stamp: stamp)

        let answer = try #require(await Self.exchange(Self.frame(request), port: base + 1), "the listener accepts")

        let sealed = try #require(Self.unframe(answer), "one whole frame, then the listener closed")
        #expect(authenticator.open(sealed, kind: .pushPullResponse) == nil, "the answer is bound to the request")
        let (_, payload) = try #require(
            authenticator.open(sealed, kind: .pushPullResponse, context: stamp.bytes),
            "the response is sealed with the cluster key, for this request")
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
        let forged = Self.request([], key: Array("not-the-cluster-key-at-all".utf8))
        var generator = SystemRandomNumberGenerator()
        let garbage = (0..<300).map { _ in UInt8.random(in: 0...255, using: &generator) }
        // Authentic, but sealed for another use: a datagram is not a push-pull request.
        let datagram = MessageAuthenticator(clusterKey: MembershipServiceTests.key).seal(
            SWIMWireCodec.encode(.pushPull(.request, members: [])), kind: .datagram, stamp: Self.freshStamp())

        let forgedAnswer = await Self.exchange(Self.frame(forged), port: base + 1)
        #expect(forgedAnswer == [], "a forged request: no answer")
        let garbageAnswer = await Self.exchange(Self.frame(garbage), port: base + 1)
        #expect(garbageAnswer == [], "garbage: no answer")
        let datagramAnswer = await Self.exchange(Self.frame(datagram), port: base + 1)
        #expect(datagramAnswer == [], "a datagram's seal: no answer")
        // A length far over the limit is refused before any body is awaited.
        let oversizedAnswer = await Self.exchange([0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3], port: base + 1)
        #expect(oversizedAnswer == [])

        #expect(await services[1]!.droppedUnauthenticated == 3)
        #expect(Set(await services[1]!.members) == Set(before), "nothing merged")
        // And the listener still serves a real request.
        let answer = await Self.exchange(Self.frame(Self.request([])), port: base + 1)
        #expect(answer.flatMap(Self.unframe) != nil)
    }

    /// Someone who recorded a member's push-pull request plays it again: no member list for them,
    /// and the recorded (by then perhaps long stale) records are not merged again.
    @Test func aReplayedRequestGetsNoAnswer() async throws {
        let base = TestPorts.block()
        let services = try await MembershipServiceTests.start([1], base: base)
        defer { Task { await services[1]!.stop() } }
        let recorded = Self.frame(Self.request([]))
        let first = await Self.exchange(recorded, port: base + 1)
        #expect(first.flatMap(Self.unframe) != nil, "the original is answered")

        let replayed = await Self.exchange(recorded, port: base + 1)

        #expect(replayed == [], "its copy is not")
        #expect(await services[1]!.droppedReplayed == 1)
        // Recorded longer ago than the window: refused on its timestamp alone.
        let old = PacketStamp(sentAtMillis: MembershipService.wallClockMillis() - 60_000, nonce: 1)
        let stale = await Self.exchange(Self.frame(Self.request([], stamp: old)), port: base + 1)
        #expect(stale == [])
        #expect(await services[1]!.droppedOutOfWindow == 1)
        let fresh = await Self.exchange(Self.frame(Self.request([])), port: base + 1)
        #expect(fresh.flatMap(Self.unframe) != nil, "a fresh request is still answered")
    }
}
