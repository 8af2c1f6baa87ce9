import Foundation
import HTTPTypes
import Hummingbird
import MembershipNIO
import Node
import Raft

/// Membership administration, all behind the admin token (DESIGN.md "Security and lifecycle"):
/// `GET /members`, `POST /members` (adds a learner; the leader promotes it once caught up),
/// `DELETE /members/{id}` and `POST /members/transfer`. Changes go through the Raft core's
/// single-server rules (one pending change, learners first); a follower redirects (307) to the
/// leader's HTTP address, so any member can be asked.
struct MembershipRoutes: Sendable {
    let node: RaftNode
    let membership: MembershipService?
    let admin: AdminToken
    let limits: GatewayLimits
    /// How long a transfer may take before the answer says it failed.
    var transferTimeout: Duration = .seconds(3)

    func register(on router: Router<BasicRequestContext>) {
        router.get("members") { request, _ in
            await RouteSupport.respond {
                try admin.authorize(request)
                return try await list()
            }
        }
        router.post("members") { request, _ in
            await RouteSupport.respond {
                try admin.authorize(request)
                return try await add(request)
            }
        }
        router.post("members/transfer") { request, _ in
            await RouteSupport.respond {
                try admin.authorize(request)
                return try await transfer(request)
            }
        }
        router.delete("members/:id") { request, context in
            await RouteSupport.respond {
                try admin.authorize(request)
                guard let text = context.parameters.get("id"), let id = NodeID(text), id > 0 else {
                    throw GatewayError.badRequest("the member id must be a positive integer")
                }
                return try await remove(id, request)
            }
        }
    }

    // MARK: Routes

    func list() async throws -> Response {
        let status = await node.status
        let addresses = await node.knownPeerAddresses
        let records = await memberRecords()
        let http = await httpAddresses(records)
        let base = await node.baseConfiguration
        var members: [MemberView] = []
        for id in status.configuration.members {
            let follower = status.followers.first { $0.id == id }
            let raft = id == node.id ? "\(node.configuration.raftHost):\(await node.raftPort)" : addresses[id]
            members.append(
                MemberView(
                    id: id, role: status.configuration.isVoter(id) ? "voter" : "learner",
                    raft: raft ?? records[id]?.raft,
                    http: http[id], match: follower?.match,
                    lag: follower.map { status.commitIndex - min($0.match, status.commitIndex) }))
        }
        return try RouteSupport.encoded(
            MembersView(
                leader: status.leader, term: status.term, commitIndex: status.commitIndex, members: members,
                base: ConfigurationView(base), swim: await swimAddresses()))
    }

