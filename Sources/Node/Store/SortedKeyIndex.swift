/// The store's keys and their records in byte order, as a structurally shared value: a sorted
/// array cut into chunks of at most `maxChunk` entries. Copying it copies one reference (the
/// outer array); after a copy, the next write copies the outer array (one reference per chunk)
/// and the one chunk it touches, never the whole keyspace. So the Raft actor can hand a range
/// read a snapshot of the index for the price of a reference count, and the read scans it on its
/// own task while the actor goes on applying writes (`RaftNode.range`).
///
/// Pure: no I/O, no clock, no randomness. The layout of chunks depends on the order of writes,
/// but nothing observable does: iteration, ranges and the store's snapshot encoding see one
/// sorted sequence.
public struct SortedKeyIndex: Sendable {
    struct Entry: Sendable, Hashable {
        var key: StoreKey
        var record: KeyValueStore.Record
    }

    /// Where an entry is, or would be inserted: a chunk and an offset in it.
    struct Position: Comparable {
        var chunk: Int
        var offset: Int

        static func < (lhs: Position, rhs: Position) -> Bool {
            (lhs.chunk, lhs.offset) < (rhs.chunk, rhs.offset)
        }
    }

    /// A chunk splits in two halves above this size, so one write after a snapshot copies at
    /// most this many entries (48 bytes each: a key reference and a record).
    let maxChunk: Int
    static let defaultMaxChunk = 512
    /// Sorted, none empty; every key of a chunk precedes every key of the next.
    private(set) var chunks: [[Entry]] = []
    public private(set) var count = 0
    /// How many times a chunk was split, and joined with a neighbour, in this index and the copies
    /// it was made from: the tests check that the paths they mean to exercise were taken.
    private(set) var splits = 0
    private(set) var merges = 0

    /// `maxChunk` is a parameter for the tests, which use tiny chunks to exercise splits and merges.
    init(maxChunk: Int = defaultMaxChunk) {
        precondition(maxChunk >= 4, "a chunk must hold a few entries to split and merge")
        self.maxChunk = maxChunk
    }

    public var isEmpty: Bool { count == 0 }

    // MARK: Reading

    func get(_ key: StoreKey) -> KeyValueStore.Record? {
        let position = lowerBound(key)
        guard position.chunk < chunks.count else { return nil }
        let entry = chunks[position.chunk][position.offset]
        return entry.key == key ? entry.record : nil
    }

    /// Keys beginning with `prefix`, in order, at most `limit`, and only those strictly after
    /// `after` when it is given (a page continues after the last key of the one before); without
    /// `includeReserved` (the default: `/_sys/` is for callers that say they may see it), keys
    /// under `KeyValueStore.reservedPrefix` are left out — and skipped in one jump, so a read that
    /// may not see them does not pay for scanning them either.
    public func range(prefix: String, after: String? = nil, limit: Int = .max, includeReserved: Bool = false) -> [(
        key: String, record: KeyValueStore.Record
    )] {
        var scan = Scan(self, prefix: prefix, after: after, includeReserved: includeReserved)
        var rows: [(key: String, record: KeyValueStore.Record)] = []
        // Sized for a small answer, not for `limit`: the gateway asks for its limit plus one
        // whatever the prefix holds, and an empty prefix must not cost a limit-sized allocation.
        rows.reserveCapacity(min(limit, Self.initialRowCapacity))
        _ = scan.next(limit, into: &rows)
        return rows
    }

    /// The same rows as `range`, scanned `rowsPerSlice` at a time with `pause` in between: a
    /// range read runs on the Swift concurrency pool (one thread per core), and a scan of many
    /// thousands of rows in one job would keep the Raft actor — its heartbeats and ReadIndex
    /// answers — waiting for a thread that long. `RaftNode.range` pauses with `Task.yield()`.
    func range(
        prefix: String, after: String? = nil, limit: Int = .max, includeReserved: Bool = false,
        rowsPerSlice: Int = Self.rowsPerSlice, pause: () async -> Void
    ) async -> [(key: String, record: KeyValueStore.Record)] {
        precondition(rowsPerSlice > 0, "a slice holds at least one row")
        var scan = Scan(self, prefix: prefix, after: after, includeReserved: includeReserved)
        var rows: [(key: String, record: KeyValueStore.Record)] = []
        rows.reserveCapacity(min(limit, Self.initialRowCapacity))
        while scan.next(min(rowsPerSlice, limit - rows.count), into: &rows), rows.count < limit {
            await pause()
        }
        return rows
    }

