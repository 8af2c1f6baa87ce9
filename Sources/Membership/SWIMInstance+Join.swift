/// Joining through seeds, graceful leave, metadata and the push-pull full state exchange.
extension SWIMInstance {
    /// Starts joining the group through `seeds` (addresses of some existing members): a push-pull
    /// with each seed, retried every `joinRetryInterval` until one answers. Our own address among
    /// the seeds is ignored, so every node can be given the same seed list.
    public mutating func join(seeds: [String]) -> [SWIMDirective] {
        self.seeds = seeds.filter { $0 != address }
        guard !self.seeds.isEmpty, !hasLeft else { return takeOutput() }
        isJoining = true
        nextJoinAttemptAt = now + UInt64(settings.joinRetryInterval)
        for seed in self.seeds {
            counters.pushPullsStarted += 1
            output.append(.startPushPull(to: seed))
        }
        gossip.enqueue(id)
        return takeOutput()
    }

    /// Leaves gracefully: our record becomes `left` at our incarnation (which nothing short of a
    /// new incarnation of ours overrides), we tell up to `leaveFanout` members directly and stop
    /// probing. Keep answering pings for a few periods before shutting down, so that the `left`
    /// record also rides on our acks.
    public mutating func leave() -> [SWIMDirective] {
        guard !hasLeft else { return takeOutput() }
        var me = localMember
        let incarnation = me.status.incarnation
        me.status = .left(incarnation: incarnation)
        store(me)
        gossip.enqueue(id)
        probe = nil
        isJoining = false
        let reachable = table.values.filter { $0.id != id && $0.status.isReachable }.sorted { $0.id < $1.id }
        for member in random.sample(reachable, count: settings.leaveFanout) {
            output.append(.send(.leave(member: id, incarnation: incarnation), to: member.address))
        }
        return takeOutput()
    }

    /// Publishes new metadata about ourselves: the version rises by one and the record is gossiped.
    public mutating func updateMetadata(_ metadata: MemberMetadata) -> [SWIMDirective] {
        var me = localMember
        me.metadata = metadata
        me.metadataVersion += 1
        metadataIncarnation[id] = me.status.incarnation
        store(me)
        gossip.enqueue(id)
        return takeOutput()
    }

    /// Everything we know, for a push-pull exchange (tombstones included, so deaths and leaves
    /// propagate too).
    public func pushPullState() -> [Member] { members }

    /// The message to send on a push-pull connection the host opened for `.startPushPull`.
    public func pushPullRequest() -> SWIMMessage { .pushPull(.request, members: pushPullState()) }

    /// Merges the member list of a push-pull response (the same as receiving
    /// `.pushPull(.response, members:)`).
    public mutating func mergePushPull(_ members: [Member]) -> [SWIMDirective] {
        mergePushPullState(members)
        return takeOutput()
    }

    mutating func mergePushPullState(_ members: [Member]) {
        merge(members)
        if isJoining && liveMemberCount > 1 { isJoining = false }
    }

    /// memberlist's periodic push-pull: every `pushPullInterval`, a full state exchange with a
    /// random member. Members we hold dead are candidates too (until reaped): that is how the two
    /// sides of a healed partition find each other again. With nobody known, the seeds are tried.
    mutating func tickPushPull() {
        guard now >= nextPushPullAt else { return }
        nextPushPullAt = now + UInt64(settings.pushPullInterval)
        let candidates = table.values.filter { $0.id != id && $0.status.kind != .left }.sorted { $0.id < $1.id }
        let target: String
        if !candidates.isEmpty {
            target = candidates[random.next(below: candidates.count)].address
        } else if !seeds.isEmpty {
            target = seeds[random.next(below: seeds.count)]
        } else {
            return
        }
        counters.pushPullsStarted += 1
        output.append(.startPushPull(to: target))
    }

    mutating func tickJoin() {
        guard isJoining, now >= nextJoinAttemptAt else { return }
        if liveMemberCount > 1 {
            isJoining = false
            return
        }
        nextJoinAttemptAt = now + UInt64(settings.joinRetryInterval)
        for seed in seeds {
            counters.pushPullsStarted += 1
            output.append(.startPushPull(to: seed))
        }
    }
}
