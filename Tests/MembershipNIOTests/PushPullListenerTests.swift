import Foundation
import Membership
import TestPorts
import Testing

@testable import MembershipNIO

/// The TCP side of the service, spoken to directly: push-pull state exchange (memberlist's
/// full-state sync), one request frame in, one response frame out, then the listener hangs up.
@Suite("Push-pull listener over TCP")
struct PushPullListenerTests {
    /// Sends `bytes` to 127.0.0.1:`port` and returns everything read until the listener closes.
    static func exchange(_ bytes: [UInt8], port: Int) throws -> [UInt8] {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        try #require(connected == 0, "connect: \(String(cString: strerror(errno)))")
        let sent = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
        try #require(sent == bytes.count)
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            received += chunk[..<count]
        }
        return received
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

        let answer = try Self.exchange(Self.frame(request), port: base + 1)

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

        #expect(try Self.exchange(Self.frame(forged), port: base + 1).isEmpty, "a forged request: no answer")
        #expect(try Self.exchange(Self.frame(garbage), port: base + 1).isEmpty, "garbage: no answer")
        // A length far over the limit is refused before any body is awaited.
        #expect(try Self.exchange([0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3], port: base + 1).isEmpty)

        #expect(await services[1]!.droppedUnauthenticated == 2)
        #expect(Set(await services[1]!.members) == Set(before), "nothing merged")
        // And the listener still serves a real request.
        let authenticator = MessageAuthenticator(clusterKey: MembershipServiceTests.key)
        let request = authenticator.seal(SWIMWireCodec.encode(.pushPull(.request, members: [])))
        #expect(try Self.unframe(Self.exchange(Self.frame(request), port: base + 1)) != nil)
    }
}
