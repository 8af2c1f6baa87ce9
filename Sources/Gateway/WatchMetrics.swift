import CoreMetrics
import NIOConcurrencyHelpers

/// Watches open, events sent and why watches closed — for `/metrics` and `/cluster`.
final class WatchMetrics: Sendable {
    private let open = NIOLockedValueBox(0)
    private let openGauge: Gauge
    let eventsSent: Counter
    private let factory: any MetricsFactory
    private let closedCounters = NIOLockedValueBox([String: Counter]())

    init(factory: any MetricsFactory) {
        self.factory = factory
        openGauge = Gauge(label: "raftgate_watchers_open", factory: factory)
        eventsSent = Counter(label: "raftgate_watch_events_sent_total", factory: factory)
    }

    var openWatchers: Int { open.withLockedValue { $0 } }

    func opened() {
        let count = open.withLockedValue { open -> Int in
            open += 1
            return open
        }
        openGauge.record(Int64(count))
    }

    /// `reason`: one of a few fixed words (`client_gone`, `slow_consumer`, `node_stopping`, `compacted`).
    func closed(reason: String) {
        let count = open.withLockedValue { open -> Int in
            open -= 1
            return open
        }
        openGauge.record(Int64(count))
        let counter = closedCounters.withLockedValue { counters -> Counter in
            if let known = counters[reason] { return known }
            let made = Counter(label: "raftgate_watch_closed_total", dimensions: [("reason", reason)], factory: factory)
            counters[reason] = made
            return made
        }
        counter.increment()
    }
}
