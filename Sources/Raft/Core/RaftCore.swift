/// A Raft node as a pure, deterministic state machine (in the manner of etcd's `raft` package).
///
/// It does no I/O and reads no clock: time arrives through `tick()`, messages through `step(_:)`,
/// client work through `propose(_:)`, `readIndex(requestID:mode:)`, `proposeConfigurationChange(_:)`
/// and `transferLeadership(to:)`. Everything it wants done comes back as a `Ready` from `ready()`,
/// which the host carries out (persist, then send, then apply) and acknowledges with `advance()`.
/// Randomness comes only from `RaftOptions.randomSeed`, so the same inputs give the same outputs.
///
/// Rules cited in doc comments refer to the Raft paper (Ongaro & Ousterhout, "In Search of an
/// Understandable Consensus Algorithm", 2014) as "paper §n" and to Ongaro's PhD thesis
/// ("Consensus: Bridging Theory and Practice", 2014) as "thesis §n".
public struct RaftCore: Sendable {
    public let options: RaftOptions
    public var id: NodeID { options.id }

    var log: RaftLog
    public internal(set) var term: UInt64
    var votedFor: NodeID?
    public internal(set) var role: Role = .follower
    /// Who this node believes leads in `term`.
    public internal(set) var leader: NodeID?

    var random: SeededRandom
    /// Ticks since the last election reset: leader contact, vote granted, or campaign start.
    var electionElapsed = 0
    var heartbeatElapsed = 0
    var randomizedElectionTimeout = 0
    /// Ticks since this node started: the leader's monotonic clock for leases.
    var clock: UInt64 = 0
    /// `clock` when a leader last spoke to this node (AppendEntries, heartbeat or snapshot chunk
    /// of its current term). The lease promise runs from here. It is kept apart from `leader` and
    /// `term` on purpose: a higher-term message that is not from a leader (a vote rejection, say)
    /// clears `leader`, but it tells nothing about the leader this node acknowledged, whose lease
    /// still counts on the promise.
    var lastLeaderContact: UInt64?

    /// Set when a leader said this node was removed by the configuration at this index: it does
    /// not campaign until its own log holds a configuration at least that new (which then decides).
    var removedBy: UInt64?

    /// The current election was started by TimeoutNow (thesis §3.10).
    var transferElection = false
    /// Votes received in the current (pre-)election: voter and whether it granted.
    var votes: [(voter: NodeID, granted: Bool)] = []

    // Leader state.
    /// One entry per other member, sorted by id so that iteration is deterministic.
    var progress: [Progress] = []
    /// Index of this leader's first entry (its no-op); reads and configuration changes wait for it to commit.
    public internal(set) var firstIndexOfTerm: UInt64 = 0
    var heartbeatSequence: UInt64 = 0
    /// Entries were appended or acknowledged since the last `ready()`: send what followers lack.
    var appendsNeeded = false
    /// A read was registered and needs a heartbeat round to confirm it.
    var readHeartbeatNeeded = false
    /// The commit index advanced: followers hear of it now, not at the next tick's heartbeat, so
    /// they apply (and their watchers see) a write within a round trip of its commit.
    var commitHeartbeatNeeded = false
    var pendingReads: [PendingRead] = []
    var readsAwaitingCommit: [PendingRead] = []
    var leadTransferee: NodeID?
    /// Ticks since the current transfer began (abandoned after an election timeout, thesis §3.10).
    var transferElapsed = 0
    /// TimeoutNow went out in this term: its target may win an election that ignores leases at
    /// any later moment (the message can be delayed), so this leader's lease is void for the term.
    var sentTimeoutNowThisTerm = false

    // Follower state.
    /// Reads forwarded to the leader and not yet answered.
    var forwardedReads: [(requestID: UInt64, sentAt: UInt64)] = []
    /// InstallSnapshot chunks received so far.
    var incomingSnapshot: Snapshot?

    // Output buffered until the next `ready()`.
    var messages: [Message] = []
    var readStates: [ReadState] = []
    var failedReads: [UInt64] = []
    var reportedHardState: HardState
    var reportedSoftState: SoftState
    var reportedConfiguration: ClusterConfiguration
    var handedOut: (lastIndex: UInt64, lastTerm: UInt64, applying: UInt64)?
    /// `PlantedBug.voteSentBeforePersisted`: a vote went out whose hard state is still owed.
    var plantedVoteOwed = false

    /// Creates a node from what the host read back from disk (`RestoredState.bootstrap` for a new one).
    public init(options: RaftOptions, restoring state: RestoredState) throws {
        guard options.id != 0 else { throw RaftError.invalidID }
        try options.validate()
        self.options = options
        log = try RaftLog(restoring: state)
        term = state.hardState.term
        votedFor = state.hardState.votedFor
        if log.lastTerm > term {
            // The entries were persisted but the hard state of their term was not (a crash between
            // the two writes). Nothing was sent in that term, so no vote in it was given.
            term = log.lastTerm
            votedFor = nil
        }
        random = SeededRandom(seed: options.randomSeed ^ (options.id &* 0x9E37_79B9_7F4A_7C15))
        reportedHardState = HardState(term: term, votedFor: votedFor, commit: log.committed)
        reportedSoftState = SoftState(role: .follower, leader: nil, term: term)
        reportedConfiguration = log.configuration
        resetElectionTimer()
    }

