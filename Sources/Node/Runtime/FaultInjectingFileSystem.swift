import Foundation
import Raft

/// The real file system, except that every fsync fails with EIO while a trigger file exists: the
/// hook that lets a process test make a live node's disk fail without root (a tmpfs or loop
/// mount would need it). Enabled only when a test asks for it (`NodeConfiguration.faultTrigger`);
/// a node without one uses `POSIXFileSystem` itself.
struct FaultInjectingFileSystem: WALFileSystem {
    let base = POSIXFileSystem()
    /// While this path exists, `sync` throws.
    let trigger: String

    private var tripped: Bool { FileManager.default.fileExists(atPath: trigger) }

    func makeDirectories(_ path: String) throws(WALError) { try base.makeDirectories(path) }
    func fileNames(in directory: String) throws(WALError) -> [String] { try base.fileNames(in: directory) }
    func readFile(_ path: String) throws(WALError) -> [UInt8] { try base.readFile(path) }
    func openForAppending(_ path: String) throws(WALError) -> WALFileHandle { try base.openForAppending(path) }
    func append(_ bytes: [UInt8], to file: WALFileHandle) throws(WALError) { try base.append(bytes, to: file) }
    func truncate(_ file: WALFileHandle, to length: Int) throws(WALError) { try base.truncate(file, to: length) }
    func close(_ file: WALFileHandle) { base.close(file) }
    func remove(_ path: String) throws(WALError) { try base.remove(path) }

    func sync(_ file: WALFileHandle) throws(WALError) {
        if tripped { throw WALError.io(operation: "fsync (injected)", path: file.path, errno: EIO) }
        try base.sync(file)
    }

    func syncDirectory(_ directory: String) throws(WALError) {
        if tripped { throw WALError.io(operation: "fsync directory (injected)", path: directory, errno: EIO) }
        try base.syncDirectory(directory)
    }
}
