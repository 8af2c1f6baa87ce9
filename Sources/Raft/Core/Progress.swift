/// The leader's view of one follower (etcd's `Progress`): how much of the log it holds and how
/// the leader is currently feeding it.
struct Progress: Sendable {
    enum State: Sendable, Equatable {
        /// The follower's position is unknown: send one AppendEntries per heartbeat until one succeeds.
        case probe
        /// The follower is in sync: stream entries optimistically, bounded by the in-flight window.
        case replicate
        /// The entries it needs are compacted: stream the snapshot at `index` in chunks.
        case snapshot(index: UInt64)
    }

    let id: NodeID
    var isLearner: Bool
    /// Highest index known to be replicated on this follower (Raft paper Figure 2, `matchIndex`).
    var match: UInt64 = 0
    /// Next index to send (Raft paper Figure 2, `nextIndex`).
    var next: UInt64
    var state: State = .probe
    /// In `probe`, an AppendEntries is outstanding: wait for its answer or the next heartbeat.
    var probeSent = false
    /// Leader clock when the outstanding probe went out.
    var probeSentAt: UInt64 = 0
    /// The highest commit index this follower was told of (in a heartbeat, or an append that
    /// reached that far), so a commit it has not heard of can be sent to it at once. Counted when
    /// sent: a lost message only delays the news to the next heartbeat round.
    var sentCommit: UInt64 = 0
    /// Heard from since the last CheckQuorum round (thesis §6.2).
    var recentActive = false
    /// Leader clock of the last successful append acknowledgement (stall detection).
    var lastAckAt: UInt64 = 0
    /// Highest heartbeat sequence acknowledged in this term (ReadIndex confirmation).
    var ackedSequence: UInt64 = 0
    /// Leader clock at which the newest acknowledged heartbeat was sent (leader lease).
    var ackedSentAt: UInt64 = 0
    /// Bytes of the snapshot the follower acknowledged, and the leader clock of the last chunk sent.
    /// The snapshot being streamed, kept until the transfer ends even if the leader compacts again
    /// meanwhile (restarting on every compaction could starve a slow follower forever).
    var snapshotInTransfer: Snapshot?
    var snapshotOffset = 0
    var snapshotChunkSentAt: UInt64 = 0
    var snapshotChunkInFlight = false
    var inflight = Inflight()

    init(id: NodeID, isLearner: Bool, next: UInt64) {
        self.id = id
        self.isLearner = isLearner
        self.next = next
    }

    mutating func becomeProbe() {
        if case .snapshot(let index) = state {
            next = max(match + 1, index + 1)
        } else {
            next = match + 1
        }
        snapshotInTransfer = nil
        state = .probe
        probeSent = false
        inflight.removeAll()
    }

    mutating func becomeReplicate() {
        snapshotInTransfer = nil
        state = .replicate
        next = match + 1
        probeSent = false
        inflight.removeAll()
    }

    mutating func becomeSnapshot(_ snapshot: Snapshot) {
        state = .snapshot(index: snapshot.metadata.index)
        snapshotInTransfer = snapshot
        snapshotOffset = 0
        snapshotChunkInFlight = false
        inflight.removeAll()
    }

    /// Records a successful append up to `index`; returns false for a stale acknowledgement.
    mutating func acknowledge(upTo index: UInt64) -> Bool {
        guard index > match else { return false }
        match = index
        if next <= index { next = index + 1 }
        probeSent = false
        inflight.free(upTo: index)
        return true
    }

    /// Handles a rejection of the AppendEntries whose `prevLogIndex` was `rejected`; returns false
    /// when the rejection is stale (answers an older message than the one that matters now).
    mutating func rejected(_ rejected: UInt64, nextHint: UInt64) -> Bool {
        if state == .replicate {
            // Only a rejection at or beyond what we know matches is news.
            guard rejected > match else { return false }
            next = max(match + 1, min(rejected, nextHint))
            becomeProbeKeepingNext()
            return true
        }
        // In probe only the answer to the outstanding probe (prev = next - 1) counts.
        guard next > 0, rejected == next - 1 else { return false }
        next = max(match + 1, min(rejected, nextHint))
        probeSent = false
        return true
    }

    private mutating func becomeProbeKeepingNext() {
        state = .probe
        probeSent = false
        inflight.removeAll()
    }

    /// Whether the leader should hold back further AppendEntries to this follower for now.
    func isPaused(options: RaftOptions) -> Bool {
        switch state {
        case .probe: return probeSent
        case .replicate:
            return inflight.count >= options.maxInflightMessages || inflight.bytes >= options.maxInflightBytes
        case .snapshot: return true
        }
    }
}

/// A FIFO of the AppendEntries in flight to one follower: their last index and byte size.
/// Acknowledgements free every message up to an index (etcd's `Inflights`).
struct Inflight: Sendable {
    private var lastIndexes: [UInt64] = []
    private var sizes: [Int] = []
    private var head = 0
    private(set) var bytes = 0

    var count: Int { lastIndexes.count - head }

    mutating func add(lastIndex: UInt64, bytes size: Int) {
        lastIndexes.append(lastIndex)
        sizes.append(size)
        bytes += size
    }

    mutating func free(upTo index: UInt64) {
        while head < lastIndexes.count, lastIndexes[head] <= index {
            bytes -= sizes[head]
            head += 1
        }
        if head == lastIndexes.count {
            lastIndexes.removeAll(keepingCapacity: true)
            sizes.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 1024 {
            lastIndexes.removeFirst(head)
            sizes.removeFirst(head)
            head = 0
        }
    }

    mutating func removeAll() {
        lastIndexes.removeAll(keepingCapacity: true)
        sizes.removeAll(keepingCapacity: true)
        head = 0
        bytes = 0
    }
}
