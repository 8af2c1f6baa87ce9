import Foundation

/// A cache request checked before anything is sent to Redis, pure: keys are namespaced by tenant
/// (`raftgate:cache:<tenant>:<key>`; tenant names hold no `:`, so two tenants never share a key),
/// and bad input is refused with the reason.
public struct CacheRequest: Sendable, Hashable {
    public struct Limits: Sendable, Hashable {
        public var maxKeyBytes = 512
        public var maxValueBytes = 512 * 1024
        /// The longest TTL, 30 days.
        public var maxTTLSeconds = 30 * 24 * 3600

        public init() {}
    }

    public enum Problem: Error, Sendable, Hashable {
        case emptyKey
        /// The path's key is not valid percent-encoded UTF-8 (`%FF`): refused rather than stored
        /// under its literal text, which `%25FF` also names.
        case badKeyEncoding
        /// A tenant name that is empty or holds `:` would let tenants' key spaces overlap
        /// (`a` + `b:k` and `a:b` + `k`); authentication admits no such name, this keeps it so.
        case badTenant
        case keyTooLong(limit: Int)
        case badTTL(String)
        case valueTooLarge(limit: Int)

        public var code: String {
            switch self {
            case .emptyKey, .badKeyEncoding: "bad_key"
            case .badTenant: "bad_tenant"
            case .keyTooLong: "key_too_long"
            case .badTTL: "bad_ttl"
            case .valueTooLarge: "too_large"
            }
        }

        public var message: String {
            switch self {
            case .emptyKey: "the cache key is empty"
            case .badKeyEncoding: "the cache key is not valid percent-encoded UTF-8"
            case .badTenant: "the tenant name must be non-empty and hold no ':'"
            case .keyTooLong(let limit): "the cache key exceeds \(limit) bytes"
            case .badTTL(let why): why
            case .valueTooLarge(let limit): "the value exceeds \(limit) bytes"
            }
        }
    }

    public var tenant: String
    public var key: String

    public init(tenant: String, key: String, limits: Limits) throws(Problem) {
        guard !tenant.isEmpty, !tenant.contains(":") else { throw .badTenant }
        guard !key.isEmpty else { throw .emptyKey }
        guard key.utf8.count <= limits.maxKeyBytes else { throw .keyTooLong(limit: limits.maxKeyBytes) }
        self.tenant = tenant
        self.key = key
    }

    /// The key as it comes in the path, percent-encoded.
    public init(tenant: String, encodedKey: String, limits: Limits) throws(Problem) {
        guard let key = encodedKey.removingPercentEncoding else { throw .badKeyEncoding }
        try self.init(tenant: tenant, key: key, limits: limits)
    }

    public var redisKey: [UInt8] { Array("raftgate:cache:\(tenant):".utf8) + Array(key.utf8) }

    /// `?ttl_s=`: absent means no expiry; otherwise a whole number of seconds from 1 to the limit.
    public static func ttl(_ text: String?, limits: Limits) throws(Problem) -> Int? {
        guard let text else { return nil }
        guard let seconds = Int(text) else { throw .badTTL("ttl_s must be a whole number of seconds, got '\(text)'") }
        guard (1...limits.maxTTLSeconds).contains(seconds) else {
            throw .badTTL("ttl_s must be from 1 to \(limits.maxTTLSeconds) seconds, got \(seconds)")
        }
        return seconds
    }

    public static func checkValue(_ count: Int, limits: Limits) throws(Problem) {
        guard count <= limits.maxValueBytes else { throw .valueTooLarge(limit: limits.maxValueBytes) }
    }

    public func get() -> [[UInt8]] { [Array("GET".utf8), redisKey] }

    public func set(_ value: [UInt8], ttlSeconds: Int?) -> [[UInt8]] {
        var command = [Array("SET".utf8), redisKey, value]
        if let ttlSeconds { command += [Array("EX".utf8), Array("\(ttlSeconds)".utf8)] }
        return command
    }

    public func delete() -> [[UInt8]] { [Array("DEL".utf8), redisKey] }
}
