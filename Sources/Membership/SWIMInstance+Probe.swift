/// Failure detection: one probe per protocol period, direct then indirect (SWIM §3.1), targets in
/// randomized round-robin order (SWIM §4.3), periods and timeouts scaled by local health
/// (Lifeguard §IV-A).
extension SWIMInstance {
    mutating func nextSequenceNumber() -> UInt64 {
        nextSequence &+= 1
        return nextSequence
    }

    mutating func tickProbe() {
        if var round = probe {
            if !round.indirectSent && now >= round.indirectAt {
                sendIndirectProbes(&round)
            }
            if now >= round.endsAt {
                probe = nil
                probeFailed(round)
            } else {
                probe = round
            }
        }
        if probe == nil && now >= nextProbeAt {
            startProbe()
        }
    }

    /// SWIM §3.1: each period, ping one member. The period and the ack timeout are multiplied by
    /// the local health multiplier (Lifeguard §IV-A), so an unhealthy member probes less eagerly.
    mutating func startProbe() {
        let multiplier = UInt64(health.multiplier)
        nextProbeAt = now + UInt64(settings.probeInterval) * multiplier
        let table = self.table
        let me = id
        guard
            let target = probeOrder.next(
                random: &random, isProbeable: { $0 != me && table[$0]?.status.isReachable == true },
                everyone: {
                    table.values.filter { $0.id != me && $0.status.isReachable }.map(\.id).sorted()
                }),
            let member = table[target]
        else { return }
        let sequence = nextSequenceNumber()
        probe = ProbeRound(
            target: target, address: member.address, sequence: sequence,
            indirectAt: now + UInt64(settings.probeTimeout) * multiplier, endsAt: nextProbeAt)
        counters.probesSent += 1
        // Lifeguard §IV-C (buddy system): a ping to a member we suspect carries that suspicion first,
        // so the member learns of it at once and can refute.
        send(to: member.address, buddy: target, withHeldSuspicions: true) {
            .ping(sequence: sequence, target: target, gossip: $0)
        }
    }

    /// SWIM §3.1: no ack within the probe timeout, so ask k random other members to ping the target
    /// and relay its ack. Lifeguard §IV-A: they nack if the target does not answer them either.
    mutating func sendIndirectProbes(_ round: inout ProbeRound) {
        round.indirectSent = true
        let candidates = table.values.filter {
            $0.id != id && $0.id != round.target && $0.status.kind == .alive
        }.sorted { $0.id < $1.id }
        let helpers = random.sample(candidates, count: settings.indirectProbeCount)
        round.intermediaries = helpers.map(\.address)
        for helper in helpers {
            counters.indirectProbesSent += 1
            let sequence = round.sequence
            let target = round.target
            let targetAddress = round.address
            send(to: helper.address, buddy: nil) {
                .pingRequest(sequence: sequence, target: target, targetAddress: targetAddress, gossip: $0)
            }
        }
    }

    mutating func handleAck(sequence: UInt64, target: MemberID) {
        if let round = probe, round.sequence == sequence, round.target == target {
            // Lifeguard §IV-A: a successful probe lowers the local health score.
            probe = nil
            health.apply(-1)
            return
        }
        // An ack for a ping we sent as an intermediary: pass it on to the requester (SWIM §3.1).
        guard let relay = relays[sequence], relay.target == target else { return }
        relays[sequence] = nil
        send(to: relay.requester, buddy: nil) {
            .ack(sequence: relay.requesterSequence, target: target, gossip: $0)
        }
    }

    mutating func handleNack(sequence: UInt64, from address: String) {
        guard var round = probe, round.sequence == sequence, round.intermediaries.contains(address) else { return }
        round.nacks.insert(address)
        probe = round
    }

    /// The period ended without an ack. Lifeguard §IV-A: each intermediary that neither acked nor
    /// nacked is evidence that *we* are the problem (our packets, our CPU), so the local health score
    /// rises by the missing nacks (by one when nobody could be asked); if every nack came back the
    /// helpers are fine and the target really is unreachable, so our health is unchanged. Then the
    /// target becomes suspect (SWIM §4.2), or our failed probe confirms an existing suspicion.
    mutating func probeFailed(_ round: ProbeRound) {
        let expected = round.intermediaries.count
        health.apply(expected > 0 ? expected - round.nacks.count : 1)
        suspectAfterFailedProbe(round.target)
    }

    /// SWIM §3.1, the intermediary's side of a ping-request: ping the target with our own sequence
    /// number and remember whom to relay its ack to. Lifeguard §IV-A: nack after 80% of the probe
    /// timeout without an answer.
    mutating func relay(sequence: UInt64, target: MemberID, targetAddress: String, requester: String) {
        guard target != id else {
            // Asked to probe ourselves: we are obviously alive, answer directly.
            send(to: requester, buddy: nil) { .ack(sequence: sequence, target: target, gossip: $0) }
            return
        }
        let ours = nextSequenceNumber()
        relays[ours] = Relay(
            requester: requester, requesterSequence: sequence, target: target,
            nackAt: now + UInt64(settings.nackTimeout), expiresAt: now + UInt64(settings.probeInterval))
        send(to: targetAddress, buddy: target) { .ping(sequence: ours, target: target, gossip: $0) }
    }

    mutating func tickRelays() {
        guard !relays.isEmpty else { return }
        for sequence in relays.keys.sorted() {
            guard var relay = relays[sequence] else { continue }
            if now >= relay.expiresAt {
                relays[sequence] = nil
                continue
            }
            if !relay.nacked && now >= relay.nackAt {
                relay.nacked = true
                relays[sequence] = relay
                counters.nacksSent += 1
                send(to: relay.requester, buddy: nil) { .nack(sequence: relay.requesterSequence, gossip: $0) }
            }
        }
    }
}
