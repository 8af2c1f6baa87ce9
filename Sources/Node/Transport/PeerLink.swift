import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Raft

/// The outbound connection to one peer: a bounded queue of encoded frames, one TCP connection,
/// reconnection with exponential back-off.
///
/// Messages are queued only while a connection is being established. When the queue is full, or
/// the peer turns out to be unreachable, they are dropped rather than kept: Raft retransmits
/// whatever matters (appends are re-sent on heartbeat responses, votes on the next election), so
/// memory stays flat and a returning peer is not flooded with stale traffic.
///
/// A connection counts as established only once the peer has passed the handshake
/// (`PeerHandshakeDialerHandler`): until then nothing but the hello is written to it.
// @unchecked Sendable: every mutable field is touched only on `loop` (each entry point hops
// there with `loop.execute` and checks `loop.inEventLoop`), which serializes all access.
final class PeerLink: @unchecked Sendable {
    let peer: NodeID
    private let loop: EventLoop
    private var host: String
    private var port: Int
    private var queue = CircularBuffer<[UInt8]>()
    private var queuedBytes = 0
    private var channel: Channel?
    private var connecting = false
    private var backoff = PeerLink.initialBackoff
    /// After a failed attempt, no new one before this: exponential back-off, so a dead peer is not
    /// dialled on every heartbeat.
    private var retryAt = NIODeadline.uptimeNanoseconds(0)
    private var declaredDead = false
    private var closed = false
    private let counters: TransportCounters
    /// The local address outgoing connections come from: the node's own Raft address, so that a
    /// peer (and a firewall rule, such as the chaos tests' partitions) sees who is calling.
    private let sourceAddress: SocketAddress?
    private let handshake: Handshake
    private let logger: Logger
    /// A peer with another key fails every redial: say so now and then, not every two seconds.
    private let failureLog = LogThrottle(interval: .seconds(30))

    /// What every outbound handshake of a transport needs.
    struct Handshake: Sendable {
        var localID: NodeID
        var key: PeerHandshakeKey
        var timeout: TimeAmount
        /// Peer mutual TLS: the client side, wrapped around the handshake.
        var tls: NIOSSLContext?
    }

    static let initialBackoff = TimeAmount.milliseconds(20)
    static let maximumBackoff = TimeAmount.seconds(2)
    static let maxQueuedMessages = PeerQueueLimits.maxQueuedMessages
    static let maxQueuedBytes = PeerQueueLimits.maxQueuedBytes

    init(
        peer: NodeID, host: String, port: Int, loop: EventLoop, counters: TransportCounters, handshake: Handshake,
        logger: Logger, sourceAddress: SocketAddress? = nil
    ) {
        self.handshake = handshake
        self.logger = logger
        self.sourceAddress = sourceAddress
        self.peer = peer
        self.host = host
        self.port = port
        self.loop = loop
        self.counters = counters
    }

    func send(_ frame: [UInt8]) {
        loop.execute { self.enqueue(frame) }
    }

    /// Membership declared the peer dead (or alive again). While dead, a failed dial waits the
    /// longest back-off at once instead of climbing to it, so a dead peer is not redialled in a
    /// tight loop; alive again, the next message dials at once.
    func setDeclaredDead(_ dead: Bool) {
        loop.execute {
            self.declaredDead = dead
            if dead {
                self.backoff = Self.maximumBackoff
            } else {
                self.backoff = Self.initialBackoff
                self.retryAt = .uptimeNanoseconds(0)
            }
        }
    }

    func update(host: String, port: Int) {
        loop.execute {
            guard host != self.host || port != self.port else { return }
            self.host = host
            self.port = port
            self.channel?.close(promise: nil)
        }
    }

    func close() -> EventLoopFuture<Void> {
        loop.submit {
            self.closed = true
            self.queue.removeAll()
            self.queuedBytes = 0
            return self.channel
        }.flatMap { channel in
            guard let channel else { return self.loop.makeSucceededVoidFuture() }
            channel.close(promise: nil)
            return channel.closeFuture  // never fails
        }
    }

