/// The replicated state machine of DESIGN.md: one ordered keyspace with etcd-style revisions.
/// Every applied write bumps the global `revision`; each key keeps `createRevision`,
/// `modRevision` and `version`. Leases and a bounded history of changes (for watches) live here
/// too. Deterministic: the same commands in the same order give the same store on every node,
/// byte for byte (its snapshot encoding included).
public struct KeyValueStore: Sendable, Hashable {
    public struct Record: Sendable, Hashable {
        public var value: [UInt8]
        public var createRevision: UInt64
        public var modRevision: UInt64
        /// Writes since creation, starting at 1.
        public var version: UInt64
        /// The lease the key is attached to (0: none): the key is deleted when the lease ends.
        public var lease: UInt64 = 0

        public init(value: [UInt8], createRevision: UInt64, modRevision: UInt64, version: UInt64, lease: UInt64 = 0) {
            self.value = value
            self.createRevision = createRevision
            self.modRevision = modRevision
            self.version = version
            self.lease = lease
        }
    }

    /// A lease as every node knows it. When it expires is not here: only the leader decides
    /// that, on its own monotonic clock (`LeaseDeadlines`).
    public struct Lease: Sendable, Hashable {
        public var id: UInt64
        public var ttlMilliseconds: UInt64
        /// Attached keys, in byte order.
        public var keys: [String]
    }

    /// Keys starting with this are the node's own (workers, config, topology, members).
    public static let reservedPrefix = "/_sys/"
    /// Where the etcd API keeps etcd's keys (etcd key `k` is store key `etcdPrefix + k`): inside
    /// `reservedPrefix`, so clients of the `/kv` API cannot write them, nor read them without the
    /// admin token.
    public static let etcdPrefix = "/_sys/etcd"

    public internal(set) var revision: UInt64 = 0
    /// Keys and records in byte order, so prefix ranges are a binary search and a scan; a
    /// structurally shared value, so a range read can take it as a snapshot (`keyIndex`).
    var index: SortedKeyIndex
    /// Results of commands that carried an idempotency key, bound to their commands, kept for a
    /// window of the log's time and within a byte budget.
    public private(set) var idempotency: IdempotencyTable
    /// Live leases: their TTL and the keys attached to each.
    var leaseTable: [UInt64: (ttlMilliseconds: UInt64, keys: Set<StoreKey>)] = [:]
    /// Recent changes, for watches that start or resume at an earlier revision.
    public private(set) var history: ChangeHistory

    public init(historyLimits: ChangeHistory.Limits = .init()) {
        self.init(historyLimits: historyLimits, maxChunk: SortedKeyIndex.defaultMaxChunk)
    }

    /// `maxChunk` is for the tests: small chunks split and merge after a few writes.
    init(historyLimits: ChangeHistory.Limits = .init(), maxChunk: Int) {
        index = SortedKeyIndex(maxChunk: maxChunk)
        idempotency = IdempotencyTable()
        history = ChangeHistory(limits: historyLimits)
    }

    public var count: Int { index.count }

    /// The keys and records as of now, for a range read to scan while this store goes on
    /// applying: copying it costs a reference count, and later writes never show in it.
    public var keyIndex: SortedKeyIndex { index }

    /// Bytes of keys and values held. Derived from the records, so it is the same on every
    /// replica and needs no snapshot field.
    public internal(set) var dataBytes: UInt64 = 0

    /// What the store quota charges for each key and each lease besides its bytes: its share of the
    /// snapshot (a record adds 40 bytes of lengths and revisions, a lease 16) and of memory. Without
    /// it a quota could be met with millions of empty keys whose snapshot is far larger.
    public static let quotaOverheadBytes: UInt64 = 48

    /// What the store quota (`WriteLimits.quotaBytes`) measures: keys and values, plus
    /// `quotaOverheadBytes` per key and per lease.
    public var quotaBytesUsed: UInt64 { dataBytes + UInt64(index.count + leaseTable.count) * Self.quotaOverheadBytes }

