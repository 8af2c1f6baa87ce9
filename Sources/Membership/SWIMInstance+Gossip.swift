/// Dissemination (SWIM §4.1): membership news is piggybacked on pings, ping-requests, acks and
/// nacks, each piece at most λ·log n times, and merged by the precedence rules of SWIM §4.2.
extension SWIMInstance {
    // MARK: Sending

    /// Queues a datagram built by `make` around as much gossip as fits `maxPayloadBytes`.
    /// `buddy`: if we suspect that member, its record goes first (Lifeguard §IV-C).
    /// `withHeldSuspicions`: also carry every suspicion we still hold (see `heldSuspicions`).
    mutating func send(
        to address: String, buddy: MemberID?, withHeldSuspicions: Bool = false, _ make: ([Member]) -> SWIMMessage
    ) {
        let base = SWIMWireCodec.encodedSize(make([]))
        var items = takeGossip(budget: settings.maxPayloadBytes - base, buddy: buddy)
        if withHeldSuspicions { addHeldSuspicions(to: &items, budget: settings.maxPayloadBytes - base) }
        output.append(.send(make(items), to: address))
    }

    /// A suspicion we hold keeps riding on our probes until it is resolved, beyond its retransmit
    /// limit. Gossip is probabilistic: the refutation of a false suspicion can run out of
    /// retransmissions everywhere before it reached us, and then our timer would declare a live
    /// member dead. Asking again each period fixes that, because whoever already holds the newer
    /// incarnation answers with it (`merge` queues newer news for the sender of stale news).
    /// Suspicions are rare on a healthy network, so this costs a few records per ping.
    mutating func addHeldSuspicions(to items: inout [Member], budget: Int) {
        guard !suspectedSince.isEmpty, items.count < settings.maxGossipPerMessage else { return }
        var used = items.reduce(0) { $0 + SWIMWireCodec.encodedSize(of: $1) }
        let oldestFirst = suspectedSince.sorted { ($0.value, $0.key) < ($1.value, $1.key) }.map(\.key)
        for suspect in oldestFirst where !items.contains(where: { $0.id == suspect }) {
            guard items.count < settings.maxGossipPerMessage, let member = table[suspect] else { break }
            let item = gossipItem(member)
            let size = SWIMWireCodec.encodedSize(of: item)
            guard used + size <= budget else { break }
            items.append(item)
            used += size
        }
    }

    /// How a record travels in gossip: metadata only with alive records (see `Member`).
    func gossipItem(_ member: Member) -> Member {
        guard member.status.kind != .alive else { return member }
        return Member(id: member.id, address: member.address, status: member.status)
    }

    /// Chooses gossip for one datagram of at most `budget` bytes of records (the count byte is in
    /// the base size: at most 127 records). Least-sent news first (SWIM §4.1's retransmit limit).
    mutating func takeGossip(budget: Int, buddy: MemberID?) -> [Member] {
        var items: [Member] = []
        var remaining = budget
        let limit = settings.retransmitLimit(members: liveMemberCount)
        if let buddy, let member = table[buddy], member.status.kind == .suspect, settings.maxGossipPerMessage > 0 {
            let item = gossipItem(member)
            let size = SWIMWireCodec.encodedSize(of: item)
            if size <= remaining {
                items.append(item)
                remaining -= size
                gossip.transmitted(buddy, limit: limit)
            }
        }
        guard !gossip.isEmpty else { return items }
        for candidate in gossip.candidates() {
            guard items.count < settings.maxGossipPerMessage else { break }
            if candidate == buddy && items.first?.id == buddy { continue }
            guard let member = table[candidate] else {
                gossip.remove(candidate)
                continue
            }
            let item = gossipItem(member)
            let size = SWIMWireCodec.encodedSize(of: item)
            guard size <= remaining else { continue }
            items.append(item)
            remaining -= size
            gossip.transmitted(candidate, limit: limit)
        }
        return items
    }

    // MARK: Merging

    mutating func merge(_ items: [Member]) {
        for item in items { merge(item) }
    }

    /// Applies one record of news about a member (SWIM §4.2):
    /// - news that supersedes what we hold (higher incarnation, or same incarnation and a stronger
    ///   status: alive < suspect < dead < left) replaces it and is gossiped on;
    /// - a suspicion at the incarnation we already suspect adds its confirmations (Lifeguard §IV-B);
    /// - metadata is adopted if it comes with a higher incarnation, or with a higher version at the
    ///   same incarnation;
    /// - an unknown member is added if alive or suspect (dead or left strangers are ignored);
    /// - news about ourselves is answered by refutation (`mergeAboutSelf`).
    mutating func merge(_ item: Member) {
        if item.id == id {
            mergeAboutSelf(item)
            return
        }
        guard let current = table[item.id] else {
            guard item.status.isReachable else { return }
            var fresh = item
            fresh.status = capped(item.status)
            store(fresh)
            if fresh.metadata != nil { metadataIncarnation[item.id] = item.status.incarnation }
            gossip.enqueue(item.id)
            return
        }
        // Stale news (an incarnation we know has been overtaken): the sender missed what we know,
        // so queue our record again; the reply to its message carries it (anti-entropy).
        if item.status.incarnation < current.status.incarnation {
            gossip.enqueue(item.id)
            return
        }
        var updated = current
        if item.status.supersedes(current.status) {
            updated.status = capped(item.status)
            if item.status.incarnation > current.status.incarnation { updated.address = item.address }
            if current.status.kind == .suspect && item.status.kind == .alive {
                counters.falseSuspicionRefutations += 1
            }
        } else if case .suspect(let incarnation, let held) = current.status,
            case .suspect(incarnation, let heard) = item.status
        {
            let merged = cappedConfirmations(held.union(heard))
            if merged.count > held.count { updated.status = .suspect(incarnation: incarnation, confirmations: merged) }
        }
        if let metadata = item.metadata {
            let heldAt = metadataIncarnation[item.id] ?? 0
            let newer =
                current.metadata == nil || item.status.incarnation > heldAt
                || (item.status.incarnation == heldAt && item.metadataVersion > current.metadataVersion)
            if newer && (metadata != current.metadata || item.metadataVersion != current.metadataVersion) {
                updated.metadata = metadata
                updated.metadataVersion = item.metadataVersion
                metadataIncarnation[item.id] = item.status.incarnation
            } else if newer {
                metadataIncarnation[item.id] = item.status.incarnation
            }
        }
        guard updated != current else { return }
        store(updated)
        gossip.enqueue(item.id)
    }

