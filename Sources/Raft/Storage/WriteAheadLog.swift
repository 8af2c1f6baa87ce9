/// Why the log cannot be opened or written. Corruption names the file and byte offset.
public enum WALError: Error, Hashable, CustomStringConvertible {
    case corrupt(file: String, offset: Int, reason: String)
    case io(operation: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case .corrupt(let file, let offset, let reason): "WAL corrupt in \(file) at byte \(offset): \(reason)"
        case .io(let operation, let path, let code): "WAL \(operation) \(path) failed: errno \(code)"
        }
    }
}

/// What replaying the log found.
public struct WALRecovery: Sendable, Hashable {
    public var hardState = HardState()
    /// The newest snapshot marker (0/0 if none): entries at or below it are not in the log.
    public var snapshotIndex: UInt64 = 0
    public var snapshotTerm: UInt64 = 0
    /// Contiguous entries after `snapshotIndex`.
    public var entries: [LogEntry] = []
    /// A torn record at the tail that was cut off (the host logs it).
    public var truncatedTail: TornTail?

    public struct TornTail: Sendable, Hashable {
        public var file: String
        public var offset: Int
        /// How many bytes were dropped.
        public var bytes: Int
        public var reason: String
    }
}

/// The segmented write-ahead log: entries, hard states and snapshot markers appended to numbered
/// segment files (`wal-<sequence>.log`), each record framed with its length and CRC-32C.
///
/// Group commit: `append` only buffers; `sync` writes the buffer and fsyncs once, so every entry
/// and vote of one `Ready` — however many proposals it carries — costs one fsync. Nothing may be
/// acknowledged before `sync` returns.
///
/// Recovery: a record at the very end of the newest segment that bears the marks of a write
/// torn by a crash (see `parseRecord`) is truncated away — durably — and reported; a bad record
/// anywhere else, or one whose bytes are all present but damaged, stops the open with the file
/// and offset, because skipping it could silently lose acknowledged data.
///
/// Failure: once a write or fsync has failed, every later `sync` throws. The kernel may have
/// dropped the failed pages while marking them clean, so a retried fsync could succeed without
/// making anything durable (PostgreSQL's "fsyncgate"); the host stops, and reopening reads what
/// the disk really holds.
///
/// Files go through a `WALFileSystem`: the real disk unless a simulated one is passed in.
///
/// Not thread-safe: one owner (an actor or an event loop) uses it.
public final class WriteAheadLog {
    public struct Options: Sendable {
        /// A segment is closed and a new one started once it grows past this size.
        public var segmentBytes = 64 << 20
        public init() {}
    }

    public let directory: String
    private let options: Options
    private let fileSystem: any WALFileSystem
    private var segments: [Segment] = []
    /// The newest segment, open for appending (nil only before the first one is started).
    private var file: WALFileHandle?
    /// The first write or fsync that failed: from then on nothing is assumed durable.
    private var failure: WALError?
    private var buffer: [UInt8] = []
    private var lastHardState = HardState()
    private var snapshotIndex: UInt64 = 0
    private var snapshotTerm: UInt64 = 0
    /// fsyncs of segment data so far (group-commit effectiveness: entries per fsync).
    public private(set) var fsyncCount = 0
    /// Set while a new segment's header is written, so a tiny segment limit cannot recurse.
    private var startingSegment = false

    struct Segment {
        var sequence: UInt64
        var path: String
        var bytes: Int
        /// Highest entry index written to it (0 if none).
        var lastEntryIndex: UInt64
    }

    /// Opens (creating if needed) the log in `directory` and replays it.
    public static func open(
        directory: String, options: Options = Options(), fileSystem: any WALFileSystem = POSIXFileSystem()
    ) throws -> (WriteAheadLog, WALRecovery) {
        let log = WriteAheadLog(directory: directory, options: options, fileSystem: fileSystem)
        let recovery = try log.recover()
        return (log, recovery)
    }

    private init(directory: String, options: Options, fileSystem: any WALFileSystem) {
        self.directory = directory
        self.options = options
        self.fileSystem = fileSystem
    }

    deinit {
        if let file { fileSystem.close(file) }
    }

    // MARK: Writing

