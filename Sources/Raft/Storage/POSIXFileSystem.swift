#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The real disk, through plain POSIX calls: what the write-ahead log uses unless told otherwise.
public struct POSIXFileSystem: WALFileSystem, Sendable {
    public init() {}

    public func makeDirectories(_ path: String) throws(WALError) {
        let failure = Raft.makeDirectories(path)
        guard failure == 0 else { throw .io(operation: "mkdir", path: path, errno: failure) }
    }

    public func fileNames(in directory: String) throws(WALError) -> [String] {
        do { return try directoryNames(directory).filter { $0 != "." && $0 != ".." } } catch { throw WALError(error) }
    }

    public func readFile(_ path: String) throws(WALError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        defer { _ = Glibc.close(descriptor) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "read", path: path, errno: errno)
            }
            if count == 0 { break }
            result.append(contentsOf: chunk[0..<count])
        }
        return result
    }

    public func openForAppending(_ path: String) throws(WALError) -> WALFileHandle {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .io(operation: "create", path: path, errno: errno) }
        return WALFileHandle(descriptor: descriptor, path: path)
    }

    public func append(_ bytes: [UInt8], to file: WALFileHandle) throws(WALError) {
        do { try writeAll(bytes, to: file.descriptor, path: file.path) } catch { throw WALError(error) }
    }

    public func truncate(_ file: WALFileHandle, to length: Int) throws(WALError) {
        guard ftruncate(file.descriptor, off_t(length)) == 0 else {
            throw .io(operation: "truncate", path: file.path, errno: errno)
        }
    }

    public func sync(_ file: WALFileHandle) throws(WALError) {
        guard fsync(file.descriptor) == 0 else { throw .io(operation: "fsync", path: file.path, errno: errno) }
    }

    public func close(_ file: WALFileHandle) {
        _ = Glibc.close(file.descriptor)
    }

    public func remove(_ path: String) throws(WALError) {
        guard unlink(path) == 0 else { throw .io(operation: "unlink", path: path, errno: errno) }
    }

    public func syncDirectory(_ directory: String) throws(WALError) {
        do { try Raft.syncDirectory(directory) } catch { throw WALError(error) }
    }
}