    public func get(_ key: String) -> Record? { index.get(StoreKey(key)) }

    /// Keys beginning with `prefix`, in order, at most `limit`, and only those after `after` when
    /// it is given (a page continues after the last key of the one before); without
    /// `includeReserved` (the default), keys under `reservedPrefix` are left out
    /// (`SortedKeyIndex.range`): a caller that needs `/_sys/` says so.
    public func range(prefix: String, after: String? = nil, limit: Int = .max, includeReserved: Bool = false) -> [(
        key: String, record: Record
    )] {
        index.range(prefix: prefix, after: after, limit: limit, includeReserved: includeReserved)
    }

    // MARK: Leases

    public var leaseCount: Int { leaseTable.count }

    public func leaseTTL(_ id: UInt64) -> UInt64? { leaseTable[id]?.ttlMilliseconds }

    public func lease(_ id: UInt64) -> Lease? {
        guard let entry = leaseTable[id] else { return nil }
        return Lease(id: id, ttlMilliseconds: entry.ttlMilliseconds, keys: entry.keys.sorted().map(\.string))
    }

    /// Every live lease's id and TTL, by id (the leader restarts their deadlines from this).
    public var leaseTTLs: [(id: UInt64, ttlMilliseconds: UInt64)] {
        leaseTable.map { ($0.key, $0.value.ttlMilliseconds) }.sorted { $0.id < $1.id }
    }

    // MARK: Applying commands

    /// Applies one committed command. A command whose idempotency key was seen with the same
    /// command returns the first result and changes nothing; with another command it is refused
    /// (`idempotencyKeyReused`) and changes nothing.
    public mutating func apply(_ command: StoreCommand) -> StoreResult {
        applyRecordingChange(command).result
    }

    /// Applies one committed command and says what it changed, for the change feed; nil when it
    /// changed nothing.
    public mutating func applyRecordingChange(_ command: StoreCommand) -> (result: StoreResult, change: StoreChange?) {
        var fingerprint: [UInt8] = []
        // Unstamped keyed commands were written before stamps (versions 1 and 2): they keep the
        // rules they were applied under then (`IdempotencyTable.legacyCount`).
        let legacy = command.stamp == 0
        if let key = command.idempotencyKey {
            idempotency.advance(to: command.stamp)
            fingerprint = legacy ? [] : IdempotencyTable.fingerprint(command)
            switch idempotency.lookup(key, fingerprint: fingerprint, legacy: legacy) {
            case .replay(let first): return (first, nil)
            case .reused: return (.idempotencyKeyReused, nil)
            case .absent: break
            }
        }
        let (result, change) = execute(command)
        if let key = command.idempotencyKey {
            idempotency.remember(key, fingerprint: fingerprint, result: result, legacy: legacy)
        }
        if let change, !change.events.isEmpty { history.append(change) }
        return (result, change)
    }

    private mutating func execute(_ command: StoreCommand) -> (StoreResult, StoreChange?) {
        switch command.operation {
        case .grantLease(let id, let ttl):
            // 0 means "no lease" everywhere, so it can never be granted.
            guard id != 0, leaseTable[id] == nil else { return (.leaseExists(id: id), nil) }
            leaseTable[id] = (ttl, [])
            return (
                .leaseGranted(id: id), StoreChange(revision: revision, leases: [.granted(id: id, ttlMilliseconds: ttl)])
            )
        case .revokeLease(let id):
            guard let lease = leaseTable.removeValue(forKey: id) else { return (.leaseNotFound(id: id), nil) }
            var events: [StoreEvent] = []
            if !lease.keys.isEmpty {
                revision += 1
                for key in lease.keys.sorted() {
                    if let record = index.remove(key) { dataBytes -= UInt64(key.bytes.count + record.value.count) }
                    events.append(StoreEvent(kind: .delete, key: key.string, revision: revision))
                }
            }
            return (
                .applied(revision: revision, found: true),
                StoreChange(revision: revision, events: events, leases: [.revoked(id: id)])
            )
        case .put(let name, let value):
            return write(command, key: StoreKey(name), value: value)
        case .delete(let name):
            return write(command, key: StoreKey(name), value: nil)
        case .transaction(let transaction):
            return execute(transaction, isSystem: command.isSystem)
        }
    }

