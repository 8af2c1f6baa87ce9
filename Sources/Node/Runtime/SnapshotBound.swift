/// The smallest `PeerConnectionLimits.maxIncomingSnapshotBytes` that can never refuse a snapshot
/// of a store kept within the write limits: a node configured below it could be sent a legitimate
/// snapshot it refuses forever, and never catch up.
///
/// What a snapshot holds, each bounded by the limits: the records, charged against the quota with
/// `KeyValueStore.quotaOverheadBytes` each (more than the 40 bytes a record adds to the encoding),
/// plus what writes already in flight when the quota was reached add (`maxUncommittedBytes`, and
/// the overhead of at most `maxPendingWrites` new keys); the idempotency table
/// (`IdempotencyTable.maxBytes`, charged more per entry than it encodes); the change history (its
/// byte bound plus 48 bytes of framing per event); and a fixed allowance for the headers.
public enum SnapshotBound {
    public static let fixedAllowanceBytes: UInt64 = 1 << 20

    public static func minimumBytes(writeLimits: WriteLimits, history: ChangeHistory.Limits) -> UInt64 {
        let overhead = KeyValueStore.quotaOverheadBytes
        let store = writeLimits.quotaBytes + writeLimits.maxUncommittedBytes
        let inFlight = UInt64(writeLimits.maxPendingWrites) * overhead
        let historyBytes = UInt64(history.maxBytes) + UInt64(history.maxEvents) * overhead
        return store + inFlight + IdempotencyTable.maxBytes + historyBytes + fixedAllowanceBytes
    }
}
