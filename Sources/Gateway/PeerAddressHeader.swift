import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Hummingbird's basic request context does not carry the client's address, which the worker
/// proxy needs for `X-Forwarded-For`. This channel handler writes the connection's remote
/// address into an internal header on every request head, after removing whatever a client sent
/// under that name, so the header can only ever hold the real peer. The proxy strips it before
/// forwarding. Install it with `PeerAddressHeader.handlers` in the server's `additionalChannelHandlers`.
public final class PeerAddressHeader: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart

    static let name = HTTPField.Name("X-Raftgate-Peer")!

    public init() {}

    /// What to pass as `additionalChannelHandlers` of the API listener.
    public static var handlers: [any RemovableChannelHandler] { [PeerAddressHeader()] }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var part = unwrapInboundIn(data)
        if case .head(var head) = part {
            head.headerFields[Self.name] = nil
            if let ip = context.channel.remoteAddress?.ipAddress { head.headerFields[Self.name] = ip }
            part = .head(head)
        }
        context.fireChannelRead(wrapInboundOut(part))
    }
}
