import Membership
import MembershipSimulation
import Testing

@Suite("Failure detection in simulated time")
struct DetectionTests {
    /// A crashed member is declared dead by every live member within
    /// `SWIMSettings.worstCaseDetectionTicks(members:)`, the bound the settings promise for healthy
    /// observers (local health multiplier 1, which the test checks held).
    @Test(arguments: [(3, UInt64(11)), (5, 12), (20, 13), (20, 14)])
    func crashedMemberIsDeclaredDeadByEveryoneWithinTheBound(members: Int, seed: UInt64) throws {
        let simulation = Fixtures.joinedSimulation(seed: seed, members: members)
        #expect(simulation.convergenceProblems().isEmpty)
        simulation.run(ticks: 97)  // an arbitrary moment within the probe cycle
        let victim = members - 1
        simulation.kill(victim)
        let bound = simulation.options.settings.worstCaseDetectionTicks(members: members)
        let observers = (0..<members).filter { $0 != victim }
        let took = simulation.run(atMost: bound + 1) { simulation in
            observers.allSatisfy { simulation.view(of: $0, about: victim)?.status.kind == .dead }
        }
        let ticks = try #require(took, "not everyone declared m\(victim + 1) dead within \(bound) ticks")
        #expect(ticks <= bound)
        for observer in observers {
            #expect(simulation.instance(observer).localHealthMultiplier == 1, "the bound's premise")
        }
        #expect(simulation.report.violations.isEmpty, "\(simulation.report.violations)")
        #expect(simulation.report.stats.falsePositives == 0)
        let declared = observers.map { simulation.instance($0).counters.deathsDeclared }.reduce(0, +)
        #expect(declared >= 1, "declared by suspicion timeouts, not only by gossip")
    }

    /// The bound is what the settings say it is.
    @Test func boundFormula() {
        let settings = SWIMSettings()
        #expect(
            settings.worstCaseDetectionTicks(members: 5)
                == 8 * settings.probeInterval + settings.suspicionMaxTicks(members: 5) + 1)
        // An unhealthy observer probes and times suspicions out m times slower.
        #expect(
            settings.worstCaseDetectionTicks(members: 5, localHealthMultiplier: 3)
                == (8 * settings.probeInterval + settings.suspicionMaxTicks(members: 5)) * 3 + 1)
    }
}
