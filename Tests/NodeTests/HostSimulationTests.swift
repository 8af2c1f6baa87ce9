@_spi(PlantedBugs) import NodeSimulation
@_spi(PlantedBugs) import Raft
import Testing

/// The host simulation: `RaftNode`'s own Ready loop, write-ahead log and snapshot recovery on a
/// simulated file system, under crashes, kills inside log calls, failed fsyncs, pauses and
/// partitions (see `HostSimulation`).
@Suite("The real host under the simulator")
struct HostSimulationTests {
    static func run(seed: UInt64, steps: Int = 1200, plantedBugs: Set<PlantedBug> = [], verbose: Bool = false)
        -> HostSimulationReport
    {
        var options = HostSimulationOptions(seed: seed, nodeCount: seed % 2 == 0 ? 3 : 5, steps: steps)
        options.plantedBugs = plantedBugs
        options.verbose = verbose
        return HostSimulation(options: options).run()
    }

    @Test func seededRunsPassUnderEveryFault() {
        var total = HostSimulationStats()
        for seed in UInt64(1)...12 {
            let report = Self.run(seed: seed)
            if !report.passed {
                let replay = Self.run(seed: seed, verbose: true)
                Issue.record(
                    "seed \(seed): \(report.violations.first ?? "")\n\(replay.trace.suffix(60).joined(separator: "\n"))"
                )
                return
            }
            total.acknowledgedWrites += report.stats.acknowledgedWrites
            total.powerLosses += report.stats.powerLosses
            total.processKills += report.stats.processKills
            total.crashesInsideLogCalls += report.stats.crashesInsideLogCalls
            total.failedFsyncs += report.stats.failedFsyncs
            total.pauses += report.stats.pauses
            total.snapshotsInstalled += report.stats.snapshotsInstalled
            total.compactions += report.stats.compactions
            total.largestBurst = max(total.largestBurst, report.stats.largestBurst)
        }
        // The runs really met every fault they claim to survive.
        #expect(total.acknowledgedWrites > 500)
        #expect(total.powerLosses > 0 && total.processKills > 0)
        #expect(total.crashesInsideLogCalls > 0 && total.failedFsyncs > 0)
        #expect(total.pauses > 0 && total.largestBurst > 10, "a paused node reads a burst when it resumes")
        #expect(total.compactions > 0 && total.snapshotsInstalled > 0)
    }

    @Test func aSeedReplaysExactly() {
        let first = Self.run(seed: 7, steps: 600, verbose: true)
        let second = Self.run(seed: 7, steps: 600, verbose: true)
        #expect(first.trace == second.trace)
        #expect(first.stats == second.stats)
    }

    /// The host is only as good as the fsyncs the core asks for: with `Ready.mustSync` ignoring new
    /// entries, a power loss takes acknowledged writes away, and the simulation says so.
    @Test func skippingTheFsyncForEntriesLosesWritesAndIsCaught() {
        let failing = (UInt64(1)...20).lazy.map { Self.run(seed: $0, plantedBugs: [.noSyncForEntries]) }
            .first { !$0.passed }
        #expect(failing != nil, "a planted fsync bug went unnoticed")
    }
}
