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
    let snapshotChunksRefused: Counter
    let storeRevision: Gauge
    let compactRevision: Gauge
    let leasesLive: Gauge
    let leasesExpired: Counter
    let storeBytes: Gauge
    let quotaBytes: Gauge
    /// 1 while puts are refused for the store quota (etcd's NOSPACE alarm).
    let quotaAlarm: Gauge
    let uncommittedBytes: Gauge
    private let refusedQuota: Counter
    private let refusedUncommitted: Counter
    private let refusedPending: Counter

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
        snapshotChunksRefused = Counter(label: "raftgate_raft_snapshot_chunks_refused_total", factory: factory)
        storeRevision = Gauge(label: "raftgate_store_revision", factory: factory)
        compactRevision = Gauge(label: "raftgate_store_compact_revision", factory: factory)
        leasesLive = Gauge(label: "raftgate_leases_live", factory: factory)
        leasesExpired = Counter(label: "raftgate_leases_expired_total", factory: factory)
        storeBytes = Gauge(label: "raftgate_store_bytes", factory: factory)
        quotaBytes = Gauge(label: "raftgate_store_quota_bytes", factory: factory)
        quotaAlarm = Gauge(label: "raftgate_store_quota_alarm", factory: factory)
        uncommittedBytes = Gauge(label: "raftgate_raft_uncommitted_bytes", factory: factory)
        let refused = "raftgate_writes_refused_total"
        refusedQuota = Counter(label: refused, dimensions: [("reason", "quota")], factory: factory)
        refusedUncommitted = Counter(label: refused, dimensions: [("reason", "uncommitted_bytes")], factory: factory)
        refusedPending = Counter(label: refused, dimensions: [("reason", "pending_writes")], factory: factory)
    }

    func writesRefused(_ refusal: WriteRefusal) -> Counter {
        switch refusal {
        case .quotaExceeded: refusedQuota
        case .uncommittedBytes: refusedUncommitted
        case .pendingWrites: refusedPending
        }
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
        storeBytes.record(Int64(clamping: store.dataBytes))
    }
}

extension Duration {
    /// Whole nanoseconds, for metrics that take them.
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
