import ArgumentParser
import Dispatch
import Foundation
import Logging
import Membership
import MembershipNIO
import Workers

/// `raftgate agent`: registers a worker by joining SWIM as a member with role `worker`, its
/// service and address in the metadata. It runs no Raft and serves no HTTP; the leader mirrors
/// its SWIM status into the registry. SIGTERM or SIGINT: it announces `draining` (proxies send it
/// nothing new), waits `--drain-ms`, leaves SWIM (the registry drops it) and exits 0.
struct Agent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Register a worker through SWIM (membership only: no Raft, no HTTP).")

    @Option(help: "The service the worker serves (1–64 of letters, digits, '.', '_', '-').") var service: String
    @Option(help: "The worker's HTTP address, host:port, as gateways should dial it.") var address: String
    @Option(help: "SWIM seeds: gateways' SWIM addresses, host:port,… (RAFTGATE_SWIM_SEEDS).") var seeds: String?
    @Option(help: "This agent's SWIM address to bind, host:port (RAFTGATE_SWIM).") var swim: String?
    @Option(help: "SWIM member id, unique in the cluster; default random. The registry id is this number.")
    var id: UInt64?
    @Option(help: "A tag, key=value; repeatable.") var tag: [String] = []
    @Option(help: "The cluster's shared secret, as the gateways' (RAFTGATE_CLUSTER_KEY).") var clusterKey: String?
    @Flag(help: "Without a cluster key, use the public development key (RAFTGATE_INSECURE_DEV).") var insecureDev =
        false
    @Option(help: "Between announcing draining and leaving on SIGTERM, ms; default 1000.") var drainMs: Int = 1000
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel: String = "info"

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard WorkerNames.isValidName(service) else {
            throw ValidationError("--service must be 1–64 of letters, digits, '.', '_' and '-'")
        }
        guard WorkerNames.parseAddress(address) != nil else {
            throw ValidationError("--address must be host:port, got \(address)")
        }
        guard let swimText = swim ?? environment["RAFTGATE_SWIM"], let bind = Address(swimText) else {
            throw ValidationError("--swim host:port (the agent's own SWIM address) is required")
        }
        let seedList = (seeds ?? environment["RAFTGATE_SWIM_SEEDS"] ?? "").split(separator: ",").map(String.init)
        guard !seedList.isEmpty else { throw ValidationError("--seeds host:port,… is required") }
        var key = clusterKey ?? environment["RAFTGATE_CLUSTER_KEY"]
        if key == nil && (insecureDev || environment["RAFTGATE_INSECURE_DEV"] == "true") {
            key = ServeSettings.developmentClusterKey
        }
        guard let key, key.utf8.count >= MembershipConfiguration.minimumClusterKeyBytes else {
            throw ValidationError(
                "a cluster key of at least 16 bytes is required (--cluster-key, RAFTGATE_CLUSTER_KEY)")
        }
        var tags: [String: String] = [:]
        for pair in tag {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw ValidationError("--tag must be key=value, got \(pair)")
            }
            tags[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        tags["service"] = service
        guard drainMs >= 0 && drainMs <= 600_000 else { throw ValidationError("--drain-ms must be 0 to 600000") }
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let memberID = id ?? UInt64.random(in: (1 << 32)...((1 << 53) - 1))
        var logger = Logger(label: "raftgate.agent")
        logger[metadataKey: "member"] = "\(memberID)"

        let signals = Self.terminationSignals()
        var metadata = MemberMetadata(
            nodeID: memberID, role: .worker, httpAddress: address, swimAddress: "\(bind)", tags: tags)
        var configuration = MembershipConfiguration(
            id: memberID, host: bind.host, port: bind.port, metadata: metadata, seeds: seedList,
            clusterKey: Array(key.utf8))
        configuration.logger = Logger(label: "raftgate.membership")
        let membership = try await MembershipService.start(configuration)
        logger.info(
            "agent joined", metadata: ["service": "\(service)", "address": "\(address)", "swim": "\(bind)"])
        for await _ in signals { break }
        logger.info("draining: no new requests, then leaving", metadata: ["drainMs": "\(drainMs)"])
        metadata.tags["draining"] = "true"
        await membership.updateMetadata(metadata)
        try? await Task.sleep(for: .milliseconds(drainMs))
        await membership.leave()
        logger.info("agent left")
    }

    /// SIGTERM and SIGINT as a stream (their default action, ending the process, is turned off).
    private static func terminationSignals() -> AsyncStream<Int32> {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            // Kept for the life of the process (it exits after the first signal anyway).
            _ = Unmanaged.passRetained(source as AnyObject)
        }
        return stream
    }
}
