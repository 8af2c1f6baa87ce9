import NIOPosix

/// Asks every configured Sentinel about the master, all at once, on a thread pool of its own (two
/// threads per Sentinel: a Sentinel that hangs until the timeout delays no other, and a fresh
/// round — after a `+switch-master` — can run beside one stuck on a hung Sentinel), and decides
/// with `MasterDiscovery`. Connections to the Sentinels are kept between rounds.
public final class SentinelQuerier: Sendable {
    public let settings: SentinelSettings
    private let pool: NIOThreadPool
    private let shelf = ConnectionShelf()

    public init(settings: SentinelSettings) {
        self.settings = settings
        pool = NIOThreadPool(numberOfThreads: max(1, 2 * settings.sentinels.count))
        pool.start()
    }

    public func shutdown() async {
        let boxes = shelf.removeAll()
        try? await pool.runIfActive { for box in boxes { box.connection.close() } }
        try? await pool.shutdownGracefully()
    }

    /// Every Sentinel's answer, in the configured order.
    public func askAll() async -> [SentinelAnswer] {
        await withTaskGroup(of: (Int, SentinelAnswer).self) { group in
            for (index, sentinel) in settings.sentinels.enumerated() {
                group.addTask { (index, await self.ask(sentinel)) }
            }
            var answers: [(Int, SentinelAnswer)] = []
            for await answer in group { answers.append(answer) }
            return answers.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    public func decide() async -> MasterDiscovery.Decision {
        MasterDiscovery.decide(await askAll(), configured: settings.sentinels.count)
    }

    func ask(_ sentinel: RedisEndpoint) async -> SentinelAnswer {
        let settings = settings
        let shelf = shelf
        do {
            return try await pool.runIfActive {
                // A kept connection may have died with its Sentinel since: one fresh try then.
                if let kept = shelf.take(sentinel), let answer = try? Self.query(kept, settings, shelf) {
                    return answer
                }
                let fresh = ConnectionBox(
                    try RedisConnection(
                        sentinel, connectTimeout: settings.connectTimeout, commandTimeout: settings.commandTimeout))
                return try Self.query(fresh, settings, shelf)
            }
        } catch {
            return SentinelAnswer(sentinel: sentinel, outcome: .unreachable("\(error)"))
        }
    }

    private static func query(_ box: ConnectionBox, _ settings: SentinelSettings, _ shelf: ConnectionShelf) throws
        -> SentinelAnswer
    {
        let connection = box.connection
        let name = settings.masterName
        let address = try connection.command("SENTINEL", "get-master-addr-by-name", name)
        let master = try connection.command("SENTINEL", "master", name)
        let replicas = try connection.command("SENTINEL", "replicas", name)
        shelf.put(box)
        return SentinelAnswer.parse(sentinel: connection.endpoint, address: address, master: master, replicas: replicas)
    }
}
