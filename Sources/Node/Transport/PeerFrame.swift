import Raft

/// The wire format between raftgate nodes: one Raft message per frame, after the connection's
/// `PeerHandshake`.
///
///     u32 length of what follows (little endian), at most `PeerFrame.maxFrameBytes`
///     u8  version (2)
///     message body (see `encode`)
///
/// Version 2 is version 1's frames behind the authenticating handshake. The version was bumped
/// with it, so that a cluster mixing the two refuses every connection with a message naming the
/// versions instead of exchanging frames no one authenticated.
///
/// Hand-written so that decoding is bounds-checked everywhere: garbage produces a `PeerFrameError`
/// (and the connection is closed), never a trap, and no claimed count or length allocates more
/// than the bytes actually present could fill.
public enum PeerFrame {
    public static let version: UInt8 = 2
    /// Large enough for a 1 MiB append or snapshot chunk with headroom; anything larger is hostile.
    public static let maxFrameBytes = 16 << 20

    public static func encode(_ message: Message) -> [UInt8] {
        var body: [UInt8] = [version]
        body.appendLittleEndian(message.from)
        body.appendLittleEndian(message.to)
        body.appendLittleEndian(message.term)
        switch message.payload {
        case .voteRequest(let request):
            body.append(1)
            body.append(request.preVote ? 1 : 0)
            body.appendLittleEndian(request.lastLogIndex)
            body.appendLittleEndian(request.lastLogTerm)
            body.append(request.leadershipTransfer ? 1 : 0)
        case .voteResponse(let response):
            body.append(2)
            body.append(response.preVote ? 1 : 0)
            body.append(response.granted ? 1 : 0)
        case .appendEntries(let append):
            body.append(3)
            body.appendLittleEndian(append.prevLogIndex)
            body.appendLittleEndian(append.prevLogTerm)
            body.appendLittleEndian(append.leaderCommit)
            body.appendLittleEndian(UInt32(append.entries.count))
            for entry in append.entries {
                body.appendLittleEndian(entry.index)
                body.appendLittleEndian(entry.term)
                body.append(entry.kind.rawValue)
                body.appendLengthPrefixed(entry.data)
            }
        case .appendResponse(let response):
            body.append(4)
            body.append(response.success ? 1 : 0)
            body.appendLittleEndian(response.index)
            body.append(response.conflictTerm == nil ? 0 : 1)
            body.appendLittleEndian(response.conflictTerm ?? 0)
            body.appendLittleEndian(response.conflictIndex)
        case .heartbeat(let heartbeat):
            body.append(5)
            body.appendLittleEndian(heartbeat.commit)
            body.appendLittleEndian(heartbeat.sequence)
            body.appendLittleEndian(heartbeat.sentAt)
        case .heartbeatResponse(let response):
            body.append(6)
            body.appendLittleEndian(response.sequence)
            body.appendLittleEndian(response.sentAt)
        case .installSnapshot(let chunk):
            body.append(7)
            chunk.metadata.encode(into: &body)
            body.appendLittleEndian(UInt64(chunk.offset))
            body.append(chunk.done ? 1 : 0)
            body.appendLengthPrefixed(chunk.data)
        case .snapshotResponse(let response):
            body.append(8)
            body.appendLittleEndian(response.snapshotIndex)
            body.appendLittleEndian(UInt64(response.receivedBytes))
        case .timeoutNow:
            body.append(9)
        case .readIndexRequest(let request):
            body.append(10)
            body.appendLittleEndian(request.requestID)
            body.append(request.mode.rawValue)
        case .readIndexResponse(let response):
            body.append(11)
            body.appendLittleEndian(response.requestID)
            body.append(response.index == nil ? 0 : 1)
            body.appendLittleEndian(response.index ?? 0)
        case .removed(let configurationIndex):
            body.append(12)
            body.appendLittleEndian(configurationIndex)
        }
        var frame: [UInt8] = []
        frame.reserveCapacity(body.count + 4)
        frame.appendLittleEndian(UInt32(body.count))
        frame.append(contentsOf: body)
        return frame
    }

