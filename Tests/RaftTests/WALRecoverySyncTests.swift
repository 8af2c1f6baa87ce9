import Testing

@testable import Raft
@testable import RaftSimulation

/// Recovery makes durable what it read. A process killed in the middle of an fsync (SIGKILL,
/// OOM) leaves its writes readable in the page cache but not on disk; the restarted node treats
/// what it reads as stable and acknowledges it without writing it again, so a later power loss
/// must not be able to take it back.
@Suite("Write-ahead log: recovery fsyncs what it read")
struct WALRecoverySyncTests {
    let directory = "/data/wal"

    @Test func entriesReadBackAfterAProcessCrashSurviveALaterPowerLoss() throws {
        let fileSystem = SimulatedFileSystem(seed: 7)
        let written = (1...6).map { LogEntry(index: UInt64($0), term: 2, kind: .command, data: [UInt8($0)]) }
        do {
            let (log, _) = try WriteAheadLog.open(directory: directory, fileSystem: fileSystem)
            log.append(entries: written, hardState: HardState(term: 2, votedFor: 3, commit: 0))
            // Killed inside sync(), after its write and before its fsync: the bytes are in the
            // page cache only.
            fileSystem.scheduleProcessKill(afterOperations: 1)
            #expect(throws: WALError.self) { try log.sync() }
        }
        fileSystem.restart()
        let (_, recovered) = try WriteAheadLog.open(directory: directory, fileSystem: fileSystem)
        try #require(recovered.entries == written, "the restarted process reads what the cache holds")
        #expect(recovered.hardState.votedFor == 3)

        // The machine loses power later. What the restarted node read (and may have acknowledged
        // since, without writing it again) is still there.
        fileSystem.crash(.allUnsynced)
        let (_, afterPowerLoss) = try WriteAheadLog.open(directory: directory, fileSystem: fileSystem)
        #expect(afterPowerLoss.entries == written)
        #expect(afterPowerLoss.hardState == recovered.hardState)
    }
}
