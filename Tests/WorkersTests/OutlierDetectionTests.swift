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
        #expect(detector.record(.connectFailure(refused: false), settings: settings))
        #expect(detector.record(.timeout, settings: settings))
        #expect(detector.record(.protocolError, settings: settings))
        #expect(!detector.record(.serverError, settings: settings))
        #expect(!detector.record(.serverError, settings: settings))
        #expect(!detector.record(.success, settings: settings), "a success resets the run")
        #expect(!detector.record(.serverError, settings: settings))
        #expect(!detector.record(.serverError, settings: settings))
        #expect(detector.record(.serverError, settings: settings))
    }

    @Test func ejectionTimeDoublesPerEjectionAndIsCapped() {
        var settings = OutlierDetector.Settings()
        settings.baseEjection = .seconds(1)
        settings.maxEjection = .seconds(5)
        var detector = OutlierDetector()
        #expect(detector.eject(at: at(0), settings: settings) == .seconds(1))
        #expect(detector.isEjected(at: at(999)))
        #expect(!detector.isEjected(at: at(1000)))
        #expect(detector.eject(at: at(1000), settings: settings) == .seconds(2))
        #expect(detector.eject(at: at(3000), settings: settings) == .seconds(4))
        #expect(detector.eject(at: at(7000), settings: settings) == .seconds(5), "capped")
        #expect(detector.eject(at: at(12000), settings: settings) == .seconds(5))
        // Clean for longer than twice the cap: the count starts over.
        #expect(detector.eject(at: at(30000), settings: settings) == .seconds(1))
    }

    @Test func healthTurnsAfterTheThresholdsAndAtOnceOnARefusedConnection() {
        var settings = ActiveHealth.Settings()
        settings.unhealthyThreshold = 2
        settings.healthyThreshold = 2
        var health = ActiveHealth()
        #expect(health.isHealthy, "a new worker gets traffic at once")
        #expect(!health.record(passed: false, settings: settings))
        #expect(health.record(passed: false, settings: settings))
        #expect(!health.isHealthy)
        #expect(!health.record(passed: true, settings: settings))
        #expect(health.record(passed: true, settings: settings))
        #expect(health.isHealthy)
        #expect(health.record(passed: false, refused: true, settings: settings))
        #expect(!health.isHealthy)
    }
}
