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

/// `raft-bench-disk --floor DIR`: the physical floor of a durable replicated write here — one
/// 64-byte write + fsync of a file in DIR, and one TCP round trip over loopback — as
/// `name=value` lines (microseconds) for `make bench`.
func measureFloor(directory: String) throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let path = directory + "/fsync-probe"
    let descriptor = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
    guard descriptor >= 0 else { throw FloorFailure(description: "cannot open \(path): errno \(errno)") }
    var fsyncs: [Int] = []
    let payload = [UInt8](repeating: 0x78, count: 64)
    for _ in 0..<2000 {
        let started = ContinuousClock.now
        _ = payload.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        fsync(descriptor)
        fsyncs.append(microseconds(ContinuousClock.now - started))
    }
    close(descriptor)
    unlink(path)
    let roundTrips = try loopbackRoundTrips(count: 5000)
    for (name, samples) in [("fsync", fsyncs), ("loopback_rtt", roundTrips)] {
        let sorted = samples.sorted()
        print("\(name)_p50_us=\(sorted[sorted.count / 2])")
        print("\(name)_p99_us=\(sorted[min(sorted.count - 1, sorted.count * 99 / 100)])")
    }
}

struct FloorFailure: Error, CustomStringConvertible {
    var description: String
}

func microseconds(_ duration: Duration) -> Int {
    Int(duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000)
}

/// One byte each way over a TCP connection on 127.0.0.1 (an echo thread on the other end).
func loopbackRoundTrips(count: Int) throws -> [Int] {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) }
    }
    listen(listener, 1)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
    }
    let echo = Thread {
        let connection = accept(listener, nil, nil)
        var byte: UInt8 = 0
        while recv(connection, &byte, 1, 0) == 1 { _ = send(connection, &byte, 1, 0) }
        close(connection)
    }
    echo.start()
    let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var noDelay: Int32 = 1
    setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    var samples: [Int] = []
    var byte: UInt8 = 1
    for _ in 0..<count {
        let started = ContinuousClock.now
        _ = send(client, &byte, 1, 0)
        _ = recv(client, &byte, 1, 0)
        samples.append(microseconds(ContinuousClock.now - started))
    }
    close(client)
    close(listener)
    return samples
}

if CommandLine.arguments.count == 3 && CommandLine.arguments[1] == "--floor" {
    try measureFloor(directory: CommandLine.arguments[2])
} else {
    try measure()
}
