extension RaftCore {
    /// Feeds one message from a peer. Applies the term rules first (paper §5.1: a higher term
    /// makes us a follower; a lower term is stale), then dispatches by message type.
    public mutating func step(_ message: Message) {
        guard message.to == id, message.from != id, message.from != 0 else { return }
        if log.violation != nil { return }
        if case .removed(let configurationIndex) = message.payload {
            // No term rule: the notice is about membership, and whether it is stale is judged by
            // the configuration index it names, not by the sender's term.
            if configurationIndex > log.lastConfigurationIndex {
                removedBy = configurationIndex
                if role == .preCandidate || role == .candidate { becomeFollower(term: term, leader: nil) }
            }
            return
        }
        if case .voteRequest = message.payload, tellsRemovedCandidate(message.from) { return }
        if message.term > term {
            guard acceptHigherTerm(message) else { return }
        } else if message.term < term {
            answerStaleTerm(message)
            return
        }
        switch message.payload {
        case .voteRequest(let request):
            handleVoteRequest(request, from: message.from, term: message.term)
        case .voteResponse(let response):
            handleVoteResponse(response, from: message.from, term: message.term)
        case .appendEntries(let append):
            followLeader(message.from)
            handleAppendEntries(append, from: message.from)
        case .heartbeat(let heartbeat):
            followLeader(message.from)
            handleHeartbeat(heartbeat, from: message.from)
        case .installSnapshot(let chunk):
            followLeader(message.from)
            handleSnapshotChunk(chunk, from: message.from)
        case .appendResponse(let response):
            handleAppendResponse(response, from: message.from)
        case .heartbeatResponse(let response):
            handleHeartbeatResponse(response, from: message.from)
        case .snapshotResponse(let response):
            handleSnapshotResponse(response, from: message.from)
        case .timeoutNow:
            // Thesis §3.10: the target starts an election at once, skipping PreVote; its vote
            // requests say so, so voters set aside their leader lease for it.
            // Only the current leader may hand over leadership.
            if role != .leader && leader == message.from { startElection(leadershipTransfer: true) }
        case .readIndexRequest(let request):
            handleForwardedRead(request, from: message.from)
        case .readIndexResponse(let response):
            handleForwardedReadResponse(response)
        case .removed:
            break
        }
    }

    /// Thesis §4.2.3: a server removed from the configuration never receives the entry that
    /// removes it (the leader stops replicating to it at once), so it times out and campaigns
    /// forever. The leader answers such a candidate, whatever its term, with a removal notice —
    /// only from a committed configuration, so a member being re-added is never turned away.
    private mutating func tellsRemovedCandidate(_ candidate: NodeID) -> Bool {
        guard role == .leader, !log.configuration.contains(candidate), log.lastConfigurationIndex <= log.committed
        else { return false }
        send(.removed(configurationIndex: log.lastConfigurationIndex), to: candidate)
        return true
    }

    /// A message from a higher term. Returns false when it must be ignored.
    private mutating func acceptHigherTerm(_ message: Message) -> Bool {
        switch message.payload {
        case .voteRequest(let request):
            // Thesis §4.2.3 and §6.4.1: a node that heard from a live leader within the minimum
            // election timeout neither votes nor raises its term. This keeps removed or partitioned
            // servers from disrupting the cluster and is what makes the leader lease sound.
            if options.checkQuorum && !request.leadershipTransfer && isWithinLeaderLease { return false }
            // PreVote does not change anyone's term (thesis §9.6). A real vote request does, but it
            // does not reset the election timer (paper Figure 2: only a leader's AppendEntries or a
            // granted vote do): otherwise candidates whose logs are too stale to win would keep
            // resetting the timers of the nodes that could, and no election would ever finish.
            if !request.preVote { becomeFollower(term: message.term, leader: nil, resetTimer: false) }
            return true
        case .voteResponse(let response) where response.preVote && response.granted:
            // Granted PreVotes carry the term we would campaign in; not a reason to step down.
            return true
        case .appendEntries, .heartbeat, .installSnapshot:
            becomeFollower(term: message.term, leader: message.from)
            return true
        default:
            becomeFollower(term: message.term, leader: nil, resetTimer: false)
            return true
        }
    }

    /// A message from a lower term is dropped, but its sender is told the current term where that
    /// helps it stop: a deposed leader still sending appends, or a pre-candidate that is behind.
    private mutating func answerStaleTerm(_ message: Message) {
        switch message.payload {
        case .appendEntries, .heartbeat, .installSnapshot:
            send(.appendResponse(AppendResponse(success: false, index: 0)), to: message.from)
        case .voteRequest(let request) where request.preVote:
            send(.voteResponse(VoteResponse(preVote: true, granted: false)), to: message.from)
        default:
            break
        }
    }

    /// Thesis §6.4.1: whether this node promised, by having heard from a leader within the minimum
    /// election timeout, not to help elect another. Judged by the clock of the last leader contact
    /// alone, never by `leader` or `term`, which other messages change. A leader keeps its own
    /// promise; a node that just started cannot know what it promised before, so it keeps one for
    /// a full election timeout (the boot lease: thesis §6.4.1, made robust to restarts).
    var isWithinLeaderLease: Bool {
        if options._plantedBugs.contains(.noLeaseCheck) { return role == .leader }
        if options._plantedBugs.contains(.promiseFromLeaderField) {
            return role == .leader
                || (role == .follower && (leader != nil || withinBootLease)
                    && electionElapsed < options.electionTimeout)
        }
        return role == .leader || withinBootLease || heardFromLeaderRecently
    }

    var withinBootLease: Bool { clock < UInt64(options.electionTimeout) }

    var heardFromLeaderRecently: Bool {
        guard let contact = lastLeaderContact else { return false }
        return clock &- contact < UInt64(options.electionTimeout)
    }

    /// A leader of the current term spoke: follow it and reset the election timer (paper §5.2).
    private mutating func followLeader(_ sender: NodeID) {
        if role != .follower || leader != sender {
            becomeFollower(term: term, leader: sender)
        }
        electionElapsed = 0
        lastLeaderContact = clock
    }
}
