import AsyncHTTPClient
import CoreMetrics
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The proxy's settings (`raftgate serve` flags).
public struct WorkerProxySettings: Sendable, Hashable {
    /// Until the worker's response head arrives; a retry gets a fresh one.
    public var perTryTimeout: Duration = .seconds(5)
    public var connectTimeout: Duration = .seconds(1)
    /// Between two active health checks of each worker.
    public var healthCheckInterval: Duration = .seconds(1)
    public var healthCheckTimeout: Duration = .seconds(1)
    /// Pooled connections per worker (a soft limit: more requests queue for one).
    public var connectionsPerWorker = 128
    public var balancer = WorkerBalancer.Settings()
    /// Where the balancer's tie-breaking starts (the node id).
    public var rotationSeed: UInt64 = 0

    public init() {}
}

/// One request to proxy, as the gateway hands it over.
public struct ProxyRequest: Sendable {
    public var service: String
    public var method: HTTPMethod
    /// Path and query on the worker, starting with `/`.
    public var target: String
    public var headers: HTTPHeaders
    public var body: HTTPClientRequest.Body?
    /// Idempotent with a body that can be sent again: may be retried once on another worker.
    public var retryable: Bool

    public init(
        service: String, method: HTTPMethod, target: String, headers: HTTPHeaders, body: HTTPClientRequest.Body?,
        retryable: Bool
    ) {
        self.service = service
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.retryable = retryable
    }
}

/// Thrown by a streamed request body that grew past the body limit: the client's fault, not the
/// worker's, so it is answered 413 and counts against no worker.
public struct RequestBodyTooLarge: Error, Sendable {
    public init() {}
}

/// Why no worker's response can be passed on.
public struct ProxyFailure: Error, Sendable, Hashable {
    public var status: Int
    public var code: String
    public var message: String
    public var retryAfterSeconds: Int?
}

/// Gives back the worker's in-flight slot once, when the response body is done (or abandoned).
public final class ProxyRelease: Sendable {
    private let action = NIOLockedValueBox<(@Sendable () -> Void)?>(nil)

    init(_ action: @escaping @Sendable () -> Void) {
        self.action.withLockedValue { $0 = action }
    }

    public func callAsFunction() {
        action.withLockedValue { action in
            defer { action = nil }
            return action
        }?()
    }

    deinit { self() }
}

public enum ProxyAnswer: Sendable {
    case response(HTTPClientResponse, worker: String, release: ProxyRelease)
    case failure(ProxyFailure)
}

/// The proxy to workers: picks a worker from the registry view by least outstanding requests,
/// forwards over pooled connections (async-http-client), retries an idempotent request once on
/// another worker after a connect failure or timeout, ejects outliers, and checks every worker's
/// `GET /health`. Every decision is `WorkerBalancer`'s; this shell only does the I/O and the clock.
public final class WorkerProxy: Sendable {
    public let settings: WorkerProxySettings
    private let balancer: NIOLockedValueBox<WorkerBalancer>
    private let syncedRevision = NIOLockedValueBox<UInt64?>(nil)
    private let client: HTTPClient
    private let checker: HTTPClient
    private let metrics: WorkerMetrics
    private let logger: Logger
    private let checks = NIOLockedValueBox<Task<Void, Never>?>(nil)

