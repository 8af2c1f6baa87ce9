import CoreMetrics
import Hummingbird

/// Counts and times every request: `raftgate_http_requests_total` and
/// `raftgate_http_request_duration_seconds`, labelled by method and status class (`2xx`…), not by
/// path, so a scan of random URLs cannot blow up the number of series.
struct RequestMetricsMiddleware: RouterMiddleware {
    let factory: any MetricsFactory

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
        let dimensions = [("method", method), ("status", "\(statusCode / 100)xx")]
        Counter(label: "raftgate_http_requests_total", dimensions: dimensions, factory: factory).increment()
        let elapsed = (ContinuousClock.now - started).components
        CoreMetrics.Timer(label: "raftgate_http_request_duration_seconds", dimensions: dimensions, factory: factory)
            .recordNanoseconds(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
    }
}
