import Foundation
import Patroni
import TestSupport

/// A PostgreSQL 15 of the test's own: initdb into a temporary directory, started on a loopback
/// port from `TestPorts`, stopped by pid (SIGINT, PostgreSQL's fast shutdown) and deleted after.
/// PostgreSQL refuses to run as root, so as root it runs as the `postgres` user (setpriv execs,
/// so the pid is the postmaster's), exactly as `scripts/stack.sh` does.
struct ThrowawayPostgres: Sendable {
    static let binaries = "/usr/lib/postgresql/15/bin"
    static let password = "throwaway-test-password"
    let directory: URL
    let port: Int
    let pid: Int32

    var parameters: [(keyword: String, value: String)] {
        [
            ("host", "127.0.0.1"), ("port", String(port)), ("user", "postgres"), ("dbname", "postgres"),
            ("password", Self.password), ("connect_timeout", "5"),
        ]
    }

    static func with<Result>(_ body: (ThrowawayPostgres) async throws -> Result) async throws -> Result {
        let server = try await start()
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    private static func start() async throws -> ThrowawayPostgres {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "raftgate-pg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        try Data(password.utf8).write(to: directory.appendingPathComponent("pwfile"))
        if getuid() == 0 {
            try await run("/usr/bin/chown", ["-R", "postgres:postgres", directory.path])
        }
        let data = directory.appendingPathComponent("data").path
        try await run(
            "\(binaries)/initdb",
            ["-D", data, "-U", "postgres", "--auth=scram-sha-256", "--pwfile=\(directory.path)/pwfile", "--no-sync"],
            asPostgres: true)
        let port = TestPorts.block()
        let process = try launch(
            "\(binaries)/postgres",
            [
                "-D", data, "-p", String(port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                "-c", "fsync=off",
            ],
            log: directory.appendingPathComponent("postgres.log"), asPostgres: true)
        let server = ThrowawayPostgres(directory: directory, port: port, pid: process.processIdentifier)
        // Ready once it lets us in: it listens while still starting up (refusing logins then).
        let deadline = Date().addingTimeInterval(60)
        let parameters = server.parameters
        while await !offThePool({ (try? PostgresConnection(parameters, deadline: .now + .seconds(5))) != nil }) {
            guard Date() < deadline, process.isRunning else {
                await server.stop()
                throw ThrowawayPostgresError("PostgreSQL did not listen on \(port); log in \(directory.path)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return server
    }

    func stop() async {
        kill(pid, SIGINT)
        let deadline = Date().addingTimeInterval(30)
        while kill(pid, 0) == 0, Date() < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }

    private static func command(_ path: String, _ arguments: [String], asPostgres: Bool) -> (String, [String]) {
        guard asPostgres, getuid() == 0 else { return (path, arguments) }
        return ("/usr/bin/setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", path] + arguments)
    }

    private static func launch(_ path: String, _ arguments: [String], log: URL, asPostgres: Bool) throws -> Process {
        let (executable, fullArguments) = command(path, arguments, asPostgres: asPostgres)
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = fullArguments
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return process
    }

    private static func run(_ path: String, _ arguments: [String], asPostgres: Bool = false) async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("raftgate-pg-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: log) }
        let process = try launch(path, arguments, log: log, asPostgres: asPostgres)
        let status = await offThePool {
            process.waitUntilExit()
            return process.terminationStatus
        }
        guard status == 0 else {
            let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw ThrowawayPostgresError("\(path) exited \(status): \(output)")
        }
    }
}

struct ThrowawayPostgresError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
