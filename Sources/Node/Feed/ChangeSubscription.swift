import NIOConcurrencyHelpers

/// Why a subscription ended.
public enum SubscriptionEnd: Sendable, Hashable {
    /// The subscriber fell further behind than its limits allow; what it had not taken was dropped.
    case overflowed
    /// The node stopped.
    case stopped
    /// The subscriber cancelled it (or its task was cancelled while waiting).
    case cancelled
}

/// One consumer's bounded queue on the `ChangeFeed`. One task consumes it.
public final class ChangeSubscription: Sendable {
    public struct Limits: Sendable, Hashable {
        /// Items (applied commands) buffered at most.
        public var maxItems: Int
        /// Bytes of keys and values buffered at most.
        public var maxBytes: Int

        public init(maxItems: Int = 1024, maxBytes: Int = 8 << 20) {
            self.maxItems = Swift.max(1, maxItems)
            self.maxBytes = Swift.max(1, maxBytes)
        }
    }

    public enum Next: Sendable {
        case item(FeedItem)
        /// The deadline passed with nothing to take.
        case timedOut
        case ended(SubscriptionEnd)
    }

    private struct State {
        var buffer: [FeedItem] = []
        var head = 0
        var bytes = 0
        var end: SubscriptionEnd?
        var waiter: Waiter?
    }

    private struct Waiter {
        var token: UInt64
        var continuation: CheckedContinuation<Next, Never>
        var timer: Task<Void, Never>?
    }

    public let limits: Limits
    private let state = NIOLockedValueBox(State())
    private let tokens = NIOLockedValueBox<UInt64>(0)
    private let feed: ChangeFeed

    init(limits: Limits, feed: ChangeFeed) {
        self.limits = limits
        self.feed = feed
    }

    /// Why it ended, once it has.
    public var end: SubscriptionEnd? { state.withLockedValue { $0.end } }

    /// Items waiting to be taken.
    public var backlog: Int { state.withLockedValue { $0.buffer.count - $0.head } }

    /// Whether a consumer is parked in `next` (tests use it to reach the hand-over path).
    var isWaiting: Bool { state.withLockedValue { $0.waiter != nil } }

    /// The next item, waiting for one until `deadline` (forever when nil). After the end, every
    /// call answers `.ended`; items buffered before a `.stopped` or `.cancelled` end are dropped.
    public func next(until deadline: ContinuousClock.Instant? = nil) async -> Next {
        let token = tokens.withLockedValue { token -> UInt64 in
            token += 1
            return token
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Next, Never>) in
                let ready = state.withLockedValue { state -> Next? in
                    if let end = state.end { return .ended(end) }
                    if state.head < state.buffer.count { return .item(Self.take(&state)) }
                    if Task.isCancelled { return .ended(.cancelled) }
                    var waiter = Waiter(token: token, continuation: continuation)
                    if let deadline {
                        waiter.timer = Task { [weak self] in
                            try? await Task.sleep(until: deadline, clock: .continuous)
                            guard !Task.isCancelled else { return }
                            self?.resumeWaiter(token: token, with: .timedOut)
                        }
                    }
                    state.waiter = waiter
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            cancel()
        }
    }

    /// Ends the subscription (`.cancelled`) and leaves the feed.
    public func cancel() {
        end(.cancelled)
    }

    // MARK: The feed's side

    /// Hands over one item; false once the subscription has ended (the feed then forgets it).
    func deliver(_ item: FeedItem, bytes: Int) -> Bool {
        var overflowed = false
        let handOver = state.withLockedValue { state -> Waiter? in
            guard state.end == nil else { return nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            let buffered = state.buffer.count - state.head
            if buffered + 1 > limits.maxItems || state.bytes + bytes > limits.maxBytes {
                state.end = .overflowed
                state.buffer = []
                state.head = 0
                state.bytes = 0
                overflowed = true
                return nil
            }
            state.buffer.append(item)
            state.bytes += bytes
            return nil
        }
        if let handOver {
            handOver.timer?.cancel()
            handOver.continuation.resume(returning: .item(item))
            return true
        }
        return !overflowed && end == nil
    }

    func end(_ reason: SubscriptionEnd) {
        let waiter = state.withLockedValue { state -> Waiter? in
            guard state.end == nil else { return nil }
            state.end = reason
            // An overflow is already empty; a stop or cancel drops what was not taken.
            state.buffer = []
            state.head = 0
            state.bytes = 0
            defer { state.waiter = nil }
            return state.waiter
        }
        feed.remove(self)
        if let waiter {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: .ended(reason))
        }
    }

    private func resumeWaiter(token: UInt64, with next: Next) {
        let waiter = state.withLockedValue { state -> Waiter? in
            guard let waiter = state.waiter, waiter.token == token else { return nil }
            state.waiter = nil
            return waiter
        }
        waiter?.continuation.resume(returning: next)
    }

    private static func take(_ state: inout State) -> FeedItem {
        let item = state.buffer[state.head]
        state.head += 1
        state.bytes -= item.byteCount
        if state.head == state.buffer.count {
            state.buffer.removeAll(keepingCapacity: true)
            state.head = 0
        } else if state.head > 64 && state.head * 2 > state.buffer.count {
            state.buffer.removeFirst(state.head)
            state.head = 0
        }
        return item
    }
}

extension ChangeSubscription: AsyncSequence {
    public typealias Element = FeedItem

    /// Items until the subscription ends (why: `end`).
    public struct AsyncIterator: AsyncIteratorProtocol {
        let subscription: ChangeSubscription

        public mutating func next() async -> FeedItem? {
            if case .item(let item) = await subscription.next() { return item }
            return nil
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(subscription: self) }
}
