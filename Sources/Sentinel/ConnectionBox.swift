import NIOConcurrencyHelpers

/// A `RedisConnection` moved between threads.
///
/// `@unchecked Sendable` because hiredis contexts are not thread-safe, and this box does not make
/// them so: it is safe only because every box has one holder at a time — a pool or cache hands a
/// box out by removing it from its locked store, and only the holder calls into the connection,
/// from inside one thread-pool work item at a time, until it puts the box back or drops it.
final class ConnectionBox: @unchecked Sendable {
    let connection: RedisConnection
    /// The pool generation it was opened in; a box from an older one is closed when returned.
    let generation: UInt64

    init(_ connection: RedisConnection, generation: UInt64 = 0) {
        self.connection = connection
        self.generation = generation
    }
}

/// Idle connections kept per endpoint (the Sentinels' connections, reused between resolutions).
final class ConnectionShelf: Sendable {
    private let shelf = NIOLockedValueBox<[RedisEndpoint: [ConnectionBox]]>([:])

    func take(_ endpoint: RedisEndpoint) -> ConnectionBox? {
        shelf.withLockedValue { $0[endpoint]?.popLast() }
    }

    func put(_ box: ConnectionBox) {
        guard !box.connection.isBroken else { return }
        shelf.withLockedValue { $0[box.connection.endpoint, default: []].append(box) }
    }

    func removeAll() -> [ConnectionBox] {
        shelf.withLockedValue { shelf in
            defer { shelf = [:] }
            return shelf.values.flatMap { $0 }
        }
    }
}
