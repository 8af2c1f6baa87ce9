import ArgumentParser
import Configuration
import Foundation
import Logging
import Patroni
import SystemPackage

/// Everything `raftgate serve` is told, resolved from three layers, strongest first: command-line
/// flags, `RAFTGATE_*` environment variables, then a JSON config file (`--config` or
/// `RAFTGATE_CONFIG`). That is the order etcd and Consul use, so a file can hold a node's
/// settings and a flag or variable can still override one for a single run.
///
/// Config file keys are the flags' names in camel case: `id`, `dataDir`, `http`, `health`, `raft`,
/// `peers`, `tickMs`, `logLevel`, `maxBodyBytes`, `swim`, `swimSeeds`, `clusterKey`, `insecureDev`,
/// `swimReplayWindowMs`, `adminToken`, `watchHistory`, TLS's (`TLSSettings`), the limits of
/// `LimitOptions`, the Patroni watcher's settings of `PostgresOptions` and `/sql`'s of `SQLPoolOptions`.
struct ServeSettings: Sendable {
    var id: UInt64
    var dataDirectory: String
    var http: Address
    var health: Address
    var raft: Address
    var peers: [UInt64: Address]
    var tickMilliseconds: Int
    var logLevel: Logger.Level
    var maxBodyBytes: Int
    var swim: Address
    var swimSeeds: [String]
    var clusterKey: String
    /// True when no cluster key was configured and `--insecure-dev` put the development key in.
    var usesDevelopmentKey: Bool
    /// How far a SWIM packet's timestamp may be from this node's clock (replay protection).
    var swimReplayWindowMilliseconds: Int
    /// Guards admin routes (config writes); nil refuses them. There is no default.
    var adminToken: String?
    /// Changes a brand-new store keeps for watches to resume from.
    var watchHistory: Int
    /// Optional TLS on the API and health listeners and mutual TLS on the peer port.
    var tls = TLSSettings()
    /// Range, store, proposal and connection bounds (`LimitSettings`).
    var limits = LimitSettings()
    /// PostgreSQL under Patroni (`PostgresSettings`); nil when no members are configured.
    var postgres: TopologyWatchSettings?
    /// `/sql`'s tenant pools and a fixed PostgreSQL route (`SQLPoolSettings`).
    var sqlPools = SQLPoolSettings()

    /// The key `--insecure-dev` uses when none is configured: public, so only for a throwaway
    /// cluster on one machine. Without `--insecure-dev`, `serve` refuses to start without a key.
    static let developmentClusterKey = "raftgate-insecure-development-key"

    /// Flags as parsed; nil where the flag was not given.
    struct Flags: Sendable {
        var config: String?
        var id: UInt64?
        var dataDir: String?
        var http: String?
        var health: String?
        var raft: String?
        var peers: String?
        var tickMs: Int?
        var logLevel: String?
        var maxBodyBytes: Int?
        var swim: String?
        var swimSeeds: String?
        var clusterKey: String?
        var insecureDev = false
        var swimReplayWindowMs: Int?
        var adminToken: String?
        var watchHistory: Int?
        var tls = TLSSettings.Flags()
        var limits = LimitOptions()
        var postgres = PostgresOptions()
        var sqlPools = SQLPoolOptions()
    }

