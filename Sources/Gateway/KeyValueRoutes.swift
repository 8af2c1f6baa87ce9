import Foundation
import HTTPTypes
import Hummingbird
import Node
import Raft

/// Limits the HTTP surface enforces before anything reaches Raft.
public struct GatewayLimits: Sendable {
    /// Larger request bodies get 413.
    public var maxBodyBytes = 1 << 20
    /// Longer keys get 400.
    public var maxKeyBytes = 4096

    public init() {}
}

/// The KV API of DESIGN.md: `POST /kv`, `PUT|GET|DELETE /kv/{key}`, `GET /kv?prefix=`.
struct KeyValueRoutes: Sendable {
    let node: RaftNode
    let limits: GatewayLimits

    func register(on router: Router<BasicRequestContext>) {
        router.post("kv") { request, _ in await self.respond { try await self.postJSON(request) } }
        router.get("kv") { request, _ in await self.respond { try await self.range(request) } }
        router.put("kv/**") { request, context in
            await self.respond { try await self.put(request, key: try self.key(context)) }
        }
        router.get("kv/**") { request, context in
            await self.respond { try await self.get(request, key: try self.key(context)) }
        }
        router.delete("kv/**") { request, context in
            await self.respond { try await self.delete(request, key: try self.key(context)) }
        }
    }

    private func respond(_ work: () async throws -> Response) async -> Response {
        do {
            return try await work()
        } catch let error as GatewayError {
            return error.response
        } catch {
            return GatewayError(status: .internalServerError, code: "internal", message: "\(error)").response
        }
    }

    private func key(_ context: BasicRequestContext) throws -> String {
        let key = context.parameters.getCatchAll().joined(separator: "/")
        try validate(key)
        return key
    }

    private func validate(_ key: String) throws {
        guard !key.isEmpty else { throw GatewayError.badRequest("the key is empty") }
        guard key.utf8.count <= limits.maxKeyBytes else {
            throw GatewayError.badRequest("the key is longer than \(limits.maxKeyBytes) bytes")
        }
        guard !key.utf8.starts(with: KeyValueStore.reservedPrefix.utf8) else {
            throw GatewayError(
                status: .forbidden, code: "reserved_key",
                message: "keys under \(KeyValueStore.reservedPrefix) are the cluster's own")
        }
    }

    private func body(_ request: Request) async throws -> [UInt8] {
        var request = request
        do {
            let buffer = try await request.collectBody(upTo: limits.maxBodyBytes)
            return Array(buffer.readableBytesView)
        } catch {
            throw GatewayError(
                status: .contentTooLarge, code: "too_large", message: "the body exceeds \(limits.maxBodyBytes) bytes")
        }
    }

    // MARK: Writes

    private struct PostBody: Decodable {
        var key: String
        var value: String
    }

    private func postJSON(_ request: Request) async throws -> Response {
        let bytes = try await body(request)
        let parsed: PostBody
        do {
            parsed = try JSONDecoder().decode(PostBody.self, from: Data(bytes))
        } catch {
            throw GatewayError.badRequest("expected {\"key\": string, \"value\": string}")
        }
        try validate(parsed.key)
        return try await write(request, .put(key: parsed.key, value: Array(parsed.value.utf8)), key: parsed.key)
    }

    private func put(_ request: Request, key: String) async throws -> Response {
        try await write(request, .put(key: key, value: try await body(request)), key: key)
    }

    private func delete(_ request: Request, key: String) async throws -> Response {
        try await write(request, .delete(key: key), key: key)
    }

