import Hummingbird
import Sentinel

/// `GET /redis`: the Redis topology the cluster committed (master, replicas, the Sentinels that
/// agreed, their config epoch, the store revision), and the master this node's connections are
/// verified against right now (`inUse`; null before the first command or right after a switch).
/// `?sentinels=1` also asks every Sentinel now and shows each one's own answer.
struct RedisRoutes: Sendable {
    let redis: RedisGateway

    func register(on router: Router<BasicRequestContext>) {
        router.get("redis") { request, _ in await RouteSupport.respond { try await self.show(request) } }
    }

    private func show(_ request: Request) async throws -> Response {
        let committed = redis.view.committed
        let pool = redis.client.pool.status
        var answers: [SentinelView]?
        if request.uri.queryParameters.get("sentinels") == "1" {
            answers = await redis.client.sentinelAnswers().map(SentinelView.init)
        }
        return try RouteSupport.encoded(
            RedisView(
                master: committed?.topology.master, replicas: committed?.topology.replicas ?? [],
                sentinels: committed?.topology.sentinels ?? [], epoch: committed?.topology.epoch,
                revision: committed?.revision, configuredSentinels: redis.client.settings.sentinels,
                masterName: redis.client.settings.masterName,
                inUse: InUse(
                    master: pool.master, epoch: pool.master == nil ? nil : pool.epoch,
                    idleConnections: pool.idleConnections),
                answers: answers))
    }
}

private struct RedisView: Encodable {
    var master: RedisEndpoint?
    var replicas: [RedisEndpoint]
    /// The Sentinels that agreed on `master`.
    var sentinels: [RedisEndpoint]
    var epoch: UInt64?
    var revision: UInt64?
    var configuredSentinels: [RedisEndpoint]
    var masterName: String
    var inUse: InUse
    var answers: [SentinelView]?

    func encode(to encoder: any Encoder) throws {
        // Nulls are written out, so "no master committed yet" reads as such.
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(master, forKey: .master)
        try container.encode(replicas, forKey: .replicas)
        try container.encode(sentinels, forKey: .sentinels)
        try container.encode(epoch, forKey: .epoch)
        try container.encode(revision, forKey: .revision)
        try container.encode(configuredSentinels, forKey: .configuredSentinels)
        try container.encode(masterName, forKey: .masterName)
        try container.encode(inUse, forKey: .inUse)
        try container.encodeIfPresent(answers, forKey: .answers)
    }

    enum CodingKeys: String, CodingKey {
        case master, replicas, sentinels, epoch, revision, configuredSentinels, masterName, inUse, answers
    }
}

private struct InUse: Encodable {
    var master: RedisEndpoint?
    var epoch: UInt64?
    var idleConnections: Int

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(master, forKey: .master)
        try container.encode(epoch, forKey: .epoch)
        try container.encode(idleConnections, forKey: .idleConnections)
    }

    enum CodingKeys: String, CodingKey { case master, epoch, idleConnections }
}

private struct SentinelView: Encodable {
    var sentinel: RedisEndpoint
    var master: RedisEndpoint?
    var epoch: UInt64?
    var error: String?

    init(_ answer: SentinelAnswer) {
        sentinel = answer.sentinel
        switch answer.outcome {
        case .master(let master, let epoch, _):
            self.master = master
            self.epoch = epoch
        case .unknownMaster(let why), .unreachable(let why):
            error = why
        }
    }
}
