import EtcdAPI
import Foundation
import HTTPTypes
import Hummingbird
import MembershipNIO
import Node

/// The subset of etcd's v3 JSON API (grpc-gateway) that Patroni's `etcd3` DCS uses, on the API
/// port: `GET /version` and `POST /v3/…`. Every write is one Raft command (a txn, even a plain put),
/// forwarded by a follower like any other, stamped with an idempotency key (`EtcdWriter`); reads
/// are linearizable unless `serializable`. etcd's keys live in the reserved `EtcdNamespace`
/// (`GET /kv?prefix=/_sys/etcd/service/` with the admin token lists what Patroni wrote); etcd
/// clients see nothing else of the store. Every `/v3` request needs etcd's auth token
/// (`EtcdAccess`). Anything outside the subset answers etcd's `Unimplemented`.
struct EtcdRoutes: Sendable {
    let node: RaftNode
    let limits: GatewayLimits
    let membership: MembershipService?
    let clientScheme: String
    let identity: EtcdIdentity
    let authenticator: EtcdAuthenticator
    let writer: EtcdWriter

    init(
        node: RaftNode, limits: GatewayLimits, membership: MembershipService?, clientScheme: String,
        access: EtcdAccess
    ) {
        self.node = node
        self.limits = limits
        self.membership = membership
        self.clientScheme = clientScheme
        identity = EtcdIdentity(
            clusterID: node.configuration.clusterKey.identifier(for: "raftgate/etcd-cluster-id"),
            memberID: node.id)
        authenticator = EtcdAuthenticator(access: access, clusterKey: node.configuration.clusterKey)
        writer = EtcdWriter(node: node)
    }

    func register(on router: Router<BasicRequestContext>) {
        router.get("version") { _, _ in Self.answer(EtcdResponses.version) }
        unary(router, "v3/cluster/member/list", needsToken: false) { _ in try await memberList() }
        unary(router, "v3/kv/range") { try await range($0) }
        unary(router, "v3/kv/put") { fields in
            let put = try EtcdRequests.put(fields)
            return try await single(put)
        }
        unary(router, "v3/kv/deleterange") { fields in
            let delete = try EtcdRequests.deleteRange(fields)
            return try await single(delete)
        }
        unary(router, "v3/kv/txn") { fields in
            let transaction = try EtcdRequests.transaction(fields)
            let outcome = try await apply(transaction)
            return EtcdResponses.transaction(outcome, header: await header(outcome.revision)).json
        }
        unary(router, "v3/lease/grant") { try await grant($0) }
        unary(router, "v3/lease/revoke") { try await revoke($0) }
        unary(router, "v3/lease/timetolive") { try await timeToLive($0) }
        router.post("v3/lease/keepalive") { request, _ in
            do throws(EtcdError) { try authenticator.authorize(request) } catch { return Self.failure(error) }
            return await EtcdKeepAliveRoute(node: node, limits: limits, identity: identity).keepAlive(request)
        }
        router.post("v3/watch") { request, _ in
            do throws(EtcdError) { try authenticator.authorize(request) } catch { return Self.failure(error) }
            return await EtcdWatchRoute(node: node, limits: limits, identity: identity).watch(request)
        }
        // Without credentials (--insecure-dev): "not enabled", which Patroni takes as "no auth needed".
        unary(router, "v3/auth/authenticate", checked: false) { fields in
            let token = try authenticator.authenticate(
                name: try fields.string("name"), password: try fields.string("password"))
            var object = EtcdObject()
            object.object("header", await header(await node.storeStatus.revision))
            object.string("token", token)
            return object.json
        }
        router.post("v3/**") { request, _ in
            do throws(EtcdError) { try authenticator.authorize(request) } catch { return Self.failure(error) }
            return Self.failure(.unimplemented("POST \(request.uri.path)"))
        }
    }

    // MARK: Plumbing

