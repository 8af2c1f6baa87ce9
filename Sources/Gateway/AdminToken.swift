import HTTPTypes
import Hummingbird

/// The admin token guarding admin routes (config writes; reads of `/_sys/` through watches).
/// Sent as `Authorization: Bearer <token>`; a missing one is 401, a wrong one 403. Compared in
/// time that depends only on the configured token's length, never on how much of it matched.
struct AdminToken: Sendable {
    /// nil: no token configured, so admin routes are refused to everyone.
    let token: [UInt8]?

    init(_ token: String?) {
        self.token = token.flatMap { $0.isEmpty ? nil : Array($0.utf8) }
    }

    /// Throws the 401 or 403 to answer unless the request carries the token.
    func authorize(_ request: Request) throws {
        guard let token else {
            throw GatewayError(
                status: .forbidden, code: "admin_disabled",
                message:
                    "admin routes are disabled: this node has no admin token (adminToken, --admin-token, RAFTGATE_ADMIN_TOKEN)"
            )
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw GatewayError(
                status: .unauthorized, code: "unauthorized",
                message: "this route needs the admin token: Authorization: Bearer <token>",
                headers: [.wwwAuthenticate: "Bearer"])
        }
        guard Self.constantTimeEqual(Array(header.utf8.dropFirst("Bearer ".utf8.count)), token) else {
            throw GatewayError(status: .forbidden, code: "forbidden", message: "the admin token does not match")
        }
    }

    func isAuthorized(_ request: Request) -> Bool { (try? authorize(request)) != nil }

    /// Touches every byte of `expected` whatever `given` holds.
    static func constantTimeEqual(_ given: [UInt8], _ expected: [UInt8]) -> Bool {
        var difference: UInt8 = given.count == expected.count ? 0 : 1
        for index in expected.indices {
            difference |= expected[index] ^ (index < given.count ? given[index] : 0)
        }
        return difference == 0
    }
}

/// Guards a whole route group with the admin token, for admin routes registered together
/// (membership, drain): `router.group("members").add(middleware: AdminTokenMiddleware(admin))`.
/// A request without the token never reaches the group's handlers; its answer is the JSON 401/403
/// of `AdminToken.authorize`.
struct AdminTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let admin: AdminToken

    init(_ admin: AdminToken) { self.admin = admin }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            try admin.authorize(request)
        } catch let error as GatewayError {
            return error.response
        }
        return try await next(request, context)
    }
}
