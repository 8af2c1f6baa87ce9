import Membership

/// What one simulated run does. Everything is derived from `seed`, so a run is replayed exactly by
/// running it again with the same options (`replayCommand`).
public struct SWIMSimulationOptions: Sendable, Hashable {
    public var seed: UInt64
    /// Group size, 3 … 100.
    public var members: Int
    public var ticks: Int
    /// Share of datagrams lost (each direction independently). Push-pull (TCP) is never lost,
    /// only cut by partitions.
    public var loss = 0.0
    /// Each message takes 1 … `maxDelay` ticks. The default, 1, already models a hop as slow as a
    /// whole tick (50 ms in the shell; a LAN round trip is well under a millisecond). Larger values
    /// model a congested network for which the default probe period is too short (the indirect
    /// path needs probe timeout + 4 hops within one period).
    public var maxDelay = 1
    /// Members crashed at random times between warm-up and the quiet period.
    public var kills = 0
    /// Members paused (no ticks, inbound datagrams buffered) at random times, each for 1 …
    /// `pauseTicks` ticks.
    public var pauses = 0
    /// The longest pause. The default is half the minimum suspicion timeout: short enough that a
    /// paused member must never be declared dead, long enough for it to be suspected.
    public var pauseTicks: Int
    /// Network partitions (two sides that cannot talk) of 200 … 800 ticks, healed before the quiet
    /// period. Deaths declared across a partition are expected and not counted as false positives.
    public var partitions = 0
    /// Ticks before faults start; at its end every member must know every other as alive.
    public var warmup = 600
    /// Fault-free ticks at the end; by then every partition has healed and the views converged.
    public var quiet = 2000
    /// Record a human-readable trace of faults and membership changes.
    public var verbose = false
    /// The members' settings (each member gets its own random seed derived from `seed`).
    public var settings = SWIMSettings()

    public init(seed: UInt64, members: Int, ticks: Int) {
        self.seed = seed
        self.members = members
        self.ticks = ticks
        pauseTicks = max(1, settings.suspicionMinTicks(members: members) / 2)
    }

    /// The command that replays this run deterministically, with its trace.
    public var replayCommand: String {
        var command =
            "swift run -c release swim-sim --seed \(seed) --members \(members) --ticks \(ticks) --loss \(loss)"
        command += " --kills \(kills) --pauses \(pauses) --pause-ticks \(pauseTicks) --partitions \(partitions)"
        command += " --max-delay \(maxDelay) --verbose"
        return command
    }
}

/// The result of one run.
public struct SWIMSimulationReport: Sendable {
    public var options: SWIMSimulationOptions
    public var violations: [String] = []
    public var trace: [String] = []
    public var stats = SWIMSimulationStats()

    public var passed: Bool { violations.isEmpty }
}

public struct SWIMSimulationStats: Sendable, Hashable {
    public var ticks = 0
    public var datagramsSent = 0
    public var datagramsLost = 0
    public var pushPulls = 0
    public var largestDatagram = 0
    public var kills = 0
    public var pauses = 0
    public var partitions = 0
    /// A live member declared dead by a live member, outside any partition.
    public var falsePositives = 0
    /// Deaths declared while a partition separated the members (or shortly after it healed).
    public var partitionDeaths = 0
    /// (observer, crashed member) pairs where the observer declared the crash.
    public var detections = 0
    /// The slowest of those, in ticks after the crash (or the later revival the observer saw).
    public var slowestDetection = 0
    /// The largest detection bound any check used (`SWIMSettings.worstCaseDetectionTicks`).
    public var largestDetectionBound = 0
    public var probes = 0
    public var suspicionsRaised = 0
    public var refutations = 0
    public var falseSuspicionRefutations = 0
    public var largestLocalHealthMultiplier = 1

    public init() {}

    public mutating func add(_ other: SWIMSimulationStats) {
        ticks += other.ticks
        datagramsSent += other.datagramsSent
        datagramsLost += other.datagramsLost
        pushPulls += other.pushPulls
        largestDatagram = max(largestDatagram, other.largestDatagram)
        kills += other.kills
        pauses += other.pauses
        partitions += other.partitions
        falsePositives += other.falsePositives
        partitionDeaths += other.partitionDeaths
        detections += other.detections
        slowestDetection = max(slowestDetection, other.slowestDetection)
        largestDetectionBound = max(largestDetectionBound, other.largestDetectionBound)
        probes += other.probes
        suspicionsRaised += other.suspicionsRaised
        refutations += other.refutations
        falseSuspicionRefutations += other.falseSuspicionRefutations
        largestLocalHealthMultiplier = max(largestLocalHealthMultiplier, other.largestLocalHealthMultiplier)
    }
}
