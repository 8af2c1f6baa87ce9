import Testing

@testable import MembershipNIO

/// The replay window on its own: time is an argument, so every case is exact.
@Suite("Replay window")
struct ReplayWindowTests {
    static let second: UInt64 = 1000
    static let start: UInt64 = 1_700_000_000_000

    func stamp(_ at: UInt64, _ nonce: UInt64) -> PacketStamp { PacketStamp(sentAtMillis: at, nonce: nonce) }

    @Test func aStampIsAdmittedOnce() {
        var window = ReplayWindow(window: .seconds(30))
        #expect(window.admit(stamp(Self.start, 1), now: Self.start) == .fresh)
        #expect(window.admit(stamp(Self.start, 1), now: Self.start + 5 * Self.second) == .replayed)
        #expect(window.admit(stamp(Self.start, 2), now: Self.start + 5 * Self.second) == .fresh, "another nonce")
    }

    @Test func stampsFurtherThanTheWindowEitherWayAreRefused() {
        var window = ReplayWindow(window: .seconds(30))
        let now = Self.start
        #expect(window.admit(stamp(now - 30 * Self.second, 1), now: now) == .fresh, "the edge is inside")
        #expect(window.admit(stamp(now - 30 * Self.second - 1, 2), now: now) == .outsideWindow)
        #expect(window.admit(stamp(now + 30 * Self.second, 3), now: now) == .fresh)
        #expect(window.admit(stamp(now + 30 * Self.second + 1, 4), now: now) == .outsideWindow)
        #expect(window.admit(stamp(0, 5), now: now) == .outsideWindow)
        #expect(window.admit(stamp(UInt64.max, 6), now: now) == .outsideWindow)
    }

    @Test func aCopyIsRefusedForAsLongAsItsOriginalWouldBeAdmitted() {
        var window = ReplayWindow(window: .seconds(30))
        let original = stamp(Self.start, 42)
        #expect(window.admit(original, now: Self.start) == .fresh)
        for elapsed in stride(from: UInt64(0), through: 40, by: 1) {
            let verdict = window.admit(original, now: Self.start + elapsed * Self.second)
            #expect(verdict != .fresh, "a copy \(elapsed) s later")
        }
    }

    @Test func memoryIsFreedAsStampsAge() {
        var window = ReplayWindow(window: .seconds(30))
        for nonce in UInt64(0)..<1000 { _ = window.admit(stamp(Self.start, nonce), now: Self.start) }
        #expect(window.count == 1000)
        #expect(window.admit(stamp(Self.start + 31 * Self.second, 0), now: Self.start + 31 * Self.second) == .fresh)
        #expect(window.count == 1, "the old stamps are forgotten: the window refuses their copies anyway")
        #expect(window.admit(stamp(Self.start, 7), now: Self.start + 31 * Self.second) == .outsideWindow)
    }

    @Test func aFullWindowForgetsTheOldestAndRefusesEverythingUpToIt() {
        var window = ReplayWindow(window: .seconds(30), capacity: 3)
        let now = Self.start + 10 * Self.second
        #expect(window.admit(stamp(Self.start + 1, 1), now: now) == .fresh)
        #expect(window.admit(stamp(Self.start + 2, 2), now: now) == .fresh)
        #expect(window.admit(stamp(Self.start + 3, 3), now: now) == .fresh)
        #expect(window.admit(stamp(Self.start + 4, 4), now: now) == .fresh)
        #expect(window.count == 3, "bounded")
        #expect(window.floor == Self.start + 1)
        #expect(window.admit(stamp(Self.start + 1, 1), now: now) == .replayed, "forgotten, yet still refused")
        #expect(window.admit(stamp(Self.start + 1, 99), now: now) == .replayed, "at the floor: cannot tell")
        #expect(window.admit(stamp(Self.start + 5, 5), now: now) == .fresh)
    }

    @Test func aClockSteppedBackDoesNotReopenTheWindowForForgottenStamps() {
        var window = ReplayWindow(window: .seconds(30))
        let original = stamp(Self.start, 1)
        #expect(window.admit(original, now: Self.start) == .fresh)
        // Forgotten once it aged out…
        #expect(window.admit(stamp(Self.start + 40 * Self.second, 2), now: Self.start + 40 * Self.second) == .fresh)
        // …then the wall clock is set back a minute: the old stamp is inside the window again.
        #expect(window.admit(original, now: Self.start - 20 * Self.second) == .replayed)
    }
}
