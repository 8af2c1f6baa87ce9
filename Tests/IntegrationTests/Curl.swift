import Foundation
import TestSupport

/// The real curl, as a user would run it against an HTTPS node (`--cacert`, `--cert`), in a child
/// process off the concurrency pool.
enum Curl {
    struct Answer {
        /// curl's exit code: 0 when a response came, 60 for a certificate it does not trust, 35/56
        /// for a TLS handshake the server refused, 52 for an empty reply.
        var exitCode: Int32
        /// The HTTP status, or nil when there was no response.
        var status: Int?
        var body: String
    }

    static var available: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") }

    static func run(_ arguments: [String]) async -> Answer {
        await offThePool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            let marker = "\n--raftgate-status:"
            process.arguments = ["-s", "--max-time", "10", "-w", marker + "%{http_code}"] + arguments
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            do { try process.run() } catch { return Answer(exitCode: -1, status: nil, body: "") }
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            let text = String(decoding: data, as: UTF8.self)
            let parts = text.components(separatedBy: marker)
            let code = parts.count > 1 ? Int(parts[parts.count - 1]) : nil
            return Answer(
                exitCode: process.terminationStatus, status: code == 0 ? nil : code,
                body: parts.dropLast().joined(separator: marker))
        }
    }
}
