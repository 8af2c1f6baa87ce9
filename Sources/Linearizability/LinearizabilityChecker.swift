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
            // First a search in which an unknown operation takes effect only right before an
            // observation that needs it, and otherwise never ("never took effect" is always a
            // legal reading): every linearization it finds is valid, and it stays small, while
            // the full search multiplies with every pending unknown operation. Only when it
            // finds none is the whole search run, to decide.
            var (verdict, states) = checkKeyLazily(key, byKey[key]!, budget: budgetPerKey)
            if verdict != .linearizable {
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

    /// Wing & Gong over the answered operations only; an unknown operation is linearized only
    /// as a helper, immediately before an answered one that is impossible without it (a read of
    /// its value, a compare-and-set expecting it, a refused compare-and-set it explains). Sound
    /// for a linearizable verdict, not complete: a failure here is re-decided by `checkKey`.
    static func checkKeyLazily(_ key: String, _ all: [HistoryOperation], budget: Int) -> (Verdict, Int) {
        let operations = all.filter { $0.outcome == .ok }
        let unknowns = all.filter {
            if case .read = $0.kind { return false }
            return $0.outcome == .unknown
        }
        guard !operations.isEmpty else { return (.linearizable, 0) }
        // Unknown operations by the value they would leave (nil: deletes).
        var producers: [String?: [Int]] = [:]
        for (index, unknown) in unknowns.enumerated() {
            switch unknown.kind {
            case .write(let value): producers[value, default: []].append(index)
            case .compareAndSet(_, let new, _): producers[new, default: []].append(index)
            case .delete: producers[nil, default: []].append(index)
            case .read: break
            }
        }
        var events: [Event] = []
        for (index, operation) in operations.enumerated() {
            events.append(Event(operation: index, isCall: true, time: operation.invokedAt))
            events.append(Event(operation: index, isCall: false, time: max(operation.completedAt, operation.invokedAt)))
        }
        events.sort { ($0.time, $0.isCall ? 0 : 1, $0.operation) < ($1.time, $1.isCall ? 0 : 1, $1.operation) }
        var list = EventList(events: events, operationCount: operations.count)
        let zobrist = ZobristTable(count: operations.count + unknowns.count)
        var used = [Bool](repeating: false, count: unknowns.count)
        var linearized: (high: UInt64, low: UInt64) = (0, 0)
        var cache: Set<CacheKey> = [CacheKey(high: 0, low: 0, state: nil)]
        var stack: [(operation: Int, helper: Int?, stateBefore: String?)] = []
        var state: String? = nil
        var entry = list.first
        var explored = 0
        var deepest: (depth: Int, blocking: Int) = (0, 0)

        /// Helpers worth trying before `operation` in `state`. A helper placed now must not
        /// jump ahead of an operation that returned before it was invoked: it must be invoked
        /// by the first return still in the list (every earlier return is linearized already).
        func helpers(for operation: HistoryOperation, in state: String?, at entry: Int) -> [Int] {
            var wanted: [String?] = []
            switch operation.kind {
            case .read(let observed): wanted = [observed]
            case .compareAndSet(let expected, _, true): wanted = [expected]
            case .compareAndSet(let expected, _, false) where state == expected:
                wanted = Array(producers.keys.filter { $0 != expected })
            default: return []
            }
            var node = entry
            while node != list.end && events[node - 1].isCall { node = list.next(after: node) }
            let firstReturn = node == list.end ? UInt64.max : events[node - 1].time
            return wanted.flatMap { producers[$0] ?? [] }.filter {
                !used[$0] && unknowns[$0].invokedAt <= firstReturn
            }
        }

        while !list.isEmpty {
            explored += 1
            if explored > budget { return (.undecided(key: key), explored) }
            let event = events[entry - 1]
            if event.isCall {
                let operation = event.operation
                var chosen: (helper: Int?, state: String?, hash: (UInt64, UInt64))?
                let own = zobrist.keys[operation]
                if let newState = RegisterModel.step(state, operations[operation]) {
                    let hash = (linearized.high ^ own.high, linearized.low ^ own.low)
                    if cache.insert(CacheKey(high: hash.0, low: hash.1, state: newState)).inserted {
                        chosen = (nil, newState, hash)
                    }
                } else {
                    for helper in helpers(for: operations[operation], in: state, at: entry) {
                        guard let between = RegisterModel.step(state, unknowns[helper]),
                            let newState = RegisterModel.step(between, operations[operation])
                        else { continue }
                        let other = zobrist.keys[operations.count + helper]
                        let hash = (linearized.high ^ own.high ^ other.high, linearized.low ^ own.low ^ other.low)
                        if cache.insert(CacheKey(high: hash.0, low: hash.1, state: newState)).inserted {
                            chosen = (helper, newState, hash)
                            break
                        }
                    }
                }
                if let chosen {
                    stack.append((operation, chosen.helper, state))
                    if let helper = chosen.helper { used[helper] = true }
                    state = chosen.state
                    linearized = (chosen.hash.0, chosen.hash.1)
                    list.lift(operation)
                    entry = list.first
                } else {
                    entry = list.next(after: entry)
                }
            } else {
                if stack.count >= deepest.depth { deepest = (stack.count, event.operation) }
                guard let (operation, helper, stateBefore) = stack.popLast() else {
                    let blocking = operations[deepest.blocking]
                    return (
                        .notLinearizable(
                            key: key, operation: blocking,
                            explanation: "no order explains \(describe(blocking)) (answered operations only)"),
                        explored
                    )
                }
                state = stateBefore
                let own = zobrist.keys[operation]
                linearized = (linearized.high ^ own.high, linearized.low ^ own.low)
                if let helper {
                    used[helper] = false
                    let other = zobrist.keys[operations.count + helper]
                    linearized = (linearized.high ^ other.high, linearized.low ^ other.low)
                }
                list.unlift(operation)
                // Back at its call: another helper may still be untried there (the cache skips
                // every choice already explored).
                entry = list.callNode[operation]
            }
        }
        return (.linearizable, explored)
    }

    struct CacheKey: Hashable {
        var high: UInt64
        var low: UInt64
        var state: String?
    }

    /// Dancing links over call/return events in time order: node 0 is the head, nodes
    /// 1...count the events, node count + 1 the tail.
    struct EventList {
        var next: [Int]
        var previous: [Int]
        var callNode: [Int]
        var returnNode: [Int]
        let end: Int

        init(events: [Event], operationCount: Int) {
            let count = events.count
            end = count + 1
            next = Array(1...(count + 1)) + [end]
            previous = [0] + Array(0...count)
            callNode = [Int](repeating: 0, count: operationCount)
            returnNode = [Int](repeating: 0, count: operationCount)
            for (position, event) in events.enumerated() {
                if event.isCall {
                    callNode[event.operation] = position + 1
                } else {
                    returnNode[event.operation] = position + 1
                }
            }
        }

        var isEmpty: Bool { next[0] == end }
        var first: Int { next[0] }
        func next(after node: Int) -> Int { next[node] }

        mutating func lift(_ operation: Int) {
            for node in [callNode[operation], returnNode[operation]] {
                next[previous[node]] = next[node]
                previous[next[node]] = previous[node]
            }
        }

        mutating func unlift(_ operation: Int) {
            for node in [returnNode[operation], callNode[operation]] {
                next[previous[node]] = node
                previous[next[node]] = node
            }
        }
    }

    struct Event {
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
        var random = SplitMix64(seed: 0x5241_4654_4741_5445)
        keys = (0..<count).map { _ in (random.next(), random.next()) }
    }
}
