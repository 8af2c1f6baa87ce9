import Logging
import NIOConcurrencyHelpers
import NIOPosix

/// Connections to the Redis master, used one command at a time, their blocking hiredis calls run
/// on a thread pool of their own.
///
/// Every new connection follows the Sentinel client guidelines: resolve through the Sentinels
/// (majority, `MasterDiscovery`), connect, `ROLE` must say master (`RoleCheck`) — else resolve
/// again. When the master changes (seen while connecting, told by the committed topology, or a
/// `+switch-master` hint confirmed by the majority) the pool's generation moves on: idle
/// connections to the old master are closed at once, busy ones when they are returned, so no
/// command goes to the old master after the switch is known.
///
/// Once a topology is committed (`/_sys/topology/redis`, `follow(committed:)`) it is authoritative:
/// the pool only ever adopts the committed master. Its own Sentinel lookup and `ROLE` may confirm
/// it; when they name another master the pool refuses commands (`noMaster`) until the commit
/// moves, so a gateway that sees only the minority side of a partition cannot write to an old
/// master. A resolution that started before a switch (committed, hinted or an invalidation) is
/// never adopted after it: the pool's generation moved on while it ran.
public final class RedisMasterPool: Sendable {
    public struct Status: Sendable, Hashable {
        /// The master this pool's connections were verified against; nil before the first
        /// connection and after an invalidation.
        public var master: RedisEndpoint?
        public var epoch: UInt64
        public var idleConnections: Int
        public var generation: UInt64
        /// The committed master the pool is bound to; nil while nothing is committed.
        public var committed: RedisEndpoint?
        /// Connections open or being opened now, and the most there ever were (at most `poolSize`).
        public var open: Int
        public var peakOpen: Int
    }

    private struct State {
        var master: RedisEndpoint?
        var epoch: UInt64 = 0
        var generation: UInt64 = 0
        var idle: [ConnectionBox] = []
        var connected = false
        var shutDown = false
        var committed: (master: RedisEndpoint, epoch: UInt64)?
        /// Connections counted against `poolSize`: idle, in use, or being opened.
        var open = 0
        var peakOpen = 0
        /// Commands waiting for a connection, first come first served.
        var waiters: [(id: UInt64, wake: CheckedContinuation<Void, Never>)] = []
        var nextWaiter: UInt64 = 0
    }

    let settings: SentinelSettings
    let metrics: RedisMetrics
    private let threads: NIOThreadPool
    private let flight: ResolveFlight
    private let state = NIOLockedValueBox(State())
    private let lastFailureLog = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
    private let logger: Logger

    init(settings: SentinelSettings, querier: SentinelQuerier, metrics: RedisMetrics, logger: Logger) {
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        flight = ResolveFlight(querier: querier, metrics: metrics)
        threads = NIOThreadPool(numberOfThreads: max(1, settings.poolSize))
        threads.start()
    }

    public var status: Status {
        state.withLockedValue {
            Status(
                master: $0.master, epoch: $0.epoch, idleConnections: $0.idle.count, generation: $0.generation,
                committed: $0.committed?.master, open: $0.open, peakOpen: $0.peakOpen)
        }
    }

    func shutdown() async {
        let (idle, waiters) = state.withLockedValue { state in
            state.shutDown = true
            defer {
                state.idle = []
                state.waiters = []
            }
            return (state.idle, state.waiters)
        }
        for waiter in waiters { waiter.wake.resume() }
        await close(idle)
        try? await threads.shutdownGracefully()
    }

    // MARK: Commands

