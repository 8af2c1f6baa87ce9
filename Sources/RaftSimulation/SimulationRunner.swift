@_spi(PlantedBugs) import Raft

/// Runs many seeds on all cores and summarizes.
public enum SimulationRunner {
    public struct Summary: Sendable {
        public var seeds = 0
        public var stats = SimulationStats()
        public var failures: [SimulationReport] = []
    }

    /// Runs seeds `firstSeed ..< firstSeed + count`, alternating 3- and 5-node clusters.
    public static func run(
        firstSeed: UInt64, count: Int, steps: Int, nodeCount: Int? = nil, workers: Int
    ) async -> Summary {
        await run(
            firstSeed: firstSeed, count: count, steps: steps, nodeCount: nodeCount, workers: workers, plantedBugs: [],
            understatesDrift: false, skipsRecoverySync: false)
    }

    /// The same, with deliberate bugs planted in every core (mutation tests).
    @_spi(PlantedBugs)
    public static func run(
        firstSeed: UInt64, count: Int, steps: Int, nodeCount: Int? = nil, workers: Int, plantedBugs: Set<PlantedBug>,
        understatesDrift: Bool, skipsRecoverySync: Bool
    ) async -> Summary {
        await withTaskGroup(of: Summary.self) { group in
            for worker in 0..<max(1, workers) {
                group.addTask {
                    var summary = Summary()
                    var offset = worker
                    while offset < count {
                        let seed = firstSeed + UInt64(offset)
                        let nodes = nodeCount ?? (seed % 2 == 0 ? 3 : 5)
                        var options = SimulationOptions(seed: seed, nodeCount: nodes, steps: steps)
                        options.plantedBugs = plantedBugs
                        options.understatesDrift = understatesDrift
                        options.hostSkipsRecoverySync = skipsRecoverySync
                        let report = Simulation(options: options).run()
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
