/// One replica's admission for reads, advanced one sample per polling round (see
/// `TopologyPolicy` for the bounds).
public struct ReplicaAdmission: Sendable, Equatable {
    public private(set) var admitted: Bool
    /// Consecutive samples within the admission bound so far.
    public private(set) var healthySamples: Int

    public enum Sample: Sendable, Equatable {
        /// Cannot serve reads now: probe failed, not in recovery, on another timeline than the
        /// primary, or Patroni reports it not running.
        case unusable
        /// Serving, but with nothing to measure its lag against this round (no primary, or no
        /// positions from either source). Evidence neither way: admission stays as it is, so
        /// reads keep their replicas while the cluster is between primaries.
        case lagUnknown
        case lag(UInt64)
    }

    public init(admitted: Bool = false, healthySamples: Int = 0) {
        self.admitted = admitted
        self.healthySamples = healthySamples
    }

    public mutating func record(_ sample: Sample, policy: TopologyPolicy) {
        switch sample {
        case .unusable:
            self = ReplicaAdmission()
        case .lagUnknown:
            break
        case .lag(let bytes) where bytes <= policy.admitLagBytes:
            healthySamples += 1
            if healthySamples >= policy.admitAfterSamples { admitted = true }
        case .lag(let bytes) where bytes > policy.dropLagBytes:
            self = ReplicaAdmission()
        case .lag:
            // Between the bounds: an admitted replica stays, an unadmitted one starts over.
            healthySamples = 0
        }
    }
}
