@_spi(PlantedBugs) import Raft

/// What one simulated run does. Everything is derived from `seed`, so a run is replayed exactly
/// by running it again with the same options.
public struct SimulationOptions: Sendable, Hashable {
    public var seed: UInt64
    public var nodeCount: Int
    public var steps: Int
    /// Record a human-readable trace of faults, elections and violations.
    public var verbose = false

    /// A calm window (network healed, every node up) starts every `calmEvery` steps and lasts
    /// `calmLength` steps; the liveness check runs in it.
    public var calmEvery = 400
    public var calmLength = 150
    /// Once healed, a leader must be elected and a new write committed within this many steps.
    public var livenessBound = 120

    public var electionTimeout = 10
    public var maxDelay = 4
    /// Now and then a message is held up for up to this many ticks (a stalled connection), so
    /// that very stale messages arrive after elections have moved on.
    public var maxLongDelay = 30
    /// PreVote is what production runs; a quarter of the seeds run without it, so that the
    /// rules it would otherwise mask (terms, vote counting) are exercised by real split votes.
    public var preVote: Bool
    public var maxMessageBytes: Int
    /// Each node's clock runs at its nominal rate × (1 ± this many thousandths), redrawn at every
    /// boot and now and then by the nemesis. Each node's `leaseSafetyMargin` is the smallest its
    /// options accept for the drift this implies (`RaftOptions.minimumLeaseSafetyMargin`), so the
    /// lease is always run at the edge of what the core claims is safe.
    public var clockDriftPerMille: Int
    /// Steps per nominal tick. With 1, a message takes at least a whole tick, and an election
    /// takes several: that slack hides a lease margin too small for the drift. With 4, messages
    /// arrive within a quarter of a tick, as on a real network with 50 ms ticks, and an election
    /// can follow the end of a promise almost at once. Durations given in ticks scale with it.
    public var stepsPerTick: Int
    /// Some nodes are configured with half-length ticks (two per step) and an election timeout
    /// of twice as many ticks.
    public var mixedTickLengths: Bool
    /// Crashes in the middle of persisting a `Ready`, failed fsyncs, and crashes that lose the
    /// writes not yet synced.
    public var diskFaults = true
    /// Deliberate bugs in the cores (mutation tests only).
    @_spi(PlantedBugs) public var plantedBugs: Set<PlantedBug> = []
    /// A planted misconfiguration (mutation tests only): every node declares no drift at all, so
    /// its lease margin is the one-tick minimum whatever the clocks really do.
    @_spi(PlantedBugs) public var understatesDrift = false
    /// A planted host bug (mutation tests only): recovery does not fsync what it read, as the
    /// write-ahead log did before the review that found it.
    @_spi(PlantedBugs) public var hostSkipsRecoverySync = false

    public init(seed: UInt64, nodeCount: Int, steps: Int) {
        self.seed = seed
        self.nodeCount = nodeCount
        self.steps = steps
        preVote = seed % 4 != 3
        // Every fifth seed runs on a slow network whose delays approach the election timeout:
        // split votes and stale responses from earlier terms become common.
        if seed % 5 == 0 { maxDelay = 8 }
        // Every third seed sends one entry per AppendEntries, so a follower can acknowledge an
        // earlier-term entry without the new leader's no-op (paper Figure 8's window).
        maxMessageBytes = seed % 3 == 0 ? 1 : 4096
        // Drift from none to 25 % (a timer starved or a VM clock badly off; at 10 ticks to the
        // election timeout only large drift moves the bound by more than a tick), and a third of
        // the runs mix tick lengths (bits of the seed the settings above do not use, so every
        // combination occurs).
        clockDriftPerMille = [0, 10, 100, 250][Int((seed >> 3) % 4)]
        mixedTickLengths = (seed >> 5) % 3 == 0
        stepsPerTick = (seed >> 7) % 4 == 1 ? 4 : 1
        calmEvery *= stepsPerTick
        calmLength *= stepsPerTick
        livenessBound *= stepsPerTick
    }

    /// A duration of `ticks` nominal ticks, in steps.
    func steps(forTicks ticks: Int) -> Int { ticks * stepsPerTick }

    /// The command that replays this run deterministically, with its trace.
    public var replayCommand: String {
        "swift run -c release raft-sim --seed \(seed) --nodes \(nodeCount) --steps \(steps) --verbose"
    }
}

/// The result of one run.
public struct SimulationReport: Sendable {
    public var options: SimulationOptions
    public var violations: [String] = []
    public var trace: [String] = []
    public var stats = SimulationStats()

    public var passed: Bool { violations.isEmpty }
}

public struct SimulationStats: Sendable, Hashable {
    public var steps = 0
    public var proposals = 0
    public var acknowledgedWrites = 0
    public var readsServed = 0
    public var readsFailed = 0
    public var elections = 0
    public var crashes = 0
    public var snapshotsInstalled = 0
    public var configurationChanges = 0
    public var transfers = 0
    public var messagesDelivered = 0
    /// Crashes in the middle of persisting a `Ready` (some of its writes reached the disk).
    public var tornReadys = 0
    public var failedFsyncs = 0
    /// Unsynced writes a crash took away.
    public var unsyncedWritesLost = 0
    /// Crashes of the process alone: unsynced writes stay in the page cache.
    public var processKills = 0
    /// Process kills while an fsync was under way (writes cached, not durable).
    public var killedInFsync = 0
    public var clockRateChanges = 0

    public mutating func add(_ other: SimulationStats) {
        steps += other.steps
        proposals += other.proposals
        acknowledgedWrites += other.acknowledgedWrites
        readsServed += other.readsServed
        readsFailed += other.readsFailed
        elections += other.elections
        crashes += other.crashes
        snapshotsInstalled += other.snapshotsInstalled
        configurationChanges += other.configurationChanges
        transfers += other.transfers
        messagesDelivered += other.messagesDelivered
        tornReadys += other.tornReadys
        failedFsyncs += other.failedFsyncs
        unsyncedWritesLost += other.unsyncedWritesLost
        processKills += other.processKills
        killedInFsync += other.killedInFsync
        clockRateChanges += other.clockRateChanges
    }
}