    /// Buffers what a `Ready` asks to persist, in the contract's order. A `snapshot` here is one
    /// installed from the leader, which replaces the whole log.
    public func append(entries: [LogEntry], hardState: HardState? = nil, snapshot: SnapshotMetadata? = nil) {
        if let snapshot {
            WALRecord.logReset(index: snapshot.index, term: snapshot.term).encode(into: &buffer)
            snapshotIndex = snapshot.index
            snapshotTerm = snapshot.term
        }
        for entry in entries { WALRecord.entry(entry).encode(into: &buffer) }
        if let last = entries.last {
            segments[segments.count - 1].lastEntryIndex = max(segments[segments.count - 1].lastEntryIndex, last.index)
        }
        if let hardState {
            WALRecord.hardState(hardState).encode(into: &buffer)
            lastHardState = hardState
        }
    }

    /// Records that a snapshot now covers everything up to `index` (taken locally).
    public func appendSnapshotMarker(index: UInt64, term: UInt64) {
        WALRecord.snapshot(index: index, term: term).encode(into: &buffer)
        snapshotIndex = index
        snapshotTerm = term
    }

    /// Writes everything buffered and fsyncs it: the moment it becomes durable. Throws, now and
    /// on every later call, once a write or fsync has failed.
    public func sync() throws {
        if let failure { throw failure }
        guard !buffer.isEmpty, let file else { return }
        try recordingFailure { () throws(WALError) in
            try fileSystem.append(buffer, to: file)
            try fileSystem.sync(file)
        }
        fsyncCount += 1
        segments[segments.count - 1].bytes += buffer.count
        buffer.removeAll(keepingCapacity: true)
        if !startingSegment && segments[segments.count - 1].bytes >= options.segmentBytes { try startSegment() }
    }

    /// Deletes whole segments whose entries are all covered by a snapshot at `index`. The newest
    /// segment always stays, and every segment begins with the hard state and snapshot marker,
    /// so nothing the remaining segments need is lost.
    public func releaseSegments(coveredBy index: UInt64) throws {
        if let failure { throw failure }
        try recordingFailure { () throws(WALError) in
            while segments.count > 1, segments[0].lastEntryIndex <= index {
                try fileSystem.remove(segments[0].path)
                segments.removeFirst()
            }
            try fileSystem.syncDirectory(directory)
        }
    }

    public var segmentPaths: [String] { segments.map(\.path) }

    /// Remembers the first failure of `body`, so every later write refuses too.
    private func recordingFailure(_ body: () throws(WALError) -> Void) throws(WALError) {
        do { try body() } catch {
            failure = failure ?? error
            throw error
        }
    }

    /// Closes the current segment and starts the next, beginning with the state replay needs.
    private func startSegment() throws {
        startingSegment = true
        defer { startingSegment = false }
        if let file { fileSystem.close(file) }
        file = nil
        let sequence = (segments.last?.sequence ?? 0) + 1
        let path = Self.segmentPath(directory: directory, sequence: sequence)
        try recordingFailure { () throws(WALError) in
            file = try fileSystem.openForAppending(path)
            segments.append(Segment(sequence: sequence, path: path, bytes: 0, lastEntryIndex: 0))
            try fileSystem.syncDirectory(directory)
        }
        var header: [UInt8] = []
        WALRecord.snapshot(index: snapshotIndex, term: snapshotTerm).encode(into: &header)
        WALRecord.hardState(lastHardState).encode(into: &header)
        let pending = buffer
        buffer = header
        try sync()
        buffer = pending
    }

    static func segmentPath(directory: String, sequence: UInt64) -> String {
        let hex = String(sequence, radix: 16)
        return directory + "/wal-" + String(repeating: "0", count: max(0, 16 - hex.count)) + hex + ".log"
    }

    // MARK: Recovery

