import Foundation
import HTTPTypes
import Hummingbird
import MembershipNIO
import Node
import Prometheus

/// `GET /cluster` (JSON) and `GET /metrics` (Prometheus text format).
struct AdminRoutes: Sendable {
    let node: RaftNode
    /// Where the process's metrics are registered; nil serves a 404 for `/metrics`.
    let metricsRegistry: PrometheusCollectorRegistry?
    let membership: MembershipService?
    let configCache: ConfigCache?
    let watchMetrics: WatchMetrics

    func register(on router: Router<BasicRequestContext>) {
        router.get("cluster") { _, _ in try await self.cluster() }
        if let metricsRegistry {
            router.get("metrics") { _, _ in
                Response(
                    status: .ok,
                    headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(bytes: metricsRegistry.emitToBuffer())))
            }
        }
    }

    func cluster() async throws -> Response {
        var view = ClusterView(
            status: await node.status, peers: await node.peerEndpoints, swim: await membership?.members)
        let store = await node.storeStatus
        view.appliedRevision = store.revision
        view.compactRevision = store.compactRevision
        view.leases = store.leases
        view.configRevision = configCache?.configRevision
        view.watchers = watchMetrics.openWatchers
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(view))))
    }
}
