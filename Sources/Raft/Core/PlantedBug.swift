/// Deliberate bugs that a test can switch on, to prove that the simulator's checks catch the class
/// of mistake each one stands for (mutation testing). Production hosts never set them: the option
/// is behind `@_spi(PlantedBugs)`, and with an empty set the core behaves exactly as without it.
@_spi(PlantedBugs)
public enum PlantedBug: String, Sendable, Hashable, CaseIterable {
    /// Followers grant votes and pre-votes without checking their promise to a recent leader
    /// (a leader still ignores higher-term vote requests, as before).
    case noLeaseCheck
    /// The promise is inferred from `leader != nil`, as before the fix of the lease-promise bug:
    /// any higher-term message that is not from a leader makes the follower forget it.
    case promiseFromLeaderField
    /// A vote goes out in one `Ready`, and the hard state recording it only in the next one.
    case voteSentBeforePersisted
    /// `Ready.mustSync` ignores new log entries: the host skips the fsync when only entries changed.
    case noSyncForEntries
}

extension RaftOptions {
    @_spi(PlantedBugs)
    public var plantedBugs: Set<PlantedBug> {
        get { _plantedBugs }
        set { _plantedBugs = newValue }
    }
}
