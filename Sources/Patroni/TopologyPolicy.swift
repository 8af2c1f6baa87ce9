/// How strict replica admission is. A replica is admitted for reads after `admitAfterSamples`
/// consecutive samples at most `admitLagBytes` behind the primary, and dropped only once it is
/// more than `dropLagBytes` behind: between the two bounds it keeps whatever it had, so a lag
/// that wobbles around one threshold (Patroni's own check flaps that way) does not flap routing.
public struct TopologyPolicy: Sendable, Equatable {
    public var admitAfterSamples: Int
    public var admitLagBytes: UInt64
    public var dropLagBytes: UInt64

    /// Three samples (with the watcher's 500 ms poll, 1.5 s of evidence), 1 MiB to admit and
    /// 16 MiB to drop — Patroni's default `maximum_lag_on_failover` is 1 MiB.
    public static let `default` = try! TopologyPolicy(
        admitAfterSamples: 3, admitLagBytes: 1 << 20, dropLagBytes: 16 << 20)

    public init(admitAfterSamples: Int, admitLagBytes: UInt64, dropLagBytes: UInt64) throws(PatroniConfigurationError) {
        guard admitAfterSamples >= 1 else {
            throw PatroniConfigurationError("admitAfterSamples must be at least 1, got \(admitAfterSamples)")
        }
        guard dropLagBytes >= admitLagBytes else {
            throw PatroniConfigurationError(
                "dropLagBytes (\(dropLagBytes)) must be at least admitLagBytes (\(admitLagBytes)), or admission would flap"
            )
        }
        self.admitAfterSamples = admitAfterSamples
        self.admitLagBytes = admitLagBytes
        self.dropLagBytes = dropLagBytes
    }
}
