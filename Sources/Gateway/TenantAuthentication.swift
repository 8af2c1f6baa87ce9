import Crypto
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import Node

/// Tenant API keys for the data-plane routes (`/w`, `/sql`, `/cache`; DESIGN.md "Security and
/// lifecycle"). A request names its tenant in `X-Tenant` and carries its key as
/// `X-API-Key: <key>` or `Authorization: Bearer <key>` (either; both only if they agree). The
/// tenant's project config lists its keys as `sha256:<hex>` of the key's UTF-8 bytes; the
/// presented key is hashed and compared with every one of them in constant time.
///
/// Answers: no key → 401 `unauthorized`; no `X-Tenant` → 400 `tenant_required`; a key that
/// belongs to another tenant → 403 `wrong_tenant`; any other key (or a tenant without a config)
/// → 401 `unauthorized`. Handlers behind it may trust `X-Tenant`: it names the key's tenant.
struct TenantKeys: Sendable, Hashable {
    static let tenantHeader = HTTPField.Name("X-Tenant")!
    static let apiKeyHeader = HTTPField.Name("X-API-Key")!

    enum Decision: Sendable, Hashable {
        case allowed(tenant: String)
        case missingKey
        case missingTenant
        /// Both key headers, with different keys.
        case conflictingKeys
        case unknownKey
        /// The key is `owner`'s, not the tenant's the request named.
        case wrongTenant(owner: String)
    }

    /// Each tenant's key digests.
    private let digests: [String: [[UInt8]]]
    /// Which tenant holds a digest, to tell 403 from 401. A dictionary probe leaks timing only
    /// about a SHA-256 digest, which says nothing useful about the key behind it.
    private let owners: [[UInt8]: String]

    init(_ configs: [String: ProjectConfig]) {
        var digests: [String: [[UInt8]]] = [:]
        var owners: [[UInt8]: String] = [:]
        for (tenant, config) in configs {
            let decoded = config.apiKeys.compactMap(Self.digest(fromHash:))
            digests[tenant] = decoded
            // A digest listed by two tenants is owned by neither, for the 403.
            for digest in decoded { owners[digest] = owners[digest] == nil ? tenant : "" }
        }
        self.digests = digests
        self.owners = owners
    }

    /// `sha256:<64 hex>` as 32 bytes; nil for anything else (validation refuses those anyway).
    static func digest(fromHash text: String) -> [UInt8]? {
        guard ProjectConfig.Rules.isAPIKeyHash(text) else { return nil }
        let hex = Array(text.utf8.dropFirst(7))
        func value(_ byte: UInt8) -> UInt8 { byte <= 57 ? byte - 48 : byte - 87 }
        return stride(from: 0, to: 64, by: 2).map { value(hex[$0]) << 4 | value(hex[$0 + 1]) }
    }

    /// What a config stores for `key`.
    static func hash(of key: String) -> String {
        "sha256:" + SHA256.hash(data: Array(key.utf8)).map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }

    /// The key a request presents, from either header.
    static func presentedKey(_ headers: HTTPFields) -> (key: String?, conflict: Bool) {
        let explicit = headers[apiKeyHeader].flatMap { $0.isEmpty ? nil : $0 }
        var bearer: String?
        if let authorization = headers[.authorization], authorization.hasPrefix("Bearer ") {
            let token = String(authorization.dropFirst("Bearer ".count))
            bearer = token.isEmpty ? nil : token
        }
        if let explicit, let bearer, explicit != bearer { return (nil, true) }
        return (explicit ?? bearer, false)
    }

    func decide(tenant: String?, key: String?) -> Decision {
        guard let key else { return .missingKey }
        guard let tenant, !tenant.isEmpty else { return .missingTenant }
        let presented = Array(SHA256.hash(data: Array(key.utf8)))
        var matched = false
        for digest in digests[tenant] ?? [] {
            // No early exit: every listed digest is compared in full.
            matched = AdminToken.constantTimeEqual(presented, digest) || matched
        }
        if matched { return .allowed(tenant: tenant) }
        if let owner = owners[presented], !owner.isEmpty, owner != tenant { return .wrongTenant(owner: owner) }
        return .unknownKey
    }

    func decide(_ headers: HTTPFields) -> Decision {
        let (key, conflict) = Self.presentedKey(headers)
        if conflict { return .conflictingKeys }
        return decide(tenant: headers[Self.tenantHeader], key: key)
    }

    /// The error to answer for a decision other than `.allowed`.
    static func error(_ decision: Decision) -> GatewayError? {
        let challenge: HTTPFields = [.wwwAuthenticate: "Bearer"]
        switch decision {
        case .allowed: return nil
        case .missingKey:
            return GatewayError(
                status: .unauthorized, code: "unauthorized",
                message: "this route needs the tenant's API key: X-API-Key: <key> or Authorization: Bearer <key>",
                headers: challenge)
        case .missingTenant:
            return GatewayError(
                status: .badRequest, code: "tenant_required", message: "name the tenant in the X-Tenant header")
        case .conflictingKeys:
            return GatewayError(
                status: .badRequest, code: "bad_request",
                message: "X-API-Key and Authorization: Bearer carry different keys; send one")
        case .unknownKey:
            return GatewayError(
                status: .unauthorized, code: "unauthorized", message: "the API key is not one of the tenant's",
                headers: challenge)
        case .wrongTenant:
            // The owner is not named: that would tell a key's holder which tenant it opens.
            return GatewayError(
                status: .forbidden, code: "wrong_tenant", message: "the API key belongs to a different tenant")
        }
    }
}

/// The middleware for a tenant route group:
/// `router.group("cache").add(middleware: TenantAuthentication(cache: configCache))`.
/// Its key index is rebuilt when the config cache changes, never per request.
struct TenantAuthentication<Context: RequestContext>: RouterMiddleware {
    private let cache: ConfigCache
    private let index: NIOLockedValueBox<(stamp: Stamp, keys: TenantKeys)?>

    /// Which cache state an index was built from (a delete changes the count even when the
    /// newest revision stays).
    private struct Stamp: Hashable {
        var configRevision: UInt64
        var projects: Int
    }

    init(cache: ConfigCache) {
        self.cache = cache
        index = NIOLockedValueBox(nil)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        if let error = TenantKeys.error(keys().decide(request.headers)) { return error.response }
        return try await next(request, context)
    }

    private func keys() -> TenantKeys {
        // The revision is read before the entries: a change landing in between leaves a stamp
        // older than the entries, so the next request merely rebuilds again.
        let revision = cache.configRevision
        let entries = cache.entries
        let stamp = Stamp(configRevision: revision, projects: entries.count)
        if let current = index.withLockedValue({ $0 }), current.stamp == stamp { return current.keys }
        let keys = TenantKeys(entries.mapValues(\.config))
        index.withLockedValue { $0 = (stamp, keys) }
        return keys
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
