import Logging
import Node

/// The leader-only topology watcher of DESIGN.md: every poll interval it observes every member
/// (`TopologyPoller`), feeds the pure `TopologyDecider`, and commits the topology to
/// `/_sys/topology/postgres` through Raft when it differs from what is committed — proposed for
/// its own term only, so a deposed leader's late decision never lands under its successor.
public struct TopologyWatcher: LeaderService {
    public let name = "postgres topology watcher"
    let node: RaftNode
    let poller: TopologyPoller
    let observations: TopologyObservations
    let logger: Logger

    public init(node: RaftNode, poller: TopologyPoller, observations: TopologyObservations, logger: Logger) {
        self.node = node
        self.poller = poller
        self.observations = observations
        self.logger = logger
    }

    public func lead(term: UInt64) async {
        defer { observations.clear(term: term) }
        // Continue from what is committed: the epoch goes on, an API outage keeps the committed
        // primary, and a leader change alone moves nothing. A linearizable read returns only once
        // this leader has committed in its term and applied everything before, so no older
        // leader's last commit is missed.
        var committed: PostgresTopology?
        var seed: PostgresTopology?
        while !Task.isCancelled {
            if case .value(let record, _) = await node.read(TopologyRecord.key, consistency: .linearizable) {
                if let record {
                    if let readable = TopologyRecord.decode(record.value) {
                        committed = readable
                        seed = readable
                    } else {
                        // Unreadable: continue above any epoch it may hold, and replace it with
                        // the first decision whatever that is (`committed` stays nil).
                        seed = PostgresTopology(
                            epoch: TopologyRecord.epochFloor(record.value, version: record.version) + 1)
                    }
                }
                break
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        guard !Task.isCancelled else { return }
        let settings = poller.settings
        var decider: TopologyDecider
        do {
            decider = try TopologyDecider(
                members: settings.members.map(\.name), policy: settings.policy, committed: seed)
        } catch {
            // Validated when the settings were loaded; nothing to watch otherwise.
            logger.error("postgres topology watcher cannot start", metadata: ["error": "\(error)"])
            return
        }
        logger.info(
            "postgres topology watcher started",
            metadata: [
                "term": "\(term)", "epoch": "\(committed?.epoch ?? 0)",
                "primary": "\(committed?.primary?.name ?? "none")",
            ])
        while !Task.isCancelled {
            let started = ContinuousClock.now
            let round = await poller.round()
            guard !Task.isCancelled else { return }
            let decision = decider.observe(round.observations)
            observations.publish(.init(term: term, decision: decision, failures: round.failures, at: .now))
            if decision.topology != committed {
                committed = await commit(decision, previous: committed, term: term) ?? committed
            }
            // Between primaries every round counts: the next one comes sooner, so the new
            // primary is routed to a fraction of an interval after it is out of recovery.
            let interval =
                decision.topology.primary == nil
                ? max(settings.pollInterval / 5, .milliseconds(50)) : settings.pollInterval
            try? await Task.sleep(until: started + interval, clock: .continuous)
        }
    }

    /// Proposes `decision.topology`; the topology committed, or nil when it was not (the next
    /// round proposes again, since the decider's topology still differs from the committed one).
    private func commit(_ decision: TopologyDecision, previous: PostgresTopology?, term: UInt64) async
        -> PostgresTopology?
    {
        let topology = decision.topology
        let command = StoreCommand(
            operation: .put(key: TopologyRecord.key, value: TopologyRecord.encode(topology)), isSystem: true)
        // A deposed leader's proposal can wait for the write timeout before it is known to have
        // failed; cancelled (leadership lost, node stopping), the watcher returns at once and
        // leaves it — the next leader's watcher reads what was committed anyway.
        let node = node
        guard
            let outcome = try? await Deadline.run(
                within: .seconds(3600), "topology proposal",
                {
                    await node.propose(command, inTerm: term)
                })
        else { return nil }
        guard case .applied(.applied(let revision, _), _) = outcome else {
            logger.warning(
                "postgres topology not committed; retrying next round",
                metadata: ["epoch": "\(topology.epoch)", "outcome": "\(outcome)"])
            return nil
        }
        poller.metrics.committed()
        logger.notice(
            "postgres topology committed",
            metadata: [
                "epoch": "\(topology.epoch)", "revision": "\(revision)",
                "primary": "\(topology.primary.map { "\($0.name) timeline \($0.timeline)" } ?? "none")",
                "replicas": "\(topology.replicas.joined(separator: ","))", "reason": "\(decision.primaryReason)",
                "was": "\(previous?.primary?.name ?? "none")",
            ])
        return topology
    }
}
