import Testing

@_spi(PlantedBugs) @testable import Raft
@_spi(PlantedBugs) @testable import RaftSimulation

/// Mutation tests for the simulator: each runs a core with one deliberate bug planted (see
/// `PlantedBug`) and expects the simulator to report the violation that bug causes. A checker
/// that lets a planted bug through is as broken as the bug. `make sim` runs the same seeds without
/// the bugs and finds nothing.
@Suite("The simulator catches planted bugs")
struct MutationTests {
    /// Runs seeds in order until one reports a violation.
    static func firstViolation(
        plantedBugs: Set<PlantedBug> = [], understatesDrift: Bool = false, skipsRecoverySync: Bool = false,
        seeds: ClosedRange<UInt64>, steps: Int, where include: (SimulationOptions) -> Bool = { _ in true }
    ) -> SimulationReport? {
        for seed in seeds {
            var options = SimulationOptions(seed: seed, nodeCount: seed % 2 == 0 ? 3 : 5, steps: steps)
            guard include(options) else { continue }
            options.plantedBugs = plantedBugs
            options.understatesDrift = understatesDrift
            options.hostSkipsRecoverySync = skipsRecoverySync
            let report = Simulation(options: options).run()
            if !report.passed { return report }
        }
        return nil
    }

    @Test func droppingTheLeaseCheckIsCaught() throws {
        let report = try #require(Self.firstViolation(plantedBugs: [.noLeaseCheck], seeds: 1...30, steps: 3000))
        #expect(report.violations.first?.contains("lease:") == true, "\(report.violations)")
    }

    @Test func persistingTheVoteAfterSendingItIsCaught() throws {
        let report = try #require(
            Self.firstViolation(plantedBugs: [.voteSentBeforePersisted], seeds: 1...10, steps: 500))
        // A candidate's vote for itself is the first vote any run casts.
        #expect(report.violations.first?.contains("vote") == true, "\(report.violations)")
    }

    @Test func skippingTheFsyncWhenOnlyEntriesChangedIsCaught() throws {
        let report = try #require(Self.firstViolation(plantedBugs: [.noSyncForEntries], seeds: 1...10, steps: 500))
        #expect(report.violations.first?.contains("acknowledges entries") == true, "\(report.violations)")
    }

    /// A lease margin that ignores the drift the clocks really have: caught by the lease invariant
    /// once the nemesis pulls the clocks to the edges of the bound.
    @Test func aLeaseMarginWithoutRoomForDriftIsCaught() throws {
        // Only runs whose clocks drift by a quarter move the bound by more than a tick or two.
        let report = try #require(
            Self.firstViolation(understatesDrift: true, seeds: 1...400, steps: 3000) { $0.clockDriftPerMille == 250 })
        #expect(report.violations.first?.contains("lease:") == true, "\(report.violations)")
    }

    /// The host bug the review found in the write-ahead log: recovery trusted what it read from
    /// the page cache after a process kill, then acknowledged it without writing it again.
    @Test func recoveryThatDoesNotFsyncWhatItReadIsCaught() throws {
        let report = try #require(Self.firstViolation(skipsRecoverySync: true, seeds: 1...30, steps: 3000))
        #expect(report.violations.first?.contains("durability:") == true, "\(report.violations)")
    }
}
