import Logging
import Node
import Raft
import Synchronization

/// Whether this node still takes new work. Health endpoints read it on every check (cheaply: a
/// lock, never the node's actor queue); `drain()` runs the hand-over once, however many callers
/// (SIGTERM, `POST /health/drain`) ask for it.
public final class NodeLifecycle: Sendable {
    public let node: RaftNode
    public let plan: DrainPlan
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var draining = false
        var drain: Task<DrainReport, Never>?
        /// While draining: gives leadership away again each time this node wins it back.
        var keeper: Task<Void, Never>?
    }

    public init(node: RaftNode, plan: DrainPlan = DrainPlan(), logger: Logger = Logger(label: "raftgate.lifecycle")) {
        self.node = node
        self.plan = plan
        self.logger = logger
    }

    /// True from the first moment of a drain: readiness, `/replica` and `/primary` answer 503.
    public var isDraining: Bool { state.withLock { $0.draining } }

    /// Stops taking new work: health turns 503 at once; a leader hands leadership to its most
    /// caught-up voter at the same time (so writes never lack a leader: until HAProxy notices,
    /// this node forwards them to the new one); then the HAProxy window is waited out. Returns
    /// when the node may stop accepting connections. Idempotent.
    @discardableResult
    public func drain() async -> DrainReport {
        let task = state.withLock { state -> Task<DrainReport, Never> in
            if let running = state.drain { return running }
            state.draining = true
            let started = Task { await self.run() }
            state.drain = started
            return started
        }
        return await task.value
    }

    private func run() async -> DrainReport {
        let started = ContinuousClock.now
        logger.notice("draining: health answers 503 from now on")
        let wasLeader = await node.isLeader
        var handOff: TransferOutcome?
        if wasLeader {
            let outcome = await node.handOffLeadership(timeout: plan.transferTimeout)
            handOff = outcome
            logger.notice("leadership hand-over", metadata: ["outcome": "\(outcome)"])
        }
        keepHandingOff()
        let remaining = plan.announceWait - (ContinuousClock.now - started)
        if remaining > .zero { try? await Task.sleep(for: remaining) }
        let leader = await node.status.leader
        logger.notice("drained", metadata: ["leader": "\(leader.map { "n\($0)" } ?? "none")"])
        return DrainReport(wasLeader: wasLeader, handOff: handOff, leader: leader)
    }
}

extension NodeLifecycle {
    /// A drained node stays a voter, so it can win an election again (its successor failed, or
    /// handed leadership back); leading while `/primary` says 503 for good would leave the cluster
    /// without a primary HAProxy can find. So each time it leads again, it hands over again. The
    /// updates end when the node stops.
    fileprivate func keepHandingOff() {
        let node = self.node
        let timeout = plan.transferTimeout
        let logger = self.logger
        let keeper = Task {
            for await leadership in node.leadership.updates() where leadership.isLeader {
                // A new leader has heard from no follower yet, so it has no target at first:
                // retry until one answers, for as long as a hand-over may take.
                let deadline = ContinuousClock.now + timeout
                var outcome = await node.handOffLeadership(timeout: timeout)
                while case .failed = outcome, ContinuousClock.now < deadline, await node.isLeader {
                    try? await Task.sleep(for: .milliseconds(20))
                    outcome = await node.handOffLeadership(timeout: deadline - ContinuousClock.now)
                }
                logger.notice(
                    "draining but elected: leadership hand-over",
                    metadata: ["term": "\(leadership.term)", "outcome": "\(outcome)"])
            }
        }
        state.withLock { $0.keeper = keeper }
    }
}

/// What a drain did.
public struct DrainReport: Sendable, Hashable {
    public var wasLeader: Bool
    public var handOff: TransferOutcome?
    /// The leader this node knows of afterwards.
    public var leader: NodeID?
}
