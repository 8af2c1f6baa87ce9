import CoreMetrics
import Logging
import NIOConcurrencyHelpers
import NIOPosix

/// A gateway's Redis: the Sentinels (asked by `SentinelQuerier`, listened to for `+switch-master`),
/// the pool of verified connections to the master, and the commands the gateway runs on it.
public final class RedisClient: Sendable {
    public let settings: SentinelSettings
    public let pool: RedisMasterPool
    let querier: SentinelQuerier
    let metrics: RedisMetrics
    private let listener: SwitchMasterListener
    private let verifier: NIOThreadPool
    /// Bumped by every `+switch-master` heard, so the leader's watcher can look again at once.
    private let hintCount: NIOLockedValueBox<UInt64>
    private let logger: Logger

    public init(
        settings: SentinelSettings, metricsFactory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger = Logger(label: "raftgate.redis")
    ) {
        self.settings = settings
        self.logger = logger
        let metrics = RedisMetrics(factory: metricsFactory)
        self.metrics = metrics
        let querier = SentinelQuerier(settings: settings)
        self.querier = querier
        let pool = RedisMasterPool(settings: settings, querier: querier, metrics: metrics, logger: logger)
        self.pool = pool
        let hintCount = NIOLockedValueBox<UInt64>(0)
        self.hintCount = hintCount
        listener = SwitchMasterListener(settings: settings, logger: logger) { _ in
            hintCount.withLockedValue { $0 += 1 }
            Task { await pool.hinted() }
        }
        verifier = NIOThreadPool(numberOfThreads: 1)
        verifier.start()
    }

    public func shutdown() async {
        await listener.shutdown()
        await pool.shutdown()
        await querier.shutdown()
        try? await verifier.shutdownGracefully()
    }

    // MARK: Discovery

    /// What the Sentinels say now, with the master checked by `ROLE` on a connection of its own:
    /// what the leader commits. nil when they do not agree or the candidate is no master.
    public func verifiedResolution() async -> Result<MasterDiscovery.Resolution, RedisError> {
        guard case .resolved(let resolution) = await pool.resolve() else {
            return .failure(.noMaster("the Sentinels do not agree on a master"))
        }
        let settings = settings
        do {
            let verdict = try await verifier.runIfActive {
                let connection = try RedisConnection(
                    resolution.master, connectTimeout: settings.connectTimeout, commandTimeout: settings.commandTimeout)
                defer { connection.close() }
                return RoleCheck.verdict(try connection.command("ROLE"))
            }
            switch verdict {
            case .accept: return .success(resolution)
            case .reResolve(let reason):
                metrics.roleMismatches.increment()
                return .failure(.noMaster("\(resolution.master): \(reason)"))
            }
        } catch let error as RedisError {
            return .failure(error)
        } catch {
            return .failure(.shutDown)
        }
    }

    /// How many `+switch-master` hints this client heard.
    public var hintsHeard: UInt64 { hintCount.withLockedValue { $0 } }

    /// Every Sentinel's own answer (for `GET /redis`).
    public func sentinelAnswers() async -> [SentinelAnswer] { await querier.askAll() }

    // MARK: Rate limiting

    /// Asks the tenant's bucket for one request. Never throws: Redis being unreachable is turned
    /// into the rule's fail mode, and counted.
    public func admit(tenant: String, rule: RateLimitRule) async -> RateLimitDecision {
        let decision: RateLimitDecision
        do {
            let reply = try await pool.execute(rule.arguments(tenant: tenant), within: settings.rateLimitTimeout)
            if case .error(let message) = reply {
                decision = .unavailable("Redis refused the rate-limit script: \(message)", mode: rule.failMode)
            } else {
                decision =
                    RateLimitDecision.from(reply: reply)
                    ?? .unavailable("unexpected rate-limit answer \(reply)", mode: rule.failMode)
            }
        } catch {
            decision = .unavailable("\(error)", mode: rule.failMode)
        }
        switch decision {
        case .allowed: metrics.rateAllowed.increment()
        case .limited: metrics.rateLimited.increment()
        case .allowedUnchecked(let reason):
            metrics.rateFailedOpen.increment()
            logger.debug(
                "rate limit not checked, failing open", metadata: ["tenant": "\(tenant)", "reason": "\(reason)"])
        case .refused: metrics.rateFailedClosed.increment()
        }
        return decision
    }
}
