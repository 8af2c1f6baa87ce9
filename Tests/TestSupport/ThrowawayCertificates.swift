import Foundation

/// A CA and certificates signed by it, made by `scripts/make-certs.sh` (real openssl, as
/// `make start-cluster` uses) in a temporary directory of their own.
public struct ThrowawayCertificates: Sendable {
    public let directory: String

    /// The package root, found from this file.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// A new CA and, for each name, `<name>.pem` and `<name>.key` signed by it. Runs openssl in a
    /// child process, off the concurrency pool.
    public static func make(_ names: [String]) async throws -> ThrowawayCertificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "raftgate-certs-" + UUID().uuidString
        ).path
        let (status, errors) = await offThePool { () -> (Int32, String) in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = [packageRoot.appendingPathComponent("scripts/make-certs.sh").path, directory] + names
            process.standardOutput = FileHandle.nullDevice
            let errors = Pipe()
            process.standardError = errors
            do { try process.run() } catch { return (-1, "\(error)") }
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, text)
        }
        guard status == 0 else { throw CertificateError(status: status, output: errors) }
        return ThrowawayCertificates(directory: directory)
    }

    public struct CertificateError: Error {
        public var status: Int32
        public var output: String
    }

    public var ca: String { directory + "/ca.pem" }
    public func certificate(_ name: String) -> String { directory + "/\(name).pem" }
    public func key(_ name: String) -> String { directory + "/\(name).key" }

    public func remove() { try? FileManager.default.removeItem(atPath: directory) }
}
