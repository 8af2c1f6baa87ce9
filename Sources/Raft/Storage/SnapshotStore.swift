import CLZ4

#if canImport(Glibc)
    import Glibc
#endif

public enum SnapshotStoreError: Error, Hashable, CustomStringConvertible {
    case corrupt(file: String, reason: String)
    case tooLarge(bytes: Int)
    case io(operation: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case .corrupt(let file, let reason): "snapshot \(file) is corrupt: \(reason)"
        case .tooLarge(let bytes): "snapshot of \(bytes) bytes exceeds the LZ4 block limit"
        case .io(let operation, let path, let code): "snapshot \(operation) \(path) failed: errno \(code)"
        }
    }
}

/// Snapshot files in the data directory, LZ4-compressed and checksummed.
///
/// A snapshot is written to a temporary file, fsync'ed, renamed into place and the directory
/// fsync'ed, so a crash leaves either the old set of snapshots or the new one — never a half
/// file under a final name. File layout (`snapshot-<index>-<term>.snap`, hex):
///
///     "RGSN" | u8 version (1) | u64 body length | u32 CRC-32C of body | body
///     body = u64 index | u64 term | u32 #voters | voters… | u32 #learners | learners…
///            | u64 raw data length | LZ4 block of the data
///
/// Not thread-safe: one owner uses it.
public struct SnapshotStore {
    public let directory: String
    /// How many snapshots to keep (the newest, plus older ones as a fallback for an operator).
    public var retain = 2
    static let magic: [UInt8] = Array("RGSN".utf8)

    public init(directory: String) throws {
        self.directory = directory
        let failure = makeDirectories(directory)
        guard failure == 0 else { throw SnapshotStoreError.io(operation: "mkdir", path: directory, errno: failure) }
    }

    /// Writes `snapshot` durably and prunes older ones beyond `retain`.
    public func save(_ snapshot: Snapshot) throws {
        let raw = snapshot.data
        guard raw.count <= Int(LZ4_MAX_INPUT_SIZE) else { throw SnapshotStoreError.tooLarge(bytes: raw.count) }
        var body: [UInt8] = []
        let metadata = snapshot.metadata
        metadata.encode(into: &body)
        body.appendLittleEndian(UInt64(raw.count))
        let bound = Int(LZ4_compressBound(Int32(raw.count)))
        let headerCount = body.count
        body += [UInt8](repeating: 0, count: bound)
        let compressed = raw.withUnsafeBytes { source in
            body.withUnsafeMutableBytes { destination in
                LZ4_compress_default(
                    source.baseAddress?.assumingMemoryBound(to: CChar.self),
                    (destination.baseAddress! + headerCount).assumingMemoryBound(to: CChar.self),
                    Int32(raw.count), Int32(bound))
            }
        }
        guard compressed > 0 || raw.isEmpty else { throw SnapshotStoreError.tooLarge(bytes: raw.count) }
        body.removeSubrange((headerCount + Int(compressed))...)
        var file = Self.magic + [1]
        file.appendLittleEndian(UInt64(body.count))
        file.appendLittleEndian(CRC32C.checksum(body))
        file += body

        let name = Self.fileName(index: metadata.index, term: metadata.term)
        let temporary = directory + "/" + name + ".tmp"
        let final = directory + "/" + name
        try Self.writeDurably(file, to: temporary)
        guard rename(temporary, final) == 0 else {
            throw SnapshotStoreError.io(operation: "rename", path: final, errno: errno)
        }
        try syncDirectory()
        for stale in try snapshotFiles().dropFirst(max(1, retain)) { unlink(directory + "/" + stale.name) }
    }

