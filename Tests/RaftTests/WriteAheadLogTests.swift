import Foundation
import Testing

@testable import Raft

@Suite("Write-ahead log: framing, group commit, recovery")
struct WriteAheadLogTests {
    let directory: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("wal-test-\(UUID().uuidString)").path
    }

    func entries(_ range: ClosedRange<UInt64>, term: UInt64 = 1) -> [LogEntry] {
        range.map { LogEntry(index: $0, term: term, kind: .command, data: Array("value-\($0)".utf8)) }
    }

    func segmentBytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
    func write(_ bytes: [UInt8], to path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    @Test func replaysWhatWasSynced() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, empty) = try WriteAheadLog.open(directory: directory)
        #expect(empty.entries.isEmpty)
        log.append(entries: entries(1...100), hardState: HardState(term: 1, votedFor: 2, commit: 40))
        try log.sync()
        #expect(log.fsyncCount == 2, "one for the new segment's header, then one for all 100 entries")
        let (_, recovery) = try WriteAheadLog.open(directory: directory)
        #expect(recovery.entries == entries(1...100))
        #expect(recovery.hardState == HardState(term: 1, votedFor: 2, commit: 40))
        #expect(recovery.truncatedTail == nil)
    }

    @Test func laterWritesOfAnIndexReplaceTheSuffix() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try WriteAheadLog.open(directory: directory)
        log.append(entries: entries(1...10, term: 1))
        log.append(entries: entries(5...7, term: 2), hardState: HardState(term: 2))
        try log.sync()
        let (_, recovery) = try WriteAheadLog.open(directory: directory)
        #expect(recovery.entries == entries(1...4, term: 1) + entries(5...7, term: 2))
    }

    @Test func anInstalledSnapshotDiscardsTheOldLogEntirely() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try WriteAheadLog.open(directory: directory)
        log.append(entries: entries(1...30, term: 2))
        let installed = SnapshotMetadata(index: 20, term: 3, configuration: ClusterConfiguration(voters: [1]))
        log.append(entries: [], hardState: HardState(term: 3), snapshot: installed)
        log.append(entries: entries(21...22, term: 3))
        try log.sync()
        let (_, recovery) = try WriteAheadLog.open(directory: directory)
        #expect(recovery.snapshotIndex == 20)
        #expect(recovery.entries == entries(21...22, term: 3), "entries 23…30 of the replaced log stay gone")
    }

    @Test func tornTailOfEveryLengthIsTruncated() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try WriteAheadLog.open(directory: directory)
        log.append(entries: entries(1...5))
        try log.sync()
        let path = log.segmentPaths[0]
        let intact = try segmentBytes(path)
        log.append(entries: entries(6...6))
        try log.sync()
        let full = try segmentBytes(path)
        for cut in intact.count..<full.count {
            try write(Array(full[0..<cut]), to: path)
            let (reopened, recovery) = try WriteAheadLog.open(directory: directory)
            #expect(recovery.entries == entries(1...5), "cut at \(cut)")
            #expect(recovery.truncatedTail?.offset == (cut == intact.count ? nil : intact.count))
            #expect(try segmentBytes(path).count == intact.count)
            // The log keeps working after the repair.
            reopened.append(entries: entries(6...6))
            try reopened.sync()
            let (again, replay) = try WriteAheadLog.open(directory: directory)
            #expect(replay.entries == entries(1...6))
            // Back to one torn segment for the next length.
            for other in again.segmentPaths where other != path { try FileManager.default.removeItem(atPath: other) }
            try write(Array(full[0..<cut]), to: path)
        }
    }

    @Test func zeroFilledTailIsTruncated() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try WriteAheadLog.open(directory: directory)
        log.append(entries: entries(1...3))
        try log.sync()
        let path = log.segmentPaths[0]
        let intact = try segmentBytes(path)
        try write(intact + [UInt8](repeating: 0, count: 4096), to: path)
        let (_, recovery) = try WriteAheadLog.open(directory: directory)
        #expect(recovery.entries == entries(1...3))
        #expect(recovery.truncatedTail?.reason == "zero-filled tail")
        #expect(try segmentBytes(path) == intact)
    }

    @Test func aRecordWhoseSectorsFromABoundaryOnAreZerosIsATornWrite() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try WriteAheadLog.open(directory: directory)
        log.append(entries: entries(1...3))
        try log.sync()
        let path = log.segmentPaths[0]
        let intact = try segmentBytes(path)
        // A record that starts before the first sector boundary and ends after it.
        log.append(entries: [LogEntry(index: 4, term: 1, kind: .command, data: [UInt8](repeating: 0x61, count: 700))])
        try log.sync()
        var bytes = try segmentBytes(path)
        #expect(intact.count < 512 && bytes.count > 512)
        // The file grew by the whole write, but its second sector never reached the disk.
        for position in 512..<bytes.count { bytes[position] = 0 }
        try write(bytes, to: path)
        let (_, recovery) = try WriteAheadLog.open(directory: directory)
        #expect(recovery.entries == entries(1...3))
        #expect(recovery.truncatedTail?.offset == intact.count)
        #expect(try segmentBytes(path) == intact)
    }

    @Test func aDamagedLengthWithValidRecordsAfterItIsCorruption() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try WriteAheadLog.open(directory: directory)
        log.append(entries: entries(1...3))
        try log.sync()
        let path = log.segmentPaths[0]
        let prefix = try segmentBytes(path)
        log.append(entries: entries(4...10))
        try log.sync()
        var bytes = try segmentBytes(path)
        // The length of record 4 now claims to run past the end of the file.
        bytes[prefix.count + 2] = 0x7F
        try write(bytes, to: path)
        #expect(throws: WALError.self) { _ = try WriteAheadLog.open(directory: directory) }
        #expect(try segmentBytes(path) == bytes, "acknowledged records after the damage are not cut off")
    }

    @Test func corruptionBeforeTheTailStopsWithFileAndOffset() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try WriteAheadLog.open(directory: directory)
        log.append(entries: entries(1...20))
        try log.sync()
        let path = log.segmentPaths[0]
        var bytes = try segmentBytes(path)
        bytes[bytes.count / 2] ^= 0x40
        try write(bytes, to: path)
        do {
            _ = try WriteAheadLog.open(directory: directory)
            Issue.record("a flipped byte in the middle must stop the open")
        } catch WALError.corrupt(let file, let offset, _) {
            #expect(file == path)
            #expect(offset > 0 && offset <= bytes.count / 2)
        }
        #expect(try segmentBytes(path) == bytes, "nothing is truncated when refusing")
    }

    @Test func segmentsRollAndReleasedSegmentsStillReplay() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = WriteAheadLog.Options()
        options.segmentBytes = 512
        let (log, _) = try WriteAheadLog.open(directory: directory, options: options)
        for index in UInt64(1)...200 {
            log.append(entries: entries(index...index), hardState: HardState(term: 1, votedFor: nil, commit: index))
            try log.sync()
        }
        #expect(log.segmentPaths.count > 5)
        log.appendSnapshotMarker(index: 150, term: 1)
        try log.sync()
        let before = log.segmentPaths.count
        try log.releaseSegments(coveredBy: 150)
        #expect(log.segmentPaths.count < before)
        let (_, recovery) = try WriteAheadLog.open(directory: directory, options: options)
        #expect(recovery.snapshotIndex == 150)
        #expect(recovery.entries == entries(151...200))
        #expect(recovery.hardState.commit == 200)
    }

    @Test func mutatedLogsNeverCrashTheReader() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try WriteAheadLog.open(directory: directory)
        log.append(entries: entries(1...30), hardState: HardState(term: 3, votedFor: 1, commit: 30))
        try log.sync()
        let path = log.segmentPaths[0]
        let original = try segmentBytes(path)
        var random = SeededRandom(seed: 99)
        for round in 0..<300 {
            var bytes = original
            switch round % 3 {
            case 0: bytes[random.next(below: bytes.count)] = UInt8(truncatingIfNeeded: random.next())
            case 1: bytes = Array(bytes.prefix(random.next(below: bytes.count)))
            default:
                for _ in 0..<8 { bytes[random.next(below: bytes.count)] = UInt8(truncatingIfNeeded: random.next()) }
                bytes += (0..<random.next(below: 64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            }
            try write(bytes, to: path)
            do {
                let (_, recovery) = try WriteAheadLog.open(directory: directory)
                // Whatever survives is a prefix of what was written.
                #expect(recovery.entries == Array(entries(1...30).prefix(recovery.entries.count)))
            } catch is WALError {
                // Refusing with a reason is the other acceptable outcome.
            }
        }
    }

    @Test func crcMatchesTheCastagnoliCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }
}
