import Foundation
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Real `raftgate serve` processes (and optionally a real HAProxy) on 127.0.0.1, started and
/// stopped by pid. Each cluster takes its own block of `TestPorts`, so clusters of parallel suites
/// never meet, nor the example cluster's ports, nor sockets an earlier run left in TIME_WAIT.
final class ProcessCluster {
    /// The package root, found from this file.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// The executable `swift build` produced next to this package.
    static var executable: String { packageRoot.appendingPathComponent(".build/debug/raftgate").path }

    let root = FileManager.default.temporaryDirectory.appendingPathComponent(
        LeftoverProcesses.directoryPrefix + UUID().uuidString
    ).path
    let base = TestPorts.block()
    /// Per node: extra arguments (for example `--config file`); the ports are always set by flags.
    var extraArguments: [String] = ["--tick-ms", "20"]
    /// Every node of a test cluster shares this key; a test that needs none clears it.
    var keyArguments = ["--cluster-key", ProcessCluster.clusterKey]
    static let clusterKey = "integration-tests-cluster-key"
    var configFile: ((Int) -> String)?
    /// Per node: arguments after all the others (for example `--join`).
    var nodeArguments: [Int: [String]] = [:]
    /// Added to every node's environment (test hooks such as `RAFTGATE_TEST_FAIL_SYNC_WHEN`).
    var environment: [String: String] = [:]
    /// Per node: the ids its `--peers` lists (default 1, 2 and 3).
    var flagPeers: [Int: [Int]] = [:]
    /// Pass `--bootstrap` (an empty data directory starts the cluster `--peers` describes).
    var bootstrap = true
    private(set) var processes: [Int: Process] = [:]
    private var haproxy: Process?

    init() {
        LeftoverProcesses.reaped
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        LeftoverProcesses.record(owner: root)
    }

    func http(_ id: Int) -> Int { base + id }
    func health(_ id: Int) -> Int { base + 10 + id }
    func raft(_ id: Int) -> Int { base + 20 + id }
    func swim(_ id: Int) -> Int { base + 40 + id }
    var frontend: Int { base + 30 }
    var stats: Int { base + 31 }

    func start(_ id: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        var arguments = ["serve"]
        if let configFile { arguments += ["--config", configFile(id)] }
        arguments += [
            "--id", "\(id)", "--data-dir", root + "/node-\(id)", "--http", "127.0.0.1:\(http(id))",
            "--health", "127.0.0.1:\(health(id))", "--raft", "127.0.0.1:\(raft(id))",
            "--peers", (flagPeers[id] ?? [1, 2, 3]).map { "\($0)=127.0.0.1:\(raft($0))" }.joined(separator: ","),
            "--swim", "127.0.0.1:\(swim(id))",
            "--swim-seeds", (1...3).map { "127.0.0.1:\(swim($0))" }.joined(separator: ","),
        ]
        // The harness deletes no node's data directory unless a test does (and then clears
        // `bootstrap`), so an empty one is a first start; a node started with --join ignores it.
        if bootstrap { arguments.append("--bootstrap") }
        process.arguments = arguments + keyArguments + extraArguments + (nodeArguments[id] ?? [])
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = FileHandle.nullDevice
        let log = root + "/node-\(id).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        process.standardError = handle
        try process.run()
        LeftoverProcesses.record(child: process.processIdentifier, in: root)
        processes[id] = process
    }

    /// Starts HAProxy with the example's configuration, its ports moved to this run's.
    func startHAProxy() throws {
        let example = Self.packageRoot.appendingPathComponent("examples/three-nodes/haproxy.cfg")
        var text = try String(contentsOf: example, encoding: .utf8)
        text = text.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:\(frontend)")
        text = text.replacingOccurrences(of: "127.0.0.1:8404", with: "127.0.0.1:\(stats)")
        for id in 1...3 {
            text = text.replacingOccurrences(of: "127.0.0.1:808\(id)", with: "127.0.0.1:\(http(id))")
            text = text.replacingOccurrences(of: "port 1000\(id)", with: "port \(health(id))")
        }
        let path = root + "/haproxy.cfg"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.haproxyPath ?? "/usr/sbin/haproxy")
        // -db: stay in the foreground, so the pid we hold is HAProxy's own.
        process.arguments = ["-db", "-f", path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        LeftoverProcesses.record(child: process.processIdentifier, in: root)
        haproxy = process
    }

