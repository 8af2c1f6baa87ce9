import Testing

@testable import Node

/// Review finding 8: the leader's idempotency stamp is its wall time bounded by the log's clock
/// plus the monotonic time elapsed, so a leader whose clock is far ahead cannot make every replica
/// forget every key at once.
@Suite("Idempotency stamps")
struct IdempotencyStamperTests {
    @Test func aLeaderAnHourAheadMovesTheClockAtRealSpeed() {
        var stamper = IdempotencyStamper()
        let hour: UInt64 = 3_600_000
        // The clock this node applied, at monotonic 10 s.
        stamper.observe(1_000_000, at: .seconds(10))
        // Two seconds later its wall clock says an hour ahead: the stamp moves two seconds.
        #expect(stamper.stamp(wallMilliseconds: 1_002_000 + hour, at: .seconds(12)) == 1_002_000)
        #expect(stamper.stamp(wallMilliseconds: 1_002_500 + hour, at: .milliseconds(12_500)) == 1_002_500)
        // A window's worth of keys is never forgotten in one step: within a minute of monotonic
        // time the clock moved a minute.
        #expect(stamper.stamp(wallMilliseconds: 1_062_500 + hour, at: .milliseconds(72_500)) == 1_062_500)
    }

    @Test func aWallClockBehindDoesNotTurnTheClockBack() {
        var stamper = IdempotencyStamper()
        stamper.observe(1_000_000, at: .seconds(0))
        #expect(stamper.stamp(wallMilliseconds: 900_000, at: .seconds(5)) == 1_000_000)
        // An accurate wall clock is taken as it is, when the elapsed time allows it.
        #expect(stamper.stamp(wallMilliseconds: 1_004_000, at: .seconds(5)) == 1_004_000)
        // Stamps applied from another leader raise what this node has seen.
        stamper.observe(2_000_000, at: .seconds(6))
        #expect(stamper.stamp(wallMilliseconds: 1_500_000, at: .seconds(7)) == 2_000_000)
    }

    @Test func theFirstStampOfACluster() {
        var stamper = IdempotencyStamper()
        #expect(stamper.stamp(wallMilliseconds: 1_700_000_000_000, at: .seconds(3)) == 1_700_000_000_000)
        #expect(stamper.stamp(wallMilliseconds: 1_800_000_000_000, at: .seconds(4)) == 1_700_000_001_000)
    }
}
