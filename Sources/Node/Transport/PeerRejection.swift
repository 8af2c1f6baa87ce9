import Raft

/// Why an inbound peer connection was cut off. Each is counted (`TransportStatistics`, and
/// `raftgate_peer_rejected_total{reason}`), and the connection is closed: nothing it sent after
/// the offending bytes reaches Raft.
public enum PeerRejection: Error, Hashable {
    /// Before authentication: garbage, another protocol version, a wrong key, or too slow.
    case handshake(PeerHandshakeError)
    /// After authentication, a frame that does not decode.
    case frame(PeerFrameError)
    /// After authentication, a frame whose sender is not the authenticated dialer, or whose
    /// recipient is not this node: a frame's `from` is never trusted on its own.
    case misaddressed(from: NodeID, to: NodeID, authenticated: NodeID)
    /// With peer mutual TLS on: the TLS handshake failed (plain bytes, no client certificate, or
    /// one not signed by the cluster CA), before the cluster-key handshake could begin.
    case tls

    /// The metric's `reason` label: a small fixed set, so hostile input cannot create series.
    var reason: String {
        switch self {
        case .handshake(.timedOut): "handshake_timeout"
        case .handshake: "handshake"
        case .frame: "frame"
        case .misaddressed: "misaddressed"
        case .tls: "tls"
        }
    }
}

extension PeerEnvelope {
    /// Who the frame says sent it; checked against the authenticated dialer before delivery.
    var source: NodeID {
        switch self {
        case .raft(let message): message.from
        case .forwardedWrite(let write): write.from
        case .forwardedResult(let result): result.from
        case .leaseQuery(let query): query.from
        case .leaseQueryResult(let result): result.from
        }
    }
}
