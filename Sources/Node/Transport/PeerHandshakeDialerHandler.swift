import NIOCore
import Raft

/// The dialing side of the handshake on an outbound peer connection: sends the hello once the
/// connection is up, checks the listener's proof, answers with its own, then completes `result`.
/// `PeerLink` writes no frame before `result` succeeds, so nothing goes to a listener that has not
/// proved it is a member, and the proof is on the wire ahead of the first frame.
final class PeerHandshakeDialerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var handshake: PeerHandshakeDialer
    private let timeout: TimeAmount
    private let result: EventLoopPromise<Void>
    private var deadline: Scheduled<Void>?
    private var started = false

    init(handshake: PeerHandshakeDialer, timeout: TimeAmount, result: EventLoopPromise<Void>) {
        self.handshake = handshake
        self.timeout = timeout
        self.result = result
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        let channel = context.channel
        let result = self.result
        deadline = context.eventLoop.scheduleTask(in: timeout) {
            result.fail(PeerHandshakeError.timedOut)
            channel.close(promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: handshake.hello)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The listener sends nothing after its challenge; whatever else arrives is ignored.
        guard !handshake.isAuthenticated else { return }
        do {
            guard let proof = try handshake.feed(unwrapInboundIn(data).readableBytesView) else { return }
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: proof)), promise: nil)
            deadline?.cancel()
            result.succeed()
        } catch {
            result.fail(error)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        result.fail(PeerHandshakeError.closed)  // no effect once the handshake succeeded
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        result.fail(PeerHandshakeError.closed)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        result.fail(error)
        context.close(promise: nil)
    }
}
