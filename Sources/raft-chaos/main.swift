import Foundation
import Linearizability

/// `raft-chaos`: real raftgate clusters under a seeded nemesis, with a linearizability verdict.
/// Usage: raft-chaos [--seed S] [--nodes 3,5] [--seconds TOTAL] [--clients C] [--keys K]
///                   [--binary .build/debug/raftgate] [--results results/chaos] [--faults a,b]
/// Faults: killLeader, killAny, pause, isolateLeader, minorityPartition, bridge, tornWAL, restartAll.
/// Exits 1 when a history is not linearizable or an acknowledged write was lost.
struct ChaosOptions {
    var seed: UInt64 = UInt64(Date().timeIntervalSince1970)
    var nodeCounts = [3, 5]
    var seconds = 60
    var clients = 5
    var keys = 3
    var binary = ".build/debug/raftgate"
    var results = "results/chaos"
    var faults: Set<Nemesis.Fault> = []
    /// `--read-consistency stale`: clients read with `?consistency=stale`, which is allowed to be
    /// stale — the checker must then report a violation (a test of the harness itself).
    var readConsistency: String?

    static func parse(_ arguments: [String]) -> ChaosOptions {
        var options = ChaosOptions()
        var index = 0
        func value() -> String {
            index += 1
            guard index < arguments.count else {
                print("missing value after \(arguments[index - 1])")
                exit(2)
            }
            return arguments[index]
        }
        while index < arguments.count {
            switch arguments[index] {
            case "--seed": options.seed = UInt64(value()) ?? options.seed
            case "--nodes": options.nodeCounts = value().split(separator: ",").compactMap { Int($0) }
            case "--seconds": options.seconds = Int(value()) ?? options.seconds
            case "--clients": options.clients = Int(value()) ?? options.clients
            case "--keys": options.keys = Int(value()) ?? options.keys
            case "--binary": options.binary = value()
            case "--results": options.results = value()
            case "--read-consistency": options.readConsistency = value()
            case "--faults":
                for name in value().split(separator: ",") {
                    guard let fault = Nemesis.Fault(rawValue: String(name)) else {
                        print("unknown fault \(name); known: \(Nemesis.Fault.allCases.map(\.rawValue))")
                        exit(2)
                    }
                    options.faults.insert(fault)
                }
            default:
                print("unknown argument \(arguments[index])")
                exit(2)
            }
            index += 1
        }
        return options
    }
}

func waitUntil(seconds: Double, _ condition: () async -> Bool) async -> Bool {
    let deadline = monotonicNow() + UInt64(seconds * 1e9)
    while monotonicNow() < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(100))
    }
    return false
}