    /// Rows a sliced scan copies between two pauses: well under a millisecond of work.
    static let rowsPerSlice = 1000
    static let initialRowCapacity = 32

    /// Where a range read has got to in this index. A value over an immutable copy of the index,
    /// so it can stop between slices and go on where it was.
    struct Scan {
        let index: SortedKeyIndex
        let prefixBytes: [UInt8]
        let reserved = Array(KeyValueStore.reservedPrefix.utf8)
        let includeReserved: Bool
        var position: Position

        init(_ index: SortedKeyIndex, prefix: String, after: String?, includeReserved: Bool) {
            self.index = index
            self.prefixBytes = Array(prefix.utf8)
            self.includeReserved = includeReserved
            position = index.lowerBound(StoreKey(bytes: prefixBytes))
            if let after {
                position = max(position, index.upperBound(StoreKey(after)))
            }
        }

        /// Appends up to `count` more rows; false once the prefix has no more keys.
        mutating func next(_ count: Int, into rows: inout [(key: String, record: KeyValueStore.Record)]) -> Bool {
            var taken = 0
            while position.chunk < index.chunks.count {
                let entry = index.chunks[position.chunk][position.offset]
                guard entry.key.bytes.starts(with: prefixBytes) else { return false }
                if !includeReserved && entry.key.bytes.starts(with: reserved) {
                    position = max(position, index.lowerBound(ofSuccessorOf: reserved))
                    continue
                }
                guard taken < count else { return true }
                rows.append((entry.key.string, entry.record))
                taken += 1
                position = index.advanced(position)
            }
            return false
        }
    }

    // MARK: Writing

    /// Sets the record of `key`, inserting the key if it is new.
    mutating func set(_ key: StoreKey, _ record: KeyValueStore.Record) {
        let position = lowerBound(key)
        if position.chunk < chunks.count, chunks[position.chunk][position.offset].key == key {
            chunks[position.chunk][position.offset].record = record
            return
        }
        insert(Entry(key: key, record: record), at: position)
    }

    /// Removes `key` and returns its record, if it was there.
    @discardableResult
    mutating func remove(_ key: StoreKey) -> KeyValueStore.Record? {
        let position = lowerBound(key)
        guard position.chunk < chunks.count, chunks[position.chunk][position.offset].key == key else { return nil }
        let record = chunks[position.chunk].remove(at: position.offset).record
        count -= 1
        mergeIfSmall(position.chunk)
        return record
    }

    /// Appends a key greater than every key held (building the index from a sorted snapshot).
    /// Chunks are filled to half, so the first inserts among them do not split at once.
    mutating func append(_ key: StoreKey, _ record: KeyValueStore.Record) {
        precondition(chunks.last?.last.map { $0.key < key } ?? true, "append needs keys in ascending order")
        if chunks.isEmpty || chunks[chunks.count - 1].count >= maxChunk / 2 {
            chunks.append([])
            chunks[chunks.count - 1].reserveCapacity(maxChunk / 2)
        }
        chunks[chunks.count - 1].append(Entry(key: key, record: record))
        count += 1
    }

    private mutating func insert(_ entry: Entry, at position: Position) {
        count += 1
        guard !chunks.isEmpty else {
            chunks = [[entry]]
            return
        }
        // Past the last key: the end of the last chunk.
        let target =
            position.chunk < chunks.count
            ? position : Position(chunk: chunks.count - 1, offset: chunks[chunks.count - 1].count)
        chunks[target.chunk].insert(entry, at: target.offset)
        if chunks[target.chunk].count > maxChunk {
            let half = chunks[target.chunk].count / 2
            let upper = Array(chunks[target.chunk][half...])
            chunks[target.chunk].removeSubrange(half...)
            chunks.insert(upper, at: target.chunk + 1)
            splits += 1
        }
    }

