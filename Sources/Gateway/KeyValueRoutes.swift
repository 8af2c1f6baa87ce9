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
    /// Rows a range read answers when it names no `limit`.
    public var defaultRangeLimit = 1000
    /// The largest `limit` a range read may ask for; more is a 400 `limit_too_large`. It bounds
    /// what one read scans and copies (off the Raft actor, on a snapshot of the key index) and
    /// the answer's size.
    public var maxRangeLimit = 10_000
    /// Lease TTLs `POST /lease` accepts, in milliseconds (1 s to 24 h): shorter than about an
    /// election would expire leases whose keepalives a failover merely delayed.
    public var leaseTTLMilliseconds: ClosedRange<UInt64> = 1_000...86_400_000
    /// A watch sends a `progress` bookmark at least this often.
    public var watchProgressInterval: Duration = .seconds(5)
    /// How far a watch may fall behind (changes not yet written to its client) before it is closed.
    public var watchBuffer = ChangeSubscription.Limits(maxItems: 1024, maxBytes: 8 << 20)

    public init() {}
}

/// The KV API of DESIGN.md: `POST /kv`, `PUT|GET|DELETE /kv/{key}`, `GET /kv?prefix=`.
struct KeyValueRoutes: Sendable {
    let node: RaftNode
    let limits: GatewayLimits
    let admin: AdminToken

    func register(on router: Router<BasicRequestContext>) {
        router.post("kv") { request, _ in await RouteSupport.respond { try await self.postJSON(request) } }
        router.get("kv") { request, _ in await RouteSupport.respond { try await self.range(request) } }
        router.put("kv/**") { request, context in
            await RouteSupport.respond { try await self.put(request, key: try self.key(context)) }
        }
        router.get("kv/**") { request, context in
            await RouteSupport.respond { try await self.get(request, key: try self.key(context)) }
        }
        router.delete("kv/**") { request, context in
            await RouteSupport.respond { try await self.delete(request, key: try self.key(context)) }
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

    // MARK: Writes

    private struct PostBody: Decodable {
        var key: String
        var value: String
    }

    private func postJSON(_ request: Request) async throws -> Response {
        let bytes = try await RouteSupport.body(request, limit: limits.maxBodyBytes)
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
        try await write(
            request, .put(key: key, value: try await RouteSupport.body(request, limit: limits.maxBodyBytes)), key: key)
    }

    private func delete(_ request: Request, key: String) async throws -> Response {
        try await write(request, .delete(key: key), key: key)
    }

    /// `?lease=ID` attaches the key to a lease (a put without one detaches it, as in etcd).
    private func lease(_ request: Request, _ operation: StoreCommand.Operation) throws -> UInt64 {
        guard let text = request.uri.queryParameters["lease"] else { return 0 }
        guard case .put = operation else { throw GatewayError.badRequest("only a put takes a lease") }
        guard let id = UInt64(text), id > 0 else { throw GatewayError.badRequest("lease must be a lease id") }
        return id
    }

    private func write(_ request: Request, _ operation: StoreCommand.Operation, key: String) async throws -> Response {
        let command = StoreCommand(
            operation: operation, condition: try RouteSupport.condition(request),
            idempotencyKey: RouteSupport.idempotencyKey(request), lease: try lease(request, operation))
        let outcome = await node.write(command)
        guard case .applied(.applied(let revision, let found), _) = outcome else { throw RouteSupport.failure(outcome) }
        if case .delete = operation, !found {
            throw GatewayError(status: .notFound, code: "not_found", message: "no key \(key)")
        }
        return json(["key": .string(key), "revision": .number(revision)])
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
        guard case .value(let record, _) = outcome else { throw RouteSupport.unavailable() }
        guard let record else { throw GatewayError(status: .notFound, code: "not_found", message: "no key \(key)") }
        return json(Self.recordFields(key, record))
    }

    /// The keys under `prefix` and the store revision they were read at, which is where a watch
    /// continues from (`GET /watch?since=`). Keys under `/_sys/` only with the admin token. At
    /// most `limit` rows (default `defaultRangeLimit`, at most `maxRangeLimit`); `more` says
    /// whether keys were left out, and then `next` is the last key returned: the next page is
    /// `after=<next>`, keys strictly after it (like etcd's paging from the last key plus a zero
    /// byte). Each page is read at its own revision; a client that lists and then watches watches
    /// from the first page's `revision` (README "Range reads").
    private func range(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        let prefix = query["prefix"].map(String.init) ?? ""
        let limit = try RangeLimit.resolve(
            query["limit"].map(String.init), default: limits.defaultRangeLimit, maximum: limits.maxRangeLimit)
        let after = query["after"].map(String.init)
        let seesReserved = try ReservedKeys.access(prefix: prefix, request, admin)
        // One row more than asked, to tell whether there are more.
        guard
            let answer = await node.range(
                prefix: prefix, after: after, limit: limit + 1, consistency: try consistency(request),
                includeReserved: seesReserved)
        else { throw RouteSupport.unavailable() }
        let rows = answer.rows.prefix(limit)
        let more = answer.rows.count > limit
        let body = try await RangeAnswer(
            rows: rows, revision: answer.revision, more: more, next: more ? rows.last?.key : nil
        ).encoded()
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func recordFields(_ key: String, _ record: KeyValueStore.Record) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [
            "key": .string(key), "value": .string(String(decoding: record.value, as: UTF8.self)),
            "revision": .number(record.modRevision), "createRevision": .number(record.createRevision),
            "modRevision": .number(record.modRevision), "version": .number(record.version),
        ]
        if record.lease != 0 { fields["lease"] = .number(record.lease) }
        return fields
    }
}

/// The `limit` of a range read: absent is the default; above the maximum is refused (not
/// clamped), so a client never mistakes a cut answer for the whole range.
enum RangeLimit {
    static func resolve(_ text: String?, default defaultLimit: Int, maximum: Int) throws -> Int {
        guard let text else { return min(defaultLimit, maximum) }
        guard let parsed = Int(text), parsed > 0 else {
            throw GatewayError.badRequest("limit must be a positive integer")
        }
        guard parsed <= maximum else {
            throw GatewayError(
                status: .badRequest, code: "limit_too_large",
                message: "limit \(parsed) exceeds the maximum \(maximum); page with the last key instead")
        }
        return parsed
    }
}

/// Who may see keys under `/_sys/` through range reads and watches: only holders of the admin
/// token (DESIGN.md, "Security and lifecycle").
enum ReservedKeys {
    static func isReserved(_ key: String) -> Bool { key.utf8.starts(with: KeyValueStore.reservedPrefix.utf8) }

    /// Whether reserved keys are included for this prefix and request. A prefix inside `/_sys/`
    /// without the token is an error (401/403); a wider prefix (say "") merely leaves them out.
    static func access(prefix: String, _ request: Request, _ admin: AdminToken) throws -> Bool {
        if isReserved(prefix) {
            try admin.authorize(request)
            return true
        }
        return admin.isAuthorized(request)
    }
}

func jsonData(_ fields: [String: JSONValue]) -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return (try? encoder.encode(fields)) ?? Data()
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
    let data = jsonData(fields)
    return Response(
        status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}
