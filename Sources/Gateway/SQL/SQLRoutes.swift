import HTTPTypes
import Hummingbird
import Node
import Patroni

/// `POST /sql` (DESIGN.md "PostgreSQL via Patroni"): one statement for the tenant named by
/// `X-Tenant`, whose API key `TenantAuthentication` checked before. Reads (`StatementClassifier`)
/// go to an admitted replica, writes to the primary; see `SQLPlan` for the rules and retries.
///
/// Answers besides 200 (`SQLAnswer`): 400 malformed bodies and refused statements, PostgreSQL's
/// own errors with their SQLSTATE (`sql_error`); 404 `no_database` for a tenant without a
/// `postgres` config; 413 over the body limit; 503 with `Retry-After` when there is no primary
/// (`no_primary`), the route is not writable (`not_writable`), no server answers
/// (`unavailable`) or the pool stays busy (`pool_exhausted`); 504 `outcome_unknown` when the
/// connection broke while a write was in flight (it may have committed; it is not retried).
struct SQLRoutes: Sendable {
    let sql: SQLGateway
    let limits: GatewayLimits

    func register(on group: RouterGroup<BasicRequestContext>) {
        group.post { request, _ in await RouteSupport.respond { try await self.run(request) } }
    }

    private func run(_ request: Request) async throws -> Response {
        let body = try SQLRequestBody.parse(try await RouteSupport.body(request, limit: limits.maxBodyBytes))
        // TenantAuthentication let the request through, so X-Tenant names the key's tenant.
        let tenant = request.headers[TenantKeys.tenantHeader] ?? ""
        guard let postgres = sql.configCache.entry(for: tenant)?.config.postgres else {
            throw GatewayError(
                status: .notFound, code: "no_database", message: "tenant \(tenant) has no postgres config")
        }
        let kind: SQLPlan.Kind
        switch StatementClassifier.classify(body.sql) {
        case .refused(let refusal):
            throw GatewayError(status: .badRequest, code: "refused_statement", message: "\(refusal)")
        case .read: kind = body.primaryOnly ? .primaryRead : .read
        case .write: kind = .write
        }
        let route = sql.routes.currentRoute
        let targets: [SQLPlan.Target]
        switch SQLPlan.decide(kind, route: route, turn: sql.nextTurn()) {
        case .targets(let planned): targets = planned
        case .noPrimary: throw Self.unavailable("no_primary", "no PostgreSQL primary is known now")
        case .notWritable:
            throw Self.unavailable(
                "not_writable", "this gateway cannot vouch for the current primary now; nothing was sent")
        case .noServer: throw Self.unavailable("unavailable", "no PostgreSQL server is known now")
        }
        let config = TenantPoolConfig(postgres)
        var attempt = 0
        var current = targets[0]
        // Only a write is reported as of unknown outcome; a read is retried only after it ran on a
        // replica (which cannot write, whatever the statement calls), never after the primary.
        var isWrite = kind == .write
        while true {
            let started = ContinuousClock.now
            do {
                let result = try await sql.pools.run(
                    .init(
                        tenant: tenant, config: config, endpoint: current.endpoint, role: current.role, sql: body.sql,
                        parameters: body.parameters))
                sql.latency[current.role]?.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
                return SQLAnswer.success(result, target: current, retried: attempt > 0)
            } catch {
                sql.latency[current.role]?.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
                switch error {
                case .statement(let failure) where failure.connectionLost:
                    if isWrite {
                        throw GatewayError(
                            status: .gatewayTimeout, code: "outcome_unknown",
                            message:
                                "the connection to \(current.endpoint.name) broke while the statement ran: it may or may not have committed; it was not retried"
                        )
                    }
                    guard attempt == 0, targets.count > 1 else {
                        throw Self.unavailable(
                            "unavailable",
                            "the connection to \(current.endpoint.name) broke during the read and it was not retried: \(failure.message)"
                        )
                    }
                case .unreachable(let message):
                    guard !isWrite, attempt == 0, targets.count > 1 else {
                        throw Self.unavailable(
                            "unavailable", "\(current.endpoint.name) is unreachable, nothing was sent: \(message)")
                    }
                case .statement(let failure) where failure.sqlState == "25006":
                    // read_only_sql_transaction: nothing ran. On a replica, the "read" calls
                    // something that writes: it runs on the primary, as a write from here on.
                    guard current.role == .replica, attempt == 0, let primary = route.primary, route.writable else {
                        throw Self.unavailable(
                            "not_writable", "\(current.endpoint.name) refused to write: \(failure.message)")
                    }
                    attempt += 1
                    current = SQLPlan.Target(endpoint: primary, role: .primary)
                    isWrite = true
                    continue
                case .statement(let failure):
                    return SQLAnswer.statementError(failure)
                case .exhausted:
                    throw Self.unavailable(
                        "pool_exhausted", "every connection of the tenant's pool to \(current.endpoint.name) is busy")
                case .shutDown:
                    throw Self.unavailable("unavailable", "the gateway is shutting down")
                }
                attempt += 1
                current = targets[1]
            }
        }
    }

    private static func unavailable(_ code: String, _ message: String) -> GatewayError {
        GatewayError(status: .serviceUnavailable, code: code, message: message, headers: [.retryAfter: "1"])
    }
}
