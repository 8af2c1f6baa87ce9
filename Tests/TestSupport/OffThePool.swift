import Foundation

/// Runs blocking work (a socket read, say) on a thread of its own and awaits it.
///
/// Swift concurrency's pool has one thread per core — two here. A test that blocks one of them in
/// `recv` while the server it talks to lives in the same process can hold the very thread that
/// server needs to answer, and two such tests in parallel stall everything until their timeouts.
public func offThePool<Value: Sendable>(_ work: @escaping @Sendable () -> Value) async -> Value {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: work()) }.start()
    }
}
