import Testing

@testable import Node

/// The leader's expiry decisions, with time passed in: no clock, no sockets.
@Suite("Lease deadlines (the leader's clocks)")
struct LeaseDeadlinesTests {
    let start = ContinuousClock.now

    func at(_ milliseconds: Int) -> ContinuousClock.Instant { start + .milliseconds(milliseconds) }

    @Test func aNewLeaderGivesEveryLeaseItsWholeTTL() {
        var deadlines = LeaseDeadlines()
        deadlines.restart([(1, .seconds(2)), (2, .seconds(5))], now: at(0))
        #expect(deadlines.takeExpired(now: at(1999)).isEmpty)
        #expect(deadlines.takeExpired(now: at(2000)) == [1])
        #expect(deadlines.remaining(2, now: at(2000)) == .seconds(3))
    }

    @Test func keepalivesPushTheDeadlineAndNothingBringsItForward() {
        var deadlines = LeaseDeadlines()
        deadlines.restart([(1, .seconds(2))], now: at(0))
        let refreshed = deadlines.refresh(1, ttl: .seconds(2), now: at(1500))
        #expect(refreshed)
        #expect(deadlines.takeExpired(now: at(3000)).isEmpty, "kept alive at 1.5 s: lives until 3.5 s")
        // The grant's own feed event arriving late must not shorten what a keepalive promised.
        deadlines.granted(1, ttl: .seconds(2), now: at(1000))
        #expect(deadlines.remaining(1, now: at(3000)) == .milliseconds(500))
        #expect(deadlines.takeExpired(now: at(3500)) == [1])
    }

    @Test func eachExpiryIsHandedOutOnceEarliestFirstThenRetried() {
        var deadlines = LeaseDeadlines(retryAfter: .seconds(1))
        deadlines.restart([(1, .seconds(3)), (2, .seconds(1)), (3, .seconds(2)), (4, .seconds(9))], now: at(0))
        #expect(deadlines.takeExpired(now: at(5000), limit: 2) == [2, 3])
        #expect(deadlines.takeExpired(now: at(5000)) == [1])
        #expect(deadlines.takeExpired(now: at(5500)).isEmpty, "revokes on their way are not proposed twice at once")
        let tooLate = deadlines.refresh(2, ttl: .seconds(1), now: at(5500))
        #expect(!tooLate, "too late: its revoke is on its way")
        // Lease 3's revoke applied; 1 and 2's did not (say the proposal was lost): proposed again.
        deadlines.revoked(3)
        #expect(deadlines.takeExpired(now: at(6000)).sorted() == [1, 2])
        #expect(deadlines.count == 3)
    }

    @Test func reconcilingKeepsKnownDeadlinesAndForgetsGoneLeases() {
        var deadlines = LeaseDeadlines()
        deadlines.restart([(1, .seconds(2)), (2, .seconds(2))], now: at(0))
        deadlines.reconcile([(2, .seconds(2)), (3, .seconds(2))], now: at(1000))
        #expect(deadlines.remaining(1, now: at(1000)) == nil)
        #expect(deadlines.remaining(2, now: at(1000)) == .seconds(1))
        #expect(deadlines.remaining(3, now: at(1000)) == .seconds(2))
    }

    @Test func theLessorAnswersOnlyForItsTerm() {
        let lessor = Lessor()
        #expect(lessor.refresh(1, ttl: .seconds(1), term: 3, now: at(0)) == .inactive)
        lessor.activate(term: 3, leases: [(1, .seconds(1))], now: at(0))
        #expect(lessor.refresh(1, ttl: .seconds(1), term: 4, now: at(0)) == .inactive)
        #expect(lessor.refresh(1, ttl: .seconds(1), term: 3, now: at(500)) == .alive(remaining: .seconds(1)))
        #expect(lessor.takeExpired(now: at(1500), limit: 10) == [1])
        #expect(lessor.remaining(1, ttl: .seconds(1), term: 3, now: at(1500)) == .expiring)
        lessor.deactivate(term: 3)
        #expect(lessor.takeExpired(now: at(9000), limit: 10).isEmpty)
        #expect(lessor.activeTerm == nil)
    }
}
