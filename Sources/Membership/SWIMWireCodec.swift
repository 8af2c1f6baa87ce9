/// The compact binary form of `SWIMMessage`.
///
/// Layout (varint = unsigned LEB128, string = varint length + UTF-8 bytes):
/// ```
/// message   := version(1 byte, = 1) type(1 byte) body
/// ping      (1) := sequence target:varint gossip
/// pingReq   (2) := sequence target:varint targetAddress:string gossip
/// ack       (3) := sequence target:varint gossip
/// nack      (4) := sequence gossip
/// pushPull  (5) := kind(1 byte) members
/// leave     (6) := member:varint incarnation
/// gossip, members := count:varint member*
/// member    := id:varint address:string status(1 byte: 0 alive, 1 suspect, 2 dead, 3 left)
///              incarnation [suspect: count:varint id:varint*] hasMetadata(1 byte: 0/1)
///              [metadataVersion nodeID:varint role http raft swim:string tags:count (key value)*]
/// ```
/// Gossip always comes last, so an encoder can stop adding records when the datagram is full.
///
/// Authentication is the shell's job: the output is an opaque payload it can wrap (key id, MAC) and
/// unwrap before `decode`. `SWIMSettings.maxPayloadBytes` leaves room for that wrapper.
public enum SWIMWireCodec {
    public static let version: UInt8 = 1
    /// The largest datagram the membership layer puts on the wire (fits a 1,500-byte MTU).
    public static let datagramLimit = 1400

    /// Encodes `message` whole (push-pull over TCP, or anything when size does not matter).
    public static func encode(_ message: SWIMMessage) -> [UInt8] {
        var writer = WireWriter()
        writeHeader(message, into: &writer)
        let gossip = message.gossip
        if hasGossipTail(message) || isPushPull(message) {
            writer.varint(UInt64(gossip.count))
            for member in gossip { write(member, into: &writer) }
        }
        return writer.bytes
    }

    /// Encodes `message` into at most `maxBytes`, leaving out gossip records that do not fit (in
    /// order: a record too large is skipped and smaller later ones may still go). Throws
    /// `tooLarge` when even the message without gossip does not fit, or for a push-pull that does
    /// not fit whole.
    public static func encodeDatagram(
        _ message: SWIMMessage, maxBytes: Int = datagramLimit
    ) throws(SWIMWireError) -> [UInt8] {
        guard hasGossipTail(message) else {
            let whole = encode(message)
            guard whole.count <= maxBytes else { throw .tooLarge(whole.count) }
            return whole
        }
        var header = WireWriter()
        writeHeader(message, into: &header)
        var chosen: [[UInt8]] = []
        var used = 0
        for member in message.gossip {
            var item = WireWriter()
            write(member, into: &item)
            let total =
                header.bytes.count + WireWriter.varintSize(UInt64(chosen.count + 1)) + used + item.bytes.count
            guard total <= maxBytes else { continue }
            chosen.append(item.bytes)
            used += item.bytes.count
        }
        let size = header.bytes.count + WireWriter.varintSize(UInt64(chosen.count)) + used
        guard size <= maxBytes else { throw .tooLarge(size) }
        header.varint(UInt64(chosen.count))
        for item in chosen { header.bytes.append(contentsOf: item) }
        return header.bytes
    }

    /// Decodes one message, rejecting anything malformed, truncated or followed by extra bytes.
    public static func decode(_ bytes: [UInt8]) throws(SWIMWireError) -> SWIMMessage {
        var reader = WireReader(bytes)
        let version = try reader.byte()
        guard version == Self.version else { throw .unsupportedVersion(version) }
        let type = try reader.byte()
        let message: SWIMMessage
        switch type {
        case 1:
            let sequence = try reader.varint()
            let target = MemberID(try reader.varint())
            message = .ping(sequence: sequence, target: target, gossip: try readMembers(&reader))
        case 2:
            let sequence = try reader.varint()
            let target = MemberID(try reader.varint())
            let address = try reader.string()
            message = .pingRequest(
                sequence: sequence, target: target, targetAddress: address, gossip: try readMembers(&reader))
        case 3:
            let sequence = try reader.varint()
            let target = MemberID(try reader.varint())
            message = .ack(sequence: sequence, target: target, gossip: try readMembers(&reader))
        case 4:
            let sequence = try reader.varint()
            message = .nack(sequence: sequence, gossip: try readMembers(&reader))
        case 5:
            let rawKind = try reader.byte()
            guard let kind = PushPullKind(rawValue: rawKind) else { throw .unknownPushPullKind(rawKind) }
            message = .pushPull(kind, members: try readMembers(&reader))
        case 6:
            let member = MemberID(try reader.varint())
            message = .leave(member: member, incarnation: try reader.varint())
        default:
            throw .unknownMessageType(type)
        }
        guard reader.remaining == 0 else { throw .trailingBytes(reader.remaining) }
        return message
    }