func runRound(options: ChaosOptions, nodes: Int, seed: UInt64, firewall: Firewall?) async throws -> ChaosReport {
    let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
    let directory = "\(options.results)/\(stamp)-n\(nodes)-seed\(seed)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let cluster = ChaosCluster(
        nodeCount: nodes, executable: options.binary, directory: directory, firewall: firewall)
    let haproxy = ["/usr/sbin/haproxy", "/usr/bin/haproxy"].first { FileManager.default.isExecutableFile(atPath: $0) }
    guard let haproxy else { throw ChaosFailure("haproxy is not installed (make deps installs it)") }
    for id in cluster.ids { try await cluster.start(id) }
    try await cluster.startHAProxy(haproxyPath: haproxy)
    defer { Task { await cluster.stopAll() } }
    print("chaos: \(nodes) nodes on \(cluster.ids.map(cluster.address).joined(separator: ", ")), seed \(seed)")
    guard
        await waitUntil(
            seconds: 30, { await ChaosHTTP.send("PUT", cluster.proxyURL + "/kv/_ready", body: "1").status == 200 })
    else { throw ChaosFailure("the cluster did not accept a write through HAProxy within 30 s") }

    let keys = (0..<options.keys).map { "key\($0)" }
    let recorder = HistoryRecorder()
    let start = monotonicNow()
    let deadline = start + UInt64(options.seconds) * 1_000_000_000
    var nemesis = Nemesis(cluster: cluster, seed: seed)
    nemesis.allowed = options.faults
    let faultLog: [(at: UInt64, event: String)] = try await withThrowingTaskGroup(of: [(UInt64, String)].self) {
        group in
        for clientID in 0..<options.clients {
            group.addTask {
                var client = ChaosClient(
                    id: clientID, keys: keys, cluster: cluster, recorder: recorder,
                    seed: seed &* 31 &+ UInt64(clientID) &+ 1)
                client.readQuery = options.readConsistency.map { "?consistency=\($0)" } ?? ""
                await client.run(until: deadline)
                return []
            }
        }
        group.addTask { [nemesis] in
            var nemesis = nemesis
            // Faults stop a few seconds before the end so the last ones heal under load too.
            while monotonicNow() + 5_000_000_000 < deadline {
                try await Task.sleep(for: .milliseconds(500 + Int(nemesis.random.next(below: 1500))))
                try await nemesis.runOne()
            }
            return nemesis.log.map { ($0.at, $0.event) }
        }
        var log: [(UInt64, String)] = []
        for try await part in group { log += part }
        return log.map { (at: $0.0, event: $0.1) }
    }
    try await cluster.healAll()
    let end = monotonicNow()
    print("  healed; final reads")
    guard
        await waitUntil(
            seconds: 30, { await ChaosHTTP.send("PUT", cluster.proxyURL + "/kv/_ready", body: "2").status == 200 })
    else { throw ChaosFailure("no write succeeded within 30 s of healing") }
    var finalValues: [String: String?] = [:]
    for key in keys {
        var answered = false
        for _ in 0..<100 where !answered {
            let invoked = monotonicNow()
            let answer = await ChaosHTTP.send("GET", cluster.proxyURL + "/kv/\(key)")
            let completed = monotonicNow()
            if let observed = ChaosClient.observedValue(answer) {
                finalValues[key] = .some(observed)
                await recorder.record(
                    HistoryOperation(
                        client: -1, key: key, kind: .read(observed: observed), outcome: .ok, invokedAt: invoked,
                        completedAt: completed))
                answered = true
            } else {
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }
    await cluster.stopAll()
    let history = await recorder.operations
    let report = ChaosReport(
        seed: seed, nodes: nodes, seconds: options.seconds, clients: options.clients, keys: keys, history: history,
        start: start, end: end, faults: faultLog, finalValues: finalValues)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(report).write(to: URL(fileURLWithPath: directory + "/report.json"))
    try (report.table + "\n\nfaults:\n" + report.faults.joined(separator: "\n") + "\n").write(
        toFile: directory + "/report.txt", atomically: true, encoding: .utf8)
    try encoder.encode(history).write(to: URL(fileURLWithPath: directory + "/history.json"))
    print(report.table)
    print("  report: \(directory)/report.txt")
    return report
}

struct ChaosFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// `raft-chaos --check history.json`: the checker alone, on a history a run saved.
if CommandLine.arguments.count == 3 && CommandLine.arguments[1] == "--check" {
    let data = try Data(contentsOf: URL(fileURLWithPath: CommandLine.arguments[2]))
    let history = try JSONDecoder().decode([HistoryOperation].self, from: data)
    let started = monotonicNow()
    let budget = ProcessInfo.processInfo.environment["CHECK_BUDGET"].flatMap(Int.init) ?? 5_000_000
    let report = LinearizabilityChecker.check(history, budgetPerKey: budget)
    print(
        "\(report.verdict) — \(history.count) operations, \(report.keys) keys, \(report.statesExplored) states, \((monotonicNow() - started) / 1_000_000) ms"
    )
    exit(report.verdict == .linearizable ? 0 : 1)
}

let options = ChaosOptions.parse(Array(CommandLine.arguments.dropFirst()))
let firewall = Firewall.make()
if firewall == nil { print("chaos: iptables unavailable (not root?): partitions are skipped") }
var failed = false
do {
    // --seconds is the whole run's length, shared by the rounds (one per cluster size).
    var perRound = options
    perRound.seconds = max(10, options.seconds / max(1, options.nodeCounts.count))
    for (round, nodes) in options.nodeCounts.enumerated() {
        let report = try await runRound(
            options: perRound, nodes: nodes, seed: options.seed &+ UInt64(round), firewall: firewall)
        if report.verdict != "linearizable" || report.acknowledgedWritesLost > 0 { failed = true }
    }
} catch {
    print("chaos: \(error)")
    failed = true
}
firewall?.remove()
if failed {
    print(
        "chaos: FAILED — replay the same faults with: .build/release/raft-chaos --seed \(options.seed) --nodes \(options.nodeCounts.map(String.init).joined(separator: ",")) --seconds \(options.seconds)"
    )
    exit(1)
}
print("chaos: every history linearizable, no acknowledged write lost")
