import Foundation

/// Remembers, until the machine reboots, that a write or fsync to a data directory failed.
///
/// After a failed fsync Linux marks the pages it could not write clean and keeps them in the page
/// cache: a process restarted without a reboot reads back data that never reached the disk, and
/// a later fsync succeeds without writing it. The node would then acknowledge entries, or repeat a
/// vote, that a power loss can still take away. So a node that stopped on a storage error refuses
/// to start again on the same boot. The marker lives on tmpfs (`/dev/shm`), which a reboot clears
/// and which a failing or full data disk cannot stop us from writing.
package struct WriteFailureMarker: Sendable {
    package let path: String

    /// The marker for `dataDirectory`, under `root` (tmpfs by default).
    package init(dataDirectory: String, root: String = "/dev/shm") {
        let absolute = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
        // FNV-1a of the path: a stable, file-name-safe name per data directory.
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in absolute.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        path = root + "/raftgate-" + String(hash, radix: 16) + ".write-failed"
    }

    /// Records the failure (best effort: tmpfs is not the failing disk).
    package func record(_ reason: String) {
        FileManager.default.createFile(atPath: path, contents: Data(reason.utf8))
    }

    /// Throws when a storage failure was recorded since this machine booted.
    package func check(dataDirectory: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        let reason = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "unknown"
        throw WriteFailureMarker.Refused(
            message: """
                a write to \(dataDirectory) failed since this machine booted (\(reason)): the page cache \
                may still show data that never reached the disk, and starting now could acknowledge it \
                again. Reboot the machine first (a reboot clears \(path)), or, once the disk is known \
                to be good and its data intact, delete \(path).
                """)
    }

    package struct Refused: Error, CustomStringConvertible {
        package var message: String
        package var description: String { message }
    }
}
