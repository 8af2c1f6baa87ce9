import CoreMetrics
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTPTypes

/// Bounds on the HTTP listener's connections (DESIGN.md "Security and lifecycle"): how many may be
/// open at once, and how long a request may take to arrive, so a client trickling bytes cannot
/// hold a connection (and its memory) forever.
public struct ConnectionLimits: Sendable, Hashable {
    /// Connections beyond this get a 503 `too_many_connections` and are closed at once.
    public var maxConnections = 4096
    /// From a request's first byte until its header is complete.
    public var headerTimeout: TimeAmount = .seconds(10)
    /// From a request's first byte until its body is complete.
    public var requestTimeout: TimeAmount = .seconds(60)
    /// A connection with nothing in flight is closed after this long.
    public var idleTimeout: TimeAmount = .seconds(75)

    public init() {}
}

/// The open connections of one listener, shared by every connection's handler.
public final class ConnectionCounter: Sendable {
    private let open = NIOLockedValueBox(0)
    let limit: Int
    let gauge: Gauge
    let refused: Counter
    let timedOut: Counter

    public init(limit: Int, factory: any MetricsFactory = MetricsSystem.factory, listener: String = "api") {
        self.limit = limit
        gauge = Gauge(label: "raftgate_http_connections", dimensions: [("listener", listener)], factory: factory)
        refused = Counter(
            label: "raftgate_http_connections_refused_total", dimensions: [("listener", listener)], factory: factory)
        timedOut = Counter(
            label: "raftgate_http_request_timeouts_total", dimensions: [("listener", listener)], factory: factory)
    }

    public var current: Int { open.withLockedValue { $0 } }

    /// Takes a place; false when all `limit` are taken.
    func acquire() -> Bool {
        let taken: Int? = open.withLockedValue { count in
            guard count < limit else { return nil }
            count += 1
            return count
        }
        guard let taken else { return false }
        gauge.record(taken)
        return true
    }

