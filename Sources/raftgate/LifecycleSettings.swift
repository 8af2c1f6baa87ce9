import ArgumentParser
import Foundation
import Gateway
import Logging
import Node

/// `serve`'s lifecycle flags: joining a running cluster and how a drain is timed. Each also reads
/// `RAFTGATE_<NAME>` when the flag is not given.
struct LifecycleFlags: ParsableArguments {
    @Option(
        help:
            "HTTP address (host:port) of any member of a running cluster to join, when the data directory is empty (RAFTGATE_JOIN). Needs the admin token."
    )
    var join: String?
    @Flag(
        help:
            "First start of a new cluster's first members (RAFTGATE_BOOTSTRAP=1): an empty data directory starts the cluster --peers describes. Without it, a node with an empty data directory and other --peers refuses to start, so one that lost its data never comes back as a voter with an empty log."
    )
    var bootstrap = false
    @Option(
        help:
            "Milliseconds a drain keeps answering 503 before closing the listeners (RAFTGATE_DRAIN_WAIT_MS); default 400, HAProxy's inter 200ms × fall 2 of the example."
    )
    var drainWaitMs: Int?
    @Option(
        help:
            "Milliseconds from SIGTERM until the process exits whatever is unfinished (RAFTGATE_DRAIN_DEADLINE_MS); default 15000."
    )
    var drainDeadlineMs: Int?

    func resolve(environment: [String: String]) throws -> LifecycleSettings {
        func number(_ flag: Int?, _ name: String) throws -> Int? {
            if let flag { return flag }
            guard let text = environment["RAFTGATE_" + name] else { return nil }
            guard let value = Int(text) else {
                throw ValidationError("RAFTGATE_\(name) must be an integer, got \(text)")
            }
            return value
        }
        var plan = DrainPlan()
        if let wait = try number(drainWaitMs, "DRAIN_WAIT_MS") {
            guard wait >= 0 else { throw ValidationError("drainWaitMs must not be negative") }
            plan.announceWait = .milliseconds(wait)
        }
        if let deadline = try number(drainDeadlineMs, "DRAIN_DEADLINE_MS") {
            guard deadline > 0 else { throw ValidationError("drainDeadlineMs must be positive") }
            plan.deadline = .milliseconds(deadline)
        }
        var joinAddress: Address?
        if let text = join ?? environment["RAFTGATE_JOIN"] {
            guard let address = Address(text.replacingOccurrences(of: "http://", with: "")) else {
                throw ValidationError("join must be host:port of a member's HTTP API, got \(text)")
            }
            joinAddress = address
        }
        // An empty test hook is an unset one: an empty trigger would name the data directory
        // itself, so every fsync would fail and the node would refuse to start until a reboot.
        func hook(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        let bootstrapEnvironment = environment["RAFTGATE_BOOTSTRAP"].map {
            ["1", "true", "yes"].contains($0.lowercased())
        }
        return LifecycleSettings(
            join: joinAddress, bootstrap: bootstrap || bootstrapEnvironment == true, plan: plan,
            faultTrigger: hook("RAFTGATE_TEST_FAIL_SYNC_WHEN"),
            writeFailureMarkerRoot: hook("RAFTGATE_TEST_WRITE_FAILURE_MARKER_ROOT"))
    }
}

struct LifecycleSettings: Sendable {
    var join: Address?
    /// `--bootstrap`: an empty data directory may start a new cluster from `--peers`.
    var bootstrap = false
    var plan: DrainPlan
    /// Tests only: fsyncs fail while this file exists (`NodeConfiguration.faultTrigger`); a
    /// relative path is taken in the data directory.
    var faultTrigger: String?
    /// Tests only: where the write-failure marker goes instead of /dev/shm.
    var writeFailureMarkerRoot: String?

    func applyTestHooks(to configuration: inout NodeConfiguration) {
        // A relative trigger is a file in the node's own data directory, so one setting serves a
        // whole test cluster and still fails one node's disk at a time.
        configuration.faultTrigger = faultTrigger.map {
            $0.hasPrefix("/") ? $0 : configuration.dataDirectory + "/" + $0
        }
        if let writeFailureMarkerRoot { configuration.writeFailureMarkerRoot = writeFailureMarkerRoot }
    }

