import Foundation
import Synchronization
import TestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A real Patroni cluster for the HA tests: one etcd (Patroni's DCS) and three PostgreSQL 15
/// members, each under its own Patroni, rendered from `examples/full-stack/patroni.yml.in`
/// (synchronous mode on, ttl 10 s, loop_wait 2 s) onto ports of a `TestPorts` block, data under a
/// temporary directory. Every process is started and stopped by pid. PostgreSQL refuses root, so
/// as root Patroni runs as `postgres` through setpriv (which execs: the pid is Patroni's own), as
/// `scripts/stack.sh` does.
final class PatroniCluster {
    static let pgBin = "/usr/lib/postgresql/15/bin"
    static let password = "change-me-example-postgres"
    static let members = [1, 2, 3]
    let root = FileManager.default.temporaryDirectory.appendingPathComponent(
        LeftoverProcesses.directoryPrefix + "patroni-" + UUID().uuidString
    ).path
    let base = TestPorts.block()
    private(set) var patroni: [Int: Process] = [:]
    private var etcd: Process?

    var etcdClient: Int { base + 1 }
    var etcdPeer: Int { base + 2 }
    func pgPort(_ id: Int) -> Int { base + 10 + id }
    func apiPort(_ id: Int) -> Int { base + 20 + id }
    func name(_ id: Int) -> String { "pg\(id)" }
    func directory(_ id: Int) -> String { root + "/pg\(id)" }
    func config(_ id: Int) -> String { directory(id) + "/patroni.yml" }

    static var available: Bool {
        ["/usr/bin/patroni", "/usr/bin/etcd", "/usr/bin/patronictl", pgBin + "/postgres"].allSatisfy {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    init() throws {
        LeftoverProcesses.reaped
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        LeftoverProcesses.record(owner: root)
    }

    func startEtcd() throws {
        let process = try launch(
            "/usr/bin/etcd",
            [
                "--name", "e1", "--data-dir", root + "/etcd", "--listen-client-urls", "http://127.0.0.1:\(etcdClient)",
                "--advertise-client-urls", "http://127.0.0.1:\(etcdClient)",
                "--listen-peer-urls", "http://127.0.0.1:\(etcdPeer)",
                "--initial-advertise-peer-urls", "http://127.0.0.1:\(etcdPeer)",
                "--initial-cluster", "e1=http://127.0.0.1:\(etcdPeer)", "--initial-cluster-state", "new",
                "--log-level", "warn",
            ], log: root + "/etcd.log", asPostgres: false)
        etcd = process
    }

    /// Renders the member's patroni.yml and starts its Patroni.
    func startMember(_ id: Int) throws {
        let dir = directory(id)
        try FileManager.default.createDirectory(atPath: dir + "/log", withIntermediateDirectories: true)
        let template = ProcessCluster.packageRoot.appendingPathComponent("examples/full-stack/patroni.yml.in")
        var text = try String(contentsOf: template, encoding: .utf8)
        text = text.replacingOccurrences(of: "@NAME@", with: name(id))
            .replacingOccurrences(of: "@API_PORT@", with: "\(apiPort(id))")
            .replacingOccurrences(of: "@PG_PORT@", with: "\(pgPort(id))")
            .replacingOccurrences(of: "@DIR@", with: dir)
            // Its own etcd, without authentication: etcd answers the template's login "not enabled"
            // and Patroni goes on without a token.
            .replacingOccurrences(of: "@DCS_HOSTS@", with: "127.0.0.1:\(etcdClient)")
            .replacingOccurrences(of: "@ETCD_PASSWORD@", with: "unused-without-etcd-authentication")
            // The test's own scope, so two runs' members can never share a cluster.
            .replacingOccurrences(of: "scope: raftgate-pg", with: "scope: raftgate-ha-\(base)")
        try text.write(toFile: config(id), atomically: true, encoding: .utf8)
        if getuid() == 0 {
            try run("/usr/bin/chown", ["-R", "postgres:postgres", dir])
        }
        chmod(dir, 0o700)
        patroni[id] = try launch(
            "/usr/bin/env",
            ["HOME=\(dir)", "PATH=\(Self.pgBin):/usr/bin:/bin", "/usr/bin/patroni", config(id)],
            log: root + "/patroni\(id).log", asPostgres: true)
    }

    /// The member Patroni's own REST API says is primary (200 on `/primary`), if any.
    func primary() async -> Int? {
        for id in Self.members where patroni[id] != nil {
            if await HTTP.request("GET", "http://127.0.0.1:\(apiPort(id))/primary").status == 200 { return id }
        }
        return nil
    }

    func isRunningReplica(_ id: Int) async -> Bool {
        await HTTP.request("GET", "http://127.0.0.1:\(apiPort(id))/replica").status == 200
    }

    /// Patroni's `/sync`: 200 only on the synchronous standby.
    func isSyncStandby(_ id: Int) async -> Bool {
        await HTTP.request("GET", "http://127.0.0.1:\(apiPort(id))/sync").status == 200
    }

    /// The PostgreSQL postmaster of member `id`, from its postmaster.pid.
    func postmaster(_ id: Int) -> Int32? {
        guard let text = try? String(contentsOfFile: directory(id) + "/data/postmaster.pid", encoding: .utf8),
            let line = text.split(separator: "\n").first, let pid = Int32(line), kill(pid, 0) == 0
        else { return nil }
        return pid
    }

    /// SIGKILL of the member's Patroni and its PostgreSQL, as a machine dying would.
    func killMember(_ id: Int) {
        let server = postmaster(id)
        if let process = patroni.removeValue(forKey: id) {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        if let server { kill(server, SIGKILL) }
    }

    func patronictl(_ arguments: [String]) async -> (status: Int32, output: String) {
        let config = config(1)
        return await offThePool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/patronictl")
            process.arguments = ["-c", config] + arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            do { try process.run() } catch { return (-1, "\(error)") }
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
    }

    /// Patroni first (SIGTERM stops its PostgreSQL), SIGKILL for what is left, then etcd.
    func stopAll() {
        for (_, process) in patroni { kill(process.processIdentifier, SIGTERM) }
        let deadline = Date().addingTimeInterval(30)
        while patroni.values.contains(where: \.isRunning), Date() < deadline { usleep(100_000) }
        for (_, process) in patroni where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        patroni = [:]
        for id in Self.members {
            if let pid = postmaster(id) {
                kill(pid, SIGKILL)
            }
        }
        if let etcd {
            kill(etcd.processIdentifier, SIGKILL)
            etcd.waitUntilExit()
        }
        etcd = nil
        if ProcessInfo.processInfo.environment["RAFTGATE_TEST_KEEP_DIRS"] == nil {
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    func log(_ name: String) -> String {
        (try? String(contentsOfFile: root + "/\(name).log", encoding: .utf8)) ?? ""
    }

    private func launch(_ path: String, _ arguments: [String], log: String, asPostgres: Bool) throws -> Process {
        let process = Process()
        if asPostgres && getuid() == 0 {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", path] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
        }
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        LeftoverProcesses.record(child: process.processIdentifier, in: root)
        return process
    }

    private func run(_ path: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
    }
}

/// A stand-in for the network between the gateways and one Patroni REST API: it forwards each
/// request to the real API, or — switched by the test — answers nothing (the connection is reset),
/// answers 200 with a body that is not a Patroni answer, or sends its headers and then trickles
/// the body forever. One thread per connection; the
/// gateways' requests are few.
final class PatroniAPIGate: Sendable {
    enum Mode: Sendable { case forward, down, garbage, trickle }
    let port: Int
    let upstream: Int
    private let listener: Int32
    private let state = Mutex((mode: Mode.forward, stopped: false))

    var mode: Mode {
        get { state.withLock { $0.mode } }
        set { state.withLock { $0.mode = newValue } }
    }

    init(port: Int, upstream: Int) throws {
        self.port = port
        self.upstream = upstream
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(listener, 64) == 0 else {
            close(listener)
            throw GateError(description: "cannot listen on \(port): errno \(errno)")
        }
        Thread { [weak self] in
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                guard let self else {
                    close(client)
                    return
                }
                Thread { self.serve(client) }.start()
            }
        }.start()
    }

    func stop() {
        let first = state.withLock { state in
            defer { state.stopped = true }
            return !state.stopped
        }
        guard first else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // The request head (the gateways send GETs without a body).
        var head: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !head.ends(with: Array("\r\n\r\n".utf8)) {
            let count = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return }
            head += chunk[..<count]
        }
        switch mode {
        case .down:
            // Closed with a reset, as a dead API's host would answer.
            var reset = linger(l_onoff: 1, l_linger: 0)
            setsockopt(client, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
        case .garbage:
            let body = #"{"state": 42, "role": ["master"], "members": "not a list"}"#
            _ = LoopbackSocket.send(
                Array(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
                        .utf8), on: client)
        case .trickle:
            // Headers, then a body a byte at a time, forever: every byte resets any read
            // timeout, so only a deadline on the whole exchange ends it.
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
            var bytes = Array(head.utf8)
            while mode == .trickle, !state.withLock({ $0.stopped }) {
                let sent = bytes.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard sent == bytes.count else { return }
                bytes = Array(" ".utf8)
                usleep(50_000)
            }
        case .forward:
            let line = String(decoding: head.prefix { $0 != 13 }, as: UTF8.self).split(separator: " ")
            guard line.count >= 2, let upstreamSocket = LoopbackSocket.connect(port: upstream) else { return }
            defer { close(upstreamSocket) }
            // HTTP/1.0: Patroni answers and closes, so the answer is everything until EOF.
            guard LoopbackSocket.send(Array("GET \(line[1]) HTTP/1.0\r\n\r\n".utf8), on: upstreamSocket) else { return }
            var answer: [UInt8] = []
            while true {
                let count = chunk.withUnsafeMutableBytes { recv(upstreamSocket, $0.baseAddress, $0.count, 0) }
                if count <= 0 { break }
                answer += chunk[..<count]
            }
            _ = LoopbackSocket.send(answer, on: client)
        }
    }

    struct GateError: Error, CustomStringConvertible { var description: String }
}

extension Array where Element: Equatable {
    fileprivate func ends(with suffix: [Element]) -> Bool {
        count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix
    }
}
