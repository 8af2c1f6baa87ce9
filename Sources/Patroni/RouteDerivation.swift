import Node
import Raft

/// How a gateway turns the committed topology into its route. Pure.
public enum RouteDerivation {
    /// The committed topology's members mapped to this gateway's configured endpoints. A name the
    /// configuration does not know is left out — a primary it cannot address means no writes
    /// here, which is loud (the view and the logs say so) rather than a guess.
    public static func route(
        topology: PostgresTopology?, endpoints: [String: PostgresEndpoint], writable: Bool
    ) -> PostgresRoute {
        guard let topology else { return .unknown }
        let primary = topology.primary.flatMap { endpoints[$0.name] }
        return PostgresRoute(
            epoch: topology.epoch, primary: primary,
            replicas: topology.replicas.compactMap { endpoints[$0] },
            writable: writable && primary != nil)
    }

    /// Whether this node can vouch that the committed topology is current, so that writes may go
    /// to the primary it names: it passes the readiness rule (knows a leader, heard from it within
    /// the silence bound, applied close to its commit), and when it leads, it holds a quorum
    /// lease — a leader cut off from its followers keeps its role until CheckQuorum deposes it,
    /// and the watcher of a new leader elsewhere may meanwhile have committed another primary.
    public static func canVouch(_ readiness: Readiness) -> (Bool, String) {
        guard readiness.ready else { return (false, readiness.reason) }
        if readiness.status.role == .leader && !readiness.status.leaseValid {
            return (false, "leader without a quorum lease")
        }
        return (true, readiness.reason)
    }
}