    /// The newest snapshot on disk, or nil if there is none. A corrupt newest snapshot is an error
    /// (naming the file), not a silent fallback: the log may already be compacted behind it.
    /// Leftover temporary files of an interrupted save are removed.
    ///
    /// What it returns is made durable first — the file and its name in the directory. A process
    /// killed between a save's rename and its directory fsync leaves the new name only in the
    /// page cache; the node would then write log records that refer to this snapshot, and a power
    /// loss could take the snapshot away from under them.
    public func loadLatest() throws -> Snapshot? {
        for name in try directoryNames() where name.hasSuffix(".snap.tmp") { unlink(directory + "/" + name) }
        guard let newest = try snapshotFiles().first else { return nil }
        let path = directory + "/" + newest.name
        let snapshot = try load(path)
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw SnapshotStoreError.io(operation: "open", path: path, errno: errno) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw SnapshotStoreError.io(operation: "fsync", path: path, errno: errno) }
        try syncDirectory()
        return snapshot
    }

    public func load(_ path: String) throws -> Snapshot {
        let bytes = try POSIXFileSystem().readFile(path)
        func corrupt(_ reason: String) -> SnapshotStoreError { .corrupt(file: path, reason: reason) }
        guard bytes.count >= 17, Array(bytes[0..<4]) == Self.magic else { throw corrupt("missing header") }
        guard bytes[4] == 1 else { throw corrupt("unsupported version \(bytes[4])") }
        var header = ByteReader(bytes[5..<17])
        let bodyLength = header.uint64()!
        let checksum = header.uint32()!
        guard bodyLength == UInt64(bytes.count - 17) else {
            throw corrupt("length \(bodyLength) but \(bytes.count - 17) bytes present")
        }
        let body = bytes[17...]
        guard CRC32C.checksum(body) == checksum else { throw corrupt("checksum mismatch") }
        var reader = ByteReader(body)
        guard let index = reader.uint64(), let term = reader.uint64(), let voterCount = reader.uint32(),
            Int(voterCount) <= reader.rest.count / 8
        else { throw corrupt("metadata") }
        let voters = (0..<voterCount).compactMap { _ in reader.uint64() }
        guard let learnerCount = reader.uint32(), Int(learnerCount) <= reader.rest.count / 8 else {
            throw corrupt("metadata")
        }
        let learners = (0..<learnerCount).compactMap { _ in reader.uint64() }
        guard let rawLength = reader.uint64(), rawLength <= UInt64(LZ4_MAX_INPUT_SIZE) else {
            throw corrupt("data length")
        }
        let compressed = Array(reader.rest)
        var data = [UInt8](repeating: 0, count: Int(rawLength))
        let produced = compressed.withUnsafeBytes { source in
            data.withUnsafeMutableBytes { destination in
                LZ4_decompress_safe(
                    source.baseAddress?.assumingMemoryBound(to: CChar.self),
                    destination.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(compressed.count),
                    Int32(rawLength))
            }
        }
        guard produced == Int32(rawLength) else { throw corrupt("LZ4 data does not decompress to \(rawLength) bytes") }
        return Snapshot(
            metadata: SnapshotMetadata(
                index: index, term: term, configuration: ClusterConfiguration(voters: voters, learners: learners)),
            data: data)
    }

    static func fileName(index: UInt64, term: UInt64) -> String {
        func hex(_ value: UInt64) -> String {
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
        }
        return "snapshot-\(hex(index))-\(hex(term)).snap"
    }

    /// Final snapshot files, newest (highest index) first.
    func snapshotFiles() throws -> [(name: String, index: UInt64)] {
        try directoryNames().compactMap { name -> (String, UInt64)? in
            guard name.hasPrefix("snapshot-"), name.hasSuffix(".snap"), name.count == 47,
                let index = UInt64(name.dropFirst(9).prefix(16), radix: 16)
            else { return nil }
            return (name, index)
        }.sorted { $0.1 > $1.1 }
    }

    private func directoryNames() throws -> [String] {
        do { return try Raft.directoryNames(directory) } catch { throw SnapshotStoreError(error) }
    }

    private static func writeDurably(_ bytes: [UInt8], to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw SnapshotStoreError.io(operation: "create", path: path, errno: errno) }
        defer { close(descriptor) }
        do { try writeAll(bytes, to: descriptor, path: path) } catch { throw SnapshotStoreError(error) }
        guard fsync(descriptor) == 0 else { throw SnapshotStoreError.io(operation: "fsync", path: path, errno: errno) }
    }

    private func syncDirectory() throws {
        do { try Raft.syncDirectory(directory) } catch { throw SnapshotStoreError(error) }
    }
}
