import NIOConcurrencyHelpers
import NIOCore

/// Bounds on the Raft peer port (DESIGN.md "Security and lifecycle"). Authentication keeps
/// strangers out; these keep a member (or a half-open connection) from holding resources forever.
public struct PeerConnectionLimits: Sendable, Hashable {
    /// Inbound connections open at once, authenticated or not; more are closed on accept. A
    /// cluster needs one per peer (plus a few while peers reconnect).
    public var maxInboundConnections = 64
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

/// Counts the listener's open inbound connections against the cap.
final class InboundConnectionCap: Sendable {
    private let open = NIOLockedValueBoxInt()
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Takes a place for `channel` (released when it closes); false when none is left.
    func admit(_ channel: Channel) -> Bool {
        guard open.increment(ifBelow: limit) else { return false }
        channel.closeFuture.whenComplete { _ in self.open.decrement() }
        return true
    }

    var current: Int { open.value }
}

/// An integer under a lock (NIOCore has no atomics of its own; NIOConcurrencyHelpers' box is
/// generic, this names the two operations the cap needs).
final class NIOLockedValueBoxInt: Sendable {
    private let box = NIOLockedValueBox(0)

    func increment(ifBelow limit: Int) -> Bool {
        box.withLockedValue { value in
            guard value < limit else { return false }
            value += 1
            return true
        }
    }

    func decrement() { box.withLockedValue { $0 -= 1 } }

    var value: Int { box.withLockedValue { $0 } }
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
