import Foundation
import TestSupport
import Testing

/// Three real `raftgate serve` processes on 127.0.0.1, driven over HTTP like a user would.
@Suite("raftgate processes", .serialized)
struct ProcessClusterTests {
    @Test func killTheLeaderLoseNothingRestartCatchUp() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: ProcessCluster.executable), "build raftgate first")
        let cluster = ProcessCluster()
        defer { cluster.stopAll() }
        for id in 1...3 { try cluster.start(id) }
        let leader = try #require(await cluster.leader())
        let follower = leader % 3 + 1
        for index in 0..<10 {
            let via = index % 2 == 0 ? leader : follower
            #expect(await cluster.write(port: cluster.http(via), key: "k\(index)", value: "v\(index)"))
        }
        for id in 1...3 {
            let read = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(id))/kv/k9")
            #expect(read.status == 200 && read.body.contains("\"v9\""), "n\(id): \(read)")
        }
        let endpoints = (1...3).map { "127.0.0.1:\(cluster.http($0))" }.joined(separator: ",")
        let table = try Self.run(["status", "--endpoints", endpoints])
        #expect(table.status == 0, "\(table.output)")
        let rows = table.output.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        #expect(rows.first?.first == "NODE")
        let leaderRow = rows.first { $0.first == "n\(leader)" }
        #expect(leaderRow?[2] == "leader" && leaderRow?[8] == "0", "\(table.output)")
        #expect(rows.filter { $0.count >= 3 && $0[2] == "follower" }.count == 2, "\(table.output)")
        cluster.kill(leader)
        let newLeader = try #require(await cluster.leader(excluding: leader), "a new leader")
        let afterKill = try Self.run(["status", "--endpoints", endpoints])
        #expect(afterKill.status == 0 && afterKill.output.contains("unreachable"), "\(afterKill.output)")
        for index in 0..<10 {
            let read = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(newLeader))/kv/k\(index)")
            #expect(read.body.contains("\"v\(index)\""), "acknowledged write k\(index) survives")
        }
        let survivor = follower == leader ? newLeader : follower
        #expect(await cluster.write(port: cluster.http(survivor), key: "after", value: "kill"))
        try cluster.start(leader)
        #expect(await Self.eventuallyReads(cluster, node: leader, key: "after", value: "kill"), "caught up")
    }

    /// Runs the raftgate executable to completion; its exit status and standard output.
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessCluster.executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    @Test func statusFailsWhenNoNodeAnswers() throws {
        let port = TestPorts.block()
        let result = try Self.run(["status", "--endpoints", "127.0.0.1:\(port)"])
        #expect(result.status == 1)
        #expect(result.output.contains("unreachable"))
    }

    /// Polls a stale (local) read on one node until it shows the value.
    static func eventuallyReads(_ cluster: ProcessCluster, node: Int, key: String, value: String) async -> Bool {
        await eventually {
            let read = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(node))/kv/\(key)?consistency=stale")
            return read.status == 200 && read.body.contains("\"\(value)\"")
        }
    }

    /// A config file supplies what flags do not; a flag overrides the file.
    @Test func configFileAndFlagPrecedence() async throws {
        let cluster = ProcessCluster()
        defer { cluster.stopAll() }
        cluster.configFile = { id in
            let path = cluster.root + "/node\(id).json"
            let text = """
                {"id": \(id), "http": "127.0.0.1:1", "tickMs": 20, "maxBodyBytes": 64, "logLevel": "warning"}
                """
            _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
            return path
        }
        cluster.extraArguments = []
        for id in 1...3 { try cluster.start(id) }
        // The file's "http" is overridden by --http (else nothing would listen on the test ports),
        // while its maxBodyBytes (64) holds: a 65-byte body is refused.
        let leader = try #require(await cluster.leader())
        #expect(await cluster.write(port: cluster.http(leader), key: "small", value: "fits"))
        let large = await HTTP.request(
            "PUT", "http://127.0.0.1:\(cluster.http(leader))/kv/large", body: String(repeating: "x", count: 65))
        #expect(large.status == 413)
        // logLevel from the file: at "warning" the info line every start writes is not there.
        #expect(!cluster.log(leader).contains("starting"), "logLevel from the file")
    }

    @Test func aBadConfigFileIsAClearError() async throws {
        let cluster = ProcessCluster()
        defer { cluster.stopAll() }
        let path = cluster.root + "/broken.json"
        _ = FileManager.default.createFile(atPath: path, contents: Data("{\"id\": 1,".utf8))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessCluster.executable)
        process.arguments = ["serve", "--config", path]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        #expect(output.contains("not valid JSON"), "\(output)")
    }
}