    /// News about ourselves. SWIM §4.2: a member that hears it is suspected (or declared dead)
    /// at its current incarnation or later refutes by raising its incarnation above it and
    /// gossiping alive; Lifeguard §IV-A counts a refuted suspicion against our local health. Alive
    /// news with a higher incarnation than ours (left over from before a restart) is overtaken the
    /// same way. Once we have left, nothing is refuted.
    ///
    /// A suspicion (or death) about an incarnation we already refuted means the sender has not heard
    /// the refutation yet, perhaps because it ran out of retransmissions everywhere before reaching
    /// it: we queue our alive record again, so the answer to the sender (the ack to the buddy-system
    /// ping that brought the suspicion) carries it.
    mutating func mergeAboutSelf(_ item: Member) {
        guard !hasLeft else { return }
        let mine = incarnation
        switch item.status {
        case .alive(let theirs):
            if theirs > mine { refute(over: theirs) }
        case .suspect(let theirs, let accusers):
            guard theirs >= mine else { return gossip.enqueue(id) }
            counters.refutations += 1
            health.apply(1)
            refute(over: theirs)
            tellAccusers(accusers)
        case .dead(let theirs), .left(let theirs):
            guard theirs >= mine else { return gossip.enqueue(id) }
            counters.refutations += 1
            refute(over: theirs)
        }
    }

    /// After refuting, ping the members that suspect us (the confirmations of the suspicion) so the
    /// refutation reaches them within a round trip instead of by chance gossip, which matters most in
    /// small groups where each member sends only a ping or two per period. Their acks are ignored.
    mutating func tellAccusers(_ accusers: Set<MemberID>) {
        for accuser in accusers.sorted() where accuser != id {
            guard let member = table[accuser], member.status.isReachable else { continue }
            let sequence = nextSequenceNumber()
            send(to: member.address, buddy: nil) { .ping(sequence: sequence, target: accuser, gossip: $0) }
        }
    }

    mutating func refute(over incarnation: UInt64) {
        var me = localMember
        me.status = .alive(incarnation: incarnation + 1)
        metadataIncarnation[id] = incarnation + 1
        store(me)
        gossip.enqueue(id)
    }

    // MARK: The table

    /// Stores a member's new record and keeps every index in step: status counts, suspicion timers,
    /// tombstones, the probe order; reports visible changes and starts a push-pull with a member
    /// that came back from the dead.
    mutating func store(_ updated: Member) {
        let previous = table[updated.id]
        if let previous { statusCounts[previous.status.kind.rawValue] -= 1 }
        statusCounts[updated.status.kind.rawValue] += 1
        table[updated.id] = updated
        if updated.id != id {
            switch updated.status {
            case .suspect(let incarnation, _):
                if case .suspect(incarnation, _)? = previous?.status {
                } else {
                    suspectedSince[updated.id] = now
                }
                tombstonedSince[updated.id] = nil
            case .alive:
                suspectedSince[updated.id] = nil
                tombstonedSince[updated.id] = nil
            case .dead, .left:
                suspectedSince[updated.id] = nil
                if tombstonedSince[updated.id] == nil { tombstonedSince[updated.id] = now }
            }
            if updated.status.isReachable && previous?.status.isReachable != true {
                probeOrder.insert(updated.id, random: &random)
            }
            // A member we held dead refuted (a healed partition, a restart): exchange full state with
            // it, so that each side learns of every other member the other side wrongly holds dead,
            // and those refute in turn. Without this a healed partition converges only as fast as
            // random push-pulls happen to cross it.
            if previous?.status.kind == .dead && updated.status.isReachable {
                counters.pushPullsStarted += 1
                output.append(.startPushPull(to: updated.address))
            }
        }
        if let previous, previous.status.kind == updated.status.kind, previous.address == updated.address,
            previous.metadataVersion == updated.metadataVersion, previous.metadata == updated.metadata
        {
            return
        }
        output.append(.memberChanged(MemberChange(previousStatus: previous?.status, member: updated)))
    }

    /// Forgets members dead or left for longer than `tombstoneTicks`.
    mutating func reapTombstones() {
        guard !tombstonedSince.isEmpty else { return }
        for member in tombstonedSince.keys.sorted() {
            guard let since = tombstonedSince[member], now - since >= UInt64(settings.tombstoneTicks) else { continue }
            tombstonedSince[member] = nil
            if let record = table.removeValue(forKey: member) {
                statusCounts[record.status.kind.rawValue] -= 1
            }
            metadataIncarnation[member] = nil
            gossip.remove(member)
        }
    }
}
