extension RaftCore {
    // MARK: Leader side

    /// Rebuilds the per-follower progress after election or a configuration change, keeping what
    /// is known about members that stay.
    mutating func rebuildProgress() {
        let configuration = log.configuration
        var rebuilt: [Progress] = []
        for member in configuration.members where member != id {
            if role == .leader, var existing = progress.first(where: { $0.id == member }) {
                existing.isLearner = configuration.isLearner(member)
                rebuilt.append(existing)
            } else {
                // Not active until it answers: a member added during this term has not been heard
                // from, and promoting it on a default of "active" could raise the quorum with a
                // member that cannot vote.
                rebuilt.append(
                    Progress(id: member, isLearner: configuration.isLearner(member), next: log.lastIndex + 1))
            }
        }
        progress = rebuilt
    }

    @inline(__always)
    func progressIndex(of peer: NodeID) -> Int? {
        progress.firstIndex { $0.id == peer }
    }

    mutating func broadcastHeartbeat() {
        readHeartbeatNeeded = false
        commitHeartbeatNeeded = false
        heartbeatSequence += 1
        for index in progress.indices {
            let follower = progress[index]
            let commit = min(follower.match, log.committed)
            send(.heartbeat(Heartbeat(commit: commit, sequence: heartbeatSequence, sentAt: clock)), to: follower.id)
            progress[index].sentCommit = max(follower.sentCommit, commit)
        }
        // A single-voter cluster confirms reads by itself.
        confirmReads()
    }

    mutating func sendAppendsToAll() {
        appendsNeeded = false
        for index in progress.indices { sendAppends(toProgressAt: index) }
    }

    /// Sends what one follower lacks, as far as its state and in-flight window allow (paper §5.3;
    /// pipelining and flow control as in etcd).
    mutating func sendAppends(toProgressAt index: Int) {
        while true {
            let follower = progress[index]
            if case .snapshot = follower.state {
                sendSnapshotChunk(toProgressAt: index)
                return
            }
            if follower.isPaused(options: options) { return }
            let prevIndex = follower.next - 1
            guard let prevTerm = log.term(at: prevIndex) else {
                // The entries it needs were compacted: it needs the snapshot (paper §7).
                progress[index].becomeSnapshot(log.snapshot)
                sendSnapshotChunk(toProgressAt: index)
                return
            }
            let entries = log.entries(from: follower.next, maxBytes: options.maxMessageBytes)
            if entries.isEmpty && follower.state == .replicate { return }
            let append = AppendEntries(
                prevLogIndex: prevIndex, prevLogTerm: prevTerm, entries: entries, leaderCommit: log.committed)
            send(.appendEntries(append), to: follower.id)
            // The follower commits no further than the append reaches.
            let reaches = min(log.committed, prevIndex + UInt64(entries.count))
            progress[index].sentCommit = max(progress[index].sentCommit, reaches)
            if follower.state == .replicate {
                let last = entries.last!.index
                var bytes = 0
                for entry in entries { bytes += entry.byteCount }
                progress[index].next = last + 1
                progress[index].inflight.add(lastIndex: last, bytes: bytes)
            } else {
                progress[index].probeSent = true
                progress[index].probeSentAt = clock
                return
            }
        }
    }

    mutating func handleAppendResponse(_ response: AppendResponse, from peer: NodeID) {
        guard role == .leader, let index = progressIndex(of: peer) else { return }
        progress[index].recentActive = true
        if response.success {
            guard progress[index].acknowledge(upTo: response.index) else { return }
            progress[index].lastAckAt = clock
            switch progress[index].state {
            case .probe:
                progress[index].becomeReplicate()
            case .snapshot(let snapshotIndex):
                // A late acknowledgement below the snapshot does not end the transfer.
                if progress[index].match >= snapshotIndex { progress[index].becomeReplicate() }
            case .replicate:
                break
            }
            maybeCommit()
            appendsNeeded = true
            // Committing can end this node's leadership (its own removal): then there is nothing
            // more to do here, and `progress` is gone.
            guard role == .leader, let current = progressIndex(of: peer) else { return }
            sendCommitIfBehind(toProgressAt: current)
            if leadTransferee == peer && progress[current].match == log.lastIndex {
                sendTimeoutNow(to: peer)
            }
        } else {
            // Paper §5.3: back off, using the follower's hint to skip a whole conflicting term.
            var hint = response.conflictIndex
            if let conflictTerm = response.conflictTerm, let last = log.lastIndex(ofTerm: conflictTerm) {
                // We hold that term too: our entries of it match the follower's, so resume after them.
                hint = min(last + 1, response.index)
            }
            if hint == 0 { hint = response.index }
            if progress[index].rejected(response.index, nextHint: hint) { appendsNeeded = true }
        }
    }

