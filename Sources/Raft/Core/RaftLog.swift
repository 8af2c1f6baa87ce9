/// The in-memory view of one node's log: the last snapshot, the entries after it, and how far
/// they have been made durable, committed and applied.
///
/// Indexes: `snapshot.index < firstIndex ≤ lastIndex`, `applied ≤ committed ≤ lastIndex`.
/// Entries at or below the snapshot index are gone; their term is only known for the snapshot
/// index itself (Raft paper §7).
struct RaftLog: Sendable {
    /// The latest snapshot: taken by the host through `compact` or received from a leader.
    private(set) var snapshot: Snapshot
    /// `entries[i].index == snapshot.metadata.index + 1 + i`.
    private(set) var entries: [LogEntry]
    private(set) var committed: UInt64
    /// Applied by the host (acknowledged through `advance`).
    private(set) var applied: UInt64
    /// Handed to the host for applying but not yet acknowledged.
    private(set) var applying: UInt64
    /// Entries up to here are durable (acknowledged through `advance`).
    private(set) var stable: UInt64
    /// Entries from here on have not been handed to the host for persisting yet.
    private(set) var unstableFrom: UInt64
    /// A snapshot received from a leader that the host has not yet been told to persist.
    private(set) var pendingSnapshot: Snapshot?
    /// Configuration entries still in the log (not compacted), with the configuration in force
    /// after each. The configuration in force is the last one, or the snapshot's (thesis §4.1).
    private(set) var configurationHistory: [(index: UInt64, configuration: ClusterConfiguration)] = []
    /// Set when a safety property this log relies on was found broken; the host must stop the node.
    private(set) var violation: String?

    init(restoring state: RestoredState) throws {
        snapshot = state.snapshot
        entries = []
        let base = state.snapshot.metadata.index
        committed = base
        applied = base
        applying = base
        stable = base
        unstableFrom = base + 1
        var expected = base + 1
        for entry in state.entries {
            guard entry.index == expected else {
                throw RaftError.entriesNotContiguous(expected: expected, found: entry.index)
            }
            expected += 1
        }
        entries = state.entries
        stable = lastIndex
        unstableFrom = lastIndex + 1
        rebuildConfigurationHistory(from: 0)
        let commit = max(state.hardState.commit, base)
        guard commit <= lastIndex else { throw RaftError.commitBeyondLog(commit: commit, lastIndex: lastIndex) }
        committed = commit
    }

    var snapshotIndex: UInt64 { snapshot.metadata.index }
    var snapshotTerm: UInt64 { snapshot.metadata.term }
    var firstIndex: UInt64 { snapshotIndex + 1 }
    var lastIndex: UInt64 { snapshotIndex + UInt64(entries.count) }
    var lastTerm: UInt64 { entries.last?.term ?? snapshotTerm }

    /// The configuration in force: that of the newest configuration entry in the log, applied or not.
    var configuration: ClusterConfiguration {
        configurationHistory.last?.configuration ?? snapshot.metadata.configuration
    }

    /// The configuration in force right after `index` (used when compacting at `index`).
    func configuration(at index: UInt64) -> ClusterConfiguration {
        var result = snapshot.metadata.configuration
        for change in configurationHistory where change.index <= index { result = change.configuration }
        return result
    }

    /// The newest configuration entry's index, or the snapshot index if none is in the log.
    var lastConfigurationIndex: UInt64 { configurationHistory.last?.index ?? snapshotIndex }

    /// The term of the entry at `index`, or nil if it is compacted away or beyond the log.
    @inline(__always)
    func term(at index: UInt64) -> UInt64? {
        if index == snapshotIndex { return snapshotTerm }
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[Int(index - snapshotIndex - 1)].term
    }

    func entry(at index: UInt64) -> LogEntry? {
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[Int(index - snapshotIndex - 1)]
    }

    func matchTerm(_ index: UInt64, _ term: UInt64) -> Bool {
        self.term(at: index) == term
    }

    /// Raft paper §5.4.1: a candidate's log is at least as up-to-date as ours if its last term is
    /// higher, or equal with an index at least as high.
    func isUpToDate(lastIndex candidateIndex: UInt64, lastTerm candidateTerm: UInt64) -> Bool {
        candidateTerm > lastTerm || (candidateTerm == lastTerm && candidateIndex >= lastIndex)
    }

    /// The first index of the run of entries with `term` that contains `index`, for the conflict hint.
    func firstIndex(ofTermAt index: UInt64) -> UInt64 {
        guard let term = term(at: index) else { return index }
        var candidate = index
        while candidate > firstIndex, self.term(at: candidate - 1) == term { candidate -= 1 }
        return candidate
    }

    /// The last index whose entry has `term`, if any (leader side of the conflict hint).
    func lastIndex(ofTerm term: UInt64) -> UInt64? {
        var index = lastIndex
        while index >= firstIndex {
            let entryTerm = entries[Int(index - snapshotIndex - 1)].term
            if entryTerm == term { return index }
            if entryTerm < term { return nil }
            index -= 1
        }
        return snapshotTerm == term ? snapshotIndex : nil
    }

    /// Appends entries that follow the last one (the leader's own proposals).
    mutating func append(_ newEntries: [LogEntry]) {
        for entry in newEntries {
            precondition(entry.index == lastIndex + 1, "leader appends must be contiguous")
            entries.append(entry)
            noteIfConfiguration(entry)
        }
    }

