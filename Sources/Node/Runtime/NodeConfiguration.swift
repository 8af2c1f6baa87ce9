import CoreMetrics
import Raft

/// Everything a node needs to start.
public struct NodeConfiguration: Sendable {
    public var id: NodeID
    /// Holds `wal/` and `snapshots/`.
    public var dataDirectory: String
    public var raftHost: String
    public var raftPort: Int
    /// Every voter of a brand-new cluster (used only when the data directory is empty).
    public var initialVoters: [NodeID]
    /// Learners of that configuration (a node joining a running cluster starts from the leader's
    /// base configuration, which may hold some).
    public var initialLearners: [NodeID] = []
    /// false: a data directory without a snapshot is an error at start, not a new cluster made of
    /// `initialVoters`. A node that joined a running cluster sets it on every later start, since
    /// its flags do not describe the cluster it belongs to.
    public var mayBootstrap = true
    /// Where to reach each peer's Raft port.
    public var peers: [NodeID: (host: String, port: Int)]
    /// The cluster's shared secret: the Raft peer port admits only nodes that hold it.
    public var clusterKey: ClusterKey
    /// Peer mutual TLS (certificates of the cluster CA), on top of the cluster key; nil: plain TCP.
    public var peerTLS: PeerTLS?
    /// Real time per Raft tick; with the default 10-tick election timeout, 50 ms gives elections
    /// after 0.5–1 s of silence.
    public var tickInterval: Duration = .milliseconds(50)
    public var raftOptions: RaftOptions
    /// Take a snapshot and compact the log once this many entries were applied since the last one.
    public var compactionThreshold: UInt64 = 10_000
    /// …or once the entries applied since the last one carry this many bytes.
    public var compactionBytes: UInt64 = 64 << 20
    /// Largest encoded command accepted: well below a peer frame (16 MiB) and a WAL record (64 MiB).
    public var maxCommandBytes = 4 << 20
    /// The peer port's connection cap, idle timeout and incoming snapshot bound.
    public var peerLimits = PeerConnectionLimits()
    /// The leader's admission bounds: store quota, uncommitted bytes, pending writes.
    public var writeLimits = WriteLimits()
    /// A write not applied within this long is reported as unknown.
    public var writeTimeout: Duration = .seconds(5)
    /// How much change history a brand-new store keeps for watches (a store restored from a
    /// snapshot keeps the limits it was created with). Set it alike on every node, like the tick:
    /// nodes with other limits compact their history at other revisions.
    public var watchHistory = ChangeHistory.Limits()
    /// How often the leader checks lease deadlines: a lease ends at most this long after its TTL.
    public var leaseCheckInterval: Duration = .milliseconds(50)
    /// Where a storage failure is remembered until the machine reboots (see `WriteFailureMarker`);
    /// tests point it at a directory of their own.
    package var writeFailureMarker: WriteFailureMarker {
        WriteFailureMarker(dataDirectory: dataDirectory, root: writeFailureMarkerRoot)
    }
    /// The tmpfs directory holding that marker.
    public var writeFailureMarkerRoot = "/dev/shm"
    /// Tests only: while a file exists at this path, every fsync of the WAL fails with EIO
    /// (`FaultInjectingFileSystem`). nil (the default) uses the plain file system.
    public var faultTrigger: String?
    /// Where the node's metrics go; the process-wide `MetricsSystem` factory unless a host (or a
    /// test running several nodes in one process) gives each node its own.
    public var metricsFactory: any MetricsFactory = MetricsSystem.factory

    public init(
        id: NodeID, dataDirectory: String, raftHost: String, raftPort: Int, initialVoters: [NodeID],
        peers: [NodeID: (host: String, port: Int)], clusterKey: ClusterKey
    ) {
        self.clusterKey = clusterKey
        self.id = id
        self.dataDirectory = dataDirectory
        self.raftHost = raftHost
        self.raftPort = raftPort
        self.initialVoters = initialVoters
        self.peers = peers
        raftOptions = RaftOptions(id: id)
        raftOptions.randomSeed = UInt64.random(in: 1...UInt64.max)
    }
}

/// What became of a write.
public enum WriteOutcome: Sendable, Hashable {
    /// Committed and applied; the store's answer.
    case applied(StoreResult, index: UInt64)
    /// Not the leader: nothing was proposed. Retry at `leader`.
    case notLeader(leader: NodeID?)
    /// Certainly not applied (another entry took its place, or the core refused it).
    case notApplied(String)
    /// Refused by the leader's admission bounds before it was proposed: nothing was written.
    case refused(WriteRefusal)
    /// Proposed, but its fate is not known (leadership lost, timeout): it may still apply.
    case unknown(String)
}

/// How a read is served (DESIGN.md `consistency=`).
public enum ReadConsistency: Sendable, Hashable {
    /// ReadIndex confirmed by a heartbeat quorum (or the leader lease when it holds).
    case linearizable
    /// The leader lease when it holds, else ReadIndex.
    case lease
    /// This node's state as it is. With a bound, refused when this node has not heard from a
    /// leader for longer than that (its state may be further behind).
    case stale(maxStaleness: Duration?)
}

/// What became of a read.
public enum ReadOutcome: Sendable, Hashable {
    case value(KeyValueStore.Record?, appliedIndex: UInt64)
    /// No leader could confirm the read, or a stale read's bound could not be met: retry.
    case unavailable
}

/// The store as this node has applied it, in numbers (`RaftNode.storeStatus`).
public struct StoreStatus: Sendable, Hashable {
    public var revision: UInt64
    /// Watches can resume from any revision at or above this (`ChangeHistory`).
    public var compactRevision: UInt64
    public var leases: Int
    public var keys: Int
    /// Key and value bytes held.
    public var dataBytes: UInt64 = 0
    /// What the store quota measures (`KeyValueStore.quotaBytesUsed`).
    public var quotaBytesUsed: UInt64 = 0
}
