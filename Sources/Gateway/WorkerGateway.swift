import CoreMetrics
import Logging
import Membership
import MembershipNIO
import Node
import Workers

/// What a node runs for its workers: the registry view (from the change feed), the proxy with its
/// health checks, and — registered with the node's leader services — the SWIM→registry mirror.
public struct WorkerGateway: Sendable {
    public let registry: WorkerRegistry
    public let proxy: WorkerProxy
    /// Services `/w` serves without a tenant API key; every other service needs one.
    public let publicServices: Set<String>
    /// How clients reach this node's API, for `X-Forwarded-Proto`.
    public let clientScheme: String

    public static func start(
        node: RaftNode, membership: MembershipService?, settings: WorkerProxySettings = WorkerProxySettings(),
        publicServices: Set<String> = [], clientScheme: String = "http",
        metricsFactory: any MetricsFactory = MetricsSystem.factory, logger: Logger = Logger(label: "raftgate.workers")
    ) async -> WorkerGateway {
        let registry = await WorkerRegistry.start(node: node)
        var settings = settings
        settings.rotationSeed = node.id
        let proxy = WorkerProxy(registry: registry, settings: settings, metricsFactory: metricsFactory, logger: logger)
        if let membership {
            await node.leaderServices.add(
                WorkerMirror(node: node, members: { await Self.swimWorkers(membership) }, logger: logger))
        }
        return WorkerGateway(
            registry: registry, proxy: proxy, publicServices: publicServices, clientScheme: clientScheme)
    }

    public func stop() async {
        registry.stop()
        await proxy.shutdown()
    }

    /// SWIM members with role `worker` whose metadata names a service (tag `service`).
    static func swimWorkers(_ membership: MembershipService) async -> [SWIMWorker] {
        await membership.members.compactMap { member -> SWIMWorker? in
            guard let metadata = member.metadata, metadata.role == .worker,
                let service = metadata.tags["service"]
            else { return nil }
            var tags = metadata.tags
            tags["service"] = nil
            let status: SWIMWorker.Status =
                switch member.status.kind {
                case .alive: .alive
                case .suspect: .suspect
                case .dead: .dead
                case .left: .left
                }
            return SWIMWorker(
                memberID: member.id.node, service: service, address: metadata.httpAddress, tags: tags, status: status)
        }
    }
}
