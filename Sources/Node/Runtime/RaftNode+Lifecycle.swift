import Foundation
import Raft

/// Membership changes, leadership hand-over and what readiness measures: the parts of `RaftNode`
/// that operators drive (drain, `raftgate member …`) rather than clients.
extension RaftNode {
    // MARK: Observing

    /// The highest commit index the leader is known to have reached: its own on the leader, the
    /// largest a leader announced (AppendEntries or heartbeat) on a follower. Readiness and
    /// `/replica` measure this node's applied index against it, not against its own commit index,
    /// which lags with its log.
    public var leaderCommitIndex: UInt64 {
        loop.core.role == .leader ? loop.core.commitIndex : max(knownLeaderCommit, loop.core.commitIndex)
    }

    /// A leader told this node it is no longer a member; it does not campaign any more.
    public var isRemoved: Bool { loop.core.removedByConfiguration != nil }

    /// The configuration this node's log starts from (its snapshot's). A node joining the cluster
    /// starts from the same base, so that the configuration entries it then receives from the
    /// leader, applied on top, give the configuration every other node has.
    public var baseConfiguration: ClusterConfiguration { loop.core.snapshot.metadata.configuration }

    /// Raft addresses this node knows, as host:port.
    public var knownPeerAddresses: [NodeID: String] {
        peerAddresses.mapValues { "\($0.host):\($0.port)" }
    }

    /// Raft addresses this node knows, flags and member records together.
    public var peerEndpoints: [NodeID: (host: String, port: Int)] { peerAddresses }

    func noteLeaderCommit(_ message: Message) {
        guard message.from == loop.core.leader || loop.core.leader == nil else { return }
        switch message.payload {
        case .appendEntries(let append): knownLeaderCommit = max(knownLeaderCommit, append.leaderCommit)
        case .heartbeat(let heartbeat): knownLeaderCommit = max(knownLeaderCommit, heartbeat.commit)
        // A follower far behind gets a snapshot, and meanwhile only heartbeats whose commit is
        // capped at what it holds (nothing yet): the snapshot's index is the leader's commit at
        // least, so readiness sees how far behind this node is while it installs.
        case .installSnapshot(let chunk): knownLeaderCommit = max(knownLeaderCommit, chunk.metadata.index)
        default: break
        }
    }

    // MARK: Peer addresses

    /// The flags' peers, then every member record in the store (which wins: it is newer).
    func learnPeerAddresses() {
        for (peer, address) in configuration.peers where peer != id { setPeerAddress(peer, address) }
        for (key, record) in loop.store.range(prefix: MemberRecord.prefix, includeReserved: true) {
            if let member = MemberRecord(key: key, value: record.value) { learn(member) }
        }
    }

    func learnPeerAddresses(from change: StoreChange) {
        for event in change.events where event.kind == .put && event.key.hasPrefix(MemberRecord.prefix) {
            if let member = MemberRecord(key: event.key, value: event.value) { learn(member) }
        }
    }

    private func learn(_ member: MemberRecord) {
        guard member.id != id, let endpoint = member.dialableRaftEndpoint else { return }
        setPeerAddress(member.id, endpoint)
    }

    private func setPeerAddress(_ peer: NodeID, _ address: (host: String, port: Int)) {
        if let known = peerAddresses[peer], known.host == address.host, known.port == address.port { return }
        peerAddresses[peer] = address
        transport.setPeer(peer, host: address.host, port: address.port)
    }

    /// Records for the members of the configuration that have none in the store yet, from the
    /// addresses this node knows (its own, and its peers' from the flags).
    public var missingMemberRecords: [MemberRecord] {
        loop.core.configuration.members.compactMap { member in
            guard loop.store.get(MemberRecord.prefix + String(member)) == nil else { return nil }
            // An unspecified host (a node bound to 0.0.0.0) is no address to record: the record
            // would replace the address other nodes have from their flags.
            if member == id {
                guard !MemberRecord.isUnspecified(host: configuration.raftHost) else { return nil }
                return MemberRecord(id: id, raft: "\(configuration.raftHost):\(raftPort)")
            }
            guard let address = peerAddresses[member], !MemberRecord.isUnspecified(host: address.host) else {
                return nil
            }
            return MemberRecord(id: member, raft: "\(address.host):\(address.port)")
        }
    }