    private func write(_ request: Request, _ operation: StoreCommand.Operation, key: String) async throws -> Response {
        var condition = StoreCommand.Condition.none
        if let ifMatch = request.headers[.ifMatch] {
            guard let revision = UInt64(ifMatch.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))) else {
                throw GatewayError.badRequest("If-Match must be a modRevision number")
            }
            condition = .modRevision(revision)
        } else if let ifNoneMatch = request.headers[.ifNoneMatch] {
            guard ifNoneMatch.trimmingCharacters(in: .whitespaces) == "*" else {
                throw GatewayError.badRequest("If-None-Match supports only *")
            }
            condition = .absent
        }
        let idempotencyKey = request.headers[HTTPField.Name("Idempotency-Key")!]
        let command = StoreCommand(operation: operation, condition: condition, idempotencyKey: idempotencyKey)
        let outcome = await node.write(command)
        switch outcome {
        case .applied(.applied(let revision, let found), _):
            if case .delete = operation, !found {
                throw GatewayError(status: .notFound, code: "not_found", message: "no key \(key)")
            }
            return json(["key": .string(key), "revision": .number(revision)])
        case .applied(.conditionFailed(let current), _):
            throw GatewayError(
                status: .preconditionFailed, code: "condition_failed",
                message: "the key's modRevision is \(current)")
        case .applied(.reservedKey, _):
            throw GatewayError(status: .forbidden, code: "reserved_key", message: "reserved key")
        case .notLeader(let leader):
            var headers: HTTPFields = [.retryAfter: "1"]
            if let leader { headers[HTTPField.Name("X-Raft-Leader")!] = "\(leader)" }
            throw GatewayError(
                status: .serviceUnavailable, code: "no_leader", message: "no leader can take the write now",
                headers: headers)
        case .notApplied(let reason):
            throw GatewayError(
                status: .serviceUnavailable, code: "not_applied", message: "not applied, safe to retry: \(reason)",
                headers: [.retryAfter: "1"])
        case .unknown(let reason):
            throw GatewayError(
                status: .gatewayTimeout, code: "outcome_unknown",
                message: "the write was proposed but its outcome is unknown (it may still apply): \(reason)")
        }
    }

    // MARK: Reads

    private func consistency(_ request: Request) throws -> ReadConsistency {
        let query = request.uri.queryParameters
        switch query["consistency"].map(String.init) ?? "linearizable" {
        case "linearizable": return .linearizable
        case "lease": return .lease
        case "stale":
            guard let bound = query["max_staleness_ms"] else { return .stale(maxStaleness: nil) }
            guard let milliseconds = Int(bound), milliseconds >= 0 else {
                throw GatewayError.badRequest("max_staleness_ms must be a non-negative integer")
            }
            return .stale(maxStaleness: .milliseconds(milliseconds))
        case let other:
            throw GatewayError.badRequest("unknown consistency \(other): use linearizable, lease or stale")
        }
    }

    private func get(_ request: Request, key: String) async throws -> Response {
        let outcome = await node.read(key, consistency: try consistency(request))
        guard case .value(let record, _) = outcome else { throw unavailable() }
        guard let record else { throw GatewayError(status: .notFound, code: "not_found", message: "no key \(key)") }
        return json(recordFields(key, record))
    }

    private func range(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        let prefix = query["prefix"].map(String.init) ?? ""
        var limit = Int.max
        if let text = query["limit"] {
            guard let parsed = Int(text), parsed > 0 else {
                throw GatewayError.badRequest("limit must be a positive integer")
            }
            limit = parsed
        }
        guard let rows = await node.range(prefix: prefix, limit: limit, consistency: try consistency(request)) else {
            throw unavailable()
        }
        return json(["kvs": .array(rows.map { .object(recordFields($0.key, $0.record)) })])
    }

    private func unavailable() -> GatewayError {
        GatewayError(
            status: .serviceUnavailable, code: "unavailable", message: "the read could not be confirmed now",
            headers: [.retryAfter: "1"])
    }

    private func recordFields(_ key: String, _ record: KeyValueStore.Record) -> [String: JSONValue] {
        [
            "key": .string(key), "value": .string(String(decoding: record.value, as: UTF8.self)),
            "revision": .number(record.modRevision), "createRevision": .number(record.createRevision),
            "modRevision": .number(record.modRevision), "version": .number(record.version),
        ]
    }
}

/// A tiny JSON value so responses are encoded with stable key order.
enum JSONValue: Encodable {
    case string(String)
    case number(UInt64)
    case bool(Bool)
    case array([JSONValue])
    case object([String: JSONValue])

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

func json(_ fields: [String: JSONValue], status: HTTPResponse.Status = .ok) -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let data = (try? encoder.encode(fields)) ?? Data()
    return Response(
        status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}