    private func enqueue(_ frame: [UInt8]) {
        guard !closed else { return }
        guard queue.count < Self.maxQueuedMessages, queuedBytes + frame.count <= Self.maxQueuedBytes else {
            counters.increment(\.messagesDropped)
            return
        }
        if channel == nil && NIODeadline.now() < retryAt {
            counters.increment(\.messagesDropped)
            return
        }
        queue.append(frame)
        queuedBytes += frame.count
        if channel != nil { flush() } else { connect() }
    }

    private func flush() {
        guard let channel else { return }
        while let frame = queue.popFirst() {
            queuedBytes -= frame.count
            // A stalled peer (paused, or a half-open connection) stops reading: once NIO's
            // outbound buffer passes the high water mark, drop instead of piling up.
            if channel.isWritable {
                channel.write(ByteBuffer(bytes: frame), promise: nil)
            } else {
                counters.increment(\.messagesDropped)
            }
        }
        channel.flush()
    }

    private func connect() {
        guard !connecting, channel == nil, !closed else { return }
        connecting = true
        counters.increment(\.connectAttempts)
        var bootstrap = ClientBootstrap(group: loop)
        if let sourceAddress { bootstrap = bootstrap.bind(to: sourceAddress) }
        let handshake = self.handshake
        let peer = self.peer
        let authenticated = loop.makePromise(of: Void.self)
        let connected =
            bootstrap
            .connectTimeout(.seconds(1))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 1 << 20, high: Self.maxQueuedBytes))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls = handshake.tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: nil))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        PeerHandshakeDialerHandler(
                            handshake: PeerHandshakeDialer(
                                localID: handshake.localID, target: peer, key: handshake.key),
                            timeout: handshake.timeout, result: authenticated))
                }
            }
            .connect(host: host, port: port)
        connected.whenFailure { authenticated.fail($0) }
        connected.flatMap { channel in
            authenticated.futureResult.map { channel }.flatMapError { error in
                channel.close(promise: nil)
                return channel.eventLoop.makeFailedFuture(HandshakeFailure(error: error))
            }
        }
        .hop(to: loop)
        .whenComplete { result in
            self.connecting = false
            switch result {
            case .success(let channel):
                guard !self.closed else {
                    channel.close(promise: nil)
                    return
                }
                self.channel = channel
                self.backoff = Self.initialBackoff
                self.retryAt = .uptimeNanoseconds(0)
                self.counters.increment(\.connections)
                channel.closeFuture.hop(to: self.loop).whenComplete { _ in
                    self.channel = nil
                    self.dropQueued()
                }
                self.flush()
            case .failure(let error):
                if let failure = error as? HandshakeFailure { self.handshakeFailed(failure.error) }
                // The peer is unreachable: what was queued for it is stale by the time it is
                // back, and Raft will send what still matters. Keep only what comes next.
                self.dropQueued()
                self.backOff()
            }
        }
    }

    /// The connection was up but the handshake failed. Another cluster key or protocol version
    /// does not heal by itself, so it is an error; a peer that hung up or did not answer in time
    /// may just be stopping or paused, so that is a warning.
    private func handshakeFailed(_ error: Error) {
        counters.recordFailedHandshake()
        guard let suppressed = failureLog.admit() else { return }
        let transient = [PeerHandshakeError.closed, .timedOut].contains(error as? PeerHandshakeError)
        logger.log(
            level: transient ? .warning : .error,
            "peer handshake failed",
            metadata: [
                "peer": "n\(peer)", "address": "\(host):\(port)", "reason": "\(error)",
                "similarSuppressed": "\(suppressed)",
            ])
    }

    private struct HandshakeFailure: Error {
        var error: Error
    }

    private func dropQueued() {
        for _ in 0..<queue.count { counters.increment(\.messagesDropped) }
        queue.removeAll()
        queuedBytes = 0
    }

    private func backOff() {
        retryAt = NIODeadline.now() + backoff
        backoff = TimeAmount.nanoseconds(min(backoff.nanoseconds * 2, Self.maximumBackoff.nanoseconds))
    }
}
