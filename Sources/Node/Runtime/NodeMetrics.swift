import CoreMetrics
import Raft

/// The node's metrics, made through the factory the host chose (`NodeConfiguration.metricsFactory`),
/// so an in-process cluster can give each node its own registry. Names follow Prometheus
/// conventions; the exporter turns timers into histograms in seconds.
struct NodeMetrics: Sendable {
    let term: Gauge
    let isLeader: Gauge
    let leaderChanges: Counter
    let commitIndex: Gauge
    let appliedIndex: Gauge
    let proposals: Counter
    let proposalsRefused: Counter
    let persistedEntries: Counter
    let fsyncDuration: CoreMetrics.Timer
    let snapshotsInstalled: Counter
    let storeRevision: Gauge
    let compactRevision: Gauge
    let leasesLive: Gauge
    let leasesExpired: Counter

    init(factory: any MetricsFactory) {
        term = Gauge(label: "raftgate_raft_term", factory: factory)
        isLeader = Gauge(label: "raftgate_raft_is_leader", factory: factory)
        leaderChanges = Counter(label: "raftgate_raft_leader_changes_total", factory: factory)
        commitIndex = Gauge(label: "raftgate_raft_commit_index", factory: factory)
        appliedIndex = Gauge(label: "raftgate_raft_applied_index", factory: factory)
        proposals = Counter(label: "raftgate_raft_proposals_total", factory: factory)
        proposalsRefused = Counter(label: "raftgate_raft_proposals_refused_total", factory: factory)
        persistedEntries = Counter(label: "raftgate_wal_entries_persisted_total", factory: factory)
        fsyncDuration = CoreMetrics.Timer(label: "raftgate_wal_fsync_duration_seconds", factory: factory)
        snapshotsInstalled = Counter(label: "raftgate_raft_snapshots_installed_total", factory: factory)
        storeRevision = Gauge(label: "raftgate_store_revision", factory: factory)
        compactRevision = Gauge(label: "raftgate_store_compact_revision", factory: factory)
        leasesLive = Gauge(label: "raftgate_leases_live", factory: factory)
        leasesExpired = Counter(label: "raftgate_leases_expired_total", factory: factory)
    }

    /// Brings the gauges up to the core's state after a Ready was handled.
    func record(_ status: (term: UInt64, role: Role, commit: UInt64, applied: UInt64)) {
        term.record(Int64(clamping: status.term))
        isLeader.record(status.role == .leader ? 1 : 0)
        commitIndex.record(Int64(clamping: status.commit))
        appliedIndex.record(Int64(clamping: status.applied))
    }

    /// The store's numbers after a Ready was applied.
    func record(_ store: StoreStatus) {
        storeRevision.record(Int64(clamping: store.revision))
        compactRevision.record(Int64(clamping: store.compactRevision))
        leasesLive.record(Int64(store.leases))
    }
}

extension Duration {
    /// Whole nanoseconds, for metrics that take them.
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