    /// A put (`value` set) or a delete, after the reserved-prefix, condition and lease checks.
    private mutating func write(_ command: StoreCommand, key: StoreKey, value: [UInt8]?) -> (StoreResult, StoreChange?)
    {
        if !command.isSystem && key.bytes.starts(with: Self.reservedPrefix.utf8) { return (.reservedKey, nil) }
        let current = index.get(key)
        switch command.condition {
        case .none: break
        case .absent:
            if let current { return (.conditionFailed(current: current.modRevision), nil) }
        case .modRevision(let expected):
            if (current?.modRevision ?? 0) != expected {
                return (.conditionFailed(current: current?.modRevision ?? 0), nil)
            }
        }
        guard let value else {
            guard let current else { return (.applied(revision: revision, found: false), nil) }
            revision += 1
            detach(key, from: current.lease)
            dataBytes -= UInt64(key.bytes.count + current.value.count)
            index.remove(key)
            return (
                .applied(revision: revision, found: true),
                StoreChange(
                    revision: revision, events: [StoreEvent(kind: .delete, key: key.string, revision: revision)])
            )
        }
        let lease = command.lease
        if lease != 0 && leaseTable[lease] == nil { return (.leaseNotFound(id: lease), nil) }
        revision += 1
        let record = storeRecord(key, value: value, lease: lease, replacing: current, at: revision)
        let event = StoreEvent(
            kind: .put, key: key.string, value: value, revision: revision, createRevision: record.createRevision,
            version: record.version, lease: lease)
        return (.applied(revision: revision, found: current != nil), StoreChange(revision: revision, events: [event]))
    }

    mutating func detach(_ key: StoreKey, from lease: UInt64) {
        guard lease != 0 else { return }
        leaseTable[lease]?.keys.remove(key)
    }

    /// Stores `value` under `key` at `revision` (a new record, or `current` updated), with its
    /// lease attachment and the data bytes kept in step: the one way a put changes the store,
    /// shared by plain writes and transactions.
    mutating func storeRecord(
        _ key: StoreKey, value: [UInt8], lease: UInt64, replacing current: Record?, at revision: UInt64
    ) -> Record {
        var record: Record
        if let current {
            dataBytes = dataBytes - UInt64(current.value.count) + UInt64(value.count)
            record = current
            record.value = value
            record.modRevision = revision
            record.version += 1
        } else {
            record = Record(value: value, createRevision: revision, modRevision: revision, version: 1)
            dataBytes += UInt64(key.bytes.count + value.count)
        }
        if record.lease != lease {
            detach(key, from: record.lease)
            leaseTable[lease]?.keys.insert(key)
            record.lease = lease
        }
        index.set(key, record)
        return record
    }

    public static func == (lhs: KeyValueStore, rhs: KeyValueStore) -> Bool {
        lhs.snapshot == rhs.snapshot
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(snapshot) }

    // MARK: Snapshot

    /// The whole store — keys, leases, the idempotency table and the change history — in a
    /// deterministic encoding (version 3; version 2 had a count-bounded idempotency window
    /// between the revision and the keys, and unbound results after them).
    public var snapshot: [UInt8] {
        var bytes: [UInt8] = [3]
        bytes.appendLittleEndian(revision)
        bytes.appendLittleEndian(UInt64(index.count))
        for entry in index.entries {
            let record = entry.record
            bytes.appendLengthPrefixed(entry.key.bytes)
            bytes.appendLengthPrefixed(record.value)
            bytes.appendLittleEndian(record.createRevision)
            bytes.appendLittleEndian(record.modRevision)
            bytes.appendLittleEndian(record.version)
            bytes.appendLittleEndian(record.lease)
        }
        idempotency.encode(into: &bytes)
        // Attached keys are not listed: each record names its lease, and decoding rebuilds the sets.
        bytes.appendLittleEndian(UInt64(leaseTable.count))
        for (id, ttl) in leaseTTLs {
            bytes.appendLittleEndian(id)
            bytes.appendLittleEndian(ttl)
        }
        history.encode(into: &bytes)
        return bytes
    }

