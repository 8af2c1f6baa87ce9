import Raft

/// etcd's `Txn` as one store command: compares on the current state, then either the `success` or
/// the `failure` requests, all applied at one revision in one Raft entry. It is what makes a
/// compare-and-swap over several keys atomic (Patroni's leader lock is a put guarded by a compare
/// on `create_revision`), so its semantics are etcd's to the letter (etcd `server/etcdserver/apply.go`):
/// - a compare over keys that do not exist compares the zero record (version, revisions and lease
///   0), except on the value, where it always fails;
/// - a compare over a range holds only if it holds for every key in it;
/// - the revision moves by one for the whole transaction, and only if something changed; every
///   key it writes gets that revision;
/// - a put naming a missing lease fails the whole transaction, and nothing changes.
public struct StoreTransaction: Sendable, Hashable {
    /// etcd's `key` and `range_end`: keys are bytes (UTF-8 here, as store keys are).
    public struct KeyRange: Sendable, Hashable {
        public var key: [UInt8]
        /// Empty: `key` alone. `[0]`: every key from `key` on. Otherwise keys in `[key, end)`.
        public var end: [UInt8]

        public init(key: [UInt8], end: [UInt8] = []) {
            self.key = key
            self.end = end
        }

        public var isSingleKey: Bool { end.isEmpty }

        /// Whether `candidate` lies in the range.
        public func contains(_ candidate: [UInt8]) -> Bool {
            if end.isEmpty { return candidate == key }
            if candidate.lexicographicallyPrecedes(key) { return false }
            if end == [0] { return true }
            return candidate.lexicographicallyPrecedes(end)
        }

        /// Whether every key the range can name lies under `prefix`.
        public func lies(within prefix: [UInt8]) -> Bool {
            guard key.starts(with: prefix) else { return false }
            if end.isEmpty { return true }
            guard end != [0], let prefixEnd = Self.prefixEnd(prefix) else { return false }
            return !prefixEnd.lexicographicallyPrecedes(end)
        }

        /// The first key above every key starting with `prefix` (etcd's `GetPrefixRangeEnd`); nil
        /// when there is none (a prefix of 0xFF bytes only).
        public static func prefixEnd(_ prefix: [UInt8]) -> [UInt8]? {
            var end = prefix
            while let last = end.last {
                if last < 0xFF {
                    end[end.count - 1] = last + 1
                    return end
                }
                end.removeLast()
            }
            return nil
        }

        /// Whether any key of the range lies under `prefix`.
        func overlaps(prefix: [UInt8]) -> Bool {
            if end.isEmpty { return key.starts(with: prefix) }
            if key.starts(with: prefix) { return true }
            // The range starts below the prefix: it reaches it when its end lies above the prefix.
            if key.lexicographicallyPrecedes(prefix) { return end == [0] || prefix.lexicographicallyPrecedes(end) }
            return false
        }
    }

    public struct Compare: Sendable, Hashable {
        /// etcd's `Compare.CompareTarget`, with its numbering.
        public enum Target: UInt8, Sendable, Hashable {
            case version = 0
            case createRevision = 1
            case modRevision = 2
            case value = 3
            case lease = 4
        }

        /// etcd's `Compare.CompareResult`, with its numbering.
        public enum Relation: UInt8, Sendable, Hashable {
            case equal = 0
            case greater = 1
            case less = 2
            case notEqual = 3
        }

        /// etcd's `target_union`: which field the request set. It may disagree with `target`; etcd
        /// then compares against zero (or the empty value), and so does this.
        public enum Operand: Sendable, Hashable {
            case none
            case version(Int64)
            case createRevision(Int64)
            case modRevision(Int64)
            case value([UInt8])
            case lease(Int64)
        }

        public var range: KeyRange
        public var target: Target
        public var relation: Relation
        public var operand: Operand

        public init(range: KeyRange, target: Target, relation: Relation, operand: Operand) {
            self.range = range
            self.target = target
            self.relation = relation
            self.operand = operand
        }
    }

    public enum Request: Sendable, Hashable {
        /// `lease` 0 detaches the key from any lease, as a put without a lease does in etcd.
        case put(key: String, value: [UInt8], lease: UInt64, previous: Bool)
        case deleteRange(KeyRange, previous: Bool)
        /// `limit` 0 is no limit.
        case range(KeyRange, limit: UInt64, keysOnly: Bool, countOnly: Bool)
    }

    public var compares: [Compare]
    public var success: [Request]
    public var failure: [Request]

    public init(compares: [Compare] = [], success: [Request] = [], failure: [Request] = []) {
        self.compares = compares
        self.success = success
        self.failure = failure
    }

    /// Every key range the transaction reads or writes, for the reserved-prefix check.
    var ranges: [KeyRange] {
        compares.map(\.range) + (success + failure).map(\.range)
    }

