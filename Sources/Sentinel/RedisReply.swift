/// One RESP2 reply as a value, copied out of hiredis's reply tree so nothing C-owned escapes the
/// thread that read it.
public enum RedisReply: Sendable, Hashable {
    case string([UInt8])
    case status(String)
    case integer(Int64)
    case array([RedisReply])
    case null
    /// The server refused the command (`-ERR …`, `-READONLY …`, `-NOSCRIPT …`).
    case error(String)

    /// A bulk or status string as text.
    public var text: String? {
        switch self {
        case .string(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let text): text
        default: nil
        }
    }

    public var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .string, .status: text.flatMap { Int64($0) }
        default: nil
        }
    }

    public var elements: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// A flat `[field, value, field, value, …]` array (what `SENTINEL master` and `SENTINEL
    /// replicas` answer per instance) as a dictionary.
    public var fields: [String: String]? {
        guard let elements, elements.count % 2 == 0 else { return nil }
        var fields: [String: String] = [:]
        for index in stride(from: 0, to: elements.count, by: 2) {
            guard let name = elements[index].text, let value = elements[index + 1].text else { return nil }
            fields[name] = value
        }
        return fields
    }
}
