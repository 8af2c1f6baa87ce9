import Foundation

/// Patroni's answer to `GET /patroni`: the member's own view of its PostgreSQL, in the shape
/// Patroni 3.0.2 writes (fields later releases add are ignored; fields it omits are optional).
public struct PatroniStatus: Sendable, Equatable, Decodable {
    /// `running`, `starting`, `stopped`, `restarting`, `unknown` (Patroni could not query it), …
    public var state: String
    public var role: PatroniRole
    public var timeline: Int?
    public var serverVersion: Int?
    public var wal: WAL?
    /// The primary's WAL senders (absent on replicas and on a primary nobody streams from).
    public var replication: [Replication]
    /// This replica is the synchronous standby (synchronous_mode).
    public var isSyncStandby: Bool
    /// This Patroni sees no leader lock in the DCS.
    public var clusterUnlocked: Bool
    public var pendingRestart: Bool
    public var databaseSystemIdentifier: String?
    public var software: Software?

    /// `xlog`: the write position on a primary, the receive/replay positions on a replica.
    public struct WAL: Sendable, Equatable, Decodable {
        public var location: LSN?
        public var receivedLocation: LSN?
        public var replayedLocation: LSN?
        public var paused: Bool?

        enum CodingKeys: String, CodingKey {
            case location, paused
            case receivedLocation = "received_location"
            case replayedLocation = "replayed_location"
        }
    }

    public struct Replication: Sendable, Equatable, Decodable {
        public var applicationName: String
        public var state: String
        public var syncState: String

        enum CodingKeys: String, CodingKey {
            case state
            case applicationName = "application_name"
            case syncState = "sync_state"
        }
    }

    public struct Software: Sendable, Equatable, Decodable {
        public var version: String
        public var scope: String
    }

    enum CodingKeys: String, CodingKey {
        case state, role, timeline, replication
        case serverVersion = "server_version"
        case wal = "xlog"
        case isSyncStandby = "sync_standby"
        case clusterUnlocked = "cluster_unlocked"
        case pendingRestart = "pending_restart"
        case databaseSystemIdentifier = "database_system_identifier"
        case software = "patroni"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        state = try container.decode(String.self, forKey: .state)
        role = try container.decode(PatroniRole.self, forKey: .role)
        timeline = try container.decodeIfPresent(Int.self, forKey: .timeline)
        serverVersion = try container.decodeIfPresent(Int.self, forKey: .serverVersion)
        wal = try container.decodeIfPresent(WAL.self, forKey: .wal)
        replication = try container.decodeIfPresent([Replication].self, forKey: .replication) ?? []
        isSyncStandby = try container.decodeIfPresent(Bool.self, forKey: .isSyncStandby) ?? false
        clusterUnlocked = try container.decodeIfPresent(Bool.self, forKey: .clusterUnlocked) ?? false
        pendingRestart = try container.decodeIfPresent(Bool.self, forKey: .pendingRestart) ?? false
        databaseSystemIdentifier = try container.decodeIfPresent(String.self, forKey: .databaseSystemIdentifier)
        software = try container.decodeIfPresent(Software.self, forKey: .software)
    }

    /// Decodes a `/patroni` body; a body that is not such an answer throws
    /// `PatroniAnswerError` naming the endpoint and what was wrong.
    public static func decode(_ body: Data) throws(PatroniAnswerError) -> PatroniStatus {
        do {
            return try JSONDecoder().decode(PatroniStatus.self, from: body)
        } catch {
            throw PatroniAnswerError(endpoint: "/patroni", error: error)
        }
    }
}

/// A Patroni REST answer that could not be understood. The watcher treats the member's API as
/// not answering (and shows the message in its view) rather than guessing.
public struct PatroniAnswerError: Error, Sendable, Equatable, CustomStringConvertible {
    public var endpoint: String
    public var message: String

    public init(endpoint: String, message: String) {
        self.endpoint = endpoint
        self.message = message
    }

    init(endpoint: String, error: any Error) {
        let message: String
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            message = "missing field \(Self.path(context.codingPath + [key]))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            message = "wrong type at \(Self.path(context.codingPath)): \(context.debugDescription)"
        case DecodingError.dataCorrupted(let context):
            message = "not valid JSON at \(Self.path(context.codingPath)): \(context.debugDescription)"
        default:
            message = "\(error)"
        }
        self.init(endpoint: endpoint, message: message)
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.isEmpty
            ? "the top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    public var description: String { "Patroni \(endpoint) answer: \(message)" }
}
