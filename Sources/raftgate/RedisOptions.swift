import ArgumentParser
import Foundation
import Sentinel

/// `raftgate serve`'s settings for Redis under Sentinel: a flag, else its `RAFTGATE_*` variable,
/// else the camel-case key in the `--config` file, else the default. Without Sentinels, the node
/// runs no Redis client and serves neither `/cache` nor `/redis` (and rate limits nothing).
struct RedisOptions: ParsableArguments {
    @Option(help: "Sentinels to ask, host:port,… (RAFTGATE_REDIS_SENTINELS, \"redisSentinels\"); default none.")
    var redisSentinels: String?
    @Option(help: "The master's name at the Sentinels (RAFTGATE_REDIS_MASTER_NAME); default mymaster.")
    var redisMasterName: String?
    @Option(help: "Connections to the Redis master per node (RAFTGATE_REDIS_POOL_SIZE); default 8.")
    var redisPoolSize: Int?
    @Option(help: "Redis and Sentinel command timeout, ms (RAFTGATE_REDIS_TIMEOUT_MS); default 1000.")
    var redisTimeoutMs: Int?
    @Option(help: "Redis and Sentinel connect timeout, ms (RAFTGATE_REDIS_CONNECT_TIMEOUT_MS); default 500.")
    var redisConnectTimeoutMs: Int?

    /// nil when no Sentinels are configured.
    func settings(configFile: String?, environment: [String: String]) throws -> SentinelSettings? {
        let file = try Self.fileValues(configFile ?? environment["RAFTGATE_CONFIG"])
        func text(_ flag: String?, _ variable: String, _ key: String) -> String? {
            flag ?? environment[variable] ?? (file[key] as? String) ?? (file[key] as? NSNumber).map { "\($0)" }
        }
        func number(_ flag: Int?, _ variable: String, _ key: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let value = flag.map(String.init) ?? text(nil, variable, key) else { return nil }
            guard let parsed = Int(value), range.contains(parsed) else {
                throw ValidationError(
                    "\(variable) (or --\(key)) must be an integer from \(range.lowerBound) to \(range.upperBound), got \(value)"
                )
            }
            return parsed
        }
        guard let list = text(redisSentinels, "RAFTGATE_REDIS_SENTINELS", "redisSentinels") else { return nil }
        var sentinels: [RedisEndpoint] = []
        for item in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            guard let endpoint = RedisEndpoint(item) else {
                throw ValidationError("redisSentinels must be host:port,…; got \(item)")
            }
            sentinels.append(endpoint)
        }
        guard !sentinels.isEmpty else { return nil }
        guard Set(sentinels).count == sentinels.count else { throw ValidationError("redisSentinels lists one twice") }
        var settings = SentinelSettings(sentinels: sentinels)
        if let name = text(redisMasterName, "RAFTGATE_REDIS_MASTER_NAME", "redisMasterName") {
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                throw ValidationError("redisMasterName must be letters, digits, '-', '_' or '.', got \(name)")
            }
            settings.masterName = name
        }
        if let size = try number(redisPoolSize, "RAFTGATE_REDIS_POOL_SIZE", "redisPoolSize", 1...256) {
            settings.poolSize = size
        }
        if let timeout = try number(redisTimeoutMs, "RAFTGATE_REDIS_TIMEOUT_MS", "redisTimeoutMs", 10...60_000) {
            settings.commandTimeout = .milliseconds(timeout)
        }
        if let timeout = try number(
            redisConnectTimeoutMs, "RAFTGATE_REDIS_CONNECT_TIMEOUT_MS", "redisConnectTimeoutMs", 10...60_000)
        {
            settings.connectTimeout = .milliseconds(timeout)
        }
        return settings
    }

    /// The config file's top-level values (ServeSettings has already refused a bad file).
    private static func fileValues(_ path: String?) throws -> [String: Any] {
        guard let path, let data = FileManager.default.contents(atPath: path) else { return [:] }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }
}
