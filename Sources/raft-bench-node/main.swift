import Foundation
import Node
import Raft

// `make bench-node`: three nodes in one process, real sockets on 127.0.0.1 and real WALs in a
// data directory. For 1, 16 and 64 concurrent writers: committed writes per second, latency, and
// how many entries each fsync on the leader carried (group commit at work).

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func startCluster(root: String, basePort: Int) async throws -> [RaftNode] {
    var peers: [NodeID: (host: String, port: Int)] = [:]
    for id in NodeID(1)...3 { peers[id] = ("127.0.0.1", basePort + Int(id)) }
    var nodes: [RaftNode] = []
    for id in NodeID(1)...3 {
        var configuration = NodeConfiguration(
            id: id, dataDirectory: root + "/node-\(id)", raftHost: "127.0.0.1", raftPort: basePort + Int(id),
            initialVoters: [1, 2, 3], peers: peers, clusterKey: try ClusterKey("raft-bench-node-cluster-key"))
        configuration.tickInterval = .milliseconds(20)
        nodes.append(try await RaftNode.start(configuration))
    }
    return nodes
}

func leader(of nodes: [RaftNode]) async -> RaftNode? {
    for _ in 0..<500 {
        for node in nodes where await node.isLeader { return node }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return nil
}

func measure() async throws {
    let root = CommandLine.arguments.dropFirst().first ?? ".build/bench-node"
    try? FileManager.default.removeItem(atPath: root)
    defer { try? FileManager.default.removeItem(atPath: root) }
    let nodes = try await startCluster(root: root, basePort: 21_000 + Int.random(in: 0..<4000))
    guard let leader = await leader(of: nodes) else {
        print("no leader elected")
        exit(1)
    }
    print("3 nodes in one process, TCP on 127.0.0.1, WAL fsync before acknowledging, 64-byte values")
    print("| writers | writes/s | p50 latency | p99 latency | entries per leader fsync |")
    print("|---:|---:|---:|---:|---:|")
    let value = [UInt8](repeating: 0x61, count: 64)
    for writers in [1, 16, 64] {
        let entriesBefore = await leader.persistedEntries
        let fsyncsBefore = await leader.walFsyncs
        let clock = ContinuousClock()
        let start = clock.now
        let duration = Duration.seconds(3)
        let latencies = await withTaskGroup(of: [Double].self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var own: [Double] = []
                    var sequence = 0
                    while clock.now - start < duration {
                        let began = clock.now
                        let command = StoreCommand(operation: .put(key: "w\(writer)/\(sequence % 100)", value: value))
                        guard case .applied = await leader.write(command) else { continue }
                        own.append(seconds(clock.now - began) * 1e6)
                        sequence += 1
                    }
                    return own
                }
            }
            var all: [Double] = []
            for await part in group { all += part }
            return all.sorted()
        }
        let elapsed = seconds(clock.now - start)
        let entries = await leader.persistedEntries - entriesBefore
        let fsyncs = await leader.walFsyncs - fsyncsBefore
        func percentile(_ p: Double) -> Int {
            latencies.isEmpty ? 0 : Int(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))])
        }
        let perFsync = fsyncs == 0 ? 0 : Double(entries) / Double(fsyncs)
        print(
            "| \(writers) | \(Int(Double(latencies.count) / elapsed)) | \(percentile(0.5)) µs | \(percentile(0.99)) µs | \(String(format: "%.1f", perFsync)) |"
        )
    }
    for node in nodes { await node.stop() }
}

try await measure()
