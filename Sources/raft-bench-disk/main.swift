import Foundation
import Raft

// `make bench-disk`: what durability costs in a data directory. One fsync'ed WAL append at a
// time (p50/p99 latency), then group commit: how many entries per second when each fsync carries
// a batch, as a Ready with many proposals does.

func measure() throws {
    let directory = CommandLine.arguments.dropFirst().first ?? ".build/bench-disk"
    try? FileManager.default.removeItem(atPath: directory)
    defer { try? FileManager.default.removeItem(atPath: directory) }

    let (log, _) = try WriteAheadLog.open(directory: directory)
    let payload = [UInt8](repeating: 0x61, count: 64)
    let clock = ContinuousClock()
    var nextIndex: UInt64 = 1

    func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    func appendAndSync(batch: Int) throws -> Duration {
        var entries: [LogEntry] = []
        for _ in 0..<batch {
            entries.append(LogEntry(index: nextIndex, term: 1, kind: .command, data: payload))
            nextIndex += 1
        }
        let start = clock.now
        log.append(entries: entries, hardState: HardState(term: 1, votedFor: 1, commit: nextIndex - 1))
        try log.sync()
        return clock.now - start
    }

    var latencies: [Double] = []
    for _ in 0..<1000 { latencies.append(seconds(try appendAndSync(batch: 1)) * 1e6) }
    latencies.sort()
    func percentile(_ p: Double) -> Int { Int(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) }

    print("WAL in \(directory): 64-byte entries, one fsync per append")
    print("| measurement | value |")
    print("|---|---:|")
    print("| append + fsync p50 | \(percentile(0.50)) µs |")
    print("| append + fsync p99 | \(percentile(0.99)) µs |")
    for batch in [1, 16, 64, 256] {
        var total = 0.0
        let rounds = max(20, 2000 / batch)
        for _ in 0..<rounds { total += seconds(try appendAndSync(batch: batch)) }
        print("| \(batch) entries per fsync | \(Int(Double(rounds * batch) / total)) entries/s |")
    }
}

try measure()
