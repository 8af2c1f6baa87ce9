import Foundation

/// Patroni's answer to `GET /cluster`: the cluster as that member reads it from the DCS — who
/// holds the leader lock, every registered member and its lag. Patroni 3.0.2's shape.
public struct PatroniCluster: Sendable, Equatable, Decodable {
    public var members: [Member]
    /// Patroni's maintenance mode (`patronictl pause`): it will not fail over.
    public var isPaused: Bool

    public struct Member: Sendable, Equatable, Decodable {
        public var name: String
        /// `leader`, `standby_leader`, `sync_standby`, `replica` in 3.0.2 (later: `quorum_standby`).
        public var role: String
        public var state: String
        public var apiURL: String?
        public var host: String?
        public var port: Int?
        /// The timeline the member last wrote to the DCS — it lags a promotion by a loop or so,
        /// so the decision takes timelines from `/patroni` and the SQL probe instead.
        public var timeline: Int?
        /// Bytes behind the leader's last known position; nil for the leader itself.
        public var lag: Lag?

        public enum Lag: Sendable, Equatable, Decodable {
            case bytes(UInt64)
            /// Patroni has no position for this member.
            case unknown

            public init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let bytes = try? container.decode(Int64.self) {
                    self = .bytes(UInt64(max(bytes, 0)))
                } else if try container.decode(String.self) == "unknown" {
                    self = .unknown
                } else {
                    throw DecodingError.dataCorruptedError(
                        in: container, debugDescription: "lag is neither a number nor \"unknown\"")
                }
            }
        }

        /// The member named as holding the leader lock.
        public var holdsLeaderLock: Bool { role == "leader" || role == "standby_leader" }

        enum CodingKeys: String, CodingKey {
            case name, role, state, host, port, timeline, lag
            case apiURL = "api_url"
        }
    }

    enum CodingKeys: String, CodingKey {
        case members
        case isPaused = "pause"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        members = try container.decode([Member].self, forKey: .members)
        isPaused = try container.decodeIfPresent(Bool.self, forKey: .isPaused) ?? false
    }

    /// The holder of the leader lock in this view; nil while the cluster is unlocked.
    public var leader: String? { members.first(where: \.holdsLeaderLock)?.name }

    public static func decode(_ body: Data) throws(PatroniAnswerError) -> PatroniCluster {
        do {
            return try JSONDecoder().decode(PatroniCluster.self, from: body)
        } catch {
            throw PatroniAnswerError(endpoint: "/cluster", error: error)
        }
    }
}
