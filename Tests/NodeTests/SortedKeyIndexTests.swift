import Raft
import Testing

@testable import Node

@Suite("Sorted key index: chunked, structurally shared, scanned as a snapshot")
struct SortedKeyIndexTests {
    func record(_ value: String, revision: UInt64 = 1) -> KeyValueStore.Record {
        KeyValueStore.Record(value: Array(value.utf8), createRevision: revision, modRevision: revision, version: 1)
    }

    func index(_ keys: [String], maxChunk: Int = 4) -> SortedKeyIndex {
        var index = SortedKeyIndex(maxChunk: maxChunk)
        for key in keys { index.set(StoreKey(key), record(key)) }
        return index
    }

    @Test func prefixesEndWhereThePrefixEnds() {
        let index = index(["b/2", "a/1", "b/1", "b/3", "c", "b", "b0", "ba"])
        #expect(index.range(prefix: "b/").map(\.key) == ["b/1", "b/2", "b/3"])
        #expect(index.range(prefix: "b").map(\.key) == ["b", "b/1", "b/2", "b/3", "b0", "ba"])
        #expect(index.range(prefix: "").map(\.key) == ["a/1", "b", "b/1", "b/2", "b/3", "b0", "ba", "c"])
        #expect(index.range(prefix: "zz").isEmpty)
        #expect(index.range(prefix: "b/", limit: 2).map(\.key) == ["b/1", "b/2"])
        #expect(index.range(prefix: "b/2").map(\.record.value) == [Array("b/2".utf8)])
    }

    @Test func pagesContinueStrictlyAfterTheLastKey() {
        let keys = (0..<23).map { "p/\(String($0 + 100))" }
        var random = SeededRandom(seed: 0x5A6E_5)
        let index = index(keys.shuffled(using: &random))
        var pages: [[String]] = []
        var after: String?
        repeat {
            // One row more than the page, as the gateway asks, to tell whether there are more.
            let rows = index.range(prefix: "p/", after: after, limit: 6).map(\.key)
            pages.append(Array(rows.prefix(5)))
            after = rows.count > 5 ? rows[4] : nil
        } while after != nil
        #expect(pages.flatMap { $0 } == keys)
        #expect(pages.count == 5)
        // `after` outside the prefix: before it starts at the prefix, past it gives nothing.
        #expect(index.range(prefix: "p/", after: "a", limit: 1).map(\.key) == ["p/100"])
        #expect(index.range(prefix: "p/", after: "q").isEmpty)
        // A key that is not there continues at the next one.
        #expect(index.range(prefix: "p/", after: "p/1055", limit: 1).map(\.key) == ["p/106"])
    }

