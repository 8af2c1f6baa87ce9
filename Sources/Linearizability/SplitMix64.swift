/// SplitMix64 (Steele, Lea, Flood 2014): the seeded generator behind the checker's Zobrist keys,
/// and the chaos harness's only randomness, so a run's choices replay from its seed.
public struct SplitMix64: Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform enough below `bound` for test workloads (modulo bias is irrelevant here); 0 for 0.
    public mutating func next(below bound: UInt64) -> UInt64 { bound == 0 ? 0 : next() % bound }
}
