import Crypto

/// The results of commands that carried an `Idempotency-Key`, part of the replicated store.
///
/// - A key is bound to the request it came with: each entry keeps a fingerprint of its command
///   (everything but the key and the stamp), and the same key with another command is refused
///   (`StoreResult.idempotencyKeyReused`, HTTP 422) instead of answered with a result that was
///   never its own.
/// - Entries are kept for a time window and within a byte budget, not a bare count. Time is the
///   log's, never a replica's clock: the leader stamps each keyed command with its wall time when
///   it proposes it, and the table's clock is the largest stamp applied so far. Every replica
///   applies the same stamps in the same order, so every replica forgets the same entries at the
///   same index, and the clock never runs backwards when a leader with a slower clock takes over.
public struct IdempotencyTable: Sendable, Hashable {
    /// How long a key is remembered, by the log's clock. A cluster-wide constant, never a node's
    /// setting: replicas that forgot keys at different times would answer a retry differently —
    /// one replays it, another applies it again — and their stores would part for good.
    public static let windowMilliseconds: UInt64 = 10 * 60 * 1000
    /// What the entries may occupy (`Entry.cost`); the oldest are forgotten first. Cluster-wide,
    /// for the same reason.
    public static let maxBytes: UInt64 = 16 << 20
    /// How many keys version 1 and 2 stores remembered (the only value they ever used): commands
    /// without a stamp — written before stamps, replayed from an old log — keep that rule, so a
    /// node replaying them answers exactly as a node that applied them before the upgrade and
    /// restarts from its snapshot.
    public static let legacyCount = 10_000

    struct Entry: Sendable, Hashable {
        var key: String
        /// Empty for entries restored from a store written before fingerprints: any command matches.
        var fingerprint: [UInt8]
        var result: StoreResult
        /// The table's clock when it was remembered.
        var stamp: UInt64

        /// Bytes charged against `maxBytes`: key, fingerprint, result, stamp, and a fixed
        /// allowance for the bookkeeping around them. A transaction's result (its reads' rows)
        /// is charged what it encodes to; every other result fits in 9 bytes.
        var cost: UInt64 { UInt64(key.utf8.count + fingerprint.count + resultBytes + 8 + 48) }

        private var resultBytes: Int {
            guard case .transaction = result else { return 9 }
            var bytes: [UInt8] = []
            result.encode(into: &bytes)
            return bytes.count
        }
    }

    /// What a keyed command finds.
    enum Lookup: Equatable {
        case absent
        case replay(StoreResult)
        case reused
    }

    /// The largest stamp applied (milliseconds since the epoch, by the proposing leaders' clocks).
    public private(set) var clock: UInt64 = 0
    public private(set) var bytes: UInt64 = 0
    /// Oldest first; `entries[head...]` are live. `base` is the sequence number of `entries[0]`.
    private var entries: [Entry] = []
    private var head = 0
    private var base = 0
    private var index: [String: Int] = [:]

    public init() {}

    public var count: Int { entries.count - head }

    /// The fingerprint binding a key to its command: SHA-256 (first 16 bytes) of the command's
    /// encoding without its key and stamp — and without a lease grant's id, which the proposing
    /// node picks afresh for each attempt, so a retried grant still matches. The same on every
    /// replica.
    static func fingerprint(_ command: StoreCommand) -> [UInt8] {
        var bare = command
        bare.idempotencyKey = nil
        bare.stamp = 0
        if case .grantLease(_, let ttl) = bare.operation { bare.operation = .grantLease(id: 0, ttlMilliseconds: ttl) }
        return Array(SHA256.hash(data: bare.encoded).prefix(16))
    }

    /// Moves the clock to `stamp` (never back) and forgets what the window no longer covers. The
    /// clock's first move from 0 restamps the entries remembered before stamps existed with it,
    /// so they stay a whole window after the upgrade instead of being forgotten at once (a retry
    /// spanning the upgrade would apply twice).
    mutating func advance(to stamp: UInt64) {
        if clock == 0, stamp > 0 {
            for position in head..<entries.count { entries[position].stamp = stamp }
        }
        clock = max(clock, stamp)
        while head < entries.count, entries[head].stamp + Self.windowMilliseconds < clock { evictOldest() }
    }

