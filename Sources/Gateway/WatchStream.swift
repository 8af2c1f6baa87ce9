import Hummingbird
import NIOConcurrencyHelpers
import Node
import ServiceLifecycle

/// One watch's loop: the backlog from history, then the change feed, a bookmark every
/// `progressInterval`, and a `closed` event with a reason when the server ends it — the client
/// fell too far behind (its subscription overflowed), the node is stopping, or a snapshot jumped
/// past what the history still holds. Events are written in revision order, each once.
struct WatchStream: Sendable {
    let prefix: String
    let includeReserved: Bool
    /// Every change up to here was sent (or the client had it: `since`).
    let cursor: UInt64
    let backlog: [StoreChange]
    let subscription: ChangeSubscription
    let progressInterval: Duration
    let metrics: WatchMetrics

    private func matches(_ key: String) -> Bool {
        key.utf8.starts(with: prefix.utf8) && (includeReserved || !ReservedKeys.isReserved(key))
    }

    func run(_ writer: inout any ResponseBodyWriter) async throws {
        metrics.opened()
        let reason = NIOLockedValueBox("client_gone")
        let stopping = NIOLockedValueBox(false)
        defer {
            subscription.cancel()
            metrics.closed(reason: reason.withLockedValue { $0 })
        }
        let subscription = self.subscription
        try await withGracefulShutdownHandler {
            if let ending = try await stream(&writer, stopping: stopping) {
                reason.withLockedValue { $0 = ending }
                try await writer.finish(nil)
            }
        } onGracefulShutdown: {
            stopping.withLockedValue { $0 = true }
            subscription.cancel()
        }
    }

    /// Writes until the server ends the watch (its reason returned) or the client goes (throws).
    private func stream(_ writer: inout any ResponseBodyWriter, stopping: NIOLockedValueBox<Bool>) async throws
        -> String?
    {
        let events = ServerSentEvents()
        var cursor = self.cursor
        var text = ""
        var sent = 0
        for change in backlog {
            sent += events.append(change, matching: matches, to: &text)
        }
        cursor = max(cursor, backlog.last?.revision ?? 0)
        events.progress(cursor, to: &text)
        var nextProgress = ContinuousClock.now + progressInterval
        while true {
            if !text.isEmpty {
                try await writer.write(ByteBuffer(string: text))
                metrics.eventsSent.increment(by: sent)
                text = ""
                sent = 0
            }
            let next = await subscription.next(until: nextProgress)
            switch next {
            case .item(.change(let change)):
                if change.revision > cursor {
                    sent += events.append(change, matching: matches, to: &text)
                    cursor = change.revision
                }
            case .item(.replaced(let store)):
                // A snapshot from the leader replaced the store: what happened between the old
                // state and it comes from its history, if that reaches back far enough.
                guard let missed = store.history.changes(after: cursor) else {
                    events.closed(
                        reason: "compacted",
                        message: "this node installed a snapshot whose history starts after revision \(cursor); "
                            + "list and watch again", revision: cursor, to: &text)
                    try await writer.write(ByteBuffer(string: text))
                    return "compacted"
                }
                for change in missed { sent += events.append(change, matching: matches, to: &text) }
                cursor = max(cursor, store.revision)
            case .timedOut:
                break
            case .ended(let end):
                let (reason, message): (String, String) =
                    switch end {
                    case .overflowed:
                        (
                            "slow_consumer",
                            "the client fell more than \(subscription.limits.maxItems) changes behind; "
                                + "resume with since=\(cursor)"
                        )
                    case .stopped: ("node_stopping", "the node is stopping; resume elsewhere with since=\(cursor)")
                    case .cancelled where stopping.withLockedValue({ $0 }):
                        ("node_stopping", "the node is stopping; resume elsewhere with since=\(cursor)")
                    case .cancelled: ("client_gone", "the watch was cancelled")
                    }
                events.closed(reason: reason, message: message, revision: cursor, to: &text)
                try await writer.write(ByteBuffer(string: text))
                metrics.eventsSent.increment(by: sent)
                return reason
            }
            if ContinuousClock.now >= nextProgress {
                events.progress(cursor, to: &text)
                nextProgress = ContinuousClock.now + progressInterval
            }
        }
    }
}
