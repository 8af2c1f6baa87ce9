import Node

/// The JSON answer of a range read, `{"kvs":[…],"more":…,"next":…,"revision":…}`, written byte
/// by byte: the same bytes `json(_:)` (JSONEncoder, sorted keys, slashes unescaped) gives for it,
/// without building a dictionary per row. A 10,000-row answer through JSONEncoder held a thread of the Swift
/// concurrency pool — which has one per core — for a few hundred milliseconds, and two of them
/// starved the Raft actor, its writes and heartbeats as surely as a scan on the actor did.
/// Encoding yields every `rowsPerSlice` rows for the same reason.
struct RangeAnswer {
    var rows: ArraySlice<(key: String, record: KeyValueStore.Record)>
    var revision: UInt64
    var more: Bool
    /// The last key returned, when `more` (the next page starts after it).
    var next: String?

    static let rowsPerSlice = 512

    /// The answer, yielding between slices of rows so other tasks (the Raft actor's among them)
    /// get the thread in between. Throws `CancellationError` at the first slice boundary after
    /// the task is cancelled (the client went away): the rest of the answer would be thrown away.
    func encoded() async throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64 + rows.count * 128)
        bytes.append(contentsOf: #"{"kvs":["#.utf8)
        var written = 0
        for row in rows {
            if written > 0 { bytes.append(UInt8(ascii: ",")) }
            Self.appendRow(row.key, row.record, to: &bytes)
            written += 1
            if written % Self.rowsPerSlice == 0 {
                try Task.checkCancellation()
                await Task.yield()
            }
        }
        appendTail(to: &bytes)
        return bytes
    }

    private func appendTail(to bytes: inout [UInt8]) {
        bytes.append(contentsOf: #"],"more":"#.utf8)
        bytes.append(contentsOf: (more ? "true" : "false").utf8)
        if let next {
            bytes.append(contentsOf: #","next":"#.utf8)
            Self.appendString(next, to: &bytes)
        }
        bytes.append(contentsOf: #","revision":"#.utf8)
        bytes.append(contentsOf: String(revision).utf8)
        bytes.append(UInt8(ascii: "}"))
    }

    /// One row as `KeyValueRoutes.recordFields` has it, keys in sorted order.
    static func appendRow(_ key: String, _ record: KeyValueStore.Record, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: #"{"createRevision":"#.utf8)
        bytes.append(contentsOf: String(record.createRevision).utf8)
        bytes.append(contentsOf: #","key":"#.utf8)
        appendString(key, to: &bytes)
        if record.lease != 0 {
            bytes.append(contentsOf: #","lease":"#.utf8)
            bytes.append(contentsOf: String(record.lease).utf8)
        }
        bytes.append(contentsOf: #","modRevision":"#.utf8)
        bytes.append(contentsOf: String(record.modRevision).utf8)
        bytes.append(contentsOf: #","revision":"#.utf8)
        bytes.append(contentsOf: String(record.modRevision).utf8)
        bytes.append(contentsOf: #","value":"#.utf8)
        // As `recordFields` does: the value as UTF-8 text, invalid sequences replaced.
        appendString(String(decoding: record.value, as: UTF8.self), to: &bytes)
        bytes.append(contentsOf: #","version":"#.utf8)
        bytes.append(contentsOf: String(record.version).utf8)
        bytes.append(UInt8(ascii: "}"))
    }

    /// A JSON string the way Foundation's JSONEncoder writes it with `.withoutEscapingSlashes`:
    /// `"` and `\` escaped, control characters as \b \t \n \f \r or \u00xx, everything else as is.
    static func appendString(_ string: String, to bytes: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        bytes.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): bytes.append(contentsOf: #"\\"#.utf8)
            case 0x08: bytes.append(contentsOf: #"\b"#.utf8)
            case 0x09: bytes.append(contentsOf: #"\t"#.utf8)
            case 0x0A: bytes.append(contentsOf: #"\n"#.utf8)
            case 0x0C: bytes.append(contentsOf: #"\f"#.utf8)
            case 0x0D: bytes.append(contentsOf: #"\r"#.utf8)
            case 0..<0x20:
                bytes.append(contentsOf: #"\u00"#.utf8)
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
