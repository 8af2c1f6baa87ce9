#if canImport(Glibc)
    import Glibc
#endif

/// A failed file-system call; each store turns it into its own error type.
struct FileFailure: Error {
    var operation: String
    var path: String
    var code: Int32
}

/// `mkdir -p`: creates `path` and any missing parents. Returns 0, or the errno of the failure.
func makeDirectories(_ path: String) -> Int32 {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/") {
        prefix += component
        if mkdir(prefix, 0o755) != 0 && errno != EEXIST { return errno }
        prefix += "/"
    }
    return 0
}

/// Writes all of `bytes` to `descriptor`, retrying short writes and interruptions.
func writeAll(_ bytes: [UInt8], to descriptor: Int32, path: String) throws(FileFailure) {
    var written = 0
    while written < bytes.count {
        let result = bytes.withUnsafeBytes { raw in write(descriptor, raw.baseAddress! + written, raw.count - written) }
        if result < 0 {
            if errno == EINTR { continue }
            throw FileFailure(operation: "write", path: path, code: errno)
        }
        written += result
    }
}

/// fsyncs a directory, so a file created or renamed in it survives a crash.
func syncDirectory(_ path: String) throws(FileFailure) {
    let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard descriptor >= 0 else { throw FileFailure(operation: "open", path: path, code: errno) }
    defer { _ = close(descriptor) }
    guard fsync(descriptor) == 0 else { throw FileFailure(operation: "fsync", path: path, code: errno) }
}

/// The names in a directory (including "." and "..").
func directoryNames(_ path: String) throws(FileFailure) -> [String] {
    guard let handle = opendir(path) else { throw FileFailure(operation: "opendir", path: path, code: errno) }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
        names.append(
            withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            })
    }
    return names
}

extension WALError {
    init(_ failure: FileFailure) { self = .io(operation: failure.operation, path: failure.path, errno: failure.code) }
}

extension SnapshotStoreError {
    init(_ failure: FileFailure) { self = .io(operation: failure.operation, path: failure.path, errno: failure.code) }
}