    /// Drops an empty chunk; joins a chunk below a quarter full with a neighbour when the two fit
    /// in one, so deletes cannot leave a long outer array of nearly empty chunks.
    private mutating func mergeIfSmall(_ index: Int) {
        if chunks[index].isEmpty {
            chunks.remove(at: index)
            return
        }
        guard chunks[index].count < maxChunk / 4 else { return }
        if index > 0, chunks[index - 1].count + chunks[index].count <= maxChunk {
            let moved = chunks.remove(at: index)
            chunks[index - 1].append(contentsOf: moved)
            merges += 1
        } else if index + 1 < chunks.count, chunks[index].count + chunks[index + 1].count <= maxChunk {
            let moved = chunks.remove(at: index + 1)
            chunks[index].append(contentsOf: moved)
            merges += 1
        }
    }

    // MARK: Positions

    /// The position of the first key not less than `key` (a chunk index equal to
    /// `chunks.count` when there is none). Offsets are always inside their chunk.
    func lowerBound(_ key: StoreKey) -> Position {
        // The last chunk whose first key is not greater than `key` holds the answer, or the answer
        // is the start of the chunk after it.
        var low = 0
        var high = chunks.count
        while low < high {
            let middle = (low + high) / 2
            if key < chunks[middle][0].key { high = middle } else { low = middle + 1 }
        }
        guard low > 0 else { return Position(chunk: 0, offset: 0) }
        let chunk = chunks[low - 1]
        var first = 0
        var last = chunk.count
        while first < last {
            let middle = (first + last) / 2
            if chunk[middle].key < key { first = middle + 1 } else { last = middle }
        }
        return first < chunk.count ? Position(chunk: low - 1, offset: first) : Position(chunk: low, offset: 0)
    }

    /// The position of the first key greater than `key`.
    func upperBound(_ key: StoreKey) -> Position {
        let position = lowerBound(key)
        guard position.chunk < chunks.count, chunks[position.chunk][position.offset].key == key else {
            return position
        }
        return advanced(position)
    }

    /// The first position past every key that starts with `prefix`.
    func lowerBound(ofSuccessorOf prefix: [UInt8]) -> Position {
        // The smallest byte string greater than everything starting with `prefix`: drop trailing
        // 0xFF bytes and increment the last one left. All 0xFF (or empty): nothing is greater.
        var successor = prefix
        while let last = successor.last, last == 0xFF { successor.removeLast() }
        guard !successor.isEmpty else { return Position(chunk: chunks.count, offset: 0) }
        successor[successor.count - 1] += 1
        return lowerBound(StoreKey(bytes: successor))
    }

    /// The entries from the first key not less than `start`, in order, while `contains` holds for
    /// their keys; keys starting with `skipping` are jumped over in one step (the etcd API's
    /// ranges, which may not see `/_sys/`).
    func entries(from start: StoreKey, while contains: ([UInt8]) -> Bool, skipping skipped: [UInt8]?) -> [Entry] {
        var result: [Entry] = []
        var position = lowerBound(start)
        while position.chunk < chunks.count {
            let entry = chunks[position.chunk][position.offset]
            guard contains(entry.key.bytes) else { break }
            if let skipped, entry.key.bytes.starts(with: skipped) {
                position = lowerBound(ofSuccessorOf: skipped)
                continue
            }
            result.append(entry)
            position = advanced(position)
        }
        return result
    }

    /// Every entry, in key order.
    var entries: FlattenSequence<[[Entry]]> { chunks.joined() }

    func advanced(_ position: Position) -> Position {
        position.offset + 1 < chunks[position.chunk].count
            ? Position(chunk: position.chunk, offset: position.offset + 1)
            : Position(chunk: position.chunk + 1, offset: 0)
    }
}