    /// Restores a store from `snapshot`; throws on anything malformed, never traps. Version 1
    /// (before leases and history) restores with no leases and a history that starts now.
    public init(snapshot bytes: [UInt8]) throws(StoreDecodingError) {
        try self.init(snapshot: bytes, maxChunk: SortedKeyIndex.defaultMaxChunk)
    }

    /// `maxChunk` is for the tests, as above.
    init(snapshot bytes: [UInt8], maxChunk: Int) throws(StoreDecodingError) {
        index = SortedKeyIndex(maxChunk: maxChunk)
        var reader = StoreReader(bytes[...])
        let version = try reader.byte()
        guard (1...3).contains(version) else { throw .unsupportedVersion }
        revision = try reader.uint64()
        var window: UInt64 = 0
        if version < 3 {
            window = try reader.uint64()
            guard window >= 1, window <= 1 << 32 else { throw .malformed("idempotency window") }
        }
        let keyCount = try reader.uint64()
        var previous: StoreKey?
        for _ in 0..<keyCount {
            let key = StoreKey(try reader.string())
            if let previous, !(previous < key) { throw .malformed("keys out of order") }
            let value = try reader.lengthPrefixed()
            let record = Record(
                value: value, createRevision: try reader.uint64(), modRevision: try reader.uint64(),
                version: try reader.uint64(), lease: version >= 2 ? try reader.uint64() : 0)
            guard record.modRevision <= revision, record.createRevision <= record.modRevision else {
                throw .malformed("revisions of \(key.string)")
            }
            index.append(key, record)
            dataBytes += UInt64(key.bytes.count + value.count)
            previous = key
        }
        if version == 3 {
            idempotency = try IdempotencyTable(decoding: &reader)
        } else {
            let rememberedCount = try reader.uint64()
            guard rememberedCount <= window else { throw .malformed("idempotency entries beyond the window") }
            var legacy: [(key: String, result: StoreResult)] = []
            for _ in 0..<rememberedCount { legacy.append((try reader.string(), try StoreResult(decoding: &reader))) }
            idempotency = IdempotencyTable(legacy: legacy)
        }
        guard version >= 2 else {
            history = ChangeHistory(compactRevision: revision)
            guard reader.isAtEnd else { throw .malformed("trailing bytes") }
            return
        }
        let leaseCount = try reader.uint64()
        guard leaseCount <= UInt64(reader.remaining / 16) else { throw .malformed("lease count") }
        var previousLease: UInt64 = 0
        for _ in 0..<leaseCount {
            let id = try reader.uint64()
            guard id > previousLease else { throw .malformed("leases out of order") }
            previousLease = id
            leaseTable[id] = (try reader.uint64(), [])
        }
        for entry in index.entries where entry.record.lease != 0 {
            let (key, record) = (entry.key, entry.record)
            guard leaseTable[record.lease] != nil else { throw .malformed("\(key.string) names a missing lease") }
            leaseTable[record.lease]!.keys.insert(key)
        }
        history = try ChangeHistory(decoding: &reader, storeRevision: revision)
        guard reader.isAtEnd else { throw .malformed("trailing bytes") }
    }
}

/// Keys are byte strings, as in etcd: compared, ordered and prefix-matched by their UTF-8 bytes,
/// never by Unicode equivalence (which could let "/_sys/" be spelled another way, and could change
/// between Unicode versions across a mixed-version cluster).
struct StoreKey: Hashable, Comparable, Sendable {
    let bytes: [UInt8]

    init(_ key: String) { bytes = Array(key.utf8) }

    init(bytes: [UInt8]) { self.bytes = bytes }

    var string: String { String(decoding: bytes, as: UTF8.self) }

    static func < (lhs: StoreKey, rhs: StoreKey) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
}
