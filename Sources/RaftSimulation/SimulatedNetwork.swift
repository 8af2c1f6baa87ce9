import Raft

/// A network of lossy, delaying, duplicating, reordering links with partitions, all driven by
/// the simulation's seeded generator. Time is in ticks; a message sent at tick `t` arrives at
/// `t + delay` unless a fault drops it.
struct SimulatedNetwork {
    let nodeCount: Int
    let maxDelay: Int
    let maxLongDelay: Int
    /// Share of messages held up for a long time (up to `maxLongDelay` ticks).
    var longDelayRate = 0.0
    /// `blocked[from][to]`: messages on this directed link are dropped (partitions, one-way faults).
    var blocked: [[Bool]]
    var lossRate = 0.0
    var duplicateRate = 0.0
    var delaySpread = 1
    /// Messages by arrival tick modulo the ring size.
    private var buckets: [[Message]]

    init(nodeCount: Int, maxDelay: Int, maxLongDelay: Int) {
        self.nodeCount = nodeCount
        self.maxDelay = maxDelay
        self.maxLongDelay = maxLongDelay
        blocked = Array(repeating: Array(repeating: false, count: nodeCount + 1), count: nodeCount + 1)
        buckets = Array(repeating: [], count: max(maxDelay, maxLongDelay) + 2)
    }

    mutating func send(_ message: Message, now: Int, random: inout SeededRandom) {
        if lossRate > 0 && random.chance(lossRate) { return }
        let copies = duplicateRate > 0 && random.chance(duplicateRate) ? 2 : 1
        for _ in 0..<copies {
            var delay = 1 + (delaySpread > 1 ? random.next(below: delaySpread) : 0)
            // Votes are held up more often than other traffic: a grant that arrives after its
            // election has moved on is the classic window for counting a vote in the wrong term.
            let rate = message.isVoteResponse ? min(1, longDelayRate * 10) : longDelayRate
            if rate > 0 && random.chance(rate) { delay = 1 + random.next(below: maxLongDelay) }
            buckets[(now + delay) % buckets.count].append(message)
        }
    }

    /// Removes and returns the messages arriving at tick `now` over links that are not blocked.
    mutating func deliveries(at now: Int) -> [Message] {
        let slot = now % buckets.count
        let arriving = buckets[slot]
        buckets[slot] = []
        return arriving.filter { !blocked[Int($0.from)][Int($0.to)] }
    }

    mutating func heal() {
        for from in blocked.indices { for to in blocked[from].indices { blocked[from][to] = false } }
        lossRate = 0
        duplicateRate = 0
        delaySpread = 1
        longDelayRate = 0
    }

    /// Splits the nodes into two sides that cannot talk to each other.
    mutating func partition(_ side: Set<Int>) {
        for from in 1...nodeCount {
            for to in 1...nodeCount where side.contains(from) != side.contains(to) {
                blocked[from][to] = true
            }
        }
    }

    mutating func isolate(_ node: Int, inbound: Bool, outbound: Bool) {
        for other in 1...nodeCount where other != node {
            if inbound { blocked[other][node] = true }
            if outbound { blocked[node][other] = true }
        }
    }
}

extension Message {
    var isVoteResponse: Bool {
        if case .voteResponse = payload { return true }
        return false
    }
}
