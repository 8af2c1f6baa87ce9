import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Raft

/// Counters the transport keeps for metrics and tests.
public struct TransportStatistics: Sendable, Hashable {
    public var framesRejected = 0
    public var messagesDropped = 0
    public var connections = 0
    public var connectAttempts = 0
}

final class TransportCounters: Sendable {
    private let box = NIOLockedValueBox(TransportStatistics())

    func increment(_ field: WritableKeyPath<TransportStatistics, Int>) {
        box.withLockedValue { $0[keyPath: field] += 1 }
    }

    var snapshot: TransportStatistics { box.withLockedValue { $0 } }
}

/// Raft's peer transport over TCP: a listener for inbound frames and one outbound link per
/// peer. Inbound messages arrive on `messages`; `send` never blocks and never grows without bound.
public final class PeerTransport: Sendable {
    public let id: NodeID
    /// Everything received from any peer, in arrival order per connection.
    public let messages: AsyncStream<PeerEnvelope>
    public let localAddress: SocketAddress
    private let continuation: AsyncStream<PeerEnvelope>.Continuation
    private let server: Channel
    private let group: EventLoopGroup
    private let links = NIOLockedValueBox([NodeID: PeerLink]())
    private let counters = TransportCounters()

    /// Starts listening on `host:port` (port 0 picks a free one; see `localAddress`).
    public static func start(
        id: NodeID, host: String, port: Int, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> PeerTransport {
        let (stream, continuation) = AsyncStream<PeerEnvelope>.makeStream(bufferingPolicy: .bufferingNewest(65_536))
        let counters = TransportCounters()
        let inbound = InboundConnections()
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                inbound.track(channel)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        PeerFrameInboundHandler(
                            deliver: { continuation.yield($0) },
                            reject: { _ in counters.increment(\.framesRejected) }))
                }
            }
            .bind(host: host, port: port)
            .get()
        return PeerTransport(
            id: id, server: server, group: group, stream: stream, continuation: continuation, counters: counters,
            inbound: inbound)
    }

    private init(
        id: NodeID, server: Channel, group: EventLoopGroup, stream: AsyncStream<PeerEnvelope>,
        continuation: AsyncStream<PeerEnvelope>.Continuation, counters: TransportCounters, inbound: InboundConnections
    ) {
        self.inbound = inbound
        self.id = id
        self.server = server
        self.group = group
        self.messages = stream
        self.continuation = continuation
        self.localAddress = server.localAddress!
        self.countersStorage = counters
        // Dial out from the listening IP when it is a specific one (not 0.0.0.0 or ::).
        if let ip = server.localAddress?.ipAddress, ip != "0.0.0.0", ip != "::" {
            sourceAddress = try? SocketAddress(ipAddress: ip, port: 0)
        } else {
            sourceAddress = nil
        }
    }

    private let sourceAddress: SocketAddress?

    private let countersStorage: TransportCounters
    private let inbound: InboundConnections

    public var statistics: TransportStatistics {
        var merged = countersStorage.snapshot
        let outbound = counters.snapshot
        merged.messagesDropped += outbound.messagesDropped
        merged.connections += outbound.connections
        merged.connectAttempts += outbound.connectAttempts
        return merged
    }

    /// Where to reach `peer` (added or changed at any time, e.g. from membership).
    public func setPeer(_ peer: NodeID, host: String, port: Int) {
        links.withLockedValue { links in
            if let link = links[peer] {
                link.update(host: host, port: port)
            } else {
                links[peer] = PeerLink(
                    peer: peer, host: host, port: port, loop: group.next(), counters: counters,
                    sourceAddress: sourceAddress)
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
