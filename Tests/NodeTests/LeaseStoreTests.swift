import Raft
import Testing

@testable import Node

@Suite("Replicated store: leases")
struct LeaseStoreTests {
    func put(_ key: String, _ value: String = "v", lease: UInt64 = 0) -> StoreCommand {
        StoreCommand(operation: .put(key: key, value: Array(value.utf8)), lease: lease)
    }

    func grant(_ id: UInt64, ttl: UInt64 = 1000, idempotencyKey: String? = nil) -> StoreCommand {
        StoreCommand(operation: .grantLease(id: id, ttlMilliseconds: ttl), idempotencyKey: idempotencyKey)
    }

    func revoke(_ id: UInt64) -> StoreCommand { StoreCommand(operation: .revokeLease(id: id)) }

    @Test func revokeDeletesEveryAttachedKeyInOneRevision() {
        var store = KeyValueStore()
        #expect(store.apply(grant(7)) == .leaseGranted(id: 7))
        #expect(store.revision == 0, "a grant changes no key, so no revision")
        for key in ["b", "a", "c"] { _ = store.apply(put(key, lease: 7)) }
        _ = store.apply(put("free"))
        #expect(store.lease(7)?.keys == ["a", "b", "c"])
        #expect(store.get("a")?.lease == 7)
        let (result, change) = store.applyRecordingChange(revoke(7))
        #expect(result == .applied(revision: 5, found: true))
        #expect(change?.revision == 5)
        #expect(change?.events.map(\.key) == ["a", "b", "c"])
        #expect(change?.events.allSatisfy { $0.kind == .delete && $0.revision == 5 } == true)
        #expect(change?.leases == [.revoked(id: 7)])
        #expect(store.range(prefix: "").map(\.key) == ["free"])
        #expect(store.lease(7) == nil)
        // A second revoke (a duplicated expiry, say) is a no-op.
        #expect(store.applyRecordingChange(revoke(7)).result == .leaseNotFound(id: 7))
        #expect(store.revision == 5)
    }

    @Test func aRevokeWithoutKeysBumpsNoRevision() {
        var store = KeyValueStore()
        _ = store.apply(grant(1))
        _ = store.apply(put("x"))
        #expect(store.apply(revoke(1)) == .applied(revision: 1, found: true))
        #expect(store.revision == 1)
    }

    @Test func putsMoveKeysBetweenLeasesAndAPutWithoutOneDetaches() {
        var store = KeyValueStore()
        _ = store.apply(grant(1))
        _ = store.apply(grant(2))
        _ = store.apply(put("k", lease: 1))
        _ = store.apply(put("k", lease: 2))
        #expect(store.lease(1)?.keys == [])
        #expect(store.lease(2)?.keys == ["k"])
        _ = store.apply(put("k"))
        #expect(store.lease(2)?.keys == [], "a put without a lease detaches, as in etcd")
        #expect(store.get("k")?.lease == 0)
        _ = store.apply(put("k", lease: 2))
        _ = store.apply(StoreCommand(operation: .delete(key: "k")))
        #expect(store.lease(2)?.keys == [])
        // Revoking lease 2 now deletes nothing: the key it once held was deleted.
        #expect(store.apply(revoke(2)) == .applied(revision: store.revision, found: true))
    }

    @Test func unknownLeasesAndTakenIdsChangeNothing() {
        var store = KeyValueStore()
        #expect(store.apply(put("k", lease: 9)) == .leaseNotFound(id: 9))
        #expect(store.count == 0 && store.revision == 0)
        _ = store.apply(grant(9, ttl: 500))
        #expect(store.apply(grant(9, ttl: 999)) == .leaseExists(id: 9))
        #expect(store.leaseTTL(9) == 500)
        #expect(store.apply(grant(0)) == .leaseExists(id: 0), "0 means no lease and is never granted")
        #expect(store.apply(revoke(12345)) == .leaseNotFound(id: 12345))
    }

    @Test func aConditionFailsBeforeTheLeaseIsLookedAt() {
        var store = KeyValueStore()
        _ = store.apply(put("k"))
        let guarded = StoreCommand(operation: .put(key: "k", value: [1]), condition: .absent, lease: 77)
        #expect(store.apply(guarded) == .conditionFailed(current: 1))
    }

    @Test func aRetriedGrantAnswersTheFirstId() {
        var store = KeyValueStore()
        #expect(store.apply(grant(100, idempotencyKey: "g-1")) == .leaseGranted(id: 100))
        #expect(store.apply(grant(200, idempotencyKey: "g-1")) == .leaseGranted(id: 100))
        #expect(store.leaseCount == 1)
    }

    @Test func leasesSurviveTheSnapshotEncoding() throws {
        var store = KeyValueStore()
        _ = store.apply(grant(3, ttl: 2500))
        _ = store.apply(grant(4, ttl: 700))
        _ = store.apply(put("a", lease: 3))
        _ = store.apply(put("b", lease: 4))
        _ = store.apply(put("c"))
        var restored = try KeyValueStore(snapshot: store.snapshot)
        #expect(restored == store)
        #expect(restored.lease(3) == KeyValueStore.Lease(id: 3, ttlMilliseconds: 2500, keys: ["a"]))
        #expect(restored.leaseTTLs.map(\.id) == [3, 4])
        // The restored store goes on exactly as the original.
        #expect(restored.apply(revoke(3)) == store.apply(revoke(3)))
        #expect(restored == store)
    }

    @Test func commandsRoundTripAndPlainWritesKeepTheirVersion1Bytes() throws {
        let commands = [
            put("k"), put("k", lease: 42), StoreCommand(operation: .delete(key: "k"), condition: .modRevision(3)),
            grant(5, ttl: 60_000, idempotencyKey: "id"), StoreCommand(operation: .revokeLease(id: 5), isSystem: true),
        ]
        for command in commands {
            #expect(try StoreCommand(decoding: command.encoded) == command)
        }
        #expect(put("k").encoded.first == 1, "logs written before leases existed read the same")
        #expect(put("k", lease: 42).encoded.first == 2)
        // Lease operations do not exist in version 1.
        var forged = grant(5).encoded
        forged[0] = 1
        #expect(throws: StoreDecodingError.self) { try StoreCommand(decoding: forged) }
    }

    @Test func aSnapshotWhoseKeyNamesAMissingLeaseIsRefused() throws {
        var store = KeyValueStore()
        _ = store.apply(grant(3))
        _ = store.apply(put("a", lease: 3))
        var bytes = store.snapshot
        // The lease table follows the remembered results: its count sits right after them. Find
        // the one lease (id 3) and rename it to 4.
        let id3: [UInt8] = [3, 0, 0, 0, 0, 0, 0, 0]
        let position = try #require(bytes.lastRange(of: id3 + [0xE8, 3, 0, 0, 0, 0, 0, 0]))
        bytes[position.lowerBound] = 4
        #expect(throws: StoreDecodingError.self) { try KeyValueStore(snapshot: bytes) }
    }
}

extension Array where Element == UInt8 {
    func lastRange(of pattern: [UInt8]) -> Range<Int>? {
        guard count >= pattern.count else { return nil }
        for start in stride(from: count - pattern.count, through: 0, by: -1)
        where Array(self[start..<(start + pattern.count)]) == pattern {
            return start..<(start + pattern.count)
        }
        return nil
    }
}