    public init(
        registry: WorkerRegistry, settings: WorkerProxySettings = WorkerProxySettings(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory, logger: Logger
    ) {
        self.settings = settings
        self.logger = logger
        balancer = NIOLockedValueBox(WorkerBalancer(settings: settings.balancer, rotationSeed: settings.rotationSeed))
        metrics = WorkerMetrics(factory: metricsFactory)
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .nanoseconds(Int64(settings.connectTimeout.nanoseconds))),
            connectionPool: .init(
                idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: settings.connectionsPerWorker))
        // A refused connection must fail the request at once (and be retried on another worker by
        // the proxy), not wait out the connect timeout in the pool's own back-off.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.httpVersion = .http1Only
        configuration.decompression = .disabled
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        var checkConfiguration = configuration
        checkConfiguration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 2)
        checkConfiguration.connectionPool.retryConnectionEstablishment = false
        checker = HTTPClient(eventLoopGroupProvider: .singleton, configuration: checkConfiguration)
        registry.observe { [weak self] directory in self?.sync(directory) }
        let interval = settings.healthCheckInterval
        checks.withLockedValue {
            $0 = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    guard let self else { return }
                    await self.checkAll()
                }
            }
        }
    }

    public func shutdown() async {
        checks.withLockedValue { $0?.cancel() }
        try? await client.shutdown()
        try? await checker.shutdown()
    }

    private func sync(_ directory: WorkerDirectory) {
        let fresh = syncedRevision.withLockedValue { synced -> Bool in
            if let synced, directory.revision < synced { return false }
            synced = directory.revision
            return true
        }
        guard fresh else { return }
        let now = ContinuousClock.now
        let counts = balancer.withLockedValue { balancer -> [(String, Int)] in
            balancer.sync(directory)
            return balancer.services.keys.map { ($0, balancer.eligibleCount($0, at: now)) }
        }
        for (service, count) in counts { metrics.healthy(service, count) }
    }

    // MARK: Proxying

    public func forward(_ request: ProxyRequest) async -> ProxyAnswer {
        let service = request.service
        var tried: Set<String> = []
        var lastFailure: ProxyFailure?
        for attempt in 0..<2 {
            let pick = balancer.withLockedValue { $0.pick(service, excluding: tried, at: .now) }
            let worker: WorkerRecord
            switch pick {
            case .unknownService:
                return .failure(
                    ProxyFailure(
                        status: 404, code: "unknown_service", message: "no worker is registered for \(service)"))
            case .noEligibleWorker:
                let failure =
                    lastFailure
                    ?? ProxyFailure(
                        status: 503, code: "no_healthy_worker",
                        message: "no healthy worker of \(service) can take the request now", retryAfterSeconds: 1)
                metrics.request(service, status: failure.status)
                return .failure(failure)
            case .worker(let picked):
                worker = picked
            }
            tried.insert(worker.id)
            if attempt > 0 { metrics.retry(service) }
            let release = ProxyRelease { [balancer] in balancer.withLockedValue { $0.release(service, worker.id) } }
            var upstream = HTTPClientRequest(url: "http://\(worker.address)\(request.target)")
            upstream.method = request.method
            upstream.headers = request.headers
            upstream.body = request.body
            do {
                let response = try await client.execute(
                    upstream, timeout: .nanoseconds(Int64(settings.perTryTimeout.nanoseconds)), logger: logger)
                note(response.status.code >= 500 ? .serverError : .success, service: service, worker: worker)
                metrics.request(service, status: Int(response.status.code))
                return .response(response, worker: worker.id, release: release)
            } catch is RequestBodyTooLarge {
                release()
                metrics.request(service, status: 413)
                return .failure(ProxyFailure(status: 413, code: "too_large", message: "the request body is too large"))
            } catch {
                release()
                let outcome = Self.classify(error)
                note(outcome, service: service, worker: worker)
                let failure = Self.failure(for: outcome, worker: worker, error: error)
                lastFailure = failure
                let retriable: Bool =
                    switch outcome {
                    case .connectFailure, .timeout: request.retryable
                    default: false
                    }
                if !retriable || attempt == 1 {
                    metrics.request(service, status: failure.status)
                    return .failure(failure)
                }
                logger.debug(
                    "retrying on another worker",
                    metadata: ["service": "\(service)", "worker": "\(worker.id)", "error": "\(error)"])
            }
        }
        let failure = lastFailure!
        metrics.request(service, status: failure.status)
        return .failure(failure)
    }

    private func note(_ outcome: UpstreamOutcome, service: String, worker: WorkerRecord) {
        let now = ContinuousClock.now
        let (ejected, eligible) = balancer.withLockedValue { balancer in
            (
                balancer.record(outcome, service: service, id: worker.id, at: now),
                balancer.eligibleCount(service, at: now)
            )
        }
        if let ejected {
            metrics.ejection(service)
            metrics.healthy(service, eligible)
            logger.warning(
                "worker ejected",
                metadata: [
                    "service": "\(service)", "worker": "\(worker.id)", "address": "\(worker.address)",
                    "outcome": "\(outcome)", "for": "\(ejected)",
                ])
        }
    }

    static func failure(for outcome: UpstreamOutcome, worker: WorkerRecord, error: any Error) -> ProxyFailure {
        switch outcome {
        case .timeout:
            ProxyFailure(
                status: 504, code: "worker_timeout", message: "worker \(worker.id) did not answer in time")
        case .connectFailure:
            ProxyFailure(
                status: 502, code: "worker_unreachable", message: "worker \(worker.id) could not be reached: \(error)")
        case .protocolError, .serverError, .success:
            ProxyFailure(
                status: 502, code: "bad_worker_response",
                message: "worker \(worker.id) answered no valid HTTP: \(error)")
        }
    }

    /// How a failed try ended, from async-http-client's and NIO's errors.
    static func classify(_ error: any Error) -> UpstreamOutcome {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout: return .timeout
            case .connectTimeout: return .connectFailure(refused: false)
            // The pooled connection closed before any response (the worker died or restarted).
            case .remoteConnectionClosed: return .connectFailure(refused: false)
            default: return .protocolError
            }
        }
        if let error = error as? NIOConnectionError {
            let refused = error.connectionErrors.contains { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }
            return .connectFailure(refused: refused)
        }
        if let error = error as? IOError {
            return .connectFailure(refused: error.errnoCode == ECONNREFUSED)
        }
        if let error = error as? ChannelError {
            switch error {
            // The pooled connection was closed under the request (the worker died): nothing came back.
            case .connectTimeout, .ioOnClosedChannel, .alreadyClosed, .eof, .outputClosed, .inputClosed:
                return .connectFailure(refused: false)
            default:
                return .protocolError
            }
        }
        return .protocolError
    }

    // MARK: Active health checks

    private func checkAll() async {
        let workers = balancer.withLockedValue { $0.all.map(\.record) }
        await withTaskGroup(of: Void.self) { group in
            for worker in workers {
                group.addTask { await self.check(worker) }
            }
        }
        let now = ContinuousClock.now
        let counts = balancer.withLockedValue { balancer in
            balancer.services.keys.map { ($0, balancer.eligibleCount($0, at: now)) }
        }
        for (service, count) in counts { metrics.healthy(service, count) }
    }

    private func check(_ worker: WorkerRecord) async {
        var passed = false
        var refused = false
        do {
            let response = try await checker.execute(
                HTTPClientRequest(url: "http://\(worker.address)/health"),
                timeout: .nanoseconds(Int64(settings.healthCheckTimeout.nanoseconds)), logger: logger)
            passed = (200..<300).contains(response.status.code)
            _ = try? await response.body.collect(upTo: 64 << 10)
        } catch {
            refused = Self.classify(error) == .connectFailure(refused: true)
        }
        let changed = balancer.withLockedValue {
            $0.recordCheck(service: worker.service, id: worker.id, passed: passed, refused: refused, at: .now)
        }
        if changed {
            logger.notice(
                passed ? "worker healthy" : "worker unhealthy",
                metadata: ["service": "\(worker.service)", "worker": "\(worker.id)", "address": "\(worker.address)"])
        }
    }

    /// Every worker with what this node knows of its health, for `GET /workers`.
    public func statuses() -> [WorkerStatus] {
        let now = ContinuousClock.now
        return balancer.withLockedValue { balancer in
            balancer.all.map { state in
                WorkerStatus(
                    record: state.record, healthy: state.health.isHealthy, ejected: state.outlier.isEjected(at: now),
                    eligible: state.isEligible(at: now), outstanding: state.outstanding,
                    ejections: state.outlier.ejections)
            }
        }
    }
}

/// One worker in `GET /workers`.
public struct WorkerStatus: Sendable, Hashable {
    public var record: WorkerRecord
    /// The active health checks' verdict.
    public var healthy: Bool
    public var ejected: Bool
    /// Takes new requests now (healthy, not ejected, not draining).
    public var eligible: Bool
    public var outstanding: Int
    public var ejections: Int
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
