/// Decides whether a history of register operations is linearizable (Herlihy & Wing 1990), key
/// by key: registers are independent, so a history is linearizable iff each key's sub-history is
/// (locality, H&W §3.1), and checking keys apart keeps the search small.
///
/// The search is Wing & Gong's (1993): walk the history's events in time order; at each call,
/// try to linearize that operation now (its observed result must be possible in the current
/// state); when an operation's return is reached before it was linearized, backtrack. Lowe's
/// memoization (2017) prunes it: a set of linearized operations together with the state they
/// lead to is explored once, whatever order produced it.
///
/// History semantics are Knossos's: `failed` operations never happened and are dropped;
/// `unknown` ones have no return event (they may take effect at any point after their call, or
/// never — equivalent to taking effect after everything else).
public enum LinearizabilityChecker {
    public enum Verdict: Sendable, Hashable {
        case linearizable
        /// No order exists. `operation` is the one no order could place: the latest-returning
        /// operation that a longest valid prefix could not include.
        case notLinearizable(key: String, operation: HistoryOperation, explanation: String)
        /// The search exceeded its budget (states explored) without a verdict.
        case undecided(key: String)
    }

    public struct Report: Sendable {
        public var verdict: Verdict
        public var keys: Int
        public var operations: Int
        public var statesExplored: Int
    }

    /// Checks every key; the first key that is not linearizable decides the verdict.
    public static func check(_ history: [HistoryOperation], budgetPerKey: Int = 5_000_000) -> Report {
        let byKey = Dictionary(grouping: history.filter { $0.outcome != .failed }, by: \.key)
        var explored = 0
        var undecided: String?
        for key in byKey.keys.sorted() {
            // First without the unknown operations whose effect nobody observed (unknown
            // deletes, and writes of values no read saw): "it never took effect" is always a
            // legal reading of an unknown operation, so a linearizable verdict on the pruned
            // history holds for the whole one — while every pending unknown operation multiplies
            // the search. Anything else is decided on the whole history.
            let pruned = withoutUnobservedUnknownWrites(byKey[key]!)
            var (verdict, states) = checkKey(key, pruned, budget: budgetPerKey)
            if verdict != .linearizable && pruned.count < byKey[key]!.count {
                let (whole, more) = checkKey(key, byKey[key]!, budget: budgetPerKey)
                states += more
                verdict = whole
            }
            explored += states
            switch verdict {
            case .linearizable: continue
            case .undecided: undecided = undecided ?? key
            case .notLinearizable:
                return Report(verdict: verdict, keys: byKey.count, operations: history.count, statesExplored: explored)
            }
        }
        let verdict: Verdict = undecided.map { .undecided(key: $0) } ?? .linearizable
        return Report(verdict: verdict, keys: byKey.count, operations: history.count, statesExplored: explored)
    }

    /// Drops unknown deletes, and unknown writes and compare-and-sets whose value no read observed
    /// and no compare-and-set expected.
    static func withoutUnobservedUnknownWrites(_ operations: [HistoryOperation]) -> [HistoryOperation] {
        var observed: Set<String> = []
        for operation in operations {
            switch operation.kind {
            case .read(let value?) where operation.outcome == .ok: observed.insert(value)
            case .compareAndSet(let expected?, _, _): observed.insert(expected)
            default: break
            }
        }
        return operations.filter { operation in
            guard operation.outcome == .unknown else { return true }
            switch operation.kind {
            case .write(let value): return observed.contains(value)
            case .compareAndSet(_, let new, _): return observed.contains(new)
            case .delete: return false
            case .read: return true
            }
        }
    }

    private struct Event {
        var operation: Int
        var isCall: Bool
        var time: UInt64
    }

