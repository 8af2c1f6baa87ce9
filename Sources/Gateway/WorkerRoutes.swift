import Foundation
import HTTPTypes
import Hummingbird
import Node
import Workers

/// Worker registration over HTTP (DESIGN.md "Workers"): `PUT /workers/{service}/{id}`
/// `{"address","ttl_ms","tags"}` grants a lease and registers the worker under it (heartbeat:
/// `POST /lease/{id}/keepalive`; a lapsed lease removes the worker everywhere), `DELETE`
/// deregisters, `GET /workers` lists every worker with this node's view of its health. Writes
/// need the admin token: whoever registers a worker receives its service's traffic.
struct WorkerRoutes: Sendable {
    let node: RaftNode
    let workers: WorkerGateway
    let limits: GatewayLimits
    let admin: AdminToken

    func register(on router: Router<BasicRequestContext>) {
        router.get("workers") { _, _ in await RouteSupport.respond { try self.list(service: nil) } }
        router.get("workers/:service") { _, context in
            await RouteSupport.respond { try self.list(service: try Self.name(context, "service")) }
        }
        router.put("workers/:service/:id") { request, context in
            await RouteSupport.respond { try await self.put(request, context) }
        }
        router.delete("workers/:service/:id") { request, context in
            await RouteSupport.respond { try await self.delete(request, context) }
        }
    }

    private static func name(_ context: BasicRequestContext, _ parameter: String) throws -> String {
        guard let name = context.parameters.get(parameter), WorkerNames.isValidName(name) else {
            throw GatewayError.badRequest("the \(parameter) must be 1–64 of letters, digits, '.', '_' and '-'")
        }
        return name
    }

    private struct Registration: Decodable {
        var address: String
        var ttl_ms: Int64
        var tags: [String: String]?
    }

    private func put(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        try admin.authorize(request)
        let service = try Self.name(context, "service")
        let id = try Self.name(context, "id")
        let bytes = try await RouteSupport.body(request, limit: limits.maxBodyBytes)
        let body: Registration
        do {
            body = try JSONDecoder().decode(Registration.self, from: Data(bytes))
        } catch {
            throw GatewayError.badRequest(
                "expected {\"address\": \"host:port\", \"ttl_ms\": integer, \"tags\": {string: string}}")
        }
        guard WorkerNames.parseAddress(body.address) != nil else {
            throw GatewayError.badRequest("address must be host:port (no scheme or path), got \(body.address)")
        }
        let range = limits.leaseTTLMilliseconds
        guard body.ttl_ms >= 0, range.contains(UInt64(body.ttl_ms)) else {
            throw GatewayError.badRequest("ttl_ms must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        let tags = body.tags ?? [:]
        guard WorkerNames.areValidTags(tags) else {
            throw GatewayError.badRequest("tags: at most 16, keys 1–64 bytes, values at most 256 bytes")
        }
        let key = WorkerRecord.key(service: service, id: id)
        let previous = workers.registry.current.workers(of: service)[id]
        if previous?.source == .swim {
            throw GatewayError(
                status: .conflict, code: "registered_by_swim",
                message: "worker \(service)/\(id) is registered by its SWIM agent")
        }
        let ttl = UInt64(body.ttl_ms)
        let oldLease = previous == nil ? 0 : await currentLease(key: key)
        let lease = try await grantLease(ttl: ttl)
        let record = WorkerRecord(service: service, id: id, address: body.address, tags: tags, source: .http)
        let outcome = await node.write(
            StoreCommand(operation: .put(key: key, value: record.encoded), isSystem: true, lease: lease))
        guard case .applied(.applied(let revision, _), _) = outcome else {
            _ = await node.write(StoreCommand(operation: .revokeLease(id: lease), isSystem: true))
            throw RouteSupport.failure(outcome)
        }
        // The key moved to the new lease; the old one was this registration's alone.
        if oldLease != 0 && oldLease != lease {
            _ = await node.write(StoreCommand(operation: .revokeLease(id: oldLease), isSystem: true))
        }
        return json([
            "service": .string(service), "id": .string(id), "address": .string(body.address),
            "lease": .number(lease), "ttl_ms": .number(ttl), "revision": .number(revision),
            "keepalive": .string("/lease/\(lease)/keepalive"),
        ])
    }

    /// The lease the key is attached to now, from the store this node applied (0: none).
    private func currentLease(key: String) async -> UInt64 {
        guard case .value(let record?, _) = await node.read(key, consistency: .stale(maxStaleness: nil)) else {
            return 0
        }
        return record.lease
    }

    private func grantLease(ttl: UInt64) async throws -> UInt64 {
        for _ in 0..<3 {
            let outcome = await node.write(
                StoreCommand(
                    operation: .grantLease(id: UInt64.random(in: LeaseRoutes.idRange), ttlMilliseconds: ttl),
                    isSystem: true))
            switch outcome {
            case .applied(.leaseGranted(let id), _): return id
            case .applied(.leaseExists, _): continue
            default: throw RouteSupport.failure(outcome)
            }
        }
        throw GatewayError(status: .conflict, code: "lease_exists", message: "no free lease id found; retry")
    }

    private func delete(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        try admin.authorize(request)
        let service = try Self.name(context, "service")
        let id = try Self.name(context, "id")
        let key = WorkerRecord.key(service: service, id: id)
        guard case .value(let stored, _) = await node.read(key, consistency: .linearizable) else {
            throw RouteSupport.unavailable()
        }
        guard let stored, let record = WorkerRecord(key: key, value: stored.value) else {
            throw GatewayError(status: .notFound, code: "worker_not_found", message: "no worker \(service)/\(id)")
        }
        guard record.source == .http else {
            throw GatewayError(
                status: .conflict, code: "registered_by_swim",
                message: "worker \(service)/\(id) is registered by its SWIM agent: stop the agent to deregister it")
        }
        let operation: StoreCommand.Operation =
            stored.lease != 0 ? .revokeLease(id: stored.lease) : .delete(key: key)
        let outcome = await node.write(StoreCommand(operation: operation, isSystem: true))
        guard case .applied(.applied(let revision, _), _) = outcome else { throw RouteSupport.failure(outcome) }
        return json(["service": .string(service), "id": .string(id), "revision": .number(revision)])
    }

    private struct Listed: Encodable {
        var service: String
        var id: String
        var address: String
        var tags: [String: String]
        var source: String
        var draining: Bool
        var healthy: Bool
        var ejected: Bool
        var eligible: Bool
        var outstanding: Int
        var ejections: Int
    }

    private struct Listing: Encodable {
        var workers: [Listed]
        /// The store revision this node's registry view reflects.
        var revision: UInt64
    }

    private func list(service: String?) throws -> Response {
        let statuses = workers.proxy.statuses().filter { service == nil || $0.record.service == service }
        return try RouteSupport.encoded(
            Listing(
                workers: statuses.map {
                    Listed(
                        service: $0.record.service, id: $0.record.id, address: $0.record.address, tags: $0.record.tags,
                        source: $0.record.source.rawValue, draining: $0.record.draining, healthy: $0.healthy,
                        ejected: $0.ejected, eligible: $0.eligible, outstanding: $0.outstanding,
                        ejections: $0.ejections)
                }, revision: workers.registry.current.revision))
    }
}
