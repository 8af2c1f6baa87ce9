import Testing

@testable import Raft
@testable import RaftSimulation

/// What recovery does with the end of the newest segment: cut off a write a crash tore, durably,
/// and refuse a record that is all there but damaged.
@Suite("Write-ahead log: torn tails and damaged last records")
struct WALTornTailTests {
    let directory = "/data/wal"

    func entries(_ range: ClosedRange<UInt64>, term: UInt64 = 1) -> [LogEntry] {
        range.map { LogEntry(index: $0, term: term, kind: .command, data: Array("value-\($0)".utf8)) }
    }

    /// A log holding entries 1…`count` (the last record is entry `count`), and the size of its
    /// only segment before the last entry was written.
    func logEndingInAnEntry(
        _ fileSystem: SimulatedFileSystem, count: UInt64 = 5
    ) throws -> (path: String, lastRecord: Int, bytes: [UInt8]) {
        let (log, _) = try WriteAheadLog.open(directory: directory, fileSystem: fileSystem)
        log.append(entries: entries(1...count - 1), hardState: HardState(term: 1, votedFor: 2, commit: 2))
        try log.sync()
        let path = log.segmentPaths[0]
        let lastRecord = fileSystem.contents(of: path)!.count
        log.append(entries: entries(count...count))
        try log.sync()
        return (path, lastRecord, fileSystem.contents(of: path)!)
    }

    @Test func truncationIsFsyncedBeforeTheLogIsUsedAgain() throws {
        let fileSystem = SimulatedFileSystem(seed: 1)
        let (path, lastRecord, bytes) = try logEndingInAnEntry(fileSystem)
        fileSystem.overwriteDurably(path, with: Array(bytes.prefix(bytes.count - 3)))
        let before = fileSystem.events.count

        let (_, recovery) = try WriteAheadLog.open(directory: directory, fileSystem: fileSystem)
        #expect(recovery.truncatedTail?.offset == lastRecord)
        let events = Array(fileSystem.events[before...])
        let truncated = try #require(events.firstIndex(of: .truncate(path, length: lastRecord)))
        let synced = try #require(events.firstIndex(of: .sync(path)), "the cut file is fsync'ed")
        let nextSegment = try #require(events.firstIndex { if case .create = $0 { true } else { false } })
        #expect(truncated < synced && synced < nextSegment, "\(events)")

        // Power fails right after the open: the cut holds, and the torn bytes do not come back in
        // what is now an older segment (where they would read as corruption).
        fileSystem.crash(.allUnsynced)
        #expect(fileSystem.contents(of: path) == Array(bytes.prefix(lastRecord)))
        let (_, replay) = try WriteAheadLog.open(directory: directory, fileSystem: fileSystem)
        #expect(replay.entries == entries(1...4))
        #expect(replay.truncatedTail == nil)
    }

    @Test func aRecordCutShortIsTruncatedAndReported() throws {
        let fileSystem = SimulatedFileSystem(seed: 2)
        let (path, lastRecord, bytes) = try logEndingInAnEntry(fileSystem)
        for cut in lastRecord + 1..<bytes.count {
            fileSystem.overwriteDurably(path, with: Array(bytes.prefix(cut)))
            let (log, recovery) = try WriteAheadLog.open(directory: directory, fileSystem: fileSystem)
            #expect(recovery.entries == entries(1...4), "cut at \(cut)")
            let tail = try #require(recovery.truncatedTail, "cut at \(cut)")
            #expect(tail.file == path && tail.offset == lastRecord && tail.bytes == cut - lastRecord)
            #expect(tail.reason == (cut - lastRecord < WALRecord.headerBytes ? "header cut short" : "record cut short"))
            #expect(fileSystem.contents(of: path) == Array(bytes.prefix(lastRecord)))
            for newer in log.segmentPaths where newer != path { try fileSystem.remove(newer) }
        }
    }

