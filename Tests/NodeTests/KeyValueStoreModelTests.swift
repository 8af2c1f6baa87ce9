import Raft
import Testing

@testable import Node

/// The store over its chunked index against a model kept in a plain sorted array: random puts,
/// deletes, leases and their revocation, snapshot restores (what compaction and InstallSnapshot
/// do) and range reads, from a seeded generator.
@Suite("Replicated store against a sorted-array model")
struct KeyValueStoreModelTests {
    typealias Record = KeyValueStore.Record

    /// etcd's rules, written the plain way.
    struct Model {
        var revision: UInt64 = 0
        var leases: Set<UInt64> = []
        var entries: SortedKeyIndexTests.Reference = .init()

        func get(_ key: String) -> Record? { entries.get(Array(key.utf8)) }

        mutating func put(_ key: String, _ value: [UInt8], lease: UInt64, system: Bool) -> StoreResult {
            if !system && key.utf8.starts(with: KeyValueStore.reservedPrefix.utf8) { return .reservedKey }
            if lease != 0 && !leases.contains(lease) { return .leaseNotFound(id: lease) }
            revision += 1
            let current = get(key)
            var record = current ?? Record(value: [], createRevision: revision, modRevision: revision, version: 0)
            record.value = value
            record.modRevision = revision
            record.version += 1
            record.lease = lease
            entries.set(Array(key.utf8), record)
            return .applied(revision: revision, found: current != nil)
        }

        mutating func delete(_ key: String) -> StoreResult {
            guard get(key) != nil else { return .applied(revision: revision, found: false) }
            revision += 1
            _ = entries.remove(Array(key.utf8))
            return .applied(revision: revision, found: true)
        }

        mutating func revoke(_ id: UInt64) -> StoreResult {
            guard leases.remove(id) != nil else { return .leaseNotFound(id: id) }
            let attached = entries.entries.filter { $0.record.lease == id }
            if !attached.isEmpty {
                revision += 1
                for entry in attached { _ = entries.remove(entry.key) }
            }
            return .applied(revision: revision, found: true)
        }

