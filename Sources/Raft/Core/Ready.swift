/// Everything the core wants the host to do, handed out by `RaftCore.ready()`.
///
/// The host handles a `Ready` in this order, then calls `RaftCore.advance()`:
/// 1. persist `snapshot` (if any), then `entries` (replacing any stored entries from
///    `entries.first!.index` on), then `hardState` (if any) — and fsync;
/// 2. only then send `messages`: they include votes and append acknowledgements that promise
///    the data above is durable (Raft paper Figure 2, "respond after persisting");
/// 3. install `snapshot` into the state machine, then apply `committedEntries` in order;
/// 4. serve `readStates` once the state machine has applied `ReadState.index`.
public struct Ready: Sendable {
    /// Set when term, vote or commit changed since the last `Ready`.
    public var hardState: HardState?
    /// Log entries to make durable. The first one may overwrite stored entries from its index on.
    public var entries: [LogEntry] = []
    /// A snapshot received from the leader, to persist and install before applying anything else.
    public var snapshot: Snapshot?
    /// Messages to send once the data above is durable.
    public var messages: [Message] = []
    /// Committed entries to apply to the state machine, in index order.
    public var committedEntries: [LogEntry] = []
    /// Reads confirmed since the last `Ready`.
    public var readStates: [ReadState] = []
    /// Reads that cannot be confirmed (no leader, leadership lost): the host reports them as
    /// retryable failures; they were never served.
    public var failedReads: [UInt64] = []
    /// Set when role, leader or term changed since the last `Ready`.
    public var softState: SoftState?
    /// Set when the configuration in force changed (it changes when a configuration entry is
    /// appended to the log or truncated from it, thesis §4.1, not when it commits).
    public var configuration: ClusterConfiguration?
    /// Whether the host must fsync before sending: true when there are entries or a snapshot to
    /// persist, or the term or vote changed. A Ready that changes only the commit index may ride
    /// along with the next fsync: the commit index is re-learned from the leader, and restoring a
    /// lower one is always safe (as etcd's `MustSync`).
    public var mustSync = false

    public init() {}

    public var isEmpty: Bool {
        hardState == nil && entries.isEmpty && snapshot == nil && messages.isEmpty && committedEntries.isEmpty
            && readStates.isEmpty && failedReads.isEmpty && softState == nil && configuration == nil
    }
}

/// A confirmed read: once the state machine has applied `index`, a read issued as `requestID`
/// may be served from it and is linearizable (thesis §6.4 step 4).
public struct ReadState: Sendable, Hashable {
    public var requestID: UInt64
    public var index: UInt64

    public init(requestID: UInt64, index: UInt64) {
        self.requestID = requestID
        self.index = index
    }
}

/// The volatile view of who leads.
public struct SoftState: Sendable, Hashable {
    public var role: Role
    public var leader: NodeID?
    public var term: UInt64

    public init(role: Role, leader: NodeID?, term: UInt64) {
        self.role = role
        self.leader = leader
        self.term = term
    }
}

/// The outcome of `propose`.
public enum ProposalResult: Sendable, Hashable {
    /// Appended to the leader's log at `index` in `term`. It is committed when an entry with this
    /// index *and* term is applied; if a different term is applied at `index`, it was lost; if the
    /// leader steps down first, its fate is unknown until then.
    case accepted(index: UInt64, term: UInt64)
    case rejected(ProposalRejection)
}

public enum ProposalRejection: Sendable, Hashable {
    /// This node is not the leader; `leader` is who it believes leads, if anyone.
    case notLeader(leader: NodeID?)
    /// A leadership transfer is in progress (thesis §3.10: the old leader stops accepting proposals).
    case transferInProgress
    /// A configuration change is still uncommitted, or this leader has not yet committed an entry
    /// of its own term (thesis §4.1 and the 2015 single-server-change correction).
    case configurationChangePending
    /// The change does not apply to the current configuration (unknown node, last voter, …).
    case invalidConfigurationChange
    /// The learner to promote is unreachable or too far behind (`RaftOptions.maxPromotionLag`).
    case learnerNotCaughtUp
}
