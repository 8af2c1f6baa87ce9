import NIOConcurrencyHelpers
import Raft

/// Who leads, as this node sees it.
public struct Leadership: Sendable, Hashable {
    public var term: UInt64
    /// This node leads `term`.
    public var isLeader: Bool
    public var leader: NodeID?

    public init(term: UInt64 = 0, isLeader: Bool = false, leader: NodeID? = nil) {
        self.term = term
        self.isLeader = isLeader
        self.leader = leader
    }
}

/// The one leadership signal of DESIGN.md: the Ready loop reports every change of role, leader or
/// term here, and leader-only services start and stop from it (`LeaderServices`).
public final class LeadershipSignal: Sendable {
    private struct State {
        var current = Leadership()
        var watchers: [UInt64: AsyncStream<Leadership>.Continuation] = [:]
        var nextWatcher: UInt64 = 0
        var finished = false
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    public var current: Leadership { state.withLockedValue { $0.current } }

    /// The current leadership, then each change. Only the newest matters to a consumer that fell
    /// behind, so intermediate values may be skipped; the stream ends when the node stops.
    public func updates() -> AsyncStream<Leadership> {
        let (stream, continuation) = AsyncStream.makeStream(of: Leadership.self, bufferingPolicy: .bufferingNewest(1))
        let id = state.withLockedValue { state -> UInt64? in
            guard !state.finished else { return nil }
            state.nextWatcher += 1
            state.watchers[state.nextWatcher] = continuation
            continuation.yield(state.current)
            return state.nextWatcher
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLockedValue { $0.watchers.removeValue(forKey: id) }
        }
        return stream
    }

    func update(_ leadership: Leadership) {
        state.withLockedValue { state in
            guard !state.finished, state.current != leadership else { return }
            state.current = leadership
            for watcher in state.watchers.values { watcher.yield(leadership) }
        }
    }

    func finish() {
        let watchers = state.withLockedValue { state -> [AsyncStream<Leadership>.Continuation] in
            state.finished = true
            state.current.isLeader = false
            defer { state.watchers = [:] }
            return Array(state.watchers.values)
        }
        for watcher in watchers { watcher.finish() }
    }
}
