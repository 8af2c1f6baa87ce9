import EtcdAPI
import Node

/// Every etcd write (put, deleterange, txn, lease grant and revoke) applied at most once, and
/// answered with its first result. Each write carries an idempotency key of its own; when its
/// outcome is unknown (the forward to the leader timed out, or the leader changed under it) the
/// same command, with the same key, is submitted again until a definite answer comes or the
/// deadline passes. Had the first attempt committed, the store replays its result
/// (`IdempotencyTable`) instead of applying the command again: a leader-lock txn that won on the
/// first attempt answers `succeeded`, never the failed compare a client's own retry would see.
struct EtcdWriter: Sendable {
    let node: RaftNode

    /// Below Patroni's per-node timeout (retry_timeout 10 s over three hosts is about 3.3 s):
    /// a definite answer, or a timeout it retries, reaches Patroni before it gives up on the socket.
    static let deadline: Duration = .seconds(3)
    /// Between re-submissions of an unknown write (an election takes a few hundred ms).
    static let pause: Duration = .milliseconds(50)

    func write(_ command: StoreCommand) async throws(EtcdError) -> WriteOutcome {
        var command = command
        command.idempotencyKey = Self.newKey()
        // The stamp the leader adds is 8 bytes: refused here, the client hears "too large", not "retry".
        guard command.encoded.count + 8 <= node.configuration.maxCommandBytes else { throw .requestTooLarge }
        let node = self.node
        return await Self.submit(command, until: .now + Self.deadline, pause: Self.pause) { command, timeout in
            await node.write(command, timeout: timeout)
        }
    }

    /// A key no other write uses: 128 random bits.
    static func newKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return "etcd/" + String(high, radix: 16) + "-" + String(low, radix: 16)
    }

    /// Submits `command` until its outcome is known or `deadline` passes. Before any attempt's
    /// outcome is unknown, the first answer is the answer (nothing was applied, or this is what
    /// was). After one is unknown, only an applied result will do: a later "no leader" or "not
    /// applied" says nothing about the earlier attempt, which may yet commit.
    static func submit(
        _ command: StoreCommand, until deadline: ContinuousClock.Instant, pause: Duration,
        _ attempt: (StoreCommand, Duration) async -> WriteOutcome
    ) async -> WriteOutcome {
        var unknown: WriteOutcome?
        while true {
            let remaining = deadline - .now
            guard remaining > .zero else { return unknown ?? .unknown("no answer within \(Self.deadline)") }
            let outcome = await attempt(command, remaining)
            switch outcome {
            case .applied: return outcome
            case .unknown: unknown = outcome
            default: if unknown == nil { return outcome }
            }
            if deadline - .now <= pause { return unknown ?? outcome }
            try? await Task.sleep(for: pause)
        }
    }
}
