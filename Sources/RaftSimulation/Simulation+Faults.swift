import Raft

extension Simulation {
    /// The nemesis: with small probabilities each step, one fault from the menu.
    func injectFaults() {
        guard random.chance(0.03) else { return }
        let n = options.nodeCount
        switch random.next(below: 16) {
        case 0:
            let victim = random.next(below: n)
            trace("crash n\(victim + 1)")
            crash(victim)
        case 1:
            if let leader = currentLeaderIndex() {
                trace("crash leader n\(leader + 1)")
                crash(leader)
            }
        case 2, 3:
            if let down = nodes.indices.filter({ !nodes[$0].isUp }).randomElement(using: &random) {
                trace("restart n\(down + 1)")
                restart(down)
            }
        case 4:
            let victim = currentLeaderIndex() ?? random.next(below: n)
            let ticks = 1 + random.next(below: options.steps(forTicks: 3 * options.electionTimeout))
            if nodes[victim].isUp {
                trace("pause n\(victim + 1) for \(ticks) ticks")
                nodes[victim].pausedUntil = now + ticks
            }
        case 5:
            var side = Set<Int>()
            for id in 1...n where random.chance(0.5) { side.insert(id) }
            trace("partition \(side.sorted()) from the rest")
            network.partition(side)
        case 6:
            if let leader = currentLeaderIndex() {
                let inbound = random.chance(0.7)
                let outbound = !inbound || random.chance(0.5)
                trace("isolate leader n\(leader + 1) inbound=\(inbound) outbound=\(outbound)")
                network.isolate(leader + 1, inbound: inbound, outbound: outbound)
            }
        case 7:
            // One-way link failures: a few directed links drop everything.
            for _ in 0..<(1 + random.next(below: n)) {
                let from = 1 + random.next(below: n)
                let to = 1 + random.next(below: n)
                if from != to { network.blocked[from][to] = true }
            }
            trace("some one-way links fail")
        case 8:
            network.lossRate = Double(random.next(below: 30)) / 100
            network.duplicateRate = Double(random.next(below: 10)) / 100
            network.delaySpread = 1 + random.next(below: options.maxDelay)
            network.longDelayRate = random.chance(0.5) ? Double(random.next(below: 5)) / 100 : 0
            trace(
                "network: loss \(network.lossRate) duplicates \(network.duplicateRate) delay ≤\(network.delaySpread) long delays \(network.longDelayRate)"
            )
        case 14:
            // The leader's link to one follower fails one way (a flaky NIC, a half-applied firewall
            // rule): the follower stops hearing the leader while everyone else still does. Often
            // while the clients are idle, so that the follower's log is as long as anyone's and
            // only the others' lease promise keeps it from being elected.
            if let leader = currentLeaderIndex() {
                let followers = nodes.indices.filter { $0 != leader }
                if let cut = followers.randomElement(using: &random) {
                    network.blocked[leader + 1][cut + 1] = true
                    if random.chance(0.5) {
                        clientsQuietUntil = now + options.steps(forTicks: 3 * options.electionTimeout)
                    }
                    trace("link n\(leader + 1) → n\(cut + 1) fails")
                }
            }
        case 15:
            // The worst case the drift bound allows: the leader's clock at its slowest, every other
            // at its fastest, and often the leader's outbound links cut right away — its followers'
            // promises then run out as early as they can while its lease lasts as long as it can.
            guard let leader = currentLeaderIndex(), options.clockDriftPerMille > 0 else { break }
            for index in nodes.indices {
                let bounds = rateBounds(of: index)
                nodes[index].rate = index == leader ? bounds.slowest : bounds.fastest
            }
            report.stats.clockRateChanges += nodes.count
            let cut = random.chance(0.5)
            if cut { network.isolate(leader + 1, inbound: false, outbound: true) }
            trace(
                "clocks at the edges of the drift bound, leader n\(leader + 1) slowest\(cut ? ", its outbound links cut" : "")"
            )
        case 13:
            let until = now + 5 + random.next(below: options.steps(forTicks: 6 * options.electionTimeout))
            clientsQuietUntil = until
            trace("clients go quiet until t=\(until)")
        case 12:
            // A clock changes speed within the drift bound (NTP slewing, a VM descheduled, …).
            let victim = random.next(below: n)
            nodes[victim].rate = drawRate(for: victim)
            report.stats.clockRateChanges += 1
            trace("n\(victim + 1)'s clock now runs at \(nodes[victim].rate)/1000 ticks per step")
        default:
            trace("heal network")
            network.heal()
        }
    }