    /// The encoded size of `message` with all its gossip.
    public static func encodedSize(_ message: SWIMMessage) -> Int { encode(message).count }

    /// The encoded size of one member record.
    public static func encodedSize(of member: Member) -> Int {
        var writer = WireWriter()
        write(member, into: &writer)
        return writer.bytes.count
    }

    // MARK: Writing

    private static func hasGossipTail(_ message: SWIMMessage) -> Bool {
        switch message {
        case .ping, .pingRequest, .ack, .nack: true
        case .pushPull, .leave: false
        }
    }

    private static func isPushPull(_ message: SWIMMessage) -> Bool {
        if case .pushPull = message { return true }
        return false
    }

    /// Everything before the member list.
    private static func writeHeader(_ message: SWIMMessage, into writer: inout WireWriter) {
        writer.byte(version)
        switch message {
        case .ping(let sequence, let target, _):
            writer.byte(1)
            writer.varint(sequence)
            writer.varint(target.node)
        case .pingRequest(let sequence, let target, let address, _):
            writer.byte(2)
            writer.varint(sequence)
            writer.varint(target.node)
            writer.string(address)
        case .ack(let sequence, let target, _):
            writer.byte(3)
            writer.varint(sequence)
            writer.varint(target.node)
        case .nack(let sequence, _):
            writer.byte(4)
            writer.varint(sequence)
        case .pushPull(let kind, _):
            writer.byte(5)
            writer.byte(kind.rawValue)
        case .leave(let member, let incarnation):
            writer.byte(6)
            writer.varint(member.node)
            writer.varint(incarnation)
        }
    }

    private static func write(_ member: Member, into writer: inout WireWriter) {
        writer.varint(member.id.node)
        writer.string(member.address)
        writer.byte(UInt8(member.status.kind.rawValue))
        writer.varint(member.status.incarnation)
        if case .suspect(_, let confirmations) = member.status {
            writer.varint(UInt64(confirmations.count))
            for id in confirmations.sorted() { writer.varint(id.node) }
        }
        guard let metadata = member.metadata else {
            writer.byte(0)
            return
        }
        writer.byte(1)
        writer.varint(member.metadataVersion)
        writer.varint(metadata.nodeID)
        writer.string(metadata.role.rawValue)
        writer.string(metadata.httpAddress)
        writer.string(metadata.raftAddress)
        writer.string(metadata.swimAddress)
        writer.varint(UInt64(metadata.tags.count))
        for key in metadata.tags.keys.sorted() {
            writer.string(key)
            writer.string(metadata.tags[key]!)
        }
    }

    // MARK: Reading

    /// The smallest encoded member: id, empty address, status, incarnation, flag.
    private static let minimumMemberBytes = 5

    private static func readMembers(_ reader: inout WireReader) throws(SWIMWireError) -> [Member] {
        let count = try reader.count(minimumItemBytes: minimumMemberBytes)
        var members: [Member] = []
        members.reserveCapacity(count)
        for _ in 0..<count { members.append(try readMember(&reader)) }
        return members
    }

    private static func readMember(_ reader: inout WireReader) throws(SWIMWireError) -> Member {
        let id = MemberID(try reader.varint())
        let address = try reader.string()
        let rawStatus = try reader.byte()
        let incarnation = try reader.varint()
        let status: MemberStatus
        switch rawStatus {
        case 0: status = .alive(incarnation: incarnation)
        case 1:
            let count = try reader.count(minimumItemBytes: 1)
            var confirmations = Set<MemberID>()
            for _ in 0..<count { confirmations.insert(MemberID(try reader.varint())) }
            status = .suspect(incarnation: incarnation, confirmations: confirmations)
        case 2: status = .dead(incarnation: incarnation)
        case 3: status = .left(incarnation: incarnation)
        default: throw .unknownStatus(rawStatus)
        }
        let flag = try reader.byte()
        switch flag {
        case 0:
            return Member(id: id, address: address, status: status)
        case 1:
            let version = try reader.varint()
            let nodeID = try reader.varint()
            let role = MemberRole(rawValue: try reader.string())
            let http = try reader.string()
            let raft = try reader.string()
            let swim = try reader.string()
            let tagCount = try reader.count(minimumItemBytes: 2)
            var tags: [String: String] = [:]
            for _ in 0..<tagCount {
                let key = try reader.string()
                let value = try reader.string()
                guard tags.updateValue(value, forKey: key) == nil else { throw .duplicateTag }
            }
            let metadata = MemberMetadata(
                nodeID: nodeID, role: role, httpAddress: http, raftAddress: raft, swimAddress: swim, tags: tags)
            return Member(id: id, address: address, status: status, metadata: metadata, metadataVersion: version)
        default:
            throw .invalidFlag(flag)
        }
    }
}
