import NIOCore
import Raft

/// The only handler an accepted peer connection starts with. There is no frame decoder on the
/// connection until the dialer has proved it holds the cluster key, so nothing a stranger sends can
/// reach Raft; once it has, this handler installs a `PeerFrameInboundHandler` bound to the
/// dialer's id, hands it whatever followed the proof, and leaves the pipeline.
final class PeerHandshakeListenerHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var handshake: PeerHandshakeListener
    private let timeout: TimeAmount
    private let makeFrameHandler: (NodeID) -> PeerFrameInboundHandler
    private let reject: @Sendable (PeerRejection, SocketAddress?) -> Void
    /// Called once the dialer proved it holds the key; false when it may not stay (no place left).
    private let accept: @Sendable (NodeID) -> Bool
    private var deadline: Scheduled<Void>?
    private var finished = false

    init(
        handshake: PeerHandshakeListener, timeout: TimeAmount,
        makeFrameHandler: @escaping (NodeID) -> PeerFrameInboundHandler,
        accept: @escaping @Sendable (NodeID) -> Bool,
        reject: @escaping @Sendable (PeerRejection, SocketAddress?) -> Void
    ) {
        self.handshake = handshake
        self.timeout = timeout
        self.makeFrameHandler = makeFrameHandler
        self.accept = accept
        self.reject = reject
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // A connection that never completes the handshake would otherwise hold a socket forever.
        let channel = context.channel
        let reject = self.reject
        deadline = context.eventLoop.scheduleTask(in: timeout) {
            reject(.handshake(.timedOut), channel.remoteAddress)
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        let bytes = unwrapInboundIn(data).readableBytesView
        let output: PeerHandshakeListener.Output
        do {
            output = try handshake.feed(bytes)
        } catch {
            fail(context: context, .handshake(error))
            return
        }
        if let reply = output.reply {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: reply)), promise: nil)
        }
        guard let peer = output.authenticated else { return }
        finished = true
        deadline?.cancel()
        guard accept(peer) else {
            context.close(promise: nil)
            return
        }
        do {
            try context.pipeline.syncOperations.addHandler(makeFrameHandler(peer), position: .after(self))
        } catch {
            context.close(promise: nil)
            return
        }
        // The frames that came in the same read as the proof go to the new handler first, then this
        // one leaves, so the frame handler sees the stream in order.
        if !output.remainder.isEmpty {
            context.fireChannelRead(wrapInboundOut(ByteBuffer(bytes: output.remainder)))
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func fail(context: ChannelHandlerContext, _ rejection: PeerRejection) {
        finished = true
        deadline?.cancel()
        reject(rejection, context.channel.remoteAddress)
        context.close(promise: nil)
    }
}
