import Raft

extension Simulation {
    /// Checks run on every `Ready` before the host acts on it.
    func checkReady(_ ready: Ready, node index: Int) {
        let core = nodes[index].core!
        if let soft = ready.softState, soft.role != .leader {
            trace(
                "n\(index + 1) is \(soft.role) in term \(soft.term), leader \(soft.leader.map { "n\($0)" } ?? "unknown")"
            )
        }
        if let soft = ready.softState, soft.role == .leader {
            report.stats.elections += 1
            trace("n\(index + 1) leads term \(soft.term)")
            if let problem = safety.recordLeader(core.id, term: soft.term) { violation("Election Safety: \(problem)") }
            // The nemesis likes to kill a leader right after its election, before its no-op is
            // replicated: the window in which earlier-term entries are at risk (paper Figure 8).
            if !calm.active && random.chance(0.15) {
                nodes[index].crashAt = now + 1 + random.next(below: 4)
            }
            checkLeaderCompleteness(core)
        }
        for entry in ready.entries {
            let previousTerm = entry.index == 1 ? 0 : core.term(at: entry.index - 1)
            if let problem = safety.recordEntry(entry, previousTerm: previousTerm) {
                violation("Log Matching on n\(index + 1): \(problem)")
            }
        }
        let commit = core.commitIndex
        if commit > nodes[index].checkedCommit {
            var position = max(nodes[index].checkedCommit + 1, core.snapshotIndex)
            while position <= commit {
                if let term = core.term(at: position), let problem = safety.recordCommitted(index: position, term: term)
                {
                    violation("n\(index + 1): \(problem)")
                }
                position += 1
            }
            nodes[index].checkedCommit = commit
        }
    }

    /// Leader Completeness (paper §5.4): a new leader's log holds every entry committed before.
    func checkLeaderCompleteness(_ leader: RaftCore) {
        let committed = safety.highestCommitted
        if leader.lastIndex < committed {
            violation(
                "Leader Completeness: n\(leader.id) leads term \(leader.term) without committed entry \(committed)")
            return
        }
        var position = max(leader.snapshotIndex, 1)
        while position <= committed {
            let expected = safety.committedTerms[Int(position)]
            if expected != 0, let term = leader.term(at: position), term != expected {
                violation(
                    "Leader Completeness: n\(leader.id) leads term \(leader.term) with term \(term) at \(position), committed in term \(expected)"
                )
                return
            }
            position += 1
        }
    }

    /// DESIGN.md's durability rule, checked on what the host is about to send: nothing is
    /// acknowledged before it is on disk. A granted vote must be in the synced hard state, and
    /// an append acknowledged up to `i` must have the synced log reach `i` with the same term.
    /// A vote from a term the disk has already moved past promises nothing more: the node will
    /// never act in that term again. An earlier-term acknowledgement is fine when a newer leader
    /// has rightly replaced the entries since, but not when they never reached the disk at all.
    func checkDurableBeforeSend(_ ready: Ready, node index: Int) {
        let disk = nodes[index].disk.synced
        let core = nodes[index].core!
        let base = disk.snapshot.metadata.index
        let durableLast = base + UInt64(disk.entries.count)
        for message in ready.messages {
            let current = message.term >= disk.hardState.term
            switch message.payload {
            case .voteResponse(let response) where response.granted && !response.preVote && current:
                if disk.hardState.term != message.term || disk.hardState.votedFor != message.to {
                    violation(
                        "durability: n\(index + 1) grants its vote in term \(message.term) to n\(message.to) before the vote is on disk"
                    )
                }
            case .voteRequest(let request) where !request.preVote && current:
                // A candidate's vote for itself binds it like any other vote.
                if disk.hardState.term != message.term || disk.hardState.votedFor != message.from {
                    violation(
                        "durability: n\(index + 1) campaigns in term \(message.term) before its vote for itself is on disk"
                    )
                }
            case .appendResponse(let response) where response.success && response.index > base:
                if current {
                    let position = Int(response.index - base) - 1
                    let durableTerm = position < disk.entries.count ? disk.entries[position].term : nil
                    if durableTerm == nil || durableTerm != core.term(at: response.index) {
                        violation(
                            "durability: n\(index + 1) acknowledges entries up to \(response.index) before they are on disk"
                        )
                    }
                } else if durableLast < response.index && (disk.entries.last?.term ?? 0) <= message.term {
                    // Answered in an earlier term within this Ready: fine if a newer leader has
                    // since rewritten the tail on disk, not if the entries never reached it.
                    violation(
                        "durability: n\(index + 1) acknowledged entries up to \(response.index) in term \(message.term) that never reached the disk"
                    )
                }
            default:
                continue
            }
        }
    }

    /// The lease invariant, every step: no running node believes it holds a valid lease in a term
    /// older than one in which some node has become leader (that leader may already have
    /// committed writes the lease holder's reads would miss). A paused node believes nothing: it
    /// catches up on its clock before it does anything else.
    func checkLeases() {
        let newest = safety.newestLeader
        for node in nodes where node.pausedUntil <= now {
            guard let core = node.core, core.role == .leader, core.term < newest.term, core.hasValidLease else {
                continue
            }
            violation(
                "lease: n\(node.id) holds a lease in term \(core.term) after n\(newest.id) became leader in term \(newest.term)"
            )
        }
    }

    // MARK: Liveness

    /// Calm windows: every `calmEvery` steps the last `calmLength` are calm, and so is the end of
    /// the run. Calm means healed network, every node up and resumed, no faults.
    func updateCalmWindow() {
        let inWindow =
            now % options.calmEvery >= options.calmEvery - options.calmLength
            || now > options.steps - options.calmLength
        if inWindow && !calm.active {
            let periodicEnd = (now / options.calmEvery + 1) * options.calmEvery - 1
            let endsAt = now > options.steps - options.calmLength ? options.steps : min(periodicEnd, options.steps)
            calm = CalmWindow(active: true, startedAt: now, endsAt: endsAt, satisfied: false)
            network.heal()
            for index in nodes.indices {
                nodes[index].crashAt = nil
                restart(index)
                if nodes[index].pausedUntil > now { nodes[index].pausedUntil = now }
                while nodes[index].missedTicks > 0 {
                    nodes[index].missedTicks -= 1
                    nodes[index].core?.tick()
                }
            }
            trace("calm: network healed, every node up")
        } else if !inWindow && calm.active {
            checkConvergence()
            calm.active = false
        }
    }

    /// Liveness: once healed with every node up, a leader emerges and a new write commits within
    /// `livenessBound` ticks.
    func checkLiveness() {
        guard calm.active else { return }
        if now == calm.startedAt + options.livenessBound && !calm.satisfied {
            violation("liveness: no write committed within \(options.livenessBound) ticks of healing")
        }
        if now == options.steps { checkConvergence() }
    }

    /// At the end of a calm window every member has applied every acknowledged write.
    func checkConvergence() {
        guard calm.satisfied, let leader = nodes.first(where: { $0.core?.role == .leader })?.core else { return }
        for node in nodes where leader.configuration.contains(node.id) {
            if node.machine.index < safety.highestAcknowledged {
                violation(
                    "n\(node.id) applied only \(node.machine.index) after a calm window; write \(safety.highestAcknowledged) was acknowledged"
                )
            }
        }
    }
}
