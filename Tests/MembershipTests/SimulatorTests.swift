import Membership
import MembershipSimulation
import Testing

@Suite("The simulator itself")
struct SimulatorTests {
    @Test func sameSeedSameRun() {
        var options = SWIMSimulationOptions(seed: 7, members: 12, ticks: 3200)
        options.loss = 0.1
        options.kills = 2
        options.pauses = 2
        options.partitions = 1
        options.quiet = 1500
        options.verbose = true
        let first = SWIMSimulation(options: options).run()
        let second = SWIMSimulation(options: options).run()
        #expect(first.violations.isEmpty, "\(first.violations)")
        #expect(first.trace == second.trace)
        #expect(first.stats == second.stats)
        #expect(first.stats.partitions == 1 && first.stats.kills == 2)
        #expect(options.replayCommand.contains("--seed 7 --members 12"))
    }

    /// The checker catches a false positive: with pauses far longer than the suspicion timeout,
    /// paused members are declared dead and the run fails.
    @Test func checkerCatchesFalsePositives() {
        var options = SWIMSimulationOptions(seed: 9, members: 6, ticks: 3000)
        options.pauses = 4
        options.pauseTicks = 10 * options.settings.suspicionMaxTicks(members: 6)
        options.quiet = 1000
        let report = SWIMSimulation(options: options).run()
        #expect(report.stats.falsePositives > 0)
        #expect(!report.passed)
    }
}