        var dataBytes: UInt64 { entries.entries.reduce(0) { $0 + UInt64($1.key.count + $1.record.value.count) } }
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func matchesTheModelThroughRestoresAndRanges(seed: UInt64) throws {
        var random = SeededRandom(seed: 0xC0FF_EE00 + seed)
        // Chunks of 32 (restored half full), so chunks split as keys arrive, and merge as the
        // delete-heavy phase empties them, many times over.
        var store = KeyValueStore(maxChunk: 32)
        var model = Model()
        var snapshots: [(index: SortedKeyIndex, model: Model)] = []
        // Splits and merges in the indexes of every store along the way (a restore starts anew).
        var splits = 0
        var merges = 0
        func key() -> String {
            random.chance(0.1)
                ? "/_sys/w/\(random.next(below: 200))"
                : "k/\(random.next(below: 40))/\(random.next(below: 100))"
        }
        for step in 0..<12_000 {
            // Steps 8000–9999 delete a key that is there four times in five (and skip the restore
            // at 8999), so the live set halves and chunks shrink below a quarter and merge.
            let deleteHeavy = (8000..<10_000).contains(step)
            if deleteHeavy, random.chance(0.8), !model.entries.entries.isEmpty {
                let live = model.entries.entries[random.next(below: model.entries.entries.count)].key
                let name = String(decoding: live, as: UTF8.self)
                #expect(
                    store.apply(StoreCommand(operation: .delete(key: name), isSystem: true)) == model.delete(name),
                    "step \(step)")
            } else {
                switch random.next(below: 20) {
                case 0..<10:
                    let name = key()
                    let value = Array("v\(step)".utf8)
                    let lease: UInt64 = random.chance(0.1) ? UInt64(random.next(below: 6)) : 0
                    let system = random.chance(0.5)
                    let command = StoreCommand(
                        operation: .put(key: name, value: value), isSystem: system, lease: lease)
                    #expect(store.apply(command) == model.put(name, value, lease: lease, system: system))
                case 10..<16:
                    let name = key()
                    #expect(
                        store.apply(StoreCommand(operation: .delete(key: name), isSystem: true)) == model.delete(name))
                case 16:
                    let id = UInt64(random.next(below: 6) + 1)
                    let granted = store.apply(StoreCommand(operation: .grantLease(id: id, ttlMilliseconds: 1000)))
                    #expect(
                        granted == (model.leases.insert(id).inserted ? .leaseGranted(id: id) : .leaseExists(id: id)))
                case 17:
                    let id = UInt64(random.next(below: 6) + 1)
                    #expect(store.apply(StoreCommand(operation: .revokeLease(id: id))) == model.revoke(id))
                default:
                    let query = SortedKeyIndexTests.randomQuery(&random)
                    let prefix = random.chance(0.5) ? "k/\(random.next(below: 40))" : query.prefix
                    let rows = store.range(
                        prefix: prefix, after: query.after, limit: query.limit, includeReserved: query.reserved)
                    let expected = model.entries.range(
                        prefix: prefix, after: query.after, limit: query.limit, includeReserved: query.reserved)
                    #expect(SortedKeyIndexTests.same(rows, expected), "step \(step)")
                }
            }
            if step % 1000 == 999, !deleteHeavy {
                // What compaction writes and a restart or an InstallSnapshot reads back.
                splits += store.keyIndex.splits
                merges += store.keyIndex.merges
                let restored = try KeyValueStore(snapshot: store.snapshot, maxChunk: 32)
                #expect(restored == store)
                #expect(restored.snapshot == store.snapshot)
                store = restored
            }
            // Snapshots before, during and after the deletes, checked once everything is done.
            if step % 1500 == 0 || (deleteHeavy && step % 500 == 0) { snapshots.append((store.keyIndex, model)) }
        }
        #expect(store.count == model.entries.entries.count)
        #expect(store.revision == model.revision)
        #expect(store.dataBytes == model.dataBytes)
        #expect(
            store.range(prefix: "", includeReserved: true).map(\.key)
                == model.entries.entries.map { String(decoding: $0.key, as: UTF8.self) })
        #expect(store.keyIndex.chunks.count > 16, "the index spans many chunks")
        splits += store.keyIndex.splits
        merges += store.keyIndex.merges
        #expect(splits > 0 && merges > 0, "chunks split and merged: \(splits) splits, \(merges) merges")
        for (index, frozen) in snapshots {
            #expect(index.entries.map(\.key.bytes) == frozen.entries.entries.map(\.key))
            #expect(index.entries.map(\.record) == frozen.entries.entries.map(\.record))
        }
    }

    /// The snapshot's key section is the format version 3 has always had (DESIGN.md: a store's
    /// encoding is the same on every replica and across versions): the revision, the key count,
    /// then each key in byte order with its value, revisions, version and lease. Files written
    /// before the chunked index restore, and nodes on either side of an upgrade agree byte for byte.
    @Test func theSnapshotKeySectionIsUnchanged() throws {
        var store = KeyValueStore()
        _ = store.apply(StoreCommand(operation: .grantLease(id: 7, ttlMilliseconds: 5000)))
        for key in ["b", "a", "/_sys/x", "c"] {
            _ = store.apply(StoreCommand(operation: .put(key: key, value: Array("v-\(key)".utf8)), isSystem: true))
        }
        _ = store.apply(StoreCommand(operation: .put(key: "a", value: [0xAA]), lease: 7))
        _ = store.apply(StoreCommand(operation: .delete(key: "c")))
        var expected: [UInt8] = [3]
        expected.appendLittleEndian(UInt64(6))
        expected.appendLittleEndian(UInt64(3))
        let rows: [(String, [UInt8], UInt64, UInt64, UInt64, UInt64)] = [
            ("/_sys/x", Array("v-/_sys/x".utf8), 3, 3, 1, 0), ("a", [0xAA], 2, 5, 2, 7),
            ("b", Array("v-b".utf8), 1, 1, 1, 0),
        ]
        for (key, value, created, modified, version, lease) in rows {
            expected.appendLengthPrefixed(Array(key.utf8))
            expected.appendLengthPrefixed(value)
            for number in [created, modified, version, lease] { expected.appendLittleEndian(number) }
        }
        let bytes = store.snapshot
        #expect(Array(bytes.prefix(expected.count)) == expected)
        let restored = try KeyValueStore(snapshot: bytes)
        #expect(restored.lease(7)?.keys == ["a"])
        #expect(restored.range(prefix: "", includeReserved: true).map(\.key) == ["/_sys/x", "a", "b"])
        #expect(restored.range(prefix: "").map(\.key) == ["a", "b"], "/_sys/ only when the caller asks for it")
    }
}