    /// With `--join` and an empty data directory: asks the cluster to add this node, and starts it
    /// from the base configuration and the addresses the answer gives. With data, the node restarts
    /// from its own log and `--join` changes nothing.
    func join(
        settings: ServeSettings, into configuration: inout NodeConfiguration, swimSeeds: inout [String],
        logger: Logger
    ) async throws {
        guard let join else {
            try checkBootstrap(settings: settings, into: &configuration)
            return
        }
        guard Join.isFresh(dataDirectory: settings.dataDirectory) else {
            logger.info("the data directory holds a log: restarting from it, --join is not needed")
            // Whatever happens to that state, the flags never describe the cluster this node
            // joined: starting a one-node cluster of itself from them would fork the data.
            configuration.mayBootstrap = false
            await learnMembers(settings: settings, into: &configuration, swimSeeds: &swimSeeds, logger: logger)
            return
        }
        guard let token = settings.adminToken else {
            throw ValidationError("--join needs the admin token (--admin-token or RAFTGATE_ADMIN_TOKEN)")
        }
        guard !MemberRecord.isUnspecified(host: settings.raft.host) else {
            throw ValidationError(
                "--join records --raft as this node's address for the others to dial: give an address they can reach, not \(settings.raft)"
            )
        }
        let plan = try await Join(client: AdminClient(server: join, token: token), logger: logger)
            .run(id: settings.id, raft: settings.raft, http: settings.http)
        configuration.initialVoters = plan.base.voters
        configuration.initialLearners = plan.base.learners
        for (text, address) in plan.peers {
            guard let peer = UInt64(text), peer != settings.id, let parsed = Address(address),
                !MemberRecord.isUnspecified(host: parsed.host)
            else { continue }
            configuration.peers[peer] = (parsed.host, parsed.port)
        }
        swimSeeds = Array(Set(swimSeeds + plan.swim).subtracting(["\(settings.swim)"])).sorted()
        logger.notice(
            "joined as a learner",
            metadata: [
                "via": "\(join)", "voters": "\(plan.base.voters)", "peers": "\(plan.peers.sorted { $0.key < $1.key })",
            ])
    }

    /// A restart with `--join`: asks the cluster where its members are, so this node can answer
    /// them before its own store tells it (see `Join.members`). Best effort: an unreachable
    /// cluster leaves the flags and the records to do it.
    private func learnMembers(
        settings: ServeSettings, into configuration: inout NodeConfiguration, swimSeeds: inout [String],
        logger: Logger
    ) async {
        guard let join, let token = settings.adminToken else { return }
        do {
            let listing = try await Join(client: AdminClient(server: join, token: token), logger: logger).members()
            for (peer, address) in listing.peers(excluding: settings.id) {
                configuration.peers[peer] = (address.host, address.port)
            }
            swimSeeds = Array(Set(swimSeeds + (listing.swim ?? [])).subtracting(["\(settings.swim)"])).sorted()
            logger.info("learned the members' addresses", metadata: ["via": "\(join)"])
        } catch {
            logger.warning(
                "could not list the members; starting from the flags and the stored records",
                metadata: ["via": "\(join)", "problem": "\(error)"])
        }
    }

    /// Without `--join`: an empty data directory starts a new cluster only with `--bootstrap`, or
    /// when `--peers` names no other node (a one-node cluster has nobody to disagree with).
    private func checkBootstrap(settings: ServeSettings, into configuration: inout NodeConfiguration) throws {
        let fresh = Join.isFresh(dataDirectory: settings.dataDirectory)
        let others = settings.peers.keys.contains { $0 != settings.id }
        switch BootstrapRule.decide(fresh: fresh, hasOtherPeers: others, bootstrapFlag: bootstrap) {
        case .restart:
            // The node has state; should it lose it later, it must not bootstrap (belt and braces).
            configuration.mayBootstrap = bootstrap || !others
        case .bootstrap:
            configuration.mayBootstrap = true
        case .refuse:
            throw ValidationError(
                """
                the data directory \(settings.dataDirectory) is empty and --peers names other nodes. If this is the \
                first start of a new cluster, start its first members with --bootstrap (RAFTGATE_BOOTSTRAP=1). If \
                n\(settings.id) was a member and lost its data, it must not come back as a voter with an empty log: \
                remove it (raftgate member remove \(settings.id)) and start it with --join <a member's HTTP address>.
                """)
        }
    }
}

/// Whether a node started without `--join` may create a cluster from its flags. Pure.
enum BootstrapRule: Equatable {
    /// The data directory holds state: restart from it.
    case restart
    /// Empty, and allowed: start the cluster the flags describe.
    case bootstrap
    /// Empty, other peers named, no `--bootstrap`: this may be a member that lost its data, which
    /// as a voter with term 0 and no log could vote twice in a term and help erase committed
    /// entries.
    case refuse

    static func decide(fresh: Bool, hasOtherPeers: Bool, bootstrapFlag: Bool) -> BootstrapRule {
        guard fresh else { return .restart }
        return bootstrapFlag || !hasOtherPeers ? .bootstrap : .refuse
    }
}
