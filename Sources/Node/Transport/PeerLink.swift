import NIOCore
import NIOPosix
import Raft

/// The outbound connection to one peer: a bounded queue of encoded frames, one TCP connection,
/// reconnection with exponential back-off.
///
/// When the queue is full, new messages are dropped rather than buffered without bound: Raft
/// retransmits whatever matters (appends are re-sent on heartbeat responses, votes on the next
/// election), so memory stays flat while a peer is down.
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
    private var closed = false
    private let counters: TransportCounters

    static let initialBackoff = TimeAmount.milliseconds(20)
    static let maximumBackoff = TimeAmount.seconds(2)
    static let maxQueuedMessages = 4096
    static let maxQueuedBytes = 64 << 20

    init(peer: NodeID, host: String, port: Int, loop: EventLoop, counters: TransportCounters) {
        self.peer = peer
        self.host = host
        self.port = port
        self.loop = loop
        self.counters = counters
    }

    func send(_ frame: [UInt8]) {
        loop.execute { self.enqueue(frame) }
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
        queue.append(frame)
        queuedBytes += frame.count
        if channel != nil { flush() } else { connect() }
    }

    private func flush() {
        guard let channel else { return }
        while let frame = queue.popFirst() {
            queuedBytes -= frame.count
            channel.write(ByteBuffer(bytes: frame), promise: nil)
        }
        channel.flush()
    }

    private func connect() {
        guard !connecting, channel == nil, !closed else { return }
        connecting = true
        ClientBootstrap(group: loop)
            .connectTimeout(.seconds(1))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port)
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
                    self.counters.increment(\.connections)
                    channel.closeFuture.hop(to: self.loop).whenComplete { _ in
                        self.channel = nil
                        if !self.queue.isEmpty { self.scheduleReconnect() }
                    }
                    self.flush()
                case .failure:
                    self.scheduleReconnect()
                }
            }
    }

    private func scheduleReconnect() {
        guard !closed else { return }
        let delay = backoff
        backoff = TimeAmount.nanoseconds(min(backoff.nanoseconds * 2, Self.maximumBackoff.nanoseconds))
        loop.scheduleTask(in: delay) {
            if !self.queue.isEmpty { self.connect() }
        }
    }
}
