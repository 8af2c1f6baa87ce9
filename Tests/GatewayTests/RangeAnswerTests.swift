import Foundation
import Raft
import Testing

@testable import Gateway
@testable import Node

/// The hand-written range answer is byte for byte what JSONEncoder wrote before it.
@Suite("Range answer encoding")
struct RangeAnswerTests {
    func viaJSONEncoder(_ answer: RangeAnswer) -> [UInt8] {
        var fields: [String: JSONValue] = [
            "kvs": .array(answer.rows.map { .object(KeyValueRoutes.recordFields($0.key, $0.record)) }),
            "revision": .number(answer.revision), "more": .bool(answer.more),
        ]
        if let next = answer.next { fields["next"] = .string(next) }
        return Array(jsonData(fields))
    }

    func record(_ value: [UInt8], _ numbers: [UInt64]) -> KeyValueStore.Record {
        KeyValueStore.Record(
            value: value, createRevision: numbers[0], modRevision: numbers[1], version: numbers[2], lease: numbers[3])
    }

    @Test func everyByteAndEveryEscapeMatchesJSONEncoder() async throws {
        // Every ASCII byte (controls, quotes, backslash, slash), DEL, multi-byte UTF-8, and bytes
        // that are not UTF-8 at all (replaced, as the JSONEncoder path does).
        let awkward: [UInt8] = Array(0...0x7F) + Array("é\u{2028}\u{FEFF}\u{10FFFF}".utf8) + [0xFF, 0xC3]
        let key = String(decoding: Array(0x01...0x7F), as: UTF8.self) + "/é"
        let rows: [(key: String, record: KeyValueStore.Record)] = [
            (key, record(awkward, [1, 2, 3, 0])), ("a/b", record([], [4, 5, 6, 7])),
            ("max", record(Array("v".utf8), [UInt64.max, UInt64.max, UInt64.max, UInt64.max])),
        ]
        for more in [false, true] {
            let answer = RangeAnswer(rows: rows[...], revision: 99, more: more, next: more ? key : nil)
            #expect(try await answer.encoded() == viaJSONEncoder(answer))
        }
        let empty = RangeAnswer(rows: [], revision: 0, more: false, next: nil)
        #expect(try await empty.encoded() == viaJSONEncoder(empty))
    }

    @Test func randomAnswersMatchJSONEncoder() async throws {
        var random = SeededRandom(seed: 0x4A50_4E)
        func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) } }
        for _ in 0..<100 {
            // More rows than a slice, now and then, so the yields are crossed.
            let count = random.chance(0.05) ? RangeAnswer.rowsPerSlice * 2 + 3 : random.next(below: 8)
            let rows = (0..<count).map { _ in
                (
                    key: String(decoding: bytes(random.next(below: 12)), as: UTF8.self),
                    record: record(
                        bytes(random.next(below: 40)),
                        (0..<4).map { _ in random.chance(0.3) ? 0 : random.next() >> random.next(below: 64) })
                )
            }
            let more = random.chance(0.5)
            let answer = RangeAnswer(
                rows: rows[...], revision: random.next(), more: more,
                next: more ? String(decoding: bytes(6), as: UTF8.self) : nil)
            #expect(try await answer.encoded() == viaJSONEncoder(answer))
        }
    }

    /// A client that goes away cancels its handler: the encoder stops at the next slice boundary
    /// instead of writing thousands of rows nobody will read.
    @Test func aCancelledEncodingStopsAtTheNextSlice() async throws {
        let rows = (0..<5000).map { (key: "k/\($0)", record: record(Array("value".utf8), [1, 2, 3, 0])) }
        let answer = RangeAnswer(rows: rows[...], revision: 7, more: false, next: nil)
        let cancelled = Task { () async throws -> [UInt8] in
            withUnsafeCurrentTask { $0?.cancel() }
            return try await answer.encoded()
        }
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        // Not cancelled, the same answer is written whole.
        let whole = try await answer.encoded()
        #expect(
            whole.suffix(#"],"more":false,"revision":7}"#.utf8.count).elementsEqual(
                #"],"more":false,"revision":7}"#.utf8))
    }
}
