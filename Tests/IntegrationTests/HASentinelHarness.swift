import Foundation
import Sentinel
import TestSupport

/// Real Redis 7 under real Sentinels on 127.0.0.1 for the HA suites: one master and two replicas
/// (`redis-server`), three Sentinels (`redis-sentinel`, quorum 2, down-after 3000 ms), each with
/// its files under a temporary directory, on ports of a `TestPorts` block of their own, started
/// and stopped by pid.
final class RedisSentinelStack {
    /// Not shorter: on a loaded 2-core CI machine a freshly promoted master, forking to resync the
    /// other replica, missed a 1000 ms window, and the Sentinels failed over a second time in the
    /// middle of the test.
    static let downAfterMilliseconds = 3000
    static let redisServer = "/usr/bin/redis-server"
    static let redisSentinel = "/usr/bin/redis-sentinel"
    static var available: Bool {
        FileManager.default.isExecutableFile(atPath: redisServer)
            && FileManager.default.isExecutableFile(atPath: redisSentinel)
    }

    let root = FileManager.default.temporaryDirectory.appendingPathComponent(
        LeftoverProcesses.directoryPrefix + "redis-" + UUID().uuidString
    ).path
    let base = TestPorts.block()
    let masterName = "mymaster"
    private(set) var processes: [String: Process] = [:]

