import Raft

/// What survives a crash: exactly what the host persisted from `Ready`s, nothing more.
struct SimulatedDisk {
    var hardState = HardState()
    var snapshot: Snapshot
    var entries: [LogEntry] = []

    init(voters: [NodeID]) {
        snapshot = RestoredState.bootstrap(voters: voters).snapshot
    }

    var restoredState: RestoredState {
        RestoredState(hardState: hardState, snapshot: snapshot, entries: entries)
    }

    /// Persists a `Ready` in the order the contract asks: snapshot, entries, hard state.
    mutating func persist(_ ready: Ready) {
        if let received = ready.snapshot {
            snapshot = received
            entries = []
        }
        if let first = ready.entries.first {
            let keep = Int(first.index - snapshot.metadata.index - 1)
            if keep < entries.count { entries.removeSubrange(max(0, keep)...) }
            entries.append(contentsOf: ready.entries)
        }
        if let hardState = ready.hardState { self.hardState = hardState }
    }

    /// The host took a snapshot: store it and drop the entries it covers.
    mutating func saveSnapshot(_ taken: Snapshot) {
        let drop = Int(taken.metadata.index - snapshot.metadata.index)
        entries.removeFirst(min(drop, entries.count))
        snapshot = taken
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

    var isUp: Bool { core != nil }
}
