/// The file operations the write-ahead log makes, and nothing more: the seam that lets the same
/// log run on the real disk (`POSIXFileSystem`, the default) or on a simulated one that loses
/// and tears unsynced writes and fails fsyncs on demand.
///
/// The contract is POSIX's: an `append` or `truncate` may be lost in a crash until `sync` of its
/// file returns; a created or removed name may be lost until `syncDirectory` of its directory
/// returns. A `sync` that throws leaves nothing of what it covered durable, and a later `sync`
/// that succeeds does not make it durable either (Linux marks the failed pages clean), so the
/// log treats a failed `sync` as the end of its life.
///
/// Calls are made by one owner at a time (the log is not thread-safe), hence no `Sendable`.
public protocol WALFileSystem {
    /// Creates `path` and any missing parents (`mkdir -p`); durable at once.
    func makeDirectories(_ path: String) throws(WALError)
    /// The names of the entries of a directory, without "." and "..", in no particular order.
    func fileNames(in directory: String) throws(WALError) -> [String]
    /// The whole content of a file as reads see it now.
    func readFile(_ path: String) throws(WALError) -> [UInt8]
    /// Opens a file for appending, creating it empty if it does not exist.
    func openForAppending(_ path: String) throws(WALError) -> WALFileHandle
    /// Appends all of `bytes` at the end of the file.
    func append(_ bytes: [UInt8], to file: WALFileHandle) throws(WALError)
    /// Cuts the file to `length` bytes.
    func truncate(_ file: WALFileHandle, to length: Int) throws(WALError)
    /// Makes everything written to the file so far durable (fsync).
    func sync(_ file: WALFileHandle) throws(WALError)
    func close(_ file: WALFileHandle)
    func remove(_ path: String) throws(WALError)
    /// Makes the creations and removals of names in `directory` durable.
    func syncDirectory(_ directory: String) throws(WALError)
}

/// An open file of a `WALFileSystem`: a descriptor on the real disk, a number in a simulated one.
public struct WALFileHandle: Sendable, Hashable {
    public var descriptor: Int32
    /// For error messages.
    public var path: String

    public init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }
}
