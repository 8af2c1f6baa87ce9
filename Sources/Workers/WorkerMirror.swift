import Logging
import Node

/// The leader-only service that mirrors SWIM's workers into the registry. Level-triggered: every
/// `interval` it compares SWIM's view with the registry and proposes the difference for its own
/// term only, so a deposed leader's late write can never land under its successor and a missed
/// SWIM event is corrected on the next round.
public struct WorkerMirror: LeaderService {
    public let name = "worker mirror"
    let node: RaftNode
    /// SWIM's current members that are workers (with status).
    let members: @Sendable () async -> [SWIMWorker]
    var interval: Duration = .milliseconds(100)
    /// How long after taking over this leader trusts that an unknown member is gone.
    var unknownGrace: Duration = .seconds(10)
    let logger: Logger

    public init(
        node: RaftNode, members: @escaping @Sendable () async -> [SWIMWorker], interval: Duration = .milliseconds(100),
        unknownGrace: Duration = .seconds(10), logger: Logger
    ) {
        self.node = node
        self.members = members
        self.interval = interval
        self.unknownGrace = unknownGrace
        self.logger = logger
    }

    public func lead(term: UInt64) async {
        let started = ContinuousClock.now
        while !Task.isCancelled {
            await reconcile(term: term, removeUnknown: .now - started >= unknownGrace)
            try? await Task.sleep(for: interval)
        }
    }

    private func reconcile(term: UInt64, removeUnknown: Bool) async {
        let swim = await members()
        // The whole registry, without a row limit: the plan must see every registered worker to
        // remove the unknown ones. It is bounded by SWIM's membership, since only this mirror
        // writes it (`/_sys/` is closed to the KV API), and the scan yields between slices.
        guard
            let rows = await node.range(
                prefix: WorkerRecord.prefix, consistency: .stale(maxStaleness: nil), includeReserved: true)?.rows
        else {
            return
        }
        let registered = rows.compactMap { WorkerRecord(key: $0.key, value: $0.record.value) }
        for step in MirrorPlan.steps(swim: swim, registered: registered, removeUnknown: removeUnknown) {
            guard !Task.isCancelled else { return }
            let command: StoreCommand
            switch step {
            case .put(let record):
                command = StoreCommand(operation: .put(key: record.key, value: record.encoded), isSystem: true)
            case .delete(let key):
                command = StoreCommand(operation: .delete(key: key), isSystem: true)
            }
            let outcome = await node.propose(command, inTerm: term)
            if case .applied(.applied, _) = outcome {
                logger.info("worker registry mirrored from SWIM", metadata: ["step": "\(step)"])
            } else {
                logger.debug("worker mirror step not applied", metadata: ["step": "\(step)", "outcome": "\(outcome)"])
                return  // the next round tries again
            }
        }
    }
}
