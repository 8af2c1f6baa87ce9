import Hummingbird

/// Tenant API keys on `/w/{service}/…` (DESIGN.md "Security and lifecycle"), except for the
/// services the operator declared public (`--public-services`): a service is closed unless it is
/// named there, so forgetting the setting fails safe (401) rather than open.
struct ProxyTenantGate<Context: RequestContext>: RouterMiddleware {
    /// nil without a config cache: no tenant has keys, so only public services answer.
    let tenants: TenantAuthentication<Context>?
    let publicServices: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        if let service = Self.service(ofPath: request.uri.path), publicServices.contains(service) {
            return try await next(request, context)
        }
        guard let tenants else {
            return (TenantKeys.error(TenantKeys([:]).decide(request.headers)) ?? Self.noKeys).response
        }
        return try await tenants.handle(request, context: context, next: next)
    }

    private static var noKeys: GatewayError {
        GatewayError(status: .unauthorized, code: "unauthorized", message: "no tenant has API keys on this node")
    }

    /// `/w/echo/hello` → `echo`; nil when the path names no service (the routes answer those).
    static func service(ofPath path: String) -> String? {
        let parts = path.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[0].isEmpty, parts[1] == "w", !parts[2].isEmpty else { return nil }
        return String(parts[2].split(separator: "/", maxSplits: 1).first ?? parts[2])
    }
}
