extension RaftCore {
    /// Asks for a linearizable read (thesis §6.4). The answer comes later in `Ready.readStates`
    /// (serve the read once the state machine has applied `ReadState.index`) or in
    /// `Ready.failedReads` (no leader, or leadership was lost: retry elsewhere).
    ///
    /// On a follower the request is forwarded to the leader (thesis §6.4, "reads from followers").
    /// `.lease` reads are answered without a heartbeat round while the leader lease holds
    /// (thesis §6.4.1) and fall back to ReadIndex when it does not.
    public mutating func readIndex(requestID: UInt64, mode: ReadMode = .linearizable) {
        if role == .leader {
            registerLeaderRead(PendingRead(requestID: requestID, origin: id, mode: mode))
            return
        }
        guard let leader else {
            failedReads.append(requestID)
            return
        }
        forwardedReads.append((requestID, clock))
        send(.readIndexRequest(ReadIndexRequest(requestID: requestID, mode: mode)), to: leader)
    }

    /// Whether the leader may serve a read from its own state without asking anyone (thesis §6.4.1).
    ///
    /// A quorum acknowledged a heartbeat sent at time `t` on this leader's clock; each of them then
    /// refuses to vote until a minimum election timeout after receiving it (see
    /// `isWithinLeaderLease`), so no other leader can exist before `t + electionTimeout`. The lease
    /// ends `leaseSafetyMargin` ticks earlier to absorb clock drift. It also requires an entry of
    /// this term to be committed (so the commit index is current) and no transfer in progress
    /// (the transfer target is allowed to ignore the lease).
    public var hasValidLease: Bool {
        guard role == .leader, options.checkQuorum, leadTransferee == nil, !sentTimeoutNowThisTerm,
            log.committed >= firstIndexOfTerm
        else {
            return false
        }
        // Only heartbeats of this term count: a voter that acknowledged none gives no lease.
        guard let quorumSentAt = quorumValue(own: clock, of: { $0.ackedSequence > 0 ? $0.ackedSentAt : nil }) else {
            return false
        }
        return quorumSentAt + UInt64(options.leaseDuration) > clock
    }

    /// Thesis §6.4 steps 1–2: record the commit index, then confirm leadership with a heartbeat
    /// round — after this leader has committed an entry of its own term (until then its commit
    /// index may be behind what earlier leaders acknowledged).
    mutating func registerLeaderRead(_ read: PendingRead) {
        guard log.committed >= firstIndexOfTerm else {
            readsAwaitingCommit.append(read)
            return
        }
        if read.mode == .lease && hasValidLease {
            resolve(read, index: log.committed)
            return
        }
        if log.configuration.voters == [id] {
            resolve(read, index: log.committed)
            return
        }
        var pending = read
        pending.index = log.committed
        pending.sequence = heartbeatSequence + 1
        pendingReads.append(pending)
        readHeartbeatNeeded = true
    }

    /// Releases every read whose heartbeat round a quorum of voters has acknowledged.
    mutating func confirmReads() {
        guard !pendingReads.isEmpty else { return }
        guard let confirmed = quorumValue(own: heartbeatSequence, of: { $0.ackedSequence }) else { return }
        var remaining: [PendingRead] = []
        for read in pendingReads {
            if read.sequence <= confirmed {
                resolve(read, index: read.index)
            } else {
                remaining.append(read)
            }
        }
        pendingReads = remaining
    }

    private mutating func resolve(_ read: PendingRead, index: UInt64) {
        if read.origin == id {
            readStates.append(ReadState(requestID: read.requestID, index: index))
        } else {
            send(.readIndexResponse(ReadIndexResponse(requestID: read.requestID, index: index)), to: read.origin)
        }
    }

    /// The leader lost its role: no pending read can be confirmed any more.
    mutating func failPendingReads() {
        for read in pendingReads + readsAwaitingCommit {
            if read.origin == id {
                failedReads.append(read.requestID)
            } else {
                send(.readIndexResponse(ReadIndexResponse(requestID: read.requestID, index: nil)), to: read.origin)
            }
        }
        pendingReads = []
        readsAwaitingCommit = []
    }

    /// The leader this node forwarded reads to is gone or changed: they will not be answered.
    mutating func failForwardedReads() {
        failedReads.append(contentsOf: forwardedReads.map(\.requestID))
        forwardedReads = []
    }

    /// A forwarded read or its answer may be lost: give up on it after an election timeout.
    mutating func expireForwardedReads() {
        guard let oldest = forwardedReads.first, clock &- oldest.sentAt >= UInt64(options.electionTimeout) else {
            return
        }
        let deadline = clock &- UInt64(options.electionTimeout)
        failedReads.append(contentsOf: forwardedReads.filter { $0.sentAt <= deadline }.map(\.requestID))
        forwardedReads.removeAll { $0.sentAt <= deadline }
    }

    mutating func handleForwardedRead(_ request: ReadIndexRequest, from follower: NodeID) {
        guard role == .leader else {
            send(.readIndexResponse(ReadIndexResponse(requestID: request.requestID, index: nil)), to: follower)
            return
        }
        registerLeaderRead(PendingRead(requestID: request.requestID, origin: follower, mode: request.mode))
    }

    mutating func handleForwardedReadResponse(_ response: ReadIndexResponse) {
        guard let position = forwardedReads.firstIndex(where: { $0.requestID == response.requestID }) else { return }
        forwardedReads.remove(at: position)
        if let index = response.index {
            readStates.append(ReadState(requestID: response.requestID, index: index))
        } else {
            failedReads.append(response.requestID)
        }
    }
}
