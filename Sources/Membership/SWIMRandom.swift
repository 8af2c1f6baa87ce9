/// A small seedable generator (SplitMix64). The instance draws every random choice (probe order,
/// indirect probe helpers, push-pull partners) from its own one, so the same seed and inputs give
/// the same outputs. Hosts seed it from a real random source in production.
public struct SWIMRandom: RandomNumberGenerator, Sendable, Hashable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }

    /// A number in `0..<bound` (bound > 0); the modulo bias is negligible at these sizes.
    public mutating func next(below bound: Int) -> Int {
        Int(next() % UInt64(bound))
    }

    /// True with probability `probability`.
    public mutating func chance(_ probability: Double) -> Bool {
        Double(next() >> 11) * 0x1.0p-53 < probability
    }

    /// Fisher–Yates, spelled out so the order does not depend on the standard library's algorithm.
    public mutating func shuffle<Element>(_ array: inout [Element]) {
        guard array.count > 1 else { return }
        for index in stride(from: array.count - 1, to: 0, by: -1) {
            array.swapAt(index, next(below: index + 1))
        }
    }

    /// Up to `count` distinct elements of `array`, in random order.
    public mutating func sample<Element>(_ array: [Element], count: Int) -> [Element] {
        var pool = array
        let wanted = min(count, pool.count)
        for index in 0..<wanted {
            pool.swapAt(index, index + next(below: pool.count - index))
        }
        return Array(pool.prefix(wanted))
    }
}
