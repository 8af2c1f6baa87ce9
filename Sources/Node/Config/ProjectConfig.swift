import Foundation

/// One project's (tenant's) configuration, stored as JSON at `/_sys/config/<project>`:
///
///     {"apiKeys": ["sha256:<64 hex>"], "rateLimit": {"perSecond": 100, "burst": 200},
///      "postgres": {"database": "acme", "user": "acme", "maxConnections": 10},
///      "routes": {"api": "api"}}
///
/// Every field is optional (`apiKeys` and `routes` default to empty, `postgres.maxConnections` to
/// 10). Decoding is strict: an unknown field anywhere is an error naming it, so a typo never
/// silently means "use the default". The limits are in `ProjectConfig.Rules`.
public struct ProjectConfig: Sendable, Hashable, Codable {
    public struct RateLimit: Sendable, Hashable, Codable {
        /// Requests per second refilled into the project's bucket.
        public var perSecond: Int
        /// The bucket's size: how many requests may arrive at once.
        public var burst: Int
        /// When Redis cannot be asked: `open` (the default, admit and count) or `closed` (503).
        public var failMode: String?

        public init(perSecond: Int, burst: Int, failMode: String? = nil) {
            self.perSecond = perSecond
            self.burst = burst
            self.failMode = failMode
        }
    }

    public struct Postgres: Sendable, Hashable, Codable {
        public var database: String
        public var user: String
        /// The project's pool size on each gateway.
        public var maxConnections: Int
    }

    /// SHA-256 hashes of the project's API keys, `sha256:` and 64 lowercase hex digits; the keys
    /// themselves are never stored.
    public var apiKeys: [String]
    public var rateLimit: RateLimit?
    public var postgres: Postgres?
    /// Route name → worker service (`/w/{service}/…`).
    public var routes: [String: String]

    public init(
        apiKeys: [String] = [], rateLimit: RateLimit? = nil, postgres: Postgres? = nil, routes: [String: String] = [:]
    ) {
        self.apiKeys = apiKeys
        self.rateLimit = rateLimit
        self.postgres = postgres
        self.routes = routes
    }

    /// Where project configs live in the store.
    public static let keyPrefix = "/_sys/config/"

    public static func key(for project: String) -> String { keyPrefix + project }

    /// The limits a document must keep.
    public enum Rules {
        public static let maxAPIKeys = 100
        public static let perSecond = 1...1_000_000
        public static let burst = 1...10_000_000
        public static let maxConnections = 1...1000
        public static let defaultMaxConnections = 10
        public static let maxRoutes = 100
        /// `rateLimit.failMode`: what the rate limit does while Redis cannot be asked.
        public static let failModes: Set<String> = ["open", "closed"]
        /// Project names: 1–63 of a–z, 0–9, `-` and `_`, starting with a letter or digit (they name
        /// pools, rate-limit keys and cache namespaces, so they stay plain).
        public static func isProjectName(_ text: String) -> Bool {
            text.isASCIIName(maxLength: 63, first: { $0.isLowercaseLetter || $0.isDigit }) {
                $0.isLowercaseLetter || $0.isDigit || $0 == "-" || $0 == "_"
            }
        }

        /// PostgreSQL database and user names: unquoted identifiers of at most 63 bytes.
        public static func isIdentifier(_ text: String) -> Bool {
            text.isASCIIName(maxLength: 63, first: { $0.isLetter || $0 == "_" }) {
                $0.isLetter || $0.isDigit || $0 == "_"
            }
        }

        /// Route and service names: 1–64 of letters, digits, `.`, `_` and `-`, starting with a
        /// letter or digit.
        public static func isRouteName(_ text: String) -> Bool {
            text.isASCIIName(maxLength: 64, first: { $0.isLetter || $0.isDigit }) {
                $0.isLetter || $0.isDigit || $0 == "." || $0 == "_" || $0 == "-"
            }
        }

        /// `sha256:` and 64 lowercase hex digits.
        public static func isAPIKeyHash(_ text: String) -> Bool {
            guard text.hasPrefix("sha256:") else { return false }
            let digits = text.utf8.dropFirst(7)
            return digits.count == 64 && digits.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
        }
    }

