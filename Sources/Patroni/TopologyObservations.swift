import Synchronization

/// The leader's latest round, for `GET /pg`: what each member looked like, why the primary is
/// who it is, and what failed. Set by the watcher while this node leads; empty otherwise (a
/// follower has only the committed topology).
public final class TopologyObservations: Sendable {
    public struct Snapshot: Sendable {
        public var term: UInt64
        public var decision: TopologyDecision
        public var failures: [String: [String]]
        /// When the round finished, on this node's monotonic clock.
        public var at: ContinuousClock.Instant
    }

    private let latest = Mutex<Snapshot?>(nil)

    public init() {}

    public var current: Snapshot? { latest.withLock { $0 } }

    func publish(_ snapshot: Snapshot) { latest.withLock { $0 = snapshot } }

    func clear(term: UInt64) {
        latest.withLock { if $0?.term == term { $0 = nil } }
    }
}
