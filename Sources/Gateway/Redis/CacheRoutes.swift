import Foundation
import HTTPTypes
import Hummingbird
import Sentinel

/// `GET|PUT|DELETE /cache/{key}` (`?ttl_s=` on PUT), each tenant's keys in a namespace of its own in
/// Redis. The value is the request body and comes back as the response body, bytes as they were.
/// Registered on the `/cache` group behind tenant authentication and the rate limit.
struct CacheRoutes: Sendable {
    let redis: RedisGateway
    let limits: GatewayLimits

    func register(on group: RouterGroup<BasicRequestContext>) {
        group.get("**") { request, _ in await RouteSupport.respond { try await self.get(request) } }
        group.put("**") { request, _ in await RouteSupport.respond { try await self.put(request) } }
        group.delete("**") { request, _ in await RouteSupport.respond { try await self.delete(request) } }
    }

    private var cacheLimits: CacheRequest.Limits {
        var cacheLimits = redis.cacheLimits
        cacheLimits.maxValueBytes = min(cacheLimits.maxValueBytes, limits.maxBodyBytes)
        return cacheLimits
    }

    private func cacheRequest(_ request: Request) throws -> CacheRequest {
        // Authentication ran first: X-Tenant names the key's tenant.
        let tenant = request.headers[TenantKeys.tenantHeader] ?? ""
        let raw = String(request.uri.path.dropFirst("/cache/".count))
        do {
            return try CacheRequest(tenant: tenant, encodedKey: raw, limits: cacheLimits)
        } catch {
            throw Self.refusal(error)
        }
    }

    private func get(_ request: Request) async throws -> Response {
        let cacheRequest = try cacheRequest(request)
        let reply = try await run(cacheRequest.get())
        switch reply {
        case .string(let bytes):
            return Response(
                status: .ok, headers: [.contentType: "application/octet-stream"],
                body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        case .null:
            throw GatewayError(status: .notFound, code: "not_found", message: "no cached value for this key")
        default:
            throw Self.unexpected(reply)
        }
    }

    private func put(_ request: Request) async throws -> Response {
        let cacheRequest = try cacheRequest(request)
        let ttl: Int?
        do {
            ttl = try CacheRequest.ttl(request.uri.queryParameters.get("ttl_s"), limits: cacheLimits)
        } catch {
            throw Self.refusal(error)
        }
        let value = try await RouteSupport.body(request, limit: cacheLimits.maxValueBytes)
        let reply = try await run(cacheRequest.set(value, ttlSeconds: ttl))
        guard case .status("OK") = reply else { throw Self.unexpected(reply) }
        return try RouteSupport.encoded(CacheWritten(key: cacheRequest.key, ttlSeconds: ttl, bytes: value.count))
    }

    private func delete(_ request: Request) async throws -> Response {
        let cacheRequest = try cacheRequest(request)
        let reply = try await run(cacheRequest.delete())
        guard let count = reply.integer else { throw Self.unexpected(reply) }
        return try RouteSupport.encoded(CacheDeleted(key: cacheRequest.key, deleted: count > 0))
    }

    /// Runs a command; Redis unreachable is 503 (retry), an error reply 502 with Redis's words.
    private func run(_ command: [[UInt8]]) async throws -> RedisReply {
        let reply: RedisReply
        do {
            reply = try await redis.client.pool.execute(command)
        } catch {
            throw GatewayError(
                status: .serviceUnavailable, code: "redis_unavailable", message: "\(error)",
                headers: [.retryAfter: "1"])
        }
        if case .error(let message) = reply {
            throw GatewayError(
                status: .badGateway, code: "redis_error", message: "Redis refused the command: \(message)")
        }
        return reply
    }

    private static func refusal(_ problem: CacheRequest.Problem) -> GatewayError {
        switch problem {
        case .valueTooLarge:
            GatewayError(status: .contentTooLarge, code: problem.code, message: problem.message)
        default:
            GatewayError(status: .badRequest, code: problem.code, message: problem.message)
        }
    }

    private static func unexpected(_ reply: RedisReply) -> GatewayError {
        GatewayError(status: .badGateway, code: "redis_error", message: "unexpected Redis answer: \(reply)")
    }
}

private struct CacheWritten: Encodable {
    var key: String
    var ttlSeconds: Int?
    var bytes: Int

    enum CodingKeys: String, CodingKey {
        case key, bytes
        case ttlSeconds = "ttl_s"
    }
}

private struct CacheDeleted: Encodable {
    var key: String
    var deleted: Bool
}
