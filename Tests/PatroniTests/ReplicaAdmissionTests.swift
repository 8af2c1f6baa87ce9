import Testing

@testable import Patroni

@Suite("Replica admission with hysteresis")
struct ReplicaAdmissionTests {
    let policy = try! TopologyPolicy(admitAfterSamples: 3, admitLagBytes: 1000, dropLagBytes: 5000)

    @Test func admittedAfterNConsecutiveSamplesUnderTheBound() {
        var admission = ReplicaAdmission()
        admission.record(.lag(0), policy: policy)
        admission.record(.lag(1000), policy: policy)
        #expect(!admission.admitted && admission.healthySamples == 2)
        admission.record(.lag(10), policy: policy)
        #expect(admission.admitted)
    }

    @Test func aSampleAboveTheBoundStartsTheCountOver() {
        var admission = ReplicaAdmission()
        for lag: UInt64 in [0, 0, 1001, 0, 0] { admission.record(.lag(lag), policy: policy) }
        #expect(!admission.admitted && admission.healthySamples == 2)
        admission.record(.lag(0), policy: policy)
        #expect(admission.admitted)
    }

    /// Lag wobbling around the admission bound — Patroni's own check flaps on exactly this —
    /// neither drops an admitted replica nor admits an unadmitted one early.
    @Test func flappingLagDoesNotFlapAdmission() {
        var admitted = ReplicaAdmission(admitted: true, healthySamples: 3)
        var waiting = ReplicaAdmission()
        for lag: UInt64 in [900, 1100, 800, 4999, 1000, 3000, 700, 5000] {
            admitted.record(.lag(lag), policy: policy)
            waiting.record(.lag(lag), policy: policy)
            #expect(admitted.admitted, "dropped at \(lag)")
            #expect(!waiting.admitted, "admitted at \(lag)")
        }
    }

    @Test func droppedAboveTheHigherBoundAndReadmittedOnlyAfterNMore() {
        var admission = ReplicaAdmission(admitted: true, healthySamples: 3)
        admission.record(.lag(5001), policy: policy)
        #expect(!admission.admitted && admission.healthySamples == 0)
        admission.record(.lag(0), policy: policy)
        admission.record(.lag(0), policy: policy)
        #expect(!admission.admitted)
        admission.record(.lag(0), policy: policy)
        #expect(admission.admitted)
    }

    @Test func anUnusableSampleDropsAtOnce() {
        var admission = ReplicaAdmission(admitted: true, healthySamples: 7)
        admission.record(.unusable, policy: policy)
        #expect(admission == ReplicaAdmission())
    }

    /// Between primaries there is nothing to measure against: admission holds still.
    @Test func unknownLagChangesNothing() {
        var admitted = ReplicaAdmission(admitted: true, healthySamples: 3)
        var waiting = ReplicaAdmission(admitted: false, healthySamples: 2)
        for _ in 0..<5 {
            admitted.record(.lagUnknown, policy: policy)
            waiting.record(.lagUnknown, policy: policy)
        }
        #expect(admitted == ReplicaAdmission(admitted: true, healthySamples: 3))
        #expect(waiting == ReplicaAdmission(admitted: false, healthySamples: 2))
    }

    @Test func boundsThatWouldFlapAreRefused() {
        #expect(throws: PatroniConfigurationError.self) {
            try TopologyPolicy(admitAfterSamples: 3, admitLagBytes: 2000, dropLagBytes: 1000)
        }
        #expect(throws: PatroniConfigurationError.self) {
            try TopologyPolicy(admitAfterSamples: 0, admitLagBytes: 1, dropLagBytes: 1)
        }
        #expect(TopologyPolicy.default.admitLagBytes < TopologyPolicy.default.dropLagBytes)
    }
}