    /// The follower side of AppendEntries (Raft paper Figure 2, receiver steps 2–5): if the log
    /// matches at (prevIndex, prevTerm), drops anything that conflicts with `newEntries`, appends
    /// what is new and returns the index of the last entry now known to match the leader's.
    mutating func maybeAppend(prevIndex: UInt64, prevTerm: UInt64, entries newEntries: [LogEntry]) -> UInt64? {
        guard matchTerm(prevIndex, prevTerm) else { return nil }
        let lastNew = prevIndex + UInt64(newEntries.count)
        // Step 3: only an entry whose term differs is a conflict; never truncate a matching entry,
        // because a delayed, shorter AppendEntries must not erase entries a later one appended.
        var firstNew = newEntries.count
        for (offset, entry) in newEntries.enumerated() {
            if entry.index <= snapshotIndex { continue }
            if !matchTerm(entry.index, entry.term) {
                firstNew = offset
                break
            }
        }
        if firstNew < newEntries.count {
            let conflictIndex = newEntries[firstNew].index
            guard conflictIndex > committed else {
                // Leader Completeness makes this impossible; if it happens, refuse rather than
                // un-commit, and let the host stop the node with the reason.
                violation = "entry \(conflictIndex) is committed here but conflicts with the leader's log"
                return nil
            }
            truncate(from: conflictIndex)
            for entry in newEntries[firstNew...] {
                entries.append(entry)
                noteIfConfiguration(entry)
            }
        }
        return lastNew
    }

    /// Drops entries from `index` on (a conflicting suffix).
    private mutating func truncate(from index: UInt64) {
        guard index <= lastIndex else { return }
        entries.removeSubrange(Int(index - snapshotIndex - 1)...)
        if unstableFrom > index { unstableFrom = index }
        if stable >= index { stable = index - 1 }
        rebuildConfigurationHistory(from: index)
    }

    private mutating func noteIfConfiguration(_ entry: LogEntry) {
        guard entry.kind == .configurationChange else { return }
        let next = ConfigurationChange(encoded: entry.data).flatMap { configuration.applying($0) } ?? configuration
        configurationHistory.append((entry.index, next))
    }

    /// Drops history at or after `index` (they were truncated) and, when starting from scratch,
    /// replays every configuration entry in the log.
    private mutating func rebuildConfigurationHistory(from index: UInt64) {
        if index == 0 {
            configurationHistory = []
            for entry in entries where entry.kind == .configurationChange { noteIfConfiguration(entry) }
        } else {
            configurationHistory.removeAll { $0.index >= index }
        }
    }

    mutating func reportViolation(_ reason: String) {
        violation = violation ?? reason
    }

    mutating func commit(to index: UInt64) {
        guard index > committed else { return }
        precondition(index <= lastIndex, "commit index \(index) beyond last index \(lastIndex)")
        committed = index
    }

    /// Entries from `start` on, at most `maxBytes` worth but always at least one.
    func entries(from start: UInt64, maxBytes: Int) -> [LogEntry] {
        guard start >= firstIndex, start <= lastIndex else { return [] }
        let lower = Int(start - snapshotIndex - 1)
        var upper = lower
        var bytes = 0
        while upper < entries.count {
            bytes += entries[upper].byteCount
            if bytes > maxBytes && upper > lower { break }
            upper += 1
        }
        return Array(entries[lower..<upper])
    }

    // MARK: Handing work to the host

    var hasUnstableEntries: Bool { unstableFrom <= lastIndex }
    var hasEntriesToApply: Bool { committed > applying }

    /// Entries not yet handed to the host for persisting; marks them handed out.
    mutating func takeUnstableEntries() -> [LogEntry] {
        guard unstableFrom <= lastIndex else { return [] }
        let result = Array(entries[Int(unstableFrom - snapshotIndex - 1)...])
        unstableFrom = lastIndex + 1
        return result
    }

    /// Committed entries not yet handed to the host for applying; marks them handed out.
    mutating func takeEntriesToApply() -> [LogEntry] {
        guard committed > applying else { return [] }
        let lower = Int(applying - snapshotIndex)
        let upper = Int(committed - snapshotIndex)
        let result = Array(entries[lower..<upper])
        applying = committed
        return result
    }

    mutating func takePendingSnapshot() -> Snapshot? {
        defer { pendingSnapshot = nil }
        return pendingSnapshot
    }

    /// The host persisted everything up to `index` (if the entry there still has `term`) and
    /// applied everything it was handed.
    mutating func acknowledge(stableTo index: UInt64, term: UInt64, appliedTo appliedIndex: UInt64) {
        if index > stable, matchTerm(index, term) { stable = index }
        if appliedIndex > applied { applied = appliedIndex }
    }

    // MARK: Snapshots

    /// Replaces the log with a snapshot received from the leader (Raft paper §7, receiver steps 6–8).
    mutating func restore(_ received: Snapshot) {
        snapshot = received
        entries = []
        configurationHistory = []
        committed = received.metadata.index
        applied = received.metadata.index
        applying = received.metadata.index
        stable = received.metadata.index
        unstableFrom = received.metadata.index + 1
        pendingSnapshot = received
    }

    /// The host took a snapshot up to `index`: drop the entries it covers.
    mutating func compact(upTo index: UInt64, data: [UInt8]) throws {
        guard index <= applied else { throw RaftError.compactionBeyondApplied(index: index, applied: applied) }
        guard index > snapshotIndex, let term = term(at: index) else { return }
        let configurationThen = configuration(at: index)
        entries.removeFirst(Int(index - snapshotIndex))
        configurationHistory.removeAll { $0.index <= index }
        snapshot = Snapshot(
            metadata: SnapshotMetadata(index: index, term: term, configuration: configurationThen), data: data)
    }
}
