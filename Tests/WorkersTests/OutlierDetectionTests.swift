import Testing

@testable import Workers

/// Passive ejection and active health, with time passed in: no clock, no sockets.
@Suite("Outlier detection and active health")
struct OutlierDetectionTests {
    let start = ContinuousClock.now
    func at(_ milliseconds: Int) -> ContinuousClock.Instant { start + .milliseconds(milliseconds) }

    @Test func connectFailuresAndTimeoutsAreOutliersAtOnceServerErrorsOnlyInARow() {
        var settings = OutlierDetector.Settings()
        settings.consecutiveServerErrors = 3
        var detector = OutlierDetector()
        let result1 = detector.record(.connectFailure(refused: false), settings: settings)
        #expect(result1)
        let result2 = detector.record(.timeout, settings: settings)
        #expect(result2)
        let result3 = detector.record(.protocolError, settings: settings)
        #expect(result3)
        let result4 = detector.record(.serverError, settings: settings)
        #expect(!result4)
        let result5 = detector.record(.serverError, settings: settings)
        #expect(!result5)
        let result6 = detector.record(.success, settings: settings)
        #expect(!result6, "a success resets the run")
        let result7 = detector.record(.serverError, settings: settings)
        #expect(!result7)
        let result8 = detector.record(.serverError, settings: settings)
        #expect(!result8)
        let result9 = detector.record(.serverError, settings: settings)
        #expect(result9)
    }

    @Test func ejectionTimeDoublesPerEjectionAndIsCapped() {
        var settings = OutlierDetector.Settings()
        settings.baseEjection = .seconds(1)
        settings.maxEjection = .seconds(5)
        var detector = OutlierDetector()
        let result10 = detector.eject(at: at(0), settings: settings) == .seconds(1)
        #expect(result10)
        #expect(detector.isEjected(at: at(999)))
        #expect(!detector.isEjected(at: at(1000)))
        let result11 = detector.eject(at: at(1000), settings: settings) == .seconds(2)
        #expect(result11)
        let result12 = detector.eject(at: at(3000), settings: settings) == .seconds(4)
        #expect(result12)
        let result13 = detector.eject(at: at(7000), settings: settings) == .seconds(5)
        #expect(result13, "capped")
        let result14 = detector.eject(at: at(12000), settings: settings) == .seconds(5)
        #expect(result14)
        // Clean for longer than twice the cap: the count starts over.
        let result15 = detector.eject(at: at(30000), settings: settings) == .seconds(1)
        #expect(result15)
    }

    @Test func healthTurnsAfterTheThresholdsAndAtOnceOnARefusedConnection() {
        var settings = ActiveHealth.Settings()
        settings.unhealthyThreshold = 2
        settings.healthyThreshold = 2
        var health = ActiveHealth()
        #expect(health.isHealthy, "a new worker gets traffic at once")
        let result16 = health.record(passed: false, settings: settings)
        #expect(!result16)
        let result17 = health.record(passed: false, settings: settings)
        #expect(result17)
        #expect(!health.isHealthy)
        let result18 = health.record(passed: true, settings: settings)
        #expect(!result18)
        let result19 = health.record(passed: true, settings: settings)
        #expect(result19)
        #expect(health.isHealthy)
        let result20 = health.record(passed: false, refused: true, settings: settings)
        #expect(result20)
        #expect(!health.isHealthy)
    }
}