    /// Runs one command on the master. A broken connection or a `READONLY` answer (the master was
    /// demoted under us) invalidates the master and the command is tried once more on a freshly
    /// resolved one — so a command may reach Redis twice when the first try's reply was lost.
    ///
    /// The whole of it — waiting for a connection, resolving, connecting, the retry — is bounded
    /// by `within` (`requestTimeout` by default), checked between steps.
    public func execute(_ arguments: [[UInt8]], within: Duration? = nil) async throws(RedisError) -> RedisReply {
        let deadline = ContinuousClock.now + (within ?? settings.requestTimeout)
        var failure = RedisError.noMaster("not tried")
        for attempt in 0..<2 {
            if attempt > 0, ContinuousClock.now >= deadline { break }
            let box: ConnectionBox
            do {
                box = try await checkout(before: deadline)
            } catch {
                failure = error
                break
            }
            do {
                let reply = try await run(box, arguments)
                if case .error(let message) = reply, RoleCheck.isDemotion(message) {
                    metrics.roleMismatches.increment()
                    invalidate(box.connection.endpoint, reason: message)
                    await close([box])
                    failure = .reply(message)
                    continue
                }
                await checkin(box)
                if case .error = reply {
                    metrics.commandsErrorReply.increment()
                } else {
                    metrics.commandsOK.increment()
                }
                return reply
            } catch {
                invalidate(box.connection.endpoint, reason: "\(error)")
                await close([box])
                failure = error
            }
        }
        metrics.commandsUnavailable.increment()
        throw failure
    }

    public func execute(_ arguments: String...) async throws(RedisError) -> RedisReply {
        try await execute(arguments.map { Array($0.utf8) })
    }

    private func run(_ box: ConnectionBox, _ arguments: [[UInt8]]) async throws(RedisError) -> RedisReply {
        do {
            return try await threads.runIfActive { try box.connection.command(arguments) }
        } catch let error as RedisError {
            throw error
        } catch {
            throw .shutDown
        }
    }

    private enum Slot {
        case shutDown
        case reused(ConnectionBox)
        /// Counted in `open`: the caller opens a connection, or gives the slot back.
        case open
        case wait
    }

    /// An idle connection, or a new one while fewer than `poolSize` are open, or else a wait
    /// (woken when a connection is returned or closed) until `deadline`.
    private func checkout(before deadline: ContinuousClock.Instant) async throws(RedisError) -> ConnectionBox {
        let poolSize = max(1, settings.poolSize)
        while true {
            let slot = state.withLockedValue { state -> Slot in
                if state.shutDown { return .shutDown }
                if let box = state.idle.popLast() { return .reused(box) }
                guard state.open < poolSize else { return .wait }
                state.open += 1
                state.peakOpen = max(state.peakOpen, state.open)
                return .open
            }
            switch slot {
            case .shutDown: throw .shutDown
            case .reused(let box): return box
            case .open:
                do {
                    return try await connect(before: deadline)
                } catch {
                    release(1)
                    throw error
                }
            case .wait:
                guard ContinuousClock.now < deadline, !Task.isCancelled else {
                    throw .noMaster("all \(poolSize) connections busy until the request's deadline")
                }
                await waitForAConnection(until: deadline)
            }
        }
    }

