/// What a range read scans: the store's key index as it stood at `appliedIndex`, taken on the
/// Raft actor right after the read's barrier (`RaftNode.rangeSnapshot`) and scanned off it. A
/// value: writes applied after it was taken never show in it.
public struct RangeSnapshot: Sendable {
    public let index: SortedKeyIndex
    /// The store's revision at `appliedIndex`: where a watch continues from.
    public let revision: UInt64
    /// The log index the store reflected when the snapshot was taken.
    public let appliedIndex: UInt64
    /// The index the read barrier confirmed (ReadIndex or lease; a stale read: the applied index
    /// when it was checked). Never above `appliedIndex`.
    public let confirmedIndex: UInt64
}
