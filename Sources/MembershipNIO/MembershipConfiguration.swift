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
    /// The shared secret every datagram and push-pull frame is authenticated with.
    public var clusterKey: [UInt8]
    public var settings = SWIMSettings()
    /// Real time per SWIM tick; `SWIMSettings` is tuned for 50 ms.
    public var tickInterval: Duration = .milliseconds(50)
    public var metricsFactory: any MetricsFactory = MetricsSystem.factory
    public var logger = Logger(label: "raftgate.membership")

    public init(id: UInt64, host: String, port: Int, metadata: MemberMetadata?, seeds: [String], clusterKey: [UInt8]) {
        self.id = id
        self.host = host
        self.port = port
        self.metadata = metadata
        self.seeds = seeds
        self.clusterKey = clusterKey
    }
}
