import Membership

/// One message in flight: a datagram (lossy) or a push-pull message on a TCP connection (reliable,
/// but cut by partitions).
struct Envelope: Sendable {
    var from: Int
    var to: Int
    var bytes: [UInt8]
    var isStream: Bool
}

/// Messages by arrival tick, and which directed links are cut.
struct SimulatedNetwork {
    let memberCount: Int
    /// `blocked[from][to]`: messages on this directed link are dropped.
    var blocked: [[Bool]]
    private var buckets: [[Envelope]]

    init(memberCount: Int, maxDelay: Int) {
        self.memberCount = memberCount
        blocked = Array(repeating: Array(repeating: false, count: memberCount), count: memberCount)
        buckets = Array(repeating: [], count: maxDelay + 2)
    }

    mutating func schedule(_ envelope: Envelope, arrival: Int) {
        buckets[arrival % buckets.count].append(envelope)
    }

    /// Removes and returns the messages arriving at `now` over links that are not cut.
    mutating func deliveries(at now: Int) -> [Envelope] {
        let slot = now % buckets.count
        let arriving = buckets[slot]
        buckets[slot] = []
        return arriving.filter { !blocked[$0.from][$0.to] }
    }

    func connected(_ a: Int, _ b: Int) -> Bool { !blocked[a][b] && !blocked[b][a] }

    /// Splits the members into `side` and the rest.
    mutating func partition(_ side: Set<Int>) {
        for from in 0..<memberCount {
            for to in 0..<memberCount where side.contains(from) != side.contains(to) {
                blocked[from][to] = true
            }
        }
    }

    mutating func heal() {
        for from in 0..<memberCount {
            for to in 0..<memberCount { blocked[from][to] = false }
        }
    }
}
