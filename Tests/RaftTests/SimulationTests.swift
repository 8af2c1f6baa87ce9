import Testing

@testable import Raft
@testable import RaftSimulation

@Suite("The simulator itself")
struct SimulationTests {
    @Test(arguments: [3, 5])
    func seededRunsPassAndReplayExactly(nodes: Int) {
        var options = SimulationOptions(seed: 4242, nodeCount: nodes, steps: 1500)
        options.verbose = true
        let first = Simulation(options: options).run()
        let second = Simulation(options: options).run()
        #expect(first.violations.isEmpty, "\(first.violations)")
        #expect(first.trace == second.trace, "same seed, same run")
        #expect(first.stats == second.stats)
        #expect(first.stats.acknowledgedWrites > 100)
        #expect(first.stats.readsServed > 50)
        #expect(first.stats.crashes > 0)
    }

    @Test func checkerCatchesTwoLeadersInOneTerm() {
        let record = SafetyRecord()
        #expect(record.recordLeader(1, term: 4) == nil)
        #expect(record.recordLeader(1, term: 4) == nil)
        #expect(record.recordLeader(2, term: 4) != nil)
    }

    @Test func checkerCatchesDivergentLogsAndApplies() {
        let record = SafetyRecord()
        let entry = LogEntry(index: 1, term: 1, data: [1])
        #expect(record.recordEntry(entry, previousTerm: 0) == nil)
        #expect(record.recordEntry(LogEntry(index: 1, term: 1, data: [2]), previousTerm: 0) != nil)
        let laterEntry = LogEntry(index: 2, term: 3, data: [1])
        #expect(record.recordEntry(laterEntry, previousTerm: 1) == nil)
        #expect(record.recordEntry(laterEntry, previousTerm: 2) != nil, "same entry after a different predecessor")
        #expect(record.recordApplied(entry, hash: 10) == nil)
        #expect(record.recordApplied(LogEntry(index: 1, term: 2, data: [1]), hash: 10) != nil)
        #expect(record.recordCommitted(index: 3, term: 2) == nil)
        #expect(record.recordCommitted(index: 3, term: 3) != nil)
    }
}
