import CoreMetrics
import Hummingbird
import NIOConcurrencyHelpers
import Node

/// Counts and times every request: `raftgate_http_requests_total` and
/// `raftgate_http_request_duration_seconds`, labelled by method and status class (`2xx`…), not by
/// path, so a scan of random URLs cannot blow up the number of series.
struct RequestMetricsMiddleware: RouterMiddleware {
    let factory: any MetricsFactory
    /// The counter and timer of each (method, status class), made once: asking the factory on
    /// every request costs a registry lookup under its lock on the hot path.
    private let series = NIOLockedValueBox([SeriesKey: (Counter, CoreMetrics.Timer)]())

    private struct SeriesKey: Hashable {
        var method: String
        var statusClass: Int
    }

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    func handle(
        _ request: Request, context: BasicRequestContext, next: (Request, BasicRequestContext) async throws -> Response
    ) async throws -> Response {
        let started = ContinuousClock.now
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPResponseError {
            record(request, statusCode: error.status.code, since: started)
            throw error
        } catch {
            record(request, statusCode: 500, since: started)
            throw error
        }
        record(request, statusCode: response.status.code, since: started)
        return response
    }

    private static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]

    private func record(_ request: Request, statusCode: Int, since started: ContinuousClock.Instant) {
        let method = Self.knownMethods.contains(request.method.rawValue) ? request.method.rawValue : "other"
        let key = SeriesKey(method: method, statusClass: statusCode / 100)
        let (counter, timer) = series.withLockedValue { series in
            if let known = series[key] { return known }
            let dimensions = [("method", method), ("status", "\(key.statusClass)xx")]
            let made = (
                Counter(label: "raftgate_http_requests_total", dimensions: dimensions, factory: factory),
                CoreMetrics.Timer(
                    label: "raftgate_http_request_duration_seconds", dimensions: dimensions, factory: factory)
            )
            series[key] = made
            return made
        }
        counter.increment()
        timer.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
    }
}
