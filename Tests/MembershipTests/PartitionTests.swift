import Membership
import MembershipSimulation
import Testing

@Suite("Partitions")
struct PartitionTests {
    /// Both sides of a long partition declare each other dead; once healed, push-pull over the TCP
    /// model finds the other side, members refute their deaths, and every view is whole again.
    @Test(arguments: [UInt64(31), 32, 33])
    func healedPartitionConverges(seed: UInt64) throws {
        let members = 10
        let simulation = Fixtures.joinedSimulation(seed: seed, members: members, loss: 0.02)
        let side: Set<Int> = [0, 1, 2, 3]
        simulation.partition(side)
        let settings = simulation.options.settings
        simulation.run(ticks: settings.worstCaseDetectionTicks(members: members, localHealthMultiplier: 8))
        for observer in 0..<members {
            for subject in 0..<members where side.contains(observer) != side.contains(subject) {
                #expect(simulation.view(of: observer, about: subject)?.status.kind == .dead)
            }
        }
        simulation.heal()
        let took = simulation.run(atMost: 10 * settings.pushPullInterval) { $0.convergenceProblems().isEmpty }
        #expect(took != nil, "\(simulation.convergenceProblems().prefix(5))")
        #expect(simulation.report.stats.falsePositives == 0, "\(simulation.report.violations)")
        // And the views stay whole.
        simulation.run(ticks: 500)
        #expect(simulation.convergenceProblems().isEmpty)
    }
}
