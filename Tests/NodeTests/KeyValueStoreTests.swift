import Testing

@testable import Node

@Suite("Replicated store: revisions, conditions, idempotency, snapshots")
struct KeyValueStoreTests {
    /// A keyed command is stamped, as a leader proposes it (unstamped ones are legacy: see
    /// `unstampedCommandsKeepTheRulesTheyWereAppliedUnder`).
    func put(_ key: String, _ value: String, _ condition: StoreCommand.Condition = .none, id: String? = nil)
        -> StoreCommand
    {
        var command = StoreCommand(
            operation: .put(key: key, value: Array(value.utf8)), condition: condition, idempotencyKey: id)
        if id != nil { command.stamp = 1 }
        return command
    }

    func legacyPut(_ key: String, _ value: String, id: String) -> StoreCommand {
        StoreCommand(operation: .put(key: key, value: Array(value.utf8)), idempotencyKey: id)
    }

    @Test func revisionsAndVersionsFollowEtcd() {
        var store = KeyValueStore()
        #expect(store.apply(put("a", "1")) == .applied(revision: 1, found: false))
        #expect(store.apply(put("b", "1")) == .applied(revision: 2, found: false))
        #expect(store.apply(put("a", "2")) == .applied(revision: 3, found: true))
        let record = store.get("a")!
        #expect(record.value == Array("2".utf8))
        #expect(record.createRevision == 1)
        #expect(record.modRevision == 3)
        #expect(record.version == 2)
        #expect(store.apply(StoreCommand(operation: .delete(key: "a"))) == .applied(revision: 4, found: true))
        #expect(store.get("a") == nil)
        // Deleting a missing key changes nothing, not even the revision.
        #expect(store.apply(StoreCommand(operation: .delete(key: "a"))) == .applied(revision: 4, found: false))
    }

    @Test func compareAndSetOnModRevision() {
        var store = KeyValueStore()
        _ = store.apply(put("k", "v1"))
        #expect(store.apply(put("k", "v2", .modRevision(7))) == .conditionFailed(current: 1))
        #expect(store.get("k")!.value == Array("v1".utf8))
        #expect(store.apply(put("k", "v2", .modRevision(1))) == .applied(revision: 2, found: true))
        #expect(store.apply(put("new", "x", .modRevision(0))) == .applied(revision: 3, found: false))
    }

    @Test func createOnly() {
        var store = KeyValueStore()
        #expect(store.apply(put("k", "first", .absent)) == .applied(revision: 1, found: false))
        #expect(store.apply(put("k", "second", .absent)) == .conditionFailed(current: 1))
        #expect(store.get("k")!.value == Array("first".utf8))
    }

    @Test func prefixRangesAreOrderedAndLimited() {
        var store = KeyValueStore()
        for key in ["b/2", "a/1", "b/1", "b/3", "c"] { _ = store.apply(put(key, key)) }
        #expect(store.range(prefix: "b/").map(\.key) == ["b/1", "b/2", "b/3"])
        #expect(store.range(prefix: "b/", limit: 2).map(\.key) == ["b/1", "b/2"])
        #expect(store.range(prefix: "").map(\.key) == ["a/1", "b/1", "b/2", "b/3", "c"])
        #expect(store.range(prefix: "zz").isEmpty)
    }

    @Test func clientsCannotWriteTheReservedPrefix() {
        var store = KeyValueStore()
        #expect(store.apply(put("/_sys/workers/1", "x")) == .reservedKey)
        #expect(store.revision == 0)
        let system = StoreCommand(operation: .put(key: "/_sys/workers/1", value: [1]), isSystem: true)
        #expect(store.apply(system) == .applied(revision: 1, found: false))
    }

    @Test func keysAreBytesNotUnicodeEquivalents() {
        var store = KeyValueStore()
        // A combining mark after the slash must not smuggle a write into the reserved prefix.
        #expect(store.apply(put("/_sys/\u{301}x", "v")) == .reservedKey)
        // Precomposed and decomposed "é" are two keys, ordered by their bytes.
        _ = store.apply(put("caf\u{E9}", "1"))
        _ = store.apply(put("cafe\u{301}", "2"))
        #expect(store.count == 2)
        #expect(store.get("caf\u{E9}")?.value == Array("1".utf8))
        #expect(store.get("cafe\u{301}")?.value == Array("2".utf8))
        #expect(store.range(prefix: "cafe").map(\.key) == ["cafe\u{301}"])
        _ = store.apply(StoreCommand(operation: .delete(key: "cafe\u{301}")))
        #expect(store.get("caf\u{E9}")?.value == Array("1".utf8), "deleting one leaves the other")
        #expect(store.count == 1)
    }

    @Test func retriedCommandReturnsTheFirstResult() {
        var store = KeyValueStore()
        let first = store.apply(put("counter", "1", .absent, id: "req-1"))
        _ = store.apply(put("counter", "2"))
        let retry = store.apply(put("counter", "1", .absent, id: "req-1"))
        #expect(retry == first)
        #expect(store.get("counter")!.value == Array("2".utf8), "the retry applied nothing")
        #expect(store.revision == 2)
    }

