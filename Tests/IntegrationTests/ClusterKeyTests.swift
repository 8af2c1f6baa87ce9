import Foundation
import Testing

/// `serve` has no built-in secret: without a cluster key it refuses to start, unless told
/// explicitly (`--insecure-dev`) that this is a throwaway cluster.
@Suite("serve and the cluster key", .serialized)
struct ClusterKeyTests {
    @Test func withoutAClusterKeyServeExitsWithAClearMessage() async throws {
        let cluster = ProcessCluster()
        defer { cluster.stopAll() }
        cluster.keyArguments = []
        try cluster.start(1)
        let process = try #require(cluster.processes[1])
        #expect(await eventually { !process.isRunning }, "serve exits")
        #expect(!process.isRunning && process.terminationStatus != 0)
        let log = cluster.log(1)
        #expect(log.contains("no cluster key"), "\(log)")
        #expect(log.contains("RAFTGATE_CLUSTER_KEY") && log.contains("--insecure-dev"), "says what to do: \(log)")
    }

    @Test func withInsecureDevItStartsAndSaysSoLoudly() async throws {
        let cluster = ProcessCluster()
        defer { cluster.stopAll() }
        cluster.keyArguments = ["--insecure-dev"]
        for id in 1...3 { try cluster.start(id) }
        let leader = try #require(await cluster.leader(), "the three share the development key and elect a leader")
        #expect(await cluster.write(port: cluster.http(leader), key: "dev", value: "works"))
        #expect(cluster.log(1).contains("INSECURE"), "a loud warning")
    }

    @Test func aNodeWithAnotherKeyIsNotLetIn() async throws {
        let cluster = ProcessCluster()
        defer { cluster.stopAll() }
        for id in 1...2 { try cluster.start(id) }
        cluster.keyArguments = ["--cluster-key", "not-the-integration-tests-key"]
        try cluster.start(3)
        let leader = try #require(await cluster.leader(), "the two members elect a leader")
        #expect(leader != 3)
        #expect(await cluster.write(port: cluster.http(leader), key: "k", value: "v"))
        // The outsider dials the members and is refused, and never hears of a leader.
        #expect(await eventually { cluster.log(3).contains("peer handshake failed") }, "it says why")
        let outsider = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(3))/cluster")
        let view = try #require(try JSONSerialization.jsonObject(with: Data(outsider.body.utf8)) as? [String: Any])
        #expect(view["leader"] as? Int == nil, "\(outsider.body)")
    }
}