    /// Wing & Gong over a doubly linked list of call/return events, with Lowe's cache.
    static func checkKey(_ key: String, _ operations: [HistoryOperation], budget: Int) -> (Verdict, Int) {
        // Reads whose result is unknown constrain nothing: leave them out.
        let operations = operations.filter {
            if case .read = $0.kind, $0.outcome == .unknown { return false }
            return true
        }
        guard !operations.isEmpty else { return (.linearizable, 0) }
        var events: [Event] = []
        for (index, operation) in operations.enumerated() {
            events.append(Event(operation: index, isCall: true, time: operation.invokedAt))
            let returnTime =
                operation.outcome == .unknown ? UInt64.max : max(operation.completedAt, operation.invokedAt)
            events.append(Event(operation: index, isCall: false, time: returnTime))
        }
        // Calls before returns at the same instant: operations that touch are concurrent.
        events.sort { ($0.time, $0.isCall ? 0 : 1, $0.operation) < ($1.time, $1.isCall ? 0 : 1, $1.operation) }

        // Dancing links over the events: node 0 is the head, nodes 1...count the events in
        // time order, node count + 1 the tail.
        let count = events.count
        let end = count + 1
        var next = Array(1...(count + 1)) + [end]
        var previous = [0] + Array(0...count)
        var callNode = [Int](repeating: 0, count: operations.count)
        var returnNode = [Int](repeating: 0, count: operations.count)
        for (position, event) in events.enumerated() {
            if event.isCall {
                callNode[event.operation] = position + 1
            } else {
                returnNode[event.operation] = position + 1
            }
        }
        func lift(_ operation: Int) {
            for node in [callNode[operation], returnNode[operation]] {
                next[previous[node]] = next[node]
                previous[next[node]] = previous[node]
            }
        }
        func unlift(_ operation: Int) {
            for node in [returnNode[operation], callNode[operation]] {
                next[previous[node]] = node
                previous[next[node]] = node
            }
        }

        // The set of linearized operations is remembered by a 128-bit Zobrist hash (XOR of a
        // random pair per operation) rather than a bitset: a bitset costs n/8 bytes per cached
        // configuration, which a 30-minute history cannot afford. Two different sets collide
        // with probability about (cached configurations)² / 2¹²⁹, far below 10⁻²⁰ here; a
        // collision could only prune an unexplored branch, never invent a linearization.
        struct CacheKey: Hashable {
            var high: UInt64
            var low: UInt64
            var state: String?
        }
        let zobrist = ZobristTable(count: operations.count)
        var linearized: (high: UInt64, low: UInt64) = (0, 0)
        var cache: Set<CacheKey> = [CacheKey(high: 0, low: 0, state: nil)]
        var stack: [(operation: Int, stateBefore: String?)] = []
        var state: String? = nil
        var entry = next[0]
        var explored = 0
        var deepest: (depth: Int, blocking: Int) = (0, 0)

        while next[0] != end {
            explored += 1
            if explored > budget { return (.undecided(key: key), explored) }
            let event = events[entry - 1]
            if event.isCall {
                let operation = event.operation
                if let newState = RegisterModel.step(state, operations[operation]) {
                    let key = zobrist.keys[operation]
                    let candidate = (high: linearized.high ^ key.high, low: linearized.low ^ key.low)
                    if cache.insert(CacheKey(high: candidate.high, low: candidate.low, state: newState)).inserted {
                        stack.append((operation, state))
                        state = newState
                        linearized = candidate
                        lift(operation)
                        entry = next[0]
                        continue
                    }
                }
                entry = next[entry]
            } else {
                // An operation returned before it could be linearized: undo the last choice.
                if stack.count >= deepest.depth { deepest = (stack.count, event.operation) }
                guard let (operation, stateBefore) = stack.popLast() else {
                    let blocking = operations[deepest.blocking]
                    return (
                        .notLinearizable(
                            key: key, operation: blocking,
                            explanation:
                                "no order of the \(operations.count) operations on \"\(key)\" explains \(describe(blocking)); at best \(deepest.depth) operations linearize before it"
                        ), explored
                    )
                }
                state = stateBefore
                let key = zobrist.keys[operation]
                linearized = (linearized.high ^ key.high, linearized.low ^ key.low)
                unlift(operation)
                // Its return is still in the list, so this never runs past the end.
                entry = next[callNode[operation]]
            }
        }
        return (.linearizable, explored)
    }

    static func describe(_ operation: HistoryOperation) -> String {
        let what: String
        switch operation.kind {
        case .read(let observed): what = "read → \(observed.map { "\"\($0)\"" } ?? "absent")"
        case .write(let value): what = "write \"\(value)\""
        case .delete: what = "delete"
        case .compareAndSet(let expected, let new, let succeeded):
            what =
                "cas \(expected.map { "\"\($0)\"" } ?? "absent") → \"\(new)\" (\(succeeded ? "succeeded" : "refused"))"
        }
        return
            "client \(operation.client)'s \(what) [\(operation.outcome.rawValue), \(operation.invokedAt)…\(operation.completedAt)]"
    }
}

/// A random 128-bit key per operation, from a fixed seed (so verdicts are reproducible).
struct ZobristTable {
    var keys: [(high: UInt64, low: UInt64)]

    init(count: Int) {
        var state: UInt64 = 0x5241_4654_4741_5445
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        keys = (0..<count).map { _ in (next(), next()) }
    }
}