    /// Writes the missing records (see `missingMemberRecords`) before a membership change, so a
    /// node added now, or restarted later with other flags, learns every member's address. The
    /// bootstrap members get records only then: a cluster that never changed needs none (its
    /// flags describe it), and its revisions are not moved by writes its users did not make.
    public func recordMissingMembers() async -> WriteOutcome? {
        for record in missingMemberRecords {
            let outcome = await recordMember(record)
            guard case .applied(.applied, _) = outcome else { return outcome }
        }
        return nil
    }

    /// Records where `member` is reachable (committed like any write), so every node can dial it.
    public func recordMember(_ member: MemberRecord) async -> WriteOutcome {
        learn(member)
        return await write(StoreCommand(operation: .put(key: member.key, value: member.encoded), isSystem: true))
    }

    // MARK: Membership changes

    /// Proposes one single-server change (the core enforces one pending change at a time, learners
    /// first, and the committed-entry-of-this-term rule) and waits until it is applied here.
    /// With `term`, only while this node leads that term (for leader services).
    public func changeMembership(_ change: ConfigurationChange, inTerm term: UInt64? = nil) async -> WriteOutcome {
        guard !stopped else { return .notLeader(leader: nil) }
        catchUpTicks()
        if let term, loop.core.role != .leader || loop.core.term != term { return .notLeader(leader: loop.core.leader) }
        switch loop.core.proposeConfigurationChange(change) {
        case .rejected(.notLeader(let leader)):
            return .notLeader(leader: leader)
        case .rejected(let reason):
            return .notApplied("\(reason)")
        case .accepted(let index, let term):
            let timeout = configuration.writeTimeout
            return await withCheckedContinuation { waiter in
                pendingWrites[index]?.waiter.resume(returning: .notApplied("truncated before it committed"))
                pendingWrites[index] = (term, waiter)
                drain()
                Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    await self?.expireMembershipChange(index: index, term: term)
                }
            }
        }
    }

    private func expireMembershipChange(index: UInt64, term: UInt64) {
        guard let pending = pendingWrites[index], pending.term == term else { return }
        pendingWrites[index] = nil
        pending.waiter.resume(returning: .unknown("not applied within \(configuration.writeTimeout)"))
    }

    /// Learners the leader sees caught up (what `proposeConfigurationChange` will accept to promote).
    public var promotableLearners: [NodeID] {
        guard loop.core.role == .leader else { return [] }
        let commit = loop.core.commitIndex
        return loop.core.status.followers.filter {
            $0.isLearner && $0.recentlyActive && $0.match > 0
                && $0.match + loop.core.options.maxPromotionLag >= commit
        }.map(\.id)
    }

    // MARK: Leadership transfer

    /// Hands leadership to `target` and waits (up to `timeout`) until this node no longer leads.
    /// Returns the leader afterwards (nil when none is known yet), or throws nothing: a transfer
    /// that did not finish leaves this node leading, and the core abandons it after an election
    /// timeout.
    public func transferLeadership(to target: NodeID, timeout: Duration) async -> TransferOutcome {
        guard !stopped else { return .failed("node stopped") }
        catchUpTicks()
        guard loop.core.role == .leader else { return .notLeader(leader: loop.core.leader) }
        guard loop.core.transferLeadership(to: target) else {
            return .failed("n\(target) is not a voter this leader replicates to")
        }
        drain()
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            try? await Task.sleep(for: configuration.tickInterval)
            if stopped { return .failed("node stopped") }
            catchUpTicks()
            if loop.core.role != .leader { return .transferred(to: loop.core.leader) }
        }
        return .failed("n\(target) did not take over within \(timeout)")
    }

    /// Waits until no leadership transfer is in progress here (it succeeded, or the core abandoned
    /// it after an election timeout) and a leader is known again: the old leader steps down on the
    /// new one's vote request, before it hears who won, and a write sent on then would fail.
    func awaitTransferEnd() async {
        let deadline = ContinuousClock.now + configuration.tickInterval * (loop.core.options.electionTimeout * 2)
        func settled() -> Bool {
            LeadershipHandOff.isSettled(
                transferTarget: loop.core.transferTarget, role: loop.core.role, leader: loop.core.leader)
        }
        while !stopped, !settled(), ContinuousClock.now < deadline {
            try? await Task.sleep(for: configuration.tickInterval)
            catchUpTicks()
        }
    }

    /// The voter most caught up (highest match) that the leader heard from recently: the one that
    /// can take over soonest. nil when there is none (a one-node cluster, or no live follower).
    public var handOffTarget: NodeID? {
        LeadershipHandOff.target(
            followers: loop.core.status.followers.map {
                .init(id: $0.id, match: $0.match, isLearner: $0.isLearner, recentlyActive: $0.recentlyActive)
            }, configuration: loop.core.configuration)
    }

    /// Drain's step: when this node leads, hand leadership to the most caught-up voter.
    public func handOffLeadership(timeout: Duration) async -> TransferOutcome {
        guard loop.core.role == .leader else { return .notLeader(leader: loop.core.leader) }
        guard let target = handOffTarget else { return .failed("no live voter to hand leadership to") }
        return await transferLeadership(to: target, timeout: timeout)
    }

    // MARK: Start

    /// On a node's first start, writes its bootstrap configuration as the snapshot at index 0, so
    /// a restart reads the configuration back from disk rather than from flags that may have
    /// changed since (after a scale-out, `peers` no longer describes the cluster).
    static func persistBootstrapConfiguration(_ configuration: NodeConfiguration, snapshots: SnapshotStore) throws {
        guard try snapshots.loadLatest() == nil else { return }
        guard configuration.mayBootstrap else { throw BootstrapRefused(directory: configuration.dataDirectory) }
        let base = RestoredState.bootstrap(voters: configuration.initialVoters, learners: configuration.initialLearners)
        try snapshots.save(base.snapshot)
    }
}

