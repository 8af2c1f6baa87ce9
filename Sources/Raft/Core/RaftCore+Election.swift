extension RaftCore {
    // MARK: Timers

    mutating func tickElection() {
        expireForwardedReads()
        electionElapsed += 1
        if electionElapsed >= randomizedElectionTimeout {
            // Randomized timeouts make split votes rare (paper §5.2).
            startElection(leadershipTransfer: false)
        }
    }

    mutating func tickLeader() {
        heartbeatElapsed += 1
        electionElapsed += 1
        if leadTransferee != nil {
            transferElapsed += 1
            // Thesis §3.10: a transfer that did not finish within an election timeout is abandoned
            // so the leader can take proposals again.
            if transferElapsed >= options.electionTimeout { leadTransferee = nil }
        }
        if electionElapsed >= options.electionTimeout {
            electionElapsed = 0
            if options.checkQuorum {
                // Thesis §6.2: a leader that has not heard from a quorum in an election timeout
                // steps down, so clients stop waiting on a leader that cannot commit.
                guard hasActiveQuorum else {
                    becomeFollower(term: term, leader: nil)
                    return
                }
                for index in progress.indices { progress[index].recentActive = false }
            }
        }
        if heartbeatElapsed >= options.heartbeatInterval {
            heartbeatElapsed = 0
            broadcastHeartbeat()
        }
    }

    private var hasActiveQuorum: Bool {
        let voters = log.configuration.voters
        var active = voters.contains(id) ? 1 : 0
        for follower in progress where !follower.isLearner && follower.recentActive { active += 1 }
        return active >= log.configuration.quorum
    }

    // MARK: Role changes

    mutating func becomeFollower(term newTerm: UInt64, leader newLeader: NodeID?, resetTimer: Bool = true) {
        let previousRole = role
        if role == .leader { failPendingReads() }
        if newLeader != leader || newTerm > term { failForwardedReads() }
        if newTerm > term {
            term = newTerm
            votedFor = nil
        }
        role = .follower
        leader = newLeader
        progress = []
        leadTransferee = nil
        votes = []
        appendsNeeded = false
        readHeartbeatNeeded = false
        commitHeartbeatNeeded = false
        heartbeatElapsed = 0
        if resetTimer || previousRole == .leader { resetElectionTimer() }
    }

    /// Starts PreVote (thesis §9.6) or, when PreVote is off or for a transfer, a real election.
    mutating func startElection(leadershipTransfer: Bool) {
        guard log.configuration.isVoter(id) else { return }
        if let removedBy, log.lastConfigurationIndex < removedBy { return }
        if options.preVote && !leadershipTransfer {
            becomePreCandidate()
        } else {
            becomeCandidate()
        }
        let electionTerm = role == .preCandidate ? term + 1 : term
        transferElection = leadershipTransfer
        recordVote(from: id, granted: true)
        guard role == .preCandidate || role == .candidate else { return }
        let request = VoteRequest(
            preVote: role == .preCandidate, lastLogIndex: log.lastIndex, lastLogTerm: log.lastTerm,
            leadershipTransfer: leadershipTransfer)
        for voter in log.configuration.voters where voter != id {
            send(.voteRequest(request), to: voter, term: electionTerm)
        }
    }

    private mutating func becomePreCandidate() {
        if leader != nil { failForwardedReads() }
        role = .preCandidate
        leader = nil
        votes = []
        resetElectionTimer()
    }

    private mutating func becomeCandidate() {
        if leader != nil { failForwardedReads() }
        term += 1
        votedFor = id
        role = .candidate
        leader = nil
        votes = []
        resetElectionTimer()
    }

    mutating func becomeLeader() {
        role = .leader
        leader = id
        votes = []
        heartbeatElapsed = 0
        electionElapsed = 0
        heartbeatSequence = 0
        leadTransferee = nil
        sentTimeoutNowThisTerm = false
        rebuildProgress()
        // As etcd: a new leader counts only itself as recently active, so that if it is cut off
        // right after its election, its first CheckQuorum already finds no quorum and it steps
        // down within one election timeout instead of two.
        for index in progress.indices { progress[index].recentActive = false }
        // Paper §5.4.2 / thesis §6.4: a new leader commits a no-op of its own term, through which
        // the entries of earlier terms it holds become committed.
        let noop = LogEntry(index: log.lastIndex + 1, term: term, kind: .noop, data: [])
        log.append([noop])
        firstIndexOfTerm = noop.index
        appendsNeeded = true
    }

    // MARK: Votes

    mutating func handleVoteRequest(_ request: VoteRequest, from candidate: NodeID, term requestTerm: UInt64) {
        // Thesis §6.4.1: the promise holds whatever term this node has been moved to since it heard
        // from the leader (see `isWithinLeaderLease`). A vote already cast for this candidate in
        // this term may be repeated: that elects no one new.
        let repeatsVote = !request.preVote && votedFor == candidate
        // The old rule checked the promise only on a higher-term request, in `acceptHigherTerm`.
        let checksPromise = !options._plantedBugs.contains(.promiseFromLeaderField)
        if checksPromise && options.checkQuorum && !request.leadershipTransfer && isWithinLeaderLease && !repeatsVote {
            send(.voteResponse(VoteResponse(preVote: request.preVote, granted: false)), to: candidate)
            return
        }
        // Paper §5.2: one vote per term, first come first served; a PreVote for a later term is
        // only a prediction and binds nothing (thesis §9.6).
        let canVote =
            votedFor == candidate
            || (votedFor == nil && leader == nil)
            || (request.preVote && requestTerm > term)
        // Paper §5.4.1: only for a candidate whose log is at least as up-to-date as ours.
        if canVote && log.isUpToDate(lastIndex: request.lastLogIndex, lastTerm: request.lastLogTerm) {
            send(.voteResponse(VoteResponse(preVote: request.preVote, granted: true)), to: candidate, term: requestTerm)
            if !request.preVote {
                votedFor = candidate
                electionElapsed = 0
            }
        } else {
            send(.voteResponse(VoteResponse(preVote: request.preVote, granted: false)), to: candidate)
        }
    }

    mutating func handleVoteResponse(_ response: VoteResponse, from voter: NodeID, term responseTerm: UInt64) {
        switch role {
        case .preCandidate:
            guard response.preVote else { return }
            // A grant must be for the term this round asks about, not a leftover from an earlier round.
            if response.granted && responseTerm != term + 1 { return }
        case .candidate:
            guard !response.preVote, responseTerm == term else { return }
        case .follower, .leader:
            return
        }
        guard log.configuration.isVoter(voter) else { return }
        recordVote(from: voter, granted: response.granted)
    }

    /// Tallies a vote and acts when the outcome is decided.
    private mutating func recordVote(from voter: NodeID, granted: Bool) {
        if !votes.contains(where: { $0.voter == voter }) { votes.append((voter, granted)) }
        let configuration = log.configuration
        let grants = votes.filter { $0.granted && configuration.isVoter($0.voter) }.count
        let rejections = votes.filter { !$0.granted && configuration.isVoter($0.voter) }.count
        if grants >= configuration.quorum {
            if role == .preCandidate {
                // The PreVote round predicts a win: now run the real election (thesis §9.6).
                let transfer = transferElection
                becomeCandidate()
                recordVote(from: id, granted: true)
                guard role == .candidate else { return }
                let request = VoteRequest(
                    preVote: false, lastLogIndex: log.lastIndex, lastLogTerm: log.lastTerm,
                    leadershipTransfer: transfer)
                for other in configuration.voters where other != id { send(.voteRequest(request), to: other) }
            } else if role == .candidate {
                becomeLeader()
            }
        } else if rejections > configuration.voters.count - configuration.quorum {
            becomeFollower(term: term, leader: nil)
        }
    }
}
