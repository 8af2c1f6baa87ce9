/// The bytes this leader proposed that are not yet applied, entry by entry, so the leader can cap
/// them (`WriteLimits.maxUncommittedBytes`, like etcd's MaxUncommittedEntriesSize). Tracked on the
/// host, not in the Raft core: it bounds what this node takes in, and never decides what commits.
struct UncommittedLedger: Sendable, Hashable {
    private var entries: [(index: UInt64, bytes: Int)] = []
    private var head = 0
    private(set) var bytes: UInt64 = 0

    var count: Int { entries.count - head }

    /// A proposal accepted at `index`. Anything recorded at or above it was truncated (a new term
    /// reused the index), so it no longer counts.
    mutating func proposed(index: UInt64, bytes size: Int) {
        while count > 0, let last = entries.last, last.index >= index {
            bytes -= UInt64(last.bytes)
            entries.removeLast()
        }
        entries.append((index, size))
        bytes += UInt64(size)
    }

    /// Everything up to `index` is applied.
    mutating func applied(through index: UInt64) {
        while head < entries.count, entries[head].index <= index {
            bytes -= UInt64(entries[head].bytes)
            head += 1
        }
        if head > 1024, head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }

    /// Leadership ended: what this node proposed is the next leader's business now.
    mutating func clear() {
        entries = []
        head = 0
        bytes = 0
    }

    static func == (lhs: UncommittedLedger, rhs: UncommittedLedger) -> Bool {
        lhs.entries[lhs.head...].elementsEqual(rhs.entries[rhs.head...]) { $0 == $1 }
    }

    func hash(into hasher: inout Hasher) {
        for entry in entries[head...] {
            hasher.combine(entry.index)
            hasher.combine(entry.bytes)
        }
    }
}