    /// Bytes the quota would charge if every put of the larger branch created its key.
    var growthBytes: UInt64 {
        func growth(_ requests: [Request]) -> UInt64 {
            requests.reduce(0) { total, request in
                guard case .put(let key, let value, _, _) = request else { return total }
                return total + UInt64(key.utf8.count + value.count) + KeyValueStore.quotaOverheadBytes
            }
        }
        return max(growth(success), growth(failure))
    }
}

extension StoreTransaction.Request {
    var range: StoreTransaction.KeyRange {
        switch self {
        case .put(let key, _, _, _): StoreTransaction.KeyRange(key: Array(key.utf8))
        case .deleteRange(let range, _), .range(let range, _, _, _): range
        }
    }
}

/// What a transaction did, the same on every node.
public struct TransactionOutcome: Sendable, Hashable {
    public struct KeyValue: Sendable, Hashable {
        public var key: String
        public var record: KeyValueStore.Record

        public init(key: String, record: KeyValueStore.Record) {
            self.key = key
            self.record = record
        }
    }

    /// One per request of the branch taken, in order.
    public enum Response: Sendable, Hashable {
        /// The key before the put, when asked for.
        case put(previous: KeyValue?)
        /// Keys deleted, and their records before, when asked for.
        case deleteRange(deleted: UInt64, previous: [KeyValue])
        /// The keys read (after the requests before it in the same branch), how many the range
        /// holds, and whether `limit` left some out.
        case range(keyValues: [KeyValue], count: UInt64, more: Bool)
    }

    public var succeeded: Bool
    /// The store's revision after the transaction (unchanged when it changed nothing).
    public var revision: UInt64
    public var responses: [Response]

    public init(succeeded: Bool, revision: UInt64, responses: [Response]) {
        self.succeeded = succeeded
        self.revision = revision
        self.responses = responses
    }
}

// MARK: Encoding

extension StoreTransaction {
    func encode(into bytes: inout [UInt8]) {
        bytes.appendLittleEndian(UInt32(compares.count))
        for compare in compares {
            compare.range.encode(into: &bytes)
            bytes.append(compare.target.rawValue)
            bytes.append(compare.relation.rawValue)
            switch compare.operand {
            case .none: bytes.append(0)
            case .version(let number): Self.encodeNumber(1, number, into: &bytes)
            case .createRevision(let number): Self.encodeNumber(2, number, into: &bytes)
            case .modRevision(let number): Self.encodeNumber(3, number, into: &bytes)
            case .lease(let number): Self.encodeNumber(5, number, into: &bytes)
            case .value(let value):
                bytes.append(4)
                bytes.appendLengthPrefixed(value)
            }
        }
        for branch in [success, failure] {
            bytes.appendLittleEndian(UInt32(branch.count))
            for request in branch { request.encode(into: &bytes) }
        }
    }

    private static func encodeNumber(_ tag: UInt8, _ number: Int64, into bytes: inout [UInt8]) {
        bytes.append(tag)
        bytes.appendLittleEndian(UInt64(bitPattern: number))
    }

    init(decoding reader: inout StoreReader) throws(StoreDecodingError) {
        let compareCount = try reader.uint32()
        // Each compare takes at least 11 bytes: a larger count is a lie.
        guard compareCount <= reader.remaining / 11 else { throw .malformed("compare count") }
        compares = []
        for _ in 0..<compareCount {
            let range = try KeyRange(decoding: &reader)
            guard let target = Compare.Target(rawValue: try reader.byte()),
                let relation = Compare.Relation(rawValue: try reader.byte())
            else { throw .malformed("compare target or result") }
            let operand: Compare.Operand
            switch try reader.byte() {
            case 0: operand = .none
            case 1: operand = .version(Int64(bitPattern: try reader.uint64()))
            case 2: operand = .createRevision(Int64(bitPattern: try reader.uint64()))
            case 3: operand = .modRevision(Int64(bitPattern: try reader.uint64()))
            case 4: operand = .value(try reader.lengthPrefixed())
            case 5: operand = .lease(Int64(bitPattern: try reader.uint64()))
            default: throw .malformed("compare operand")
            }
            compares.append(Compare(range: range, target: target, relation: relation, operand: operand))
        }
        var branches: [[Request]] = []
        for _ in 0..<2 {
            let count = try reader.uint32()
            guard count <= reader.remaining / 9 else { throw .malformed("request count") }
            var requests: [Request] = []
            for _ in 0..<count { requests.append(try Request(decoding: &reader)) }
            branches.append(requests)
        }
        success = branches[0]
        failure = branches[1]
    }
}

extension StoreTransaction.KeyRange {
    func encode(into bytes: inout [UInt8]) {
        bytes.appendLengthPrefixed(key)
        bytes.appendLengthPrefixed(end)
    }

