import CoreMetrics
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Raft

/// Counters the transport keeps for metrics and tests.
public struct TransportStatistics: Sendable, Hashable {
    /// Authenticated inbound connections closed for a frame that did not decode.
    public var framesRejected = 0
    public var messagesDropped = 0
    public var connections = 0
    public var connectAttempts = 0
    /// Inbound connections whose dialer proved it holds the cluster key.
    public var handshakesAccepted = 0
    /// Inbound connections refused before authentication: garbage, a wrong key, another protocol
    /// version, a dialer aiming at another node.
    public var handshakesRejected = 0
    /// Inbound connections closed for not completing the handshake in time.
    public var handshakeTimeouts = 0
    /// Authenticated inbound connections closed for a frame claiming another sender or recipient.
    public var framesMisaddressed = 0
    /// Outbound handshakes that failed: the peer holds another key, speaks another protocol
    /// version, or did not answer in time.
    public var handshakesFailed = 0
    /// Inbound connections refused by peer mutual TLS (see `PeerTLS`).
    public var tlsRejected = 0
    /// Inbound connections closed once authenticated: `PeerConnectionLimits.maxInboundConnections`
    /// authenticated ones were open.
    public var connectionsRefused = 0
    /// Inbound connections still in their handshake closed to make room for a newer one
    /// (`PeerConnectionLimits.maxPendingHandshakes` were open).
    public var handshakesEvicted = 0
    /// Inbound connections closed after `PeerConnectionLimits.idleTimeout` without a byte.
    public var idleConnectionsClosed = 0
}

final class TransportCounters: Sendable {
    private let box = NIOLockedValueBox(TransportStatistics())
    private let rejections: [String: Counter]
    private let failedHandshakes: Counter?

    init(metricsFactory: (any MetricsFactory)? = nil) {
        var rejections: [String: Counter] = [:]
        if let metricsFactory {
            for reason in [
                "handshake", "handshake_timeout", "frame", "misaddressed", "tls", "connection_cap", "handshake_evicted",
                "idle",
            ] {
                rejections[reason] = Counter(
                    label: "raftgate_peer_rejected_total", dimensions: [("reason", reason)], factory: metricsFactory)
            }
        }
        self.rejections = rejections
        failedHandshakes = metricsFactory.map {
            Counter(label: "raftgate_peer_handshakes_failed_total", factory: $0)
        }
    }

    func increment(_ field: WritableKeyPath<TransportStatistics, Int>) {
        box.withLockedValue { $0[keyPath: field] += 1 }
    }

    func record(_ rejection: PeerRejection) {
        switch rejection {
        case .handshake(.timedOut): increment(\.handshakeTimeouts)
        case .handshake: increment(\.handshakesRejected)
        case .frame: increment(\.framesRejected)
        case .misaddressed: increment(\.framesMisaddressed)
        case .tls: increment(\.tlsRejected)
        }
        rejections[rejection.reason]?.increment()
    }

    func recordRefusedConnection() {
        increment(\.connectionsRefused)
        rejections["connection_cap"]?.increment()
    }

    func recordEvictedHandshake() {
        increment(\.handshakesEvicted)
        rejections["handshake_evicted"]?.increment()
    }

    func recordIdleClose() {
        increment(\.idleConnectionsClosed)
        rejections["idle"]?.increment()
    }

    func recordFailedHandshake() {
        increment(\.handshakesFailed)
        failedHandshakes?.increment()
    }

    var snapshot: TransportStatistics { box.withLockedValue { $0 } }
}

/// Raft's peer transport over TCP: a listener for inbound frames and one outbound link per
/// peer. Inbound messages arrive on `messages`; `send` never blocks and never grows without bound.
///
/// Every connection opens with `PeerHandshake`, keyed by the cluster key: the listener delivers
/// frames only from a dialer that proved it holds the key, and only frames whose sender is that
/// dialer and whose recipient is this node. This keeps out whoever can reach the port without the
/// key; on its own it does not stop an on-path attacker who can inject into an established TCP
/// stream (frames carry no MAC). With `tls` (`PeerTLS`), every connection is mutual TLS first,
/// admitting only certificates of the cluster CA, and the handshake runs inside it.
public final class PeerTransport: Sendable {
    public let id: NodeID
    /// Everything received from any peer, in arrival order per connection.
    public let messages: AsyncStream<PeerEnvelope>
    public let localAddress: SocketAddress
    private let continuation: AsyncStream<PeerEnvelope>.Continuation
    private let server: Channel
    private let group: EventLoopGroup
    private let links = NIOLockedValueBox([NodeID: PeerLink]())
    private let counters: TransportCounters
    private let handshake: PeerLink.Handshake
    private let logger: Logger