/// A node that may not bootstrap (`NodeConfiguration.mayBootstrap`) found no snapshot to start from.
public struct BootstrapRefused: Error, CustomStringConvertible {
    public var directory: String
    public var description: String {
        "\(directory) holds no snapshot and this node may not start a new cluster from its flags: remove this member, empty the directory and start it with --join"
    }
}

/// What became of a leadership transfer.
public enum TransferOutcome: Sendable, Hashable {
    /// This node no longer leads; `to` leads now (nil: the election is not over yet).
    case transferred(to: NodeID?)
    /// This node was not the leader.
    case notLeader(leader: NodeID?)
    case failed(String)
}

/// Who takes over when a leader drains: pure, so tested without a cluster.
public enum LeadershipHandOff {
    /// What the leader knows of one follower.
    public struct Follower: Sendable, Hashable {
        public var id: NodeID
        public var match: UInt64
        public var isLearner: Bool
        public var recentlyActive: Bool

        public init(id: NodeID, match: UInt64, isLearner: Bool, recentlyActive: Bool) {
            self.id = id
            self.match = match
            self.isLearner = isLearner
            self.recentlyActive = recentlyActive
        }
    }

    /// Whether a write held back by a hand-over may go on: no transfer is running, and this node
    /// leads (the transfer was abandoned) or knows who does (to forward to).
    public static func isSettled(transferTarget: NodeID?, role: Role, leader: NodeID?) -> Bool {
        transferTarget == nil && (role == .leader || leader != nil)
    }

    /// The voter (never a learner, never one the leader has not heard from recently) with the
    /// highest match index; ties go to the lowest id, so the choice is deterministic.
    public static func target(followers: [Follower], configuration: ClusterConfiguration) -> NodeID? {
        followers.filter { configuration.isVoter($0.id) && !$0.isLearner && $0.recentlyActive }
            .max { ($0.match, NodeID.max - $0.id) < ($1.match, NodeID.max - $1.id) }?.id
    }
}
