import Foundation

/// JSON as etcd's grpc-gateway writes it: fields in proto order, int64s as strings, bytes as
/// base64, and fields holding their zero value left out (`EmitDefaults` off).
public indirect enum EtcdJSON: Sendable, Hashable {
    case string(String)
    case integer(Int64)
    case bool(Bool)
    case array([EtcdJSON])
    case object([(String, EtcdJSON)])

    public static func == (lhs: EtcdJSON, rhs: EtcdJSON) -> Bool { lhs.text == rhs.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }

    /// The encoded text, fields in the order given.
    public var text: String {
        var out = ""
        write(to: &out)
        return out
    }

    public var bytes: [UInt8] { Array(text.utf8) }

    private func write(to out: inout String) {
        switch self {
        case .string(let value): Self.quote(value, to: &out)
        case .integer(let value): out += "\(value)"
        case .bool(let value): out += value ? "true" : "false"
        case .array(let values):
            out += "["
            for (index, value) in values.enumerated() {
                if index > 0 { out += "," }
                value.write(to: &out)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (index, (name, value)) in fields.enumerated() {
                if index > 0 { out += "," }
                Self.quote(name, to: &out)
                out += ":"
                value.write(to: &out)
            }
            out += "}"
        }
    }

    private static func quote(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

/// Builds an object the grpc-gateway way: zero values are left out.
public struct EtcdObject: Sendable {
    public private(set) var fields: [(String, EtcdJSON)] = []

    public init() {}

    /// An int64 field, as a string; left out when 0.
    public mutating func number(_ name: String, _ value: Int64) {
        if value != 0 { fields.append((name, .string("\(value)"))) }
    }

    /// A uint64 field (etcd's ids and raft term are uint64), as a string; left out when 0.
    public mutating func number(_ name: String, _ value: UInt64) {
        if value != 0 { fields.append((name, .string("\(value)"))) }
    }

    /// A bytes field, as base64; left out when empty.
    public mutating func bytes(_ name: String, _ value: [UInt8]) {
        if !value.isEmpty { fields.append((name, .string(Data(value).base64EncodedString()))) }
    }

    public mutating func bool(_ name: String, _ value: Bool) {
        if value { fields.append((name, .bool(true))) }
    }

    public mutating func string(_ name: String, _ value: String) {
        if !value.isEmpty { fields.append((name, .string(value))) }
    }

    /// A message field: left out when nil (an empty message is written as `{}`).
    public mutating func object(_ name: String, _ value: EtcdObject?) {
        if let value { fields.append((name, value.json)) }
    }

    /// A repeated field: left out when empty.
    public mutating func array(_ name: String, _ values: [EtcdJSON]) {
        if !values.isEmpty { fields.append((name, .array(values))) }
    }

    public mutating func raw(_ name: String, _ value: EtcdJSON) {
        fields.append((name, value))
    }

    public var json: EtcdJSON { .object(fields) }
}