    private func recover() throws -> WALRecovery {
        try fileSystem.makeDirectories(directory)
        let sequences = try segmentSequences()
        var recovery = WALRecovery()
        var entries: [LogEntry] = []
        for (position, sequence) in sequences.enumerated() {
            let path = Self.segmentPath(directory: directory, sequence: sequence)
            let bytes = try fileSystem.readFile(path)
            var offset = 0
            var lastEntryIndex: UInt64 = 0
            while offset < bytes.count {
                let isNewest = position == sequences.count - 1
                switch Self.parseRecord(bytes, at: offset) {
                case .record(let record, let next):
                    try apply(record, to: &recovery, entries: &entries, file: path, offset: offset)
                    if case .entry(let entry) = record { lastEntryIndex = max(lastEntryIndex, entry.index) }
                    offset = next
                case .corrupt(let reason):
                    throw WALError.corrupt(file: path, offset: offset, reason: reason)
                case .torn(let reason):
                    // A crash can only interrupt the last write of the newest segment: a torn record
                    // there with nothing valid after it is that write. Anywhere else — another
                    // segment, or valid records after it — it is damage to acknowledged data.
                    guard isNewest else { throw WALError.corrupt(file: path, offset: offset, reason: reason) }
                    guard !Self.hasValidRecord(in: bytes, after: offset) else {
                        throw WALError.corrupt(
                            file: path, offset: offset, reason: reason + ", and valid records follow")
                    }
                    try truncateDurably(path, to: offset)
                    recovery.truncatedTail = WALRecovery.TornTail(
                        file: path, offset: offset, bytes: bytes.count - offset, reason: reason)
                    offset = bytes.count
                }
            }
            let kept = recovery.truncatedTail?.file == path ? recovery.truncatedTail!.offset : bytes.count
            try syncRecovered(path)
            segments.append(Segment(sequence: sequence, path: path, bytes: kept, lastEntryIndex: lastEntryIndex))
        }
        try fileSystem.syncDirectory(directory)
        entries.removeAll { $0.index <= recovery.snapshotIndex }
        if let first = entries.first, first.index != recovery.snapshotIndex + 1 {
            throw WALError.corrupt(
                file: directory, offset: 0,
                reason: "entries start at \(first.index) but the snapshot ends at \(recovery.snapshotIndex)")
        }
        recovery.entries = entries
        lastHardState = recovery.hardState
        snapshotIndex = recovery.snapshotIndex
        snapshotTerm = recovery.snapshotTerm
        // Always continue in a fresh segment that begins with the recovered hard state and
        // snapshot marker, so every segment is self-contained whatever a crash left behind.
        try startSegment()
        return recovery
    }

    /// What recovery read may be only in the page cache: a process killed (not the machine) in
    /// the middle of an fsync leaves its writes readable but not durable. Recovery treats what it
    /// reads as stable — the core acknowledges entries it holds without writing them again — so
    /// it must be made durable first, or a power loss after the restart could take back entries
    /// this node has since acknowledged, or a vote it has since repeated.
    private func syncRecovered(_ path: String) throws(WALError) {
        let file = try fileSystem.openForAppending(path)
        defer { fileSystem.close(file) }
        try fileSystem.sync(file)
    }

    /// The cut is fsync'ed before the log is written again. Otherwise a crash could keep the next
    /// segment (created and made durable right after recovery) yet bring the torn tail back, in a
    /// segment that is then no longer the newest — where the next recovery must call it
    /// corruption. A file's size is inode metadata that fsync of the file persists; no name
    /// changes, so the directory needs no fsync.
    private func truncateDurably(_ path: String, to length: Int) throws(WALError) {
        let torn = try fileSystem.openForAppending(path)
        defer { fileSystem.close(torn) }
        try fileSystem.truncate(torn, to: length)
        try fileSystem.sync(torn)
    }

    private func apply(
        _ record: WALRecord, to recovery: inout WALRecovery, entries: inout [LogEntry], file: String, offset: Int
    ) throws {
        switch record {
        case .hardState(let state):
            recovery.hardState = state
        case .snapshot(let index, let term):
            if index >= recovery.snapshotIndex {
                recovery.snapshotIndex = index
                recovery.snapshotTerm = term
            }
        case .logReset(let index, let term):
            recovery.snapshotIndex = index
            recovery.snapshotTerm = term
            entries = []
        case .entry(let entry):
            if let first = entries.first, entry.index >= first.index, entry.index <= first.index + UInt64(entries.count)
            {
                // A later write of an index replaces it and everything after (a truncated conflict).
                entries.removeSubrange(Int(entry.index - first.index)...)
                entries.append(entry)
            } else {
                // The first entry, or a jump past entries a released segment covered: start afresh,
                // the final check verifies the result is contiguous with the snapshot.
                entries = [entry]
            }
        }
    }

    private func segmentSequences() throws(WALError) -> [UInt64] {
        var sequences: [UInt64] = []
        for name in try fileSystem.fileNames(in: directory) {
            guard name.hasPrefix("wal-"), name.hasSuffix(".log"), name.count == 24,
                let sequence = UInt64(name.dropFirst(4).dropLast(4), radix: 16)
            else { continue }
            sequences.append(sequence)
        }
        return sequences.sorted()
    }
}
