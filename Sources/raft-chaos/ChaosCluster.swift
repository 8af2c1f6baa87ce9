import Foundation

/// Real `raftgate serve` processes, each on its own loopback address (127.0.0.11, .12, …) so a
/// partition is a pair of iptables rules between two addresses, and HAProxy in front on
/// 127.0.0.1. Everything is started and stopped by pid.
actor ChaosCluster {
    let nodeCount: Int
    let executable: String
    let directory: String
    let httpPort = 20080
    let healthPort = 20081
    let raftPort = 20082
    let frontendPort = 20090
    private(set) var processes: [Int: Process] = [:]
    private(set) var paused: Set<Int> = []
    private var haproxy: Process?
    nonisolated let firewall: Firewall?

    init(nodeCount: Int, executable: String, directory: String, firewall: Firewall?) {
        self.nodeCount = nodeCount
        self.executable = executable
        self.directory = directory
        self.firewall = firewall
    }

    nonisolated var ids: [Int] { Array(1...nodeCount) }
    nonisolated func address(_ id: Int) -> String { "127.0.0.\(10 + id)" }
    nonisolated func httpURL(_ id: Int) -> String { "http://\(address(id)):\(httpPort)" }
    nonisolated var proxyURL: String { "http://127.0.0.1:\(frontendPort)" }
    nonisolated func dataDirectory(_ id: Int) -> String { directory + "/node-\(id)" }
    func isRunning(_ id: Int) -> Bool { processes[id] != nil }
    func isPaused(_ id: Int) -> Bool { paused.contains(id) }

    func start(_ id: Int) throws {
        guard processes[id] == nil else { return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "serve", "--id", "\(id)", "--data-dir", dataDirectory(id), "--http", "\(address(id)):\(httpPort)",
            "--health", "\(address(id)):\(healthPort)", "--raft", "\(address(id)):\(raftPort)",
            "--peers", ids.map { "\($0)=\(address($0)):\(raftPort)" }.joined(separator: ","),
            "--cluster-key", "raft-chaos-cluster-key",
            // The nemesis kills, pauses and tears WAL tails but never deletes a data directory, so
            // an empty one is this run's first start.
            "--bootstrap",
        ]
        let log = directory + "/node-\(id).log"
        if !FileManager.default.fileExists(atPath: log) {
            _ = FileManager.default.createFile(atPath: log, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        process.standardError = handle
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        processes[id] = process
    }

    func kill(_ id: Int) {
        guard let process = processes.removeValue(forKey: id) else { return }
        if paused.remove(id) != nil { Foundation.kill(process.processIdentifier, SIGCONT) }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func pause(_ id: Int) {
        guard let process = processes[id], !paused.contains(id) else { return }
        Foundation.kill(process.processIdentifier, SIGSTOP)
        paused.insert(id)
    }

    func resume(_ id: Int) {
        guard let process = processes[id], paused.remove(id) != nil else { return }
        Foundation.kill(process.processIdentifier, SIGCONT)
    }

    func startHAProxy(haproxyPath: String) throws {
        let servers = ids.map {
            "    server node\($0) \(address($0)):\(httpPort) check port \(healthPort)"
        }.joined(separator: "\n")
        // The example's settings (examples/three-nodes/haproxy.cfg), on this cluster's addresses.
        let config = """
            global
                maxconn 4096
            defaults
                mode http
                timeout connect 500ms
                timeout client 30s
                timeout server 30s
                retries 1
                option redispatch
            frontend api
                bind 127.0.0.1:\(frontendPort)
                acl is_write method POST PUT DELETE PATCH
                use_backend leader if is_write
                default_backend readers
            backend leader
                option httpchk GET /primary
                http-check expect status 200
                default-server inter 200ms fall 2 rise 1
            \(servers)
            backend readers
                balance roundrobin
                option httpchk GET /health/ready
                http-check expect status 200
                default-server inter 200ms fall 2 rise 1
            \(servers)

            """
        let path = directory + "/haproxy.cfg"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: haproxyPath)
        process.arguments = ["-db", "-f", path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        haproxy = process
    }

    /// Undoes every fault: partitions healed, paused nodes resumed, stopped nodes restarted.
    func healAll() throws {
        firewall?.heal()
        for id in Array(paused) { resume(id) }
        for id in ids where processes[id] == nil { try start(id) }
    }

    func stopAll() {
        firewall?.heal()
        for id in Array(processes.keys) { kill(id) }
        if let haproxy {
            haproxy.terminate()
            haproxy.waitUntilExit()
        }
        haproxy = nil
    }

    /// The newest WAL segment of a node (for the torn-tail fault).
    nonisolated func newestWALSegment(_ id: Int) -> String? {
        let walDirectory = dataDirectory(id) + "/wal"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: walDirectory)) ?? []
        return names.filter { $0.hasPrefix("wal-") && $0.hasSuffix(".log") }.sorted().last.map {
            walDirectory + "/" + $0
        }
    }
}

/// Partitions as iptables rules in a chain of our own, jumped to from OUTPUT (loopback traffic
/// passes OUTPUT once), so healing is one flush and nothing else on the machine is touched.
struct Firewall {
    static let chain = "RAFTGATE-CHAOS"

    /// Creates the chain, or returns nil when iptables cannot be used here (not root, missing).
    static func make() -> Firewall? {
        guard run(["-L", "-n"]) else { return nil }
        _ = run(["-N", chain])
        _ = run(["-F", chain])
        if !run(["-C", "OUTPUT", "-j", chain]) { _ = run(["-I", "OUTPUT", "-j", chain]) }
        // Listing can work where changing rules cannot (a container without NET_ADMIN): only a
        // jump that is really in place makes partitions possible.
        guard run(["-C", "OUTPUT", "-j", chain]) else { return nil }
        return Firewall()
    }

    /// Cuts every path between the two groups, both ways.
    func cut(_ left: [String], from right: [String]) {
        for a in left {
            for b in right {
                _ = Self.run(["-A", Self.chain, "-s", a, "-d", b, "-j", "DROP"])
                _ = Self.run(["-A", Self.chain, "-s", b, "-d", a, "-j", "DROP"])
            }
        }
    }

    func heal() { _ = Self.run(["-F", Self.chain]) }

    func remove() {
        _ = Self.run(["-F", Self.chain])
        while Self.run(["-D", "OUTPUT", "-j", Self.chain]) {}
        _ = Self.run(["-X", Self.chain])
    }

    @discardableResult
    static func run(_ arguments: [String]) -> Bool {
        guard
            let path = ["/usr/sbin/iptables", "/sbin/iptables", "/usr/bin/iptables"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["-w"] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }
}