    // MARK: Observing

    public var commitIndex: UInt64 { log.committed }
    public var appliedIndex: UInt64 { log.applied }
    public var lastIndex: UInt64 { log.lastIndex }
    public var lastTerm: UInt64 { log.lastTerm }
    public var snapshotIndex: UInt64 { log.snapshotIndex }
    /// The configuration in force (the newest one in the log, committed or not: thesis §4.1).
    public var configuration: ClusterConfiguration { log.configuration }
    /// The term of the entry at `index`, or nil when compacted or not in the log.
    public func term(at index: UInt64) -> UInt64? { log.term(at: index) }
    public func entry(at index: UInt64) -> LogEntry? { log.entry(at: index) }
    /// The latest snapshot this node holds (taken locally or installed from a leader).
    public var snapshot: Snapshot { log.snapshot }
    /// Set when the node found a safety property broken (a committed entry contradicted by a
    /// leader). The host must stop the node and report it; the core refuses to go on.
    public var safetyViolation: String? { log.violation }
    /// How many ticks ago this node last heard from the leader it follows: 0 on the leader, nil
    /// when it knows no leader. Bounds the staleness of local reads.
    public var ticksSinceLeaderContact: Int? {
        switch role {
        case .leader: 0
        case .follower: leader == nil ? nil : lastLeaderContact.map { Int(clamping: clock &- $0) }
        case .preCandidate, .candidate: nil
        }
    }

    /// The leader being handed leadership to, while a transfer is in progress.
    public var transferTarget: NodeID? { leadTransferee }
    /// Set when a leader told this node it was removed by the configuration at this index (thesis
    /// §4.2.3); read-only, so the host can report it. The node does not campaign while it is set.
    public var removedByConfiguration: UInt64? { removedBy }

    /// A summary for status pages and tests.
    public var status: RaftStatus {
        RaftStatus(
            id: id, role: role, term: term, leader: leader, commitIndex: log.committed,
            appliedIndex: log.applied, lastIndex: log.lastIndex, snapshotIndex: log.snapshotIndex,
            configuration: log.configuration, leaseValid: hasValidLease,
            followers: progress.map {
                FollowerStatus(
                    id: $0.id, isLearner: $0.isLearner, match: $0.match, next: $0.next,
                    state: $0.stateName, recentlyActive: $0.recentActive)
            })
    }

    // MARK: Inputs

    /// Advances logical time by one tick: election timeouts for followers and candidates (paper
    /// §5.2), heartbeats and CheckQuorum for leaders (thesis §6.2).
    public mutating func tick() {
        clock &+= 1
        if role == .leader {
            tickLeader()
        } else {
            tickElection()
        }
    }

    /// Proposes a command. Only the leader accepts; it appends to its own log and replicates in
    /// batches at the next `ready()` (paper §5.3).
    public mutating func propose(_ data: [UInt8]) -> ProposalResult {
        guard role == .leader else { return .rejected(.notLeader(leader: leader)) }
        guard leadTransferee == nil else { return .rejected(.transferInProgress) }
        let entry = LogEntry(index: log.lastIndex + 1, term: term, kind: .command, data: data)
        log.append([entry])
        appendsNeeded = true
        return .accepted(index: entry.index, term: term)
    }

    /// Starts an election now, if this node is a voter (used by tests and by operators who
    /// want a particular node to lead; it still needs a quorum's votes).
    /// Refused while this node heard from a leader within the election timeout, or within one
    /// election timeout of starting (it may have promised a leader's lease before a restart): it
    /// must not help elect another then (use `transferLeadership` on the leader instead).
    public mutating func campaign() {
        guard role != .leader, !(options.checkQuorum && isWithinLeaderLease) else { return }
        startElection(leadershipTransfer: false)
    }

    // MARK: Output

    /// Whether `ready()` has anything for the host.
    public var hasReady: Bool {
        if !messages.isEmpty || !readStates.isEmpty || !failedReads.isEmpty { return true }
        if log.hasUnstableEntries || log.hasEntriesToApply || log.pendingSnapshot != nil { return true }
        if role == .leader && (appendsNeeded || readHeartbeatNeeded || commitHeartbeatNeeded) { return true }
        if currentHardState != reportedHardState || currentSoftState != reportedSoftState { return true }
        if plantedVoteOwed { return true }
        return log.configuration != reportedConfiguration
    }

