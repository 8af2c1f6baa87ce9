import Foundation
import Testing

/// The three-node example as users run it: the example's node configs and haproxy.cfg (ports
/// moved to this run's), real HAProxy in front, curl-like clients.
@Suite("three nodes behind HAProxy", .serialized)
struct HAProxyClusterTests {
    static func exampleCluster() throws -> ProcessCluster {
        try #require(FileManager.default.isExecutableFile(atPath: ProcessCluster.executable), "build raftgate first")
        try #require(ProcessCluster.haproxyPath != nil, "haproxy is installed by `make deps`")
        let cluster = ProcessCluster()
        cluster.configFile = { id in
            ProcessCluster.packageRoot.appendingPathComponent("examples/three-nodes/node\(id).json").path
        }
        cluster.extraArguments = []
        // The example's files carry the cluster key: this is how users run it.
        cluster.keyArguments = []
        for id in 1...3 { try cluster.start(id) }
        try cluster.startHAProxy()
        return cluster
    }

    /// The example cluster once HAProxy routes both ways: a write reached the leader, and a read
    /// reached a ready node (raftgate's own JSON 404, not HAProxy's 503 page).
    static func servingExampleCluster() async throws -> ProcessCluster {
        let cluster = try exampleCluster()
        guard await cluster.write(port: cluster.frontend, key: "first", value: "1"),
            await cluster.read(port: cluster.frontend, path: "/kv/never-written").status == 404
        else {
            cluster.stopAll()
            throw ClusterNotServing()
        }
        return cluster
    }

    struct ClusterNotServing: Error {}

    @Test func writeThroughHAProxyKillTheLeaderNothingLost() async throws {
        let cluster = try await Self.servingExampleCluster()
        defer { cluster.stopAll() }
        let proxy = "http://127.0.0.1:\(cluster.frontend)"
        var acknowledged: [String: String] = ["first": "1"]
        for index in 0..<20 {
            let posted = await HTTP.request("POST", proxy + "/kv", body: #"{"key":"k\#(index)","value":"v\#(index)"}"#)
            #expect(posted.status == 200, "write k\(index) through HAProxy: \(posted)")
            if posted.status == 200 { acknowledged["k\(index)"] = "v\(index)" }
        }
        // Read back through every node directly (linearizable by default), and through the proxy.
        for id in 1...3 {
            for (key, value) in acknowledged {
                let read = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(id))/kv/\(key)")
                #expect(read.status == 200 && read.body.contains("\"\(value)\""), "n\(id) reads \(key): \(read)")
            }
        }
        let viaProxy = await cluster.read(port: cluster.frontend, path: "/kv/k7")
        #expect(viaProxy.status == 200 && viaProxy.body.contains("\"v7\""))

        let oldLeader = try #require(await cluster.leader())
        let killedAt = ContinuousClock.now
        cluster.kill(oldLeader)
        #expect(await cluster.write(port: cluster.frontend, key: "after", value: "failover", within: 15))
        let failover = ContinuousClock.now - killedAt
        acknowledged["after"] = "failover"
        let newLeader = try #require(await cluster.leader(excluding: oldLeader), "/primary moved")
        #expect(newLeader != oldLeader)
        // Safety net only (the measured number is in the README and `make failover-demo`).
        #expect(failover < .seconds(15))
        for (key, value) in acknowledged {
            let read = await cluster.read(port: cluster.frontend, path: "/kv/\(key)")
            #expect(read.status == 200 && read.body.contains("\"\(value)\""), "acknowledged \(key) survives: \(read)")
        }
        try cluster.start(oldLeader)
        #expect(
            await ProcessClusterTests.eventuallyReads(cluster, node: oldLeader, key: "after", value: "failover"),
            "the restarted node caught up")
        #expect(await cluster.write(port: cluster.frontend, key: "later", value: "ok"))
    }

    /// HAProxy's checks arrive as HTTP/1.0 without a Host header, as GET, HEAD or OPTIONS.
    @Test func healthChecksAnswerHTTP10WithoutHost() async throws {
        let cluster = try Self.exampleCluster()
        defer { cluster.stopAll() }
        let leader = try #require(await cluster.settledLeader())
        for id in 1...3 {
            for method in ["GET", "HEAD", "OPTIONS"] {
                for port in [cluster.health(id), cluster.http(id)] {
                    let primary = HTTP.rawStatus(method, "/primary", port: port)
                    #expect(primary == (id == leader ? 200 : 503), "\(method) /primary on n\(id):\(port)")
                    #expect(HTTP.rawStatus(method, "/health/live", port: port) == 200)
                    #expect(HTTP.rawStatus(method, "/health/ready", port: port) == 200)
                }
            }
        }
        // The health-only listener serves nothing else.
        #expect(HTTP.rawStatus("GET", "/kv/anything", port: cluster.health(leader)) == 404)
    }

    /// Bad input through the proxy: a clear 4xx each, nothing changed, the node keeps serving.
    @Test func badInputThroughHAProxy() async throws {
        let cluster = try await Self.servingExampleCluster()
        defer { cluster.stopAll() }
        let proxy = "http://127.0.0.1:\(cluster.frontend)"
        #expect(await cluster.write(port: cluster.frontend, key: "existing", value: "kept"))
        let before = await cluster.read(port: cluster.frontend, path: "/kv?prefix=")
        let cases: [(String, String, Data?, Int)] = [
            ("POST", "/kv", Data("{not json".utf8), 400),
            ("POST", "/kv", Data(#"{"key": 1, "value": true}"#.utf8), 400),
            ("POST", "/kv", Data(#"{"key": "", "value": "x"}"#.utf8), 400),
            ("PUT", "/kv/" + String(repeating: "k", count: 5000), Data("x".utf8), 400),
            ("PUT", "/kv/big", Data(count: 2 << 20), 413),
            ("POST", "/kv", Data(#"{"key": "/_sys/members/1", "value": "x"}"#.utf8), 403),
            ("POST", "/kv", Data(#"{"key": "/_sys/config/t", "value": "x"}"#.utf8), 403),
            ("GET", "/no/such/route", nil, 404),
        ]
        for (method, path, body, expected) in cases {
            let response = await HTTP.request(method, proxy + path, body: body)
            #expect(response.status == expected, "\(method) \(path.prefix(40)): \(response.status) \(response.body)")
            #expect(response.body.contains("\"error\""), "a JSON error for \(method) \(path.prefix(40))")
        }
        let after = await cluster.read(port: cluster.frontend, path: "/kv?prefix=")
        #expect(after.status == 200)
        #expect(after.body == before.body, "nothing changed")
        #expect(await cluster.write(port: cluster.frontend, key: "still", value: "serving"))
    }
}
