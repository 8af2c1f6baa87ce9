import Foundation
import Linearizability

/// What a chaos run found, as JSON and as a short text table.
struct ChaosReport: Codable {
    var seed: UInt64
    var nodes: Int
    var seconds: Int
    var clients: Int
    var keys: [String]
    var verdict: String
    var violation: String?
    var operations: Int
    var ok: Int
    var failed: Int
    var unknown: Int
    var writesAcknowledged: Int
    var acknowledgedWritesLost: Int
    var longestWindowWithoutWriteMilliseconds: Int
    var statesExplored: Int
    var faults: [String]
    var finalValues: [String: String]

    init(
        seed: UInt64, nodes: Int, seconds: Int, clients: Int, keys: [String], history: [HistoryOperation],
        start: UInt64, end: UInt64, faults: [(at: UInt64, event: String)], finalValues: [String: String?]
    ) {
        self.seed = seed
        self.nodes = nodes
        self.seconds = seconds
        self.clients = clients
        self.keys = keys
        let report = LinearizabilityChecker.check(history)
        switch report.verdict {
        case .linearizable: verdict = "linearizable"
        case .notLinearizable(_, _, let explanation):
            verdict = "NOT linearizable"
            violation = explanation
        case .undecided(let key): verdict = "undecided (search budget exceeded on \(key))"
        }
        statesExplored = report.statesExplored
        operations = history.count
        ok = history.filter { $0.outcome == .ok }.count
        failed = history.filter { $0.outcome == .failed }.count
        unknown = history.filter { $0.outcome == .unknown }.count
        let mutations = history.filter {
            if case .read = $0.kind { return false }
            if case .compareAndSet(_, _, false) = $0.kind { return false }
            return true
        }
        writesAcknowledged = mutations.filter { $0.outcome == .ok }.count
        acknowledgedWritesLost = Self.lostWrites(mutations, finalValues: finalValues)
        let writeTimes = mutations.filter { $0.outcome == .ok }.map(\.completedAt).sorted()
        var longest: UInt64 = 0
        var previous = start
        for time in writeTimes + [end] {
            longest = max(longest, time > previous ? time - previous : 0)
            previous = max(previous, time)
        }
        longestWindowWithoutWriteMilliseconds = Int(longest / 1_000_000)
        self.faults = faults.map { "+\(Double(Int(($0.at &- start) / 1_000_000)) / 1000) s \($0.event)" }
        self.finalValues = finalValues.mapValues { $0 ?? "(absent)" }
    }

    /// Acknowledged mutations that the final state contradicts: the final value of a key must
    /// come from a mutation not superseded by an acknowledged one that began after it ended. The
    /// acknowledged mutations that began after the final value's writer ended are lost.
    static func lostWrites(_ mutations: [HistoryOperation], finalValues: [String: String?]) -> Int {
        var lost = 0
        for (key, final) in finalValues {
            let onKey = mutations.filter { $0.key == key && $0.outcome != .failed }
            let writerEnd: UInt64?
            switch final {
            case .some(let value):
                let writer = onKey.first {
                    switch $0.kind {
                    case .write(let written): written == value
                    case .compareAndSet(_, let new, _): new == value
                    default: false
                    }
                }
                guard let writer else {
                    lost += 1  // a value nobody wrote: count it as a loss to be looked at
                    continue
                }
                writerEnd = writer.outcome == .unknown ? nil : writer.completedAt
            case .none:
                // Absent: the latest-ending delete (or nothing, if never written) explains it.
                let deletes = onKey.filter { $0.kind == .delete }
                writerEnd =
                    deletes.isEmpty
                    ? 0 : (deletes.contains { $0.outcome == .unknown } ? nil : deletes.map(\.completedAt).max())
            }
            guard let writerEnd else { continue }
            lost += onKey.filter { $0.outcome == .ok && $0.invokedAt > writerEnd }.count
        }
        return lost
    }

    var table: String {
        """
        chaos seed \(seed), \(nodes) nodes, \(seconds) s, \(clients) clients, keys \(keys.joined(separator: ","))
          verdict                          \(verdict)\(violation.map { "\n  violation                        \($0)" } ?? "")
          operations                       \(operations) (ok \(ok), failed \(failed), unknown \(unknown))
          writes acknowledged              \(writesAcknowledged)
          acknowledged writes lost         \(acknowledgedWritesLost)
          longest window without a write   \(longestWindowWithoutWriteMilliseconds) ms
          faults                           \(faults.count) events
        """
    }
}
