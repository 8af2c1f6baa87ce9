import CoreMetrics

/// The watcher's and the route source's numbers for `/metrics`. Members are labels: they come
/// from the gateway's own configuration, so their number is bounded.
public struct TopologyMetrics: Sendable {
    let factory: any MetricsFactory

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    /// A polling round finished (leader only).
    func round() { Counter(label: "raftgate_pg_watch_rounds_total", factory: factory).increment() }

    /// A Patroni REST request that did not answer with something understood.
    func apiFailure(member: String, endpoint: String) {
        Counter(
            label: "raftgate_pg_patroni_api_failures_total",
            dimensions: [("member", member), ("endpoint", endpoint)], factory: factory
        ).increment()
    }

    /// A libpq probe that failed (connect, query or an answer not understood).
    func probeFailure(member: String) {
        Counter(label: "raftgate_pg_probe_failures_total", dimensions: [("member", member)], factory: factory)
            .increment()
    }

    /// The watcher committed a new topology (leader only).
    func committed() { Counter(label: "raftgate_pg_topology_commits_total", factory: factory).increment() }

    /// This node's route changed to a new committed topology.
    func topologyApplied(epoch: UInt64) {
        Counter(label: "raftgate_pg_topology_changes_total", factory: factory).increment()
        Gauge(label: "raftgate_pg_topology_epoch", factory: factory).record(Int64(clamping: epoch))
    }

    func writable(_ writable: Bool) {
        Gauge(label: "raftgate_pg_route_writable", factory: factory).record(writable ? 1 : 0)
    }
}
