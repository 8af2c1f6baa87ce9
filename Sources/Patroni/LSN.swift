/// A position in PostgreSQL's write-ahead log: a byte offset that PostgreSQL prints as two
/// hexadecimal halves ("16/B374D848") and Patroni's REST API reports as a plain integer.
public struct LSN: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var offset: UInt64

    public init(_ offset: UInt64) { self.offset = offset }

    /// Parses PostgreSQL's text form; nil for anything else, so a malformed probe answer is
    /// reported as such instead of becoming a wrong lag.
    public init?(_ text: some StringProtocol) {
        let halves = text.split(separator: "/", omittingEmptySubsequences: false)
        guard halves.count == 2, (1...8).contains(halves[0].count), (1...8).contains(halves[1].count),
            let high = UInt64(halves[0], radix: 16), let low = UInt64(halves[1], radix: 16)
        else { return nil }
        offset = high << 32 | low
    }

    public var description: String {
        String(offset >> 32, radix: 16, uppercase: true) + "/"
            + String(offset & 0xFFFF_FFFF, radix: 16, uppercase: true)
    }

    /// The bytes of WAL from `other` up to this position; zero when `other` is already past it (a
    /// replica's replay position read a moment after the primary's write position).
    public func bytes(after other: LSN) -> UInt64 { offset > other.offset ? offset - other.offset : 0 }

    public static func < (lhs: LSN, rhs: LSN) -> Bool { lhs.offset < rhs.offset }

    public init(from decoder: any Decoder) throws {
        offset = try decoder.singleValueContainer().decode(UInt64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(offset)
    }
}