    /// A follower whose acknowledgement arrived after the entry it holds had already committed
    /// (on other followers' acknowledgements) is not in the commit's heartbeat round — that round
    /// told it only what it held then. Tell it now, or it would apply the entry a tick later.
    /// A heartbeat of the current round's sequence, sent now: its acknowledgement is as good as
    /// any for reads (it proves leadership after every read registered so far) and for the lease.
    private mutating func sendCommitIfBehind(toProgressAt index: Int) {
        // A heartbeat round is due at the next `ready()` anyway: it will carry the commit.
        guard !commitHeartbeatNeeded && !readHeartbeatNeeded else { return }
        let commit = min(progress[index].match, log.committed)
        guard commit > progress[index].sentCommit else { return }
        send(.heartbeat(Heartbeat(commit: commit, sequence: heartbeatSequence, sentAt: clock)), to: progress[index].id)
        progress[index].sentCommit = commit
    }

    mutating func handleHeartbeatResponse(_ response: HeartbeatResponse, from peer: NodeID) {
        guard role == .leader, let index = progressIndex(of: peer) else { return }
        progress[index].recentActive = true
        if response.sequence > progress[index].ackedSequence {
            progress[index].ackedSequence = response.sequence
        }
        if response.sentAt > progress[index].ackedSentAt { progress[index].ackedSentAt = response.sentAt }
        switch progress[index].state {
        case .probe:
            // The probe may have been lost: send another — but at most one per heartbeat interval,
            // not one per heartbeat response: commits broadcast heartbeats too, and a lagging
            // follower on a slow link would otherwise get the same large probe once per commit.
            if clock &- progress[index].probeSentAt >= UInt64(options.heartbeatInterval) {
                progress[index].probeSent = false
            }
        case .replicate where progress[index].match >= log.lastIndex:
            progress[index].lastAckAt = clock
        case .replicate:
            // Appends may have been lost with nothing after them to reveal the gap: if the follower
            // has acknowledged nothing for a while, find its position again.
            if progress[index].match < log.lastIndex && clock &- progress[index].lastAckAt > stallTicks {
                progress[index].becomeProbe()
            }
        case .snapshot:
            if progress[index].snapshotChunkInFlight && clock &- progress[index].snapshotChunkSentAt > stallTicks {
                progress[index].snapshotChunkInFlight = false
            }
        }
        if progress[index].match < log.lastIndex || log.committed > progress[index].match { appendsNeeded = true }
        confirmReads()
    }

    /// The highest value a quorum of voters has reached: each voter's value (this node's is `own`;
    /// a voter without a value does not count), sorted, the quorum-th from the top. Commit indexes,
    /// confirmed read rounds and lease start times are all "what a majority has acknowledged".
    func quorumValue(own: UInt64, of value: (Progress) -> UInt64?) -> UInt64? {
        let configuration = log.configuration
        var values: [UInt64] = []
        values.reserveCapacity(configuration.voters.count)
        for voter in configuration.voters {
            if voter == id {
                values.append(own)
            } else if let index = progressIndex(of: voter), let reached = value(progress[index]) {
                values.append(reached)
            }
        }
        guard values.count >= configuration.quorum else { return nil }
        values.sort(by: >)
        return values[configuration.quorum - 1]
    }

