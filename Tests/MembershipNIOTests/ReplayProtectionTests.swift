import Foundation
import Membership
import TestSupport
import Testing

@testable import MembershipNIO

/// Recorded SWIM datagrams played back at a real service over UDP: a copy of one it already took,
/// or one stamped outside the replay window, is dropped and counted and changes nothing.
@Suite("SWIM replay protection over UDP")
struct ReplayProtectionTests {
    static let authenticator = MessageAuthenticator(clusterKey: MembershipServiceTests.key)

    /// A ping for n1 carrying gossip about `member` (at a port nobody listens on), sealed as a
    /// member would seal it at `sentAt`.
    static func ping(sequence: UInt64, gossipAbout member: UInt64, base: Int, sentAt: UInt64) -> [UInt8] {
        let gossip = Member(
            id: MemberID(member), address: "127.0.0.1:\(base + Int(member))", status: .alive(incarnation: 1),
            metadata: nil, metadataVersion: 0)
        return authenticator.seal(
            SWIMWireCodec.encode(.ping(sequence: sequence, target: MemberID(1), gossip: [gossip])), kind: .datagram,
            stamp: PacketStamp(sentAtMillis: sentAt, nonce: UInt64.random(in: 0...UInt64.max)))
    }

    /// The sequence of the ack in `datagram`, if it is a sealed ack.
    static func ackSequence(_ datagram: [UInt8]?) -> UInt64? {
        guard let datagram, let (_, payload) = authenticator.open(datagram, kind: .datagram),
            case .ack(let sequence, _, _) = try? SWIMWireCodec.decode(payload)
        else { return nil }
        return sequence
    }

    @Test func aReplayedDatagramIsDroppedAndCounted() async throws {
        let base = TestPorts.block()
        let services = try await MembershipServiceTests.start([1], base: base)
        let service = services[1]!
        let socket = try #require(LoopbackDatagramSocket(port: base + 50))
        let recorded = Self.ping(sequence: 7, gossipAbout: 9, base: base, sentAt: MembershipService.wallClockMillis())

        socket.send(recorded, to: base + 1)
        #expect(Self.ackSequence(await offThePool { socket.receive() }) == 7, "the original is answered")
        #expect(await service.member(9) != nil, "and its gossip merged")

        socket.send(recorded, to: base + 1)
        #expect(await MembershipServiceTests.eventually(within: 5) { await service.droppedReplayed == 1 })
        #expect(socket.receive(wait: false) == nil, "the copy got no ack")
        #expect(await service.droppedUnauthenticated == 0, "it was authentic, just not fresh")
        await service.stop()
    }

    @Test func aDatagramOutsideTheWindowIsDropped() async throws {
        let base = TestPorts.block()
        let services = try await MembershipServiceTests.start([1], base: base)
        let service = services[1]!
        let socket = try #require(LoopbackDatagramSocket(port: base + 50))
        let now = MembershipService.wallClockMillis()

        // Recorded ten minutes ago, and stamped by a clock ten minutes fast.
        socket.send(Self.ping(sequence: 1, gossipAbout: 9, base: base, sentAt: now - 600_000), to: base + 1)
        socket.send(Self.ping(sequence: 2, gossipAbout: 10, base: base, sentAt: now + 600_000), to: base + 1)

        #expect(await MembershipServiceTests.eventually(within: 5) { await service.droppedOutOfWindow == 2 })
        #expect(await service.member(9) == nil, "no gossip merged")
        #expect(await service.member(10) == nil)
        #expect(socket.receive(wait: false) == nil, "no ack")
        // Inside the window, the same member's ping is taken.
        socket.send(Self.ping(sequence: 3, gossipAbout: 9, base: base, sentAt: now), to: base + 1)
        #expect(Self.ackSequence(await offThePool { socket.receive() }) == 3)
        await service.stop()
    }
}
