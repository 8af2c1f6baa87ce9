/// A member's role as Patroni's `GET /patroni` reports it. Patroni 3.0.2 (Debian 12) says
/// `master` where later releases say `primary`; both mean the read-write member.
public enum PatroniRole: Sendable, Hashable, Codable, CustomStringConvertible {
    case primary
    case replica
    /// The leader of a standby cluster: holds the lock but replays from elsewhere, read-only.
    case standbyLeader
    /// Anything else Patroni may say (`demoted`, `uninitialized`, …), kept verbatim.
    case other(String)

    public init(name: String) {
        switch name {
        case "master", "primary": self = .primary
        case "replica": self = .replica
        case "standby_leader": self = .standbyLeader
        default: self = .other(name)
        }
    }

    /// The name in today's Patroni vocabulary (`primary`, never `master`).
    public var description: String {
        switch self {
        case .primary: "primary"
        case .replica: "replica"
        case .standbyLeader: "standby_leader"
        case .other(let name): name
        }
    }

    public init(from decoder: any Decoder) throws {
        self.init(name: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
