/// Applying an etcd transaction (`StoreTransaction`), and the range reads it and the etcd API share.
extension KeyValueStore {
    /// The entries of `range` in byte order; without `includeReserved`, those under
    /// `reservedPrefix` are skipped (in one jump, as `range(prefix:)` does).
    func entries(in range: StoreTransaction.KeyRange, includeReserved: Bool) -> [SortedKeyIndex.Entry] {
        index.entries(in: range, includeReserved: includeReserved)
    }

    /// etcd's Range over the applied store: at most `limit` keys (0: all), how many the range
    /// holds, and whether the limit left some out.
    public func keyValues(
        in range: StoreTransaction.KeyRange, limit: UInt64 = 0, includeReserved: Bool = false
    ) -> (keyValues: [TransactionOutcome.KeyValue], count: UInt64) {
        index.keyValues(in: range, limit: limit, includeReserved: includeReserved)
    }

    /// Compares, then the branch they choose, at one new revision (if anything changes).
    mutating func execute(_ transaction: StoreTransaction, isSystem: Bool) -> (StoreResult, StoreChange?) {
        let reserved = Array(Self.reservedPrefix.utf8)
        // etcd's keys live under `etcdPrefix`, inside the reserved prefix, so that the `/kv` API
        // cannot touch them: a transaction kept wholly inside it sees its keys, and nothing else
        // of `/_sys/` can be inside it.
        let etcdPrefix = Array(Self.etcdPrefix.utf8)
        let isSystem = isSystem || transaction.ranges.allSatisfy { $0.lies(within: etcdPrefix) }
        if !isSystem && transaction.ranges.contains(where: { $0.overlaps(prefix: reserved) && $0.isSingleKey }) {
            return (.reservedKey, nil)
        }
        let succeeded = transaction.compares.allSatisfy { holds($0, includeReserved: isSystem) }
        let requests = succeeded ? transaction.success : transaction.failure
        // Checked before anything changes, as etcd does: a missing lease fails the whole transaction.
        for case .put(_, _, let lease, _) in requests where lease != 0 && leaseTable[lease] == nil {
            return (.leaseNotFound(id: lease), nil)
        }
        let next = revision + 1
        var events: [StoreEvent] = []
        var responses: [TransactionOutcome.Response] = []
        for request in requests {
            switch request {
            case .put(let name, let value, let lease, let previous):
                let key = StoreKey(name)
                let current = index.get(key)
                let record = storeRecord(key, value: value, lease: lease, replacing: current, at: next)
                events.append(
                    StoreEvent(
                        kind: .put, key: name, value: value, revision: next, createRevision: record.createRevision,
                        version: record.version, lease: lease))
                responses.append(
                    .put(previous: previous ? current.map { TransactionOutcome.KeyValue(key: name, record: $0) } : nil))
            case .deleteRange(let range, let previous):
                let doomed = entries(in: range, includeReserved: isSystem).map(\.key)
                var before: [TransactionOutcome.KeyValue] = []
                for key in doomed {
                    let record = index.remove(key)!
                    detach(key, from: record.lease)
                    dataBytes -= UInt64(key.bytes.count + record.value.count)
                    events.append(StoreEvent(kind: .delete, key: key.string, revision: next))
                    if previous { before.append(TransactionOutcome.KeyValue(key: key.string, record: record)) }
                }
                responses.append(.deleteRange(deleted: UInt64(doomed.count), previous: before))
            case .range(let range, let limit, let keysOnly, let countOnly):
                let read = keyValues(in: range, limit: countOnly ? 1 : limit, includeReserved: isSystem)
                let count = read.count
                var found = countOnly ? [] : read.keyValues
                if keysOnly {
                    found = found.map { TransactionOutcome.KeyValue(key: $0.key, record: $0.record.withoutValue) }
                }
                responses.append(
                    .range(keyValues: found, count: count, more: !countOnly && limit != 0 && count > limit))
            }
        }
        if !events.isEmpty { revision = next }
        let outcome = TransactionOutcome(succeeded: succeeded, revision: revision, responses: responses)
        return (.transaction(outcome), events.isEmpty ? nil : StoreChange(revision: next, events: events))
    }

    /// etcd's `applyCompare`: every key of the range must satisfy it; no key at all compares the
    /// zero record, except a value compare, which then fails.
    private func holds(_ compare: StoreTransaction.Compare, includeReserved: Bool) -> Bool {
        let found = entries(in: compare.range, includeReserved: includeReserved)
        if found.isEmpty {
            if compare.target == .value { return false }
            return Self.compare(compare, Record(value: [], createRevision: 0, modRevision: 0, version: 0))
        }
        return found.allSatisfy { Self.compare(compare, $0.record) }
    }

    /// etcd's `compareKV`. Revisions, versions and leases compare as etcd's int64s.
    static func compare(_ compare: StoreTransaction.Compare, _ record: Record) -> Bool {
        let order: Int
        func numeric(_ have: UInt64, _ want: Int64) -> Int {
            let have = Int64(clamping: have)
            return have < want ? -1 : have > want ? 1 : 0
        }
        switch (compare.target, compare.operand) {
        case (.value, .value(let want)):
            order = record.value == want ? 0 : record.value.lexicographicallyPrecedes(want) ? -1 : 1
        case (.value, _): order = record.value.isEmpty ? 0 : 1
        case (.createRevision, .createRevision(let want)): order = numeric(record.createRevision, want)
        case (.createRevision, _): order = numeric(record.createRevision, 0)
        case (.modRevision, .modRevision(let want)): order = numeric(record.modRevision, want)
        case (.modRevision, _): order = numeric(record.modRevision, 0)
        case (.version, .version(let want)): order = numeric(record.version, want)
        case (.version, _): order = numeric(record.version, 0)
        case (.lease, .lease(let want)): order = numeric(record.lease, want)
        case (.lease, _): order = numeric(record.lease, 0)
        }
        switch compare.relation {
        case .equal: return order == 0
        case .notEqual: return order != 0
        case .greater: return order > 0
        case .less: return order < 0
        }
    }
}

extension KeyValueStore.Record {
    /// The record as a `keys_only` read answers it.
    var withoutValue: Self {
        var copy = self
        copy.value = []
        return copy
    }
}

extension SortedKeyIndex {
    /// The entries of an etcd key range in byte order; without `includeReserved`, those under
    /// `KeyValueStore.reservedPrefix` are skipped. Pure, so the etcd API's range reads run on a
    /// snapshot of the index off the Raft actor, as `/kv` ranges do.
    func entries(in range: StoreTransaction.KeyRange, includeReserved: Bool) -> [Entry] {
        let reserved = Array(KeyValueStore.reservedPrefix.utf8)
        if range.isSingleKey {
            if !includeReserved && range.key.starts(with: reserved) { return [] }
            let key = StoreKey(bytes: range.key)
            return get(key).map { [Entry(key: key, record: $0)] } ?? []
        }
        return entries(
            from: StoreKey(bytes: range.key), while: { range.contains($0) }, skipping: includeReserved ? nil : reserved)
    }

    /// etcd's Range: at most `limit` keys (0: all) and how many the range holds.
    public func keyValues(
        in range: StoreTransaction.KeyRange, limit: UInt64 = 0, includeReserved: Bool = false
    ) -> (keyValues: [TransactionOutcome.KeyValue], count: UInt64) {
        let found = entries(in: range, includeReserved: includeReserved)
        let taken = limit == 0 ? found[...] : found.prefix(Int(clamping: limit))
        return (taken.map { TransactionOutcome.KeyValue(key: $0.key.string, record: $0.record) }, UInt64(found.count))
    }
}