    /// Decodes one frame body (everything after the length field).
    public static func decodeBody(_ bytes: ArraySlice<UInt8>) throws(PeerFrameError) -> Message {
        var reader = StoreReader(bytes)
        do {
            guard try reader.byte() == version else { throw PeerFrameError.unsupportedVersion }
            let from = try reader.uint64()
            let to = try reader.uint64()
            let term = try reader.uint64()
            guard from != 0, to != 0 else { throw PeerFrameError.malformed("node id 0") }
            let payload: Message.Payload
            switch try reader.byte() {
            case 1:
                payload = .voteRequest(
                    VoteRequest(
                        preVote: try flag(&reader), lastLogIndex: try reader.uint64(), lastLogTerm: try reader.uint64(),
                        leadershipTransfer: try flag(&reader)))
            case 2:
                payload = .voteResponse(VoteResponse(preVote: try flag(&reader), granted: try flag(&reader)))
            case 3:
                let prevLogIndex = try reader.uint64()
                let prevLogTerm = try reader.uint64()
                let leaderCommit = try reader.uint64()
                let count = Int(try reader.uint32())
                // Each entry takes at least 21 bytes: a count beyond that is a lie.
                guard count <= reader.remaining / 21 else { throw PeerFrameError.malformed("entry count \(count)") }
                var entries: [LogEntry] = []
                entries.reserveCapacity(count)
                for _ in 0..<count {
                    let index = try reader.uint64()
                    let entryTerm = try reader.uint64()
                    guard let kind = EntryKind(rawValue: try reader.byte()) else {
                        throw PeerFrameError.malformed("entry kind")
                    }
                    entries.append(
                        LogEntry(index: index, term: entryTerm, kind: kind, data: try reader.lengthPrefixed()))
                }
                payload = .appendEntries(
                    AppendEntries(
                        prevLogIndex: prevLogIndex, prevLogTerm: prevLogTerm, entries: entries,
                        leaderCommit: leaderCommit))
            case 4:
                let success = try flag(&reader)
                let index = try reader.uint64()
                let hasConflictTerm = try flag(&reader)
                let conflictTerm = try reader.uint64()
                payload = .appendResponse(
                    AppendResponse(
                        success: success, index: index, conflictTerm: hasConflictTerm ? conflictTerm : nil,
                        conflictIndex: try reader.uint64()))
            case 5:
                payload = .heartbeat(
                    Heartbeat(commit: try reader.uint64(), sequence: try reader.uint64(), sentAt: try reader.uint64()))
            case 6:
                payload = .heartbeatResponse(
                    HeartbeatResponse(sequence: try reader.uint64(), sentAt: try reader.uint64()))
            case 7:
                let metadata = try decodeMetadata(&reader)
                let offset = try reader.uint64()
                guard offset <= UInt64(Int32.max) * 1024 else { throw PeerFrameError.malformed("snapshot offset") }
                let done = try flag(&reader)
                payload = .installSnapshot(
                    InstallSnapshot(
                        metadata: metadata, offset: Int(offset), data: try reader.lengthPrefixed(), done: done))
            case 8:
                let index = try reader.uint64()
                let received = try reader.uint64()
                guard received <= UInt64(Int32.max) * 1024 else { throw PeerFrameError.malformed("received bytes") }
                payload = .snapshotResponse(SnapshotResponse(snapshotIndex: index, receivedBytes: Int(received)))
            case 9:
                payload = .timeoutNow
            case 10:
                let requestID = try reader.uint64()
                guard let mode = ReadMode(rawValue: try reader.byte()) else {
                    throw PeerFrameError.malformed("read mode")
                }
                payload = .readIndexRequest(ReadIndexRequest(requestID: requestID, mode: mode))
            case 11:
                let requestID = try reader.uint64()
                let hasIndex = try flag(&reader)
                let index = try reader.uint64()
                payload = .readIndexResponse(ReadIndexResponse(requestID: requestID, index: hasIndex ? index : nil))
            case 12:
                payload = .removed(configurationIndex: try reader.uint64())
            case let tag:
                throw PeerFrameError.malformed("unknown message type \(tag)")
            }
            guard reader.isAtEnd else { throw PeerFrameError.malformed("trailing bytes") }
            return Message(from: from, to: to, term: term, payload: payload)
        } catch let error as PeerFrameError {
            throw error
        } catch {
            throw .truncated
        }
    }

    private static func flag(_ reader: inout StoreReader) throws -> Bool {
        switch try reader.byte() {
        case 0: return false
        case 1: return true
        default: throw PeerFrameError.malformed("boolean")
        }
    }

    private static func decodeMetadata(_ reader: inout StoreReader) throws -> SnapshotMetadata {
        let index = try reader.uint64()
        let term = try reader.uint64()
        let voterCount = Int(try reader.uint32())
        guard voterCount <= reader.remaining / 8 else { throw PeerFrameError.malformed("voter count") }
        var voters: [NodeID] = []
        for _ in 0..<voterCount { voters.append(try reader.uint64()) }
        let learnerCount = Int(try reader.uint32())
        guard learnerCount <= reader.remaining / 8 else { throw PeerFrameError.malformed("learner count") }
        var learners: [NodeID] = []
        for _ in 0..<learnerCount { learners.append(try reader.uint64()) }
        return SnapshotMetadata(
            index: index, term: term, configuration: ClusterConfiguration(voters: voters, learners: learners))
    }
}

public enum PeerFrameError: Error, Hashable {
    case tooLarge(Int)
    case unsupportedVersion
    case malformed(String)
    case truncated
}

/// Splits a byte stream into frames. Feed it what the socket delivers; it returns whole messages
/// and keeps partial frames buffered. After an error the connection must be closed.
public struct PeerFrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0

    public init() {}

    /// Bytes received but not yet part of a whole frame.
    public var bufferedBytes: Int { buffer.count - start }

    public mutating func feed(_ bytes: some Sequence<UInt8>) throws(PeerFrameError) -> [PeerEnvelope] {
        buffer.append(contentsOf: bytes)
        var messages: [PeerEnvelope] = []
        while buffer.count - start >= 4 {
            var length = 0
            for shift in 0..<4 { length |= Int(buffer[start + shift]) << (shift * 8) }
            // Checked before waiting for (or allocating) the body.
            guard length > 0, length <= PeerFrame.maxFrameBytes else { throw .tooLarge(length) }
            guard buffer.count - start - 4 >= length else { break }
            let body = buffer[(start + 4)..<(start + 4 + length)]
            messages.append(try PeerFrame.decodeEnvelope(body))
            start += 4 + length
        }
        if start > 0 && (start == buffer.count || start > 1 << 16) {
            buffer.removeFirst(start)
            start = 0
        }
        return messages
    }
}
