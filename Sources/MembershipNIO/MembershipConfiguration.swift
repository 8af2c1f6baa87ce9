import CoreMetrics
import Logging
import Membership

/// Everything a node's membership service needs.
public struct MembershipConfiguration: Sendable {
    /// This member's id (a gateway uses its Raft node id).
    public var id: UInt64
    /// The UDP (and push-pull TCP) address to bind and to be reached at.
    public var host: String
    public var port: Int
    public var metadata: MemberMetadata?
    /// `host:port` SWIM addresses to join through; this node's own address is ignored.
    public var seeds: [String]
    /// The shared secret every datagram and push-pull frame is authenticated with (keys for each
    /// use are derived from it); at least `minimumClusterKeyBytes`.
    public var clusterKey: [UInt8]
    /// How far a packet's timestamp may be from this node's wall clock, either way: packets outside
    /// it are refused, and packets inside it are admitted once (`ReplayWindow`). Members' clocks
    /// must agree to well within it. At least one second.
    public var replayWindow: Duration = .seconds(30)
    public var settings = SWIMSettings()
    /// Real time per SWIM tick; `SWIMSettings` is tuned for 50 ms.
    public var tickInterval: Duration = .milliseconds(50)
    public var metricsFactory: any MetricsFactory = MetricsSystem.factory
    public var logger = Logger(label: "raftgate.membership")

    public static let minimumClusterKeyBytes = 16

    public init(id: UInt64, host: String, port: Int, metadata: MemberMetadata?, seeds: [String], clusterKey: [UInt8]) {
        self.id = id
        self.host = host
        self.port = port
        self.metadata = metadata
        self.seeds = seeds
        self.clusterKey = clusterKey
    }
}

public enum MembershipConfigurationError: Error, Hashable, CustomStringConvertible {
    case clusterKeyTooShort(Int)
    case replayWindowTooShort(Duration)

    public var description: String {
        switch self {
        case .clusterKeyTooShort(let bytes):
            "clusterKey must be at least \(MembershipConfiguration.minimumClusterKeyBytes) bytes, got \(bytes)"
        case .replayWindowTooShort(let window): "replayWindow must be at least one second, got \(window)"
        }
    }
}
