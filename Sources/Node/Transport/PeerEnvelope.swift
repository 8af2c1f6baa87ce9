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
    /// A follower asks the leader about a lease, or keeps it alive: lease clocks run on the leader
    /// only, so keepalives travel like forwarded writes but never enter the log.
    case leaseQuery(LeaseQuery)
    /// The leader's answer to a lease query.
    case leaseQueryResult(LeaseQueryResult)

    public var destination: NodeID {
        switch self {
        case .raft(let message): message.to
        case .forwardedWrite(let write): write.to
        case .forwardedResult(let result): result.to
        case .leaseQuery(let query): query.to
        case .leaseQueryResult(let result): result.to
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

public struct LeaseQuery: Sendable, Hashable {
    public var requestID: UInt64
    public var from: NodeID
    public var to: NodeID
    public var lease: UInt64
    /// A keepalive (the lease lives its TTL from now) rather than a look.
    public var refresh: Bool

    public init(requestID: UInt64, from: NodeID, to: NodeID, lease: UInt64, refresh: Bool) {
        self.requestID = requestID
        self.from = from
        self.to = to
        self.lease = lease
        self.refresh = refresh
    }
}

public struct LeaseQueryResult: Sendable, Hashable {
    public var requestID: UInt64
    public var from: NodeID
    public var to: NodeID
    public var answer: LeaseAnswer

    public init(requestID: UInt64, from: NodeID, to: NodeID, answer: LeaseAnswer) {
        self.requestID = requestID
        self.from = from
        self.to = to
        self.answer = answer
    }
}

extension PeerFrame {
    static let forwardedWriteType: UInt8 = 100
    static let forwardedResultType: UInt8 = 101
    static let leaseQueryType: UInt8 = 102
    static let leaseQueryResultType: UInt8 = 103

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
        case .leaseQuery(let query):
            var bytes: [UInt8] = []
            bytes.appendLittleEndian(query.requestID)
            bytes.appendLittleEndian(query.lease)
            bytes.append(query.refresh ? 1 : 0)
            (from, to, type, payload) = (query.from, query.to, leaseQueryType, bytes)
        case .leaseQueryResult(let result):
            var bytes: [UInt8] = []
            bytes.appendLittleEndian(result.requestID)
            encode(result.answer, into: &bytes)
            (from, to, type, payload) = (result.from, result.to, leaseQueryResultType, bytes)
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
            case leaseQueryType:
                let lease = try reader.uint64()
                let refresh: Bool
                switch try reader.byte() {
                case 0: refresh = false
                case 1: refresh = true
                default: throw PeerFrameError.malformed("lease query flag")
                }
                envelope = .leaseQuery(
                    LeaseQuery(requestID: requestID, from: from, to: to, lease: lease, refresh: refresh))
            case leaseQueryResultType:
                envelope = .leaseQueryResult(
                    LeaseQueryResult(requestID: requestID, from: from, to: to, answer: try decodeLeaseAnswer(&reader)))
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
        case .refused(let refusal):
            bytes.append(5)
            let (kind, first, second): (UInt8, UInt64, UInt64) =
                switch refusal {
                case .quotaExceeded(let used, let quota): (1, used, quota)
                case .uncommittedBytes(let pending, let limit): (2, pending, limit)
                case .pendingWrites(let pending, let limit): (3, UInt64(pending), UInt64(limit))
                }
            bytes.append(kind)
            bytes.appendLittleEndian(first)
            bytes.appendLittleEndian(second)
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
        case 5:
            let kind = try reader.byte()
            let first = try reader.uint64()
            let second = try reader.uint64()
            switch kind {
            case 1: return .refused(.quotaExceeded(usedBytes: first, quotaBytes: second))
            case 2: return .refused(.uncommittedBytes(pendingBytes: first, limitBytes: second))
            case 3: return .refused(.pendingWrites(pending: Int(clamping: first), limit: Int(clamping: second)))
            default: throw PeerFrameError.malformed("write refusal")
            }
        default: throw PeerFrameError.malformed("write outcome")
        }
    }

    private static func encode(_ answer: LeaseAnswer, into bytes: inout [UInt8]) {
        switch answer {
        case .found(let info):
            bytes.append(1)
            bytes.appendLittleEndian(info.id)
            bytes.appendLittleEndian(info.ttlMilliseconds)
            bytes.appendLittleEndian(info.remainingMilliseconds)
            bytes.appendLittleEndian(UInt64(info.keyCount))
            bytes.appendLittleEndian(UInt32(info.keys.count))
            for key in info.keys { bytes.appendLengthPrefixed(Array(key.utf8)) }
        case .notFound:
            bytes.append(2)
        case .unavailable(let reason):
            bytes.append(3)
            bytes.appendLengthPrefixed(Array(reason.utf8))
        }
    }

    private static func decodeLeaseAnswer(_ reader: inout StoreReader) throws -> LeaseAnswer {
        switch try reader.byte() {
        case 1:
            let id = try reader.uint64()
            let ttl = try reader.uint64()
            let remaining = try reader.uint64()
            let keyCount = try reader.uint64()
            let listed = Int(try reader.uint32())
            // Each listed key takes at least its 4-byte length: a larger count is a lie.
            guard listed <= reader.remaining / 4, UInt64(listed) <= keyCount else {
                throw PeerFrameError.malformed("lease key count")
            }
            var keys: [String] = []
            for _ in 0..<listed { keys.append(try reader.string()) }
            return .found(
                LeaseInfo(
                    id: id, ttlMilliseconds: ttl, remainingMilliseconds: remaining, keys: keys,
                    keyCount: Int(clamping: keyCount)))
        case 2: return .notFound
        case 3: return .unavailable(try reader.string())
        default: throw PeerFrameError.malformed("lease answer")
        }
    }
}