    func release() {
        gauge.record(
            open.withLockedValue { count in
                count -= 1
                return count
            })
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 with `ConnectionLimits` enforced: Hummingbird's HTTP1 channel, preceded by a
    /// byte-level handler that counts the connection and times each request from its first byte.
    /// `additionalChannelHandlers` go after the guard's own request-phase handler (the proxy's
    /// `PeerAddressHeader`, for one).
    public static func guardedHTTP1(
        _ limits: ConnectionLimits, counter: ConnectionCounter,
        additionalChannelHandlers: @escaping @Sendable () -> [any RemovableChannelHandler] = { [] }
    ) -> HTTPServerBuilder {
        .init { responder in
            GuardedHTTP1Channel(
                inner: HTTP1Channel(
                    responder: responder,
                    configuration: .init(
                        additionalChannelHandlers: [RequestPhaseHandler()] + additionalChannelHandlers(),
                        idleTimeout: limits.idleTimeout)),
                limits: limits, counter: counter)
        }
    }
}

/// Hummingbird's HTTP1 child channel with `ConnectionGuardHandler` put first in the pipeline.
struct GuardedHTTP1Channel: ServerChildChannel {
    let inner: HTTP1Channel
    let limits: ConnectionLimits
    let counter: ConnectionCounter

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1Channel.Value> {
        let limits = limits
        let counter = counter
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ConnectionGuardHandler(limits: limits, counter: counter))
        }.flatMap { inner.setup(channel: channel, logger: logger) }
    }

    func handle(value: HTTP1Channel.Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// Where a connection is in its request cycle; the byte-level and HTTP-level handlers share it.
enum RequestPhase {
    /// Between requests (or before the first): a byte now starts a request and its deadlines.
    case idle
    /// The header is arriving.
    case header
    /// The body is arriving.
    case body
    /// The request is complete; the response is being produced.
    case responding
}

/// First in the pipeline, on raw bytes: refuses connections beyond the cap, and closes one whose
/// request does not arrive in time (with a 408 when nothing of a response was sent yet).
final class ConnectionGuardHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let limits: ConnectionLimits
    private let counter: ConnectionCounter
    private var admitted = false
    private var refusing = false
    private(set) var phase = RequestPhase.idle
    private var headerDeadline: Scheduled<Void>?
    private var requestDeadline: Scheduled<Void>?

    init(limits: ConnectionLimits, counter: ConnectionCounter) {
        self.limits = limits
        self.counter = counter
    }

    func channelActive(context: ChannelHandlerContext) {
        if counter.acquire() {
            admitted = true
            context.fireChannelActive()
            return
        }
        counter.refused.increment()
        refusing = true
        // The handlers behind see the connection open and close as usual; they never see a byte.
        context.fireChannelActive()
        let message =
            "this node serves at most \(counter.limit) connections; retry shortly or through another node"
        respondAndClose(context, status: "503 Service Unavailable", code: "too_many_connections", message: message)
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelDeadlines()
        if admitted {
            admitted = false
            counter.release()
        }
        context.fireChannelInactive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        cancelDeadlines()
        if admitted {
            admitted = false
            counter.release()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refusing else { return }
        if phase == .idle {
            phase = .header
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            headerDeadline = context.eventLoop.scheduleTask(in: limits.headerTimeout) {
                let (handler, context) = loopBound.value
                handler.expired(context, "the request header did not arrive within \(handler.limits.headerTimeout)")
            }
            startRequestDeadline(context)
        }
        context.fireChannelRead(data)
    }

    private func startRequestDeadline(_ context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        requestDeadline = context.eventLoop.scheduleTask(in: limits.requestTimeout) {
            let (handler, context) = loopBound.value
            handler.expired(context, "the request did not arrive within \(handler.limits.requestTimeout)")
        }
    }

    /// The HTTP layer decoded a request header.
    func headerReceived() {
        headerDeadline?.cancel()
        headerDeadline = nil
        switch phase {
        case .idle, .header: phase = .body
        case .responding: headOfNextRequest = true
        case .body: break
        }
        // A pipelined request's head comes out of the codec's buffer with no byte read here, so
        // `channelRead` started no deadline for it: its body must still arrive in time, or a
        // client could trickle it forever.
        if requestDeadline == nil, let context { startRequestDeadline(context) }
    }

    /// The HTTP layer decoded a request's end.
    func requestReceived() {
        headOfNextRequest = false
        cancelDeadlines()
        // A response sent before the body was all read (an early error) already ended the cycle.
        phase = responseEnded ? .idle : .responding
        responseEnded = false
    }

    /// A response began: a timeout now may only close, not answer.
    func responseStarted() { responseUnderWay = true }

    /// A response ended: the next byte starts the next request.
    func responseSent() {
        responseUnderWay = false
        if phase == .responding {
            // The next request's head was already decoded: its body is arriving now.
            phase = headOfNextRequest ? .body : .idle
            headOfNextRequest = false
        } else {
            responseEnded = true
        }
    }

    private var responseUnderWay = false
    private var responseEnded = false
    /// A pipelined request's head arrived while the previous response was being produced.
    private var headOfNextRequest = false
    /// Kept for the deadlines the HTTP layer starts (`headerReceived`); used on its event loop only.
    private var context: ChannelHandlerContext?

    private func expired(_ context: ChannelHandlerContext, _ message: String) {
        guard phase == .header || phase == .body, context.channel.isActive else { return }
        counter.timedOut.increment()
        cancelDeadlines()
        phase = .responding
        if responseUnderWay || responseEnded {
            context.close(promise: nil)
            return
        }
        respondAndClose(context, status: "408 Request Timeout", code: "request_timeout", message: message)
    }

    private func cancelDeadlines() {
        headerDeadline?.cancel()
        requestDeadline?.cancel()
        headerDeadline = nil
        requestDeadline = nil
    }

    /// Written as raw bytes, under the HTTP codec: only while no response is under way.
    private func respondAndClose(_ context: ChannelHandlerContext, status: String, code: String, message: String) {
        let body = GatewayError.body(code: code, message: message)
        var buffer = context.channel.allocator.buffer(capacity: body.count + 160)
        buffer.writeString(
            "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n"
                + "Connection: close\r\nRetry-After: 1\r\n\r\n")
        buffer.writeBytes(body)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// After the HTTP codec: tells the connection's `ConnectionGuardHandler` when a request's header
/// and end arrive and when its response ends.
final class RequestPhaseHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var connection: ConnectionGuardHandler?

    func handlerAdded(context: ChannelHandlerContext) {
        connection = try? context.pipeline.syncOperations.handler(type: ConnectionGuardHandler.self)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: connection?.headerReceived()
        case .body: break
        case .end: connection?.requestReceived()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head: connection?.responseStarted()
        case .body: break
        case .end: connection?.responseSent()
        }
        context.write(data, promise: promise)
    }
}
