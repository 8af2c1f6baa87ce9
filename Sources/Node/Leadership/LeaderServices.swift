import Logging

/// Work only the leader does: lease expiry today; the Patroni and Sentinel topology watchers and
/// SWIM→registry mirroring later.
public protocol LeaderService: Sendable {
    var name: String { get }
    /// Runs while this node leads `term`; cancelled when it stops leading that term (or the node
    /// stops), and must then return promptly. Whatever it proposes should be proposed for `term`
    /// only (`RaftNode.propose(_:inTerm:)`), so a late proposal cannot land in another term.
    func lead(term: UInt64) async
}

/// Starts every registered `LeaderService` when this node becomes leader and cancels them when it
/// stops leading, from the one `LeadershipSignal`. The services of one term have all returned
/// before any of the next term start, so two terms' services never overlap.
public actor LeaderServices {
    private var services: [any LeaderService] = []
    private var running: [Task<Void, Never>] = []
    private var leadingTerm: UInt64?
    private var loop: Task<Void, Never>?
    private var stopped = false
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// Registers a service; it starts at once when this node already leads.
    public func add(_ service: any LeaderService) {
        guard !stopped else { return }
        services.append(service)
        if let leadingTerm { start(service, term: leadingTerm) }
    }

    /// The term whose services are running, if any.
    public var term: UInt64? { leadingTerm }

    func follow(_ signal: LeadershipSignal) {
        let updates = signal.updates()
        loop = Task { [weak self] in
            for await leadership in updates {
                guard let self else { return }
                await self.react(to: leadership)
            }
        }
    }

    private func react(to leadership: Leadership) async {
        guard !stopped else { return }
        if leadership.isLeader {
            guard leadingTerm != leadership.term else { return }
            await stopRunning()
            leadingTerm = leadership.term
            logger.info(
                "leader services starting", metadata: ["term": "\(leadership.term)", "count": "\(services.count)"])
            for service in services { start(service, term: leadership.term) }
        } else if leadingTerm != nil {
            await stopRunning()
        }
    }

    private func start(_ service: any LeaderService, term: UInt64) {
        running.append(Task { await service.lead(term: term) })
    }

    private func stopRunning() async {
        guard let term = leadingTerm else { return }
        leadingTerm = nil
        let tasks = running
        running = []
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        logger.info("leader services stopped", metadata: ["term": "\(term)"])
    }

    /// Stops the services and forgets them (they hold the node; this breaks the cycle).
    func stop() async {
        stopped = true
        loop?.cancel()
        loop = nil
        await stopRunning()
        services = []
    }
}