    // MARK: Decoding and validation

    /// Decodes and validates a document; the error names the field at fault.
    public static func decode(_ bytes: [UInt8]) throws(ProjectConfigError) -> ProjectConfig {
        let config: ProjectConfig
        do {
            config = try JSONDecoder().decode(ProjectConfig.self, from: Data(bytes))
        } catch let error as ProjectConfigError {
            throw error
        } catch let error as DecodingError {
            throw ProjectConfigError(decoding: error)
        } catch {
            throw .malformed("\(error)")
        }
        try config.validate()
        return config
    }

    /// The stored form: compact JSON with sorted keys, so equal configs are equal bytes.
    public var canonicalJSON: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(self)) ?? Data())
    }

    public static func isValidProjectName(_ name: String) -> Bool { Rules.isProjectName(name) }

    public func validate() throws(ProjectConfigError) {
        guard apiKeys.count <= Rules.maxAPIKeys else {
            throw .invalid(field: "apiKeys", reason: "at most \(Rules.maxAPIKeys) keys")
        }
        for (index, key) in apiKeys.enumerated() where !Rules.isAPIKeyHash(key) {
            throw .invalid(field: "apiKeys[\(index)]", reason: "must be sha256: followed by 64 lowercase hex digits")
        }
        guard Set(apiKeys).count == apiKeys.count else { throw .invalid(field: "apiKeys", reason: "duplicate key") }
        if let rateLimit {
            try Self.check(rateLimit.perSecond, in: Rules.perSecond, "rateLimit.perSecond")
            try Self.check(rateLimit.burst, in: Rules.burst, "rateLimit.burst")
            if let failMode = rateLimit.failMode, !Rules.failModes.contains(failMode) {
                throw .invalid(field: "rateLimit.failMode", reason: "must be \"open\" or \"closed\"")
            }
        }
        if let postgres {
            for (field, value) in [("database", postgres.database), ("user", postgres.user)]
            where !Rules.isIdentifier(value) {
                throw .invalid(
                    field: "postgres.\(field)",
                    reason: "must be 1–63 letters, digits or _, not starting with a digit")
            }
            try Self.check(postgres.maxConnections, in: Rules.maxConnections, "postgres.maxConnections")
        }
        guard routes.count <= Rules.maxRoutes else {
            throw .invalid(field: "routes", reason: "at most \(Rules.maxRoutes) routes")
        }
        for (name, service) in routes.sorted(by: { $0.key < $1.key }) {
            guard Rules.isRouteName(name) else {
                throw .invalid(field: "routes", reason: "route name \(name) must be 1–64 letters, digits, ., _ or -")
            }
            guard Rules.isRouteName(service) else {
                throw .invalid(field: "routes.\(name)", reason: "the service must be 1–64 letters, digits, ., _ or -")
            }
        }
    }

    private static func check(_ value: Int, in range: ClosedRange<Int>, _ field: String) throws(ProjectConfigError) {
        guard range.contains(value) else {
            throw .invalid(field: field, reason: "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
    }

    // Strict decoding: every level lists the fields it knows and refuses the rest.

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case apiKeys, rateLimit, postgres, routes
    }

    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        apiKeys = try container.decodeIfPresent([String].self, forKey: .apiKeys) ?? []
        rateLimit = try container.decodeIfPresent(RateLimit.self, forKey: .rateLimit)
        postgres = try container.decodeIfPresent(Postgres.self, forKey: .postgres)
        routes = try container.decodeIfPresent([String: String].self, forKey: .routes) ?? [:]
    }
}

extension ProjectConfig.RateLimit {
    private enum CodingKeys: String, CodingKey, CaseIterable {
        case perSecond, burst, failMode
    }

    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        perSecond = try StrictKeys.integer(container, .perSecond)
        burst = try StrictKeys.integer(container, .burst)
        failMode = try container.decodeIfPresent(String.self, forKey: .failMode)
    }
}

