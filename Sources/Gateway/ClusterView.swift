import Membership
import Node
import Raft

/// What `GET /cluster` answers: this node's Raft view. A leader knows every member's replication
/// state; a follower knows only the membership, so its per-member fields are absent.
/// `raftgate status` decodes the same type.
public struct ClusterView: Codable, Sendable, Hashable {
    public var node: UInt64
    public var role: String
    public var term: UInt64
    public var leader: UInt64?
    public var commitIndex: UInt64
    public var appliedIndex: UInt64
    public var lastIndex: UInt64
    public var snapshotIndex: UInt64
    /// Leader only: whether it holds a quorum lease (what `/primary` requires).
    public var leaseValid: Bool
    public var raftMembers: [RaftMember]
    /// This node's SWIM view (absent when membership is not running).
    public var swimMembers: [SwimMember]?
    /// The store revision this node has applied (the same revision means the same data on every
    /// node), the revision its watch history reaches back to, and its live leases.
    public var appliedRevision: UInt64?
    public var compactRevision: UInt64?
    public var leases: Int?
    /// The revision of the newest project-config change this node's cache holds.
    public var configRevision: UInt64?
    /// Watches open on this node.
    public var watchers: Int?

    public struct SwimMember: Codable, Sendable, Hashable {
        public var id: UInt64
        public var address: String
        /// `alive`, `suspect`, `dead` or `left`.
        public var status: String
        public var incarnation: UInt64
        public var role: String?
        public var httpAddress: String?
        public var raftAddress: String?
        public var tags: [String: String]?

        init(_ member: Member) {
            id = member.id.node
            address = member.address
            status = "\(member.status.kind)"
            incarnation = member.status.incarnation
            role = member.metadata?.role.rawValue
            httpAddress = member.metadata?.httpAddress
            raftAddress = member.metadata?.raftAddress
            tags = member.metadata.map(\.tags).flatMap { $0.isEmpty ? nil : $0 }
        }
    }

    public struct RaftMember: Codable, Sendable, Hashable {
        public var id: UInt64
        /// `voter` or `learner`.
        public var suffrage: String
        public var raftAddress: String?
        /// Leader's view: the highest index known replicated on this member.
        public var matchIndex: UInt64?
        /// Leader's view: entries this member is behind the leader's last index.
        public var lag: UInt64?
        /// Leader's view: `probe`, `replicate` or `snapshot` (etcd's progress states).
        public var replication: String?
        /// Leader's view: heard from within the last election timeout.
        public var recentlyActive: Bool?
    }

    init(status: RaftStatus, peers: [NodeID: (host: String, port: Int)], swim: [Member]? = nil) {
        swimMembers = swim?.map(SwimMember.init)
        node = status.id
        role = status.role.rawValue
        term = status.term
        leader = status.leader
        commitIndex = status.commitIndex
        appliedIndex = status.appliedIndex
        lastIndex = status.lastIndex
        snapshotIndex = status.snapshotIndex
        leaseValid = status.leaseValid
        let progress = Dictionary(status.followers.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let members =
            status.configuration.voters.map { ($0, "voter") } + status.configuration.learners.map { ($0, "learner") }
        raftMembers = members.map { id, suffrage in
            var member = RaftMember(id: id, suffrage: suffrage)
            member.raftAddress = peers[id].map { "\($0.host):\($0.port)" }
            if status.role == .leader {
                if id == status.id {
                    member.matchIndex = status.lastIndex
                    member.lag = 0
                    member.replication = "leader"
                    member.recentlyActive = true
                } else if let follower = progress[id] {
                    member.matchIndex = follower.match
                    member.lag = status.lastIndex - min(follower.match, status.lastIndex)
                    member.replication = follower.state
                    member.recentlyActive = follower.recentlyActive
                }
            }
            return member
        }
    }
}

extension ClusterView.RaftMember {
    init(id: UInt64, suffrage: String) {
        self.id = id
        self.suffrage = suffrage
    }
}
