/// Settings of one Raft node. Times are in ticks: the host decides how long a tick is.
public struct RaftOptions: Sendable, Hashable {
    /// This node's id (never 0).
    public var id: NodeID
    /// A follower that hears nothing from a leader for a random number of ticks in
    /// `[electionTimeout, 2 × electionTimeout)` starts an election (Raft paper §5.2).
    public var electionTimeout: Int = 10
    /// The leader sends heartbeats this often; it must be well below `electionTimeout`.
    public var heartbeatInterval: Int = 1
    /// Thesis §9.6: probe with a PreVote round before bumping the term, so that a node that
    /// cannot win (partitioned, behind) never disrupts a working leader.
    public var preVote: Bool = true
    /// Thesis §6.2: a leader that has not heard from a quorum for an election timeout steps down,
    /// and followers that heard from a leader recently refuse to vote (§4.2.3).
    public var checkQuorum: Bool = true
    /// How many ticks before the theoretical end of the lease the leader stops trusting it, to
    /// cover clock drift between nodes (thesis §6.4.1: "bounded clock drift"). `validate()` asks
    /// for at least `minimumLeaseSafetyMargin` under `maxClockDrift`.
    public var leaseSafetyMargin: Int = 2
    /// The bound on drift the lease relies on: the fraction by which any other voter's promise
    /// window — `electionTimeout − 1` of *its* ticks, measured in real time — may fall short of
    /// `electionTimeout − 1` ticks of this node's clock. It covers clock-rate drift between
    /// machines and any difference in configured tick length or election timeout between nodes.
    /// It is a bound on the ratio between two clocks, not on one clock's error: if every clock
    /// may be off by ±ε, use about 2ε / (1 + ε) (the default 10 % covers clocks within ±5 %).
    /// (The "− 1" is the granularity of whole ticks: a follower's first tick may come right after
    /// the message that began its promise.)
    public var maxClockDrift: Double = 0.1
    /// Upper bound on the bytes of entries in one AppendEntries.
    public var maxMessageBytes: Int = 1 << 20
    /// Upper bound on AppendEntries in flight to one follower in the replicate state.
    public var maxInflightMessages: Int = 256
    /// Upper bound on entry bytes in flight to one follower.
    public var maxInflightBytes: Int = 64 << 20
    /// Size of one InstallSnapshot chunk.
    public var snapshotChunkBytes: Int = 1 << 20
    /// A learner is promoted only if its log is at most this many entries behind the commit index.
    public var maxPromotionLag: UInt64 = 64
    /// Seed of the generator behind randomized election timeouts. A seeded simulation replays
    /// exactly; production hosts pass a random seed.
    public var randomSeed: UInt64 = 1
    /// See `PlantedBug`: empty except in mutation tests.
    var _plantedBugs: Set<PlantedBug> = []

    public init(id: NodeID) {
        self.id = id
    }

    /// How long the leader may serve lease reads after the send time of the heartbeat a quorum acknowledged.
    public var leaseDuration: Int { max(0, electionTimeout - leaseSafetyMargin) }
}

/// The state a node starts from: nothing for a brand-new node, or what the host read back from disk.
public struct RestoredState: Sendable {
    public var hardState: HardState
    /// The last snapshot taken or installed; for a new node, an empty one at index 0 whose
    /// configuration lists the initial voters.
    public var snapshot: Snapshot
    /// Stored log entries following the snapshot, contiguous.
    public var entries: [LogEntry]

    public init(hardState: HardState, snapshot: Snapshot, entries: [LogEntry]) {
        self.hardState = hardState
        self.snapshot = snapshot
        self.entries = entries
    }

    /// A brand-new node of a brand-new cluster whose voters are `voters`.
    public static func bootstrap(voters: [NodeID], learners: [NodeID] = []) -> RestoredState {
        RestoredState(
            hardState: HardState(),
            snapshot: Snapshot(
                metadata: SnapshotMetadata(
                    index: 0, term: 0, configuration: ClusterConfiguration(voters: voters, learners: learners)),
                data: []),
            entries: [])
    }
}

public enum RaftError: Error, Hashable, Sendable {
    case invalidID
    case entriesNotContiguous(expected: UInt64, found: UInt64)
    case commitBeyondLog(commit: UInt64, lastIndex: UInt64)
    case compactionBeyondApplied(index: UInt64, applied: UInt64)
    case invalidOptions(String)
}

extension RaftOptions {
    /// Rejects settings under which the algorithm's assumptions fail.
    func validate() throws {
        guard heartbeatInterval >= 1, electionTimeout > heartbeatInterval else {
            throw RaftError.invalidOptions("electionTimeout must exceed heartbeatInterval, both at least 1 tick")
        }
        guard maxClockDrift >= 0, maxClockDrift < 1 else {
            throw RaftError.invalidOptions("maxClockDrift must be in [0, 1)")
        }
        let minimumMargin = Self.minimumLeaseSafetyMargin(
            electionTimeout: electionTimeout, maxClockDrift: maxClockDrift)
        guard leaseSafetyMargin >= minimumMargin, leaseSafetyMargin < electionTimeout else {
            throw RaftError.invalidOptions(
                "leaseSafetyMargin \(leaseSafetyMargin) leaves no room for drift: with electionTimeout \(electionTimeout) and maxClockDrift \(maxClockDrift) it must be at least \(minimumMargin) and below electionTimeout"
            )
        }
        guard maxMessageBytes > 0, maxInflightMessages > 0, maxInflightBytes > 0, snapshotChunkBytes > 0 else {
            throw RaftError.invalidOptions("message, in-flight and chunk limits must be positive")
        }
    }
}

extension RaftOptions {
    /// The smallest margin that keeps the lease inside every voter's promise.
    ///
    /// A quorum acknowledged a heartbeat this leader sent at tick `t`; each of them received it no
    /// earlier and refuses votes until `electionTimeout` of its own ticks have passed, which takes
    /// at least `(electionTimeout − 1) × (1 − maxClockDrift)` of this node's ticks in real time.
    /// The lease (`electionTimeout − margin` ticks from `t`) must end no later, so
    /// `electionTimeout − margin ≤ ⌊(electionTimeout − 1) × (1 − maxClockDrift)⌋`. With no drift
    /// that is one tick; with the default 10 % on a 10-tick timeout, two.
    public static func minimumLeaseSafetyMargin(electionTimeout: Int, maxClockDrift: Double) -> Int {
        let promise = Double(max(0, electionTimeout - 1)) * (1 - maxClockDrift)
        return max(1, electionTimeout - Int(promise.rounded(.down)))
    }
}
