import Raft

/// A write to the replicated store, as carried in a Raft entry.
public struct StoreCommand: Sendable, Hashable {
    public enum Operation: Sendable, Hashable {
        case put(key: String, value: [UInt8])
        case delete(key: String)
        /// Creates lease `id` (chosen by the proposing node). Leases live in the store so that every
        /// node knows them; when they expire is the leader's business alone (`LeaseDeadlines`).
        case grantLease(id: UInt64, ttlMilliseconds: UInt64)
        /// Removes lease `id` and deletes every key attached to it, all in one revision.
        case revokeLease(id: UInt64)
        /// etcd's Txn: compares, then one branch of puts, deletes and reads, at one revision.
        /// The command's `condition` and `lease` are unused (each put names its own lease).
        case transaction(StoreTransaction)
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
    /// For a put: the lease the key is attached to from now on. 0 detaches it from any lease, as a
    /// put without a lease does in etcd.
    public var lease: UInt64
    /// The proposing leader's wall time in milliseconds since the epoch, set on commands with an
    /// idempotency key (0: none): the log's clock for expiring idempotency keys (`IdempotencyTable`).
    public var stamp: UInt64 = 0

    public init(
        operation: Operation, condition: Condition = .none, idempotencyKey: String? = nil, isSystem: Bool = false,
        lease: UInt64 = 0
    ) {
        self.operation = operation
        self.condition = condition
        self.idempotencyKey = idempotencyKey
        self.isSystem = isSystem
        self.lease = lease
    }

    /// The key a put or delete touches; nil for lease operations and transactions.
    public var key: String? {
        switch operation {
        case .put(let key, _), .delete(let key): key
        case .grantLease, .revokeLease, .transaction: nil
        }
    }

    // MARK: Encoding

    /// Version 1 carries puts and deletes without a lease, byte for byte as before leases existed,
    /// so logs written by older nodes and by newer ones read the same. Version 2 adds lease
    /// operations and a put's lease; version 3 is version 2 and a trailing `stamp`.
    public var encoded: [UInt8] {
        let needsVersion2: Bool =
            switch operation {
            case .put: lease != 0
            case .delete: false
            case .grantLease, .revokeLease, .transaction: true
            }
        let version: UInt8 = stamp != 0 ? 3 : needsVersion2 ? 2 : 1
        var bytes: [UInt8] = [version]
        switch operation {
        case .put(let key, let value):
            bytes.append(1)
            bytes.appendLengthPrefixed(Array(key.utf8))
            bytes.appendLengthPrefixed(value)
            if version >= 2 { bytes.appendLittleEndian(lease) }
        case .delete(let key):
            bytes.append(2)
            bytes.appendLengthPrefixed(Array(key.utf8))
        case .grantLease(let id, let ttl):
            bytes.append(3)
            bytes.appendLittleEndian(id)
            bytes.appendLittleEndian(ttl)
        case .revokeLease(let id):
            bytes.append(4)
            bytes.appendLittleEndian(id)
        case .transaction(let transaction):
            bytes.append(5)
            transaction.encode(into: &bytes)
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
        if version == 3 { bytes.appendLittleEndian(stamp) }
        return bytes
    }

    public init(decoding bytes: [UInt8]) throws(StoreDecodingError) {
        var reader = StoreReader(bytes[...])
        let version = try reader.byte()
        guard (1...3).contains(version) else { throw .unsupportedVersion }
        lease = 0
        switch try reader.byte() {
        case 1:
            operation = .put(key: try reader.string(), value: try reader.lengthPrefixed())
            if version >= 2 { lease = try reader.uint64() }
        case 2: operation = .delete(key: try reader.string())
        case 3 where version >= 2:
            operation = .grantLease(id: try reader.uint64(), ttlMilliseconds: try reader.uint64())
        case 4 where version >= 2: operation = .revokeLease(id: try reader.uint64())
        case 5 where version >= 2: operation = .transaction(try StoreTransaction(decoding: &reader))
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
        if version == 3 {
            stamp = try reader.uint64()
            guard stamp != 0 else { throw .malformed("version 3 without a stamp") }
        }
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
    /// The lease named by a put, a revoke or a keepalive does not exist (never granted, revoked
    /// or expired): nothing changed.
    case leaseNotFound(id: UInt64)
    /// A grant named a lease id already in use: nothing changed.
    case leaseExists(id: UInt64)
    /// The lease was granted. Remembered under an idempotency key like any result, so a retried
    /// grant answers the id of the first one.
    case leaseGranted(id: UInt64)
    /// The idempotency key was used before with a different command: nothing changed.
    case idempotencyKeyReused
    /// A transaction ran (whichever branch): what it did.
    case transaction(TransactionOutcome)
}

public enum StoreDecodingError: Error, Hashable {
    case unsupportedVersion
    case malformed(String)
    case truncated
}

extension StoreResult {
    /// A tag byte and one number, shared by store snapshots and forwarded-write answers; a
    /// transaction's outcome follows its tag and revision.
    func encode(into bytes: inout [UInt8]) {
        if case .transaction(let outcome) = self {
            bytes.append(9)
            bytes.appendLittleEndian(outcome.revision)
            outcome.encode(into: &bytes)
            return
        }
        let (tag, number): (UInt8, UInt64) =
            switch self {
            case .applied(let revision, let found): (found ? 2 : 1, revision)
            case .conditionFailed(let current): (3, current)
            case .reservedKey: (4, 0)
            case .leaseNotFound(let id): (5, id)
            case .leaseExists(let id): (6, id)
            case .leaseGranted(let id): (7, id)
            case .idempotencyKeyReused: (8, 0)
            case .transaction: (9, 0)  // encoded above
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
        case 5: self = .leaseNotFound(id: number)
        case 6: self = .leaseExists(id: number)
        case 7: self = .leaseGranted(id: number)
        case 8: self = .idempotencyKeyReused
        case 9:
            let outcome = try TransactionOutcome(decoding: &reader)
            guard outcome.revision == number else { throw .malformed("transaction revision") }
            self = .transaction(outcome)
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
