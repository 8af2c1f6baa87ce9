import CoreMetrics
import NIOConcurrencyHelpers

/// The proxy's numbers per service: requests by status class, retries, ejections, healthy
/// workers. Labelled by registered service names only (an unknown service is answered 404 before
/// anything is counted), so a URL scan cannot create series.
final class WorkerMetrics: Sendable {
    private struct Series {
        var requests: [String: Counter] = [:]
        var retries: Counter
        var ejections: Counter
        var healthy: Gauge
    }

    private let factory: any MetricsFactory
    private let series = NIOLockedValueBox<[String: Series]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    private func with<T>(_ service: String, _ body: (inout Series) -> T) -> T {
        series.withLockedValue { all in
            var entry =
                all[service]
                ?? Series(
                    retries: Counter(
                        label: "raftgate_worker_retries_total", dimensions: [("service", service)], factory: factory),
                    ejections: Counter(
                        label: "raftgate_worker_ejections_total", dimensions: [("service", service)], factory: factory),
                    healthy: Gauge(
                        label: "raftgate_worker_healthy", dimensions: [("service", service)], factory: factory)
                )
            defer { all[service] = entry }
            return body(&entry)
        }
    }

    /// `status` 0 counts a request that got no answer from any worker under its own class, `error`.
    func request(_ service: String, status: Int) {
        let statusClass = status == 0 ? "error" : "\(status / 100)xx"
        let counter = with(service) { series -> Counter in
            if let counter = series.requests[statusClass] { return counter }
            let counter = Counter(
                label: "raftgate_worker_requests_total", dimensions: [("service", service), ("class", statusClass)],
                factory: factory)
            series.requests[statusClass] = counter
            return counter
        }
        counter.increment()
    }

    func retry(_ service: String) { with(service) { $0.retries }.increment() }
    func ejection(_ service: String) { with(service) { $0.ejections }.increment() }
    func healthy(_ service: String, _ count: Int) { with(service) { $0.healthy }.record(count) }
}
