/// One record of the write-ahead log. On disk:
///
///     u32 length of (kind + body), little endian
///     u32 CRC-32C of (kind + body)
///     u8  kind
///     body
enum WALRecord: Equatable {
    case entry(LogEntry)
    case hardState(HardState)
    /// Everything up to `index` is in a snapshot: replay forgets older entries.
    case snapshot(index: UInt64, term: UInt64)
    /// A snapshot received from the leader replaced the whole log: replay forgets every entry
    /// before this record, newer ones included (they belonged to a log that did not match).
    case logReset(index: UInt64, term: UInt64)

    static let headerBytes = 8
    /// A claimed length above this is corruption, not a record (and never an allocation).
    static let maxBodyBytes = 64 << 20

    func encode(into buffer: inout [UInt8]) {
        var body: [UInt8] = []
        switch self {
        case .entry(let entry):
            body.reserveCapacity(22 + entry.data.count)
            body.append(1)
            body.appendLittleEndian(entry.index)
            body.appendLittleEndian(entry.term)
            body.append(entry.kind.rawValue)
            body.append(contentsOf: entry.data)
        case .hardState(let state):
            body.append(2)
            body.appendLittleEndian(state.term)
            body.appendLittleEndian(state.votedFor ?? 0)
            body.appendLittleEndian(state.commit)
        case .snapshot(let index, let term):
            body.append(3)
            body.appendLittleEndian(index)
            body.appendLittleEndian(term)
        case .logReset(let index, let term):
            body.append(4)
            body.appendLittleEndian(index)
            body.appendLittleEndian(term)
        }
        buffer.appendLittleEndian(UInt32(body.count))
        buffer.appendLittleEndian(CRC32C.checksum(body))
        buffer.append(contentsOf: body)
    }

    /// Decodes a body whose checksum already matched; nil if its layout is wrong.
    init?(body: ArraySlice<UInt8>) {
        guard let kind = body.first else { return nil }
        var reader = ByteReader(body.dropFirst())
        switch kind {
        case 1:
            guard let index = reader.uint64(), let term = reader.uint64(), let rawKind = reader.uint8(),
                let entryKind = EntryKind(rawValue: rawKind)
            else { return nil }
            self = .entry(LogEntry(index: index, term: term, kind: entryKind, data: Array(reader.rest)))
        case 2:
            guard let term = reader.uint64(), let vote = reader.uint64(), let commit = reader.uint64(), reader.isAtEnd
            else { return nil }
            self = .hardState(HardState(term: term, votedFor: vote == 0 ? nil : vote, commit: commit))
        case 3, 4:
            guard let index = reader.uint64(), let term = reader.uint64(), reader.isAtEnd else { return nil }
            self = kind == 3 ? .snapshot(index: index, term: term) : .logReset(index: index, term: term)
        default:
            return nil
        }
    }
}

/// The little-endian building blocks of every binary encoding in raftgate (WAL, snapshot files,
/// peer frames, store commands).
extension Array where Element == UInt8 {
    public mutating func appendLittleEndian<Integer: FixedWidthInteger>(_ value: Integer) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    /// A u32 length, then the bytes.
    public mutating func appendLengthPrefixed(_ bytes: [UInt8]) {
        appendLittleEndian(UInt32(bytes.count))
        append(contentsOf: bytes)
    }
}

extension SnapshotMetadata {
    /// index, term, then the voters and the learners, each as a u32 count and u64 ids.
    public func encode(into bytes: inout [UInt8]) {
        bytes.appendLittleEndian(index)
        bytes.appendLittleEndian(term)
        bytes.appendLittleEndian(UInt32(configuration.voters.count))
        for voter in configuration.voters { bytes.appendLittleEndian(voter) }
        bytes.appendLittleEndian(UInt32(configuration.learners.count))
        for learner in configuration.learners { bytes.appendLittleEndian(learner) }
    }
}

/// Reads little-endian integers from a byte slice without trapping on short input.
struct ByteReader {
    private(set) var rest: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) { rest = bytes }

    var isAtEnd: Bool { rest.isEmpty }

    mutating func uint8() -> UInt8? {
        guard let byte = rest.first else { return nil }
        rest = rest.dropFirst()
        return byte
    }

    mutating func uint32() -> UInt32? { integer() }
    mutating func uint64() -> UInt64? { integer() }

    private mutating func integer<Integer: FixedWidthInteger>() -> Integer? {
        let size = MemoryLayout<Integer>.size
        guard rest.count >= size else { return nil }
        var value: Integer = 0
        for (shift, byte) in rest.prefix(size).enumerated() { value |= Integer(byte) << (shift * 8) }
        rest = rest.dropFirst(size)
        return value
    }
}
