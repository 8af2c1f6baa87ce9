import Foundation
import Hummingbird
import Node

/// Leases (DESIGN.md "Store primitives"): `POST /lease {"ttl_ms":N}` → `{"id","ttl_ms"}`,
/// `POST /lease/{id}/keepalive`, `DELETE /lease/{id}`, `GET /lease/{id}`. Attach a key with
/// `PUT /kv/{key}?lease=ID`. Grants and revokes go through Raft; keepalives and the time left are
/// the leader's alone, so a follower forwards them.
struct LeaseRoutes: Sendable {
    let node: RaftNode
    let limits: GatewayLimits
    let admin: AdminToken

    func register(on router: Router<BasicRequestContext>) {
        router.post("lease") { request, _ in await RouteSupport.respond { try await self.grant(request) } }
        router.post("lease/:id/keepalive") { _, context in
            await RouteSupport.respond { try await self.keepAlive(try Self.id(context)) }
        }
        router.get("lease/:id") { request, context in
            await RouteSupport.respond { try await self.status(request, try Self.id(context)) }
        }
        router.delete("lease/:id") { request, context in
            await RouteSupport.respond { try await self.revoke(request, try Self.id(context)) }
        }
    }

    /// Lease ids are below 2^53, so they survive JSON numbers in every client.
    static let idRange: ClosedRange<UInt64> = 1...((1 << 53) - 1)

    private static func id(_ context: BasicRequestContext) throws -> UInt64 {
        guard let text = context.parameters.get("id"), let id = UInt64(text), idRange.contains(id) else {
            throw GatewayError.badRequest("the lease id must be a positive integer below 2^53")
        }
        return id
    }

    private struct GrantBody: Decodable {
        var ttl_ms: Int64
    }

    private func grant(_ request: Request) async throws -> Response {
        let bytes = try await RouteSupport.body(request, limit: limits.maxBodyBytes)
        guard let body = try? JSONDecoder().decode(GrantBody.self, from: Data(bytes)) else {
            throw GatewayError.badRequest("expected {\"ttl_ms\": integer}")
        }
        let range = limits.leaseTTLMilliseconds
        guard body.ttl_ms >= 0, range.contains(UInt64(body.ttl_ms)) else {
            throw GatewayError.badRequest("ttl_ms must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        let ttl = UInt64(body.ttl_ms)
        let idempotencyKey = RouteSupport.idempotencyKey(request)
        // The id is drawn here; a collision (one in 2^53 per lease) is simply drawn again.
        for _ in 0..<3 {
            let command = StoreCommand(
                operation: .grantLease(id: UInt64.random(in: Self.idRange), ttlMilliseconds: ttl),
                idempotencyKey: idempotencyKey)
            let outcome = await node.write(command)
            switch outcome {
            case .applied(.leaseGranted(let id), _):
                return json(["id": .number(id), "ttl_ms": .number(ttl)])
            case .applied(.leaseExists, _) where idempotencyKey == nil:
                continue
            default:
                throw RouteSupport.failure(outcome)
            }
        }
        throw GatewayError(status: .conflict, code: "lease_exists", message: "no free lease id found; retry")
    }

    private func keepAlive(_ id: UInt64) async throws -> Response {
        switch await node.keepAlive(id) {
        case .found(let info):
            return json(["id": .number(id), "ttl_ms": .number(info.ttlMilliseconds)])
        case .notFound:
            throw RouteSupport.leaseNotFound(id)
        case .unavailable(let reason):
            throw RouteSupport.unavailable("the leader could not keep the lease alive now: \(reason)")
        }
    }

    private func status(_ request: Request, _ id: UInt64) async throws -> Response {
        switch await node.leaseStatus(id) {
        case .found(let info):
            let seesReserved = admin.isAuthorized(request)
            let keys = info.keys.filter { seesReserved || !ReservedKeys.isReserved($0) }
            return json([
                "id": .number(id), "ttl_ms": .number(info.ttlMilliseconds),
                "remaining_ms": .number(info.remainingMilliseconds), "keys": .array(keys.map { .string($0) }),
                "key_count": .number(UInt64(info.keyCount)),
            ])
        case .notFound:
            throw RouteSupport.leaseNotFound(id)
        case .unavailable(let reason):
            throw RouteSupport.unavailable("the leader could not answer now: \(reason)")
        }
    }

    private func revoke(_ request: Request, _ id: UInt64) async throws -> Response {
        let outcome = await node.write(
            StoreCommand(operation: .revokeLease(id: id), idempotencyKey: RouteSupport.idempotencyKey(request)))
        guard case .applied(.applied(let revision, _), _) = outcome else { throw RouteSupport.failure(outcome) }
        return json(["id": .number(id), "revision": .number(revision)])
    }
}
