import Membership
import Testing

@Suite("Wire codec")
struct CodecTests {
    static let suspect = Member(
        id: MemberID(7), address: "10.0.0.7:7070",
        status: .suspect(incarnation: 300, confirmations: [MemberID(1), MemberID(2), MemberID(99_999_999)]))

    static let samples: [SWIMMessage] = [
        .ping(sequence: 1, target: MemberID(2), gossip: []),
        .ping(
            sequence: UInt64.max, target: MemberID(UInt64.max),
            gossip: [
                Fixtures.alive(1, incarnation: 5), suspect,
                Member(id: MemberID(3), address: "", status: .dead(incarnation: 0)),
            ]),
        .pingRequest(
            sequence: 42, target: MemberID(9), targetAddress: "[fe80::1]:7070",
            gossip: [Member(id: MemberID(4), address: "h:1", status: .left(incarnation: 12))]),
        .ack(sequence: 128, target: MemberID(3), gossip: [suspect]),
        .nack(sequence: 16_384, gossip: [Fixtures.alive(8)]),
        .pushPull(.request, members: (1...30).map { Fixtures.alive($0, incarnation: $0 * 1000) }),
        .pushPull(.response, members: []),
        .leave(member: MemberID(5), incarnation: 77),
        .ping(
            sequence: 3, target: MemberID(1),
            gossip: [
                Member(
                    id: MemberID(6), address: "ünïcødé:1", status: .alive(incarnation: 1),
                    metadata: MemberMetadata(
                        nodeID: 6, role: .worker, httpAddress: "w6:80", tags: ["zone": "eu-1", "gpu": "", "é": "ü"]),
                    metadataVersion: 9)
            ]),
    ]

    @Test(arguments: samples)
    func roundTrips(message: SWIMMessage) throws {
        let bytes = SWIMWireCodec.encode(message)
        #expect(try SWIMWireCodec.decode(bytes) == message)
        #expect(try SWIMWireCodec.encodeDatagram(message, maxBytes: 65_507) == bytes)
        #expect(SWIMWireCodec.encodedSize(message) == bytes.count)
    }

    @Test(arguments: samples)
    func everyTruncationAndExtensionIsAnError(message: SWIMMessage) {
        let bytes = SWIMWireCodec.encode(message)
        for length in 0..<bytes.count {
            #expect(throws: SWIMWireError.self) { try SWIMWireCodec.decode(Array(bytes.prefix(length))) }
        }
        #expect(throws: SWIMWireError.trailingBytes(1)) { try SWIMWireCodec.decode(bytes + [0]) }
    }

