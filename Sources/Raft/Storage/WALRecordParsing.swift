/// Reading records back, and telling a write torn by a crash from damage to written data.
extension WriteAheadLog {
    enum Parsed {
        case record(WALRecord, next: Int)
        /// Bears the marks of a write a crash interrupted: cut off at the end of the newest
        /// segment if nothing valid follows, corruption anywhere else.
        case torn(String)
        /// Not what was written, and not what a crash leaves: corruption wherever it is.
        case corrupt(String)
    }

    /// The unit a disk writes whole. The page cache writes back whole pages and a disk persists
    /// whole sectors, so data a crash kept from reaching the disk is missing in whole sectors of
    /// at least 512 bytes.
    static let sectorBytes = 512

    /// Reads the record at `offset`, and judges a bad one torn or corrupt.
    ///
    /// How records reach the disk decides what a crash can leave. `sync` appends the whole
    /// group-commit buffer to the end of the newest segment with write(2) and then fsyncs it;
    /// segments are created empty and never preallocated or reused. Until that fsync returns,
    /// a crash can leave of the write:
    /// 1. none of it, or the file grown by only part of it: the data ends inside a record
    ///    ("cut short");
    /// 2. the file grown, but the last sectors of the data never written: they read back as
    ///    zeros (the new size reached the disk before the data, which some file systems and
    ///    mount options allow). The zeros start at a sector boundary, or at the old end of the
    ///    file, and run to the end of the file.
    ///
    /// Writeback that persisted a later sector of the write but not an earlier one leaves a hole
    /// followed by data. That cannot be told from damage, so it is refused like damage.
    /// A crash cannot change the bytes of a record that is all there. A record whose length fits
    /// in the bytes present but whose checksum fails, without a zeroed sector running to the end
    /// of the file inside it, was damaged after it was written — bit rot, a misdirected write,
    /// a bug — and may be an acknowledged entry: truncating it would silently lose it, so it is
    /// corruption, even as the very last record. Likewise a length past the end whose bytes
    /// present carry the record's checksum (the record is complete, its length was damaged), and
    /// a length that zeros cannot produce (0 amid data, or above the maximum).
    ///
    /// The rule can still err, in two ways. A damaged last record whose own last bytes past a
    /// sector boundary are zeros anyway (a hard state ends with the high bytes of the commit
    /// index) reads as case 2 and is cut off, as etcd's `isTornEntry` would; requiring the zeros
    /// to run from a sector boundary to the end of the file keeps that to records straddling a
    /// boundary by a few bytes. And a file system that exposes stale, non-zero blocks after a
    /// crash (ext4 `data=writeback`) can make a real torn write read as corruption: the node then
    /// refuses to start and waits for an operator, which is the safe way to be wrong.
    static func parseRecord(_ bytes: [UInt8], at offset: Int) -> Parsed {
        let available = bytes.count - offset
        guard available >= WALRecord.headerBytes else { return .torn("header cut short") }
        var reader = ByteReader(bytes[offset..<offset + WALRecord.headerBytes])
        let length = Int(reader.uint32()!)
        let checksum = reader.uint32()!
        let bodyStart = offset + WALRecord.headerBytes
        if length == 0 && bytes[offset...].allSatisfy({ $0 == 0 }) {
            return .torn("zero-filled tail")
        }
        guard length > 0, length <= WALRecord.maxBodyBytes else {
            return endsInZeroedSectors(bytes, record: offset, end: bodyStart)
                ? .torn("impossible record length \(length) in zeroed sectors")
                : .corrupt("impossible record length \(length)")
        }
        let end = bodyStart + length
        guard end <= bytes.count else {
            if CRC32C.checksum(bytes[bodyStart...]) == checksum {
                return .corrupt("length \(length) runs past the end, but the bytes present carry the record's checksum")
            }
            return .torn("record cut short")
        }
        let body = bytes[bodyStart..<end]
        guard CRC32C.checksum(body) == checksum else {
            return endsInZeroedSectors(bytes, record: offset, end: end)
                ? .torn("checksum mismatch over sectors zeroed to the end of the file")
                : .corrupt(end == bytes.count ? "checksum mismatch in a complete last record" : "checksum mismatch")
        }
        guard let record = WALRecord(body: body) else { return .corrupt("unknown record layout") }
        return .record(record, next: end)
    }

    /// Whether the data is all zeros from a sector boundary inside the record at `offset` (which
    /// claims to end at `end`) to the end of the data: sectors a crash kept from the disk.
    static func endsInZeroedSectors(_ bytes: [UInt8], record offset: Int, end: Int) -> Bool {
        let zeros = zeroSuffixStart(bytes, notBefore: offset)
        let boundary = (max(zeros, offset + 1) + sectorBytes - 1) / sectorBytes * sectorBytes
        return boundary < min(end, bytes.count)
    }

    /// Where the data's run of trailing zeros begins (`bytes.count` if it ends in a non-zero byte).
    static func zeroSuffixStart(_ bytes: [UInt8], notBefore lowest: Int) -> Int {
        var start = bytes.count
        while start > lowest, bytes[start - 1] == 0 { start -= 1 }
        return start
    }

    /// Whether any well-formed record (plausible length, matching checksum) starts after `offset`.
    /// None starts in the trailing zeros (its length would be 0), so the search stops there.
    static func hasValidRecord(in bytes: [UInt8], after offset: Int) -> Bool {
        let zeros = zeroSuffixStart(bytes, notBefore: offset)
        var candidate = offset + 1
        while candidate < zeros, candidate + WALRecord.headerBytes < bytes.count {
            if case .record = parseRecord(bytes, at: candidate) { return true }
            candidate += 1
        }
        return false
    }
}