    static var haproxyPath: String? {
        ["/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    func kill(_ id: Int, signal: Int32 = SIGKILL) {
        guard let process = processes.removeValue(forKey: id) else { return }
        Foundation.kill(process.processIdentifier, signal)
        process.waitUntilExit()
    }

    /// Sends `signal` to node `id` without waiting (see `waitForExit`).
    func signal(_ id: Int, _ signal: Int32) {
        if let process = processes[id] { Foundation.kill(process.processIdentifier, signal) }
    }

    /// Sends `signal` (SIGTERM: a graceful stop) and waits up to `seconds` for the node to exit.
    /// Returns its exit status (nil: still running, then killed), and forgets it.
    func terminate(_ id: Int, signal: Int32 = SIGTERM, within seconds: Double = 30) async -> Int32? {
        guard let process = processes[id] else { return nil }
        Foundation.kill(process.processIdentifier, signal)
        return await waitForExit(id, within: seconds)
    }

    /// Waits up to `seconds` for node `id` to exit by itself; its exit status, or nil (then killed).
    func waitForExit(_ id: Int, within seconds: Double) async -> Int32? {
        guard let process = processes[id] else { return nil }
        let deadline = ContinuousClock.now + .seconds(seconds)
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning {
            kill(id)
            return nil
        }
        processes[id] = nil
        return process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
    }

    func isRunning(_ id: Int) -> Bool { processes[id]?.isRunning == true }

    func stopAll() {
        for id in Array(processes.keys) { kill(id) }
        if let haproxy {
            haproxy.terminate()
            haproxy.waitUntilExit()
        }
        haproxy = nil
        // RAFTGATE_TEST_KEEP_DIRS=1 keeps each cluster's data and node logs for a post-mortem.
        if ProcessInfo.processInfo.environment["RAFTGATE_TEST_KEEP_DIRS"] == nil {
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    func log(_ id: Int) -> String {
        (try? String(contentsOfFile: root + "/node-\(id).log", encoding: .utf8)) ?? ""
    }
}

enum HTTP {
    static func request(
        _ method: String, _ url: String, body: Data? = nil, headers: [String: String] = [:]
    ) async -> (status: Int, body: String) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        request.timeoutInterval = 10
        request.httpBody = body
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        guard let (data, response) = try? await URLSession.shared.data(for: request),
            let http = response as? HTTPURLResponse
        else { return (0, "") }
        return (http.statusCode, String(decoding: data, as: UTF8.self))
    }

    static func request(_ method: String, _ url: String, body: String) async -> (status: Int, body: String) {
        await request(method, url, body: Data(body.utf8))
    }

    /// One request exactly as HAProxy's checks send it: HTTP/1.0, no Host header, over a raw
    /// socket. Returns the status code of the answer, or nil if there was none.
    static func rawStatus(_ method: String, _ path: String, port: Int) -> Int? {
        guard let descriptor = LoopbackSocket.connect(port: port) else { return nil }
        defer { close(descriptor) }
        guard LoopbackSocket.send(Array("\(method) \(path) HTTP/1.0\r\n\r\n".utf8), on: descriptor) else {
            return nil
        }
        // Read the head and as much body as Content-Length announces (HEAD: none). Reading to
        // EOF would wait for the server's idle timeout: it answers HTTP/1.1 and keeps the socket.
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !isComplete(response, method: method) {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            response += chunk[..<count]
        }
        let line = String(decoding: response.prefix { $0 != 13 }, as: UTF8.self)
        let parts = line.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1.") else { return nil }
        return Int(parts[1])
    }

    private static func isComplete(_ response: [UInt8], method: String) -> Bool {
        guard let end = response.firstRange(of: Array("\r\n\r\n".utf8)) else { return false }
        let head = String(decoding: response[..<end.lowerBound], as: UTF8.self).lowercased()
        guard method != "HEAD",
            let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
            let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        else { return true }
        return response.count - end.upperBound >= length
    }
}

/// Polls `probe` every 20 ms until it yields a value or `seconds` have passed; it is always
/// asked at least once, so `within: 0` means "check now". A cancelled task (a test past its time
/// limit) stops polling at once rather than spinning on probes that fail immediately.
func poll<Value>(within seconds: Double = 20, _ probe: () async -> Value?) async -> Value? {
    let deadline = ContinuousClock.now + .seconds(seconds)
    repeat {
        if let value = await probe() { return value }
        do { try await Task.sleep(for: .milliseconds(20)) } catch { return nil }
    } while ContinuousClock.now < deadline
    return nil
}

/// Polls `condition` until it holds (true) or `seconds` have passed (false).
func eventually(within seconds: Double = 20, _ condition: () async -> Bool) async -> Bool {
    await poll(within: seconds) { await condition() ? true : nil } ?? false
}

extension ProcessCluster {
    /// Polls every node's /primary until exactly one answers 200.
    func leader(within seconds: Double = 20, excluding: Int? = nil) async -> Int? {
        await poll(within: seconds) {
            var leaders: [Int] = []
            for id in processes.keys.sorted()
            where await HTTP.request("GET", "http://127.0.0.1:\(health(id))/primary").status == 200 {
                leaders.append(id)
            }
            return leaders.count == 1 && leaders[0] != excluding ? leaders[0] : nil
        }
    }

    /// Polls until exactly one node answers /primary 200 and every running node answers
    /// /health/ready 200, i.e. the followers have heard from that leader too. `leader()` alone
    /// returns as soon as the leader wins, before its first heartbeat reaches the followers.
    func settledLeader(within seconds: Double = 20) async -> Int? {
        await poll(within: seconds) {
            guard let leader = await leader(within: 0) else { return nil }
            for id in processes.keys.sorted()
            where await HTTP.request("GET", "http://127.0.0.1:\(health(id))/health/ready").status != 200 {
                return nil
            }
            return leader
        }
    }

    /// GETs `path` through `port`, retrying 503s (no leader yet, or HAProxy's read backend has no
    /// node marked ready yet: its checks run every 200 ms and a follower is not ready while it
    /// knows no leader) until another answer or the deadline.
    func read(port: Int, path: String, within seconds: Double = 20) async -> (status: Int, body: String) {
        let url = "http://127.0.0.1:\(port)" + path
        let answer = await poll(within: seconds) {
            let answer = await HTTP.request("GET", url)
            return answer.status == 503 ? nil : answer
        }
        if let answer { return answer }
        return await HTTP.request("GET", url)
    }

    /// PUTs through `port`, retrying anything but 200 (no leader yet, outcome unknown, proxy
    /// still routing to a dead node) until 200 or the deadline.
    func write(port: Int, key: String, value: String, within seconds: Double = 20) async -> Bool {
        await eventually(within: seconds) {
            await HTTP.request("PUT", "http://127.0.0.1:\(port)/kv/\(key)", body: value).status == 200
        }
    }
}
