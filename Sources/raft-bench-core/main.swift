import Foundation
import Raft

// `make bench-core`: three real cores in one process, messages handed over in memory, no disk,
// no sockets. Measures how many entries per second the consensus logic itself can commit with
// 1, 16 and 256 proposals in flight, so that the core is never what limits a write.

struct InMemoryCluster {
    var nodes: [RaftCore]
    var inbox: [Message] = []
    var committedCommands = 0

    init(size: Int) throws {
        let voters = (1...size).map { NodeID($0) }
        nodes = try voters.map { id in
            var options = RaftOptions(id: id)
            options.randomSeed = id
            return try RaftCore(options: options, restoring: .bootstrap(voters: voters))
        }
        // Let the boot lease (one election timeout) pass, then elect node 1.
        for _ in 0..<nodes[0].options.electionTimeout {
            for index in nodes.indices { nodes[index].tick() }
        }
        nodes[0].campaign()
        for _ in 0..<100 where nodes[0].role != .leader { pump() }
        guard nodes[0].role == .leader else { fatalError("node 1 was not elected") }
    }

    /// Hands every node's Ready to the "host" (which persists nothing and applies by counting),
    /// then delivers every message. Compacts now and then so memory stays flat.
    mutating func pump() {
        for index in nodes.indices where nodes[index].hasReady {
            let ready = nodes[index].ready()
            inbox.append(contentsOf: ready.messages)
            if index == 0 {
                for entry in ready.committedEntries where entry.kind == .command { committedCommands += 1 }
            }
            nodes[index].advance()
            let applied = nodes[index].appliedIndex
            if applied >= nodes[index].snapshotIndex + 50_000 {
                try! nodes[index].compact(upTo: applied, snapshotData: [])
            }
        }
        let delivering = inbox
        inbox.removeAll(keepingCapacity: true)
        for message in delivering { nodes[Int(message.to) - 1].step(message) }
    }
}

func measure(inFlight: Int, entries: Int, payload: [UInt8]) throws -> Double {
    var cluster = try InMemoryCluster(size: 3)
    var proposed = 0
    let clock = ContinuousClock()
    let start = clock.now
    while cluster.committedCommands < entries {
        while proposed - cluster.committedCommands < inFlight && proposed < entries {
            guard case .accepted = cluster.nodes[0].propose(payload) else { fatalError("leader lost leadership") }
            proposed += 1
        }
        cluster.pump()
    }
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return Double(entries) / seconds
}

let payload = [UInt8](repeating: 0x61, count: 64)
// `raft-bench-core --in-flight N --entries M` measures one configuration (for profiling).
var runs = [(1, 200_000), (16, 1_000_000), (256, 2_000_000)]
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.count == 4, arguments[0] == "--in-flight", arguments[2] == "--entries",
    let inFlight = Int(arguments[1]), let entries = Int(arguments[3]), inFlight > 0, entries > 0
{
    runs = [(inFlight, entries)]
} else if !arguments.isEmpty {
    print("usage: raft-bench-core [--in-flight N --entries M]")
    exit(2)
}
print("raft core, 3 nodes in memory, 64-byte entries (no disk, no network)")
print("| in flight | entries | entries/s |")
print("|---:|---:|---:|")
for (inFlight, count) in runs {
    _ = try measure(inFlight: inFlight, entries: count / 10, payload: payload)  // warm up
    let rate = try measure(inFlight: inFlight, entries: count, payload: payload)
    print("| \(inFlight) | \(count) | \(Int(rate)) |")
}
