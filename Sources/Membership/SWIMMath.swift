/// Logarithms without Foundation or the C library, so that the core stays standard-library only
/// and gives bit-identical results on every platform.
enum SWIMMath {
    static let ln2 = 0.693_147_180_559_945_3
    static let ln10 = 2.302_585_092_994_046

    /// ln(x) for x > 0: x = m·2^e with m in [1, 2), ln m = 2·atanh((m−1)/(m+1)) by its series.
    static func naturalLog(_ x: Double) -> Double {
        precondition(x > 0 && x.isFinite, "naturalLog of \(x)")
        let z = (x.significand - 1) / (x.significand + 1)
        let zSquared = z * z
        var term = z
        var sum = 0.0
        var denominator = 1.0
        for _ in 0..<24 {
            sum += term / denominator
            term *= zSquared
            denominator += 2
        }
        return 2 * sum + Double(x.exponent) * ln2
    }

    static func log10(_ x: Double) -> Double { naturalLog(x) / ln10 }
}