    private func unary(
        _ router: Router<BasicRequestContext>, _ path: RouterPath, checked: Bool = true, needsToken: Bool = true,
        _ handler: @escaping @Sendable (EtcdFields) async throws -> EtcdJSON
    ) {
        let maxBody = limits.maxBodyBytes
        router.post(path) { request, _ in
            do {
                if checked { try authenticator.authorize(request, needsToken: needsToken) }
                var request = request
                let buffer: ByteBuffer
                do {
                    buffer = try await request.collectBody(upTo: maxBody)
                } catch {
                    throw EtcdError.requestTooLarge
                }
                let fields = try EtcdFields(json: Array(buffer.readableBytesView))
                return Self.answer(try await handler(fields))
            } catch let error as EtcdError {
                return Self.failure(error)
            } catch {
                return Self.failure(EtcdError(.internal, "\(error)"))
            }
        }
    }

    static func answer(_ json: EtcdJSON, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: json.bytes)))
    }

    static func failure(_ error: EtcdError) -> Response {
        answer(error.json, status: HTTPResponse.Status(code: error.httpStatus))
    }

    func header(_ revision: UInt64) async -> EtcdObject {
        EtcdResponses.header(identity, revision: revision, term: await node.status.term)
    }

    /// The etcd error for a write that did not apply.
    static func error(_ outcome: WriteOutcome) -> EtcdError {
        switch outcome {
        case .applied(.reservedKey, _): .permissionDenied
        case .applied(.leaseNotFound, _): .leaseNotFound
        case .applied(.leaseExists, _): .leaseExists
        case .notLeader: .noLeader
        // Safe to retry: etcd's clients retry Unavailable.
        case .notApplied(let reason): EtcdError(.unavailable, "etcdserver: not applied, retry: \(reason)")
        case .refused(let refusal): refusal.isOverload ? .tooManyRequests : .noSpace
        // The outcome is unknown, as after etcd's own request timeout.
        case .unknown: .timeout
        case .applied: EtcdError(.internal, "raftgate: unexpected store result \(outcome)")
        }
    }

    // MARK: KV

    private func apply(_ transaction: StoreTransaction) async throws -> TransactionOutcome {
        let outcome = try await writer.write(StoreCommand(operation: .transaction(transaction)))
        guard case .applied(.transaction(let result), _) = outcome else { throw Self.error(outcome) }
        return result
    }

    /// A unary put or deleterange: a txn of that one request.
    private func single(_ request: StoreTransaction.Request) async throws -> EtcdJSON {
        let outcome = try await apply(StoreTransaction(success: [request]))
        guard let response = outcome.responses.first else { throw EtcdError(.internal, "raftgate: empty txn result") }
        return EtcdResponses.response(response, header: await header(outcome.revision)).json
    }

    private func range(_ fields: EtcdFields) async throws -> EtcdJSON {
        let request = try EtcdRequests.range(fields)
        let consistency: ReadConsistency = request.serializable ? .stale(maxStaleness: nil) : .linearizable
        let range = request.range
        // One more than asked, to tell `more`; count_only reads no rows.
        let limit = request.countOnly ? 1 : request.limit
        // The barrier and the snapshot on the Raft actor, the scan off it, as `/kv` ranges do. The
        // range lies in `EtcdNamespace` (inside the reserved prefix) by construction.
        guard
            let read = await node.keyValues(
                in: range, limit: limit, includeReserved: range.lies(within: EtcdNamespace.prefix),
                consistency: consistency)
        else { throw EtcdError.noLeader }
        let found = (keyValues: read.keyValues, count: read.count)
        let revision = read.revision
        var rows = request.countOnly ? [] : found.keyValues
        if request.keysOnly {
            rows = rows.map {
                var record = $0.record
                record.value = []
                return TransactionOutcome.KeyValue(key: $0.key, record: record)
            }
        }
        let more = !request.countOnly && request.limit != 0 && found.count > request.limit
        return EtcdResponses.range(
            header: await header(revision), keyValues: rows, count: found.count, more: more
        ).json
    }

    private func memberList() async throws -> EtcdJSON {
        let status = await node.status
        let peers = await node.peerEndpoints
        let swim = await membership?.members ?? []
        let voters = status.configuration.voters.map { ($0, false) } + status.configuration.learners.map { ($0, true) }
        let members = voters.sorted { $0.0 < $1.0 }.map { id, learner in
            let metadata = swim.first { $0.id.node == id }?.metadata
            let raft = metadata?.raftAddress ?? peers[id].map { "\($0.host):\($0.port)" }
            return EtcdResponses.Member(
                id: id, name: "n\(id)", peerURLs: raft.map { ["http://\($0)"] } ?? [],
                clientURLs: metadata.map { ["\(clientScheme)://\($0.httpAddress)"] } ?? [], isLearner: learner)
        }
        return EtcdResponses.memberList(
            members, header: EtcdResponses.header(identity, revision: 0, term: status.term, includeZeroRevision: false)
        ).json
    }

    // MARK: Leases

    /// etcd grants at least this TTL (its minimum for a default cluster, seconds).
    static let minimumTTL: Int64 = 2

    private func grant(_ fields: EtcdFields) async throws -> EtcdJSON {
        let (asked, requestedID) = try EtcdRequests.grant(fields)
        let maximum = Int64(limits.leaseTTLMilliseconds.upperBound / 1000)
        guard asked <= maximum else { throw EtcdError.leaseTTLTooLarge }
        let ttl = max(asked, Self.minimumTTL, Int64((limits.leaseTTLMilliseconds.lowerBound + 999) / 1000))
        guard requestedID >= 0 else { throw EtcdError.invalid("ID must not be negative") }
        for _ in 0..<3 {
            let id = requestedID != 0 ? UInt64(requestedID) : UInt64.random(in: LeaseRoutes.idRange)
            let outcome = try await writer.write(
                StoreCommand(operation: .grantLease(id: id, ttlMilliseconds: UInt64(ttl) * 1000)))
            switch outcome {
            case .applied(.leaseGranted(let granted), _):
                // A grant does not move the revision; read it once this node has caught up with
                // the leader, so a follower does not answer an older one.
                let local = await node.storeStatus.revision
                let revision = await node.read(consistency: .linearizable) { $0.revision } ?? local
                return EtcdResponses.leaseGrant(id: Int64(granted), ttl: ttl, header: await header(revision)).json
            case .applied(.leaseExists, _) where requestedID == 0:
                continue
            default:
                throw Self.error(outcome)
            }
        }
        throw EtcdError.leaseExists
    }

    private func revoke(_ fields: EtcdFields) async throws -> EtcdJSON {
        let id = try EtcdRequests.leaseID(fields)
        guard id > 0 else { throw EtcdError.leaseNotFound }
        let outcome = try await writer.write(StoreCommand(operation: .revokeLease(id: UInt64(id))))
        guard case .applied(.applied(let revision, _), _) = outcome else { throw Self.error(outcome) }
        return EtcdResponses.headerOnly(await header(revision)).json
    }

    private func timeToLive(_ fields: EtcdFields) async throws -> EtcdJSON {
        let id = try EtcdRequests.leaseID(fields)
        let withKeys = try fields.bool("keys")
        let revision = await node.storeStatus.revision
        guard id > 0 else {
            return EtcdResponses.leaseTimeToLive(
                id: id, ttl: -1, grantedTTL: 0, keys: [], header: await header(revision)
            ).json
        }
        switch await node.leaseStatus(UInt64(id)) {
        case .found(let info):
            let keys = withKeys ? info.keys.compactMap { EtcdNamespace.etcdKey($0) } : []
            return EtcdResponses.leaseTimeToLive(
                id: id, ttl: Int64(info.remainingMilliseconds / 1000),
                grantedTTL: Int64(info.ttlMilliseconds / 1000), keys: keys, header: await header(revision)
            ).json
        case .notFound:
            return EtcdResponses.leaseTimeToLive(
                id: id, ttl: -1, grantedTTL: 0, keys: [], header: await header(revision)
            ).json
        case .unavailable:
            throw EtcdError.noLeader
        }
    }
}