extension ProjectConfig.Postgres {
    private enum CodingKeys: String, CodingKey, CaseIterable {
        case database, user, maxConnections
    }

    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        database = try container.decode(String.self, forKey: .database)
        user = try container.decode(String.self, forKey: .user)
        maxConnections =
            container.contains(.maxConnections)
            ? try StrictKeys.integer(container, .maxConnections) : ProjectConfig.Rules.defaultMaxConnections
    }
}

/// Why a project config was refused.
public enum ProjectConfigError: Error, Hashable, CustomStringConvertible {
    case malformed(String)
    case unknownField(String)
    case invalid(field: String, reason: String)

    public var description: String {
        switch self {
        case .malformed(let message): message
        case .unknownField(let path): "unknown field \(path)"
        case .invalid(let field, let reason): "\(field): \(reason)"
        }
    }

    init(decoding error: DecodingError) {
        func path(_ context: DecodingError.Context) -> String { ProjectConfigError.path(context.codingPath) }
        switch error {
        case .typeMismatch(let type, let context):
            self =
                context.codingPath.isEmpty
                ? .malformed("the document must be a JSON object")
                : .invalid(field: path(context), reason: "must be \(Self.describe(type))")
        case .valueNotFound(let type, let context):
            self = .invalid(field: path(context), reason: "must be \(Self.describe(type)), not null")
        case .keyNotFound(let key, let context):
            self = .invalid(field: Self.path(context.codingPath + [key]), reason: "is required")
        case .dataCorrupted(let context):
            self =
                context.codingPath.isEmpty
                ? .malformed("the body is not valid JSON")
                : .invalid(field: path(context), reason: context.debugDescription)
        @unknown default:
            self = .malformed("\(error)")
        }
    }

    static func path(_ keys: [any CodingKey]) -> String {
        var text = ""
        for key in keys {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return text
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: "an integer"
        case is String.Type: "a string"
        case is [String].Type: "an array of strings"
        case is [String: String].Type: "an object of strings"
        default: "an object"
        }
    }
}

/// Refuses object fields a decoder does not know, naming the first by its path.
private enum StrictKeys {
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// An integer field; a fraction, a string or an out-of-range number is an error naming it
    /// (Foundation's own error for those carries no field path).
    static func integer<Key: CodingKey>(_ container: KeyedDecodingContainer<Key>, _ key: Key) throws -> Int {
        guard container.contains(key) else {
            throw ProjectConfigError.invalid(
                field: ProjectConfigError.path(container.codingPath + [key]), reason: "is required")
        }
        guard let value = try? container.decode(Int.self, forKey: key) else {
            throw ProjectConfigError.invalid(
                field: ProjectConfigError.path(container.codingPath + [key]), reason: "must be an integer")
        }
        return value
    }

    static func check(_ decoder: any Decoder, allowed: [String]) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        let unknown = container.allKeys.map(\.stringValue).filter { !allowed.contains($0) }.sorted()
        if let first = unknown.first {
            throw ProjectConfigError.unknownField(
                ProjectConfigError.path(decoder.codingPath + [AnyKey(stringValue: first)]))
        }
    }
}

/// One ASCII byte of a name, classified (no Unicode lookalikes get through).
private struct NameByte {
    let value: UInt8
    var isLowercaseLetter: Bool { value >= 97 && value <= 122 }
    var isLetter: Bool { isLowercaseLetter || (value >= 65 && value <= 90) }
    var isDigit: Bool { value >= 48 && value <= 57 }
    static func == (byte: NameByte, character: Character) -> Bool { Character(UnicodeScalar(byte.value)) == character }
}

extension String {
    fileprivate func isASCIIName(
        maxLength: Int, first: (NameByte) -> Bool, rest: (NameByte) -> Bool
    ) -> Bool {
        let bytes = Array(utf8)
        guard let head = bytes.first, bytes.count <= maxLength, first(NameByte(value: head)) else { return false }
        return bytes.dropFirst().allSatisfy { rest(NameByte(value: $0)) }
    }
}
