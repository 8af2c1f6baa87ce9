import Raft

/// A file system in memory that is as unforgiving as POSIX allows, for running the write-ahead
/// log under crashes: nothing written is durable until fsync'ed, no name created or removed is
/// durable until its directory is fsync'ed, a crash keeps a seeded prefix of what was not, and an
/// fsync can be made to fail.
///
/// Each file has the bytes reads see now and the bytes on "disk", plus the writes and truncations
/// made since its last fsync, in order. A crash keeps the first few of them, the one after those
/// possibly torn — cut short, or the file grown by all of it with its trailing sectors zeros
/// (their data never written) — and drops the rest. A failed fsync does the same to the disk at
/// once but leaves reads unchanged, and the lost writes stay lost: as on Linux, the failed pages
/// are marked clean, so a later fsync that succeeds does not write them either, and a later write
/// at the end of the file leaves a hole of zeros on disk where they were.
///
/// Directories are durable when created (`makeDirectories`), and hold files only: enough for the
/// log. Deterministic: every choice comes from the seed.
///
/// Not thread-safe, like the log it serves.
public final class SimulatedFileSystem: WALFileSystem {
    /// What a crash does to what was not fsync'ed.
    public enum CrashLoss: Sendable, Hashable {
        /// Everything unsynced is lost.
        case allUnsynced
        /// A seeded prefix of the unsynced operations survives, the last of them possibly torn.
        case seededPrefix
    }

    /// An operation the log made, in order, for tests to check what was fsync'ed when.
    public enum Event: Sendable, Hashable {
        case create(String)
        case append(String, bytes: Int)
        case truncate(String, length: Int)
        case sync(String)
        case syncDirectory(String)
        case remove(String)
        case failedSync(String)
    }

    private enum Change {
        case write(offset: Int, bytes: [UInt8])
        case truncate(length: Int)
    }

    private struct File {
        var current: [UInt8] = []
        var durable: [UInt8] = []
        var unsynced: [Change] = []
    }

    private enum NameChange {
        case create(path: String, file: Int)
        case remove(path: String)

        var path: String {
            switch self {
            case .create(let path, _), .remove(let path): path
            }
        }
    }

    private var random: SeededRandom
    private var files: [Int: File] = [:]
    private var nextFile = 1
    /// Path to file, as lookups see it now, and as it would be after a crash.
    private var names: [String: Int] = [:]
    private var durableNames: [String: Int] = [:]
    private var unsyncedNames: [NameChange] = []
    private var directories: Set<String> = []
    private var open: [Int32: (file: Int, path: String)] = [:]
    private var nextDescriptor: Int32 = 3
    /// fsyncs (of files or directories) still to fail.
    private var failingSyncs = 0
    /// Operations left before a scheduled crash, and whether it takes the machine (power) or only
    /// the process.
    private var crashCountdown: Int?
    private var scheduledCrashIsPowerLoss = true
    /// Power is off: every operation fails until `restart()`.
    public private(set) var isDown = false
    public private(set) var events: [Event] = []
    /// Crashes so far.
    public private(set) var crashes = 0
    /// fsyncs that failed so far (injected with `failNextSyncs`).
    public private(set) var failedSyncs = 0

    public init(seed: UInt64) {
        random = SeededRandom(seed: seed)
    }

    // MARK: Faults

    /// The next `count` fsyncs, of files or directories, fail with EIO.
    public func failNextSyncs(_ count: Int = 1) {
        failingSyncs += count
    }

    /// Power fails after `count` more operations that change something (0: at the next one),
    /// just before the next takes effect — inside a log call, say between its write and its
    /// fsync. That call and every later one fail until `restart()`.
    public func scheduleCrash(afterOperations count: Int) {
        crashCountdown = count
        scheduledCrashIsPowerLoss = true
    }

    /// The same, but only the process dies (`killProcess`): what it wrote stays in the cache.
    public func scheduleProcessKill(afterOperations count: Int) {
        crashCountdown = count
        scheduledCrashIsPowerLoss = false
    }

    /// Power is back after a scheduled crash.
    public func restart() {
        isDown = false
    }

    /// Power loss: every file and name becomes what reached the disk, every open file is closed,
    /// and no fault stays armed.
    public func crash(_ loss: CrashLoss = .seededPrefix) {
        crashes += 1
        crashCountdown = nil
        failingSyncs = 0
        // In a fixed order: dictionary order changes from process to process, the seed must not.
        for number in files.keys.sorted() {
            let file = files[number]!
            let survivor = reachDisk(file.unsynced, from: file.durable, loss: loss)
            files[number] = File(current: survivor, durable: survivor)
        }
        let kept = loss == .allUnsynced ? 0 : random.next(below: unsyncedNames.count + 1)
        for change in unsyncedNames.prefix(kept) { apply(change, to: &durableNames) }
        unsyncedNames = []
        names = durableNames
        open = [:]
        let named = Set(names.values)
        files = files.filter { named.contains($0.key) }
    }