    func stamped(_ command: StoreCommand, at milliseconds: UInt64) -> StoreCommand {
        var command = command
        command.stamp = milliseconds
        return command
    }

    @Test func aKeyIsBoundToItsRequest() {
        var store = KeyValueStore()
        let first = store.apply(put("k", "a", id: "req-1"))
        #expect(store.apply(put("k", "b", id: "req-1")) == .idempotencyKeyReused)
        #expect(store.apply(put("other", "a", id: "req-1")) == .idempotencyKeyReused)
        #expect(store.apply(put("k", "a", .absent, id: "req-1")) == .idempotencyKeyReused, "the condition counts")
        #expect(store.get("k")?.value == Array("a".utf8) && store.revision == 1, "nothing was applied")
        // The stamp is not part of the request: a retry the leader stamped again still matches.
        #expect(store.apply(stamped(put("k", "a", id: "req-1"), at: 5)) == first)
    }

    @Test func keysAreForgottenAfterTheWindowByTheLogsClock() {
        let window = IdempotencyTable.windowMilliseconds
        var store = KeyValueStore()
        _ = store.apply(stamped(put("k", "a", id: "1"), at: 10_000))
        _ = store.apply(stamped(put("k", "b", id: "2"), at: 10_500))
        // A leader with a slower clock does not turn time back.
        _ = store.apply(stamped(put("k", "c", id: "3"), at: 9_000))
        #expect(store.idempotency.clock == 10_500)
        #expect(
            store.apply(stamped(put("k", "a", id: "1"), at: 10_000 + window)) == .applied(revision: 1, found: false))
        // One millisecond more than the window after key 1 was remembered: it is forgotten, and
        // applies anew.
        #expect(store.apply(stamped(put("k", "a", id: "1"), at: 10_001 + window)) == .applied(revision: 4, found: true))
        #expect(store.apply(stamped(put("k", "b", id: "2"), at: 10_001 + window)) == .applied(revision: 2, found: true))
        #expect(store.idempotency.count == 3)
    }

    @Test func keysAreBoundedByBytesNotCount() {
        var store = KeyValueStore()
        // Far more short keys than the old count window of 10 000 are all remembered.
        for index in 0..<12_000 { _ = store.apply(put("k", "v", id: "key-\(index)")) }
        #expect(store.idempotency.count == 12_000)
        #expect(store.apply(put("k", "v", id: "key-0")) == .applied(revision: 1, found: false))
        // Long keys cost more: the byte budget forgets the oldest first.
        let long = String(repeating: "x", count: 4000)
        for index in 0..<5000 { _ = store.apply(put("k", "v", id: "\(long)\(index)")) }
        #expect(store.idempotency.bytes <= IdempotencyTable.maxBytes)
        #expect(store.idempotency.count < 5000)
        #expect(store.apply(put("k", "v", id: "\(long)4999")) == .applied(revision: 17_000, found: true))
        #expect(store.apply(put("k", "v", id: "key-0")) == .applied(revision: 17_001, found: true), "forgotten")
    }

    @Test func snapshotRoundTripsEverythingIncludingTheIdempotencyTable() throws {
        var store = KeyValueStore()
        for index in 0..<20 {
            _ = store.apply(
                stamped(put("key/\(index % 7)", "value-\(index)", id: "id-\(index)"), at: 1000 + UInt64(index)))
        }
        _ = store.apply(StoreCommand(operation: .delete(key: "key/3")))
        var restored = try KeyValueStore(snapshot: store.snapshot)
        #expect(restored == store)
        #expect(restored.snapshot == store.snapshot)
        #expect(restored.idempotency == store.idempotency)
        // The restored table answers retries and reuses the same way.
        #expect(
            restored.apply(put("key/5", "value-19", id: "id-19")) == store.apply(put("key/5", "value-19", id: "id-19")))
        #expect(restored.apply(put("key/0", "x", id: "id-18")) == .idempotencyKeyReused)
        #expect(
            restored.apply(stamped(put("a", "b", id: "late"), at: 9000))
                == store.apply(stamped(put("a", "b", id: "late"), at: 9000)))
        #expect(restored == store)
    }

    /// Review finding 2: commands written before stamps (versions 1 and 2), replayed from an old
    /// log, keep the count rule and the any-command replay they were applied under, so a node
    /// replaying them ends with the table a node restored from a later old snapshot has; and the
    /// first stamped command does not forget the keys remembered before it.
    @Test func unstampedCommandsKeepTheRulesTheyWereAppliedUnder() throws {
        let count = IdempotencyTable.legacyCount
        var replayed = KeyValueStore()
        for index in 0...count { _ = replayed.apply(legacyPut("k", "v", id: "old-\(index)")) }
        #expect(replayed.idempotency.count == count, "the oldest was forgotten by count")
        #expect(
            replayed.apply(legacyPut("k", "x", id: "old-5")) == .applied(revision: 6, found: true),
            "any command replays")
        #expect(replayed.apply(legacyPut("k", "v", id: "old-0")) == .applied(revision: UInt64(count) + 2, found: true))
        // The same table as an old snapshot holding the same keys restores.
        let legacy =
            (2...count).map { (key: "old-\($0)", result: StoreResult.applied(revision: UInt64($0) + 1, found: true)) }
            + [(key: "old-0", result: StoreResult.applied(revision: UInt64(count) + 2, found: true))]
        #expect(replayed.idempotency == IdempotencyTable(legacy: legacy))
        // The first stamped command restamps them: a retry spanning the upgrade still replays a
        // window later, and is forgotten after it.
        let now: UInt64 = 1_700_000_000_000
        _ = replayed.apply(put("other", "v", id: "new-1").withStamp(now))
        let window = IdempotencyTable.windowMilliseconds
        #expect(
            replayed.apply(put("k", "v", id: "old-0").withStamp(now + window))
                == .applied(revision: UInt64(count) + 2, found: true))
        #expect(
            replayed.apply(put("k", "v", id: "old-0").withStamp(now + window + 1))
                == .applied(revision: UInt64(count) + 4, found: true))
    }

    /// Review finding 1: a node's own settings (or a snapshot written under other settings) must
    /// not decide when a key is forgotten, or a retry replays on one replica and applies anew on
    /// another.
    @Test func aSnapshotCannotChangeWhenKeysAreForgotten() throws {
        var store = KeyValueStore()
        let first = store.apply(stamped(put("k", "a", id: "req"), at: 1000))
        // The snapshot as a node configured with a 1 s window and a 100-byte budget wrote it.
        var bytes = store.snapshot
        var defaults: [UInt8] = []
        defaults.appendLittleEndian(UInt64(600_000))
        defaults.appendLittleEndian(UInt64(16 << 20))
        let at = try #require(
            (0...(bytes.count - defaults.count)).first { bytes[$0..<($0 + defaults.count)].elementsEqual(defaults) })
        var tight: [UInt8] = []
        tight.appendLittleEndian(UInt64(1000))
        tight.appendLittleEndian(UInt64(100))
        bytes.replaceSubrange(at..<(at + 16), with: tight)
        var restored = try KeyValueStore(snapshot: bytes)
        // A minute later the retry replays on both replicas, and they stay identical.
        let retry = stamped(put("k", "a", id: "req"), at: 61_000)
        #expect(restored.apply(retry) == first)
        #expect(store.apply(retry) == first)
        #expect(restored == store)
        #expect(restored.snapshot == store.snapshot)
    }

    @Test func hostileSnapshotsAndCommandsThrow() {
        var random = (UInt64(12345), 0)
        func next() -> UInt8 {
            random.0 = random.0 &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: random.0 >> 33)
        }
        var store = KeyValueStore()
        for index in 0..<10 { _ = store.apply(put("k\(index)", "v", id: "i\(index)")) }
        let valid = store.snapshot
        for round in 0..<500 {
            var bytes = valid
            if round % 2 == 0 {
                bytes[Int(next()) % bytes.count] = next()
            } else {
                bytes = Array(bytes.prefix(Int(next()) % bytes.count))
            }
            if let decoded = try? KeyValueStore(snapshot: bytes) { _ = decoded.snapshot }
        }
        #expect(throws: StoreDecodingError.self) {
            try KeyValueStore(snapshot: [1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        }
        // A claimed key count far beyond the data fails fast instead of allocating.
        var huge: [UInt8] = [1]
        huge.appendLittleEndian(UInt64(0))
        huge.appendLittleEndian(UInt64(10))
        huge.appendLittleEndian(UInt64.max)
        #expect(throws: StoreDecodingError.truncated) { try KeyValueStore(snapshot: huge) }
        #expect(throws: StoreDecodingError.self) { try StoreCommand(decoding: [1, 1, 0xFF, 0xFF, 0xFF, 0x7F]) }
        #expect(throws: StoreDecodingError.unsupportedVersion) { try StoreCommand(decoding: [9]) }
    }

    @Test func commandEncodingRoundTrips() throws {
        let commands = [
            put("a", "b"), put("ü/key", "", .modRevision(42), id: "retry-7"), put("x", "y", .absent),
            StoreCommand(operation: .delete(key: "gone"), idempotencyKey: "d", isSystem: true),
            stamped(put("s", "t", id: "u"), at: 1_764_480_000_000),
            stamped(StoreCommand(operation: .grantLease(id: 4, ttlMilliseconds: 9), idempotencyKey: "g"), at: 7),
        ]
        for command in commands { #expect(try StoreCommand(decoding: command.encoded) == command) }
    }
}

extension StoreCommand {
    fileprivate func withStamp(_ stamp: UInt64) -> StoreCommand {
        var command = self
        command.stamp = stamp
        return command
    }
}
