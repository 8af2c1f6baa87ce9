import Foundation

/// What a crashed test run leaves behind, found and stopped by pid on the next run.
///
/// `ProcessCluster` stops its processes in a `defer`, which a crash of the test process skips;
/// the orphans keep their ports and data directories, and the next run's clusters fail to bind.
/// Each cluster therefore notes the test process's pid (`owner`) and every child's pid (`pids/`)
/// in its directory. A pid is only signalled while its command line still names that directory,
/// so a pid the kernel has since given to another program is left alone.
enum LeftoverProcesses {
    static let directoryPrefix = "procs-"

    /// Once per test process, before its first cluster starts.
    static let reaped: Void = reap()

    static func record(owner root: String) {
        try? FileManager.default.createDirectory(atPath: root + "/pids", withIntermediateDirectories: true)
        try? "\(getpid())".write(toFile: root + "/owner", atomically: true, encoding: .utf8)
    }

    static func record(child pid: Int32, in root: String) {
        FileManager.default.createFile(atPath: root + "/pids/\(pid)", contents: nil)
    }

    private static func reap() {
        let temporary = FileManager.default.temporaryDirectory.path
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? []
        for entry in entries where entry.hasPrefix(directoryPrefix) {
            let root = temporary + "/" + entry
            guard let owner = read(root + "/owner").flatMap({ Int32($0) }), !isRunning(owner) else { continue }
            for child in (try? FileManager.default.contentsOfDirectory(atPath: root + "/pids")) ?? [] {
                guard let pid = Int32(child), read("/proc/\(pid)/cmdline")?.contains(root) == true else { continue }
                kill(pid, SIGKILL)
            }
            if ProcessInfo.processInfo.environment["RAFTGATE_TEST_KEEP_DIRS"] == nil {
                try? FileManager.default.removeItem(atPath: root)
            }
        }
    }

    private static func isRunning(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }

    private static func read(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.readToEnd() else { return nil }
        try? handle.close()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