    @Test func malformedFieldsAreErrors() {
        #expect(throws: SWIMWireError.unsupportedVersion(2)) { try SWIMWireCodec.decode([2, 1, 0, 0, 0]) }
        #expect(throws: SWIMWireError.unknownMessageType(9)) { try SWIMWireCodec.decode([1, 9]) }
        // An 11-byte varint, and a 10-byte one whose last byte overflows 64 bits.
        #expect(throws: SWIMWireError.malformedVarint) {
            try SWIMWireCodec.decode([1, 4] + Array(repeating: 0xFF, count: 10) + [0x01, 0])
        }
        #expect(throws: SWIMWireError.malformedVarint) {
            try SWIMWireCodec.decode([1, 4] + Array(repeating: 0xFF, count: 9) + [0x02, 0])
        }
        // A gossip count of 2^28 with nothing behind it must not allocate anything.
        #expect(throws: SWIMWireError.truncated) { try SWIMWireCodec.decode([1, 4, 0, 0x80, 0x80, 0x80, 0x80, 0x01]) }
        // A member with status 7, and one with a presence flag of 2.
        #expect(throws: SWIMWireError.unknownStatus(7)) { try SWIMWireCodec.decode([1, 4, 0, 1, 1, 0, 7, 0, 0]) }
        #expect(throws: SWIMWireError.invalidFlag(2)) { try SWIMWireCodec.decode([1, 4, 0, 1, 1, 0, 0, 0, 2]) }
        // An address that is not UTF-8.
        #expect(throws: SWIMWireError.invalidUTF8) {
            try SWIMWireCodec.decode([1, 4, 0, 1, 1, 2, 0xC3, 0x28, 0, 0, 0])
        }
        #expect(throws: SWIMWireError.unknownPushPullKind(3)) { try SWIMWireCodec.decode([1, 5, 3, 0]) }
    }

    /// Random bytes, and valid messages with random bytes changed, decode to a value or an error:
    /// never a crash, never a hang.
    @Test func garbageNeverCrashes() {
        var random = SWIMRandom(seed: 0xBAD_F00D)
        var errors = 0
        for round in 0..<20_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<random.next(below: 64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                if bytes.count > 1 && random.chance(0.5) { bytes[0] = 1 }
            } else {
                bytes = SWIMWireCodec.encode(Self.samples[random.next(below: Self.samples.count)])
                for _ in 0...random.next(below: 4) {
                    bytes[random.next(below: bytes.count)] = UInt8(truncatingIfNeeded: random.next())
                }
            }
            do {
                let message = try SWIMWireCodec.decode(bytes)
                // Whatever decodes re-encodes to something that decodes to the same message.
                #expect(try SWIMWireCodec.decode(SWIMWireCodec.encode(message)) == message)
            } catch {
                errors += 1
            }
        }
        #expect(errors > 10_000, "most garbage is rejected")
    }

    @Test func datagramsStayUnder1400BytesWithManyMembers() throws {
        var crowd: [Member] = []
        for node in 1...UInt64(100) {
            let confirmations = Set((1...UInt64(5)).map { MemberID($0) })
            let status: MemberStatus =
                node % 3 == 0 ? .suspect(incarnation: 9, confirmations: confirmations) : .alive(incarnation: node)
            let metadata = Fixtures.metadata(node, tags: ["zone": "zone-\(node % 4)", "build": "2025.1"])
            crowd.append(
                Member(
                    id: MemberID(node), address: "gateway-\(node).example.internal:7070", status: status,
                    metadata: metadata, metadataVersion: 3))
        }
        #expect(SWIMWireCodec.encodedSize(.ping(sequence: 1, target: MemberID(1), gossip: crowd)) > 10_000)
        let bytes = try SWIMWireCodec.encodeDatagram(.ping(sequence: 1, target: MemberID(1), gossip: crowd))
        #expect(bytes.count <= 1400)
        guard case .ping(1, MemberID(1), let kept) = try SWIMWireCodec.decode(bytes) else {
            Issue.record("not a ping")
            return
        }
        #expect(!kept.isEmpty && kept.count < crowd.count)
        #expect(kept == Array(crowd.prefix(kept.count)), "the records that fit, in order")

        // A datagram that cannot fit even without gossip is refused, not truncated.
        let long = String(repeating: "x", count: 1500)
        #expect(throws: SWIMWireError.self) {
            try SWIMWireCodec.encodeDatagram(
                .pingRequest(sequence: 1, target: MemberID(2), targetAddress: long, gossip: []))
        }
    }

    /// The instance itself sizes its gossip: everything it sends to a crowd fits `maxPayloadBytes`.
    @Test func instanceDatagramsFitTheirBudget() throws {
        var instance = try Fixtures.instance(1, knowing: 100)
        var datagrams = 0
        for _ in 0..<400 {
            for (message, _) in Fixtures.sends(instance.tick()) {
                let bytes = try SWIMWireCodec.encodeDatagram(message, maxBytes: instance.settings.maxPayloadBytes)
                #expect(try SWIMWireCodec.decode(bytes) == message, "nothing was dropped by the encoder")
                #expect(bytes.count <= 1400)
                #expect(message.gossip.count <= instance.settings.maxGossipPerMessage)
                datagrams += 1
            }
        }
        #expect(datagrams > 20, "probes continue (slowed by local health: nobody acks)")
    }
}
