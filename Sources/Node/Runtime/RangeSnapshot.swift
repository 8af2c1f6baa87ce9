/// What a range read scans: the store's key index as it stood at `appliedIndex`, taken on the
/// Raft actor right after the read's barrier (`RaftNode.rangeSnapshot`) and scanned off it. A
/// value: writes applied after it was taken never show in it. Internal: its index holds `/_sys/`
/// too, which only callers that may see it get, through `RaftNode.range(...includeReserved:)`.
struct RangeSnapshot: Sendable {
    let index: SortedKeyIndex
    /// The store's revision at `appliedIndex`: where a watch continues from.
    let revision: UInt64
    /// The log index the store reflected when the snapshot was taken.
    let appliedIndex: UInt64
    /// The index the read barrier confirmed (ReadIndex or lease; a stale read: the applied index
    /// when it was checked). Never above `appliedIndex`.
    let confirmedIndex: UInt64
}
