import HTTPTypes
import Hummingbird
import Sentinel

/// Per-tenant rate limiting (DESIGN.md "Redis via Sentinel") for a tenant route group. Add it
/// *after* the group's tenant authentication, so `X-Tenant` names an authenticated tenant:
///
///     group.add(middleware: TenantRateLimit(redis: redis))
///
/// Over the limit: 429 `rate_limited` with `Retry-After`. Redis unreachable: the tenant's
/// `rateLimit.failMode` decides — `open` (the default) lets the request through, `closed` answers
/// 503 `rate_limit_unavailable`; both are counted (`raftgate_rate_limit_decisions_total`). A
/// tenant without a `rateLimit`, or a node without Redis, is not limited.
struct TenantRateLimit<Context: RequestContext>: RouterMiddleware {
    let redis: RedisGateway?
    /// Requests it applies to (on `/w`, not the public services, whose callers name no tenant).
    var applies: @Sendable (Request) -> Bool = { _ in true }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard let redis, applies(request), let tenant = request.headers[TenantKeys.tenantHeader],
            let rule = redis.rule(for: tenant)
        else { return try await next(request, context) }
        switch await redis.client.admit(tenant: tenant, rule: rule) {
        case .allowed, .allowedUnchecked:
            return try await next(request, context)
        case .limited(let seconds):
            return GatewayError(
                status: .tooManyRequests, code: "rate_limited",
                message: "tenant \(tenant) is over its limit of \(rule.perSecond)/s (burst \(rule.burst)); retry later",
                headers: [.retryAfter: "\(seconds)"]
            ).response
        case .refused(let reason):
            return GatewayError(
                status: .serviceUnavailable, code: "rate_limit_unavailable",
                message: "the rate limit cannot be checked (Redis: \(reason)) and the tenant's limit fails closed",
                headers: [.retryAfter: "1"]
            ).response
        }
    }
}
