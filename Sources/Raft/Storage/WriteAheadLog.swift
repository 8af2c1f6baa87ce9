#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

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
/// Recovery: a record cut short at the very end of the newest segment (a write torn by a crash)
/// is truncated away and reported; a bad record anywhere else stops the open with the file and
/// offset, because skipping it could silently lose acknowledged data.
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
    private var segments: [Segment] = []
    private var descriptor: Int32 = -1
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
    public static func open(directory: String, options: Options = Options()) throws -> (WriteAheadLog, WALRecovery) {
        let log = WriteAheadLog(directory: directory, options: options)
        let recovery = try log.recover()
        return (log, recovery)
    }

    private init(directory: String, options: Options) {
        self.directory = directory
        self.options = options
    }

    deinit {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
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

    /// Writes everything buffered and fsyncs it: the moment it becomes durable.
    public func sync() throws {
        guard !buffer.isEmpty else { return }
        do { try writeAll(buffer, to: descriptor, path: currentPath) } catch { throw WALError(error) }
        guard fsync(descriptor) == 0 else { throw WALError.io(operation: "fsync", path: currentPath, errno: errno) }
        fsyncCount += 1
        segments[segments.count - 1].bytes += buffer.count
        buffer.removeAll(keepingCapacity: true)
        if !startingSegment && segments[segments.count - 1].bytes >= options.segmentBytes { try startSegment() }
    }

    /// Deletes whole segments whose entries are all covered by a snapshot at `index`. The newest
    /// segment always stays, and every segment begins with the hard state and snapshot marker,
    /// so nothing the remaining segments need is lost.
    public func releaseSegments(coveredBy index: UInt64) throws {
        while segments.count > 1, segments[0].lastEntryIndex <= index {
            guard unlink(segments[0].path) == 0 else {
                throw WALError.io(operation: "unlink", path: segments[0].path, errno: errno)
            }
            segments.removeFirst()
        }
        try syncDirectory()
    }

    public var segmentPaths: [String] { segments.map(\.path) }
    private var currentPath: String { segments.last?.path ?? directory }

    /// Closes the current segment and starts the next, beginning with the state replay needs.
    private func startSegment() throws {
        startingSegment = true
        defer { startingSegment = false }
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        let sequence = (segments.last?.sequence ?? 0) + 1
        let path = Self.segmentPath(directory: directory, sequence: sequence)
        descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw WALError.io(operation: "create", path: path, errno: errno) }
        segments.append(Segment(sequence: sequence, path: path, bytes: 0, lastEntryIndex: 0))
        try syncDirectory()
        var header: [UInt8] = []
        WALRecord.snapshot(index: snapshotIndex, term: snapshotTerm).encode(into: &header)
        WALRecord.hardState(lastHardState).encode(into: &header)
        let pending = buffer
        buffer = header
        try sync()
        buffer = pending
    }

    private func syncDirectory() throws {
        do { try Raft.syncDirectory(directory) } catch { throw WALError(error) }
    }

    static func segmentPath(directory: String, sequence: UInt64) -> String {
        let hex = String(sequence, radix: 16)
        return directory + "/wal-" + String(repeating: "0", count: max(0, 16 - hex.count)) + hex + ".log"
    }

    // MARK: Recovery

    private func recover() throws -> WALRecovery {
        let failure = makeDirectories(directory)
        guard failure == 0 else { throw WALError.io(operation: "mkdir", path: directory, errno: failure) }
        let sequences = try Self.segmentSequences(in: directory)
        var recovery = WALRecovery()
        var entries: [LogEntry] = []
        for (position, sequence) in sequences.enumerated() {
            let path = Self.segmentPath(directory: directory, sequence: sequence)
            let bytes = try Self.readFile(path)
            var offset = 0
            var lastEntryIndex: UInt64 = 0
            while offset < bytes.count {
                let isNewest = position == sequences.count - 1
                switch Self.parseRecord(bytes, at: offset) {
                case .record(let record, let next):
                    try apply(record, to: &recovery, entries: &entries, file: path, offset: offset)
                    if case .entry(let entry) = record { lastEntryIndex = max(lastEntryIndex, entry.index) }
                    offset = next
                case .torn(let reason), .corrupt(let reason):
                    // A crash can only interrupt the last write of the newest segment: a bad record
                    // there with nothing valid after it is a torn write. Anything else — another
                    // segment, or valid records after the bad one — is damage to acknowledged data.
                    guard isNewest, !Self.hasValidRecord(in: bytes, after: offset) else {
                        throw WALError.corrupt(file: path, offset: offset, reason: reason)
                    }
                    guard truncate(path, off_t(offset)) == 0 else {
                        throw WALError.io(operation: "truncate", path: path, errno: errno)
                    }
                    recovery.truncatedTail = WALRecovery.TornTail(
                        file: path, offset: offset, bytes: bytes.count - offset, reason: reason)
                    offset = bytes.count
                }
            }
            let kept = recovery.truncatedTail?.file == path ? recovery.truncatedTail!.offset : bytes.count
            segments.append(Segment(sequence: sequence, path: path, bytes: kept, lastEntryIndex: lastEntryIndex))
        }
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

    enum Parsed {
        case record(WALRecord, next: Int)
        /// Cut short or unreadable at the end of the data.
        case torn(String)
        case corrupt(String)
    }

    /// Reads the record at `offset`. A record that runs past the end of the data, or the last
    /// record of the data failing its checksum, is torn; a bad record followed by more data is corrupt.
    static func parseRecord(_ bytes: [UInt8], at offset: Int) -> Parsed {
        let available = bytes.count - offset
        guard available >= WALRecord.headerBytes else { return .torn("header cut short") }
        var reader = ByteReader(bytes[offset..<offset + WALRecord.headerBytes])
        let length = Int(reader.uint32()!)
        let checksum = reader.uint32()!
        if length == 0 && bytes[offset...].allSatisfy({ $0 == 0 }) {
            // The file was extended but the data never reached the disk before the crash.
            return .torn("zero-filled tail")
        }
        guard length > 0, length <= WALRecord.maxBodyBytes else {
            return length > available
                ? .torn("length \(length) runs past the end") : .corrupt("impossible record length \(length)")
        }
        let end = offset + WALRecord.headerBytes + length
        guard end <= bytes.count else { return .torn("record cut short") }
        let body = bytes[(offset + WALRecord.headerBytes)..<end]
        guard CRC32C.checksum(body) == checksum else {
            return end == bytes.count ? .torn("checksum mismatch in the last record") : .corrupt("checksum mismatch")
        }
        guard let record = WALRecord(body: body) else { return .corrupt("unknown record layout") }
        return .record(record, next: end)
    }

    /// Whether any well-formed record (plausible length, matching checksum) starts after `offset`.
    static func hasValidRecord(in bytes: [UInt8], after offset: Int) -> Bool {
        var candidate = offset + 1
        while candidate + WALRecord.headerBytes < bytes.count {
            if case .record = parseRecord(bytes, at: candidate) { return true }
            candidate += 1
        }
        return false
    }

    static func segmentSequences(in directory: String) throws -> [UInt64] {
        let names: [String]
        do { names = try directoryNames(directory) } catch { throw WALError(error) }
        var sequences: [UInt64] = []
        for name in names {
            guard name.hasPrefix("wal-"), name.hasSuffix(".log"), name.count == 24,
                let sequence = UInt64(name.dropFirst(4).dropLast(4), radix: 16)
            else { continue }
            sequences.append(sequence)
        }
        return sequences.sorted()
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw WALError.io(operation: "open", path: path, errno: errno) }
        defer { _ = Glibc.close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw WALError.io(operation: "read", path: path, errno: errno)
            }
            if count == 0 { break }
            result.append(contentsOf: chunk[0..<count])
        }
        return result
    }
}