    /// Starts listening on `host:port` (port 0 picks a free one; see `localAddress`). A connection
    /// that has not completed the handshake (the TLS one included) within `handshakeTimeout` is closed.
    public static func start(
        id: NodeID, host: String, port: Int, clusterKey: ClusterKey, tls: PeerTLS? = nil,
        handshakeTimeout: Duration = .seconds(5), limits: PeerConnectionLimits = PeerConnectionLimits(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger = Logger(label: "raftgate.transport"),
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> PeerTransport {
        let (stream, continuation) = AsyncStream<PeerEnvelope>.makeStream(bufferingPolicy: .bufferingNewest(65_536))
        let counters = TransportCounters(metricsFactory: metricsFactory)
        let inbound = InboundConnections()
        let key = PeerHandshakeKey(clusterKey)
        let timeout = TimeAmount(handshakeTimeout)
        let throttle = LogThrottle(interval: .seconds(10))
        let gate = InboundConnectionGate(
            maxAuthenticated: limits.maxInboundConnections, maxPending: limits.maxPendingHandshakes)
        let idleTimeout = TimeAmount(limits.idleTimeout)
        let reject: @Sendable (PeerRejection, SocketAddress?) -> Void = { rejection, remote in
            counters.record(rejection)
            guard let suppressed = throttle.admit() else { return }
            logger.warning(
                "refused a peer connection",
                metadata: [
                    "reason": "\(rejection)", "remote": "\(remote.map { "\($0)" } ?? "?")",
                    "similarSuppressed": "\(suppressed)",
                ])
        }
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let connection = gate.admit(channel, evicted: { counters.recordEvictedHandshake() })
                inbound.track(channel)
                return channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandlers(
                            NIOSSLServerHandler(context: tls.server), PeerTLSRejectionHandler(reject: reject))
                    }
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(
                        PeerIdleCloser(closed: { counters.recordIdleClose() }))
                    try channel.pipeline.syncOperations.addHandler(
                        PeerHandshakeListenerHandler(
                            handshake: PeerHandshakeListener(localID: id, key: key), timeout: timeout,
                            makeFrameHandler: { peer in
                                PeerFrameInboundHandler(
                                    authenticatedPeer: peer, localID: id, deliver: { continuation.yield($0) },
                                    reject: reject)
                            },
                            accept: { _ in
                                counters.increment(\.handshakesAccepted)
                                guard gate.authenticate(connection) else {
                                    counters.recordRefusedConnection()
                                    return false
                                }
                                return true
                            }, reject: reject))
                }
            }
            .bind(host: host, port: port)
            .get()
        return PeerTransport(
            id: id, server: server, group: group, stream: stream, continuation: continuation, counters: counters,
            inbound: inbound, gate: gate,
            handshake: PeerLink.Handshake(localID: id, key: key, timeout: timeout, tls: tls?.client),
            logger: logger)
    }

    private init(
        id: NodeID, server: Channel, group: EventLoopGroup, stream: AsyncStream<PeerEnvelope>,
        continuation: AsyncStream<PeerEnvelope>.Continuation, counters: TransportCounters, inbound: InboundConnections,
        gate: InboundConnectionGate, handshake: PeerLink.Handshake, logger: Logger
    ) {
        self.inbound = inbound
        self.gate = gate
        self.id = id
        self.server = server
        self.group = group
        self.messages = stream
        self.continuation = continuation
        self.localAddress = server.localAddress!
        self.counters = counters
        self.handshake = handshake
        self.logger = logger
        // Dial out from the listening IP when it is a specific one (not 0.0.0.0 or ::).
        if let ip = server.localAddress?.ipAddress, ip != "0.0.0.0", ip != "::" {
            sourceAddress = try? SocketAddress(ipAddress: ip, port: 0)
        } else {
            sourceAddress = nil
        }
    }

    private let sourceAddress: SocketAddress?

    private let inbound: InboundConnections
    private let gate: InboundConnectionGate

    /// Authenticated inbound connections open now (what `PeerConnectionLimits.maxInboundConnections`
    /// bounds).
    public var openInboundConnections: Int { gate.authenticated }
    /// Inbound connections still in their handshake (what `maxPendingHandshakes` bounds).
    public var pendingInboundConnections: Int { gate.pending }

    public var statistics: TransportStatistics { counters.snapshot }

    /// Where to reach `peer` (added or changed at any time, e.g. from membership).
    public func setPeer(_ peer: NodeID, host: String, port: Int) {
        links.withLockedValue { links in
            if let link = links[peer] {
                link.update(host: host, port: port)
            } else {
                links[peer] = PeerLink(
                    peer: peer, host: host, port: port, loop: group.next(), counters: counters,
                    handshake: handshake, logger: logger, sourceAddress: sourceAddress)
            }
        }
    }

    /// Membership's verdict on a peer: dead peers are redialled only at the longest back-off.
    public func setPeerDeclaredDead(_ peer: NodeID, _ dead: Bool) {
        links.withLockedValue { $0[peer] }?.setDeclaredDead(dead)
    }

    /// Queues `envelope` for its destination; unknown destinations are dropped and counted.
    public func send(_ envelope: PeerEnvelope) {
        guard let link = links.withLockedValue({ $0[envelope.destination] }) else {
            counters.increment(\.messagesDropped)
            return
        }
        link.send(PeerFrame.encode(envelope))
    }

    public func send(_ message: Message) { send(.raft(message)) }

    public func shutdown() async {
        let all = links.withLockedValue { links in
            defer { links.removeAll() }
            return Array(links.values)
        }
        for link in all { try? await link.close().get() }
        try? await server.close().get()
        // Closing the listener leaves accepted connections open: close them too, so peers notice.
        await inbound.closeAll()
        continuation.finish()
    }
}

/// The connections the listener accepted, so shutdown can close them.
final class InboundConnections: Sendable {
    private let channels = NIOLockedValueBox([ObjectIdentifier: Channel]())

    func track(_ channel: Channel) {
        let key = ObjectIdentifier(channel)
        channels.withLockedValue { $0[key] = channel }
        channel.closeFuture.whenComplete { _ in
            self.channels.withLockedValue { $0[key] = nil }
        }
    }

    func closeAll() async {
        let open = channels.withLockedValue { Array($0.values) }
        for channel in open {
            channel.close(promise: nil)
            try? await channel.closeFuture.get()
        }
    }
}
