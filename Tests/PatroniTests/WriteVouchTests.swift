import Testing

@testable import Patroni

@Suite("Vouching for writes: a deadline checked at use")
struct WriteVouchTests {
    @Test func writableOnlyWithinTheFreshnessOfTheLastConfirmedRead() {
        let start = ContinuousClock.now
        var vouch = WriteVouch(freshness: .milliseconds(500))
        #expect(!vouch.writable(at: start), "nothing confirmed yet")
        vouch.confirm(sentAt: start)
        #expect(vouch.writable(at: start + .milliseconds(499)))
        #expect(!vouch.writable(at: start + .milliseconds(500)), "no refresh needed to stop writes")
        #expect(vouch.reason(at: start + .seconds(5)).contains("within"))
        // A late answer to an older read does not move the vouch back, nor a newer one forward
        // past its own send time.
        vouch.confirm(sentAt: start + .milliseconds(300))
        vouch.confirm(sentAt: start + .milliseconds(100))
        #expect(vouch.confirmedAt == start + .milliseconds(300))
        #expect(vouch.writable(at: start + .milliseconds(799)) && !vouch.writable(at: start + .milliseconds(800)))
        vouch.refuse("no leader known")
        #expect(!vouch.writable(at: start + .milliseconds(301)))
        #expect(vouch.reason(at: start) == "no leader known")
    }
}
