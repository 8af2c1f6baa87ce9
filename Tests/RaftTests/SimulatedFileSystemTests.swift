import Raft
import RaftSimulation
import Testing

/// The simulated file system keeps only what POSIX promises, so tests on it prove something.
@Suite("Simulated file system: what survives a crash")
struct SimulatedFileSystemTests {
    let directory = "/disk"

    func fileSystemWithFile(seed: UInt64 = 1) throws -> (SimulatedFileSystem, WALFileHandle) {
        let fileSystem = SimulatedFileSystem(seed: seed)
        try fileSystem.makeDirectories(directory)
        let file = try fileSystem.openForAppending(directory + "/f")
        try fileSystem.syncDirectory(directory)
        return (fileSystem, file)
    }

    @Test func onlyWhatWasFsyncedSurvivesLosingEverythingUnsynced() throws {
        let (fileSystem, file) = try fileSystemWithFile()
        try fileSystem.append([1, 2, 3], to: file)
        try fileSystem.sync(file)
        try fileSystem.append([4, 5], to: file)
        try fileSystem.truncate(file, to: 1)
        #expect(try fileSystem.readFile(file.path) == [1])
        fileSystem.crash(.allUnsynced)
        #expect(try fileSystem.readFile(file.path) == [1, 2, 3])
        #expect(throws: WALError.self, "a crash closes every file") { try fileSystem.append([9], to: file) }
    }

    @Test func aNameIsDurableOnlyOnceItsDirectoryIsFsynced() throws {
        let (fileSystem, kept) = try fileSystemWithFile()
        let lost = try fileSystem.openForAppending(directory + "/new")
        try fileSystem.append([7], to: lost)
        try fileSystem.sync(lost)
        try fileSystem.remove(kept.path)
        fileSystem.crash(.allUnsynced)
        #expect(
            try fileSystem.fileNames(in: directory) == ["f"], "the removal and the creation were never made durable")
    }

    /// Over many seeds a crash keeps a prefix of the unsynced bytes, sometimes with the sectors
    /// from a boundary on zeroed, and never anything else.
    @Test func aCrashKeepsAPrefixOfUnsyncedBytesOrZeroedSectorsAfterOne() throws {
        let data = (0..<1500).map { UInt8(1 + $0 % 250) }
        var outcomes: Set<String> = []
        for seed in UInt64(1)...200 {
            let (fileSystem, file) = try fileSystemWithFile(seed: seed)
            try fileSystem.append([0xAA], to: file)
            try fileSystem.sync(file)
            try fileSystem.append(data, to: file)
            fileSystem.crash()
            let after = try fileSystem.readFile(file.path)
            #expect(after.first == 0xAA, "seed \(seed): synced bytes survive")
            let kept = Array(after.dropFirst())
            let written = kept.prefix { $0 != 0 }
            #expect(Array(written) == Array(data.prefix(written.count)), "seed \(seed)")
            if written.count == kept.count {
                outcomes.insert(kept.isEmpty ? "nothing" : kept.count == data.count ? "all" : "prefix")
            } else {
                #expect(kept.count == data.count, "seed \(seed): zeros only where the file grew by the whole write")
                #expect((1 + written.count) % 512 == 0 || written.isEmpty, "seed \(seed): zeros from a sector boundary")
                #expect(kept.dropFirst(written.count).allSatisfy { $0 == 0 }, "seed \(seed)")
                outcomes.insert("zeroed sectors")
            }
        }
        #expect(outcomes == ["nothing", "all", "prefix", "zeroed sectors"])
    }

    /// As on Linux: the failed pages are marked clean, so a later fsync that succeeds does not
    /// write them, and what is written after them lands beyond a hole.
    @Test func whatAFailedFsyncLostStaysLost() throws {
        var holes = 0
        for seed in UInt64(1)...50 {
            let (fileSystem, file) = try fileSystemWithFile(seed: seed)
            try fileSystem.append([1, 2, 3, 4], to: file)
            fileSystem.failNextSyncs()
            #expect(throws: WALError.io(operation: "fsync", path: file.path, errno: 5)) { try fileSystem.sync(file) }
            #expect(try fileSystem.readFile(file.path) == [1, 2, 3, 4], "reads still see the write")
            try fileSystem.append([5], to: file)
            try fileSystem.sync(file)
            fileSystem.crash(.allUnsynced)
            let after = try fileSystem.readFile(file.path)
            #expect(after.count == 5 && after.last == 5, "seed \(seed)")
            if after != [1, 2, 3, 4, 5] {
                holes += 1
                #expect(after.prefix(4).drop { $0 != 0 }.allSatisfy { $0 == 0 }, "seed \(seed): \(after)")
            }
        }
        #expect(holes > 0)
    }

    @Test func aScheduledCrashStopsEverythingUntilRestart() throws {
        let (fileSystem, file) = try fileSystemWithFile()
        fileSystem.scheduleCrash(afterOperations: 1)
        try fileSystem.append([1], to: file)
        #expect(throws: WALError.self) { try fileSystem.sync(file) }
        #expect(fileSystem.isDown)
        #expect(throws: WALError.self) { _ = try fileSystem.readFile(file.path) }
        fileSystem.restart()
        #expect(try fileSystem.readFile(file.path).count <= 1)
    }
}
