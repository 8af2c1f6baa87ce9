import NIOCore

/// The listening side of push-pull: one request frame in, one reply frame out, then close.
///
/// A plain channel handler, not the async `bind` that yields `NIOAsyncChannel`s: with that API a
/// connection accepted just as the service stops stays unread in the server's stream, and NIO
/// traps on it ("Deinited NIOAsyncWriter without calling finish()", apple/swift-nio#2637). Here
/// nothing outlives the channel, so stopping at any moment is safe.
final class PushPullServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Computes the reply to a sealed request from a remote address, or nil to hang up.
    typealias Answer = @Sendable (_ request: [UInt8], _ remote: String) async -> [UInt8]?

    private let answer: Answer
    /// A peer that connects and sends no complete frame within this is cut off, so idle or
    /// trickling connections cannot pile up.
    private let requestTimeout: TimeAmount
    private var answered = false
    private var timeout: Scheduled<Void>?

    init(requestTimeout: TimeAmount = .seconds(5), answer: @escaping Answer) {
        self.requestTimeout = requestTimeout
        self.answer = answer
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timeout = context.eventLoop.scheduleTask(in: requestTimeout) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // One exchange per connection: anything after the first frame is ignored.
        guard !answered else { return }
        answered = true
        let request = Array(unwrapInboundIn(data).readableBytesView)
        let channel = context.channel
        let remote = channel.remoteAddress.flatMap(MembershipService.text) ?? "tcp"
        let answer = self.answer
        Task {
            guard let reply = await answer(request, remote) else {
                channel.close(promise: nil)
                return
            }
            channel.writeAndFlush(ByteBuffer.frame(reply)).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // An oversized or otherwise undecodable frame: drop this connection only.
        context.close(promise: nil)
    }
}
