/// A node's identity in the cluster. `0` is never a valid id.
public typealias NodeID = UInt64

/// What a log entry carries. The host applies `command` entries to its state machine; `noop` entries
/// exist only so a new leader can commit an entry of its own term (Raft paper §5.4.2, thesis §6.4);
/// `configurationChange` entries change the membership (thesis §4.1).
public enum EntryKind: UInt8, Sendable, Hashable {
    case command = 0
    case noop = 1
    case configurationChange = 2
}

/// One entry of the replicated log (Raft paper §5.3).
public struct LogEntry: Sendable, Hashable {
    public var index: UInt64
    public var term: UInt64
    public var kind: EntryKind
    public var data: [UInt8]

    public init(index: UInt64, term: UInt64, kind: EntryKind = .command, data: [UInt8] = []) {
        self.index = index
        self.term = term
        self.kind = kind
        self.data = data
    }

    /// Approximate wire size, used for the in-flight byte budget.
    @inlinable public var byteCount: Int { data.count + 24 }
}

/// The state a node must persist before it answers anyone (Raft paper Figure 2, "Persistent state").
/// `commit` is persisted only so a restart re-applies less; losing it is safe.
public struct HardState: Sendable, Hashable {
    public var term: UInt64
    public var votedFor: NodeID?
    public var commit: UInt64

    public init(term: UInt64 = 0, votedFor: NodeID? = nil, commit: UInt64 = 0) {
        self.term = term
        self.votedFor = votedFor
        self.commit = commit
    }
}

/// Who votes and who only listens. Both lists are kept sorted so that every iteration over
/// them is deterministic (a seeded simulation must replay byte for byte).
public struct ClusterConfiguration: Sendable, Hashable {
    public private(set) var voters: [NodeID]
    public private(set) var learners: [NodeID]

    public init(voters: [NodeID], learners: [NodeID] = []) {
        self.voters = Array(Set(voters)).sorted()
        self.learners = Array(Set(learners).subtracting(voters)).sorted()
    }

    public func isVoter(_ id: NodeID) -> Bool { voters.contains(id) }
    public func isLearner(_ id: NodeID) -> Bool { learners.contains(id) }
    public func contains(_ id: NodeID) -> Bool { isVoter(id) || isLearner(id) }

    /// Every member, voters and learners, sorted.
    public var members: [NodeID] { (voters + learners).sorted() }

    /// The number of votes (or acknowledgements) that make a majority.
    public var quorum: Int { voters.count / 2 + 1 }

    /// Applies one single-server change (thesis §4.1). Returns nil when the change is not valid here.
    public func applying(_ change: ConfigurationChange) -> ClusterConfiguration? {
        switch change {
        case .addLearner(let id):
            guard id != 0, !contains(id) else { return nil }
            return ClusterConfiguration(voters: voters, learners: learners + [id])
        case .promoteLearner(let id):
            guard isLearner(id) else { return nil }
            return ClusterConfiguration(voters: voters + [id], learners: learners.filter { $0 != id })
        case .remove(let id):
            guard contains(id) else { return nil }
            let remainingVoters = voters.filter { $0 != id }
            guard !remainingVoters.isEmpty else { return nil }
            return ClusterConfiguration(voters: remainingVoters, learners: learners.filter { $0 != id })
        }
    }
}

/// A membership change. raftgate changes membership one server at a time (thesis §4.1–4.3)
/// rather than with joint consensus; see `Sources/Raft/README.md` for why.
public enum ConfigurationChange: Sendable, Hashable {
    /// Start replicating to a new, non-voting member (thesis §4.2.1: new servers catch up first).
    case addLearner(NodeID)
    /// Turn a caught-up learner into a voter.
    case promoteLearner(NodeID)
    /// Remove a voter or a learner.
    case remove(NodeID)

    /// The entry payload: one opcode byte and the node id, little endian.
    public var encoded: [UInt8] {
        let (opcode, id): (UInt8, NodeID) =
            switch self {
            case .addLearner(let id): (1, id)
            case .promoteLearner(let id): (2, id)
            case .remove(let id): (3, id)
            }
        var bytes: [UInt8] = [opcode]
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: id >> UInt64(shift))) }
        return bytes
    }

    public init?(encoded bytes: [UInt8]) {
        guard bytes.count == 9 else { return nil }
        var id: NodeID = 0
        for (offset, byte) in bytes[1...].enumerated() { id |= NodeID(byte) << NodeID(offset * 8) }
        switch bytes[0] {
        case 1: self = .addLearner(id)
        case 2: self = .promoteLearner(id)
        case 3: self = .remove(id)
        default: return nil
        }
    }
}

/// Describes a snapshot: the state machine up to and including `index`, whose entry had `term`,
/// and the configuration in force at that index (Raft paper §7).
public struct SnapshotMetadata: Sendable, Hashable {
    public var index: UInt64
    public var term: UInt64
    public var configuration: ClusterConfiguration

    public init(index: UInt64, term: UInt64, configuration: ClusterConfiguration) {
        self.index = index
        self.term = term
        self.configuration = configuration
    }
}

/// A snapshot: its metadata and the host's serialized state machine.
public struct Snapshot: Sendable, Hashable {
    public var metadata: SnapshotMetadata
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata, data: [UInt8]) {
        self.metadata = metadata
        self.data = data
    }
}

/// The role a node plays (Raft paper §5.1; `preCandidate` is the thesis' PreVote phase, §9.6).
public enum Role: String, Sendable, Hashable {
    case follower
    case preCandidate
    case candidate
    case leader
}
