/// One client operation on one key, as a chaos client records it (Knossos's history model).
public struct HistoryOperation: Sendable, Hashable, Codable {
    public enum Kind: Sendable, Hashable, Codable {
        /// A read and the value it returned (nil: the key was absent).
        case read(observed: String?)
        case write(String)
        /// Set `new` only if the current value is `expected` (nil: only if absent). `succeeded`
        /// is what the server answered when it answered: false means it saw a different value.
        case compareAndSet(expected: String?, new: String, succeeded: Bool)
        case delete
    }

    /// What the client learned.
    public enum Outcome: String, Sendable, Hashable, Codable {
        /// It took effect, once, somewhere between invocation and completion.
        case ok
        /// It certainly did not take effect (refused before being proposed, or known to be
        /// superseded): dropped from the history.
        case failed
        /// No answer, or an answer that does not say (a timeout, a 504, a dropped connection):
        /// it may take effect at any point after its invocation, or never.
        case unknown
    }

    public var client: Int
    public var key: String
    public var kind: Kind
    public var outcome: Outcome
    /// Monotonic nanoseconds when the client sent it and when the answer arrived.
    public var invokedAt: UInt64
    public var completedAt: UInt64

    public init(
        client: Int, key: String, kind: Kind, outcome: Outcome, invokedAt: UInt64, completedAt: UInt64
    ) {
        self.client = client
        self.key = key
        self.kind = kind
        self.outcome = outcome
        self.invokedAt = invokedAt
        self.completedAt = completedAt
    }
}