    @Test func reservedKeysAreLeftOutWithoutBeingScanned() {
        let reserved = (0..<50).map { "/_sys/workers/\($0)" }
        let index = index(["/a", "/_sy", "/_sys", "/_sys0", "/_sz"] + reserved)
        #expect(
            index.range(prefix: "/", includeReserved: false).map(\.key) == ["/_sy", "/_sys", "/_sys0", "/_sz", "/a"])
        #expect(index.range(prefix: "/", includeReserved: true).count == 55)
        #expect(index.range(prefix: "/_sys/", includeReserved: false).isEmpty)
        #expect(
            index.range(prefix: "/", after: "/_sys/workers/3", limit: 2, includeReserved: false).map(\.key) == [
                "/_sys0", "/_sz",
            ])
    }

    @Test func chunksSplitAndMergeAsKeysComeAndGo() {
        var index = SortedKeyIndex(maxChunk: 8)
        for key in 0..<100 { index.set(StoreKey("k\(key + 1000)"), record("v")) }
        #expect(index.chunks.allSatisfy { !$0.isEmpty && $0.count <= 8 })
        #expect(index.chunks.count >= 100 / 8)
        for key in 0..<100 where key % 10 != 0 { index.remove(StoreKey("k\(key + 1000)")) }
        #expect(index.count == 10)
        #expect(index.chunks.count <= 4, "nearly empty chunks were joined: \(index.chunks.map(\.count))")
        #expect(index.range(prefix: "k").map(\.key) == (0..<10).map { "k\($0 * 10 + 1000)" })
        for key in 0..<10 { index.remove(StoreKey("k\(key * 10 + 1000)")) }
        #expect(index.isEmpty && index.chunks.isEmpty)
        #expect(index.range(prefix: "").isEmpty)
    }

    /// The point of the structure: a copy is a snapshot. Writes after it — inserts that split its
    /// chunks, deletes that join them with a neighbour, updates in place — never show in it.
    @Test func aCopyIsASnapshotThatLaterWritesDoNotTouch() {
        var index = index((0..<40).map { "k\($0 + 100)" }, maxChunk: 8)
        let snapshot = index
        for key in 0..<40 where key % 4 != 0 { index.remove(StoreKey("k\(key + 100)")) }
        #expect(index.merges > snapshot.merges, "the deletes joined chunks: \(index.chunks.map(\.count))")
        for key in 0..<40 { index.set(StoreKey("k\(key + 100)x"), record("new")) }
        #expect(index.splits > snapshot.splits)
        index.set(StoreKey("k100"), record("changed", revision: 9))
        #expect(snapshot.count == 40)
        #expect(snapshot.range(prefix: "k").map(\.key) == (0..<40).map { "k\($0 + 100)" })
        #expect(snapshot.entries.map(\.record) == (0..<40).map { record("k\($0 + 100)") })
        #expect(snapshot.get(StoreKey("k100")) == record("k100"))
        #expect(index.get(StoreKey("k100")) == record("changed", revision: 9))
        #expect(index.count == 10 + 40)
    }

    /// An answer's array is sized for what it holds, not for the limit asked: the gateway asks for
    /// its limit plus one on every range read, whatever the prefix matches.
    @Test func anAnswerIsNotSizedByItsLimit() {
        let index = index((0..<10).map { "k\($0)" })
        let rows = index.range(prefix: "none", limit: 10_000)
        #expect(rows.isEmpty)
        #expect(rows.capacity < 100, "capacity \(rows.capacity)")
        #expect(index.range(prefix: "k", limit: 10_000).count == 10)
    }

    /// A long scan pauses every `rowsPerSlice` rows (where `RaftNode.range` yields the thread),
    /// and the rows it gives are exactly those of a scan in one go: the slices join without a gap
    /// or a repeat, whatever the limit, `after` and reserved keys in between.
    @Test func aLongScanPausesBetweenSlicesAndGivesTheSameRows() async {
        let keys = (0..<10_000).map { "r/\(String($0 + 100_000))" }
        var random = SeededRandom(seed: 0x51_1CE)
        let index = index(keys.shuffled(using: &random) + (0..<300).map { "/_sys/\($0)" }, maxChunk: 64)
        var pauses = 0
        let rows = await index.range(prefix: "r/", limit: 10_001, pause: { pauses += 1 })
        #expect(rows.map(\.key) == keys)
        #expect(pauses == 9, "10,000 rows in slices of 1,000: a pause between each two")
        for _ in 0..<40 {
            let prefix = ["", "r/", "r/1", "/", "r/10"][random.next(below: 5)]
            let after = random.chance(0.5) ? keys[random.next(below: keys.count)] : nil
            let limit = random.chance(0.3) ? Int.max : random.next(below: 3000)
            let reserved = random.chance(0.5)
            let slice = random.next(below: 300) + 1
            var count = 0
            let sliced = await index.range(
                prefix: prefix, after: after, limit: limit, includeReserved: reserved, rowsPerSlice: slice,
                pause: { count += 1 })
            let whole = index.range(prefix: prefix, after: after, limit: limit, includeReserved: reserved)
            #expect(Self.same(sliced, whole.map { ($0.key, $0.record) }), "\(prefix) \(String(describing: after))")
            #expect(count == max(0, (sliced.count - 1) / slice), "a pause only between slices")
        }
    }

    // MARK: Against a plain sorted array

    /// The reference: a sorted array and linear scans, with nothing clever to get wrong.
    struct Reference {
        var entries: [(key: [UInt8], record: KeyValueStore.Record)] = []

        /// Where `key` is or would go: the number of keys before it.
        func position(_ key: [UInt8]) -> Int {
            var low = 0
            var high = entries.count
            while low < high {
                let middle = (low + high) / 2
                if entries[middle].key.lexicographicallyPrecedes(key) { low = middle + 1 } else { high = middle }
            }
            return low
        }

        func get(_ key: [UInt8]) -> KeyValueStore.Record? {
            let at = position(key)
            return at < entries.count && entries[at].key == key ? entries[at].record : nil
        }

        mutating func set(_ key: [UInt8], _ record: KeyValueStore.Record) {
            let at = position(key)
            if at < entries.count && entries[at].key == key {
                entries[at].record = record
            } else {
                entries.insert((key, record), at: at)
            }
        }

        mutating func remove(_ key: [UInt8]) -> KeyValueStore.Record? {
            let at = position(key)
            guard at < entries.count && entries[at].key == key else { return nil }
            return entries.remove(at: at).record
        }

        func range(prefix: String, after: String?, limit: Int, includeReserved: Bool) -> [(
            String, KeyValueStore.Record
        )] {
            let afterBytes = after.map { Array($0.utf8) }
            let rows = entries.filter { entry in
                entry.key.starts(with: prefix.utf8)
                    && (afterBytes.map { $0.lexicographicallyPrecedes(entry.key) } ?? true)
                    && (includeReserved || !entry.key.starts(with: KeyValueStore.reservedPrefix.utf8))
            }
            return rows.prefix(limit).map { (String(decoding: $0.key, as: UTF8.self), $0.record) }
        }
    }

    /// Keys from a few short pieces, so prefixes, near misses and the reserved prefix are common.
    static func randomKey(_ random: inout SeededRandom) -> String {
        let pieces = ["a", "b", "/", "/_sys/", "/_sys", "ab", "é", "z", "0", "\u{10FFFF}"]
        return (0...random.next(below: 4)).map { _ in pieces[random.next(below: pieces.count)] }.joined()
    }

    static func randomQuery(_ random: inout SeededRandom) -> (
        prefix: String, after: String?, limit: Int, reserved: Bool
    ) {
        let prefix = random.chance(0.2) ? "" : String(randomKey(&random).prefix(random.next(below: 4) + 1))
        let after = random.chance(0.4) ? randomKey(&random) : nil
        let limit = random.chance(0.3) ? Int.max : random.next(below: 20) + 1
        return (prefix, after, limit, random.chance(0.5))
    }

    static func same(_ lhs: [(key: String, record: KeyValueStore.Record)], _ rhs: [(String, KeyValueStore.Record)])
        -> Bool
    {
        lhs.count == rhs.count && zip(lhs, rhs).allSatisfy { $0.key == $1.0 && $0.record == $1.1 }
    }

    @Test(arguments: [4, 7, 64, 512])
    func matchesASortedArrayOverManyRandomOperations(maxChunk: Int) {
        var random = SeededRandom(seed: 0x5EED_0000 + UInt64(maxChunk))
        var index = SortedKeyIndex(maxChunk: maxChunk)
        var reference = Reference()
        // Snapshots taken along the way, with the reference as it was then.
        var snapshots: [(index: SortedKeyIndex, reference: Reference)] = []
        for step in 0..<6000 {
            let key = Self.randomKey(&random)
            switch random.next(below: 10) {
            case 0..<5:
                let value = record("\(step)", revision: UInt64(step))
                index.set(StoreKey(key), value)
                reference.set(Array(key.utf8), value)
            case 5..<8:
                #expect(index.remove(StoreKey(key)) == reference.remove(Array(key.utf8)))
            case 8:
                #expect(index.get(StoreKey(key)) == reference.get(Array(key.utf8)))
            default:
                let query = Self.randomQuery(&random)
                let rows = index.range(
                    prefix: query.prefix, after: query.after, limit: query.limit, includeReserved: query.reserved)
                let expected = reference.range(
                    prefix: query.prefix, after: query.after, limit: query.limit, includeReserved: query.reserved)
                #expect(Self.same(rows, expected), "step \(step): \(query)")
            }
            if step % 500 == 0 { snapshots.append((index, reference)) }
            #expect(index.count == reference.entries.count)
        }
        #expect(index.entries.map(\.key.bytes) == reference.entries.map(\.key))
        #expect(index.chunks.allSatisfy { !$0.isEmpty && $0.count <= maxChunk })
        for (snapshot, frozen) in snapshots {
            #expect(snapshot.entries.map(\.key.bytes) == frozen.entries.map(\.key))
            #expect(snapshot.entries.map(\.record) == frozen.entries.map(\.record))
            for _ in 0..<50 {
                let query = Self.randomQuery(&random)
                #expect(
                    Self.same(
                        snapshot.range(
                            prefix: query.prefix, after: query.after, limit: query.limit,
                            includeReserved: query.reserved),
                        frozen.range(
                            prefix: query.prefix, after: query.after, limit: query.limit,
                            includeReserved: query.reserved)))
            }
        }
    }

    /// Splits and merges, really taken: chunks of 8 and 16 (a chunk joins a neighbour once below
    /// a quarter full) over about 300 keys, in phases — fill, delete down to about a tenth, fill
    /// again, delete again — against the sorted array. Snapshots taken at every phase boundary and
    /// every 250 steps are checked at the end, after all the splits and merges that followed them.
    @Test(arguments: [8, 16])
    func splitsAndMergesInPhasesMatchASortedArrayAndLeaveSnapshotsAlone(maxChunk: Int) {
        var random = SeededRandom(seed: 0xE26E_0000 + UInt64(maxChunk))
        var index = SortedKeyIndex(maxChunk: maxChunk)
        var reference = Reference()
        var snapshots: [(step: Int, index: SortedKeyIndex, reference: Reference)] = []
        // Reserved keys among them, so the jump over `/_sys/` crosses chunks that come and go.
        let keys = (0..<280).map { "m/\(String($0 + 1000))" } + (0..<20).map { "/_sys/\($0 + 10)" }
        let prefixes = ["", "m/", "m/1", "m/10", "m/11", "m/12", "/", "/_sys/"]
        // The chance of a put (otherwise a delete) and the steps of each phase: the live set tends
        // to that fraction of the keys.
        let phases: [(puts: Double, steps: Int)] = [(0.9, 1500), (0.1, 2500), (0.85, 1500), (0.05, 2500), (0.6, 1000)]
        var step = 0
        for (number, phase) in phases.enumerated() {
            snapshots.append((step, index, reference))
            let (splits, merges) = (index.splits, index.merges)
            for _ in 0..<phase.steps {
                step += 1
                let key = keys[random.next(below: keys.count)]
                if random.chance(phase.puts) {
                    let value = record("\(step)", revision: UInt64(step))
                    index.set(StoreKey(key), value)
                    reference.set(Array(key.utf8), value)
                } else {
                    #expect(index.remove(StoreKey(key)) == reference.remove(Array(key.utf8)), "step \(step)")
                }
                if random.chance(0.05) {
                    let prefix = prefixes[random.next(below: prefixes.count)]
                    let after = random.chance(0.5) ? keys[random.next(below: keys.count)] : nil
                    let limit = random.chance(0.3) ? Int.max : random.next(below: 40) + 1
                    let reserved = random.chance(0.5)
                    #expect(
                        Self.same(
                            index.range(prefix: prefix, after: after, limit: limit, includeReserved: reserved),
                            reference.range(prefix: prefix, after: after, limit: limit, includeReserved: reserved)),
                        "step \(step)")
                }
                if step % 250 == 0 { snapshots.append((step, index, reference)) }
            }
            #expect(index.count == reference.entries.count)
            #expect(index.entries.map(\.key.bytes) == reference.entries.map(\.key), "after phase \(number)")
            #expect(index.chunks.allSatisfy { !$0.isEmpty && $0.count <= maxChunk })
            // Filling splits chunks and emptying joins them; a test that never took these paths
            // could not catch what goes wrong in them.
            if phase.puts > 0.5 {
                #expect(index.splits > splits, "phase \(number) split chunks")
            } else {
                #expect(index.merges > merges, "phase \(number) joined chunks")
                #expect(
                    index.chunks.count * maxChunk / 4 <= 2 * index.count + maxChunk,
                    "few nearly empty chunks left: \(index.chunks.map(\.count))")
            }
        }
        for (taken, snapshot, frozen) in snapshots {
            #expect(snapshot.entries.map(\.key.bytes) == frozen.entries.map(\.key), "snapshot at step \(taken)")
            #expect(snapshot.entries.map(\.record) == frozen.entries.map(\.record), "snapshot at step \(taken)")
            #expect(snapshot.count == frozen.entries.count)
            for prefix in prefixes {
                #expect(
                    Self.same(
                        snapshot.range(prefix: prefix, includeReserved: true),
                        frozen.range(prefix: prefix, after: nil, limit: .max, includeReserved: true)))
            }
        }
    }
}
