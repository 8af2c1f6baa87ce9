import NIOConcurrencyHelpers

/// What the apply loop publishes.
public enum FeedItem: Sendable {
    /// One applied command's changes, in apply order.
    case change(StoreChange)
    /// A snapshot from the leader replaced the whole store: whatever was derived from the store is
    /// rebuilt from this one (changes between the old state and it were never seen one by one).
    case replaced(KeyValueStore)

    var byteCount: Int {
        switch self {
        case .change(let change): change.byteCount
        case .replaced: 64
        }
    }
}

/// The one change feed of DESIGN.md: the apply loop publishes each applied command's changes
/// once, and every consumer — watches, the config cache, the lease expiry, later the worker
/// registry and the topology views — subscribes here. `RaftNode` knows the feed, never its
/// consumers.
///
/// Bounded: each subscription buffers at most its `ChangeSubscription.Limits`, and one that falls
/// further behind is ended (`.overflowed`) and its buffer dropped, so a slow consumer can never
/// make the node's memory grow. Consumers that must not miss anything resubscribe and rebuild from
/// the store (`RaftNode.subscribe`), or resume from the store's history as a watch does.
public final class ChangeFeed: Sendable {
    private let subscriptions = NIOLockedValueBox<[ObjectIdentifier: ChangeSubscription]?>([:])

    public init() {}

    /// A new subscription, receiving everything published from now on. To pair it with a
    /// consistent read of the store, subscribe through `RaftNode.subscribe(limits:reading:)`.
    public func subscribe(limits: ChangeSubscription.Limits = .init()) -> ChangeSubscription {
        let subscription = ChangeSubscription(limits: limits, feed: self)
        let added = subscriptions.withLockedValue { subscriptions -> Bool in
            guard subscriptions != nil else { return false }
            subscriptions![ObjectIdentifier(subscription)] = subscription
            return true
        }
        if !added { subscription.end(.stopped) }
        return subscription
    }

    /// Called by the apply loop only (one caller at a time), so every subscription sees items in
    /// apply order. Never blocks: a subscription that cannot take the item is ended instead.
    func publish(_ item: FeedItem) {
        let current = subscriptions.withLockedValue { $0.map { Array($0.values) } ?? [] }
        let bytes = item.byteCount
        for subscription in current where !subscription.deliver(item, bytes: bytes) {
            remove(subscription)
        }
    }

    /// Ends every subscription (`.stopped`) and refuses new ones: the node is stopping.
    func stop() {
        let ended = subscriptions.withLockedValue { subscriptions -> [ChangeSubscription] in
            defer { subscriptions = nil }
            return subscriptions.map { Array($0.values) } ?? []
        }
        for subscription in ended { subscription.end(.stopped) }
    }

    func remove(_ subscription: ChangeSubscription) {
        subscriptions.withLockedValue { _ = $0?.removeValue(forKey: ObjectIdentifier(subscription)) }
    }

    public var subscriberCount: Int { subscriptions.withLockedValue { $0?.count ?? 0 } }
}