    /// Every single damaged byte of a complete last record — checksum, length, kind, payload —
    /// stops the open at that record and leaves the file as it was.
    @Test func aCompleteLastRecordWithABadChecksumIsCorruption() throws {
        let fileSystem = SimulatedFileSystem(seed: 3)
        let (path, lastRecord, bytes) = try logEndingInAnEntry(fileSystem)
        for position in lastRecord..<bytes.count {
            var damaged = bytes
            damaged[position] ^= 0x40
            fileSystem.overwriteDurably(path, with: damaged)
            let before = fileSystem.events.count
            do {
                _ = try WriteAheadLog.open(directory: directory, fileSystem: fileSystem)
                Issue.record("damage at byte \(position) was taken for a torn write")
            } catch WALError.corrupt(let file, let offset, let reason) {
                #expect(file == path && offset == lastRecord, "byte \(position): \(reason)")
            }
            #expect(fileSystem.contents(of: path) == damaged, "byte \(position)")
            #expect(!fileSystem.events[before...].contains { if case .truncate = $0 { true } else { false } })
        }
    }

    @Test func theCorruptionErrorNamesFileOffsetAndReason() throws {
        let fileSystem = SimulatedFileSystem(seed: 4)
        let (path, lastRecord, bytes) = try logEndingInAnEntry(fileSystem)
        var damaged = bytes
        damaged[bytes.count - 1] ^= 0x01
        fileSystem.overwriteDurably(path, with: damaged)
        #expect(
            throws: WALError.corrupt(
                file: path, offset: lastRecord, reason: "checksum mismatch in a complete last record")
        ) {
            _ = try WriteAheadLog.open(directory: directory, fileSystem: fileSystem)
        }
    }

    /// A crash can leave the file grown by a whole write whose last sectors never reached the
    /// disk: zeros from a sector boundary (or the old end of the file) to the end. Zeros that do
    /// not reach back to a boundary inside the record, or a hole with data after it, are damage.
    @Test func zerosFromASectorBoundaryToTheEndAreATornWriteOtherZerosAreDamage() throws {
        let fileSystem = SimulatedFileSystem(seed: 5)
        let (log, _) = try WriteAheadLog.open(directory: directory, fileSystem: fileSystem)
        log.append(entries: entries(1...3))
        try log.sync()
        let path = log.segmentPaths[0]
        let intact = fileSystem.contents(of: path)!
        log.append(entries: [LogEntry(index: 4, term: 1, kind: .command, data: [UInt8](repeating: 7, count: 1200))])
        try log.sync()
        let written = fileSystem.contents(of: path)!
        #expect(intact.count < 512 && written.count > 1024 + 100)
        func zeroing(_ range: Range<Int>) -> [UInt8] {
            var bytes = written
            for position in range { bytes[position] = 0 }
            return bytes
        }

        for zerosFrom in [intact.count, 512, 1024] {
            fileSystem.overwriteDurably(path, with: zeroing(zerosFrom..<written.count))
            let (reopened, recovery) = try WriteAheadLog.open(directory: directory, fileSystem: fileSystem)
            #expect(recovery.entries == entries(1...3), "zeros from \(zerosFrom)")
            #expect(recovery.truncatedTail?.offset == intact.count, "zeros from \(zerosFrom)")
            for newer in reopened.segmentPaths where newer != path { try fileSystem.remove(newer) }
        }
        for hole in [1025..<written.count, written.count - 5..<written.count, 600..<1000, 512..<1024] {
            let damaged = zeroing(hole)
            fileSystem.overwriteDurably(path, with: damaged)
            do {
                _ = try WriteAheadLog.open(directory: directory, fileSystem: fileSystem)
                Issue.record("zeros at \(hole) were taken for a torn write")
            } catch WALError.corrupt(_, let offset, _) {
                #expect(offset == intact.count)
            }
            #expect(fileSystem.contents(of: path) == damaged)
        }
    }

    @Test func aLengthDamagedToRunPastTheEndIsCorruptionNotATornWrite() throws {
        let fileSystem = SimulatedFileSystem(seed: 6)
        let (path, lastRecord, bytes) = try logEndingInAnEntry(fileSystem)
        var damaged = bytes
        damaged[lastRecord + 1] = 0x01  // the length grows by 256: past the end of the file
        fileSystem.overwriteDurably(path, with: damaged)
        do {
            _ = try WriteAheadLog.open(directory: directory, fileSystem: fileSystem)
            Issue.record("a complete record with a damaged length was taken for a torn write")
        } catch WALError.corrupt(_, let offset, let reason) {
            #expect(offset == lastRecord)
            #expect(reason.contains("carry the record's checksum"), "\(reason)")
        }
    }
}
