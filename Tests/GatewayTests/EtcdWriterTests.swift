import NIOConcurrencyHelpers
import Node
import Testing

@testable import Gateway

/// `EtcdWriter.submit`: an etcd write whose outcome is unknown is submitted again with the same
/// idempotency key, so the client hears the first result, never a second attempt's.
@Suite struct EtcdWriterTests {
    static let lock = StoreTransaction(
        compares: [
            .init(
                range: .init(key: Array("/_sys/etcd/leader".utf8)), target: .createRevision, relation: .equal,
                operand: .createRevision(0))
        ],
        success: [.put(key: "/_sys/etcd/leader", value: Array("pg1".utf8), lease: 0, previous: false)])

    /// A store the attempts apply to, as the log would: the first attempt commits but its answer
    /// is lost (`.unknown`, as when the leader dies after replicating it); the second is the retry.
    final class Log: Sendable {
        let state = NIOLockedValueBox((store: KeyValueStore(), keys: [String?](), answers: [WriteOutcome]()))

        init(answers: [WriteOutcome]) { state.withLockedValue { $0.answers = answers } }

        func attempt(_ command: StoreCommand) -> WriteOutcome {
            state.withLockedValue { state in
                var stamped = command
                stamped.stamp = 1_000
                let result = state.store.apply(stamped)
                state.keys.append(command.idempotencyKey)
                let scripted = state.answers.isEmpty ? nil : state.answers.removeFirst()
                return scripted ?? .applied(result, index: UInt64(state.keys.count))
            }
        }
    }

    @Test func anUnknownOutcomeIsResubmittedWithTheSameKeyAndAnswersTheFirstResult() async throws {
        let log = Log(answers: [.unknown("forwarded to n1, which no longer leads")])
        let command = StoreCommand(operation: .transaction(Self.lock), idempotencyKey: EtcdWriter.newKey())
        let outcome = await EtcdWriter.submit(command, until: .now + .seconds(3), pause: .milliseconds(1)) {
            command, _ in
            log.attempt(command)
        }
        guard case .applied(.transaction(let result), _) = outcome else {
            Issue.record("not applied: \(outcome)")
            return
        }
        #expect(result.succeeded, "the retry answered the second attempt's failed compare")
        let (store, keys) = log.state.withLockedValue { ($0.store, $0.keys) }
        #expect(keys.count == 2 && keys[0] != nil && keys[0] == keys[1])
        #expect(store.get("/_sys/etcd/leader")?.version == 1)
    }

    /// After an unknown outcome, "no leader" says nothing about the first attempt: keep asking.
    /// Before one, it is the answer (nothing was applied).
    @Test func onlyAnAppliedResultEndsAnUnknownWrite() async throws {
        let log = Log(answers: [.unknown("timed out"), .notLeader(leader: nil), .notApplied("truncated")])
        let command = StoreCommand(operation: .transaction(Self.lock), idempotencyKey: "etcd/test")
        let outcome = await EtcdWriter.submit(command, until: .now + .seconds(3), pause: .milliseconds(1)) {
            command, _ in
            log.attempt(command)
        }
        guard case .applied(.transaction(let result), _) = outcome else {
            Issue.record("not applied: \(outcome)")
            return
        }
        #expect(result.succeeded && log.state.withLockedValue { $0.keys.count } == 4)
        let refused = Log(answers: [.notLeader(leader: nil)])
        let first = await EtcdWriter.submit(command, until: .now + .seconds(3), pause: .milliseconds(1)) { command, _ in
            refused.attempt(command)
        }
        #expect(first == .notLeader(leader: nil) && refused.state.withLockedValue { $0.keys.count } == 1)
    }

    /// An outcome that stays unknown until the deadline is answered unknown (etcd's timeout).
    @Test func anOutcomeUnknownUntilTheDeadlineStaysUnknown() async throws {
        let log = Log(answers: Array(repeating: .unknown("timed out"), count: 10_000))
        let command = StoreCommand(operation: .transaction(Self.lock), idempotencyKey: "etcd/test")
        let outcome = await EtcdWriter.submit(command, until: .now + .milliseconds(100), pause: .milliseconds(5)) {
            command, _ in log.attempt(command)
        }
        guard case .unknown = outcome else {
            Issue.record("not unknown: \(outcome)")
            return
        }
    }
}
