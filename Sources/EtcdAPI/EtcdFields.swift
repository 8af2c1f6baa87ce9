import Foundation

/// A parsed JSON value. Decoded with `JSONDecoder`, which keeps booleans and numbers apart and
/// reads integers exactly (int64s beyond 2^53 survive).
public enum JSONAny: Decodable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case double(Double)
    case string(String)
    case array([JSONAny])
    case object([String: JSONAny])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONAny].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONAny].self))
        }
    }
}

/// One JSON object of an etcd request, read the way grpc-gateway's jsonpb reads it: int64s as
/// strings or numbers, bytes as base64, enums by name or number, and fields it does not know
/// ignored (as etcd 3.4 ignores them).
public struct EtcdFields: Sendable {
    let values: [String: JSONAny]

    public init(_ values: [String: JSONAny]) { self.values = values }

    /// Parses a request body; an empty body is an empty request, as in grpc-gateway.
    public init(json bytes: [UInt8]) throws(EtcdError) {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            self.init([:])
            return
        }
        let parsed: JSONAny
        do {
            parsed = try JSONDecoder().decode(JSONAny.self, from: Data(bytes))
        } catch {
            throw .invalid("the request is not JSON")
        }
        guard case .object(let object) = parsed else { throw .invalid("the request must be a JSON object") }
        self.init(object)
    }

    private func value(_ name: String) -> JSONAny? {
        guard let value = values[name] else { return nil }
        if case .null = value { return nil }
        return value
    }

    public func has(_ name: String) -> Bool { value(name) != nil }

    /// A string field (etcd's user names and passwords are strings, not bytes); "" when unset.
    public func string(_ name: String) throws(EtcdError) -> String {
        switch value(name) {
        case nil: return ""
        case .string(let text): return text
        default: throw .invalid("\(name) must be a string")
        }
    }

    public func int64(_ name: String) throws(EtcdError) -> Int64 {
        switch value(name) {
        case nil: return 0
        case .integer(let number): return number
        case .string(let text):
            guard let number = Int64(text) else { throw .invalid("\(name): \"\(text)\" is not an int64") }
            return number
        case .double(let number):
            guard let exact = Int64(exactly: number) else { throw .invalid("\(name): \(number) is not an int64") }
            return exact
        default: throw .invalid("\(name) must be an int64 (a string or a number)")
        }
    }

    public func bool(_ name: String) throws(EtcdError) -> Bool {
        switch value(name) {
        case nil: return false
        case .bool(let flag): return flag
        default: throw .invalid("\(name) must be true or false")
        }
    }

    public func bytes(_ name: String) throws(EtcdError) -> [UInt8] {
        switch value(name) {
        case nil: return []
        case .string(let text):
            guard let decoded = Self.base64(text) else { throw .invalid("illegal base64 data in \(name)") }
            return decoded
        default: throw .invalid("\(name) must be a base64 string")
        }
    }

    /// An enum field by name or by number; `names[i]` is the name of value `i`.
    public func enumeration(_ name: String, _ names: [String]) throws(EtcdError) -> Int {
        switch value(name) {
        case nil: return 0
        case .string(let text):
            guard let index = names.firstIndex(of: text) else { throw .invalid("\(name): unknown value \"\(text)\"") }
            return index
        case .integer(let number):
            guard let index = Int(exactly: number), names.indices.contains(index) else {
                throw .invalid("\(name): unknown value \(number)")
            }
            return index
        default: throw .invalid("\(name) must be an enum name or number")
        }
    }

    public func object(_ name: String) throws(EtcdError) -> EtcdFields? {
        switch value(name) {
        case nil: return nil
        case .object(let object): return EtcdFields(object)
        default: throw .invalid("\(name) must be an object")
        }
    }

    public func objects(_ name: String) throws(EtcdError) -> [EtcdFields] {
        switch value(name) {
        case nil: return []
        case .array(let array):
            var result: [EtcdFields] = []
            for element in array {
                guard case .object(let object) = element else { throw .invalid("\(name) must hold objects") }
                result.append(EtcdFields(object))
            }
            return result
        default: throw .invalid("\(name) must be an array")
        }
    }

    /// Go's base64 for bytes: standard alphabet with padding, or the URL-safe one.
    static func base64(_ text: String) -> [UInt8]? {
        if let data = Data(base64Encoded: text) { return Array(data) }
        guard text.utf8.allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "/") }) else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.utf8.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard).map(Array.init)
    }
}
