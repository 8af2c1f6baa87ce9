import Testing

@testable import Node

@Suite("Write admission: store quota, uncommitted bytes, pending writes")
struct WriteAdmissionTests {
    static func limits(quota: UInt64 = 1000, uncommitted: UInt64 = 500, pending: Int = 10) -> WriteAdmission {
        var limits = WriteLimits()
        limits.quotaBytes = quota
        limits.maxUncommittedBytes = uncommitted
        limits.maxPendingWrites = pending
        return WriteAdmission(limits: limits)
    }

    static func put(_ key: String, bytes: Int) -> StoreCommand {
        StoreCommand(operation: .put(key: key, value: Array(repeating: 7, count: bytes)))
    }

    static func load(store: UInt64 = 0, uncommitted: UInt64 = 0, pending: Int = 0) -> WriteAdmission.Load {
        .init(storeBytes: store, uncommittedBytes: uncommitted, pendingWrites: pending)
    }

    @Test func aPutThatWouldPassTheQuotaIsRefusedButDeletesAndRevokesPass() {
        let admission = Self.limits()
        // A 1-byte key, its value and 48 bytes of per-key overhead: 900 + 1 + 50 + 48 fits,
        // 900 + 1 + 51 + 48 fits exactly, one more does not.
        #expect(admission.check(Self.put("k", bytes: 50), encodedBytes: 120, load: Self.load(store: 900)) == nil)
        #expect(admission.check(Self.put("k", bytes: 51), encodedBytes: 120, load: Self.load(store: 900)) == nil)
        #expect(
            admission.check(Self.put("k", bytes: 51), encodedBytes: 120, load: Self.load(store: 901))
                == .quotaExceeded(usedBytes: 901, quotaBytes: 1000))
        // An empty key is charged too: a quota cannot be met with millions of them.
        #expect(
            admission.check(Self.put("k", bytes: 0), encodedBytes: 20, load: Self.load(store: 952))
                == .quotaExceeded(usedBytes: 952, quotaBytes: 1000))
        #expect(
            admission.check(
                StoreCommand(operation: .grantLease(id: 1, ttlMilliseconds: 1000)), encodedBytes: 30,
                load: Self.load(store: 953)) == .quotaExceeded(usedBytes: 953, quotaBytes: 1000))
        let full = Self.load(store: 1000)
        #expect(
            admission.check(
                StoreCommand(operation: .grantLease(id: 1, ttlMilliseconds: 1000)), encodedBytes: 30, load: full)
                == .quotaExceeded(usedBytes: 1000, quotaBytes: 1000))
        #expect(admission.check(StoreCommand(operation: .delete(key: "k")), encodedBytes: 20, load: full) == nil)
        #expect(admission.check(StoreCommand(operation: .revokeLease(id: 1)), encodedBytes: 20, load: full) == nil)
        #expect(WriteRefusal.quotaExceeded(usedBytes: 1, quotaBytes: 1).isOverload == false)
    }

    /// Review finding 7: a retry of a write the store remembers changes nothing, so a full store
    /// does not refuse it; the overload bounds still apply.
    @Test func aRememberedIdempotencyKeyPassesTheQuota() {
        let admission = Self.limits()
        let retry = Self.put("k", bytes: 50)
        let full = Self.load(store: 1000)
        #expect(
            admission.check(retry, encodedBytes: 80, load: full) == .quotaExceeded(usedBytes: 1000, quotaBytes: 1000))
        #expect(admission.check(retry, encodedBytes: 80, load: full, remembered: true) == nil)
        #expect(
            admission.check(retry, encodedBytes: 80, load: Self.load(store: 1000, pending: 10), remembered: true)
                == .pendingWrites(pending: 10, limit: 10))
    }

    /// Review finding 10: the leader's lease-expiry revokes pass the overload bounds, so keys do
    /// not outlive their TTL under sustained overload; a client's revoke does not.
    @Test func systemLeaseRevokesPassTheOverloadBounds() {
        let admission = Self.limits()
        let expiry = StoreCommand(operation: .revokeLease(id: 7), isSystem: true)
        let client = StoreCommand(operation: .revokeLease(id: 7))
        for load in [Self.load(pending: 10), Self.load(uncommitted: 500), Self.load(store: 5000)] {
            #expect(admission.check(expiry, encodedBytes: 30, load: load, byLeaderService: true) == nil)
        }
        // The same command from a client route (a worker's lease) is bounded like any other.
        #expect(
            admission.check(expiry, encodedBytes: 30, load: Self.load(pending: 10))
                == .pendingWrites(pending: 10, limit: 10))
        #expect(
            admission.check(client, encodedBytes: 30, load: Self.load(pending: 10), byLeaderService: true)
                == .pendingWrites(pending: 10, limit: 10))
        #expect(
            admission.check(client, encodedBytes: 30, load: Self.load(uncommitted: 500))
                == .uncommittedBytes(pendingBytes: 500, limitBytes: 500))
        // Other system commands (the worker mirror's puts) stay bounded.
        let mirror = StoreCommand(operation: .put(key: "/_sys/workers/a", value: [1]), isSystem: true)
        #expect(
            admission.check(mirror, encodedBytes: 30, load: Self.load(pending: 10), byLeaderService: true)
                == .pendingWrites(pending: 10, limit: 10))
    }

    @Test func uncommittedBytesAndPendingWritesBoundEveryCommand() {
        let admission = Self.limits()
        let delete = StoreCommand(operation: .delete(key: "k"))
        #expect(admission.check(delete, encodedBytes: 100, load: Self.load(uncommitted: 400)) == nil)
        #expect(
            admission.check(delete, encodedBytes: 101, load: Self.load(uncommitted: 400))
                == .uncommittedBytes(pendingBytes: 400, limitBytes: 500))
        // With nothing in flight a command larger than the bound still goes through (once).
        #expect(admission.check(Self.put("k", bytes: 10), encodedBytes: 600, load: Self.load()) == nil)
        #expect(
            admission.check(delete, encodedBytes: 1, load: Self.load(pending: 10))
                == .pendingWrites(pending: 10, limit: 10))
        #expect(WriteRefusal.pendingWrites(pending: 1, limit: 1).isOverload)
    }

    @Test func theLedgerCountsProposedBytesUntilApplied() {
        var ledger = UncommittedLedger()
        ledger.proposed(index: 5, bytes: 10)
        ledger.proposed(index: 6, bytes: 20)
        ledger.proposed(index: 7, bytes: 30)
        #expect(ledger.bytes == 60 && ledger.count == 3)
        ledger.applied(through: 6)
        #expect(ledger.bytes == 30 && ledger.count == 1)
        // A new term proposes at 7 again: the truncated entry no longer counts.
        ledger.proposed(index: 7, bytes: 4)
        #expect(ledger.bytes == 4 && ledger.count == 1)
        ledger.clear()
        #expect(ledger.bytes == 0 && ledger.count == 0)
        for index in 1...5000 { ledger.proposed(index: UInt64(index), bytes: 1) }
        ledger.applied(through: 4000)
        #expect(ledger.bytes == 1000 && ledger.count == 1000)
    }

    @Test func storeBytesFollowEveryWriteAndSurviveASnapshot() throws {
        var store = KeyValueStore()
        _ = store.apply(Self.put("a", bytes: 10))
        _ = store.apply(Self.put("bb", bytes: 5))
        #expect(store.dataBytes == 11 + 7)
        _ = store.apply(Self.put("a", bytes: 3))
        #expect(store.dataBytes == 4 + 7)
        _ = store.apply(StoreCommand(operation: .grantLease(id: 9, ttlMilliseconds: 1000)))
        _ = store.apply(StoreCommand(operation: .put(key: "ccc", value: [1, 2]), lease: 9))
        #expect(store.dataBytes == 4 + 7 + 5)
        _ = store.apply(StoreCommand(operation: .revokeLease(id: 9)))
        #expect(store.dataBytes == 4 + 7)
        _ = store.apply(StoreCommand(operation: .delete(key: "bb")))
        #expect(store.dataBytes == 4)
        #expect(try KeyValueStore(snapshot: store.snapshot).dataBytes == 4)
        #expect(store.quotaBytesUsed == 4 + 48)
        _ = store.apply(StoreCommand(operation: .grantLease(id: 10, ttlMilliseconds: 1000)))
        #expect(store.quotaBytesUsed == 4 + 48 + 48, "a lease is charged too")
    }

    /// Review finding 6: the quota charges each key and lease more than it adds to a snapshot, so
    /// a store the limits let fill up — with empty values (the most overhead per byte) or large
    /// ones, and leases — encodes within the quota plus its headers, and within
    /// `SnapshotBound.minimumBytes`.
    @Test(arguments: [0, 2000])
    func aStoreFilledToTheQuotaFitsTheSnapshotBound(valueBytes: Int) throws {
        var writeLimits = WriteLimits()
        writeLimits.quotaBytes = 200_000
        let admission = WriteAdmission(limits: writeLimits)
        // A one-event history, so what is measured is the records and leases.
        let history = ChangeHistory.Limits(maxEvents: 1, maxBytes: 1)
        var store = KeyValueStore(historyLimits: history)
        var index = 0
        while true {
            let command =
                index % 10 == 9
                ? StoreCommand(operation: .grantLease(id: UInt64(index), ttlMilliseconds: 1000))
                : StoreCommand(operation: .put(key: "\(index)", value: Array(repeating: 1, count: valueBytes)))
            let load = WriteAdmission.Load(storeBytes: store.quotaBytesUsed, uncommittedBytes: 0, pendingWrites: 0)
            if admission.check(command, encodedBytes: command.encoded.count, load: load) != nil { break }
            _ = store.apply(command)
            index += 1
        }
        #expect(store.quotaBytesUsed <= writeLimits.quotaBytes && store.count > 90)
        let snapshot = UInt64(store.snapshot.count)
        #expect(snapshot <= writeLimits.quotaBytes + UInt64(valueBytes) + 4096)
        #expect(snapshot <= SnapshotBound.minimumBytes(writeLimits: writeLimits, history: history))
    }

    @Test func theSnapshotBoundGrowsWithEveryLimit() {
        let base = SnapshotBound.minimumBytes(writeLimits: WriteLimits(), history: ChangeHistory.Limits())
        #expect(base > WriteLimits().quotaBytes + IdempotencyTable.maxBytes)
        var larger = WriteLimits()
        larger.quotaBytes += 1000
        #expect(SnapshotBound.minimumBytes(writeLimits: larger, history: ChangeHistory.Limits()) == base + 1000)
        #expect(
            SnapshotBound.minimumBytes(writeLimits: WriteLimits(), history: ChangeHistory.Limits(maxEvents: 10_001))
                == base + 48)
    }

    @Test func aRangeWithoutReservedKeysSkipsThemAllAtOnce() {
        var store = KeyValueStore()
        for key in ["/a", "/_sys/x", "/_sys/y", "/_t", "/b"] {
            _ = store.apply(StoreCommand(operation: .put(key: key, value: [1]), isSystem: true))
        }
        #expect(store.range(prefix: "/", includeReserved: false).map(\.key) == ["/_t", "/a", "/b"])
        #expect(store.range(prefix: "/", limit: 2, includeReserved: false).map(\.key) == ["/_t", "/a"])
        #expect(store.range(prefix: "/", includeReserved: true).count == 5)
        #expect(store.range(prefix: "/_sys/", includeReserved: false).isEmpty)
    }
}