    /// No armed fault any more (no failing fsyncs, no scheduled crash): calm weather.
    public func disarm() {
        crashCountdown = nil
        failingSyncs = 0
    }

    /// The process dies but the machine does not (SIGKILL, OOM): open files are closed, and
    /// everything written stays in the page cache — readable by the next process, yet still not
    /// durable, so a later power loss (`crash`) can take it away.
    public func killProcess() {
        crashCountdown = nil
        open = [:]
    }

    // MARK: Inspecting and damaging, for tests

    /// What reads of `path` see now (nil if there is no such file).
    public func contents(of path: String) -> [UInt8]? {
        names[path].map { files[$0]!.current }
    }

    /// Replaces what the disk holds for `path` (reads and disk alike): bit rot, or a test's setup.
    public func overwriteDurably(_ path: String, with bytes: [UInt8]) {
        guard let number = names[path] else { return }
        files[number] = File(current: bytes, durable: bytes)
    }

    // MARK: WALFileSystem

    public func makeDirectories(_ path: String) throws(WALError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            directories.insert(prefix)
            prefix += "/"
        }
    }

    public func fileNames(in directory: String) throws(WALError) -> [String] {
        guard !isDown else { throw Self.powerLost(directory) }
        guard directories.contains(directory) else { throw .io(operation: "opendir", path: directory, errno: 2) }
        return names.keys.sorted().compactMap { path in
            let (parent, name) = Self.split(path)
            return parent == directory ? name : nil
        }
    }

    public func readFile(_ path: String) throws(WALError) -> [UInt8] {
        guard !isDown else { throw Self.powerLost(path) }
        guard let number = names[path] else { throw .io(operation: "open", path: path, errno: 2) }
        return files[number]!.current
    }

    public func openForAppending(_ path: String) throws(WALError) -> WALFileHandle {
        try spendOperation(path)
        let number: Int
        if let existing = names[path] {
            number = existing
        } else {
            guard directories.contains(Self.split(path).parent) else {
                throw .io(operation: "create", path: path, errno: 2)
            }
            number = nextFile
            nextFile += 1
            files[number] = File()
            names[path] = number
            unsyncedNames.append(.create(path: path, file: number))
            events.append(.create(path))
        }
        let descriptor = nextDescriptor
        nextDescriptor += 1
        open[descriptor] = (number, path)
        return WALFileHandle(descriptor: descriptor, path: path)
    }

    public func append(_ bytes: [UInt8], to handle: WALFileHandle) throws(WALError) {
        try spendOperation(handle.path)
        let number = try file(of: handle, operation: "write")
        files[number]!.unsynced.append(.write(offset: files[number]!.current.count, bytes: bytes))
        files[number]!.current += bytes
        events.append(.append(handle.path, bytes: bytes.count))
    }

    public func truncate(_ handle: WALFileHandle, to length: Int) throws(WALError) {
        try spendOperation(handle.path)
        let number = try file(of: handle, operation: "truncate")
        files[number]!.unsynced.append(.truncate(length: length))
        Self.apply(.truncate(length: length), to: &files[number]!.current)
        events.append(.truncate(handle.path, length: length))
    }

    public func sync(_ handle: WALFileHandle) throws(WALError) {
        try spendOperation(handle.path)
        let number = try file(of: handle, operation: "fsync")
        let failing = takeSyncFailure()
        let (durable, unsynced) = (files[number]!.durable, files[number]!.unsynced)
        files[number]!.durable =
            failing
            ? reachDisk(unsynced, from: durable, loss: .seededPrefix)
            : unsynced.reduce(into: durable) { Self.apply($1, to: &$0) }
        // Failed or not, these changes are no longer pending: a failed fsync's pages are clean.
        files[number]!.unsynced = []
        if failing {
            events.append(.failedSync(handle.path))
            throw .io(operation: "fsync", path: handle.path, errno: 5)
        }
        events.append(.sync(handle.path))
    }

    public func close(_ handle: WALFileHandle) {
        open[handle.descriptor] = nil
    }

    public func remove(_ path: String) throws(WALError) {
        try spendOperation(path)
        guard names.removeValue(forKey: path) != nil else { throw .io(operation: "unlink", path: path, errno: 2) }
        unsyncedNames.append(.remove(path: path))
        events.append(.remove(path))
    }

    public func syncDirectory(_ directory: String) throws(WALError) {
        try spendOperation(directory)
        guard directories.contains(directory) else { throw .io(operation: "open", path: directory, errno: 2) }
        let (inDirectory, elsewhere) = (
            unsyncedNames.filter { Self.split($0.path).parent == directory },
            unsyncedNames.filter { Self.split($0.path).parent != directory }
        )
        if takeSyncFailure() {
            // Some of the directory's changes may have reached the disk; none is promised.
            for change in inDirectory.prefix(random.next(below: inDirectory.count + 1)) {
                apply(change, to: &durableNames)
            }
            unsyncedNames = elsewhere
            events.append(.failedSync(directory))
            throw .io(operation: "fsync", path: directory, errno: 5)
        }
        for change in inDirectory { apply(change, to: &durableNames) }
        unsyncedNames = elsewhere
        events.append(.syncDirectory(directory))
    }

    // MARK: The model

    /// Counts an operation towards a scheduled crash, and refuses it while the power is off.
    private func spendOperation(_ path: String) throws(WALError) {
        guard !isDown else { throw Self.powerLost(path) }
        guard let countdown = crashCountdown else { return }
        guard countdown == 0 else {
            crashCountdown = countdown - 1
            return
        }
        if scheduledCrashIsPowerLoss { crash() } else { killProcess() }
        isDown = true
        throw Self.powerLost(path)
    }

    private static func powerLost(_ path: String) -> WALError {
        .io(operation: "power lost at", path: path, errno: 5)
    }

    private func takeSyncFailure() -> Bool {
        guard failingSyncs > 0 else { return false }
        failingSyncs -= 1
        failedSyncs += 1
        return true
    }

    private func file(of handle: WALFileHandle, operation: String) throws(WALError) -> Int {
        guard let entry = open[handle.descriptor], entry.path == handle.path else {
            throw .io(operation: operation, path: handle.path, errno: 9)
        }
        return entry.file
    }

    /// What reaches the disk of `changes` made to a file holding `durable`: all of them unless a
    /// crash (or failed fsync) interrupts; then a seeded number of them, the next one possibly torn.
    private func reachDisk(_ changes: [Change], from durable: [UInt8], loss: CrashLoss) -> [UInt8] {
        var bytes = durable
        guard loss == .seededPrefix, !changes.isEmpty else { return bytes }
        let kept = random.next(below: changes.count + 1)
        for change in changes.prefix(kept) { Self.apply(change, to: &bytes) }
        guard kept < changes.count, case .write(let offset, let data) = changes[kept], !data.isEmpty else {
            return bytes
        }
        switch random.next(below: 3) {
        case 0:
            // The file grew by only part of the write.
            Self.apply(.write(offset: offset, bytes: Array(data.prefix(random.next(below: data.count)))), to: &bytes)
        case 1:
            // The file grew by all of it, but its sectors from some boundary on were never written.
            // The old end of the file counts too: its sector was never rewritten.
            let sector = 512
            let cuts =
                [offset] + Array(stride(from: (offset / sector + 1) * sector, to: offset + data.count, by: sector))
            let cut = cuts[random.next(below: cuts.count)]
            var torn = Array(data.prefix(cut - offset))
            torn += [UInt8](repeating: 0, count: data.count - torn.count)
            Self.apply(.write(offset: offset, bytes: torn), to: &bytes)
        default:
            break  // none of it
        }
        return bytes
    }

    private static func apply(_ change: Change, to bytes: inout [UInt8]) {
        switch change {
        case .write(let offset, let data):
            // A write past the end of what the disk holds leaves a hole of zeros before it.
            if bytes.count < offset + data.count {
                bytes += [UInt8](repeating: 0, count: offset + data.count - bytes.count)
            }
            bytes.replaceSubrange(offset..<offset + data.count, with: data)
        case .truncate(let length):
            if length < bytes.count {
                bytes.removeSubrange(length...)
            } else {
                bytes += [UInt8](repeating: 0, count: length - bytes.count)
            }
        }
    }

    private func apply(_ change: NameChange, to table: inout [String: Int]) {
        switch change {
        case .create(let path, let file): table[path] = file
        case .remove(let path): table[path] = nil
        }
    }

    private static func split(_ path: String) -> (parent: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return ("", path) }
        return (String(path[..<slash]), String(path[path.index(after: slash)...]))
    }
}
