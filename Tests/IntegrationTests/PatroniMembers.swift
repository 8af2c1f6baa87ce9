import Foundation
import TestSupport

/// Real Patroni 3.0.2 members (Debian's `/usr/bin/patroni`) managing real PostgreSQL 15, on
/// loopback ports the caller hands out, their data under `root`, stopped by pid. As root (CI),
/// Patroni — and so PostgreSQL — runs as `postgres` through setpriv, which execs, so the recorded
/// pid is Patroni's own (as `scripts/stack.sh` does).
final class PatroniMembers {
    static let patroni = "/usr/bin/patroni"
    static let postgresBinaries = "/usr/lib/postgresql/15/bin"
    static var available: Bool {
        FileManager.default.isExecutableFile(atPath: patroni)
            && FileManager.default.isExecutableFile(atPath: postgresBinaries + "/postgres")
    }

    /// The etcd API's credentials (the gateways' `--etcd-password`; a DCS without authentication
    /// answers "not enabled" and Patroni goes on without a token).
    static let etcdUser = "patroni"
    static let etcdPassword = "ha-test-etcd-password"
    static let gatewayArguments = ["--etcd-user", etcdUser, "--etcd-password", etcdPassword]

    let root: String
    /// `etcd3: hosts:` — the DCS every member talks to.
    let dcsHosts: [String]
    let restPort: (Int) -> Int
    let postgresPort: (Int) -> Int
    let scope: String
    private(set) var processes: [Int: Process] = [:]

    init(
        root: String, dcsHosts: [String], scope: String, restPort: @escaping (Int) -> Int,
        postgresPort: @escaping (Int) -> Int
    ) {
        self.root = root
        self.dcsHosts = dcsHosts
        self.scope = scope
        self.restPort = restPort
        self.postgresPort = postgresPort
    }

    func directory(_ id: Int) -> String { root + "/\(scope)-pg\(id)" }

    /// The same settings as examples/full-stack (ttl 10, loop_wait 2, retry_timeout 4), without
    /// synchronous mode and with fsync off: tests measure the DCS, not the disk.
    func configuration(_ id: Int) -> String {
        let directory = directory(id)
        return """
            scope: \(scope)
            namespace: /service/
            name: pg\(id)
            restapi:
              listen: 127.0.0.1:\(restPort(id))
              connect_address: 127.0.0.1:\(restPort(id))
            etcd3:
              hosts: \(dcsHosts.joined(separator: ","))
              username: \(Self.etcdUser)
              password: \(Self.etcdPassword)
            log:
              level: INFO
            bootstrap:
              dcs:
                ttl: 10
                loop_wait: 2
                retry_timeout: 4
                maximum_lag_on_failover: 1048576
                postgresql:
                  use_pg_rewind: true
                  parameters:
                    wal_level: replica
                    hot_standby: "on"
                    wal_log_hints: "on"
                    max_wal_senders: 10
                    fsync: "off"
              initdb:
                - encoding: UTF8
                - locale: C
              pg_hba:
                - host replication replicator 127.0.0.1/32 scram-sha-256
                - host all all 127.0.0.1/32 scram-sha-256
            postgresql:
              listen: 127.0.0.1:\(postgresPort(id))
              connect_address: 127.0.0.1:\(postgresPort(id))
              data_dir: \(directory)/data
              bin_dir: \(Self.postgresBinaries)
              pgpass: \(directory)/pgpass
              remove_data_directory_on_rewind_failure: true
              remove_data_directory_on_diverged_timelines: true
              authentication:
                superuser:
                  username: postgres
                  password: test-postgres
                replication:
                  username: replicator
                  password: test-replicator
                rewind:
                  username: rewinder
                  password: test-rewinder
              parameters:
                unix_socket_directories: ""
            """
    }

    func start(_ id: Int) throws {
        let directory = directory(id)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try configuration(id).write(toFile: directory + "/patroni.yml", atomically: true, encoding: .utf8)
        chmod(directory, 0o700)
        let asRoot = getuid() == 0
        if asRoot {
            chmod(root, 0o755)
            let chown = Process()
            chown.executableURL = URL(fileURLWithPath: "/usr/bin/chown")
            chown.arguments = ["-R", "postgres:postgres", directory]
            try chown.run()
            chown.waitUntilExit()
        }
        let command = [
            "/usr/bin/env", "HOME=\(directory)", "PATH=\(Self.postgresBinaries):/usr/bin:/bin", Self.patroni,
            directory + "/patroni.yml",
        ]
        let process = Process()
        if asRoot {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + command
        } else {
            process.executableURL = URL(fileURLWithPath: command[0])
            process.arguments = Array(command.dropFirst())
        }
        let log = root + "/\(scope)-patroni\(id).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        LeftoverProcesses.record(child: process.processIdentifier, in: root)
        processes[id] = process
    }

    /// The postmaster a member started, from its pid file, if it is alive.
    func postmaster(_ id: Int) -> Int32? {
        guard let text = try? String(contentsOfFile: directory(id) + "/data/postmaster.pid", encoding: .utf8),
            let line = text.split(separator: "\n").first, let pid = Int32(line), kill(pid, 0) == 0
        else { return nil }
        return pid
    }

    /// SIGKILL, Patroni and its PostgreSQL both, as a crashed machine would go.
    func crash(_ id: Int) {
        let postmaster = postmaster(id)
        if let process = processes[id], process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        if let postmaster { kill(postmaster, SIGKILL) }
    }

    func stopAll() {
        for id in processes.keys.sorted() {
            let postmaster = postmaster(id)
            if let process = processes[id], process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            // Immediate shutdown takes the backends with it.
            if let postmaster {
                kill(postmaster, SIGQUIT)
                let deadline = Date().addingTimeInterval(10)
                while kill(postmaster, 0) == 0, Date() < deadline { usleep(50_000) }
                if kill(postmaster, 0) == 0 { kill(postmaster, SIGKILL) }
            }
        }
    }

    /// The status Patroni's REST API answers for `path` (0 when it does not answer).
    func status(_ id: Int, _ path: String) async -> Int {
        await HTTP.request("GET", "http://127.0.0.1:\(restPort(id))\(path)").status
    }

    /// Members whose Patroni says they are the primary (read-write and holding the leader key).
    func primaries(among ids: [Int]) async -> [Int] {
        var found: [Int] = []
        for id in ids where await status(id, "/primary") == 200 { found.append(id) }
        return found
    }

    func log(_ id: Int) -> String {
        (try? String(contentsOfFile: root + "/\(scope)-patroni\(id).log", encoding: .utf8)) ?? ""
    }
}