    init(decoding reader: inout StoreReader) throws(StoreDecodingError) {
        key = try reader.lengthPrefixed()
        end = try reader.lengthPrefixed()
    }
}

extension StoreTransaction.Request {
    func encode(into bytes: inout [UInt8]) {
        switch self {
        case .put(let key, let value, let lease, let previous):
            bytes.append(1)
            bytes.appendLengthPrefixed(Array(key.utf8))
            bytes.appendLengthPrefixed(value)
            bytes.appendLittleEndian(lease)
            bytes.append(previous ? 1 : 0)
        case .deleteRange(let range, let previous):
            bytes.append(2)
            range.encode(into: &bytes)
            bytes.append(previous ? 1 : 0)
        case .range(let range, let limit, let keysOnly, let countOnly):
            bytes.append(3)
            range.encode(into: &bytes)
            bytes.appendLittleEndian(limit)
            bytes.append((keysOnly ? 1 : 0) | (countOnly ? 2 : 0))
        }
    }

    init(decoding reader: inout StoreReader) throws(StoreDecodingError) {
        switch try reader.byte() {
        case 1:
            self = .put(
                key: try reader.string(), value: try reader.lengthPrefixed(), lease: try reader.uint64(),
                previous: try reader.byte() == 1)
        case 2:
            self = .deleteRange(try StoreTransaction.KeyRange(decoding: &reader), previous: try reader.byte() == 1)
        case 3:
            let range = try StoreTransaction.KeyRange(decoding: &reader)
            let limit = try reader.uint64()
            let flags = try reader.byte()
            self = .range(range, limit: limit, keysOnly: flags & 1 != 0, countOnly: flags & 2 != 0)
        default: throw .malformed("transaction request")
        }
    }
}

extension TransactionOutcome {
    func encode(into bytes: inout [UInt8]) {
        bytes.append(succeeded ? 1 : 0)
        bytes.appendLittleEndian(revision)
        bytes.appendLittleEndian(UInt32(responses.count))
        for response in responses {
            switch response {
            case .put(let previous):
                bytes.append(1)
                Self.encode(previous.map { [$0] } ?? [], into: &bytes)
            case .deleteRange(let deleted, let previous):
                bytes.append(2)
                bytes.appendLittleEndian(deleted)
                Self.encode(previous, into: &bytes)
            case .range(let keyValues, let count, let more):
                bytes.append(3)
                bytes.appendLittleEndian(count)
                bytes.append(more ? 1 : 0)
                Self.encode(keyValues, into: &bytes)
            }
        }
    }

    private static func encode(_ keyValues: [KeyValue], into bytes: inout [UInt8]) {
        bytes.appendLittleEndian(UInt32(keyValues.count))
        for keyValue in keyValues {
            bytes.appendLengthPrefixed(Array(keyValue.key.utf8))
            bytes.appendLengthPrefixed(keyValue.record.value)
            bytes.appendLittleEndian(keyValue.record.createRevision)
            bytes.appendLittleEndian(keyValue.record.modRevision)
            bytes.appendLittleEndian(keyValue.record.version)
            bytes.appendLittleEndian(keyValue.record.lease)
        }
    }

    private static func keyValues(_ reader: inout StoreReader) throws(StoreDecodingError) -> [KeyValue] {
        let count = try reader.uint32()
        guard count <= reader.remaining / 40 else { throw .malformed("key-value count") }
        var result: [KeyValue] = []
        for _ in 0..<count {
            let key = try reader.string()
            let value = try reader.lengthPrefixed()
            result.append(
                KeyValue(
                    key: key,
                    record: KeyValueStore.Record(
                        value: value, createRevision: try reader.uint64(), modRevision: try reader.uint64(),
                        version: try reader.uint64(), lease: try reader.uint64())))
        }
        return result
    }

    init(decoding reader: inout StoreReader) throws(StoreDecodingError) {
        succeeded = try reader.byte() == 1
        revision = try reader.uint64()
        let count = try reader.uint32()
        guard count <= reader.remaining / 5 else { throw .malformed("response count") }
        responses = []
        for _ in 0..<count {
            switch try reader.byte() {
            case 1:
                let previous = try Self.keyValues(&reader)
                guard previous.count <= 1 else { throw .malformed("put response") }
                responses.append(.put(previous: previous.first))
            case 2:
                let deleted = try reader.uint64()
                responses.append(.deleteRange(deleted: deleted, previous: try Self.keyValues(&reader)))
            case 3:
                let count = try reader.uint64()
                let more = try reader.byte() == 1
                responses.append(.range(keyValues: try Self.keyValues(&reader), count: count, more: more))
            default: throw .malformed("transaction response")
            }
        }
    }
}