    func add(_ request: Request) async throws -> Response {
        let body = try await RouteSupport.body(request, limit: limits.maxBodyBytes)
        let asked: AddRequest
        do {
            asked = try JSONDecoder().decode(AddRequest.self, from: Data(body))
        } catch {
            throw GatewayError.badRequest(#"expected {"id":N,"raft":"host:port","http":"host:port","learner":true}"#)
        }
        guard asked.id > 0 else { throw GatewayError.badRequest("the member id must be a positive integer") }
        guard MemberRecord.dialable(asked.raft) != nil else {
            throw GatewayError.badRequest(
                "raft must be host:port that other nodes can dial (not 0.0.0.0 or ::), got \(asked.raft)")
        }
        if let http = asked.http, MemberRecord.dialable(http) == nil {
            throw GatewayError.badRequest(
                "http must be host:port that other nodes can reach (not 0.0.0.0 or ::), got \(http)")
        }
        guard asked.learner ?? true else {
            throw GatewayError.badRequest(
                "a member always joins as a learner and is promoted once caught up: send \"learner\": true or leave it out"
            )
        }
        let status = try await leaderStatus(request)
        // A join whose answer was lost (a 504, a client timeout) is retried: the learner it added
        // is the same node, so the retry gets the plan again. A learner counts in no quorum, so
        // letting it in again with an empty directory loses nothing; a voter could.
        if status.configuration.contains(asked.id), !status.configuration.isVoter(asked.id),
            await memberRecords()[asked.id]?.raft == asked.raft
        {
            return try RouteSupport.encoded(
                JoinView(
                    id: asked.id, learner: true, index: status.commitIndex,
                    base: ConfigurationView(await node.baseConfiguration), peers: try await raftAddresses(),
                    swim: await swimAddresses()), status: .created)
        }
        guard !status.configuration.contains(asked.id) else {
            throw GatewayError(
                status: .conflict, code: "member_exists", message: "n\(asked.id) is already a member of the cluster")
        }
        // Every member's address goes into the store first, so every node (and the new one, from
        // its first snapshot or entries) can dial every other, however it was added.
        if let failed = await node.recordMissingMembers() { throw RouteSupport.failure(failed) }
        let record = MemberRecord(id: asked.id, raft: asked.raft, http: asked.http)
        let recorded = await node.recordMember(record)
        guard case .applied(.applied, _) = recorded else { throw RouteSupport.failure(recorded) }
        let outcome = await node.changeMembership(.addLearner(asked.id))
        guard case .applied(_, let index) = outcome else { throw membershipFailure(outcome) }
        return try RouteSupport.encoded(
            JoinView(
                id: asked.id, learner: true, index: index, base: ConfigurationView(await node.baseConfiguration),
                peers: try await raftAddresses(), swim: await swimAddresses()), status: .created)
    }

    func remove(_ id: NodeID, _ request: Request) async throws -> Response {
        let status = try await leaderStatus(request)
        guard status.configuration.contains(id) else {
            throw GatewayError(status: .notFound, code: "no_such_member", message: "n\(id) is not a member")
        }
        guard status.configuration.voters != [id] else {
            throw GatewayError(
                status: .conflict, code: "last_voter", message: "n\(id) is the last voter; the cluster needs one")
        }
        let outcome = await node.changeMembership(.remove(id))
        guard case .applied(_, let index) = outcome else { throw membershipFailure(outcome) }
        return json(["removed": .number(id), "index": .number(index)])
    }

    func transfer(_ request: Request) async throws -> Response {
        let body = try await RouteSupport.body(request, limit: limits.maxBodyBytes)
        guard let asked = try? JSONDecoder().decode(TransferRequest.self, from: Data(body)) else {
            throw GatewayError.badRequest(#"expected {"to":N}"#)
        }
        let status = try await leaderStatus(request)
        guard status.configuration.contains(asked.to) else {
            throw GatewayError(status: .notFound, code: "no_such_member", message: "n\(asked.to) is not a member")
        }
        guard status.configuration.isVoter(asked.to) else {
            throw GatewayError(
                status: .badRequest, code: "not_a_voter", message: "n\(asked.to) is a learner and cannot lead")
        }
        if asked.to == node.id { return json(["leader": .number(node.id)]) }
        switch await node.transferLeadership(to: asked.to, timeout: transferTimeout) {
        case .transferred(let leader):
            return json(["leader": leader.map { .number($0) } ?? .string("")])
        case .notLeader(let leader):
            throw RouteSupport.noLeader(leader)
        case .failed(let reason):
            throw GatewayError(
                status: .serviceUnavailable, code: "transfer_failed", message: reason, headers: [.retryAfter: "1"])
        }
    }

    // MARK: Helpers

    /// The status, when this node leads; otherwise a 307 to the leader's HTTP address (or a 503
    /// when no leader, or none with a known address, exists).
    private func leaderStatus(_ request: Request) async throws -> RaftStatus {
        let status = await node.status
        if status.role == .leader { return status }
        guard let leader = status.leader, let address = await httpAddresses(await memberRecords())[leader] else {
            throw RouteSupport.noLeader(status.leader)
        }
        var target = "http://\(address)\(request.uri.path)"
        if let query = request.uri.query, !query.isEmpty { target += "?\(query)" }
        throw GatewayError(
            status: .temporaryRedirect, code: "not_leader", message: "n\(leader) leads: \(target)",
            headers: [.location: target])
    }

    private func membershipFailure(_ outcome: WriteOutcome) -> GatewayError {
        if case .notApplied(let reason) = outcome {
            if reason.contains("configurationChangePending") || reason.contains("transferInProgress") {
                return GatewayError(
                    status: .conflict, code: "change_pending",
                    message: "another membership change (or a leadership transfer) is in progress: \(reason)",
                    headers: [.retryAfter: "1"])
            }
            if reason.contains("invalidConfigurationChange") {
                return GatewayError(status: .conflict, code: "invalid_change", message: reason)
            }
        }
        return RouteSupport.failure(outcome)
    }

    /// Every member record, without a row limit: they are keyed by node id and written only by the
    /// nodes themselves and the membership routes (`/_sys/` is closed to the KV API), so there are
    /// at most as many as the nodes this cluster has had.
    private func memberRecords() async -> [NodeID: MemberRecord] {
        let rows =
            await node.range(
                prefix: MemberRecord.prefix, consistency: .stale(maxStaleness: nil), includeReserved: true)?.rows ?? []
        var records: [NodeID: MemberRecord] = [:]
        for row in rows {
            if let record = MemberRecord(key: row.key, value: row.record.value) { records[record.id] = record }
        }
        return records
    }

    /// HTTP addresses from the member records, then SWIM's metadata (which every gateway carries).
    private func httpAddresses(_ records: [NodeID: MemberRecord]) async -> [NodeID: String] {
        var addresses: [NodeID: String] = [:]
        for (id, record) in records { if let http = record.http { addresses[id] = http } }
        for member in await membership?.members ?? [] {
            if let metadata = member.metadata, metadata.role == .gateway, !metadata.httpAddress.isEmpty {
                addresses[metadata.nodeID] = metadata.httpAddress
            }
        }
        return addresses
    }

    /// Where the gateways' SWIM listens (a joining node's seeds).
    private func swimAddresses() async -> [String] {
        var addresses: [String] = []
        for member in await membership?.members ?? [] {
            if let metadata = member.metadata, metadata.role == .gateway, !metadata.swimAddress.isEmpty {
                addresses.append(metadata.swimAddress)
            }
        }
        return addresses.sorted()
    }

    private func raftAddresses() async throws -> [String: String] {
        var peers: [String: String] = [:]
        for (id, address) in await node.knownPeerAddresses { peers[String(id)] = address }
        if !MemberRecord.isUnspecified(host: node.configuration.raftHost) {
            peers[String(node.id)] = "\(node.configuration.raftHost):\(await node.raftPort)"
        }
        return peers
    }
}

private struct AddRequest: Decodable {
    var id: NodeID
    var raft: String
    var http: String?
    var learner: Bool?
}

private struct TransferRequest: Decodable {
    var to: NodeID
}

struct ConfigurationView: Encodable {
    var voters: [NodeID]
    var learners: [NodeID]

    init(_ configuration: ClusterConfiguration) {
        voters = configuration.voters
        learners = configuration.learners
    }
}

private struct MemberView: Encodable {
    var id: NodeID
    var role: String
    var raft: String?
    var http: String?
    var match: UInt64?
    var lag: UInt64?
}

private struct MembersView: Encodable {
    var leader: NodeID?
    var term: UInt64
    var commitIndex: UInt64
    var members: [MemberView]
    /// The configuration a joining node starts from (see `RaftNode.baseConfiguration`).
    var base: ConfigurationView
    var swim: [String]
}

/// The answer to an add: what the new node needs to start (`raftgate serve --join`).
private struct JoinView: Encodable {
    var id: NodeID
    var learner: Bool
    var index: UInt64
    var base: ConfigurationView
    var peers: [String: String]
    var swim: [String]
}
