import Foundation

/// A `/sql` body: `{"sql": "…", "params": [...], "route": "primary"}`. Parameters are sent as
/// text, PostgreSQL infers their types: a string as it is, a number as written, `true`/`false`,
/// null as NULL, an array or object as its JSON text (for `json`/`jsonb` parameters). Unknown
/// fields are refused, so a typo (`"param"`) is not silently ignored.
struct SQLRequestBody: Sendable, Equatable {
    var sql: String
    var parameters: [String?]
    var primaryOnly: Bool

    /// PostgreSQL's limit on parameters of one statement.
    static let maxParameters = 65_535

    static func parse(_ bytes: [UInt8]) throws(GatewayError) -> SQLRequestBody {
        guard let document = try? JSONDecoder().decode(JSONParameter.self, from: Data(bytes)) else {
            throw GatewayError.badRequest("the body is not valid JSON")
        }
        guard case .object(let fields) = document else {
            throw GatewayError.badRequest("the body must be a JSON object: {\"sql\": \"…\", \"params\": [...]}")
        }
        if let unknown = fields.keys.filter({ !["sql", "params", "route"].contains($0) }).sorted().first {
            throw GatewayError.badRequest("unknown field \(unknown): the body takes sql, params and route")
        }
        guard case .string(let sql) = fields["sql"] else { throw GatewayError.badRequest("sql must be a string") }
        var parameters: [String?] = []
        switch fields["params"] {
        case nil, .null?: break
        case .array(let list)?:
            guard list.count <= maxParameters else { throw GatewayError.badRequest("at most \(maxParameters) params") }
            parameters = list.map(\.text)
        default: throw GatewayError.badRequest("params must be an array")
        }
        var primaryOnly = false
        switch fields["route"] {
        case nil, .null?, .string("auto")?: break
        case .string("primary")?: primaryOnly = true
        default: throw GatewayError.badRequest("route must be \"primary\" (or \"auto\", the default)")
        }
        return SQLRequestBody(sql: sql, parameters: parameters, primaryOnly: primaryOnly)
    }
}

/// Any JSON value, keeping booleans, integers and other numbers apart (so `true` is never 1, and
/// a large integer keeps its digits).
enum JSONParameter: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONParameter])
    case object([String: JSONParameter])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONParameter].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONParameter].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// The parameter's text for PostgreSQL; nil is NULL.
    var text: String? {
        switch self {
        case .null: return nil
        case .bool(let value): return value ? "true" : "false"
        case .integer(let value): return String(value)
        case .number(let value): return "\(value)"
        case .string(let value): return value
        case .array, .object:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) }
        }
    }
}
