import Foundation
import TestSupport

/// Workers beside a `ProcessCluster`: `raftgate-echo` processes, `raftgate agent` processes, and
/// misbehaving raw TCP workers, all on the cluster's port block (echo ports base+50…, agent SWIM
/// ports base+70…), started by the test and stopped by pid.
final class WorkerProcesses {
    let cluster: ProcessCluster
    private(set) var processes: [String: Process] = [:]
    static var echoExecutable: String {
        ProcessCluster.packageRoot.appendingPathComponent(".build/debug/raftgate-echo").path
    }

    init(cluster: ProcessCluster) {
        self.cluster = cluster
    }

    func echoPort(_ index: Int) -> Int { cluster.base + 50 + index }
    func agentSWIMPort(_ index: Int) -> Int { cluster.base + 70 + index }

    /// An echo worker on `echoPort(index)`; with `registerAt`, it registers itself over HTTP there.
    func startEcho(_ name: String, index: Int, registerAt node: Int? = nil, ttlMilliseconds: Int = 2000) throws {
        var arguments = ["--id", name, "--listen", "127.0.0.1:\(echoPort(index))"]
        if let node {
            arguments += [
                "--register", "http://127.0.0.1:\(cluster.http(node))", "--ttl-ms", "\(ttlMilliseconds)",
                "--admin-token", ProcessCluster.adminToken,
            ]
        }
        try launch(name, Self.echoExecutable, arguments)
    }

    /// `raftgate agent` registering the echo worker at `echoPort(index)` through SWIM.
    func startAgent(
        _ name: String, index: Int, memberID: UInt64, service: String = "echo", drainMilliseconds: Int = 300
    ) throws {
        try launch(
            name, ProcessCluster.executable,
            [
                "agent", "--service", service, "--address", "127.0.0.1:\(echoPort(index))",
                "--swim", "127.0.0.1:\(agentSWIMPort(index))",
                "--seeds", (1...3).map { "127.0.0.1:\(cluster.swim($0))" }.joined(separator: ","),
                "--id", "\(memberID)", "--drain-ms", "\(drainMilliseconds)", "--cluster-key", ProcessCluster.clusterKey,
            ])
    }

    private func launch(_ name: String, _ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        let log = cluster.root + "/\(name).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try process.run()
        LeftoverProcesses.record(child: process.processIdentifier, in: cluster.root)
        processes[name] = process
    }

    func pid(_ name: String) -> Int32? { processes[name]?.processIdentifier }

    func signal(_ name: String, _ signal: Int32 = SIGKILL) {
        guard let process = processes[name] else { return }
        Foundation.kill(process.processIdentifier, signal)
    }

    /// Waits for `name` to exit (after `signal`); its exit status.
    func waitForExit(_ name: String) -> Int32? {
        guard let process = processes.removeValue(forKey: name) else { return nil }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func stopAll() {
        for name in Array(processes.keys) {
            signal(name, SIGKILL)
            _ = waitForExit(name)
        }
    }

    func log(_ name: String) -> String {
        (try? String(contentsOfFile: cluster.root + "/\(name).log", encoding: .utf8)) ?? ""
    }
}

extension ProcessCluster {
    static let adminToken = "integration-tests-admin-token"

    /// `GET /workers` on node `id`: the worker ids of `service` it lists (nil: no answer).
    func workerIDs(on id: Int, service: String = "echo") async -> Set<String>? {
        let answer = await HTTP.request("GET", "http://127.0.0.1:\(http(id))/workers/\(service)")
        guard answer.status == 200,
            let object = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any],
            let workers = object["workers"] as? [[String: Any]]
        else { return nil }
        return Set(workers.compactMap { $0["id"] as? String })
    }

    /// One worker's entry in node `id`'s `GET /workers`.
    func workerEntry(on id: Int, service: String, worker: String) async -> [String: Any]? {
        let answer = await HTTP.request("GET", "http://127.0.0.1:\(http(id))/workers/\(service)")
        guard let object = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any],
            let workers = object["workers"] as? [[String: Any]]
        else { return nil }
        return workers.first { $0["id"] as? String == worker }
    }
}

/// A proxied answer: status, the worker that answered (from the echo's JSON), the JSON.
struct Proxied {
    var status: Int
    var worker: String?
    var json: [String: Any]?
    var body: String
}

func proxied(_ method: String = "GET", port: Int, path: String, body: String? = nil) async -> Proxied {
    let answer = await HTTP.request(method, "http://127.0.0.1:\(port)\(path)", body: body.map { Data($0.utf8) })
    let json = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]
    return Proxied(status: answer.status, worker: json?["worker"] as? String, json: json, body: answer.body)
}

/// A worker that answers `GET /health` correctly and everything else with garbage (`.garbage`) or
/// not at all (`.hang`): what passive ejection is for. Raw sockets on a thread of its own.
final class MisbehavingWorker: @unchecked Sendable {
    // @unchecked: `held` is only touched under `lock`; the descriptor is immutable after init.
    enum Mode { case garbage, hang }

    private let listener: Int32
    private let lock = NSLock()
    private var held: [Int32] = []

    init?(port: Int, mode: Mode) {
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
        let thread = Thread { [self] in acceptLoop(mode) }
        thread.start()
    }

    private func acceptLoop(_ mode: Mode) {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 { return }
            Thread { [self] in serve(connection, mode) }.start()
        }
    }

    private func serve(_ connection: Int32, _ mode: Mode) {
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard count > 0 else {
                close(connection)
                return
            }
            let request = String(decoding: buffer[..<count], as: UTF8.self)
            if request.hasPrefix("GET /health") {
                _ = LoopbackSocket.send(
                    Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8), on: connection)
                continue
            }
            switch mode {
            case .garbage:
                _ = LoopbackSocket.send(Array("THIS IS NOT HTTP\r\n\r\n".utf8), on: connection)
                close(connection)
                return
            case .hang:
                lock.withLock { held.append(connection) }
                return
            }
        }
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for connection in lock.withLock({ held }) { close(connection) }
    }
}

/// A chunked POST (no Content-Length, so the body limit can only be enforced while it streams)
/// over a raw socket; the answer's status, or nil if there was none.
func chunkedPostStatus(port: Int, path: String, chunks: Int, chunkSize: Int) -> Int? {
    guard let descriptor = LoopbackSocket.connect(port: port) else { return nil }
    defer { close(descriptor) }
    var request = Array("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
    let chunk =
        Array(String(chunkSize, radix: 16).utf8) + [13, 10] + [UInt8](repeating: 120, count: chunkSize) + [13, 10]
    for _ in 0..<chunks { request += chunk }
    request += Array("0\r\n\r\n".utf8)
    // The gateway may answer and stop reading before the whole body is sent; that is fine.
    _ = LoopbackSocket.send(request, on: descriptor)
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while !response.contains(10) {
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        response += buffer[..<count]
    }
    let parts = String(decoding: response.prefix { $0 != 13 }, as: UTF8.self).split(separator: " ")
    guard parts.count >= 2, parts[0].hasPrefix("HTTP/1.") else { return nil }
    return Int(parts[1])
}