    func currentLeaderIndex() -> Int? {
        // The leader of the highest term among live, unpaused nodes.
        var best: Int?
        for index in nodes.indices {
            guard let core = nodes[index].core, core.role == .leader, nodes[index].pausedUntil <= now else { continue }
            if best == nil || core.term > nodes[best!].core!.term { best = index }
        }
        return best
    }

    /// The operator: membership changes and leadership transfers, now and then.
    func operate() {
        guard let leaderIndex = currentLeaderIndex() else { return }
        if random.chance(0.004) {
            let configuration = nodes[leaderIndex].core!.configuration
            let outsiders = (1...options.nodeCount).map { NodeID($0) }.filter { !configuration.contains($0) }
            let change: ConfigurationChange
            if let outsider = outsiders.first {
                change = .addLearner(outsider)
            } else if let learner = configuration.learners.first {
                change = .promoteLearner(learner)
            } else if configuration.voters.count == options.nodeCount {
                change = .remove(configuration.voters[random.next(below: configuration.voters.count)])
            } else {
                return
            }
            let result = nodes[leaderIndex].core!.proposeConfigurationChange(change)
            trace("n\(leaderIndex + 1) proposes \(change): \(result)")
            if case .accepted = result { report.stats.configurationChanges += 1 }
        }
        if random.chance(0.004) {
            let voters = nodes[leaderIndex].core!.configuration.voters.filter { $0 != NodeID(leaderIndex + 1) }
            if let target = voters.randomElement(using: &random) {
                let started = nodes[leaderIndex].core!.transferLeadership(to: target)
                trace("n\(leaderIndex + 1) transfers leadership to n\(target): \(started)")
                if started { report.stats.transfers += 1 }
            }
        }
    }

    /// Clients: writes to whoever claims to lead, reads anywhere, in both read modes.
    func driveClients() {
        let quiet = calm.active && now > calm.endsAt - options.steps(forTicks: CalmWindow.quiet)
        let idle = clientsQuietUntil > now && !calm.active
        if !quiet && !idle && random.chance(calm.active ? 0.5 : 0.3) {
            let leaders = nodes.indices.filter { nodes[$0].core?.role == .leader && nodes[$0].pausedUntil <= now }
            let target =
                leaders.randomElement(using: &random)
                ?? nodes.indices.filter({ nodes[$0].isUp }).randomElement(using: &random)
            if let target {
                let writeID = nextWriteID
                nextWriteID += 1
                var payload: [UInt8] = []
                for shift in stride(from: 0, to: 64, by: 8) {
                    payload.append(UInt8(truncatingIfNeeded: writeID >> UInt64(shift)))
                }
                report.stats.proposals += 1
                if case .accepted(let index, let term) = nodes[target].core!.propose(payload) {
                    nodes[target].writes.append(PendingWrite(index: index, term: term, proposedAt: now))
                }
            }
        }
        if random.chance(0.4) {
            // Half the reads go to a node that believes it leads — a deposed leader that has not
            // noticed yet is exactly where a stale read would come from.
            let candidates = nodes.indices.filter { nodes[$0].isUp && nodes[$0].pausedUntil <= now }
            let leaders = candidates.filter { nodes[$0].core!.role == .leader }
            let pool = !leaders.isEmpty && random.chance(0.5) ? leaders : candidates
            if let target = pool.randomElement(using: &random) {
                let requestID = nextReadID
                nextReadID += 1
                nodes[target].reads.append(
                    PendingClientRead(
                        requestID: requestID, acknowledgedFloor: safety.highestAcknowledged,
                        observedFloor: safety.highestObserved))
                nodes[target].core!.readIndex(requestID: requestID, mode: random.chance(0.5) ? .lease : .linearizable)
            }
        }
    }
}