    /// Redis i (1…3) and Sentinel i (1…3); fake Sentinels take ports from 20 on.
    func redisPort(_ index: Int) -> Int { base + index }
    func sentinelPort(_ index: Int) -> Int { base + 10 + index }
    func redis(_ index: Int) -> RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: redisPort(index)) }
    func sentinel(_ index: Int) -> RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: sentinelPort(index)) }
    func index(of endpoint: RedisEndpoint) -> Int? { (1...3).first { redis($0) == endpoint } }

    init() {
        LeftoverProcesses.reaped
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        LeftoverProcesses.record(owner: root)
    }

    /// Redis 1 the master, 2 and 3 its replicas, then the three Sentinels watching 1.
    func start() throws {
        for index in 1...3 { try startRedis(index, replicaOf: index == 1 ? nil : 1) }
        for index in 1...3 { try startSentinel(index) }
    }

    /// `minReplicasToWrite` 1 (the stack's setting, README): a master cut off from every replica
    /// for 10 s stops taking writes, which bounds what a split brain can lose. 0 for a lone master.
    func startRedis(_ index: Int, replicaOf master: Int?, minReplicasToWrite: Int = 1) throws {
        let directory = root + "/redis\(index)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var arguments = [
            "--port", "\(redisPort(index))", "--bind", "127.0.0.1", "--dir", directory, "--save", "",
            "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no",
            // The directory in the process title, so a crashed run's leftover is found by it
            // (`LeftoverProcesses` matches command lines; Redis rewrites its own).
            "--proc-title-template", "{title} {listen-addr} \(directory)",
            "--min-replicas-to-write", "\(minReplicasToWrite)", "--min-replicas-max-lag", "10",
        ]
        if let master { arguments += ["--replicaof", "127.0.0.1", "\(redisPort(master))"] }
        try launch("redis\(index)", Self.redisServer, arguments)
    }

    func startSentinel(_ index: Int) throws {
        let directory = root + "/sentinel\(index)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let config = """
            port \(sentinelPort(index))
            bind 127.0.0.1
            protected-mode no
            daemonize no
            dir \(directory)
            sentinel monitor \(masterName) 127.0.0.1 \(redisPort(1)) 2
            sentinel down-after-milliseconds \(masterName) \(Self.downAfterMilliseconds)
            sentinel failover-timeout \(masterName) 10000
            sentinel parallel-syncs \(masterName) 2
            proc-title-template "{title} {listen-addr} {server-mode} {config-file}"

            """
        let path = directory + "/sentinel.conf"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        try launch("sentinel\(index)", Self.redisSentinel, [path])
    }

    private func launch(_ name: String, _ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let log = root + "/\(name).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        LeftoverProcesses.record(child: process.processIdentifier, in: root)
        processes[name] = process
    }

    /// Sends `signal` (SIGSTOP freezes a Redis with its connections open, SIGCONT thaws it).
    func signal(_ name: String, _ signal: Int32) {
        guard let process = processes[name], process.isRunning else { return }
        Foundation.kill(process.processIdentifier, signal)
    }

    /// SIGKILL, then polls until Foundation has seen the exit (never `waitUntilExit`, which can
    /// block a concurrency thread for good on Linux), within `seconds`; false if it had not.
    @discardableResult
    func kill(_ name: String, within seconds: Double = 10) async -> Bool {
        guard let process = processes[name] else { return true }
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        return await eventually(within: seconds) { !process.isRunning }
    }

    /// SIGKILL to every process, then a bounded poll for their exits: called from `defer`, so it
    /// cannot await; it sleeps in 10 ms steps for at most 5 s in all.
    func stopAll() {
        for process in processes.values where process.isRunning {
            Foundation.kill(process.processIdentifier, SIGKILL)
        }
        let deadline = ContinuousClock.now + .seconds(5)
        while processes.values.contains(where: \.isRunning), ContinuousClock.now < deadline { usleep(10_000) }
        processes = [:]
        if ProcessInfo.processInfo.environment["RAFTGATE_TEST_KEEP_DIRS"] == nil {
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    func log(_ name: String) -> String {
        (try? String(contentsOfFile: root + "/\(name).log", encoding: .utf8)) ?? ""
    }

    /// One command to one Redis or Sentinel, off Swift concurrency's pool; nil when it could not
    /// be sent (down, timed out).
    func command(_ endpoint: RedisEndpoint, _ arguments: [String]) async -> RedisReply? {
        await offThePool {
            guard
                let connection = try? RedisConnection(
                    endpoint, connectTimeout: .milliseconds(500), commandTimeout: .milliseconds(2000))
            else { return nil }
            defer { connection.close() }
            return try? connection.command(arguments.map { Array($0.utf8) })
        }
    }

    /// `ROLE`'s first element: master, slave or sentinel.
    func role(_ index: Int) async -> String? {
        await command(redis(index), ["ROLE"])?.elements?.first?.text
    }

    /// Where the Sentinel says the master is.
    func masterAccordingTo(sentinel index: Int) async -> RedisEndpoint? {
        guard let pair = await command(sentinel(index), ["SENTINEL", "get-master-addr-by-name", masterName])?.elements,
            pair.count == 2, let host = pair[0].text, let port = pair[1].integer
        else { return nil }
        return RedisEndpoint(host: host, port: Int(port))
    }

    /// Ready: Redis 1 is master with both replicas online and acknowledging, every Sentinel sees two replicas and
    /// the other two Sentinels.
    func isReady() async -> Bool {
        guard let info = await command(redis(1), ["INFO", "replication"])?.text,
            info.contains("connected_slaves:2"),
            // Both acknowledging (min-replicas-to-write counts only those): else writes are NOREPLICAS.
            info.contains("min_slaves_good_slaves:2")
        else { return false }
        for index in 1...3 {
            guard let fields = await command(sentinel(index), ["SENTINEL", "master", masterName])?.fields,
                fields["num-slaves"] == "2", fields["num-other-sentinels"] == "2"
            else { return false }
        }
        return true
    }

    /// Write commands a Redis was sent so far (`INFO commandstats`: calls, rejected and failed
    /// calls of SET, DEL, EVAL and EVALSHA — a write refused for want of replicas counts too); nil
    /// when it does not answer.
    func writeCommandsSeen(_ index: Int) async -> Int? {
        guard let text = await command(redis(index), ["INFO", "commandstats"])?.text else { return nil }
        var total = 0
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":"),
                ["cmdstat_set", "cmdstat_del", "cmdstat_eval", "cmdstat_evalsha"].contains(String(line[..<colon]))
            else { continue }
            for field in line[line.index(after: colon)...].split(separator: ",") {
                let pair = field.split(separator: "=")
                if pair.count == 2, ["calls", "rejected_calls", "failed_calls"].contains(String(pair[0])) {
                    total += Int(pair[1]) ?? 0
                }
            }
        }
        return total
    }

    /// The keys matching `pattern` (`KEYS`, fine for the test's few hundred).
    func keys(_ index: Int, _ pattern: String) async -> Set<String>? {
        guard let elements = await command(redis(index), ["KEYS", pattern])?.elements else { return nil }
        return Set(elements.compactMap(\.text))
    }

    /// The names of the clients connected to a Redis (`CLIENT LIST`), for "who talks to it".
    func clientNames(_ index: Int) async -> [String]? {
        guard let list = await command(redis(index), ["CLIENT", "LIST"])?.text else { return nil }
        return list.split(separator: "\n").compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("name=") }.map { String($0.dropFirst(5)) }
        }.filter { !$0.isEmpty }
    }
}

/// A Sentinel that lies, for what no real one does on purpose: it answers the discovery commands
/// with whatever master and epoch the test sets (a replica, say, at a far newer epoch), accepts
/// `SUBSCRIBE` and then stays quiet. RESP over raw sockets on threads of its own.
final class FakeSentinel: @unchecked Sendable {
    // @unchecked: `claim` and `held` are only touched under `lock`; `listener` is immutable.
    private let listener: Int32
    private let lock = NSLock()
    private var claim: (master: RedisEndpoint, epoch: UInt64)
    private var held: [Int32] = []
    private var holding = false
    private var asked = 0
    let port: Int

    init?(port: Int, claiming master: RedisEndpoint, epoch: UInt64) {
        self.port = port
        claim = (master, epoch)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var yes: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(descriptor, 64) == 0 else {
            close(descriptor)
            return nil
        }
        listener = descriptor
        Thread { [self] in acceptLoop() }.start()
    }

    var endpoint: RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: port) }

    func claim(_ master: RedisEndpoint, epoch: UInt64) {
        lock.withLock { claim = (master, epoch) }
    }

    /// While held, the answer to `SENTINEL replicas` (the last question of a discovery round, whose
    /// master and epoch were answered from the claim then) is sent only after `release()`: a
    /// resolution the test keeps in flight across a switch.
    func hold() { lock.withLock { holding = true } }
    func release() { lock.withLock { holding = false } }
    /// `SENTINEL master` commands answered or held so far (one per resolution that asked this one).
    var masterQueries: Int { lock.withLock { asked } }

    private func acceptLoop() {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 { return }
            lock.withLock { held.append(connection) }
            Thread { [self] in serve(connection) }.start()
        }
    }

    private func serve(_ connection: Int32) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            while let parsed = Self.parse(buffer) {
                buffer.removeFirst(parsed.used)
                let reply = answer(parsed.command)
                let words = parsed.command.prefix(2).map { $0.lowercased() }
                if words == ["sentinel", "master"] { lock.withLock { asked += 1 } }
                // The last command of a discovery round: its earlier answers are already given.
                if words == ["sentinel", "replicas"] {
                    while lock.withLock({ holding }) { usleep(5_000) }
                }
                _ = LoopbackSocket.send(reply, on: connection)
            }
            let count = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard count > 0 else {
                close(connection)
                return
            }
            buffer += chunk[..<count]
        }
    }

    private func answer(_ command: [String]) -> [UInt8] {
        func bulk(_ text: String) -> String { "$\(text.utf8.count)\r\n\(text)\r\n" }
        func array(_ items: [String]) -> String { "*\(items.count)\r\n" + items.map(bulk).joined() }
        let (master, epoch) = lock.withLock { claim }
        let words = command.map { $0.lowercased() }
        let text: String
        switch (words.first, words.dropFirst().first) {
        case ("sentinel", "get-master-addr-by-name"): text = array([master.host, "\(master.port)"])
        case ("sentinel", "master"):
            text = array([
                "name", "mymaster", "ip", master.host, "port", "\(master.port)", "flags", "master",
                "config-epoch", "\(epoch)",
            ])
        case ("sentinel", "replicas"), ("sentinel", "slaves"): text = "*0\r\n"
        case ("subscribe", _):
            text = "*3\r\n" + bulk("subscribe") + bulk(command.count > 1 ? command[1] : "") + ":1\r\n"
        case ("ping", _): text = "+PONG\r\n"
        default: text = "-ERR unknown command\r\n"
        }
        return Array(text.utf8)
    }

    /// One `*N` array of bulk strings from the front of `bytes`, and how many bytes it took.
    static func parse(_ bytes: [UInt8]) -> (command: [String], used: Int)? {
        func line(from start: Int) -> (String, Int)? {
            guard start < bytes.count else { return nil }
            var index = start
            while index + 1 < bytes.count {
                if bytes[index] == 13 && bytes[index + 1] == 10 {
                    return (String(decoding: bytes[start..<index], as: UTF8.self), index + 2)
                }
                index += 1
            }
            return nil
        }
        guard let header = line(from: 0), header.0.hasPrefix("*"), let count = Int(header.0.dropFirst()) else {
            return nil
        }
        var position = header.1
        var items: [String] = []
        for _ in 0..<count {
            guard let length = line(from: position), length.0.hasPrefix("$"), let size = Int(length.0.dropFirst())
            else { return nil }
            let afterLength = length.1
            guard afterLength + size + 2 <= bytes.count else { return nil }
            items.append(String(decoding: bytes[afterLength..<(afterLength + size)], as: UTF8.self))
            position = afterLength + size + 2
        }
        return (items, position)
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for connection in lock.withLock({ held }) { shutdown(connection, Int32(SHUT_RDWR)) }
    }
}

extension ProcessCluster {
    /// SIGKILL to every node, then a bounded poll for their exits before `stopAll` (which waits
    /// with `waitUntilExit`, harmless once the processes are gone): called from `defer`, so it
    /// sleeps in 10 ms steps, 5 s at most.
    func stopAllWithin() {
        let ids = processes.keys
        for id in ids { signal(id, SIGKILL) }
        let deadline = ContinuousClock.now + .seconds(5)
        while ids.contains(where: { isRunning($0) }), ContinuousClock.now < deadline { usleep(10_000) }
        stopAll()
    }

    /// Runs the raftgate executable to completion on a thread of its own, killed after `seconds`
    /// so a stuck one cannot hang the test; its standard output.
    static func runBounded(_ arguments: [String], within seconds: Double = 20) async -> String {
        await offThePool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: ProcessCluster.executable)
            process.arguments = arguments
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            do { try process.run() } catch { return "" }
            let pid = process.processIdentifier
            let watchdog = DispatchWorkItem { Foundation.kill(pid, SIGKILL) }
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: watchdog)
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            watchdog.cancel()
            return text
        }
    }
}

/// A `RedisClient` for the duration of `body`, shut down on every exit path (its listener threads
/// would otherwise reconnect to the fake Sentinels for the rest of the test process).
func withRedisClient<Value>(
    _ settings: SentinelSettings, _ body: (RedisClient) async throws -> Value
) async throws -> Value {
    let client = RedisClient(settings: settings)
    do {
        let value = try await body(client)
        await client.shutdown()
        return value
    } catch {
        await client.shutdown()
        throw error
    }
}
