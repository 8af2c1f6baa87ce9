import Foundation
import Linearizability

/// The faults, chosen from the run's seed. Each is injected, held for a while, then healed;
/// `log` keeps what happened when, for the report.
struct Nemesis {
    enum Fault: String, CaseIterable, Sendable {
        case killLeader, killAny, pause, isolateLeader, minorityPartition, bridge, tornWAL, restartAll
    }

    let cluster: ChaosCluster
    var random: SplitMix64
    /// Restricts the faults (`--faults`); all of them when empty.
    var allowed: Set<Fault> = []
    private(set) var log: [(at: UInt64, event: String)] = []

    init(cluster: ChaosCluster, seed: UInt64) {
        self.cluster = cluster
        random = SplitMix64(seed: seed)
    }

    mutating func note(_ event: String) {
        log.append((monotonicNow(), event))
        print("  nemesis: \(event)")
    }

    /// The faults this machine can make (partitions need iptables).
    var available: [Fault] {
        Fault.allCases.filter { fault in
            if !allowed.isEmpty && !allowed.contains(fault) { return false }
            switch fault {
            case .isolateLeader, .minorityPartition, .bridge: return cluster.firewall != nil
            default: return true
            }
        }
    }

    /// Runs one fault: inject, hold, heal. Returns when the cluster has been healed.
    mutating func runOne() async throws {
        let faults = available
        let fault = faults[Int(random.next(below: UInt64(faults.count)))]
        let hold = Duration.milliseconds(1000 + Int(random.next(below: 3000)))
        let ids = cluster.ids
        func pick() -> Int { ids[Int(random.next(below: UInt64(ids.count)))] }
        switch fault {
        case .killLeader:
            guard let leader = await currentLeader() else { return note("no leader to kill") }
            note("SIGKILL leader n\(leader)")
            await cluster.kill(leader)
            try await Task.sleep(for: hold)
            note("restart n\(leader)")
            try await cluster.start(leader)
        case .killAny:
            let victim = pick()
            note("SIGKILL n\(victim)")
            await cluster.kill(victim)
            try await Task.sleep(for: hold)
            note("restart n\(victim)")
            try await cluster.start(victim)
        case .pause:
            let victim = await currentLeader().flatMap { random.next(below: 2) == 0 ? $0 : nil } ?? pick()
            note("SIGSTOP n\(victim) for \(hold)")
            await cluster.pause(victim)
            try await Task.sleep(for: hold)
            note("SIGCONT n\(victim)")
            await cluster.resume(victim)
        case .isolateLeader:
            guard let leader = await currentLeader() else { return note("no leader to isolate") }
            try await partition(
                "isolate leader n\(leader) from its peers", [leader], ids.filter { $0 != leader }, for: hold)
        case .minorityPartition:
            var shuffled = ids
            for index in shuffled.indices.reversed() where index > 0 {
                shuffled.swapAt(index, Int(random.next(below: UInt64(index + 1))))
            }
            let minority = Array(shuffled.prefix((ids.count - 1) / 2))
            let majority = Array(shuffled.dropFirst(minority.count))
            try await partition("partition \(names(minority)) | \(names(majority))", minority, majority, for: hold)
        case .bridge:
            // Two halves that cannot see each other, and one node that sees both (Jepsen's bridge).
            let bridge = pick()
            let others = ids.filter { $0 != bridge }
            let left = Array(others.prefix(others.count / 2))
            let right = Array(others.dropFirst(left.count))
            try await partition("bridge through n\(bridge): \(names(left)) | \(names(right))", left, right, for: hold)
        case .tornWAL:
            // What power loss leaves when it strikes mid-append: the start of a record that was
            // never completed — so never fsync'ed, never acknowledged. (Cutting into records that
            // were acknowledged would break Raft's durability assumption: the first run of this
            // harness did that, and the follower, missing entries its leader had counted, stayed
            // stuck forever, as in etcd, whose leader ignores rejections below a follower's match
            // index.) The torn bytes are a prefix of the segment's first record: a real header
            // whose record is cut short, or a header cut short.
            let victim = pick()
            await cluster.kill(victim)
            if let segment = cluster.newestWALSegment(victim),
                let bytes = FileManager.default.contents(atPath: segment),
                bytes.count > 24
            {
                let torn = 1 + Int(random.next(below: 20))
                appendBytes(Array(bytes.prefix(torn)), to: segment)
                note(
                    "SIGKILL n\(victim), append a torn \(torn)-byte record to \(segment.split(separator: "/").last!), restart"
                )
            } else {
                note("SIGKILL n\(victim) (no WAL yet), restart")
            }
            try await cluster.start(victim)
            try await Task.sleep(for: hold)
            note(await caughtUp(victim) ? "n\(victim) caught up" : "n\(victim) did not catch up within 20 s")
        case .restartAll:
            note("SIGKILL every node")
            for id in ids { await cluster.kill(id) }
            try await Task.sleep(for: .milliseconds(300))
            note("restart every node")
            for id in ids { try await cluster.start(id) }
            try await Task.sleep(for: hold)
        }
    }

    /// Cuts `left` from `right` for `hold`, then heals.
    mutating func partition(_ description: String, _ left: [Int], _ right: [Int], for hold: Duration) async throws {
        note("\(description) for \(hold)")
        cluster.firewall?.cut(left.map(cluster.address), from: right.map(cluster.address))
        try await Task.sleep(for: hold)
        note("heal")
        cluster.firewall?.heal()
    }

    func names(_ ids: [Int]) -> String { "\(ids.map { "n\($0)" })" }

    func currentLeader() async -> Int? {
        for id in cluster.ids {
            guard await cluster.isRunning(id), await !cluster.isPaused(id) else { continue }
            let answer = await ChaosHTTP.send("GET", "http://\(cluster.address(id)):\(cluster.healthPort)/primary")
            if answer.status == 200 { return id }
        }
        return nil
    }

    /// Waits until `id` has applied everything the leader had committed when the wait began.
    mutating func caughtUp(_ id: Int) async -> Bool {
        let deadline = monotonicNow() + 20_000_000_000
        var target: Int?
        while monotonicNow() < deadline {
            if target == nil, let leader = await currentLeader() {
                target = await ChaosHTTP.send("GET", cluster.httpURL(leader) + "/cluster").body?["commitIndex"] as? Int
            }
            let answer = await ChaosHTTP.send("GET", cluster.httpURL(id) + "/cluster")
            if let target, let applied = answer.body?["appliedIndex"] as? Int, applied >= target { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    func appendBytes(_ bytes: [UInt8], to path: String) {
        guard let handle = FileHandle(forWritingAtPath: path) else { return }
        handle.seekToEndOfFile()
        handle.write(Data(bytes))
        try? handle.close()
    }
}
