import NIOCore
import Raft

/// Turns the bytes of one authenticated inbound peer connection into envelopes. Installed by
/// `PeerHandshakeListenerHandler` once the dialer has proved who it is, and bound to that id: a
/// frame that claims another sender, or is meant for another node, is refused like one that fails
/// to decode. Either closes the connection: a real peer reconnects and Raft retransmits, while a
/// confused or hostile one gets nothing but a closed socket.
final class PeerFrameInboundHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private var decoder = PeerFrameDecoder()
    private let authenticatedPeer: NodeID
    private let localID: NodeID
    private let deliver: @Sendable (PeerEnvelope) -> Void
    private let reject: @Sendable (PeerRejection, SocketAddress?) -> Void
    private var closed = false

    init(
        authenticatedPeer: NodeID, localID: NodeID, deliver: @escaping @Sendable (PeerEnvelope) -> Void,
        reject: @escaping @Sendable (PeerRejection, SocketAddress?) -> Void
    ) {
        self.authenticatedPeer = authenticatedPeer
        self.localID = localID
        self.deliver = deliver
        self.reject = reject
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        let bytes = unwrapInboundIn(data).readableBytesView
        do {
            for envelope in try decoder.feed(bytes) {
                guard envelope.source == authenticatedPeer, envelope.destination == localID else {
                    refuse(
                        context: context,
                        .misaddressed(from: envelope.source, to: envelope.destination, authenticated: authenticatedPeer)
                    )
                    return
                }
                deliver(envelope)
            }
        } catch {
            refuse(context: context, .frame(error))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func refuse(context: ChannelHandlerContext, _ rejection: PeerRejection) {
        closed = true
        reject(rejection, context.channel.remoteAddress)
        context.close(promise: nil)
    }
}
