import Node
import Raft

/// The peer links of the host simulation: one FIFO per directed pair, carrying encoded peer frames
/// (the real codec both ways), with the bounds of the real `PeerLink` (`PeerQueueLimits`). A
/// frame becomes deliverable after a delay; a receiver that is paused reads nothing, so its
/// frames wait — up to the bounds, beyond which they are dropped as the real link drops them —
/// and arrive in a burst when it resumes.
struct SimulatedLinks {
    struct Frame {
        var bytes: [UInt8]
        var deliverableAt: Int
    }

    private var queues: [[[Frame]]]
    private var queuedBytes: [[Int]]
    /// `blocked[from][to]`: the link drops everything (a partition).
    var blocked: [[Bool]]
    private(set) var dropped = 0

    init(nodeCount: Int) {
        queues = Array(repeating: Array(repeating: [], count: nodeCount + 1), count: nodeCount + 1)
        queuedBytes = Array(repeating: Array(repeating: 0, count: nodeCount + 1), count: nodeCount + 1)
        blocked = Array(repeating: Array(repeating: false, count: nodeCount + 1), count: nodeCount + 1)
    }

    mutating func send(_ message: Message, at now: Int, delay: Int) {
        let from = Int(message.from)
        let to = Int(message.to)
        guard !blocked[from][to] else { return }
        let bytes = PeerFrame.encode(.raft(message))
        guard queues[from][to].count < PeerQueueLimits.maxQueuedMessages,
            queuedBytes[from][to] + bytes.count <= PeerQueueLimits.maxQueuedBytes
        else {
            dropped += 1
            return
        }
        // FIFO per link, as over one TCP connection: never before the frame ahead of it.
        let ahead = queues[from][to].last?.deliverableAt ?? 0
        queues[from][to].append(Frame(bytes: bytes, deliverableAt: max(now + delay, ahead)))
        queuedBytes[from][to] += bytes.count
    }

    /// The frames `to` reads now, in order per link.
    mutating func receive(for to: Int, at now: Int) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        for from in queues.indices where from != to {
            var taken = 0
            while taken < queues[from][to].count, queues[from][to][taken].deliverableAt <= now {
                frames.append(queues[from][to][taken].bytes)
                queuedBytes[from][to] -= queues[from][to][taken].bytes.count
                taken += 1
            }
            queues[from][to].removeFirst(taken)
        }
        return frames
    }

    /// A node went down: its connections close, whatever was in flight to or from it is gone.
    mutating func reset(_ node: Int) {
        for other in queues.indices {
            dropped += queues[node][other].count + queues[other][node].count
            queues[node][other] = []
            queues[other][node] = []
            queuedBytes[node][other] = 0
            queuedBytes[other][node] = 0
        }
    }

    mutating func heal() {
        for from in blocked.indices { for to in blocked.indices { blocked[from][to] = false } }
    }
}
