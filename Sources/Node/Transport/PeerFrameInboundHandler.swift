import NIOCore
import Raft

/// Turns the bytes of one inbound peer connection into envelopes. A frame that fails to
/// decode closes the connection: the peer reconnects and Raft retransmits, while a stray or
/// hostile client gets nothing but a closed socket.
final class PeerFrameInboundHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private var decoder = PeerFrameDecoder()
    private let deliver: @Sendable (PeerEnvelope) -> Void
    private let reject: @Sendable (PeerFrameError) -> Void

    init(deliver: @escaping @Sendable (PeerEnvelope) -> Void, reject: @escaping @Sendable (PeerFrameError) -> Void) {
        self.deliver = deliver
        self.reject = reject
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        guard let bytes = buffer.readBytes(length: buffer.readableBytes) else { return }
        do {
            for message in try decoder.feed(bytes) { deliver(message) }
        } catch {
            reject(error)
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
