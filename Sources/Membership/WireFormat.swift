/// Appends the primitive fields of the SWIM wire format: bytes, LEB128 varints and
/// length-prefixed UTF-8 strings.
struct WireWriter {
    var bytes: [UInt8] = []

    mutating func byte(_ value: UInt8) { bytes.append(value) }

    mutating func varint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    mutating func string(_ value: String) {
        let utf8 = value.utf8
        varint(UInt64(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    static func varintSize(_ value: UInt64) -> Int {
        var size = 1
        var rest = value >> 7
        while rest > 0 {
            size += 1
            rest >>= 7
        }
        return size
    }
}

/// Reads the primitive fields back, checking every length against what is left, so that any
/// input, however malformed, ends in a value or a `SWIMWireError` and never a trap.
struct WireReader {
    let bytes: [UInt8]
    private(set) var index = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var remaining: Int { bytes.count - index }

    mutating func byte() throws(SWIMWireError) -> UInt8 {
        guard index < bytes.count else { throw .truncated }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func varint() throws(SWIMWireError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte()
            // The tenth byte may hold only the top bit of a 64-bit value.
            if shift == 63 && next > 1 { throw .malformedVarint }
            value |= UInt64(next & 0x7F) << shift
            if next & 0x80 == 0 {
                // Reject padded encodings (a trailing zero group) so each value has one encoding.
                if next == 0 && shift > 0 { throw .malformedVarint }
                return value
            }
            shift += 7
        }
    }

    /// A count of items that each take at least `minimumItemBytes`: a count that could not fit in
    /// what is left is rejected before anything is allocated for it.
    mutating func count(minimumItemBytes: Int) throws(SWIMWireError) -> Int {
        let value = try varint()
        guard value <= UInt64(remaining / max(minimumItemBytes, 1)) else { throw .truncated }
        return Int(value)
    }

    mutating func string() throws(SWIMWireError) -> String {
        let length = try count(minimumItemBytes: 1)
        let slice = bytes[index..<(index + length)]
        index += length
        var iterator = slice.makeIterator()
        var decoder = UTF8()
        var scalars = String.UnicodeScalarView()
        decoding: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): scalars.append(scalar)
            case .emptyInput: break decoding
            case .error: throw .invalidUTF8
            }
        }
        return String(scalars)
    }
}

/// Why bytes are not a SWIM message (or a message cannot be encoded within a size limit).
public enum SWIMWireError: Error, Hashable, Sendable {
    /// The input ends in the middle of a field, or a count exceeds what is left.
    case truncated
    case unsupportedVersion(UInt8)
    case unknownMessageType(UInt8)
    case unknownStatus(UInt8)
    case unknownPushPullKind(UInt8)
    /// A presence flag other than 0 or 1.
    case invalidFlag(UInt8)
    /// A varint longer than 64 bits or padded with zero groups.
    case malformedVarint
    case invalidUTF8
    /// The same tag key twice in one metadata record.
    case duplicateTag
    /// Bytes left over after a complete message.
    case trailingBytes(Int)
    /// Encoding: the message does not fit the limit even without gossip.
    case tooLarge(Int)
}
