extension RaftCore {
    /// Proposes a single-server membership change (thesis §4.1).
    ///
    /// The rules that make one-at-a-time changes safe without joint consensus:
    /// - the new configuration takes effect on every node as soon as its entry is appended to the
    ///   log, not when it commits (thesis §4.1), and reverts if the entry is truncated;
    /// - a leader accepts a change only when no earlier change is uncommitted (thesis §4.1), and
    ///   only after it has committed an entry of its own term — the correction Ongaro published in
    ///   2015 ("bug in single-server membership changes"), without which two leaders of adjacent
    ///   terms can commit changes whose majorities do not overlap;
    /// - new servers join as learners and are promoted once caught up (thesis §4.2.1).
    public mutating func proposeConfigurationChange(_ change: ConfigurationChange) -> ProposalResult {
        guard role == .leader else { return .rejected(.notLeader(leader: leader)) }
        guard leadTransferee == nil else { return .rejected(.transferInProgress) }
        guard log.committed >= firstIndexOfTerm, log.lastConfigurationIndex <= log.committed else {
            return .rejected(.configurationChangePending)
        }
        guard log.configuration.applying(change) != nil else { return .rejected(.invalidConfigurationChange) }
        if case .promoteLearner(let learner) = change {
            // Thesis §4.2.1: promote only a learner that is reachable and caught up; promoting a
            // dead one would raise the quorum with a member that cannot vote, and the change could
            // then never commit (nor be undone).
            guard let index = progressIndex(of: learner), progress[index].recentActive, progress[index].match > 0,
                progress[index].match + options.maxPromotionLag >= log.committed
            else { return .rejected(.learnerNotCaughtUp) }
        }
        let entry = LogEntry(index: log.lastIndex + 1, term: term, kind: .configurationChange, data: change.encoded)
        log.append([entry])
        rebuildProgress()
        appendsNeeded = true
        // A removal can shrink the quorum enough to commit what was waiting.
        maybeCommit()
        return .accepted(index: entry.index, term: term)
    }

    mutating func sendTimeoutNow(to target: NodeID) {
        sentTimeoutNowThisTerm = true
        send(.timeoutNow, to: target)
    }

    /// Hands leadership to `target` (thesis §3.10): stop taking proposals, bring the target's log up
    /// to date, then tell it to start an election at once with TimeoutNow. Abandoned after an
    /// election timeout. Returns false if this node is not the leader or `target` is not a voter.
    @discardableResult
    public mutating func transferLeadership(to target: NodeID) -> Bool {
        guard role == .leader, target != id, log.configuration.isVoter(target),
            let index = progressIndex(of: target)
        else { return false }
        if leadTransferee == target { return true }
        leadTransferee = target
        transferElapsed = 0
        if progress[index].match == log.lastIndex {
            sendTimeoutNow(to: target)
        } else {
            // Catch the target up now: re-probe it rather than wait for stall detection.
            if progress[index].state == .replicate { progress[index].becomeProbe() }
            appendsNeeded = true
        }
        return true
    }
}
