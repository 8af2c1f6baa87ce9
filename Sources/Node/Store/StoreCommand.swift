import Raft

/// A write to the replicated store, as carried in a Raft entry.
public struct StoreCommand: Sendable, Hashable {
    public enum Operation: Sendable, Hashable {
        case put(key: String, value: [UInt8])
        case delete(key: String)
    }

    /// A compare-and-set guard, checked when the command is applied (so it is linearizable).
    public enum Condition: Sendable, Hashable {
        case none
        /// `If-Match: <modRevision>`: the key's current modRevision must equal this (0: must not exist).
        case modRevision(UInt64)
        /// `If-None-Match: *`: create only.
        case absent
    }

    public var operation: Operation
    public var condition: Condition
    /// A client-chosen key: a retried command with the same key returns the first result (DESIGN.md).
    public var idempotencyKey: String?
    /// Commands from the node itself may write the reserved `/_sys/` prefix; client ones may not.
    public var isSystem: Bool

    public init(
        operation: Operation, condition: Condition = .none, idempotencyKey: String? = nil, isSystem: Bool = false
    ) {
        self.operation = operation
        self.condition = condition
        self.idempotencyKey = idempotencyKey
        self.isSystem = isSystem
    }

    public var key: String {
        switch operation {
        case .put(let key, _), .delete(let key): key
        }
    }

    // MARK: Encoding (version 1)

    public var encoded: [UInt8] {
        var bytes: [UInt8] = [1]
        switch operation {
        case .put(let key, let value):
            bytes.append(1)
            bytes.appendLengthPrefixed(Array(key.utf8))
            bytes.appendLengthPrefixed(value)
        case .delete(let key):
            bytes.append(2)
            bytes.appendLengthPrefixed(Array(key.utf8))
        }
        switch condition {
        case .none: bytes.append(0)
        case .modRevision(let revision):
            bytes.append(1)
            bytes.appendLittleEndian(revision)
        case .absent: bytes.append(2)
        }
        if let idempotencyKey {
            bytes.append(1)
            bytes.appendLengthPrefixed(Array(idempotencyKey.utf8))
        } else {
            bytes.append(0)
        }
        bytes.append(isSystem ? 1 : 0)
        return bytes
    }

    public init(decoding bytes: [UInt8]) throws(StoreDecodingError) {
        var reader = StoreReader(bytes[...])
        guard try reader.byte() == 1 else { throw .unsupportedVersion }
        switch try reader.byte() {
        case 1: operation = .put(key: try reader.string(), value: try reader.lengthPrefixed())
        case 2: operation = .delete(key: try reader.string())
        default: throw .malformed("operation")
        }
        switch try reader.byte() {
        case 0: condition = .none
        case 1: condition = .modRevision(try reader.uint64())
        case 2: condition = .absent
        default: throw .malformed("condition")
        }
        idempotencyKey = try reader.byte() == 1 ? try reader.string() : nil
        isSystem = try reader.byte() == 1
        guard reader.isAtEnd else { throw .malformed("trailing bytes") }
    }
}

/// The outcome of applying a command; the same on every node.
public enum StoreResult: Sendable, Hashable {
    /// Applied: the store's revision after it, and whether a delete found the key.
    case applied(revision: UInt64, found: Bool)
    /// The condition did not hold: nothing changed. `current` is the key's modRevision (0 if absent).
    case conditionFailed(current: UInt64)
    /// A client command aimed at the reserved `/_sys/` prefix: nothing changed.
    case reservedKey
}

public enum StoreDecodingError: Error, Hashable {
    case unsupportedVersion
    case malformed(String)
    case truncated
}

extension StoreResult {
    /// A tag byte and one number, shared by store snapshots and forwarded-write answers.
    func encode(into bytes: inout [UInt8]) {
        let (tag, number): (UInt8, UInt64) =
            switch self {
            case .applied(let revision, let found): (found ? 2 : 1, revision)
            case .conditionFailed(let current): (3, current)
            case .reservedKey: (4, 0)
            }
        bytes.append(tag)
        bytes.appendLittleEndian(number)
    }

    init(decoding reader: inout StoreReader) throws(StoreDecodingError) {
        let tag = try reader.byte()
        let number = try reader.uint64()
        switch tag {
        case 1: self = .applied(revision: number, found: false)
        case 2: self = .applied(revision: number, found: true)
        case 3: self = .conditionFailed(current: number)
        case 4: self = .reservedKey
        default: throw .malformed("store result")
        }
    }
}

/// Bounds-checked reading of store encodings: a short or hostile input throws, never traps, and
/// a claimed length is checked against the bytes present before anything is allocated.
struct StoreReader {
    private var rest: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) { rest = bytes }

    var isAtEnd: Bool { rest.isEmpty }
    var remaining: Int { rest.count }

    mutating func byte() throws(StoreDecodingError) -> UInt8 {
        guard let value = rest.first else { throw .truncated }
        rest = rest.dropFirst()
        return value
    }

    mutating func uint32() throws(StoreDecodingError) -> UInt32 { UInt32(truncatingIfNeeded: try integer(4)) }
    mutating func uint64() throws(StoreDecodingError) -> UInt64 { try integer(8) }

    private mutating func integer(_ size: Int) throws(StoreDecodingError) -> UInt64 {
        guard rest.count >= size else { throw .truncated }
        var value: UInt64 = 0
        for (shift, byte) in rest.prefix(size).enumerated() { value |= UInt64(byte) << UInt64(shift * 8) }
        rest = rest.dropFirst(size)
        return value
    }

    mutating func lengthPrefixed() throws(StoreDecodingError) -> [UInt8] {
        let count = Int(try uint32())
        guard rest.count >= count else { throw .truncated }
        defer { rest = rest.dropFirst(count) }
        return Array(rest.prefix(count))
    }

    mutating func string() throws(StoreDecodingError) -> String {
        let bytes = try lengthPrefixed()
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .malformed("string is not UTF-8") }
        return text
    }
}
