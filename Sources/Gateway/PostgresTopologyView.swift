import Foundation
import Node
import Patroni

/// `GET /pg`. Every node answers from the topology it has applied (the same on every node at a
/// revision) and its own route (`writable` is this node's); the node that leads adds its
/// watcher's latest round — Patroni's role and state, lag, timeline, samples — which only it
/// polls. A follower names the leader that has them (`observedBy`), rather than forwarding, so
/// the view of a node cut off from its leader still shows what that node routes to.
struct PostgresTopologyView: Encodable {
    var epoch: UInt64
    var revision: UInt64
    var primary: String?
    var timeline: Int?
    var replicas: [String]
    var writable: Bool
    var writableReason: String
    /// This node's id when it leads and has observed a round; otherwise the leader's id (if known).
    var observedBy: UInt64?
    var observedHere: Bool
    var observedMillisecondsAgo: Int64?
    var primaryReason: String?
    var members: [Member]

    struct Member: Encodable {
        var name: String
        var host: String
        var port: Int
        var patroni: String
        /// `primary`, `replica` (admitted for reads) or `none`, from the committed topology.
        var role: String
        var admitted: Bool
        // Live, on the leader only:
        var patroniRole: String?
        var state: String?
        var timeline: Int?
        var lagBytes: UInt64?
        var healthySamples: Int?
        var note: String?
        var failures: [String]?
    }

    init(gateway: PostgresTopologyService, leader: UInt64?, isLeader: Bool, nodeID: UInt64) {
        let committed = gateway.routes.committed
        let route = gateway.routes.currentRoute
        let topology = committed.topology
        epoch = topology?.epoch ?? 0
        revision = committed.revision
        primary = topology?.primary?.name
        timeline = topology?.primary?.timeline
        replicas = topology?.replicas ?? []
        writable = route.writable
        writableReason =
            route.writable ? committed.writableReason : (primary == nil ? "no primary" : committed.writableReason)
        let live = isLeader ? gateway.observations.current : nil
        observedHere = live != nil
        observedBy = live != nil ? nodeID : leader
        observedMillisecondsAgo = live.map { (ContinuousClock.now - $0.at).nanoseconds / 1_000_000 }
        primaryReason = live?.decision.primaryReason
        members = gateway.settings.members.map { member in
            let role =
                topology?.primary?.name == member.name
                ? "primary" : (topology?.replicas.contains(member.name) == true ? "replica" : "none")
            var view = Member(
                name: member.name, host: member.postgres.host, port: member.postgres.port, patroni: member.restURL,
                role: role, admitted: role == "replica")
            if let live, let assessment = live.decision.members.first(where: { $0.name == member.name }) {
                view.patroniRole = assessment.patroniRole?.description
                view.state = assessment.patroniState
                view.timeline = assessment.timeline
                view.lagBytes = assessment.lagBytes
                view.healthySamples = assessment.healthySamples
                view.note = assessment.note
                view.failures = live.failures[member.name]
            }
            return view
        }
    }
}
