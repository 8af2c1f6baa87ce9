import Membership

/// The random fault schedule of `swim-sim`.
extension SWIMSimulation {
    /// Plays the whole run: bootstrap through member 1, warm-up (then everyone must know everyone),
    /// faults (crashes, pauses, partitions, all datagrams lossy), a quiet period (partitions healed,
    /// nothing new) and a final convergence check. Stops at the first violation.
    public func run() -> SWIMSimulationReport {
        let faultsStart = options.warmup
        let faultsEnd = max(faultsStart + 1, options.ticks - options.quiet)
        bootstrap()
        var victims = Array(1..<nodes.count)
        random.shuffle(&victims)
        for _ in 0..<min(options.kills, max(0, nodes.count - 2)) {
            schedule(.kill(victims.removeLast()), at: faultsStart + random.next(below: faultsEnd - faultsStart))
        }
        for _ in 0..<options.pauses {
            let ticks = 1 + random.next(below: max(1, options.pauseTicks))
            let at = faultsStart + random.next(below: max(1, faultsEnd - faultsStart - ticks))
            schedule(.pause(random.next(below: nodes.count), ticks: ticks), at: at)
        }
        for _ in 0..<options.partitions {
            let length = 200 + random.next(below: 601)
            let at = faultsStart + random.next(below: max(1, faultsEnd - faultsStart - length))
            let sideSize = 1 + random.next(below: max(1, nodes.count / 2))
            schedule(.partition(Set(random.sample(Array(nodes.indices), count: sideSize))), at: at)
            schedule(.heal, at: at + length)
        }
        while now < options.ticks && report.violations.isEmpty {
            step()
            if now == options.warmup {
                for problem in convergenceProblems().prefix(5) { violation("not joined after warm-up: \(problem)") }
            }
        }
        if report.violations.isEmpty {
            for problem in convergenceProblems().prefix(5) { violation("not converged at the end: \(problem)") }
        }
        report.stats.ticks = now
        collectCounters()
        return report
    }
}

/// Runs many seeds in parallel and summarizes.
public enum SWIMSimulationRunner {
    public struct Summary: Sendable {
        public var seeds = 0
        public var stats = SWIMSimulationStats()
        public var failures: [SWIMSimulationReport] = []
    }

    /// Runs seeds `firstSeed ..< firstSeed + count` with `template`'s other options.
    public static func run(
        template: SWIMSimulationOptions, firstSeed: UInt64, count: Int, workers: Int
    ) async -> Summary {
        await withTaskGroup(of: Summary.self) { group in
            for worker in 0..<max(1, workers) {
                group.addTask {
                    var summary = Summary()
                    var offset = worker
                    while offset < count {
                        var options = template
                        options.seed = firstSeed + UInt64(offset)
                        let report = SWIMSimulation(options: options).run()
                        summary.seeds += 1
                        summary.stats.add(report.stats)
                        if !report.passed { summary.failures.append(report) }
                        offset += max(1, workers)
                    }
                    return summary
                }
            }
            var total = Summary()
            for await part in group {
                total.seeds += part.seeds
                total.stats.add(part.stats)
                total.failures.append(contentsOf: part.failures)
            }
            total.failures.sort { $0.options.seed < $1.options.seed }
            return total
        }
    }
}