    /// A legacy lookup (an unstamped command) replays whatever the key holds, as versions 1 and 2 did.
    func lookup(_ key: String, fingerprint: [UInt8], legacy: Bool = false) -> Lookup {
        guard let sequence = index[key] else { return .absent }
        let entry = entries[sequence - base]
        return legacy || entry.fingerprint.isEmpty || entry.fingerprint == fingerprint ? .replay(entry.result) : .reused
    }

    /// A legacy entry (from an unstamped command) is kept as versions 1 and 2 kept it: without a
    /// fingerprint, and within `legacyCount` entries rather than the byte budget.
    mutating func remember(_ key: String, fingerprint: [UInt8], result: StoreResult, legacy: Bool = false) {
        let entry = Entry(key: key, fingerprint: legacy ? [] : fingerprint, result: result, stamp: clock)
        index[key] = base + entries.count
        entries.append(entry)
        bytes += entry.cost
        if legacy {
            while count > Self.legacyCount { evictOldest() }
        } else {
            while bytes > Self.maxBytes, head < entries.count { evictOldest() }
        }
    }

    private mutating func evictOldest() {
        let entry = entries[head]
        if index[entry.key] == base + head { index[entry.key] = nil }
        bytes -= entry.cost
        head += 1
        if head >= 1024, head * 2 >= entries.count {
            entries.removeFirst(head)
            base += head
            head = 0
        }
    }

    public static func == (lhs: IdempotencyTable, rhs: IdempotencyTable) -> Bool {
        lhs.clock == rhs.clock && lhs.entries[lhs.head...] == rhs.entries[rhs.head...]
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(clock)
        for entry in entries[head...] { hasher.combine(entry) }
    }

    // MARK: Encoding (inside a store snapshot, version 3)

    func encode(into bytes: inout [UInt8]) {
        // The limits stay in the format (version 3 always carried them) but are only ever these
        // constants; decoding reads past them.
        bytes.appendLittleEndian(Self.windowMilliseconds)
        bytes.appendLittleEndian(Self.maxBytes)
        bytes.appendLittleEndian(clock)
        bytes.appendLittleEndian(UInt64(count))
        for entry in entries[head...] {
            bytes.appendLengthPrefixed(Array(entry.key.utf8))
            bytes.appendLengthPrefixed(entry.fingerprint)
            entry.result.encode(into: &bytes)
            bytes.appendLittleEndian(entry.stamp)
        }
    }

    init(decoding reader: inout StoreReader) throws(StoreDecodingError) {
        // The snapshot's own limits are ignored: whatever wrote them, every replica forgets keys
        // by the same constants, or a retry would replay on one replica and apply on another.
        _ = try reader.uint64()
        _ = try reader.uint64()
        clock = try reader.uint64()
        let count = try reader.uint64()
        // Each entry takes at least 4 + 4 + 9 + 8 bytes.
        guard count <= UInt64(reader.remaining / 25) else { throw .malformed("idempotency entry count") }
        var previousStamp: UInt64 = 0
        for _ in 0..<count {
            let key = try reader.string()
            let fingerprint = try reader.lengthPrefixed()
            let result = try StoreResult(decoding: &reader)
            let stamp = try reader.uint64()
            guard stamp >= previousStamp, stamp <= clock, index[key] == nil else {
                throw .malformed("idempotency entries")
            }
            previousStamp = stamp
            let entry = Entry(key: key, fingerprint: fingerprint, result: result, stamp: stamp)
            index[key] = entries.count
            entries.append(entry)
            bytes += entry.cost
        }
    }

    /// A version 1 or 2 store's remembered results: no fingerprints, no stamps (the first stamped
    /// command ages them out).
    init(legacy: [(key: String, result: StoreResult)]) {
        self.init()
        for (key, result) in legacy where index[key] == nil {
            remember(key, fingerprint: [], result: result, legacy: true)
        }
    }
}