    /// Parks the caller until a connection is returned or closed, the deadline passes, or the
    /// task is cancelled — whichever comes first resumes it, once.
    private func waitForAConnection(until deadline: ContinuousClock.Instant) async {
        let id = state.withLockedValue { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        let state = state
        let remove = { @Sendable in
            let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).wake
            }
            waiter?.resume()
        }
        let timer = Task {
            try? await Task.sleep(until: deadline, clock: .continuous)
            remove()
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                // Checked under the lock the timer and the cancellation take too: once past the
                // deadline (or cancelled) nobody would wake a waiter parked now.
                let parked = state.withLockedValue { state -> Bool in
                    guard !state.shutDown, ContinuousClock.now < deadline, !Task.isCancelled else { return false }
                    state.waiters.append((id, continuation))
                    return true
                }
                if !parked { continuation.resume() }
            }
        } onCancel: {
            remove()
        }
        timer.cancel()
    }

    /// `count` connections closed: their slots go to the first waiters.
    private func release(_ count: Int) {
        guard count > 0 else { return }
        let woken = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            state.open -= count
            let woken = state.waiters.prefix(count).map(\.wake)
            state.waiters.removeFirst(woken.count)
            return woken
        }
        for wake in woken { wake.resume() }
    }

    private func checkin(_ box: ConnectionBox) async {
        let (keep, woken) = state.withLockedValue { state -> (Bool, CheckedContinuation<Void, Never>?) in
            guard !state.shutDown, box.generation == state.generation, !box.connection.isBroken else {
                return (false, nil)
            }
            state.idle.append(box)
            return (true, state.waiters.isEmpty ? nil : state.waiters.removeFirst().wake)
        }
        woken?.resume()
        if !keep { await close([box]) }
    }

    // MARK: Connecting

    /// Resolve, connect, verify — the guidelines' loop, `resolveAttempts` times at most, none
    /// started after `deadline`.
    private func connect(before deadline: ContinuousClock.Instant) async throws(RedisError) -> ConnectionBox {
        var why = "no attempt"
        var lastRound: UInt64?
        for attempt in 0..<max(1, settings.resolveAttempts) {
            if attempt > 0 {
                do { try await Task.sleep(for: settings.resolveBackoff) } catch { break }
                guard ContinuousClock.now < deadline else {
                    why += " (request deadline reached)"
                    break
                }
            }
            let generation = state.withLockedValue { $0.generation }
            // A retry never reuses the round whose answer it just found wanting.
            let (decision, round) = await flight.resolve(newerThan: lastRound)
            lastRound = round
            guard case .resolved(let resolution) = decision else {
                if case .undecided(let reason) = decision { why = reason }
                continue
            }
            if let refusal = state.withLockedValue({ Self.refusal(resolution, $0) }) {
                why = refusal
                continue
            }
            let settings = settings
            let opened: (box: ConnectionBox, verdict: RoleCheck.Verdict)
            do {
                opened = try await threads.runIfActive {
                    let connection = try RedisConnection(
                        resolution.master, connectTimeout: settings.connectTimeout,
                        commandTimeout: settings.commandTimeout)
                    _ = try connection.command("CLIENT", "SETNAME", settings.clientName)
                    let verdict = RoleCheck.verdict(try connection.command("ROLE"))
                    return (ConnectionBox(connection), verdict)
                }
            } catch {
                why = "\(resolution.master): \(error)"
                continue
            }
            switch opened.verdict {
            case .accept:
                switch adopt(resolution, opened.box.connection, resolvedAt: generation) {
                case .success(let box): return box
                case .failure(let refusal):
                    why = refusal.reason
                    await discard(opened.box)
                }
            case .reResolve(let reason):
                metrics.roleMismatches.increment()
                logger.warning(
                    "Sentinels named a Redis that is not a master; resolving again",
                    metadata: ["candidate": "\(resolution.master)", "reason": "\(reason)"])
                why = "\(resolution.master): \(reason)"
                await discard(opened.box)
            }
        }
        logFailure(why)
        throw .noMaster(why)
    }

    /// At most one line a second: during an outage every request fails the same way.
    private func logFailure(_ why: String) {
        let now = ContinuousClock.now
        let due = lastFailureLog.withLockedValue { last -> Bool in
            guard last.map({ now - $0 >= .seconds(1) }) ?? true else { return false }
            last = now
            return true
        }
        if due { logger.warning("no verified Redis master", metadata: ["reason": "\(why)"]) }
    }

    /// Why `resolution` may not be used while the pool is in `state`: it names another master
    /// than the committed one. nil when it may.
    private static func refusal(_ resolution: MasterDiscovery.Resolution, _ state: State) -> String? {
        guard let committed = state.committed, committed.master != resolution.master else { return nil }
        return "the Sentinels name \(resolution.master) (epoch \(resolution.epoch)) but the committed master is "
            + "\(committed.master) (epoch \(committed.epoch)); no commands until they agree"
    }

    private struct Refused: Error {
        var reason: String
    }

    /// Takes a verified connection into the pool, switching master if it is a new one — unless
    /// the committed master is another one, or a switch happened since the resolution started
    /// (`resolvedAt`, the generation then) and the pool is not already on this master.
    private func adopt(
        _ resolution: MasterDiscovery.Resolution, _ connection: RedisConnection, resolvedAt: UInt64
    ) -> Result<ConnectionBox, Refused> {
        let adopted = state.withLockedValue {
            state -> Result<(ConnectionBox, [ConnectionBox], RedisEndpoint?, Bool), Refused> in
            if let refusal = Self.refusal(resolution, state) { return .failure(Refused(reason: refusal)) }
            if state.generation != resolvedAt, state.master != resolution.master {
                return .failure(
                    Refused(reason: "\(resolution.master) was resolved before the master last changed; resolving again")
                )
            }
            let isReconnect = state.connected
            state.connected = true
            var stale: [ConnectionBox] = []
            let previous = state.master
            if state.master != resolution.master {
                state.generation += 1
                stale = state.idle
                state.idle = []
                state.master = resolution.master
            }
            state.epoch = resolution.epoch
            return .success((ConnectionBox(connection, generation: state.generation), stale, previous, isReconnect))
        }
        guard case .success(let (box, stale, previous, isReconnect)) = adopted else {
            if case .failure(let refused) = adopted { return .failure(refused) }
            return .failure(Refused(reason: "unreachable"))
        }
        if isReconnect { metrics.reconnects.increment() }
        if previous != resolution.master {
            metrics.masterChanges.increment()
            logger.info(
                "Redis master in use", metadata: ["master": "\(resolution.master)", "epoch": "\(resolution.epoch)"])
        }
        if !stale.isEmpty { Task { await self.close(stale) } }
        return .success(box)
    }

    // MARK: Switching

    /// Forgets `endpoint` as the master (it broke, or answered READONLY): idle connections close
    /// and the next command resolves again.
    func invalidate(_ endpoint: RedisEndpoint, reason: String) {
        let stale = state.withLockedValue { state -> [ConnectionBox]? in
            guard state.master == endpoint else { return nil }
            state.master = nil
            state.generation += 1
            defer { state.idle = [] }
            return state.idle
        }
        guard let stale else { return }
        logger.warning(
            "Redis master connection failed; resolving again",
            metadata: ["master": "\(endpoint)", "reason": "\(reason)"])
        Task { await self.close(stale) }
    }

    /// The committed topology (or a confirmed hint) names `master`: when it is not the one in use,
    /// the pool's connections to the old one are closed and the next command resolves and verifies.
    public func masterChanged(to master: RedisEndpoint) async {
        let stale = state.withLockedValue { state -> [ConnectionBox]? in
            guard state.master != master else { return nil }
            // Moved even when no master is in use: a resolution in flight must not adopt the old one.
            state.generation += 1
            guard state.master != nil else { return nil }
            state.master = nil
            defer { state.idle = [] }
            return state.idle
        }
        guard let stale else { return }
        logger.info("Redis master changed; closing connections to the old one", metadata: ["master": "\(master)"])
        await close(stale)
    }

    /// The committed topology's master (nil: nothing committed, the Sentinels decide alone). The
    /// pool adopts no other master while one is committed.
    public func follow(committed master: RedisEndpoint?, epoch: UInt64) async {
        let changed = state.withLockedValue { state -> Bool in
            let changed = state.committed?.master != master
            state.committed = master.map { ($0, epoch) }
            return changed
        }
        if changed, let master { await masterChanged(to: master) }
    }

    /// A `+switch-master` hint: resolve through the majority now (a fresh round, not one that
    /// started before the switch), and switch if it names another master.
    func hinted() async {
        metrics.hints.increment()
        if case .resolved(let resolution) = await flight.resolveFresh() {
            await masterChanged(to: resolution.master)
        }
    }

    func resolve() async -> MasterDiscovery.Decision { await flight.resolve().decision }

    /// Closes connections the pool counted in `open` (idle, in use, stale), freeing their slots.
    private func close(_ boxes: [ConnectionBox]) async {
        guard !boxes.isEmpty else { return }
        release(boxes.count)
        await discard(boxes)
    }

    /// Closes a candidate that never joined the pool (its slot stays with the caller).
    private func discard(_ box: ConnectionBox) async { await discard([box]) }

    private func discard(_ boxes: [ConnectionBox]) async {
        do {
            try await threads.runIfActive { for box in boxes { box.connection.close() } }
        } catch {
            // The pool is stopped: closing here is safe too, nothing else holds these.
            for box in boxes { box.connection.close() }
        }
    }
}
