import Raft

/// `RaftNode`'s Ready loop without the actor, the network or the clock: one `Ready` at a time,
/// persisted (and fsync'ed when it must be) before anything in it is acted on, the snapshot
/// installed and the committed entries applied to the store, the core advanced, the log compacted
/// when due. What the host must still do — send the messages, answer the waiting clients, tell the
/// watchers — comes back as a `ReadyStep`. The host simulation runs this same loop, on a simulated
/// file system, so what it checks is what production runs.
package struct ReadyLoop {
    package var core: RaftCore
    package let storage: NodeStorage
    package private(set) var store: KeyValueStore
    /// The index the store reflects.
    package private(set) var appliedIndex: UInt64
    package let compactionThreshold: UInt64
    /// Also compact once the entries applied since the last checkpoint carry this many bytes, so a
    /// few large values cannot grow the log (and a restart's replay) without bound.
    ///
    /// Compaction by bytes keeps a catch-up tail: each time the bound is reached the store is
    /// encoded as a checkpoint, and the log is compacted only up to the *previous* checkpoint. So
    /// between one and two bounds' worth of entries stay behind the snapshot, and a follower
    /// lagging by less than that catches up from the log, instead of being sent a snapshot that a
    /// heavy write rate has already made stale by the time it is installed — forever. The price is
    /// one encoded store held in memory between checkpoints.
    package var compactionBytes: UInt64 = 64 << 20
    /// Bytes of entry data applied since the last snapshot or checkpoint.
    package private(set) var appliedBytesSinceSnapshot: UInt64 = 0
    /// The store as encoded at the last byte-triggered checkpoint: the next one compacts to it.
    package private(set) var checkpoint: (index: UInt64, data: [UInt8])?
    /// For a store rebuilt from an empty snapshot.
    let historyLimits: ChangeHistory.Limits
    /// Set once the loop has stopped the node; nothing more is done.
    package private(set) var failure: String?

    package init(
        core: RaftCore, storage: NodeStorage, store: KeyValueStore, appliedIndex: UInt64,
        compactionThreshold: UInt64, historyLimits: ChangeHistory.Limits
    ) {
        self.core = core
        self.storage = storage
        self.store = store
        self.appliedIndex = appliedIndex
        self.compactionThreshold = compactionThreshold
        self.historyLimits = historyLimits
    }

    /// Builds the loop from what `NodeStorage.open` read back.
    package init(
        opened: NodeStorage.Opened, options: RaftOptions, compactionThreshold: UInt64,
        historyLimits: ChangeHistory.Limits
    ) throws {
        let base = opened.restored.snapshot
        self.init(
            core: try RaftCore(options: options, restoring: opened.restored), storage: opened.storage,
            store: try Self.store(from: base, historyLimits: historyLimits),
            appliedIndex: base.metadata.index, compactionThreshold: compactionThreshold, historyLimits: historyLimits)
    }

    /// A store from an empty snapshot is brand new and takes this node's history limits (the
    /// idempotency limits are cluster-wide constants); any other keeps the history limits it was
    /// created with, as every replica of it does.
    static func store(from snapshot: Snapshot, historyLimits: ChangeHistory.Limits) throws -> KeyValueStore {
        snapshot.data.isEmpty
            ? KeyValueStore(historyLimits: historyLimits)
            : try KeyValueStore(snapshot: snapshot.data)
    }

    /// Handles the next `Ready`, if the core has one. A step with `failure` set is the last: the
    /// node must stop (persisting failed, a committed entry or a snapshot does not decode, or the
    /// core found a safety property broken) — its messages are not to be sent.
    package mutating func next() -> ReadyStep? {
        guard failure == nil, core.hasReady else { return nil }
        let ready = core.ready()
        var step = ReadyStep()
        do {
            step.fsync = try storage.persist(ready)
        } catch {
            step.storageFailed = true
            return stop(&step, "cannot persist: \(error)")
        }
        step.persistedEntries = ready.entries.count
        step.messages = ready.messages
        if let snapshot = ready.snapshot {
            do {
                store = try Self.store(from: snapshot, historyLimits: historyLimits)
            } catch {
                return stop(&step, "snapshot at \(snapshot.metadata.index) does not decode: \(error)")
            }
            appliedIndex = snapshot.metadata.index
            appliedBytesSinceSnapshot = 0
            checkpoint = nil
            step.installedSnapshot = snapshot.metadata.index
            step.installedStore = store
        }
        for entry in ready.committedEntries {
            var applied = AppliedEntry(entry: entry)
            if entry.kind == .command {
                // A command this node cannot decode (written by a newer version, or damaged)
                // stops it: skipping the entry would let this store drift from the others'.
                do {
                    let outcome = store.applyRecordingChange(try StoreCommand(decoding: entry.data))
                    applied.result = outcome.result
                    applied.change = outcome.change
                } catch {
                    return stop(
                        &step,
                        "committed entry \(entry.index) (term \(entry.term)) is not a store command this node can decode: \(error)"
                    )
                }
            }
            appliedIndex = entry.index
            appliedBytesSinceSnapshot += UInt64(entry.data.count)
            step.applied.append(applied)
        }
        step.readStates = ready.readStates
        step.failedReads = ready.failedReads
        step.softState = ready.softState
        core.advance()
        if let violation = core.safetyViolation { return stop(&step, violation) }
        compactIfDue(&step)
        return step
    }

    private mutating func stop(_ step: inout ReadyStep, _ reason: String) -> ReadyStep {
        failure = reason
        step.failure = reason
        step.messages = []
        return step
    }

    private mutating func compactIfDue(_ step: inout ReadyStep) {
        let applied = core.appliedIndex
        guard applied == appliedIndex, applied > core.snapshotIndex else { return }
        // Entries count from the last checkpoint once there is one, so the entry threshold cannot
        // compact away the tail the byte checkpoints keep.
        let byEntries = applied >= max(core.snapshotIndex, checkpoint?.index ?? 0) + compactionThreshold
        let byBytes = appliedBytesSinceSnapshot >= compactionBytes
        guard byEntries || byBytes else { return }
        let target: (index: UInt64, data: [UInt8])
        if checkpoint == nil && !byBytes {
            // Compaction by entries alone, as the core's threshold always did.
            target = (applied, store.snapshot)
            appliedBytesSinceSnapshot = 0
        } else {
            let previous = checkpoint
            checkpoint = (applied, store.snapshot)
            appliedBytesSinceSnapshot = 0
            guard let previous, previous.index > core.snapshotIndex else { return }
            target = previous
        }
        do {
            try core.compact(upTo: target.index, snapshotData: target.data)
            try storage.saveCompaction(core.snapshot)
            step.compactedTo = target.index
        } catch {
            step.storageFailed = true
            _ = stop(&step, "compaction at \(target.index) failed: \(error)")
        }
    }
}

/// What one turn of the Ready loop leaves for the host to do.
package struct ReadyStep {
    /// To send now: everything they promise is durable.
    package var messages: [Message] = []
    /// Committed entries applied to the store, in order, with what each did.
    package var applied: [AppliedEntry] = []
    /// A snapshot from the leader replaced the store: its index, and the store as the snapshot
    /// made it (before this step's entries were applied on top), for the watchers.
    package var installedSnapshot: UInt64?
    package var installedStore: KeyValueStore?
    package var readStates: [ReadState] = []
    package var failedReads: [UInt64] = []
    package var softState: SoftState?
    package var persistedEntries = 0
    /// How long the fsync took, when there was one.
    package var fsync: Duration?
    package var compactedTo: UInt64?
    /// The node must stop, for this reason.
    package var failure: String?
    /// The failure was the disk's (a write or fsync failed): see `WriteFailureMarker`.
    package var storageFailed = false
}

package struct AppliedEntry {
    package var entry: LogEntry
    /// For a command: what it did.
    package var result: StoreResult?
    package var change: StoreChange?
}
