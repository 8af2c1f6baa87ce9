import Testing

@testable import Node

@Suite("Replicated store: change history for watches")
struct ChangeHistoryTests {
    func put(_ key: String, _ value: String = "v") -> StoreCommand {
        StoreCommand(operation: .put(key: key, value: Array(value.utf8)))
    }

    @Test func changesAfterARevisionAreExactlyTheLaterOnes() throws {
        var store = KeyValueStore()
        for index in 1...5 { _ = store.apply(put("k\(index)", "\(index)")) }
        let all = try #require(store.history.changes(after: 0))
        #expect(all.map(\.revision) == [1, 2, 3, 4, 5])
        #expect(
            all[2].events == [
                StoreEvent(kind: .put, key: "k3", value: Array("3".utf8), revision: 3, createRevision: 3, version: 1)
            ])
        #expect(store.history.changes(after: 3)?.map(\.revision) == [4, 5])
        #expect(store.history.changes(after: 5)?.isEmpty == true)
        #expect(store.history.changes(after: 99)?.isEmpty == true, "a client ahead of this node waits")
    }

    @Test func theWindowCompactsWholeRevisionsOldestFirst() throws {
        var store = KeyValueStore(historyLimits: .init(maxEvents: 4))
        _ = store.apply(StoreCommand(operation: .grantLease(id: 1, ttlMilliseconds: 1000)))
        _ = store.apply(StoreCommand(operation: .put(key: "a", value: [1]), lease: 1))
        _ = store.apply(StoreCommand(operation: .put(key: "b", value: [1]), lease: 1))
        _ = store.apply(StoreCommand(operation: .put(key: "c", value: [1]), lease: 1))
        #expect(store.history.compactRevision == 0)
        // The revoke's revision holds three events: to stay within four, revisions 1 and 2 go.
        _ = store.apply(StoreCommand(operation: .revokeLease(id: 1)))
        #expect(store.history.compactRevision == 2)
        #expect(store.history.changes(after: 1) == nil, "revision 2 is gone")
        #expect(try #require(store.history.changes(after: 2)).map(\.revision) == [3, 4])
        _ = store.apply(put("d"))
        _ = store.apply(put("e"))
        // Five events now: the revoke's revision goes as a whole, never one of its deletes alone.
        #expect(store.history.compactRevision == 4)
        let kept = try #require(store.history.changes(after: 4))
        #expect(kept.map(\.revision) == [5, 6])
    }

    @Test func aByteBoundCompactsToo() {
        var store = KeyValueStore(historyLimits: .init(maxEvents: 1000, maxBytes: 4096))
        for index in 1...10 { _ = store.apply(put("k\(index)", String(repeating: "x", count: 1000))) }
        #expect(store.history.compactRevision >= 6)
        #expect(store.history.count <= 4)
        #expect(store.history.changes(after: store.history.compactRevision)?.last?.revision == 10)
    }

    @Test func historySurvivesTheSnapshotAndVersion1SnapshotsStartItNow() throws {
        var store = KeyValueStore(historyLimits: .init(maxEvents: 3))
        for index in 1...5 { _ = store.apply(put("k\(index)")) }
        let restored = try KeyValueStore(snapshot: store.snapshot)
        #expect(restored.history.compactRevision == 2)
        #expect(restored.history.changes(after: 2) == store.history.changes(after: 2))
        #expect(restored.history.limits == store.history.limits)

        // A version-1 snapshot (before leases and history): two keys at revision 2.
        var legacy: [UInt8] = [1]
        legacy.appendLittleEndian(UInt64(2))  // revision
        legacy.appendLittleEndian(UInt64(10_000))  // idempotency window
        legacy.appendLittleEndian(UInt64(2))  // keys
        for (index, key) in ["a", "b"].enumerated() {
            legacy.appendLengthPrefixed(Array(key.utf8))
            legacy.appendLengthPrefixed([7])
            for _ in 0..<2 { legacy.appendLittleEndian(UInt64(index + 1)) }
            legacy.appendLittleEndian(UInt64(1))
        }
        legacy.appendLittleEndian(UInt64(0))  // remembered results
        let old = try KeyValueStore(snapshot: legacy)
        #expect(old.range(prefix: "").map(\.key) == ["a", "b"])
        #expect(old.leaseCount == 0)
        #expect(old.history.compactRevision == 2, "nothing before the snapshot can be replayed")
        #expect(old.history.changes(after: 1) == nil)
        #expect(old.history.changes(after: 2)?.isEmpty == true)
    }
}
