import Membership
import MembershipSimulation
import Testing

@Suite("No false positives under loss and pauses")
struct FalsePositiveTests {
    /// 20 members, 10% of datagrams lost, 5,000 ticks (over four minutes at 50 ms per tick), and a
    /// crash plus three pauses shorter than the minimum suspicion timeout: suspicions happen all the
    /// time, every one is refuted, no live member is ever declared dead, and the crash is detected.
    @Test(arguments: [UInt64(101), 102, 103])
    func lossAndShortPausesNeverKillALiveMember(seed: UInt64) {
        var options = SWIMSimulationOptions(seed: seed, members: 20, ticks: 5000)
        options.loss = 0.1
        options.kills = 1
        options.pauses = 3
        options.quiet = 1500
        #expect(options.pauseTicks < options.settings.suspicionMinTicks(members: 20))
        let report = SWIMSimulation(options: options).run()
        #expect(report.violations.isEmpty, "\(report.violations); replay: \(report.options.replayCommand)")
        #expect(report.stats.falsePositives == 0)
        #expect(report.stats.suspicionsRaised > 20, "the loss must actually cause suspicions")
        #expect(report.stats.falseSuspicionRefutations > 20)
        #expect(report.stats.detections == 19, "every other member declared the crash")
        #expect(report.stats.datagramsLost > 0)
    }

    /// One member paused for just under the minimum suspicion timeout on a lossy network: it is
    /// suspected, refutes when it wakes, and everyone ends up holding it alive.
    @Test(arguments: [UInt64(201), 202])
    func pausedMemberIsSuspectedButNotKilled(seed: UInt64) {
        let members = 20
        let simulation = Fixtures.joinedSimulation(seed: seed, members: members, loss: 0.1)
        let settings = simulation.options.settings
        let pause = settings.suspicionMinTicks(members: members) - settings.probeInterval
        let victim = 7
        simulation.pause(victim, ticks: pause)
        simulation.run(ticks: pause)
        let suspecting = (0..<members).filter { simulation.view(of: $0, about: victim)?.status.kind == .suspect }
        #expect(!suspecting.isEmpty, "a pause this long gets the member suspected")
        simulation.run(ticks: 2000)
        #expect(simulation.instance(victim).counters.refutations >= 1)
        #expect(simulation.report.stats.falsePositives == 0)
        #expect(simulation.report.violations.isEmpty, "\(simulation.report.violations)")
        for observer in 0..<members where observer != victim {
            #expect(simulation.view(of: observer, about: victim)?.status.isReachable == true)
        }
    }
}
