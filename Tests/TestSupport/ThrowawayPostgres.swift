import Foundation

/// A PostgreSQL 15 of the test's own: initdb into a temporary directory, started on a loopback
/// port from `TestPorts`, stopped by pid (SIGINT, PostgreSQL's fast shutdown) and deleted after.
/// PostgreSQL refuses to run as root, so as root it runs as the `postgres` user (setpriv execs,
/// so the pid is the postmaster's), exactly as `scripts/stack.sh` does. `startReplica` adds a
/// streaming replica of it (pg_basebackup), and `psql` runs administrative statements.
public struct ThrowawayPostgres: Sendable {
    public static let binaries = "/usr/lib/postgresql/15/bin"
    public static let password = "throwaway-test-password"
    public let directory: URL
    public let port: Int
    public let pid: Int32

    public var parameters: [(keyword: String, value: String)] {
        [
            ("host", "127.0.0.1"), ("port", String(port)), ("user", "postgres"), ("dbname", "postgres"),
            ("password", Self.password), ("connect_timeout", "5"),
        ]
    }

    public static func with<Result>(_ body: (ThrowawayPostgres) async throws -> Result) async throws -> Result {
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

    /// A fresh primary (`wal_level` is `replica` by default, and initdb's pg_hba.conf lets
    /// `postgres` replicate over 127.0.0.1 with its password).
    public static func start() async throws -> ThrowawayPostgres {
        let directory = try makeDirectory()
        try Data(password.utf8).write(to: directory.appendingPathComponent("pwfile"))
        try await own(directory)
        let data = directory.appendingPathComponent("data").path
        try await run(
            "\(binaries)/initdb",
            ["-D", data, "-U", "postgres", "--auth=scram-sha-256", "--pwfile=\(directory.path)/pwfile", "--no-sync"],
            asPostgres: true)
        let server = try await launch(directory)
        // It listens before it has finished starting ("the database system is starting up").
        do {
            try await server.waitUntilQueryable()
        } catch {
            await server.stop()
            throw error
        }
        return server
    }

    /// A streaming replica of this server: a base backup (fast checkpoint, `-R` writes the
    /// standby settings), started and queryable before this returns.
    public func startReplica() async throws -> ThrowawayPostgres {
        let directory = try Self.makeDirectory()
        try await Self.own(directory)
        let conninfo = "host=127.0.0.1 port=\(port) user=postgres password=\(Self.password)"
        try await Self.run(
            "\(Self.binaries)/pg_basebackup",
            [
                "-d", conninfo, "-D", directory.appendingPathComponent("data").path, "-R", "--checkpoint=fast",
                "--no-sync",
            ],
            asPostgres: true)
        let replica = try await Self.launch(directory)
        do {
            try await replica.waitUntilQueryable()
        } catch {
            await replica.stop()
            throw error
        }
        return replica
    }

    /// Until a query answers (a standby listens before it accepts connections).
    public func waitUntilQueryable(within seconds: Double = 60) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while (try? await psql("SELECT 1")) != "1" {
            guard Date() < deadline else { throw ThrowawayPostgresError("PostgreSQL on \(port) never answered") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Runs `sql` with psql as `postgres` and returns its unaligned, tuples-only output, trimmed.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") async throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("raftgate-psql-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        let process = try Self.launch(
            "\(Self.binaries)/psql",
            [
                "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", database, "-At", "-v", "ON_ERROR_STOP=1",
                "-c", sql,
            ],
            log: output, asPostgres: false, environment: ["PGPASSWORD": Self.password, "PGCONNECT_TIMEOUT": "5"])
        let status = await offThePool {
            process.waitUntilExit()
            return process.terminationStatus
        }
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        guard status == 0 else { throw ThrowawayPostgresError("psql on \(port) exited \(status): \(text)") }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public var isRunning: Bool { kill(pid, 0) == 0 }

    public func stop() async {
        kill(pid, SIGINT)
        let deadline = Date().addingTimeInterval(30)
        while kill(pid, 0) == 0, Date() < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }

    private static func makeDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "raftgate-pg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        return directory
    }

    private static func own(_ directory: URL) async throws {
        if getuid() == 0 {
            try await run("/usr/bin/chown", ["-R", "postgres:postgres", directory.path])
        }
    }

    private static func launch(_ directory: URL) async throws -> ThrowawayPostgres {
        let data = directory.appendingPathComponent("data").path
        let port = TestPorts.block()
        let process = try launch(
            "\(binaries)/postgres",
            [
                "-D", data, "-p", String(port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                "-c", "fsync=off",
            ],
            log: directory.appendingPathComponent("postgres.log"), asPostgres: true)
        let server = ThrowawayPostgres(directory: directory, port: port, pid: process.processIdentifier)
        // Ready once it accepts a TCP connection; PostgreSQL listens only after recovery.
        let deadline = Date().addingTimeInterval(60)
        while LoopbackSocket.connect(port: port).map({ close($0) }) == nil {
            guard Date() < deadline, process.isRunning else {
                await server.stop()
                throw ThrowawayPostgresError("PostgreSQL did not listen on \(port); log in \(directory.path)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return server
    }

    private static func command(_ path: String, _ arguments: [String], asPostgres: Bool) -> (String, [String]) {
        guard asPostgres, getuid() == 0 else { return (path, arguments) }
        return ("/usr/bin/setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", path] + arguments)
    }

    private static func launch(
        _ path: String, _ arguments: [String], log: URL, asPostgres: Bool, environment: [String: String] = [:]
    ) throws -> Process {
        let (executable, fullArguments) = command(path, arguments, asPostgres: asPostgres)
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = fullArguments
        process.standardOutput = output
        process.standardError = output
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
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

public struct ThrowawayPostgresError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
