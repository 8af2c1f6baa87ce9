/// The store's recent key changes, so a watch can start at, or resume from, an earlier revision.
///
/// etcd keeps every revision until an operator compacts; raftgate keeps a window bounded by event
/// count and bytes and compacts as it goes, so memory never grows with the write rate. The window
/// is part of the store (and of its snapshots): every node holds the same history at the same
/// applied index, so a watch resumed on another node, or on a node that restarted or installed a
/// snapshot, finds the same changes — or the same `compactRevision`.
public struct ChangeHistory: Sendable {
    public struct Limits: Sendable, Hashable {
        public var maxEvents: Int
        public var maxBytes: Int

        public init(maxEvents: Int = 10_000, maxBytes: Int = 8 << 20) {
            self.maxEvents = max(1, maxEvents)
            self.maxBytes = max(1, maxBytes)
        }
    }

    public let limits: Limits
    /// Every change above this revision is held; those at or below it are gone. A watch from
    /// `since` (the last revision its client saw) can be served exactly when `since >= compactRevision`.
    public private(set) var compactRevision: UInt64
    /// Oldest first; `changes[head...]` are live (evicted ones are dropped in batches).
    private var changes: [StoreChange] = []
    private var head = 0
    private var eventCount = 0
    private var byteCount = 0

    public init(limits: Limits = Limits(), compactRevision: UInt64 = 0) {
        self.limits = limits
        self.compactRevision = compactRevision
    }

    /// Records a change that bumped the revision. Whole revisions are evicted, oldest first, so a
    /// revision is never half served.
    mutating func append(_ change: StoreChange) {
        var recorded = change
        recorded.leases = []
        changes.append(recorded)
        eventCount += recorded.events.count
        byteCount += recorded.byteCount
        while (eventCount > limits.maxEvents || byteCount > limits.maxBytes) && head < changes.count {
            let evicted = changes[head]
            head += 1
            eventCount -= evicted.events.count
            byteCount -= evicted.byteCount
            compactRevision = evicted.revision
        }
        if head > 0 && head * 2 >= changes.count {
            changes.removeFirst(head)
            head = 0
        }
    }

    /// Every held change with a revision above `since`, oldest first; nil when some of them were
    /// compacted away (`since < compactRevision`).
    public func changes(after since: UInt64) -> [StoreChange]? {
        guard since >= compactRevision else { return nil }
        var low = head
        var high = changes.count
        while low < high {
            let middle = (low + high) / 2
            if changes[middle].revision <= since { low = middle + 1 } else { high = middle }
        }
        return Array(changes[low...])
    }

    public var count: Int { changes.count - head }

    // MARK: Snapshot encoding

    func encode(into bytes: inout [UInt8]) {
        bytes.appendLittleEndian(UInt64(limits.maxEvents))
        bytes.appendLittleEndian(UInt64(limits.maxBytes))
        bytes.appendLittleEndian(compactRevision)
        bytes.appendLittleEndian(UInt64(count))
        for change in changes[head...] {
            bytes.appendLittleEndian(change.revision)
            bytes.appendLittleEndian(UInt32(change.events.count))
            for event in change.events {
                bytes.append(event.kind.rawValue)
                bytes.appendLengthPrefixed(Array(event.key.utf8))
                bytes.appendLengthPrefixed(event.value)
                bytes.appendLittleEndian(event.createRevision)
                bytes.appendLittleEndian(event.version)
                bytes.appendLittleEndian(event.lease)
            }
        }
    }

    /// Reads what `encode` wrote; `storeRevision` bounds the revisions a valid history can hold.
    init(decoding reader: inout StoreReader, storeRevision: UInt64) throws(StoreDecodingError) {
        let maxEvents = try reader.uint64()
        let maxBytes = try reader.uint64()
        guard (1...(1 << 40)).contains(maxEvents), (1...(1 << 40)).contains(maxBytes) else {
            throw .malformed("history limits")
        }
        limits = Limits(maxEvents: Int(maxEvents), maxBytes: Int(maxBytes))
        compactRevision = try reader.uint64()
        guard compactRevision <= storeRevision else { throw .malformed("history compacted beyond the store") }
        let changeCount = try reader.uint64()
        // Each change takes at least 12 bytes: a larger count is a lie.
        guard changeCount <= UInt64(reader.remaining / 12) else { throw .malformed("history change count") }
        var previous = compactRevision
        for _ in 0..<changeCount {
            let revision = try reader.uint64()
            guard revision > previous, revision <= storeRevision else { throw .malformed("history revisions") }
            previous = revision
            let eventsInChange = Int(try reader.uint32())
            guard eventsInChange > 0, eventsInChange <= reader.remaining / 33 else {
                throw .malformed("history event count")
            }
            var events: [StoreEvent] = []
            events.reserveCapacity(eventsInChange)
            for _ in 0..<eventsInChange {
                guard let kind = StoreEvent.Kind(rawValue: try reader.byte()) else {
                    throw .malformed("history event kind")
                }
                events.append(
                    StoreEvent(
                        kind: kind, key: try reader.string(), value: try reader.lengthPrefixed(), revision: revision,
                        createRevision: try reader.uint64(), version: try reader.uint64(), lease: try reader.uint64()))
            }
            let change = StoreChange(revision: revision, events: events)
            changes.append(change)
            self.eventCount += events.count
            self.byteCount += change.byteCount
        }
    }
}
