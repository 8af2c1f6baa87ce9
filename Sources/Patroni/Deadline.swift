import Synchronization

/// A time limit that does not depend on the work cooperating. The work runs in a task of its
/// own; whichever comes first — its result, the limit, or the caller's cancellation — answers
/// the caller at once, and the work is then cancelled and left to end by itself. (A task group
/// would wait for a child that ignores cancellation; a stuck socket read is exactly that.)
enum Deadline {
    static func run<Value: Sendable>(
        within limit: Duration, _ what: String, _ operation: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        let outcome = Outcome<Value>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                outcome.arm(continuation)
                outcome.track(
                    Task {
                        do {
                            outcome.settle(.success(try await operation()))
                        } catch {
                            outcome.settle(.failure(error))
                        }
                    })
                outcome.track(
                    Task {
                        try? await Task.sleep(for: limit)
                        outcome.settle(.failure(DeadlineExceeded(what: what, limit: limit)))
                    })
            }
        } onCancel: {
            outcome.settle(.failure(CancellationError()))
        }
    }

    /// The first settlement wins; it resumes the caller (now, or when it arrives to wait) and
    /// cancels both tasks.
    private final class Outcome<Value: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<Value, any Error>?
            var result: Result<Value, any Error>?
            var tasks: [Task<Void, Never>] = []
        }
        private let state = Mutex(State())

        func arm(_ continuation: CheckedContinuation<Value, any Error>) {
            let settled = state.withLock { state -> Result<Value, any Error>? in
                if let result = state.result { return result }
                state.continuation = continuation
                return nil
            }
            if let settled { continuation.resume(with: settled) }
        }

        func track(_ task: Task<Void, Never>) {
            let settled = state.withLock { state in
                state.tasks.append(task)
                return state.result != nil
            }
            if settled { task.cancel() }
        }

        func settle(_ result: Result<Value, any Error>) {
            let (continuation, tasks) = state.withLock {
                state -> (CheckedContinuation<Value, any Error>?, [Task<Void, Never>]) in
                guard state.result == nil else { return (nil, []) }
                state.result = result
                defer { state.continuation = nil }
                return (state.continuation, state.tasks)
            }
            continuation?.resume(with: result)
            for task in tasks { task.cancel() }
        }
    }
}

/// What a source that did not answer in time counts as.
struct DeadlineExceeded: Error, CustomStringConvertible {
    var what: String
    var limit: Duration
    var description: String { "\(what): no answer within \(limit)" }
}