    static func resolve(_ flags: Flags, environment: [String: String]) async throws -> ServeSettings {
        // Only RAFTGATE_* variables, without the prefix: `RAFTGATE_DATA_DIR` answers key `dataDir`.
        var stripped: [String: String] = [:]
        for (name, value) in environment where name.hasPrefix("RAFTGATE_") {
            stripped[String(name.dropFirst("RAFTGATE_".count))] = value
        }
        var providers: [any ConfigProvider] = [EnvironmentVariablesProvider(environmentVariables: stripped)]
        if let path = flags.config ?? stripped["CONFIG"] {
            guard FileManager.default.fileExists(atPath: path) else {
                throw ValidationError("config file \(path) does not exist")
            }
            do {
                providers.append(try await FileProvider<JSONSnapshot>(filePath: FilePath(path)))
            } catch {
                throw ValidationError("config file \(path) is not valid JSON: \(error)")
            }
        }
        let config = ConfigReader(providers: providers)

        func text(_ flag: String?, _ key: String) -> String? {
            flag ?? config.string(forKey: ConfigKey(key)) ?? config.int(forKey: ConfigKey(key)).map(String.init)
        }
        func number(_ flag: Int?, _ key: String) throws -> Int? {
            if let flag { return flag }
            if let value = config.int(forKey: ConfigKey(key)) { return value }
            guard let value = config.string(forKey: ConfigKey(key)) else { return nil }
            guard let parsed = Int(value) else { throw ValidationError("\(key) must be an integer, got \(value)") }
            return parsed
        }
        func address(_ flag: String?, _ key: String, _ fallback: String) throws -> Address {
            let value = text(flag, key) ?? fallback
            guard let parsed = Address(value) else { throw ValidationError("\(key) must be host:port, got \(value)") }
            return parsed
        }

        guard let idNumber = try number(flags.id.map { Int(clamping: $0) }, "id"), idNumber > 0 else {
            throw ValidationError("--id (or RAFTGATE_ID, or \"id\" in the config file) must be a positive integer")
        }
        let id = UInt64(idNumber)
        var peers: [UInt64: Address] = [:]
        for item in (text(flags.peers, "peers") ?? "").split(separator: ",") where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let peer = UInt64(parts[0]), peer > 0, let peerAddress = Address(String(parts[1]))
            else {
                throw ValidationError("peers must look like 1=127.0.0.1:9091,2=127.0.0.1:9092; got \(item)")
            }
            peers[peer] = peerAddress
        }
        let raft = try address(flags.raft, "raft", "127.0.0.1:909\(id)")
        peers[id] = raft
        let tick = try number(flags.tickMs, "tickMs") ?? 50
        guard tick > 0 else { throw ValidationError("tickMs must be positive, got \(tick)") }
        let levelName = text(flags.logLevel, "logLevel") ?? "info"
        guard let level = Logger.Level(rawValue: levelName) else {
            throw ValidationError("logLevel must be one of trace, debug, info, notice, warning, error, critical")
        }
        let maxBody = try number(flags.maxBodyBytes, "maxBodyBytes") ?? (1 << 20)
        guard maxBody > 0 else { throw ValidationError("maxBodyBytes must be positive") }
        let swim = try address(flags.swim, "swim", "\(raft.host):707\(id)")
        // Without explicit seeds, every Raft peer is a seed at its host and the example's SWIM
        // port convention (707<id>).
        var seeds: [String] = []
        if let text = text(flags.swimSeeds, "swimSeeds") {
            for item in text.split(separator: ",") where !item.isEmpty {
                guard Address(String(item)) != nil else {
                    throw ValidationError("swimSeeds must be host:port,…; got \(item)")
                }
                seeds.append(String(item))
            }
        } else {
            seeds = peers.filter { $0.key != id }.sorted { $0.key < $1.key }.map { "\($0.value.host):\(7070 + $0.key)" }
        }
        let key = text(flags.clusterKey, "clusterKey")
        if let key, key.utf8.count < 16 { throw ValidationError("clusterKey must be at least 16 bytes") }
        let insecureDev =
            flags.insecureDev || config.bool(forKey: "insecureDev") == true
            || ["1", "true", "yes"].contains(config.string(forKey: "insecureDev")?.lowercased())
        guard key != nil || insecureDev else {
            throw ValidationError(
                """
                no cluster key: set --cluster-key, RAFTGATE_CLUSTER_KEY or "clusterKey" in the config file \
                (at least 16 bytes, the same on every node; it authenticates Raft peers and SWIM). For a \
                throwaway cluster on one machine, --insecure-dev runs with a public development key.
                """)
        }
        let replayWindow = try number(flags.swimReplayWindowMs, "swimReplayWindowMs") ?? 30_000
        guard replayWindow >= 1000 else { throw ValidationError("swimReplayWindowMs must be at least 1000") }
        let adminToken = text(flags.adminToken, "adminToken")
        if let adminToken, adminToken.utf8.count < 16 { throw ValidationError("adminToken must be at least 16 bytes") }
        let watchHistory = try number(flags.watchHistory, "watchHistory") ?? 10_000
        guard watchHistory > 0 else { throw ValidationError("watchHistory must be positive") }
        let tls = try TLSSettings.resolve(flags.tls, text: text)
        let limits = try LimitSettings.resolve(flags.limits, watchHistory: watchHistory, number: number)
        let postgres = try PostgresSettings.resolve(flags.postgres, text: text, number: number)
        let sqlPools = try SQLPoolSettings.resolve(flags.sqlPools, text: text, number: number)
        return ServeSettings(
            id: id, dataDirectory: text(flags.dataDir, "dataDir") ?? "./data/node-\(id)",
            http: try address(flags.http, "http", "127.0.0.1:808\(id)"),
            health: try address(flags.health, "health", "127.0.0.1:1000\(id)"), raft: raft, peers: peers,
            tickMilliseconds: tick, logLevel: level, maxBodyBytes: maxBody, swim: swim, swimSeeds: seeds,
            clusterKey: key ?? Self.developmentClusterKey, usesDevelopmentKey: key == nil,
            swimReplayWindowMilliseconds: replayWindow, adminToken: adminToken, watchHistory: watchHistory, tls: tls,
            limits: limits, postgres: postgres, sqlPools: sqlPools)
    }
}
