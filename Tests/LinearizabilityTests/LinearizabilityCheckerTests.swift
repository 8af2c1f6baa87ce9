import Testing

@testable import Linearizability

/// Histories known to be valid and known to be invalid, written as time lines.
@Suite("Linearizability checker")
struct LinearizabilityCheckerTests {
    typealias Op = HistoryOperation

    static func op(
        _ client: Int, _ kind: Op.Kind, _ from: UInt64, _ to: UInt64, _ outcome: Op.Outcome = .ok, key: String = "x"
    ) -> Op {
        Op(client: client, key: key, kind: kind, outcome: outcome, invokedAt: from, completedAt: to)
    }

    static func isLinearizable(_ history: [Op]) -> Bool {
        LinearizabilityChecker.check(history).verdict == .linearizable
    }

    @Test func sequentialWritesAndReadsAreValid() {
        #expect(
            Self.isLinearizable([
                Self.op(1, .read(observed: nil), 0, 1), Self.op(1, .write("a"), 2, 3),
                Self.op(2, .read(observed: "a"), 4, 5), Self.op(2, .delete, 6, 7),
                Self.op(1, .read(observed: nil), 8, 9),
            ]))
    }

    @Test func aStaleReadIsInvalid() {
        // b is acknowledged before the read starts, yet the read returns a.
        let history = [
            Self.op(1, .write("a"), 0, 1), Self.op(1, .write("b"), 2, 3), Self.op(2, .read(observed: "a"), 4, 5),
        ]
        let report = LinearizabilityChecker.check(history)
        guard case .notLinearizable(let key, let operation, _) = report.verdict else {
            Issue.record("expected a violation, got \(report.verdict)")
            return
        }
        #expect(key == "x")
        #expect(operation.kind == .read(observed: "a"))
    }

    @Test func concurrentReadMaySeeEitherValue() {
        // The read overlaps the write of b: a and b are both valid answers.
        for observed in ["a", "b"] {
            #expect(
                Self.isLinearizable([
                    Self.op(1, .write("a"), 0, 1), Self.op(1, .write("b"), 2, 6),
                    Self.op(2, .read(observed: observed), 3, 5),
                ]))
        }
        #expect(
            !Self.isLinearizable([
                Self.op(1, .write("a"), 0, 1), Self.op(1, .write("b"), 2, 6), Self.op(2, .read(observed: "c"), 3, 5),
            ]))
    }

    @Test func aLostAcknowledgedWriteIsInvalid() {
        // The write of b was acknowledged; every later read sees a.
        #expect(
            !Self.isLinearizable([
                Self.op(1, .write("a"), 0, 1), Self.op(2, .write("b"), 2, 3), Self.op(3, .read(observed: "a"), 10, 11),
                Self.op(3, .read(observed: "a"), 12, 13),
            ]))
    }

    @Test func readsMustNotGoBackInTime() {
        // Two sequential reads during a long write: new then old is impossible.
        #expect(
            !Self.isLinearizable([
                Self.op(1, .write("a"), 0, 1), Self.op(2, .write("b"), 2, 20), Self.op(3, .read(observed: "b"), 3, 4),
                Self.op(3, .read(observed: "a"), 5, 6),
            ]))
        #expect(
            Self.isLinearizable([
                Self.op(1, .write("a"), 0, 1), Self.op(2, .write("b"), 2, 20), Self.op(3, .read(observed: "a"), 3, 4),
                Self.op(3, .read(observed: "b"), 5, 6),
            ]))
    }

    @Test func aCompareAndSetThatSucceededOnTheWrongValueIsInvalid() {
        // The value is b when the CAS runs alone, yet it claims to have replaced a.
        #expect(
            !Self.isLinearizable([
                Self.op(1, .write("a"), 0, 1), Self.op(1, .write("b"), 2, 3),
                Self.op(2, .compareAndSet(expected: "a", new: "c", succeeded: true), 4, 5),
            ]))
        #expect(
            Self.isLinearizable([
                Self.op(1, .write("a"), 0, 1),
                Self.op(2, .compareAndSet(expected: "a", new: "c", succeeded: true), 2, 3),
                Self.op(1, .read(observed: "c"), 4, 5),
            ]))
        // A refused CAS is an observation too: the value was not what it expected.
        #expect(
            !Self.isLinearizable([
                Self.op(1, .write("a"), 0, 1),
                Self.op(2, .compareAndSet(expected: "a", new: "c", succeeded: false), 2, 3),
            ]))
    }

    @Test func unknownWritesMayOrMayNotHaveHappened() {
        let unknownWrite = Self.op(2, .write("b"), 2, 3, .unknown)
        // Seen later: it took effect.
        #expect(
            Self.isLinearizable([
                Self.op(1, .write("a"), 0, 1), unknownWrite, Self.op(1, .read(observed: "b"), 10, 11),
            ]))
        // Never seen: it never took effect.
        #expect(
            Self.isLinearizable([
                Self.op(1, .write("a"), 0, 1), unknownWrite, Self.op(1, .read(observed: "a"), 10, 11),
            ]))
        // Seen very late, after a read that missed it: still valid (it took effect late).
        #expect(
            Self.isLinearizable([
                Self.op(1, .write("a"), 0, 1), unknownWrite, Self.op(1, .read(observed: "a"), 10, 11),
                Self.op(1, .read(observed: "b"), 20, 21),
            ]))
        // But it cannot take effect before it was invoked.
        #expect(
            !Self.isLinearizable([
                Self.op(1, .write("a"), 0, 1), Self.op(1, .read(observed: "b"), 2, 3),
                Self.op(2, .write("b"), 5, 6, .unknown),
            ]))
        // And once seen, it cannot be undone by nothing.
        #expect(
            !Self.isLinearizable([
                unknownWrite, Self.op(1, .read(observed: "b"), 10, 11), Self.op(1, .read(observed: nil), 12, 13),
            ]))
    }

    /// The quick search places an unknown write only where an observation needs it, and never
    /// ahead of an operation that returned before the write was invoked.
    @Test func unknownHelpersRespectRealTime() {
        // b (unknown, invoked at 5) may land after the read of a at 8–9 and before r1 ends at 10.
        #expect(
            Self.isLinearizable([
                Self.op(3, .read(observed: "b"), 0, 10), Self.op(1, .write("a"), 1, 3),
                Self.op(2, .write("b"), 5, 6, .unknown), Self.op(4, .read(observed: "a"), 8, 9),
            ]))
        // Here the read of b ends at 4, before b was ever invoked (at 5): impossible.
        #expect(
            !Self.isLinearizable([
                Self.op(1, .write("a"), 0, 1), Self.op(3, .read(observed: "b"), 2, 4),
                Self.op(2, .write("b"), 5, 6, .unknown),
            ]))
        // An unknown delete explains a later absent read; unknown writes nobody saw are ignored.
        #expect(
            Self.isLinearizable([
                Self.op(1, .write("a"), 0, 1), Self.op(2, .delete, 2, 3, .unknown),
                Self.op(4, .write("z"), 2, 3, .unknown), Self.op(3, .read(observed: nil), 10, 11),
            ]))
        // A refused compare-and-set explained by an unknown write that changed the value.
        #expect(
            Self.isLinearizable([
                Self.op(1, .write("a"), 0, 1), Self.op(2, .write("q"), 2, 3, .unknown),
                Self.op(3, .compareAndSet(expected: "a", new: "c", succeeded: false), 4, 5),
            ]))
    }

    /// Many pending unknown operations: the quick search stays small.
    @Test func manyUnknownOperationsStayTractable() {
        var history: [Op] = []
        var time: UInt64 = 0
        for index in 0..<3000 {
            time += 10
            history.append(Self.op(index % 5, .write("v\(index)"), time, time + 5))
            history.append(Self.op(5 + index % 3, .delete, time + 1, time + 2, .unknown))
            history.append(Self.op(8, .write("lost\(index)"), time + 2, time + 3, .unknown))
            history.append(Self.op(9, .read(observed: "v\(index)"), time + 6, time + 8))
        }
        let report = LinearizabilityChecker.check(history)
        #expect(report.verdict == .linearizable)
        #expect(report.statesExplored < 100_000)
    }

    @Test func failedOperationsNeverHappened() {
        #expect(
            !Self.isLinearizable([
                Self.op(1, .write("a"), 0, 1), Self.op(2, .write("b"), 2, 3, .failed),
                Self.op(1, .read(observed: "b"), 10, 11),
            ]))
    }

    @Test func keysAreCheckedIndependently() {
        let history = [
            Self.op(1, .write("a"), 0, 1, key: "k1"), Self.op(1, .write("a"), 2, 3, key: "k2"),
            Self.op(2, .read(observed: "a"), 4, 5, key: "k1"), Self.op(2, .read(observed: nil), 6, 7, key: "k2"),
        ]
        let report = LinearizabilityChecker.check(history)
        guard case .notLinearizable(let key, _, _) = report.verdict else {
            Issue.record("expected a violation on k2")
            return
        }
        #expect(key == "k2")
        #expect(report.keys == 2)
    }

    /// Many concurrent clients over a real sequential run: valid by construction, and the
    /// memoized search stays small.
    @Test func largeConcurrentValidHistoryIsCheckedQuickly() {
        var generator = SplitMix64(seed: 7)
        var history: [Op] = []
        var value: String? = nil
        var time: UInt64 = 0
        // Linearization points happen in order; each operation's interval is stretched around
        // its point so that many overlap.
        for index in 0..<400 {
            time += 10
            let client = Int(generator.next() % 8)
            let kind: Op.Kind
            switch generator.next() % 4 {
            case 0: kind = .read(observed: value)
            case 1:
                kind = .write("v\(index)")
                value = "v\(index)"
            case 2:
                let expected = generator.next() % 2 == 0 ? value : "nope"
                let succeeded = expected == value
                kind = .compareAndSet(expected: expected, new: "c\(index)", succeeded: succeeded)
                if succeeded { value = "c\(index)" }
            default:
                kind = .delete
                value = nil
            }
            let before = generator.next() % 25
            let after = generator.next() % 25
            history.append(Self.op(client, kind, time - min(before, time), time + after))
        }
        let report = LinearizabilityChecker.check(history)
        #expect(report.verdict == .linearizable)
        // The same history with one read changed to a value never written is caught.
        if let index = history.firstIndex(where: { if case .read = $0.kind { true } else { false } }) {
            var broken = history
            broken[index].kind = .read(observed: "never written")
            #expect(LinearizabilityChecker.check(broken).verdict != .linearizable)
        }
    }
}
