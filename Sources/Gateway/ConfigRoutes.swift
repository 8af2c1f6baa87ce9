import Foundation
import HTTPTypes
import Hummingbird
import Node

/// Project config (DESIGN.md "Data plane"): `PUT|GET|DELETE /config/{project}` and `GET /config`.
/// Reads and writes need the admin token (documents live under `/_sys/config/` and hold the
/// tenants' key hashes, and `/_sys/` reads are admin-only). Writes are validated before anything is proposed (unknown fields and
/// out-of-range values are a 400 naming the field), and take `If-Match` / `If-None-Match` like
/// KV writes. Reads answer from this node's `ConfigCache` — what this node enforces now — and
/// never wait on the network.
struct ConfigRoutes: Sendable {
    let node: RaftNode
    let cache: ConfigCache
    let limits: GatewayLimits
    let admin: AdminToken

    func register(on router: Router<BasicRequestContext>) {
        router.get("config") { request, _ in
            await RouteSupport.respond {
                try admin.authorize(request)
                return try self.list()
            }
        }
        router.get("config/:project") { request, context in
            await RouteSupport.respond {
                try admin.authorize(request)
                return try self.get(try Self.project(context))
            }
        }
        router.put("config/:project") { request, context in
            await RouteSupport.respond { try await self.put(request, context) }
        }
        router.delete("config/:project") { request, context in
            await RouteSupport.respond { try await self.delete(request, context) }
        }
    }

    private static func project(_ context: BasicRequestContext) throws -> String {
        guard let name = context.parameters.get("project"), ProjectConfig.isValidProjectName(name) else {
            throw GatewayError.badRequest(
                "the project name must be 1–63 of a–z, 0–9, - and _, starting with a letter or digit")
        }
        return name
    }

    struct Document: Encodable {
        var project: String
        var revision: UInt64
        var config: ProjectConfig
    }

    private func get(_ project: String) throws -> Response {
        guard let entry = cache.entry(for: project) else {
            throw GatewayError(status: .notFound, code: "not_found", message: "no config for project \(project)")
        }
        return try RouteSupport.encoded(
            Document(project: project, revision: entry.revision, config: entry.config),
            headers: [.eTag: "\"\(entry.revision)\""])
    }

    struct Listing: Encodable {
        var projects: [Document]
        /// The store revision this node's cache reflects.
        var revision: UInt64
    }

    private func list() throws -> Response {
        let documents = cache.entries.sorted { $0.key < $1.key }.map {
            Document(project: $0.key, revision: $0.value.revision, config: $0.value.config)
        }
        return try RouteSupport.encoded(Listing(projects: documents, revision: cache.revision))
    }

    private func put(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        try admin.authorize(request)
        let project = try Self.project(context)
        let bytes = try await RouteSupport.body(request, limit: limits.maxBodyBytes)
        let config: ProjectConfig
        do {
            config = try ProjectConfig.decode(bytes)
        } catch {
            switch error {
            case .unknownField: throw GatewayError(status: .badRequest, code: "unknown_field", message: "\(error)")
            case .invalid: throw GatewayError(status: .badRequest, code: "invalid_config", message: "\(error)")
            case .malformed: throw GatewayError.badRequest("\(error)")
            }
        }
        return try await write(
            request, .put(key: ProjectConfig.key(for: project), value: config.canonicalJSON), project: project)
    }

    private func delete(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        try admin.authorize(request)
        let project = try Self.project(context)
        return try await write(request, .delete(key: ProjectConfig.key(for: project)), project: project)
    }

    private func write(_ request: Request, _ operation: StoreCommand.Operation, project: String) async throws
        -> Response
    {
        let command = StoreCommand(
            operation: operation, condition: try RouteSupport.condition(request),
            idempotencyKey: RouteSupport.idempotencyKey(request), isSystem: true)
        let outcome = await node.write(command)
        guard case .applied(.applied(let revision, let found), _) = outcome else { throw RouteSupport.failure(outcome) }
        if case .delete = operation, !found {
            throw GatewayError(status: .notFound, code: "not_found", message: "no config for project \(project)")
        }
        return json(["project": .string(project), "revision": .number(revision)])
    }
}
