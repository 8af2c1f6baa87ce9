/// A message between two Raft nodes. The host delivers it to `to` and calls `step` there;
/// it may lose, delay, duplicate or reorder messages — the core tolerates all of that.
public struct Message: Sendable, Hashable {
    public var from: NodeID
    public var to: NodeID
    /// The sender's term, except for PreVote requests and granted PreVote responses, which carry
    /// the term the pre-candidate would campaign in (thesis §9.6).
    public var term: UInt64
    public var payload: Payload

    public init(from: NodeID, to: NodeID, term: UInt64, payload: Payload) {
        self.from = from
        self.to = to
        self.term = term
        self.payload = payload
    }

    public enum Payload: Sendable, Hashable {
        case voteRequest(VoteRequest)
        case voteResponse(VoteResponse)
        case appendEntries(AppendEntries)
        case appendResponse(AppendResponse)
        case heartbeat(Heartbeat)
        case heartbeatResponse(HeartbeatResponse)
        case installSnapshot(InstallSnapshot)
        case snapshotResponse(SnapshotResponse)
        /// Leadership transfer: start an election now, without waiting or pre-voting (thesis §3.10).
        case timeoutNow
        /// A follower asks the leader to confirm a read index on its behalf (thesis §6.4).
        case readIndexRequest(ReadIndexRequest)
        case readIndexResponse(ReadIndexResponse)
        /// The leader tells a node that campaigns from outside the committed configuration that it
        /// was removed (thesis §4.2.3): it stops campaigning until its log shows it a member again.
        /// `configurationIndex` is the index of the leader's committed configuration.
        case removed(configurationIndex: UInt64)
    }
}

/// RequestVote (Raft paper §5.2) or a PreVote probe (thesis §9.6).
public struct VoteRequest: Sendable, Hashable {
    public var preVote: Bool
    public var lastLogIndex: UInt64
    public var lastLogTerm: UInt64
    /// Set when the election was started by TimeoutNow: voters then ignore their leader lease (thesis §3.10).
    public var leadershipTransfer: Bool

    public init(preVote: Bool, lastLogIndex: UInt64, lastLogTerm: UInt64, leadershipTransfer: Bool) {
        self.preVote = preVote
        self.lastLogIndex = lastLogIndex
        self.lastLogTerm = lastLogTerm
        self.leadershipTransfer = leadershipTransfer
    }
}

public struct VoteResponse: Sendable, Hashable {
    public var preVote: Bool
    public var granted: Bool

    public init(preVote: Bool, granted: Bool) {
        self.preVote = preVote
        self.granted = granted
    }
}

/// AppendEntries (Raft paper §5.3).
public struct AppendEntries: Sendable, Hashable {
    public var prevLogIndex: UInt64
    public var prevLogTerm: UInt64
    public var entries: [LogEntry]
    public var leaderCommit: UInt64

    public init(prevLogIndex: UInt64, prevLogTerm: UInt64, entries: [LogEntry], leaderCommit: UInt64) {
        self.prevLogIndex = prevLogIndex
        self.prevLogTerm = prevLogTerm
        self.entries = entries
        self.leaderCommit = leaderCommit
    }
}

/// The answer to AppendEntries. A rejection carries a hint so the leader can skip a whole
/// conflicting term at once instead of one index per round trip (Raft paper §5.3, last paragraphs).
public struct AppendResponse: Sendable, Hashable {
    public var success: Bool
    /// On success: the index of the last entry now known to match the leader's log.
    /// On rejection: the `prevLogIndex` that failed the consistency check.
    public var index: UInt64
    /// On rejection: the term of the follower's entry at `index`, if it has one.
    public var conflictTerm: UInt64?
    /// On rejection: the first index the leader should try next (the first index of `conflictTerm`
    /// in the follower's log, or just past its last entry).
    public var conflictIndex: UInt64

    public init(success: Bool, index: UInt64, conflictTerm: UInt64? = nil, conflictIndex: UInt64 = 0) {
        self.success = success
        self.index = index
        self.conflictTerm = conflictTerm
        self.conflictIndex = conflictIndex
    }
}

/// An empty AppendEntries that keeps followers' timers reset, carries the commit index the follower
/// may safely adopt, and doubles as the quorum round that confirms read indexes (thesis §6.4).
public struct Heartbeat: Sendable, Hashable {
    /// `min(leader commit, follower match)`: never ahead of what the follower is known to hold.
    public var commit: UInt64
    /// The leader's heartbeat round: non-decreasing per leader term (a heartbeat sent to one follower
    /// between rounds reuses the current one); echoed back to confirm reads registered before it.
    public var sequence: UInt64
    /// The leader's tick clock when sent; echoed back to extend the leader lease (thesis §6.4.1).
    public var sentAt: UInt64

    public init(commit: UInt64, sequence: UInt64, sentAt: UInt64) {
        self.commit = commit
        self.sequence = sequence
        self.sentAt = sentAt
    }
}

public struct HeartbeatResponse: Sendable, Hashable {
    public var sequence: UInt64
    public var sentAt: UInt64

    public init(sequence: UInt64, sentAt: UInt64) {
        self.sequence = sequence
        self.sentAt = sentAt
    }
}

/// One chunk of InstallSnapshot (Raft paper §7, Figure 13): chunks arrive in `offset` order and
/// the follower installs the snapshot when the chunk with `done` set arrives.
public struct InstallSnapshot: Sendable, Hashable {
    public var metadata: SnapshotMetadata
    public var offset: Int
    public var data: [UInt8]
    public var done: Bool

    public init(metadata: SnapshotMetadata, offset: Int, data: [UInt8], done: Bool) {
        self.metadata = metadata
        self.offset = offset
        self.data = data
        self.done = done
    }
}

/// Acknowledges snapshot chunks: the follower holds `receivedBytes` of the snapshot at `snapshotIndex`.
/// Installation itself is acknowledged with an `AppendResponse` whose index is the snapshot index.
public struct SnapshotResponse: Sendable, Hashable {
    public var snapshotIndex: UInt64
    public var receivedBytes: Int

    public init(snapshotIndex: UInt64, receivedBytes: Int) {
        self.snapshotIndex = snapshotIndex
        self.receivedBytes = receivedBytes
    }
}

public struct ReadIndexRequest: Sendable, Hashable {
    public var requestID: UInt64
    public var mode: ReadMode

    public init(requestID: UInt64, mode: ReadMode) {
        self.requestID = requestID
        self.mode = mode
    }
}

/// The leader's answer to a forwarded read: the index the follower must apply before serving it,
/// or nil when the leader could not confirm it (it is not, or is no longer, the leader).
public struct ReadIndexResponse: Sendable, Hashable {
    public var requestID: UInt64
    public var index: UInt64?

    public init(requestID: UInt64, index: UInt64?) {
        self.requestID = requestID
        self.index = index
    }
}

/// How a read is confirmed (thesis §6.4).
public enum ReadMode: UInt8, Sendable, Hashable {
    /// ReadIndex: the leader records its commit index and confirms it still leads with a heartbeat quorum.
    case linearizable = 0
    /// Served at once while the leader lease holds; falls back to `linearizable` when it does not.
    case lease = 1
}
