import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Three real `raftgate serve` processes on 127.0.0.1, driven over HTTP like a user would.
@Suite("raftgate processes", .serialized)
struct ProcessClusterTests {
    /// The executable `swift build` produced next to this package.
    static var executable: String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/raftgate").path
    }

    final class Cluster {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("procs-\(UUID().uuidString)").path
        /// HTTP, health and Raft ports per node, below the ephemeral range and picked per run.
        let base = Int.random(in: 200..<290) * 100
        var processes: [Int: Process] = [:]

        func http(_ id: Int) -> Int { base + id }
        func health(_ id: Int) -> Int { base + 10 + id }
        func raft(_ id: Int) -> Int { base + 20 + id }

        func start(_ id: Int) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: ProcessClusterTests.executable)
            process.arguments = [
                "serve", "--id", "\(id)", "--data-dir", root + "/node-\(id)",
                "--http", "127.0.0.1:\(http(id))", "--health", "127.0.0.1:\(health(id))",
                "--raft", "127.0.0.1:\(raft(id))", "--tick-ms", "20",
                "--peers", (1...3).map { "\($0)=127.0.0.1:\(raft($0))" }.joined(separator: ","),
            ]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            processes[id] = process
        }

        func kill(_ id: Int) {
            guard let process = processes.removeValue(forKey: id) else { return }
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        func stopAll() {
            for id in Array(processes.keys) { kill(id) }
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    static func request(
        _ method: String, _ url: String, body: String? = nil
    ) async -> (status: Int, body: String) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        request.timeoutInterval = 10
        if let body { request.httpBody = Data(body.utf8) }
        guard let (data, response) = try? await URLSession.shared.data(for: request),
            let http = response as? HTTPURLResponse
        else { return (0, "") }
        return (http.statusCode, String(decoding: data, as: UTF8.self))
    }

    /// Polls every node's /primary until exactly one answers 200.
    static func leader(_ cluster: Cluster, within seconds: Double = 20) async -> Int? {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            var leaders: [Int] = []
            for id in cluster.processes.keys.sorted()
            where await request("GET", "http://127.0.0.1:\(cluster.health(id))/primary").status == 200 {
                leaders.append(id)
            }
            if leaders.count == 1 { return leaders[0] }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// Writes through `id`, retrying 503/504 (no leader yet, or the outcome unknown) until 200.
    static func write(_ cluster: Cluster, via id: Int, key: String, value: String) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let response = await request(
                "PUT", "http://127.0.0.1:\(cluster.http(id))/kv/\(key)", body: value)
            if response.status == 200 { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test func killTheLeaderLoseNothingRestartCatchUp() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable), "build raftgate first")
        let cluster = Cluster()
        defer { cluster.stopAll() }
        for id in 1...3 { try cluster.start(id) }
        let leader = try #require(await Self.leader(cluster))
        let follower = leader % 3 + 1
        for index in 0..<10 {
            #expect(
                await Self.write(cluster, via: index % 2 == 0 ? leader : follower, key: "k\(index)", value: "v\(index)")
            )
        }
        for id in 1...3 {
            let read = await Self.request("GET", "http://127.0.0.1:\(cluster.http(id))/kv/k9")
            #expect(read.status == 200 && read.body.contains("\"v9\""), "n\(id): \(read)")
        }
        cluster.kill(leader)
        let newLeader = try #require(await Self.leader(cluster), "a new leader")
        #expect(newLeader != leader)
        for index in 0..<10 {
            let read = await Self.request("GET", "http://127.0.0.1:\(cluster.http(newLeader))/kv/k\(index)")
            #expect(read.body.contains("\"v\(index)\""), "acknowledged write k\(index) survives")
        }
        #expect(await Self.write(cluster, via: follower == leader ? newLeader : follower, key: "after", value: "kill"))
        try cluster.start(leader)
        let deadline = ContinuousClock.now + .seconds(20)
        var caughtUp = false
        while !caughtUp && ContinuousClock.now < deadline {
            let read = await Self.request("GET", "http://127.0.0.1:\(cluster.http(leader))/kv/after?consistency=stale")
            caughtUp = read.status == 200 && read.body.contains("\"kill\"")
            if !caughtUp { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(caughtUp, "the restarted node caught up")
    }
}