    /// Collects the work for the host. Handle it as described on `Ready`, then call `advance()`
    /// before the next `ready()`.
    public mutating func ready() -> Ready {
        if role == .leader {
            if readHeartbeatNeeded || commitHeartbeatNeeded { broadcastHeartbeat() }
            if appendsNeeded { sendAppendsToAll() }
        }
        var ready = Ready()
        var hardState = currentHardState
        if options._plantedBugs.contains(.voteSentBeforePersisted), hardState.votedFor != nil,
            hardState.term != reportedHardState.term || hardState.votedFor != reportedHardState.votedFor
        {
            // Planted bug: the vote leaves now, its record only with the next Ready.
            hardState.votedFor = hardState.term == reportedHardState.term ? reportedHardState.votedFor : nil
            plantedVoteOwed = true
        } else if plantedVoteOwed {
            plantedVoteOwed = false
        }
        let termOrVoteChanged =
            hardState.term != reportedHardState.term || hardState.votedFor != reportedHardState.votedFor
        if hardState != reportedHardState {
            ready.hardState = hardState
            reportedHardState = hardState
        }
        let softState = currentSoftState
        if softState != reportedSoftState {
            ready.softState = softState
            reportedSoftState = softState
        }
        if log.configuration != reportedConfiguration {
            ready.configuration = log.configuration
            reportedConfiguration = log.configuration
        }
        ready.snapshot = log.takePendingSnapshot()
        ready.entries = log.takeUnstableEntries()
        ready.committedEntries = log.takeEntriesToApply()
        let entriesNeedSync = !ready.entries.isEmpty && !options._plantedBugs.contains(.noSyncForEntries)
        ready.mustSync = termOrVoteChanged || entriesNeedSync || ready.snapshot != nil
        swap(&ready.messages, &messages)
        swap(&ready.readStates, &readStates)
        swap(&ready.failedReads, &failedReads)
        handedOut = (log.lastIndex, log.lastTerm, log.applying)
        return ready
    }

    /// The host has persisted, sent and applied everything in the last `Ready`.
    public mutating func advance() {
        guard let handedOut else { return }
        self.handedOut = nil
        log.acknowledge(stableTo: handedOut.lastIndex, term: handedOut.lastTerm, appliedTo: handedOut.applying)
        // The leader counts its own log only once durable (paper Figure 2: respond after persisting).
        if role == .leader { maybeCommit() }
    }

    var currentHardState: HardState { HardState(term: term, votedFor: votedFor, commit: log.committed) }
    var currentSoftState: SoftState { SoftState(role: role, leader: leader, term: term) }

    mutating func send(_ payload: Message.Payload, to peer: NodeID, term messageTerm: UInt64? = nil) {
        messages.append(Message(from: id, to: peer, term: messageTerm ?? term, payload: payload))
    }

    mutating func resetElectionTimer() {
        electionElapsed = 0
        randomizedElectionTimeout = options.electionTimeout + random.next(below: options.electionTimeout)
    }
}

/// A read waiting to be confirmed by the leader.
struct PendingRead: Sendable {
    var requestID: UInt64
    /// Who asked: this node, or the follower that forwarded it.
    var origin: NodeID
    var mode: ReadMode
    /// The commit index when the read was registered (thesis §6.4 step 1).
    var index: UInt64 = 0
    /// The heartbeat round whose quorum acknowledgement confirms it (thesis §6.4 step 2).
    var sequence: UInt64 = 0
}

public struct RaftStatus: Sendable, Hashable {
    public var id: NodeID
    public var role: Role
    public var term: UInt64
    public var leader: NodeID?
    public var commitIndex: UInt64
    public var appliedIndex: UInt64
    public var lastIndex: UInt64
    public var snapshotIndex: UInt64
    public var configuration: ClusterConfiguration
    public var leaseValid: Bool
    /// Leader only: replication state of every other member.
    public var followers: [FollowerStatus]

    public init(
        id: NodeID, role: Role, term: UInt64, leader: NodeID?, commitIndex: UInt64, appliedIndex: UInt64,
        lastIndex: UInt64, snapshotIndex: UInt64, configuration: ClusterConfiguration, leaseValid: Bool,
        followers: [FollowerStatus]
    ) {
        self.id = id
        self.role = role
        self.term = term
        self.leader = leader
        self.commitIndex = commitIndex
        self.appliedIndex = appliedIndex
        self.lastIndex = lastIndex
        self.snapshotIndex = snapshotIndex
        self.configuration = configuration
        self.leaseValid = leaseValid
        self.followers = followers
    }
}

public struct FollowerStatus: Sendable, Hashable {
    public var id: NodeID
    public var isLearner: Bool
    public var match: UInt64
    public var next: UInt64
    public var state: String
    public var recentlyActive: Bool
}

extension Progress {
    var stateName: String {
        switch state {
        case .probe: "probe"
        case .replicate: "replicate"
        case .snapshot: "snapshot"
        }
    }
}
