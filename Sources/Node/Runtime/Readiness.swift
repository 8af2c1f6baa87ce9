import Raft

/// Whether this node's applied state is fresh enough to serve from: it knows a leader, has heard
/// from it lately (unless it leads) and has applied close to the leader's commit. `/health/ready`
/// answers with it; the PostgreSQL route source uses the same rule to decide whether it may still
/// route writes to the primary it knows.
public struct ReadinessRule: Sendable, Hashable {
    /// A follower further behind than this (leader's commit − applied) is not ready.
    public var maxLag: UInt64
    /// A follower that has not heard from its leader for longer is not ready.
    public var maxLeaderSilence: Duration

    public init(maxLag: UInt64 = 1000, maxLeaderSilence: Duration = .seconds(2)) {
        self.maxLag = maxLag
        self.maxLeaderSilence = maxLeaderSilence
    }

    public static let standard = ReadinessRule()
}

public struct Readiness: Sendable, Hashable {
    public var ready: Bool
    public var reason: String
    /// The status the verdict was taken from.
    public var status: RaftStatus

    public init(ready: Bool, reason: String, status: RaftStatus) {
        self.ready = ready
        self.reason = reason
        self.status = status
    }
}

extension RaftNode {
    /// The readiness verdict under `rule`, taken in one step of the node's actor. Draining is the
    /// gateway's business and not part of it; a fatal stop and removal from the cluster are.
    public func readiness(_ rule: ReadinessRule = .standard) -> Readiness {
        catchUpTicks()
        let status = self.status
        func verdict(_ ready: Bool, _ reason: String) -> Readiness {
            Readiness(ready: ready, reason: reason, status: status)
        }
        if let fatalError { return verdict(false, "stopped: \(fatalError)") }
        if isRemoved { return verdict(false, "removed from the cluster") }
        guard status.leader != nil else { return verdict(false, "no leader known") }
        // A learner never campaigns, so it never forgets a leader it lost (partitioned away, or
        // removed while cut off): the leader's silence, not its id, says whether data is fresh.
        if status.role != .leader {
            guard let silence = leaderContactAge, silence <= rule.maxLeaderSilence else {
                return verdict(false, "leader silent for longer than \(rule.maxLeaderSilence)")
            }
        }
        let leaderCommit = max(leaderCommitIndex, status.commitIndex)
        let lag = leaderCommit - min(status.appliedIndex, leaderCommit)
        guard lag <= rule.maxLag else { return verdict(false, "applied \(lag) entries behind the leader's commit") }
        return verdict(true, "ready")
    }
}
