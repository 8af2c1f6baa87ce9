import Raft

/// Everything that travels between nodes: Raft's own messages, and writes a follower forwards to
/// the leader together with their answers. Forwarded traffic shares the frame layout of Raft
/// messages (version, from, to, term, type) with types 100 and up, so one codec reads both.
public enum PeerEnvelope: Sendable, Hashable {
    case raft(Message)
    /// A follower asks the leader to propose `command` on behalf of one of its clients.
    case forwardedWrite(ForwardedWrite)
    /// The leader's answer to a forwarded write.
    case forwardedResult(ForwardedResult)

    public var destination: NodeID {
        switch self {
        case .raft(let message): message.to
        case .forwardedWrite(let write): write.to
        case .forwardedResult(let result): result.to
        }
    }
}

public struct ForwardedWrite: Sendable, Hashable {
    public var requestID: UInt64
    public var from: NodeID
    public var to: NodeID
    public var command: [UInt8]

    public init(requestID: UInt64, from: NodeID, to: NodeID, command: [UInt8]) {
        self.requestID = requestID
        self.from = from
        self.to = to
        self.command = command
    }
}

public struct ForwardedResult: Sendable, Hashable {
    public var requestID: UInt64
    public var from: NodeID
    public var to: NodeID
    public var outcome: WriteOutcome

    public init(requestID: UInt64, from: NodeID, to: NodeID, outcome: WriteOutcome) {
        self.requestID = requestID
        self.from = from
        self.to = to
        self.outcome = outcome
    }
}

extension PeerFrame {
    static let forwardedWriteType: UInt8 = 100
    static let forwardedResultType: UInt8 = 101

    public static func encode(_ envelope: PeerEnvelope) -> [UInt8] {
        let (from, to, type, payload): (NodeID, NodeID, UInt8, [UInt8])
        switch envelope {
        case .raft(let message):
            return encode(message)
        case .forwardedWrite(let write):
            var bytes: [UInt8] = []
            bytes.appendLittleEndian(write.requestID)
            bytes.appendLengthPrefixed(write.command)
            (from, to, type, payload) = (write.from, write.to, forwardedWriteType, bytes)
        case .forwardedResult(let result):
            var bytes: [UInt8] = []
            bytes.appendLittleEndian(result.requestID)
            encode(result.outcome, into: &bytes)
            (from, to, type, payload) = (result.from, result.to, forwardedResultType, bytes)
        }
        var body: [UInt8] = [version]
        body.appendLittleEndian(from)
        body.appendLittleEndian(to)
        body.appendLittleEndian(UInt64(0))
        body.append(type)
        body += payload
        var frame: [UInt8] = []
        frame.appendLittleEndian(UInt32(body.count))
        return frame + body
    }

    /// Decodes one frame body into whichever envelope it holds.
    public static func decodeEnvelope(_ bytes: ArraySlice<UInt8>) throws(PeerFrameError) -> PeerEnvelope {
        let typeOffset = bytes.startIndex + 25
        guard bytes.count > 25, bytes[typeOffset] >= forwardedWriteType else {
            return .raft(try decodeBody(bytes))
        }
        var reader = StoreReader(bytes)
        do {
            guard try reader.byte() == version else { throw PeerFrameError.unsupportedVersion }
            let from = try reader.uint64()
            let to = try reader.uint64()
            _ = try reader.uint64()
            let type = try reader.byte()
            let requestID = try reader.uint64()
            let envelope: PeerEnvelope
            switch type {
            case forwardedWriteType:
                envelope = .forwardedWrite(
                    ForwardedWrite(requestID: requestID, from: from, to: to, command: try reader.lengthPrefixed()))
            case forwardedResultType:
                envelope = .forwardedResult(
                    ForwardedResult(requestID: requestID, from: from, to: to, outcome: try decodeOutcome(&reader)))
            default:
                throw PeerFrameError.malformed("unknown message type \(type)")
            }
            guard reader.isAtEnd, from != 0, to != 0 else { throw PeerFrameError.malformed("forwarded frame") }
            return envelope
        } catch let error as PeerFrameError {
            throw error
        } catch {
            throw .truncated
        }
    }

    private static func encode(_ outcome: WriteOutcome, into bytes: inout [UInt8]) {
        switch outcome {
        case .applied(let result, let index):
            bytes.append(1)
            bytes.appendLittleEndian(index)
            result.encode(into: &bytes)
        case .notLeader(let leader):
            bytes.append(2)
            bytes.appendLittleEndian(leader ?? 0)
        case .notApplied(let reason):
            bytes.append(3)
            bytes.appendLengthPrefixed(Array(reason.utf8))
        case .unknown(let reason):
            bytes.append(4)
            bytes.appendLengthPrefixed(Array(reason.utf8))
        }
    }

    private static func decodeOutcome(_ reader: inout StoreReader) throws -> WriteOutcome {
        switch try reader.byte() {
        case 1:
            let index = try reader.uint64()
            return .applied(try StoreResult(decoding: &reader), index: index)
        case 2:
            let leader = try reader.uint64()
            return .notLeader(leader: leader == 0 ? nil : leader)
        case 3: return .notApplied(try reader.string())
        case 4: return .unknown(try reader.string())
        default: throw PeerFrameError.malformed("write outcome")
        }
    }
}
