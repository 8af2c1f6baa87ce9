/// The replicated state machine of DESIGN.md: one ordered keyspace with etcd-style revisions.
/// Every applied write bumps the global `revision`; each key keeps `createRevision`,
/// `modRevision` and `version`. Deterministic: the same commands in the same order give the same
/// store on every node, byte for byte (its snapshot encoding included).
public struct KeyValueStore: Sendable, Hashable {
    public struct Record: Sendable, Hashable {
        public var value: [UInt8]
        public var createRevision: UInt64
        public var modRevision: UInt64
        /// Writes since creation, starting at 1.
        public var version: UInt64
    }

    /// Keys starting with this are the node's own (workers, config, topology, members).
    public static let reservedPrefix = "/_sys/"

    public private(set) var revision: UInt64 = 0
    /// Keys in byte order, so prefix ranges are a binary search and a scan.
    private var keys: [StoreKey] = []
    private var records: [StoreKey: Record] = [:]
    /// Results of commands that carried an idempotency key, oldest first, at most `idempotencyWindow`.
    private var remembered: [(key: String, result: StoreResult)] = []
    private var rememberedIndex: [String: StoreResult] = [:]
    public let idempotencyWindow: Int

    public init(idempotencyWindow: Int = 10_000) {
        self.idempotencyWindow = max(1, idempotencyWindow)
    }

    public var count: Int { keys.count }

    public func get(_ key: String) -> Record? { records[StoreKey(key)] }

    /// Keys beginning with `prefix`, in order, at most `limit`.
    public func range(prefix: String, limit: Int = .max) -> [(key: String, record: Record)] {
        let prefixKey = StoreKey(prefix)
        var result: [(String, Record)] = []
        var position = lowerBound(prefixKey)
        while position < keys.count, keys[position].bytes.starts(with: prefixKey.bytes), result.count < limit {
            result.append((keys[position].string, records[keys[position]]!))
            position += 1
        }
        return result
    }

    /// Applies one committed command. A command whose idempotency key was seen returns the first
    /// result and changes nothing.
    public mutating func apply(_ command: StoreCommand) -> StoreResult {
        if let key = command.idempotencyKey, let first = rememberedIndex[key] { return first }
        let result = execute(command)
        if let key = command.idempotencyKey { remember(key, result) }
        return result
    }

    private mutating func execute(_ command: StoreCommand) -> StoreResult {
        let key = StoreKey(command.key)
        if !command.isSystem && key.bytes.starts(with: Self.reservedPrefix.utf8) { return .reservedKey }
        let current = records[key]
        switch command.condition {
        case .none: break
        case .absent:
            if let current { return .conditionFailed(current: current.modRevision) }
        case .modRevision(let expected):
            if (current?.modRevision ?? 0) != expected { return .conditionFailed(current: current?.modRevision ?? 0) }
        }
        switch command.operation {
        case .put(_, let value):
            revision += 1
            if var record = current {
                record.value = value
                record.modRevision = revision
                record.version += 1
                records[key] = record
            } else {
                records[key] = Record(value: value, createRevision: revision, modRevision: revision, version: 1)
                keys.insert(key, at: lowerBound(key))
            }
            return .applied(revision: revision, found: current != nil)
        case .delete:
            guard current != nil else { return .applied(revision: revision, found: false) }
            revision += 1
            records[key] = nil
            keys.remove(at: lowerBound(key))
            return .applied(revision: revision, found: true)
        }
    }

    private mutating func remember(_ key: String, _ result: StoreResult) {
        remembered.append((key, result))
        rememberedIndex[key] = result
        if remembered.count > idempotencyWindow {
            let evicted = remembered.removeFirst()
            rememberedIndex[evicted.key] = nil
        }
    }

    private func lowerBound(_ key: StoreKey) -> Int {
        var low = 0
        var high = keys.count
        while low < high {
            let middle = (low + high) / 2
            if keys[middle] < key { low = middle + 1 } else { high = middle }
        }
        return low
    }

    public static func == (lhs: KeyValueStore, rhs: KeyValueStore) -> Bool {
        lhs.snapshot == rhs.snapshot
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(snapshot) }

    // MARK: Snapshot (version 1)

    /// The whole store, idempotency window included, in a deterministic encoding.
    public var snapshot: [UInt8] {
        var bytes: [UInt8] = [1]
        bytes.appendLittleEndian(revision)
        bytes.appendLittleEndian(UInt64(idempotencyWindow))
        bytes.appendLittleEndian(UInt64(keys.count))
        for key in keys {
            let record = records[key]!
            bytes.appendLengthPrefixed(key.bytes)
            bytes.appendLengthPrefixed(record.value)
            bytes.appendLittleEndian(record.createRevision)
            bytes.appendLittleEndian(record.modRevision)
            bytes.appendLittleEndian(record.version)
        }
        bytes.appendLittleEndian(UInt64(remembered.count))
        for (key, result) in remembered {
            bytes.appendLengthPrefixed(Array(key.utf8))
            result.encode(into: &bytes)
        }
        return bytes
    }

    /// Restores a store from `snapshot`; throws on anything malformed, never traps.
    public init(snapshot bytes: [UInt8]) throws(StoreDecodingError) {
        var reader = StoreReader(bytes[...])
        guard try reader.byte() == 1 else { throw .unsupportedVersion }
        revision = try reader.uint64()
        let window = try reader.uint64()
        guard window >= 1, window <= 1 << 32 else { throw .malformed("idempotency window") }
        idempotencyWindow = Int(window)
        let keyCount = try reader.uint64()
        var previous: StoreKey?
        for _ in 0..<keyCount {
            let key = StoreKey(try reader.string())
            if let previous, !(previous < key) { throw .malformed("keys out of order") }
            let value = try reader.lengthPrefixed()
            let record = Record(
                value: value, createRevision: try reader.uint64(), modRevision: try reader.uint64(),
                version: try reader.uint64())
            guard record.modRevision <= revision, record.createRevision <= record.modRevision else {
                throw .malformed("revisions of \(key.string)")
            }
            keys.append(key)
            records[key] = record
            previous = key
        }
        let rememberedCount = try reader.uint64()
        guard rememberedCount <= window else { throw .malformed("idempotency entries beyond the window") }
        for _ in 0..<rememberedCount {
            let key = try reader.string()
            let result = try StoreResult(decoding: &reader)
            remembered.append((key, result))
            rememberedIndex[key] = result
        }
        guard reader.isAtEnd else { throw .malformed("trailing bytes") }
    }
}

/// Keys are byte strings, as in etcd: compared, ordered and prefix-matched by their UTF-8 bytes,
/// never by Unicode equivalence (which could let "/_sys/" be spelled another way, and could change
/// between Unicode versions across a mixed-version cluster).
struct StoreKey: Hashable, Comparable, Sendable {
    let bytes: [UInt8]

    init(_ key: String) { bytes = Array(key.utf8) }

    var string: String { String(decoding: bytes, as: UTF8.self) }

    static func < (lhs: StoreKey, rhs: StoreKey) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
}
