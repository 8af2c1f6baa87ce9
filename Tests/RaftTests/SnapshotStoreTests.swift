import Foundation
import Testing

@testable import Raft

@Suite("Snapshot files: LZ4, checksums, atomic replacement")
struct SnapshotStoreTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("snap-\(UUID().uuidString)").path

    func snapshot(index: UInt64, bytes: Int = 50_000) -> Snapshot {
        let data = (0..<bytes).map { UInt8(truncatingIfNeeded: $0 % 251 == 0 ? $0 : 7) }
        return Snapshot(
            metadata: SnapshotMetadata(
                index: index, term: 3, configuration: ClusterConfiguration(voters: [1, 2, 3], learners: [4])),
            data: data)
    }

    func files() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: directory).sorted() }

    @Test func roundTripsCompressed() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SnapshotStore(directory: directory)
        #expect(try store.loadLatest() == nil)
        let original = snapshot(index: 10)
        try store.save(original)
        #expect(try store.loadLatest() == original)
        let size = try FileManager.default.attributesOfItem(atPath: directory + "/" + files()[0])[.size] as! Int
        #expect(size < original.data.count / 4, "LZ4 shrinks a repetitive state machine")
        let empty = Snapshot(metadata: snapshot(index: 11).metadata, data: [])
        try store.save(empty)
        #expect(try store.loadLatest() == empty)
    }

    @Test func keepsTheNewestAndPrunesOldOnes() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SnapshotStore(directory: directory)
        for index in [5, 9, 7, 12] as [UInt64] { try store.save(snapshot(index: index, bytes: 100)) }
        #expect(try store.loadLatest()?.metadata.index == 12)
        #expect(try files().count == 2)
    }

    @Test func interruptedSaveLeavesThePreviousSnapshot() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SnapshotStore(directory: directory)
        try store.save(snapshot(index: 4))
        // A crash between writing the temporary file and renaming it.
        let partial = directory + "/" + SnapshotStore.fileName(index: 8, term: 3) + ".tmp"
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: partial))
        #expect(try store.loadLatest()?.metadata.index == 4)
        #expect(!FileManager.default.fileExists(atPath: partial), "leftovers are cleaned up")
    }

    @Test func corruptionIsReportedWithTheFileName() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SnapshotStore(directory: directory)
        try store.save(snapshot(index: 20))
        let path = directory + "/" + (try files()[0])
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        var random = SeededRandom(seed: 5)
        for round in 0..<200 {
            var bytes = [UInt8](good)
            if round % 2 == 0 {
                bytes[random.next(below: bytes.count)] ^= UInt8(1 + random.next(below: 255))
            } else {
                bytes = Array(bytes.prefix(random.next(below: bytes.count)))
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                _ = try store.loadLatest()
                Issue.record("round \(round): corruption went unnoticed")
            } catch SnapshotStoreError.corrupt(let file, _) {
                #expect(file == path)
            }
        }
    }
}