    /// How long replication to a follower may show no progress before the leader re-probes it.
    var stallTicks: UInt64 { UInt64(max(3 * options.heartbeatInterval, options.electionTimeout / 2)) }

    /// Advances the commit index to the highest index stored on a quorum of voters — but only
    /// through an entry of the current term (paper §5.4.2, Figure 8): an entry of an earlier term
    /// is never committed by counting replicas.
    mutating func maybeCommit() {
        guard let quorumIndex = quorumValue(own: log.stable, of: { $0.match }),
            quorumIndex > log.committed, log.term(at: quorumIndex) == term
        else { return }
        log.commit(to: quorumIndex)
        appendsNeeded = true
        commitHeartbeatNeeded = true
        didCommitAsLeader()
    }

    private mutating func didCommitAsLeader() {
        if log.committed >= firstIndexOfTerm && !readsAwaitingCommit.isEmpty {
            let waiting = readsAwaitingCommit
            readsAwaitingCommit = []
            for read in waiting { registerLeaderRead(read) }
        }
        // Thesis §4.2.2: a leader removed from the configuration steps down once the change
        // commits. It first hands leadership to the most caught-up voter (thesis §3.10), so the
        // cluster does not sit through an election timeout without a leader.
        if !log.configuration.isVoter(id) && log.committed >= log.lastConfigurationIndex {
            let voters = progress.filter { log.configuration.isVoter($0.id) }
            if let successor = voters.max(by: { ($0.match, $1.id) < ($1.match, $0.id) }) {
                sendTimeoutNow(to: successor.id)
            }
            becomeFollower(term: term, leader: nil)
        }
    }

    // MARK: Follower side

    mutating func handleAppendEntries(_ received: AppendEntries, from leaderID: NodeID) {
        var append = received
        if append.prevLogIndex < log.committed {
            // Entries up to our commit index match every leader's log (Leader Completeness): keep
            // only what lies beyond it, or, if nothing does, just say where we are.
            let skip = Int(log.committed - append.prevLogIndex)
            guard skip <= append.entries.count, let committedTerm = log.term(at: log.committed) else {
                send(.appendResponse(AppendResponse(success: true, index: log.committed)), to: leaderID)
                return
            }
            append.prevLogTerm = skip == 0 ? append.prevLogTerm : append.entries[skip - 1].term
            if append.prevLogTerm != committedTerm {
                log.reportViolation("entry \(log.committed) is committed here but differs in the leader's log")
                return
            }
            append.prevLogIndex = log.committed
            append.entries = Array(append.entries[skip...])
        }
        if let lastNew = log.maybeAppend(
            prevIndex: append.prevLogIndex, prevTerm: append.prevLogTerm, entries: append.entries)
        {
            // Paper Figure 2, receiver step 5.
            log.commit(to: min(append.leaderCommit, lastNew))
            send(.appendResponse(AppendResponse(success: true, index: lastNew)), to: leaderID)
            return
        }
        if log.violation != nil { return }
        // Consistency check failed (paper §5.3): hint where the leader should look next.
        let response: AppendResponse
        if append.prevLogIndex > log.lastIndex {
            response = AppendResponse(
                success: false, index: append.prevLogIndex, conflictTerm: nil, conflictIndex: log.lastIndex + 1)
        } else {
            let conflictTerm = log.term(at: append.prevLogIndex)
            var first = append.prevLogIndex
            // Entries up to the commit index match every leader's log; never hint below them.
            while first > log.committed + 1, log.term(at: first - 1) == conflictTerm { first -= 1 }
            response = AppendResponse(
                success: false, index: append.prevLogIndex, conflictTerm: conflictTerm, conflictIndex: first)
        }
        send(.appendResponse(response), to: leaderID)
    }

    mutating func handleHeartbeat(_ heartbeat: Heartbeat, from leaderID: NodeID) {
        // The leader only sends a commit index up to what it knows we hold (and it matches).
        log.commit(to: min(heartbeat.commit, log.lastIndex))
        send(
            .heartbeatResponse(HeartbeatResponse(sequence: heartbeat.sequence, sentAt: heartbeat.sentAt)), to: leaderID)
    }
}
