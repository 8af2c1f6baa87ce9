import NIOConcurrencyHelpers
import NIOCore

/// Bounds on the Raft peer port (DESIGN.md "Security and lifecycle"). Authentication keeps
/// strangers out; these keep a member (or a half-open connection) from holding resources forever.
public struct PeerConnectionLimits: Sendable, Hashable {
    /// Authenticated inbound connections open at once; a member authenticating beyond it is
    /// closed. A cluster needs one per peer (plus a few while peers reconnect). Connections still
    /// in their handshake do not count: see `maxPendingHandshakes`.
    public var maxInboundConnections = 64
    /// Inbound connections still in their handshake (TLS included). When all are taken, a new
    /// connection closes the oldest of them rather than being refused, so strangers cannot lock
    /// members out (`InboundAdmission`).
    public var maxPendingHandshakes = 64
    /// An inbound connection that delivers nothing for this long is closed; the peer redials when
    /// it has something to send. Leaders heartbeat every tick, so only quiet links are affected.
    public var idleTimeout: Duration = .seconds(300)
    /// A snapshot from a leader larger than this is refused chunk by chunk (keep it well above the
    /// store quota: a snapshot holds every key and value plus history and bookkeeping).
    public var maxIncomingSnapshotBytes = 8 << 30

    public init() {}

    /// Whether a snapshot chunk stays within `maxIncomingSnapshotBytes`.
    public func admits(offset: Int, count: Int) -> Bool {
        offset >= 0 && count >= 0 && offset <= maxIncomingSnapshotBytes - count
    }
}

/// The listener's connections under `InboundAdmission`: each accepted channel gets a number, and
/// the channels the decisions name are closed here.
final class InboundConnectionGate: Sendable {
    private struct State {
        var admission: InboundAdmission
        var channels: [UInt64: Channel] = [:]
        var next: UInt64 = 0
    }

    private let state: NIOLockedValueBox<State>

    init(maxAuthenticated: Int, maxPending: Int) {
        state = NIOLockedValueBox(
            State(admission: InboundAdmission(maxAuthenticated: maxAuthenticated, maxPending: maxPending)))
    }

    /// Takes a pending place for `channel` (released when it closes) and returns its number; the
    /// oldest connection still in its handshake is closed if that made room for this one.
    /// `evicted` is called for it.
    func admit(_ channel: Channel, evicted: @Sendable () -> Void) -> UInt64 {
        let (connection, victim) = state.withLockedValue { state -> (UInt64, Channel?) in
            state.next += 1
            state.channels[state.next] = channel
            let victim = state.admission.accepted(state.next).flatMap { state.channels[$0] }
            return (state.next, victim)
        }
        channel.closeFuture.whenComplete { _ in
            self.state.withLockedValue { state in
                state.admission.closed(connection)
                state.channels[connection] = nil
            }
        }
        if let victim {
            evicted()
            victim.close(promise: nil)
        }
        return connection
    }

    /// The connection proved it is a member: true if it has an authenticated place now.
    func authenticate(_ connection: UInt64) -> Bool {
        state.withLockedValue { $0.admission.authenticate(connection) }
    }

    var authenticated: Int { state.withLockedValue { $0.admission.authenticated.count } }
    var pending: Int { state.withLockedValue { $0.admission.pending.count } }
}

/// Closes the connection when `IdleStateHandler` says nothing was read for its timeout.
final class PeerIdleCloser: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    private let closed: @Sendable () -> Void

    init(closed: @escaping @Sendable () -> Void) { self.closed = closed }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            closed()
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
