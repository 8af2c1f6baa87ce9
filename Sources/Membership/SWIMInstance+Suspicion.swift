/// Suspicion before death (SWIM §4.2) with Local Health Aware Suspicion (Lifeguard §IV-B).
extension SWIMInstance {
    /// Our probe of `target` failed: it becomes suspect with us as the first suspector, or, if it
    /// is already suspected at the same incarnation, we add our independent confirmation.
    mutating func suspectAfterFailedProbe(_ target: MemberID) {
        guard var member = table[target] else { return }
        switch member.status {
        case .alive(let incarnation):
            member.status = .suspect(incarnation: incarnation, confirmations: [id])
            counters.suspicionsRaised += 1
        case .suspect(let incarnation, let confirmations):
            guard !confirmations.contains(id) else { return }
            var more = confirmations
            more.insert(id)
            let capped = cappedConfirmations(more)
            guard capped.count > confirmations.count else { return }
            member.status = .suspect(incarnation: incarnation, confirmations: capped)
        case .dead, .left:
            return
        }
        store(member)
        gossip.enqueue(target)
    }

    /// Beyond K + 1 suspectors (the first one and K confirmations) more cannot shorten the timeout,
    /// so the set is capped to keep gossip small; the lowest ids are kept, deterministically.
    func cappedConfirmations(_ confirmations: Set<MemberID>) -> Set<MemberID> {
        let cap = settings.suspicionConfirmations + 1
        guard confirmations.count > cap else { return confirmations }
        return Set(confirmations.sorted().prefix(cap))
    }

    func capped(_ status: MemberStatus) -> MemberStatus {
        guard case .suspect(let incarnation, let confirmations) = status else { return status }
        return .suspect(incarnation: incarnation, confirmations: cappedConfirmations(confirmations))
    }

    /// SWIM §4.2: a suspect that has not refuted within the suspicion timeout is declared dead and
    /// the death is gossiped. Lifeguard §IV-B: the timeout is measured from when *we* started
    /// suspecting, and is `max − (max − min)·log(C + 1)/log(K + 1)` for C independent
    /// confirmations so far, so it shrinks as other members confirm. The timeout is also multiplied
    /// by our local health multiplier (Lifeguard §IV-A), like our probe periods: the timeouts are
    /// sized in probe periods, and our pings (which carry the suspicion to the suspect, buddy system,
    /// and bring its refutation back) slow down when our health is poor; an unhealthy member must not
    /// get quicker, in periods, at declaring others dead.
    mutating func tickSuspicions() {
        guard !suspectedSince.isEmpty else { return }
        let members = liveMemberCount
        for suspect in suspectedSince.keys.sorted() {
            guard let since = suspectedSince[suspect], var member = table[suspect],
                case .suspect(let incarnation, let confirmations) = member.status
            else { continue }
            let timeout =
                settings.suspicionTimeout(members: members, confirmations: max(0, confirmations.count - 1))
                * health.multiplier
            guard now - since >= UInt64(timeout) else { continue }
            member.status = .dead(incarnation: incarnation)
            counters.deathsDeclared += 1
            store(member)
            gossip.enqueue(suspect)
        }
    }
}
