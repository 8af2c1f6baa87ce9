import Raft

/// One write the host issued, in the order it issued them (a write-ahead log's records).
enum DiskWrite {
    case snapshot(Snapshot)
    /// An entry replaces any stored entry at its index and everything after it.
    case entry(LogEntry)
    case hardState(HardState)
}

/// What a disk holds at one moment.
struct DiskImage {
    var hardState = HardState()
    var snapshot: Snapshot
    var entries: [LogEntry] = []

    mutating func apply(_ write: DiskWrite) {
        switch write {
        case .snapshot(let received):
            snapshot = received
            entries = []
        case .entry(let entry):
            let base = snapshot.metadata.index
            // Below the snapshot: already covered. Past the end: a log with a hole, which no
            // recovery would read beyond; the write is as good as lost.
            guard entry.index > base, entry.index <= base + UInt64(entries.count) + 1 else { return }
            entries.removeSubrange(Int(entry.index - base - 1)...)
            entries.append(entry)
        case .hardState(let state):
            hardState = state
        }
    }
}

/// A disk with a write-back cache: writes are durable only once synced. A crash keeps what was
/// synced plus some prefix of the writes issued since — none, all, or a torn part (a crash in the
/// middle of persisting a `Ready`: entries written but not the hard state, or only some entries).
struct SimulatedDisk {
    private(set) var synced: DiskImage
    private(set) var unsynced: [DiskWrite] = []

    init(voters: [NodeID]) {
        synced = DiskImage(snapshot: RestoredState.bootstrap(voters: voters).snapshot)
    }

    var snapshot: Snapshot { synced.snapshot }

    /// What reads see: the synced image with every unsynced write on top (the page cache).
    var cached: DiskImage {
        var image = synced
        for write in unsynced { image.apply(write) }
        return image
    }

    /// What a node reads back at start: the cache, which after a power loss holds only what
    /// reached the disk and after a process kill also what did not (yet).
    var restoredState: RestoredState {
        let image = cached
        // As the real host does: the commit index is not fsync'ed on its own, and lowering it to
        // what the log holds is always safe.
        var hardState = image.hardState
        hardState.commit = min(hardState.commit, image.snapshot.metadata.index + UInt64(image.entries.count))
        return RestoredState(hardState: hardState, snapshot: image.snapshot, entries: image.entries)
    }

    /// Issues a `Ready`'s writes in the order the contract asks: snapshot, entries, hard state.
    mutating func write(_ ready: Ready) {
        if let received = ready.snapshot { unsynced.append(.snapshot(received)) }
        for entry in ready.entries { unsynced.append(.entry(entry)) }
        if let hardState = ready.hardState { unsynced.append(.hardState(hardState)) }
    }

    /// fsync: everything written so far is durable.
    mutating func sync() {
        for write in unsynced { synced.apply(write) }
        unsynced = []
    }

    /// The process dies, the machine does not: every write stays in the cache, readable by the
    /// next process and still not durable until somebody fsyncs it.
    func killProcess() {}

    /// Power is cut: the first `kept` unsynced writes happened to reach the platter, the rest are
    /// lost. Returns how many were lost.
    @discardableResult
    mutating func crash(keeping kept: Int) -> Int {
        let kept = min(kept, unsynced.count)
        for write in unsynced.prefix(kept) { synced.apply(write) }
        let lost = unsynced.count - kept
        unsynced = []
        return lost
    }

    /// The host took a snapshot: it writes the file and fsyncs it (then renames it in place), and
    /// the log entries it covers are dropped. Earlier unsynced writes stay in the cache.
    mutating func saveSnapshot(_ taken: Snapshot) {
        let drop = Int(taken.metadata.index - synced.snapshot.metadata.index)
        synced.entries.removeFirst(min(max(0, drop), synced.entries.count))
        synced.snapshot = taken
    }
}

/// The replicated state machine of the simulation: a running hash over every applied entry.
/// Two nodes that applied the same entries in the same order have the same hash, so comparing
/// hashes at an index compares whole histories, and a snapshot is just (index, hash).
struct HashStateMachine {
    var index: UInt64 = 0
    var hash: UInt64 = 0

    mutating func apply(_ entry: LogEntry) {
        index = entry.index
        hash = Self.mix(hash, Self.identity(of: entry))
    }

    var encoded: [UInt8] {
        var bytes: [UInt8] = []
        for value in [index, hash] {
            for shift in stride(from: 0, to: 64, by: 8) {
                bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
            }
        }
        return bytes
    }

    init() {}

    init?(encoded bytes: [UInt8]) {
        if bytes.isEmpty { return }
        guard bytes.count == 16 else { return nil }
        func read(_ offset: Int) -> UInt64 {
            var value: UInt64 = 0
            for byte in 0..<8 { value |= UInt64(bytes[offset + byte]) << UInt64(byte * 8) }
            return value
        }
        index = read(0)
        hash = read(8)
    }

    /// Identifies an entry by term, kind and payload.
    static func identity(of entry: LogEntry) -> UInt64 {
        var value = 0xCBF2_9CE4_8422_2325 ^ entry.term &* 31 ^ UInt64(entry.kind.rawValue)
        for byte in entry.data { value = (value ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return value
    }

    static func mix(_ hash: UInt64, _ value: UInt64) -> UInt64 {
        var mixed = hash ^ (value &+ 0x9E37_79B9_7F4A_7C15 &+ (hash << 6) &+ (hash >> 2))
        mixed = (mixed ^ (mixed >> 31)) &* 0x7FB5_D329_728E_A185
        return mixed ^ (mixed >> 27)
    }
}

/// A client write waiting for its outcome on the node that proposed it.
struct PendingWrite {
    var index: UInt64
    var term: UInt64
    var proposedAt: Int
}

/// A client read waiting for its read index, then for the state machine to catch up.
struct PendingClientRead {
    var requestID: UInt64
    /// The highest index of any write acknowledged before this read began.
    var acknowledgedFloor: UInt64
    /// The highest index any read served before this one began had seen: a later read that does
    /// not see it would take back what a client already observed.
    var observedFloor: UInt64
    var readIndex: UInt64?
}

/// One simulated host: a core when up, its disk always, its volatile state machine and clients.
struct SimulatedNode {
    let id: NodeID
    var core: RaftCore?
    var disk: SimulatedDisk
    var machine = HashStateMachine()
    var writes: [PendingWrite] = []
    var reads: [PendingClientRead] = []
    var boots = 0
    /// Paused (like SIGSTOP): no ticks, no messages, until `pausedUntil`; missed ticks are
    /// delivered at resume, as a host reading a monotonic clock would.
    var pausedUntil = 0
    var missedTicks = 0
    /// A crash the nemesis scheduled for this tick.
    var crashAt: Int?
    /// How far this node's commit index has been checked against the global record.
    var checkedCommit: UInt64 = 0
    /// This node's clock: ticks per 1000 steps at nominal speed (1000, or 2000 for a node
    /// configured with half-length ticks), the current drifted rate, and the fraction of a tick
    /// accumulated so far (in thousandths).
    var nominalRate = 1000
    var rate = 1000
    var phase = 0

    var isUp: Bool { core != nil }
}
